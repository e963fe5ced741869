"""Chat models from a short spec string: ``"local[:NAME]"`` or ``"openai:NAME"``."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

__all__ = ["load_chat_model"]


def load_chat_model(spec: str, **kwargs: Any) -> BaseChatModel:
    """Build a chat model from a spec string.

    - ``"local"`` -> :class:`~seer_langgraph.local.chat.ChatLocalLlama` with the default model
      (Qwen2.5-Coder-1.5B); ``"local:qwen2.5-coder-1.5b"`` / ``"local:qwen2.5-0.5b"`` pick one.
    - ``"openai:NAME"`` -> ``langchain_openai.ChatOpenAI(model=NAME)`` (reads
      ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` from the environment as usual).

    Extra keyword arguments go to the model's constructor. Nothing is loaded or downloaded
    until the model is first used.

    >>> load_chat_model("local:qwen2.5-0.5b").model
    'qwen2.5-0.5b'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("model spec must be a non-empty string such as 'local' or 'openai:gpt-4o-mini'")
    provider, _, name = spec.strip().partition(":")
    provider = provider.strip().lower()
    name = name.strip()
    if provider == "local":
        from .chat import ChatLocalLlama
        from .weights import DEFAULT_MODEL, get_spec

        model_name = get_spec(name).name if name else DEFAULT_MODEL  # KeyError names the known models
        return ChatLocalLlama(model=model_name, **kwargs)
    if provider == "openai":
        if not name:
            raise ValueError("'openai:' needs a model name, e.g. 'openai:gpt-4o-mini'")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=name, **kwargs)
    raise ValueError(f"unknown model provider {provider!r} in {spec!r}; use 'local[:NAME]' or 'openai:NAME'")
