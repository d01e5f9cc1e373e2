"""`python -m composer check ARTICLE.json`: one line per claim the materials do not support.

The check itself is composer.check; this module reads the file, prints and sets the exit code
(0 whatever was found: flags are advice, not errors; 2 for a file that is not an article)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from composer.article import Article
from composer.check import CheckResult, check_article, flag_lines
from composer.cli_compose import UsageError
from composer.jsonfile import JSONFileError, read_json


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("check", help="list the claims of an article that its materials do not support")
    p.add_argument("article", metavar="ARTICLE.json", help="an article.json written by compose (or its folder)")
    p.set_defaults(run=run_check)
    return p


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    article = load_article(Path(args.article))
    print_flags(check_article(article), out or sys.stdout)
    return 0


def load_article(path: Path) -> Article:
    if path.is_dir():
        path = path / "article.json"
    try:
        data = read_json(path, "article")
    except JSONFileError as exc:
        raise UsageError(str(exc)) from exc
    try:
        if not isinstance(data, dict):
            raise ValueError("the article must be a JSON object")
        article = Article.from_dict(data)
        _check_types(article)
        return article
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, KeyError):
            detail = f"missing {exc}"
        else:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not an article ({detail})") from exc


def _check_types(article: Article) -> None:
    from composer.article import Figure, Paragraph

    if not isinstance(article.title, str):
        raise ValueError('"title" must be a text')
    for i, block in enumerate(article.blocks, 1):
        text = block.text if isinstance(block, Paragraph) else block.caption if isinstance(block, Figure) else None
        if not isinstance(text, str):
            raise ValueError(f"block {i} has no text")
    request = article.metadata.get("request")
    if request is not None and not isinstance(request, dict):
        raise ValueError('"metadata.request" must be an object')


def print_flags(result: CheckResult, out: TextIO) -> None:
    for line in flag_lines(result):
        print(_printable(line), file=out)


def _printable(text: str) -> str:
    """Model text reaches a terminal: control characters (escape sequences) are shown, not run."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
