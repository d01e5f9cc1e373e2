"""One model, many writers: calls are serialised so that concurrent sessions never interleave
inside a backend (a llama.cpp context or a KV cache is one mutable thing)."""
from __future__ import annotations

import threading
from typing import Iterator, Sequence

from composer.model.base import ChatModel, ChatModelBase, Prompt, Sampling


class SerializedModel(ChatModelBase):
    def __init__(self, model: ChatModel):
        self.model = model
        self.name, self.dialect, self.sees_images = model.name, model.dialect, model.sees_images
        self.usage = model.usage
        self.small = model.small
        self._lock = threading.RLock()

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        # The lock is held from the first token to the last, and released if the reader stops.
        with self._lock:
            yield from self.model.stream(prompt, sampling)

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        with self._lock:
            return self.model.complete(prompts, sampling)

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        with self._lock:
            return self.model.choose(prompt, options)
