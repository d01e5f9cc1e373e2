"""What a composer front end runs on: the model, the image-text encoder and the library, built
from their spec strings in one place, and a finished compose summarised as one status line.

The browser editor uses this; the command line can build its parts the same way.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.article import Article
from composer.model.base import ModelError
from composer.model.serialized import SerializedModel

if TYPE_CHECKING:
    from composer.imagegen import ImageGenerator
    from composer.retrieval import ImageLibrary, ImageTextEncoder


class ServiceError(ValueError):
    """A spec or folder the user gave cannot be used; the message says which and why."""


@dataclass
class Services:
    model: SerializedModel
    encoder: ImageTextEncoder | None
    library: ImageLibrary | None
    imagegen: ImageGenerator | None = None  # draws the pictures nothing else gives (--imagegen)

    @property
    def pictures(self) -> ImageLibrary | None:
        """The library to fill picture slots from: None while it holds no picture (the app's own
        library starts empty), so that an article gets no empty slots it cannot fill."""
        return self.library if self.library is not None and len(self.library) else None

    @property
    def model_slots(self) -> int:
        """How many model calls the backend serves at once (the app's queue for model events):
        one for a model that is one mutable thing, more for a pool of servers."""
        return self.model.workers

    def describe(self) -> str:
        """Model and encoder named for a header, with a note when the model is the small one."""
        parts = [f"model **{self.model.name}**"]
        if self.encoder is not None:
            parts.append(f"encoder **{self.encoder.name}**")
        if self.library is not None:
            parts.append(f"library **{self.library.folder}** ({plural(len(self.library), 'picture')})")
        if self.imagegen is not None:
            parts.append(f"image engine **{self.imagegen.name}**")
        line = ", ".join(parts) + "."
        if self.model.small:
            line += (" The model is the small offline one that ships with the app: expect plain prose;"
                     " start with `--model` for a stronger one.")
        return line


def load_services(model_spec: str = "embedded", encoder_spec: str | None = "embedded",
                  library: str | Path | None = None, say: Callable[[str], None] = lambda message: None,
                  imagegen_spec: str | None = None) -> Services:
    """Load the model (serialised: one owner, many callers), the encoder (None: no encoder, for
    a compose with no pictures to match), when a folder is given the library (synced), and
    when a spec is given the image engine's client. Raises ServiceError with a one-line message."""
    from composer.imagegen import ImageGenError, load_imagegen
    from composer.model import load_model
    from composer.retrieval import ImageLibrary, LibraryError, load_encoder

    imagegen = None
    if imagegen_spec is not None:  # a bad spec is said before seconds of model loading
        try:
            imagegen = load_imagegen(imagegen_spec)
        except ImageGenError as exc:
            raise ServiceError(f"--imagegen {imagegen_spec}: {exc}") from exc

    say(f"loading model {model_spec}")
    try:
        model = SerializedModel(load_model(model_spec))
    except (ModelError, ValueError) as exc:
        raise ServiceError(f"model {model_spec}: {exc}") from exc
    try:
        encoder = lib = None
        if encoder_spec is not None:
            say(f"loading image-text encoder {encoder_spec}")
            encoder = load_encoder(encoder_spec)
        if library is not None and encoder is not None:
            say(f"syncing library {library}")
            lib = ImageLibrary(library, encoder=encoder)
            lib.sync()
    except (LibraryError, OSError) as exc:
        raise ServiceError(str(exc)) from exc
    return Services(model, encoder, lib, imagegen)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# What a step that fell back to a rule means for the writer (the model's answer and the rule's
# reasoning stay in article.json's "fallbacks" and the server log).
_PLAIN_FALLBACKS = {
    "write": "The model wrote nothing usable, so the article holds your outline and materials: rewrite it.",
    "place": "The model's answer on where pictures go could not be used, so they follow the paragraphs they fit.",
    "ground": "The rewrite still said things your materials do not, so only the sentences they support were kept.",
}


def _plain_notes(fallbacks: Sequence[Any]) -> list[str]:
    steps = [str(f.get("step")) for f in fallbacks if isinstance(f, dict)]
    notes = [_PLAIN_FALLBACKS[step] for step in dict.fromkeys(steps) if step in _PLAIN_FALLBACKS]
    captions = steps.count("caption")
    if captions:
        notes.append(f"{plural(captions, 'caption')} {'was' if captions == 1 else 'were'} written from the photo or "
                     "its paragraph (the model's did not fit): check them.")
    other = [s for s in dict.fromkeys(steps) if s not in _PLAIN_FALLBACKS and s != "caption"]
    if other:
        notes.append("Some choices were made by simple rules (see article.json).")
    return notes


def compose_summary(article: Article, detail: bool = False) -> str:
    """One line on a finished article: what it holds, what is left to do, and in plain words
    where a rule stood in for the model (with `detail`, the model's answers and the rules'
    reasons, for a terminal)."""
    texts = sum(1 for p in article.paragraphs if not p.is_heading)
    shown = sum(1 for f in article.figures if f.image is not None)
    empty = len(article.figures) - shown
    message = f"Done: {plural(texts, 'paragraph')}, {plural(shown, 'picture')}"
    if empty:
        message += f", {plural(empty, 'empty slot')} (pick one of its candidates)"
    message += "."
    failed = (article.metadata.get("imagegen") or {}).get("failed") or []
    if failed:
        message += (f" {plural(len(failed), 'picture')} could not be generated ("
                    + "; ".join(f"{f.get('where')}: {f.get('reason')}" if detail else str(f.get("where"))
                                for f in failed if isinstance(f, dict)) + ").")
    flagged = len((article.metadata.get("claims") or {}).get("flags") or ())
    if flagged:
        message += f" {plural(flagged, 'claim')} not in your materials."
    fallbacks = article.metadata.get("fallbacks") or []
    if detail:
        notes = [f"{f['step']}: {f['reason']}" for f in fallbacks]
        return message + (" Decided by rule: " + "; ".join(notes) if notes else "")
    return " ".join([message, *_plain_notes(fallbacks)])


# --- the picture library, as a front end manages it ------------------------------------------------
def library_summary(library: Any | None) -> str:
    """The library in use in one line: folder, picture count, encoder."""
    if library is None:
        return "No picture library."
    encoder = library.encoder_name or "not indexed yet"
    return f"Library: {library.folder} · {plural(len(library), 'picture')} · encoder {encoder}"


def add_to_library(library: Any, paths: Sequence[str | Path]) -> list[Path]:
    """Copy pictures into the library's folder (checked as images first; a name already taken
    gets a number), ready for the next sync. Raises ImageError naming the first bad file."""
    from composer.images import ImageError, display_name, load_image, named_image_error

    for path in paths:
        try:
            load_image(path)
        except ImageError as exc:
            raise named_image_error(exc) from None
    added = []
    for path in paths:
        name = Path(display_name(path))
        dest = library.folder / name.name
        n = 1
        while dest.exists():
            dest = library.folder / f"{name.stem}-{n}{name.suffix}"
            n += 1
        shutil.copyfile(path, dest)
        added.append(dest)
    return added
