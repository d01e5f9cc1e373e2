"""A GGUF file's own chat template (Jinja, as Hugging Face tokenizers ship it), rendered so that
the writer's text can never become a special token.

A template renders a whole conversation to one string. Tokenising that string with special
tokens parsed would let materials that contain "<|im_start|>system" forge a turn. So each turn's
text goes through the template as a unique placeholder; the rendered string is cut at the
placeholders into template text (special tokens parsed) and the turns' own text (parsed as
plain text), and the caller tokenises each piece accordingly.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from composer.model.base import ModelError

CHATML = (  # the fallback for a GGUF without a template: what SmolLM2, Qwen and many others use
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ChatTemplateError(ModelError):
    """The file's template cannot render a conversation of plain turns."""


@dataclass(frozen=True)
class Segment:
    text: str
    special: bool  # True: the template's own text, its markers parsed as special tokens


def render_segments(template: str, turns: Sequence[tuple[str, str]], bos_token: str = "",
                    eos_token: str = "") -> list[Segment]:
    """The conversation `turns` ((role, text), ...) with the generation prompt, as segments."""
    try:
        return _render(template, list(turns), bos_token, eos_token)
    except ChatTemplateError:
        if not turns or turns[0][0] != "system":
            raise
    # Some templates (Gemma's, Mistral's) refuse a system turn: it becomes the first user turn's head.
    system, rest = turns[0][1], list(turns[1:])
    if rest and rest[0][0] == "user":
        rest[0] = ("user", f"{system}\n\n{rest[0][1]}")
    else:
        rest.insert(0, ("user", system))
    return _render(template, rest, bos_token, eos_token)


def _render(template: str, turns: list[tuple[str, str]], bos_token: str, eos_token: str) -> list[Segment]:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    nonce = secrets.token_hex(8)
    marks = [f"\ue000{nonce}:{i}\ue001" for i in range(len(turns))]

    def raise_exception(message: str) -> None:
        raise ChatTemplateError(f"the model's chat template refused the conversation: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: __import__("time").strftime(fmt)
    try:
        rendered = env.from_string(template).render(
            messages=[{"role": role, "content": mark} for (role, _), mark in zip(turns, marks)],
            add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token)
    except ChatTemplateError:
        raise
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise ChatTemplateError(f"the model's chat template cannot be rendered: {exc}") from exc
    segments: list[Segment] = []
    rest = rendered
    for (_, text), mark in zip(turns, marks):
        head, found, rest = rest.partition(mark)
        if not found or mark in rest:
            raise ChatTemplateError("the model's chat template rewrites the text it is given; use a GGUF with a"
                                    " standard template")
        segments += [Segment(head, True), Segment(text, False)]
    segments.append(Segment(rest, True))
    return [s for s in segments if s.text]
