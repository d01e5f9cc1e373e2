"""The model interface the planner talks to, and the plain data it speaks in.

A planner step asks a model three things: stream text, complete several prompts, or score a
fixed set of options by log-likelihood. Choosing by score never fails to parse; sampling a
letter and parsing it does. Nothing here imports the rest of composer.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from PIL import Image

Part: TypeAlias = str | Image.Image
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
    def user(cls, *parts: Part, system: str | None = None, answer_prefix: str = "") -> Prompt:
        turns = [Turn("system", [system])] if system else []
        turns.append(Turn("user", list(parts)))
        return cls(turns, answer_prefix)

    @property
    def images(self) -> list[Image.Image]:
        return [img for t in self.turns for img in t.images]


@dataclass(frozen=True)
class Sampling:
    """How to pick each next token. `repetition_penalty` has one meaning in every backend that
    samples itself (numpy and torch samplers; llama.cpp servers read it the same way): a token
    among the last PENALTY_WINDOW positions (prompt and answer so far) has its logit divided by the
    penalty when positive, multiplied when negative. A window rather than the whole history: a
    grounded article should reuse the words of its materials without being pushed off them."""

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


PENALTY_WINDOW = 64  # as llama.cpp's default repeat_last_n


@runtime_checkable
class ChatModel(Protocol):
    """What the planner reads from a model. Backends inherit ChatModelBase for the defaults.
    (Read-only members: a backend may declare a narrower value, e.g. dialect = "xcomposer".)"""

    @property
    def name(self) -> str: ...

    @property
    def dialect(self) -> Dialect: ...

    @property
    def sees_images(self) -> bool: ...

    @property
    def small(self) -> bool: ...

    @property
    def thread_safe(self) -> bool: ...

    @property
    def usage(self) -> TokenUsage: ...

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]: ...

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]: ...

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]: ...


class ChatModelBase(ABC):
    """The declared capabilities with their defaults (llm-style): a backend overrides what differs.

    - `name`: what article metadata records as the model.
    - `dialect`: which prompts it was trained on (composer.planner.prompts).
    - `sees_images`: images in a prompt reach the model (else only their text stands in).
    - `small`: a small model; the planner asks it for one outline point at a time and warns
      that its Chinese is poor.
    - `thread_safe`: calls may run at once (a pool of servers); else an app puts the model
      behind one owner (composer.model.serialized) so that calls never interleave inside it.
    """

    name: str = "model"
    dialect: Dialect = "generic"
    sees_images: bool = False
    small: bool = False
    thread_safe: bool = False
    usage: TokenUsage

    @abstractmethod
    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]: ...

    @abstractmethod
    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]: ...

    @abstractmethod
    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]: ...


class ModelError(RuntimeError):
    """A failure the user can act on (missing weights, unreachable server, out of memory)."""
