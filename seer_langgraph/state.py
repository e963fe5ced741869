"""The graph state SEER adds to a messages state.

Every later node reads what it needs from the state, so no node reaches into another, and
LangGraph Studio shows the whole story: the request, the intent, the steps, the recalled
examples with their s1/s2/s3, the verdict and the committed id.

Example:
    >>> from seer_langgraph.state import merge_steps
    >>> merge_steps([{"tool": "a"}], [{"tool": "b"}])
    [{'tool': 'a'}, {'tool': 'b'}]
    >>> merge_steps([{"tool": "a"}], None)  # None starts a new turn
    []
"""

from __future__ import annotations

from typing import Any, Annotated

from langgraph.graph import MessagesState
from typing_extensions import NotRequired, TypedDict

__all__ = ["SeerFields", "SeerState", "merge_ids", "merge_steps"]


def merge_steps(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Append recorded steps; an update of ``None`` resets the list (a new turn)."""
    if right is None:
        return []
    return list(left or []) + list(right)


def merge_ids(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Union of recalled ids in first-seen order; ``None`` resets (a new turn)."""
    if right is None:
        return []
    return list(dict.fromkeys(list(left or []) + list(right)))


class SeerFields(TypedDict):
    """SEER's own state fields (all optional), mixed into a messages state by :class:`SeerState`
    and into ``create_agent``'s state by the middleware."""

    seer_turn: NotRequired[str | None]
    """Id of the human message that started the current turn."""
    seer_request: NotRequired[str]
    """The request of the current turn."""
    seer_intent: NotRequired[str | None]
    """The intent label chosen once per turn (None when no intent set is configured)."""
    seer_steps: NotRequired[Annotated[list[dict[str, Any]], merge_steps]]
    """Tool steps recorded by the tools node: tool, args, observation, error."""
    seer_examples: NotRequired[list[dict[str, Any]]]
    """The examples recalled before the latest model step, with s1, s2, s3 and score."""
    seer_recalled_ids: NotRequired[Annotated[list[str], merge_ids]]
    """Every experience recalled during the turn (their usage counters are updated at commit)."""
    seer_reference: NotRequired[Any]
    """Optional reference answer for reference-based evaluators."""
    seer_verdict: NotRequired[dict[str, Any] | None]
    """The evaluator's verdict on the finished turn."""
    seer_committed_id: NotRequired[str | None]
    """Id of the experience committed for this turn, if any."""
    seer_commit_status: NotRequired[str | None]
    """What the commit did: created, present, duplicate, spilled (kept for replay) or failed."""
    seer_commit_error: NotRequired[str | None]
    """Why the run was not stored when the commit failed (the evaluator's failure is in the verdict)."""


class SeerState(MessagesState, SeerFields):
    """``MessagesState`` plus SEER's fields (all optional on input)."""
