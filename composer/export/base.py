"""What an export format is: a name, a file in the bundle, and a render from the article's
prepared parts. Every format is rendered from one Source, so all show the same text and pictures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from composer.article import Article
from composer.export.figures import ExportedImage
from composer.export_sources import SourceNotes


class FormatUnavailable(Exception):
    """A format that cannot be made on this machine (a missing system library): the message is
    one line for the writer, and the bundle's other formats are written all the same."""


@dataclass(frozen=True)
class Source:
    """The article as every format receives it: its pictures encoded once (by block position)
    and, when asked for, the sources each block rests on."""

    article: Article
    images: dict[int, ExportedImage]
    notes: SourceNotes | None = None


class Format(Protocol):
    @property
    def name(self) -> str:
        """What the writer types: --formats md,html,docx,pdf,wp."""

    @property
    def key(self) -> str:
        """Its key in write_bundle's answer ("markdown", "html", "docx", "pdf", "wp")."""

    @property
    def filename(self) -> str:
        """Its file in the bundle and the zip."""

    def render(self, source: Source) -> bytes:
        """The file's bytes; FormatUnavailable where this machine cannot make it."""
        ...
