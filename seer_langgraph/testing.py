"""Test helpers: a scripted chat model and a guard against real model calls and network use.

:class:`ScriptedChatModel` replays a script of replies (text, tool calls, or functions of the
prompt), supports ``bind_tools`` and records every prompt it was sent, so tests can check what
the model saw (e.g. the recalled examples in the system prompt).

Example:
    >>> from seer_langgraph.testing import ScriptedChatModel, tool_call
    >>> m = ScriptedChatModel(responses=[tool_call("add", a=1, b=2), "3"])
    >>> m.invoke("1+2?").tool_calls[0]["name"], m.invoke("again").content
    ('add', '3')
    >>> len(m.prompts)
    2
"""

from __future__ import annotations

import itertools
import socket
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = ["ModelRequestsForbidden", "ScriptedChatModel", "forbid_network", "tool_call"]

Reply = Union[str, AIMessage, Callable[[list[BaseMessage]], Union[str, AIMessage]]]
_ids = itertools.count(1)


def tool_call(tool_name: str, /, **args: Any) -> AIMessage:
    """An AI message that calls one tool (``tool_call("find", name="x")`` works: the tool name is positional)."""
    return AIMessage("", tool_calls=[{"name": tool_name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}])


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays ``responses`` in order (cycling with ``cycle=True``).

    A response is a string, an ``AIMessage`` or a function ``messages -> str | AIMessage``.
    ``prompts`` keeps every message list it was sent; ``bound_tools`` the last tools bound.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: Sequence[Any] = Field(default_factory=list, description="str, AIMessage or messages -> str | AIMessage")
    cycle: bool = False
    model: str = "scripted"
    _index: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _prompts: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _bound: list[Any] = PrivateAttr(default_factory=list)
    _bind_kwargs: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def prompts(self) -> list[list[BaseMessage]]:
        return self._prompts

    @property
    def bound_tools(self) -> list[Any]:
        return self._bound

    @property
    def bind_kwargs(self) -> list[dict[str, Any]]:
        """The keyword arguments of every ``bind_tools`` call (e.g. ``tool_choice``)."""
        return self._bind_kwargs

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":
        """Record the tools and return the same model (the script decides what it calls)."""
        self._bound = list(tools)
        self._bind_kwargs.append(dict(kwargs))
        return self

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
        """Not supported: callers fall back to plain replies (as with many real models)."""
        raise NotImplementedError("ScriptedChatModel has no structured output; script a plain reply instead")

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            self._prompts.append(list(messages))
            if not self.responses:
                raise RuntimeError("ScriptedChatModel has no responses")
            if self._index >= len(self.responses):
                if not self.cycle:
                    raise RuntimeError(f"ScriptedChatModel ran out of responses after {len(self.responses)} calls")
                self._index = 0
            reply = self.responses[self._index]
            self._index += 1
        if callable(reply) and not isinstance(reply, AIMessage):
            reply = reply(messages)
        if isinstance(reply, str):
            return AIMessage(reply)
        # fresh ids so a cycled script never repeats a tool_call_id
        calls = [{**c, "id": f"call_{next(_ids)}"} for c in reply.tool_calls]
        return AIMessage(content=reply.content, tool_calls=calls, invalid_tool_calls=list(reply.invalid_tool_calls))

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])


class ModelRequestsForbidden(RuntimeError):
    """Raised when code under test tries to reach a non-loopback address."""


_LOOPBACK = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


@contextmanager
def forbid_network() -> Iterator[None]:
    """Within the block, any socket connection to a non-loopback address raises.

    Guards tests against real model calls (OpenAI, hubs) and any other network use.
    """
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(addr: Any) -> None:
        host = addr[0] if isinstance(addr, tuple) else addr
        if isinstance(host, str) and (host.startswith(_LOOPBACK) or host.startswith("/")):
            return
        if isinstance(addr, (str, bytes)):  # unix socket path
            return
        raise ModelRequestsForbidden(f"network access to {addr!r} is forbidden in tests (loopback only)")

    def connect(self: socket.socket, addr: Any) -> Any:
        check(addr)
        return real_connect(self, addr)

    def connect_ex(self: socket.socket, addr: Any) -> Any:
        check(addr)
        return real_connect_ex(self, addr)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
