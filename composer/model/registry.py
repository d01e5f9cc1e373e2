"""Resolve a model spec string to a ChatModel.

    embedded                      SmolLM2-135M-Instruct shipped inside a PyPI package (CPU, offline)
    xcomposer2[:HUB_ID_OR_PATH]   native InternLM-XComposer2 (GPU)
    hf:HUB_ID_OR_PATH             any transformers causal LM
    openai:URL[,URL...][#MODEL][?images=on|off&dialect=generic|xcomposer]
                                  OpenAI-compatible servers (LMDeploy, vLLM, llama.cpp server); several
                                  URLs spread the load and survive one going down; a model id naming
                                  xcomposer gets the xcomposer dialect and sees the photos
"""
from __future__ import annotations

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
    if kind == "hf":
        raise ModelSpecError(f"model {spec!r}: the {kind} backend is not built yet; use 'embedded'")
    raise ModelSpecError(
        f"unknown model spec {spec!r}; expected embedded, xcomposer2[:ID], hf:ID or openai:URL[,URL...][#MODEL]"
    )
