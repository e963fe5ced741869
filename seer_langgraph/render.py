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
from typing import Literal, Sequence

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


def render_examples(
    recalled: Sequence[RecalledExperience],
    observation_chars: int = 600,
    style: RenderStyle = "json",
    include_errors: bool = False,
) -> str:
    """Text of the worked examples, best first; empty string when there are none.

    ``style`` sets how a call is written: ``json`` (``{"name": ..., "arguments": ...}``, the
    default), ``hermes`` (inside ``<tool_call>`` tags, the native format of Qwen-style models) or
    ``plain`` prose. A model that copies an example then writes a call its parser understands.
    Steps that failed are left out unless ``include_errors``.
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
        for step in exp.steps:
            if step.error and not include_errors:
                continue
            n += 1
            flag = " (error)" if step.error else ""
            lines.append(f"Step {n} tool call: {_call(step.tool, step.args, style)}")
            lines.append(f"Observation{flag}: {_result(step.observation, style)}")
        lines.append(f"Final answer: {exp.answer.strip()}")
        blocks.append("\n".join(lines))
    blocks.append("\n" + EXAMPLES_FOOTER)
    return "\n".join(blocks)


def system_prompt_with_examples(
    base: str, recalled: Sequence[RecalledExperience], observation_chars: int = 600, style: RenderStyle = "json"
) -> str:
    """``base`` followed by the rendered examples (``base`` alone when nothing was recalled)."""
    examples = render_examples(recalled, observation_chars, style)
    return f"{base}\n\n{examples}" if examples else base
