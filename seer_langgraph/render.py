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
from typing import Sequence

from .pool import RecalledExperience

__all__ = ["EXAMPLES_HEADER", "render_examples", "system_prompt_with_examples"]

EXAMPLES_HEADER = (
    "Worked examples of similar tasks that were solved correctly before. Follow their method "
    "(which tools, in which order, which values are passed on), but use the values of the current task."
)


def render_examples(recalled: Sequence[RecalledExperience], observation_chars: int = 600) -> str:
    """Text of the worked examples, best first; empty string when there are none."""
    if not recalled:
        return ""
    blocks = [EXAMPLES_HEADER]
    for i, r in enumerate(recalled, start=1):
        # keep the values that later calls and the answer were computed from
        exp = r.experience.truncated(observation_chars) if observation_chars else r.experience
        lines = [
            "",
            f"## Example {i} (score {r.score:.2f}: similarity {r.s1:.2f}, tool overlap {r.s2:.2f}, same intent {int(r.s3)})",
            f"Request: {exp.request.strip()}",
        ]
        for n, step in enumerate(exp.steps, start=1):
            args = json.dumps(step.args, ensure_ascii=False, sort_keys=True, default=str)
            obs = step.observation
            flag = " (error)" if step.error else ""
            lines.append(f"Step {n}: call {step.tool} with {args}")
            lines.append(f"  result{flag}: {obs}")
        lines.append(f"Final answer: {exp.answer.strip()}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def system_prompt_with_examples(base: str, recalled: Sequence[RecalledExperience], observation_chars: int = 600) -> str:
    """``base`` followed by the rendered examples (``base`` alone when nothing was recalled)."""
    examples = render_examples(recalled, observation_chars)
    return f"{base}\n\n{examples}" if examples else base
