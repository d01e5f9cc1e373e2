"""`python -m composer index` and `python -m composer search`: argparse wiring and the two run
functions. composer/__main__.py adds these parsers; a LibraryError becomes one line and exit 2."""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Iterator, TextIO

from composer.retrieval.errors import LibraryError
from composer.retrieval.library import ImageLibrary, SyncProgress

EXIT_USER_ERROR = 2


def add_index_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("index", help="embed a folder of images into a searchable library")
    p.add_argument("folder", help="folder of images (searched recursively)")
    p.add_argument(
        "--encoder",
        default=None,
        help="embedded | open_clip:MODEL[:PRETRAINED] (default: the library's encoder; for a new "
        "library ViT-B-32 if its weights are on this machine, else embedded)",
    )
    p.add_argument("--db", default=None, help="library database (default: FOLDER/.composer-library.sqlite)")
    p.add_argument("--batch-size", type=int, default=8, help=argparse.SUPPRESS)
    p.set_defaults(run=run_index)
    return p


def add_search_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("search", help="find library images for a caption")
    p.add_argument("caption")
    p.add_argument("--library", required=True, help="the indexed folder")
    p.add_argument("--db", default=None, help="library database (default: LIBRARY/.composer-library.sqlite)")
    p.add_argument("--encoder", default=None, help="must match the library's (default: the library's)")
    p.add_argument("-k", type=int, default=5, help="how many images (default 5)")
    p.set_defaults(run=run_search)
    return p


@contextlib.contextmanager
def _skips_not_logged() -> Iterator[None]:
    """The index command names every skipped file itself, below its progress bar; the library's
    own warning for each (printed by logging's last-resort handler) would name it a second time."""
    logger = logging.getLogger("composer.retrieval.library")

    def not_a_skip(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("skipped")

    logger.addFilter(not_a_skip)
    try:
        yield
    finally:
        logger.removeFilter(not_a_skip)


def run_index(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from tqdm import tqdm

    try:
        with ImageLibrary(args.folder, db=args.db, encoder=args.encoder) as library:
            bar = tqdm(total=0, unit="img", desc="indexing", file=err, disable=None)

            def progress(p: SyncProgress) -> None:
                bar.total = p.total
                bar.n = p.done
                bar.refresh()

            try:
                with _skips_not_logged():
                    report = library.sync(progress=progress, batch_size=args.batch_size)
            finally:
                bar.close()
            for skipped in report.skipped:
                print(f"skipped {skipped}", file=err)
            print(report.summary(), file=out)
            print(f"library: {library.db_path} ({len(library)} images, {library.encoder_name})", file=out)
    except LibraryError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USER_ERROR
    return 0


def run_search(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        with ImageLibrary(args.library, db=args.db, encoder=args.encoder, must_exist=True) as library:
            for ref, score in library.search(args.caption, k=args.k):
                print(f"{ref.path}\t{score:.4f}", file=out)
    except LibraryError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USER_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m composer.retrieval.cli`) until composer/__main__.py wires these in."""
    parser = argparse.ArgumentParser(prog="composer")
    sub = parser.add_subparsers(dest="command", required=True)
    add_index_parser(sub)
    add_search_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
