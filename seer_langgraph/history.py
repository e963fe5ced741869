"""Reading a run out of a message list: the request, the tool steps, the final answer.

The recall node builds H_t from the messages with these helpers, and the commit node and the
middleware read the finished trajectory the same way, so both see one definition of a step.

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    >>> msgs = [
    ...     HumanMessage("price of item 3?"),
    ...     AIMessage("", tool_calls=[{"name": "get_item", "args": {"id": 3}, "id": "c1"}]),
    ...     ToolMessage("9.5", tool_call_id="c1"),
    ...     AIMessage("It costs 9.5."),
    ... ]
    >>> run = read_run(msgs)
    >>> run.request, [s.tool for s in run.steps], run.answer
    ('price of item 3?', ['get_item'], 'It costs 9.5.')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from .experience import Step

__all__ = ["RunView", "message_text", "read_run", "turn_start"]


def message_text(message: BaseMessage) -> str:
    """The plain text of a message (text blocks joined; other blocks dropped)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def turn_start(messages: Sequence[BaseMessage]) -> int:
    """Index of the last human message (the start of the current turn), or -1."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i
    return -1


def _observation(msg: ToolMessage) -> str:
    content = msg.content
    if isinstance(content, str):
        return content
    text = message_text(msg)
    return text if text else json.dumps(content, default=str)


@dataclass
class RunView:
    """The current turn of a conversation as SEER sees it."""

    request: str
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    pending_calls: int = 0
    model_steps: int = 0


def read_run(messages: Sequence[BaseMessage]) -> RunView:
    """Read the current turn: request (last human message), tool steps in call order, final answer.

    A step is a tool call with its observation; a call with no tool message yet is pending.
    The answer is the content of a final AI message that makes no tool call.
    """
    start = turn_start(messages)
    request = message_text(messages[start]) if start >= 0 else ""
    results: dict[str, ToolMessage] = {}
    for m in messages[start + 1 :]:
        if isinstance(m, ToolMessage):
            results[m.tool_call_id] = m
    view = RunView(request=request)
    for m in messages[start + 1 :]:
        if not isinstance(m, AIMessage):
            continue
        view.model_steps += 1
        calls: list[dict[str, Any]] = list(m.tool_calls) + [
            {"name": c.get("name") or "?", "args": {"raw": c.get("args")}, "id": c.get("id")} for c in m.invalid_tool_calls
        ]
        for call in calls:
            res = results.get(call.get("id") or "")
            if res is None:
                view.pending_calls += 1
                continue
            view.steps.append(
                Step(
                    tool=call.get("name") or "?",
                    args=dict(call.get("args") or {}),
                    observation=_observation(res),
                    error=res.status == "error",
                )
            )
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and not last.tool_calls and not last.invalid_tool_calls:
        view.answer = message_text(last)
    return view
