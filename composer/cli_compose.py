"""`python -m composer compose`: read a request, compose with progress on stderr, write the bundle."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from composer.article import paragraph_label
from composer.export.formats import DEFAULT_FORMATS, FORMATS, FormatError, parse_formats
from composer.imagegen.illustrate import Illustrator
from composer.images import ImageError, load_uploads
from composer.model.base import ModelError
from composer.planner.request import RequestError, load_request, parse_image_count
from composer.services import ServiceError, compose_summary, load_services


class UsageError(Exception):
    """A problem with what the user gave: printed as one line, exit code 2."""


def add_compose_parser(subparsers) -> None:
    p = subparsers.add_parser("compose", help="write an illustrated article from a request file")
    p.add_argument("--request", required=True, metavar="REQUEST.json", help="title, outline, materials, ...")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write the article (one file per format), article.json, images/ and a zip of all")
    p.add_argument("--formats", default=",".join(DEFAULT_FORMATS), metavar="LIST",
                   help=f"formats to write, comma-separated, from {','.join(FORMATS)} "
                   f"(md Markdown, html one page, docx Word, pdf PDF, wp WordPress blocks; "
                   f"default: {','.join(DEFAULT_FORMATS)})")
    p.add_argument("--model", default="embedded", metavar="SPEC",
                   help="embedded | gguf:PATH.gguf | xcomposer2[:ID_OR_PATH] | "
                   "openai:URL[,URL...][#MODEL][?images=on|off&dialect=...] (default: embedded)")
    p.add_argument("--images", nargs="*", default=[], metavar="FILE", help="your own photos to place")
    p.add_argument("--library", metavar="FOLDER", help="an image library folder to fill picture slots from")
    p.add_argument("--imagegen", metavar="SPEC",
                   help="an image engine that draws the pictures nothing else gives: "
                   "openai-images:URL[,URL...][#MODEL][?size=WxH&steps=N] | a1111:URL[,URL...][?size=&steps=&cfg=]")
    p.add_argument("--encoder", default="embedded", metavar="SPEC",
                   help="image-text encoder for matching captions to pictures (default: embedded)")
    p.add_argument("--image-count", metavar="N|auto", help="pictures to place (overrides the request)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed; the same seed gives the same article")
    p.add_argument("--quiet", action="store_true", help="do not stream the text while it is written")
    p.add_argument("--sources", action="store_true",
                   help="number the passages of your notes each paragraph rests on, and list them at the end")
    p.set_defaults(run=run_compose)


def run_compose(args: argparse.Namespace) -> int:
    from composer.export import write_bundle
    from composer.planner.pipeline import compose

    try:
        formats = parse_formats(args.formats)
    except FormatError as exc:
        raise UsageError(f"--formats: {exc}") from exc
    try:
        request = load_request(args.request)
        if args.image_count is not None:
            request = request.with_image_count(parse_image_count(args.image_count))
        uploads = load_uploads(args.images)
        _check_out_dir(Path(args.out))
    except (RequestError, ImageError) as exc:
        raise UsageError(str(exc)) from exc

    say = _progress_printer(quiet=args.quiet)
    try:  # the encoder only when there are pictures to match: it costs seconds to load
        services = load_services(args.model, args.encoder if uploads or args.library else None, args.library,
                                 say=lambda message: say("stage", message), imagegen_spec=args.imagegen)
    except ServiceError as exc:
        raise UsageError(str(exc)) from exc
    model, encoder, library = services.model, services.encoder, services.pictures

    # Generated pictures wait in a temp folder until the bundle has copied them in.
    with tempfile.TemporaryDirectory(prefix="composer-generated-") as generated:
        illustrator = Illustrator(services.imagegen, Path(generated)) if services.imagegen is not None else None
        try:
            article = _run(compose(request, model, encoder, library, uploads=uploads, seed=args.seed,
                                   illustrator=illustrator), say)
        except ModelError as exc:  # out of memory, prompt too long, a server that died: nothing written
            raise UsageError(f"model {model.name}: {exc}") from exc
        try:
            paths = write_bundle(article, args.out, sources=args.sources, formats=formats)
        except ImageError as exc:
            raise UsageError(str(exc)) from exc
        except OSError as exc:  # FileExistsError included: the message names the folder
            raise UsageError(f"--out {exc}") from exc
    for reason in paths.skipped.values():  # a PDF without its system library: the rest is written
        say("warn", reason)
    _say_claims(article, paths.get("json"), say)
    for key in ("html", "markdown", "docx", "pdf", "wp", "json", "zip"):
        if key in paths:
            print(paths[key])
    return 0


def _say_claims(article, json_path, say) -> None:
    """What the materials do not support, said once after compose (composer.check)."""
    from composer.check import CheckResult, summary_line

    result = CheckResult.from_dict(article.metadata.get("claims") or {})
    command = f"python -m composer check {json_path}" if json_path else "python -m composer check"
    say("warn" if result.flags else "stage", summary_line(result, command=command))


def _run(events, say):
    """Print the events as progress; return the finished article."""
    article = None
    blocks = ()  # the paragraphs a slot number counts in (see article.paragraph_label)

    def at(slot: int) -> str:
        return paragraph_label(blocks, slot) if 0 <= slot < len(blocks) else f"paragraph {slot + 1}"

    for event in events:
        if event.kind == "segments":
            blocks = event.data["article"].blocks
        elif event.kind == "text":
            say("text", event.data["delta"])
        elif event.kind == "stage":
            say("stage", event.data["stage"])
        elif event.kind == "slots":
            say("info", "pictures " + ", ".join(f"after {at(s)}" for s in event.data["slots"]))
        elif event.kind == "caption":
            say("info", f"caption after {at(event.data['slot'])}: {event.data['caption']}")
        elif event.kind == "generating":
            say("info", f"generating picture {event.data['number']} of {event.data['of']} "
                        f"after {at(event.data['slot'])}…")
        elif event.kind == "figure":
            fig = event.data["figure"]
            shown = f"generated, seed {fig.generated.seed}" if fig.generated is not None else fig.source
            say("info", f"picture after {at(event.data['slot'])} ← {Path(fig.image.path).name} ({shown})")
        elif event.kind in ("fallback", "warning"):
            msg = event.data.get("message") or f"{event.data['step']}: {event.data['reason']}"
            say("warn", msg)
        elif event.kind == "done":
            article = event.data["article"]
            usage = event.data["usage"]
            say("stage", f"{compose_summary(article, detail=True)} ({usage['prefill']} prompt + {usage['decode']} "
                         "generated tokens)")
    assert article is not None, "compose ended without a done event"
    return article


def _check_out_dir(out: Path) -> None:
    """Refuse an unusable output folder before minutes of composing, not after: one that holds
    the writer's files (only an unchanged bundle of ours is replaced) or cannot be written."""
    from composer.export import check_replaceable, check_writable

    try:
        check_replaceable(out.absolute())
        check_writable(out.absolute())
    except OSError as exc:  # FileExistsError included
        raise UsageError(f"--out {exc}") from exc


def _progress_printer(quiet: bool):
    stream = sys.stderr
    mid_text = [False]

    def say(kind: str, message: str) -> None:
        if kind == "text":
            if not quiet:
                stream.write(message)
                stream.flush()
                mid_text[0] = True
            return
        if mid_text[0]:
            stream.write("\n")
            mid_text[0] = False
        prefix = {"stage": "==> ", "info": "    ", "warn": "  ! "}[kind]
        stream.write(f"{prefix}{message}\n")
        stream.flush()

    return say
