"""python -m composer compose|index|search|check ..."""
from __future__ import annotations

import argparse
import os
import sys

from composer.cli_compose import UsageError, add_compose_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m composer", description="Compose illustrated articles.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_compose_parser(sub)
    from composer.retrieval.cli import add_index_parser, add_search_parser

    add_index_parser(sub)
    add_search_parser(sub)
    from composer.cli_check import add_check_parser

    add_check_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
