"""A scripted ChatModel for planner tests: answers are chosen by what the prompt asks, in
either dialect, so the planner's logic is tested against every answer format."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, Union

from composer.model.base import Prompt, Sampling, TokenUsage

Answer = Union[str, Callable[[Prompt], str]]

# What each step's prompt contains, per dialect.
MARKERS = {
    "generic": {"write": "Write an article titled", "place": "Answer with the paragraph numbers",
                "caption": "caption of a photograph", "edit": "Answer with the new paragraph only",
                "choose": "Which picture best fits"},
    "xcomposer": {"write": "根据以下标题", "place": "选择适合插入图像", "caption": "给出适合在",
                  "edit": ("改写以下段落", "扩写以下段落", "缩写以下段落", "在以下两段中插入一段"),
                  "choose": "根据给定上下文和候选图像"},
}


class ScriptedModel:
    name = "fake:scripted"
    sees_images = False

    def __init__(self, article: str, place: Answer = "", caption: Answer = "A photo", edit: Answer = "New text.",
                 choose_scores: Callable[[Prompt, Sequence[str]], list[float]] | None = None,
                 dialect: str = "generic", sees_images: bool = False):
        self.answers = {"write": article, "place": place, "caption": caption, "edit": edit}
        self.choose_scores = choose_scores
        self.dialect = dialect
        self.sees_images = sees_images
        self.prompts: list[Prompt] = []
        self.usage = TokenUsage()

    def step_of(self, prompt: Prompt) -> str:
        text = "".join(t.text for t in prompt.turns)
        for step, marker in MARKERS[self.dialect].items():
            if any(m in text for m in ((marker,) if isinstance(marker, str) else marker)):
                return step
        raise AssertionError(f"unexpected prompt: {text[:80]!r}")

    def _answer(self, prompt: Prompt) -> str:
        self.prompts.append(prompt)
        answer = self.answers[self.step_of(prompt)]
        return answer(prompt) if callable(answer) else answer

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
