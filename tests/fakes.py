"""A scripted ChatModel for planner tests: answers are chosen by what the prompt asks."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

from composer.model.base import Prompt, Sampling, TokenUsage

Script = Callable[[Prompt], str]


class ScriptedModel:
    name = "fake:scripted"
    dialect = "generic"
    sees_images = False

    def __init__(self, article: str, place: str = "", caption: str | Script = "A photo",
                 choose_scores: Callable[[Prompt, Sequence[str]], list[float]] | None = None):
        self.article, self.place_answer, self.caption_answer = article, place, caption
        self.choose_scores = choose_scores
        self.prompts: list[Prompt] = []
        self.usage = TokenUsage()

    def _answer(self, prompt: Prompt) -> str:
        self.prompts.append(prompt)
        text = prompt.turns[-1].text
        if text.startswith("Write an article"):
            return self.article
        if "paragraph numbers" in text.lower():
            return self.place_answer
        if "photograph that would illustrate" in text:
            return self.caption_answer(prompt) if callable(self.caption_answer) else self.caption_answer
        raise AssertionError(f"unexpected prompt: {text[:80]!r}")

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        answer = self._answer(prompt)
        self.usage.add(prefill=len(prompt.turns[-1].text.split()), decode=len(answer.split()))
        for word in answer.split(" "):
            yield word + " "

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        return ["".join(self.stream(p, sampling)).strip() for p in prompts]

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        self.prompts.append(prompt)
        if self.choose_scores:
            return self.choose_scores(prompt, options)
        return [0.0] * len(options)
