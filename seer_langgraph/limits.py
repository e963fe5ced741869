"""Size limits on experiences, enforced at commit with a message that names the limit.

A runaway tool (a 50 MB observation), a model that loops for 500 steps or a request pasted from
a log file should not become a record that every later recall drags along. The pool checks each
experience twice: :meth:`RecordLimits.check` before redaction and truncation (so pathological
inputs are refused before any work is spent on them) and :meth:`RecordLimits.check_stored` on the
record as it will be written (redacted, observations truncated).

Example:
    >>> from seer_langgraph import Experience
    >>> limits = RecordLimits(max_request_chars=10)
    >>> limits.check(Experience(request="short", answer="ok"))
    >>> limits.check(Experience(request="a much longer request", answer="ok"))
    Traceback (most recent call last):
    ...
    seer_langgraph.errors.RecordTooLargeError: experience ...: the request has 21 characters, more than max_request_chars=10 (set RecordLimits(max_request_chars=...) on the pool to change it)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .errors import RecordTooLargeError

if TYPE_CHECKING:  # pragma: no cover
    from .experience import Experience, Step

__all__ = ["RecordLimits", "clip_history_text"]


class RecordLimits(BaseModel):
    """Configurable size limits of one experience (``None`` switches a limit off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_request_chars: int | None = Field(default=32_000, ge=1, description="Characters of the request.")
    max_answer_chars: int | None = Field(default=32_000, ge=1, description="Characters of the final answer.")
    max_steps: int | None = Field(default=100, ge=0, description="Tool steps in one trajectory.")
    max_args_chars: int | None = Field(default=32_000, ge=2, description="Characters of one step's arguments as JSON.")
    max_observation_chars: int | None = Field(
        default=2_000_000, ge=1, description="Characters of one raw observation, before truncation."
    )
    max_record_bytes: int | None = Field(
        default=512_000, ge=256, description="UTF-8 bytes of the stored record as JSON (after redaction and truncation)."
    )
    max_query_chars: int | None = Field(
        default=64_000, ge=100, description="Characters of a recall query; longer histories are clipped, not refused."
    )

    @staticmethod
    def _fail(exp: "Experience", what: str, size: int, limit_name: str, limit: int, unit: str = "characters") -> None:
        raise RecordTooLargeError(
            f"experience {exp.id}: {what} has {size} {unit}, more than {limit_name}={limit} "
            f"(set RecordLimits({limit_name}=...) on the pool to change it)"
        )

    def check(self, exp: "Experience") -> None:
        """Refuse an experience whose raw parts are too large (raises :class:`RecordTooLargeError`)."""
        if self.max_request_chars is not None and len(exp.request) > self.max_request_chars:
            self._fail(exp, "the request", len(exp.request), "max_request_chars", self.max_request_chars)
        if self.max_answer_chars is not None and len(exp.answer) > self.max_answer_chars:
            self._fail(exp, "the answer", len(exp.answer), "max_answer_chars", self.max_answer_chars)
        if self.max_steps is not None and len(exp.steps) > self.max_steps:
            self._fail(exp, "the trajectory", len(exp.steps), "max_steps", self.max_steps, unit="steps")
        for i, step in enumerate(exp.steps, start=1):
            if self.max_observation_chars is not None and len(step.observation) > self.max_observation_chars:
                self._fail(exp, f"step {i} ({step.tool}) observation", len(step.observation), "max_observation_chars", self.max_observation_chars)
            if self.max_args_chars is not None:
                size = len(json.dumps(step.args, ensure_ascii=False, default=str))
                if size > self.max_args_chars:
                    self._fail(exp, f"step {i} ({step.tool}) arguments", size, "max_args_chars", self.max_args_chars)

    def check_stored(self, exp: "Experience") -> None:
        """Refuse a record whose stored JSON would be larger than ``max_record_bytes``."""
        if self.max_record_bytes is None:
            return
        size = len(exp.model_dump_json().encode("utf-8"))
        if size > self.max_record_bytes:
            self._fail(exp, "the stored record", size, "max_record_bytes", self.max_record_bytes, unit="bytes")


def clip_history_text(request: str, steps: Sequence["Step"], max_chars: int | None) -> tuple[str, list["Step"]]:
    """Shorten a recall history to about ``max_chars``: long observations first, then the request.

    Returns the (possibly clipped) request and steps; a history within the limit is unchanged.

    >>> from seer_langgraph.experience import Step
    >>> req, steps = clip_history_text("q", [Step(tool="t", observation="x" * 500)], 200)
    >>> len(steps[0].observation) < 200
    True
    """
    from .experience import trajectory_text

    steps = list(steps)
    if max_chars is None or len(trajectory_text(request, steps)) <= max_chars:
        return request, steps
    budget = max(16, max_chars // (2 * max(1, len(steps))))
    clipped = [s.model_copy(update={"observation": s.observation[:budget] + " …"}) if len(s.observation) > budget else s for s in steps]
    if len(trajectory_text(request, clipped)) > max_chars:
        request = request[: max(16, max_chars // 2)]
        clipped = clipped[-max(1, max_chars // 400) :] if len(trajectory_text(request, clipped)) > max_chars else clipped
    return request, clipped

