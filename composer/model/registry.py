"""Resolve a model spec string to a ChatModel.

    embedded                      SmolLM2-135M-Instruct shipped inside a PyPI package (CPU, offline)
    xcomposer2[:HUB_ID_OR_PATH]   native InternLM-XComposer2 (GPU)
    gguf:PATH.gguf                any local GGUF chat model on the same llama.cpp runtime (CPU)
    openai:URL[,URL...][#MODEL][?images=on|off&dialect=generic|xcomposer]
                                  OpenAI-compatible servers (LMDeploy, vLLM, llama.cpp server); several
                                  URLs spread the load and survive one going down; a model id naming
                                  xcomposer gets the xcomposer dialect and sees the photos
"""
from __future__ import annotations

from pathlib import Path

from composer.model.base import ChatModel


class ModelSpecError(ValueError):
    pass


def load_model(spec: str = "embedded", **kwargs) -> ChatModel:
    kind, _, arg = spec.partition(":")
    if kind == "embedded":
        from composer.model.embedded import EmbeddedModel

        return EmbeddedModel(**kwargs)
    if kind == "xcomposer2":
        try:
            from composer.model.xcomposer2.backend import XComposer2Chat
        except ImportError as exc:  # pragma: no cover - depends on what is installed
            raise ModelSpecError(f"model {spec!r}: the XComposer2 backend is not available ({exc})") from exc
        return XComposer2Chat.load(arg or "internlm/internlm-xcomposer2-7b", **kwargs)
    if kind == "openai":
        from composer.model.remote import RemoteChatModel

        return RemoteChatModel(arg, **kwargs)
    if kind == "gguf":
        from composer.model.embedded import GGUFModel

        if not arg:
            raise ModelSpecError("model 'gguf:': give the path of a .gguf file, e.g. gguf:~/models/qwen2.5-3b.gguf")
        return GGUFModel(Path(arg).expanduser(), **kwargs)
    raise ModelSpecError(
        f"unknown model spec {spec!r}; expected embedded, gguf:PATH, xcomposer2[:ID] or openai:URL[,URL...][#MODEL]"
    )
