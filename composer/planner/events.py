"""The events `compose` yields. The CLI and the UI consume the same stream."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "stage",     # a step begins: data["stage"] in write|segment|place|caption|select|generate
    "text",      # a piece of article text as the model writes it: data["delta"]
    "segments",  # the article split into blocks: data["article"]
    "slots",     # paragraphs that get a picture: data["slots"] (block indices)
    "caption",   # data["slot"], data["caption"]
    "figure",    # data["slot"], data["figure"]
    "generating",  # an image engine is drawing one: data["slot"], data["number"] of data["of"]
    "fallback",  # a model answer was unusable and a rule decided instead: data["step"], data["reason"]
    "warning",   # something the writer should know: data["message"]
    "done",      # data["article"], data["usage"]
]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
