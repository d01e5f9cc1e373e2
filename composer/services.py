"""What a composer front end runs on: the model, the image-text encoder and the library, built
from their spec strings in one place, and a finished compose summarised as one status line.

The browser editor uses this; the command line can build its parts the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from composer.article import Article
from composer.model.base import ModelError
from composer.model.serialized import SerializedModel


class ServiceError(ValueError):
    """A spec or folder the user gave cannot be used; the message says which and why."""


@dataclass
class Services:
    model: SerializedModel
    encoder: Any | None
    library: Any | None

    @property
    def model_slots(self) -> int:
        """How many model calls the backend serves at once (the app's queue for model events).
        A serialised model runs one call at a time, whatever is behind it."""
        return 1

    def describe(self) -> str:
        """Model and encoder named for a header, with a note when the model is the small one."""
        parts = [f"model **{self.model.name}**"]
        if self.encoder is not None:
            parts.append(f"encoder **{getattr(self.encoder, 'name', self.encoder)}**")
        if self.library is not None:
            parts.append(f"library **{self.library.folder}** ({len(self.library)} pictures)")
        line = ", ".join(parts) + "."
        if self.model.small:
            line += (" The model is the small offline one that ships with the app: expect plain prose;"
                     " start with `--model` for a stronger one.")
        return line


def load_services(model_spec: str = "embedded", encoder_spec: str = "embedded", library: str | Path | None = None,
                  say: Callable[[str], None] = lambda message: None) -> Services:
    """Load the model (serialised: one owner, many callers), the encoder and, when a folder is
    given, the library (synced). Raises ServiceError with a one-line message."""
    from composer.model import load_model
    from composer.retrieval import ImageLibrary, LibraryError, load_encoder

    say(f"loading model {model_spec}")
    try:
        model = SerializedModel(load_model(model_spec))
    except (ModelError, ValueError) as exc:
        raise ServiceError(f"model {model_spec}: {exc}") from exc
    try:
        say(f"loading image-text encoder {encoder_spec}")
        encoder = load_encoder(encoder_spec)
        lib = None
        if library is not None:
            say(f"syncing library {library}")
            lib = ImageLibrary(library, encoder=encoder)
            lib.sync()
    except (LibraryError, OSError) as exc:
        raise ServiceError(str(exc)) from exc
    return Services(model, encoder, lib)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def compose_summary(article: Article) -> str:
    """One line on a finished article: what it holds, what is left to do, what a rule decided."""
    texts = sum(1 for p in article.paragraphs if not p.is_heading)
    shown = sum(1 for f in article.figures if f.image is not None)
    empty = len(article.figures) - shown
    message = f"Done: {plural(texts, 'paragraph')}, {plural(shown, 'picture')}"
    if empty:
        message += f", {plural(empty, 'empty slot')} (pick one of its candidates)"
    message += "."
    notes = [f"{f['step']}: {f['reason']}" for f in article.metadata.get("fallbacks", [])]
    if notes:
        message += " Decided by rule: " + "; ".join(notes)
    return message
