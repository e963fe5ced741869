"""Recalled experiences rendered as worked examples for the system prompt.

Examples are plain text in the system prompt, never fake chat turns: a model cannot confuse a
past example's tool results with the current run's.

Example:
    >>> from seer_langgraph.experience import Experience, Step
    >>> from seer_langgraph.pool import RecalledExperience
    >>> exp = Experience(request="price of item 3?", steps=[Step(tool="get_item", args={"id": 3}, observation="9.5")], answer="9.5")
    >>> text = render_examples([RecalledExperience(experience=exp, s1=0.9, s2=1.0, s3=0.0, score=1.9)])
    >>> print(text.splitlines()[3])
    Request: price of item 3?
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Sequence

from .pool import RecalledExperience

__all__ = ["EXAMPLES_FOOTER", "EXAMPLES_HEADER", "RenderStyle", "render_examples", "system_prompt_with_examples"]

EXAMPLES_HEADER = (
    "Worked examples of similar tasks that were solved correctly before. Follow their method "
    "(which tools, in which order, which values are passed on), but use the values of the current task."
)
EXAMPLES_FOOTER = (
    "End of the examples. The current task is different: its names, ids and numbers differ, so call the "
    "tools yourself to get its values. Begin with your first tool call."
)

RenderStyle = Literal["json", "hermes", "plain"]


def _call(tool: str, args: dict, style: RenderStyle) -> str:
    if style == "plain":
        return f"call {tool} with {json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)}"
    call = json.dumps({"name": tool, "arguments": args}, ensure_ascii=False, default=str)
    return f"<tool_call>\n{call}\n</tool_call>" if style == "hermes" else call


def _result(obs: str, style: RenderStyle) -> str:
    return f"<tool_response>\n{obs}\n</tool_response>" if style == "hermes" else obs


def _scalars(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _scalars(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _scalars(v)]
    if value is None or isinstance(value, bool):
        return []
    text = str(value).strip()
    out = [text] if len(text) >= 2 else []
    if isinstance(value, str):  # numbers inside an expression such as "9 * 110.29"
        out += [m for m in _NUMBER.findall(text) if m != text]
    return out


_NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?![\w.])")


def _source(value: str, request: str, observations: list[tuple[int, str]]) -> str | None:
    """Where ``value`` first appears: the request or an earlier step's observation."""
    for n, obs in reversed(observations):
        if re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", obs):
            return f"step {n}'s observation"
    if re.search(rf"(?<![\w.]){re.escape(value.lower())}(?![\w]|\.\d)", request.lower()):
        return "the request"
    return None


def _provenance(values: list[str], request: str, observations: list[tuple[int, str]]) -> str:
    notes = []
    for v in dict.fromkeys(values):
        src = _source(v, request, observations)
        if src:
            notes.append(f"{v} from {src}")
    return f"   (values: {'; '.join(notes)})" if notes else ""


def render_examples(
    recalled: Sequence[RecalledExperience],
    observation_chars: int = 600,
    style: RenderStyle = "json",
    include_errors: bool = False,
    annotate: bool = True,
) -> str:
    """Text of the worked examples, best first; empty string when there are none.

    ``style`` sets how a call is written: ``json`` (``{"name": ..., "arguments": ...}``, the
    default), ``hermes`` (inside ``<tool_call>`` tags, the native format of Qwen-style models) or
    ``plain`` prose. A model that copies an example then writes a call its parser understands.
    Steps that failed are left out unless ``include_errors``. With ``annotate`` each call and the
    answer say where their values came from (the request or an earlier observation), so a model
    learns the method, not the example's numbers.
    """
    if style not in ("json", "hermes", "plain"):
        raise ValueError(f"unknown render style {style!r}; use 'json', 'hermes' or 'plain'")
    if not recalled:
        return ""
    blocks = [EXAMPLES_HEADER]
    for i, r in enumerate(recalled, start=1):
        # keep the values that later calls and the answer were computed from
        exp = r.experience.truncated(observation_chars) if observation_chars else r.experience
        lines = ["", f"## Example {i}", f"Request: {exp.request.strip()}"]
        n = 0
        seen: list[tuple[int, str]] = []
        for step in exp.steps:
            if step.error and not include_errors:
                continue
            n += 1
            flag = " (error)" if step.error else ""
            note = _provenance(_scalars(step.args), exp.request, seen) if annotate else ""
            lines.append(f"Step {n} tool call: {_call(step.tool, step.args, style)}{note}")
            lines.append(f"Observation{flag}: {_result(step.observation, style)}")
            seen.append((n, step.observation))
        answer = exp.answer.strip()
        src = _source(answer, exp.request, seen) if annotate and answer else None
        lines.append(f"Final answer: {answer}" + (f"   (from {src})" if src else ""))
        blocks.append("\n".join(lines))
    blocks.append("\n" + EXAMPLES_FOOTER)
    return "\n".join(blocks)


def system_prompt_with_examples(
    base: str, recalled: Sequence[RecalledExperience], observation_chars: int = 600, style: RenderStyle = "json"
) -> str:
    """``base`` followed by the rendered examples (``base`` alone when nothing was recalled)."""
    examples = render_examples(recalled, observation_chars, style)
    return f"{base}\n\n{examples}" if examples else base
