"""Models for planner tests and benchmarks, shared by both (tests/ is not a package to import).

- ScriptedModel: answers chosen by what the prompt asks, in either dialect, so the planner's
  logic is tested against every answer format without running a model.
- FixedDraft: a real model whose first draft is given, so a measurement covers exactly the
  steps after writing (placement, captions, choices), which share the article prefix.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from composer.model.base import ChatModel, ChatModelBase, Dialect, Prompt, Sampling, TokenUsage

Answer = str | Callable[[Prompt], str]

# What each step's prompt contains, per dialect.
MARKERS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "generic": {"write": ("Write an article titled", "You are writing the article", "You are writing one part of"),
                "place": "Answer with the paragraph numbers",
                "caption": "caption of a photograph", "edit": "Answer with the new paragraph only",
                "choose": "Which picture best fits"},
    "xcomposer": {"write": ("根据以下标题", "根据以下素材"), "place": "选择适合插入图像", "caption": "给出适合在",
                  "edit": ("改写以下段落", "扩写以下段落", "缩写以下段落", "在以下两段中插入一段"),
                  "choose": "根据给定上下文和候选图像"},
}


class ScriptedModel(ChatModelBase):
    name = "fake:scripted"

    def __init__(self, article: str, place: Answer = "", caption: Answer = "A photo", edit: Answer = "New text.",
                 choose_scores: Callable[[Prompt, Sequence[str]], list[float]] | None = None,
                 dialect: Dialect = "generic", sees_images: bool = False, small: bool = False):
        self.answers = {"write": article, "place": place, "caption": caption, "edit": edit}
        self.choose_scores = choose_scores
        self.dialect = dialect
        self.sees_images = sees_images
        self.small = small  # a small model is asked for one outline point at a time
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


CAFE_DRAFT = "\n\n".join([
    "The café opens at seven, but the owner is there at six to warm the machine and the cups.",
    "The first shot of the day is pulled at six forty-five to dial in the grinder: eighteen grams in, thirty-six out.",
    "Crema that is hazel-brown and lasts a minute means fresh beans and the right grind.",
    "A tabby cat from the flat upstairs sleeps on the window seat most mornings.",
    "She has her own water bowl by the door, and the regulars greet her by name.",
    "About half the morning customers are regulars, and the barista knows their orders.",
    "By nine the rush is over, and the owner finally drinks a coffee of her own.",
    "Small cafés like this one are where a neighbourhood meets itself every morning.",
])


class FixedDraft(ChatModelBase):
    """A model with its first draft given (CAFE_DRAFT unless another): writing is not what prefix
    reuse can save, so a comparison covers exactly the steps that share the article prefix."""

    sees_images = False
    small = False  # the draft is given whole, never asked for part by part

    def __init__(self, model: ChatModel, draft: str = CAFE_DRAFT):
        self.model, self.draft = model, draft
        self.name, self.dialect, self.usage = model.name, model.dialect, model.usage

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        yield self.draft

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        return self.model.complete(prompts, sampling)

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        return self.model.choose(prompt, options)
