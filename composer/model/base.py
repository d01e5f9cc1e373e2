"""The model interface the planner talks to, and the plain data it speaks in.

A planner step asks a model three things: stream text, complete several prompts, or score a
fixed set of options by log-likelihood. Choosing by score never fails to parse; sampling a
letter and parsing it does. Nothing here imports the rest of composer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence, Union, runtime_checkable

from PIL import Image

Part = Union[str, Image.Image]
Role = Literal["system", "user", "assistant"]
Dialect = Literal["generic", "xcomposer"]


@dataclass
class Turn:
    role: Role
    parts: list[Part]

    @property
    def text(self) -> str:
        """The turn's text with images left out (for backends that do not see images)."""
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if not isinstance(p, str)]


@dataclass
class Prompt:
    """A conversation to continue. `answer_prefix` is prefilled as the start of the assistant reply
    and is not repeated in the model's output."""

    turns: list[Turn]
    answer_prefix: str = ""

    @classmethod
    def user(cls, *parts: Part, system: str | None = None, answer_prefix: str = "") -> "Prompt":
        turns = [Turn("system", [system])] if system else []
        turns.append(Turn("user", list(parts)))
        return cls(turns, answer_prefix)

    @property
    def images(self) -> list[Image.Image]:
        return [img for t in self.turns for img in t.images]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repetition_penalty: float = 1.1
    max_new_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class TokenUsage:
    """Tokens actually run through the model: prefill (prompt positions evaluated) and decode
    (positions generated). Positions served from a cache are not counted."""

    prefill: int = 0
    decode: int = 0
    calls: int = 0

    def add(self, prefill: int = 0, decode: int = 0) -> None:
        self.prefill += prefill
        self.decode += decode
        self.calls += 1

    @property
    def total(self) -> int:
        return self.prefill + self.decode

    def snapshot(self) -> dict[str, int]:
        return {"prefill": self.prefill, "decode": self.decode, "total": self.total, "calls": self.calls}


@runtime_checkable
class ChatModel(Protocol):
    name: str
    dialect: Dialect
    sees_images: bool
    usage: TokenUsage

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]: ...

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]: ...

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]: ...


class ModelError(RuntimeError):
    """A failure the user can act on (missing weights, unreachable server, out of memory)."""
