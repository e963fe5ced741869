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

__all__ = ["EXAMPLES_FOOTER", "EXAMPLES_HEADER", "RenderStyle", "example_next_tool", "next_step_note", "render_examples", "system_prompt_with_examples"]

EXAMPLES_HEADER = (
    "Worked examples of similar tasks that were solved correctly before. Follow their method "
    "(which tools, in which order, which values are passed on), but use the values of the current task."
)
EXAMPLES_FOOTER = (
    "End of the examples. The current task is different: its names, ids and numbers differ, so call the "
    "tools yourself to get its values. Begin with your first tool call."
)

EXAMPLES_FOOTER_CONTINUE = (
    "End of the examples. The current task is different: its names, ids and numbers differ, so take its values "
    "from its own request and observations."
)

RenderStyle = Literal["json", "hermes", "plain"]


def _arg_sources(args: dict, request: str, observations: list[tuple[int, str]]) -> str:
    parts = []
    for key, value in args.items():
        srcs = list(dict.fromkeys(src for v in _scalars(value) if (src := _source(v, request, observations))))
        if srcs:
            where = srcs[0] if len(srcs) == 1 else ", ".join(srcs[:-1]) + " and " + srcs[-1]
            parts.append(f"{key} from {where}")
        else:
            parts.append(key)
    return ", ".join(parts)


def _matching(recalled: Sequence[RecalledExperience], done: list[str], include_errors: bool) -> tuple[int, list[Any]] | None:
    """The first example whose successful tool chain starts with ``done``, and its steps."""
    for i, r in enumerate(recalled, start=1):
        steps = [st for st in r.experience.steps if include_errors or not st.error]
        if [st.tool for st in steps][: len(done)] == done:
            return i, steps
    return None


def example_next_tool(recalled: Sequence[RecalledExperience], done: Sequence[str]) -> str | None:
    """The tool the best-matching example called next at this point, or ``None``.

    ``None`` when no recalled example went the same way so far, or the matching one answered here.

    >>> from seer_langgraph.experience import Experience, Step
    >>> from seer_langgraph.pool import RecalledExperience
    >>> exp = Experience(request="r", steps=[Step(tool="find"), Step(tool="calculator")], answer="1")
    >>> r = [RecalledExperience(experience=exp, s1=1, s2=1, s3=0, score=2)]
    >>> example_next_tool(r, ["find"]), example_next_tool(r, ["find", "calculator"]), example_next_tool(r, ["other"])
    ('calculator', None, None)
    """
    done = list(done)
    match = _matching(recalled, done, False)
    if match is None or len(match[1]) <= len(done):
        return None
    return match[1][len(done)].tool


def next_step_note(recalled: Sequence[RecalledExperience], done: Sequence[str], include_errors: bool = False) -> str:
    """The rest of the best-matching example's method, from where the current run stands.

    ``done`` is the current turn's successful tool chain so far. The first example whose method
    starts with the same chain is outlined from that point: each remaining call with where its
    arguments came from (never the example's values), then where the answer came from. Stepwise
    recall shows examples before every step; this line tells a small model which step it is at,
    so it continues a multi-step method instead of copying an example's last call or answering
    after the first call.

    >>> from seer_langgraph.experience import Experience, Step
    >>> from seer_langgraph.pool import RecalledExperience
    >>> exp = Experience(request="cost of 3 'red pen'?", steps=[Step(tool="find", args={"name": "red pen"}, observation='{"price": 2.5}'),
    ...     Step(tool="calculator", args={"expression": "3 * 2.5"}, observation="7.5")], answer="7.5")
    >>> r = RecalledExperience(experience=exp, s1=0.9, s2=1.0, s3=0.0, score=1.9)
    >>> print(next_step_note([r], []))
    Example 1's method: step 1 find (name from the request) -> step 2 calculator (expression from the request and step 1's observation) -> answer from step 2's observation.
    >>> print(next_step_note([r], ["find"]))
    The current task has made 1 tool call so far (find). Example 1's method from here: step 2 calculator (expression from the request and step 1's observation) -> answer from step 2's observation.
    >>> print(next_step_note([r], ["find", "calculator"]))
    The current task has made 2 tool calls so far (find -> calculator). Example 1 gave its final answer at this point (from step 2's observation).
    """
    done = list(done)
    if not recalled:
        return ""
    head = ""
    if done:
        calls = f"{len(done)} tool call{'s' if len(done) > 1 else ''}"
        head = f"The current task has made {calls} so far ({' -> '.join(done)}). "
    match = _matching(recalled, done, include_errors)
    if match is not None:
        i, steps = match
        exp = recalled[i - 1].experience
        seen = [(n, st.observation) for n, st in enumerate(steps, start=1)]
        src = _source(exp.answer.strip(), exp.request, seen) if exp.answer.strip() else None
        answer = f"answer from {src}" if src else "answer"
        if len(steps) == len(done):
            return f"{head}Example {i} gave its final answer at this point" + (f" (from {src})." if src else ".")
        rest = []
        for n, st in enumerate(steps, start=1):
            if n > len(done):
                args = _arg_sources(st.args, exp.request, seen[: n - 1])
                rest.append(f"step {n} {st.tool}" + (f" ({args})" if args else ""))
        lead = f"Example {i}'s method from here" if done else f"Example {i}'s method"
        return f"{head}{lead}: {' -> '.join(rest + [answer])}."
    return head.strip()


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
    done: Sequence[str] = (),
) -> str:
    """Text of the worked examples, best first; empty string when there are none.

    ``style`` sets how a call is written: ``json`` (``{"name": ..., "arguments": ...}``, the
    default), ``hermes`` (inside ``<tool_call>`` tags, the native format of Qwen-style models) or
    ``plain`` prose. A model that copies an example then writes a call its parser understands.
    Steps that failed are left out unless ``include_errors``. With ``annotate`` each call and the
    answer say where their values came from (the request or an earlier observation), so a model
    learns the method, not the example's numbers. ``done`` (the current turn's tool chain so far)
    ends the examples with :func:`next_step_note` instead of "begin with your first tool call".
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
    progress = next_step_note(recalled, done, include_errors)
    footer = EXAMPLES_FOOTER_CONTINUE if done else EXAMPLES_FOOTER
    blocks.append("\n" + (f"{footer} {progress}" if progress else footer))
    return "\n".join(blocks)


def system_prompt_with_examples(
    base: str, recalled: Sequence[RecalledExperience], observation_chars: int = 600, style: RenderStyle = "json", done: Sequence[str] = ()
) -> str:
    """``base`` followed by the rendered examples (``base`` alone when nothing was recalled).

    ``done``: the current turn's successful tool chain so far (see :func:`next_step_note`).
    """
    examples = render_examples(recalled, observation_chars, style, done=done)
    return f"{base}\n\n{examples}" if examples else base

