"""The experience record: one successful (or judged) agent trajectory.

An :class:`Experience` is what the pool stores and what recall shows the model as a worked
example: the request, the ordered tool steps with their arguments and observations, the final
answer, the verdict that let it in, and usage counters for later pruning.

Example:
    >>> from seer_langgraph.experience import Experience, Step
    >>> exp = Experience(
    ...     request="What is 2 + 3?",
    ...     steps=[Step(tool="add", args={"a": 2, "b": 3}, observation="5")],
    ...     answer="5",
    ... )
    >>> exp.tools
    ['add']
    >>> exp.id == Experience(request="What is 2 + 3?", steps=exp.steps, answer="5").id
    True
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_jsonable_python

__all__ = [
    "DEFAULT_TENANT",
    "Experience",
    "Step",
    "Usage",
    "Verdict",
    "trajectory_text",
    "truncate_observation",
    "validate_tenant",
]

DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
# A fixed namespace so that ids are stable across machines and versions.
_ID_NAMESPACE = uuid.UUID("6f1c9a52-6c1e-4f43-9a55-3b5c2f0d8e71")


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name, else raise ``ValueError``.

    A tenant is 1-128 characters from letters, digits and ``_ . : @ -``, starting with a letter or
    digit. The rule keeps tenant names safe in filters, file names and logs.

    >>> validate_tenant("acme-prod")
    'acme-prod'
    >>> validate_tenant("a b")
    Traceback (most recent call last):
    ...
    ValueError: invalid tenant 'a b': use 1-128 characters from letters, digits and _ . : @ -, starting with a letter or digit
    """
    if not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
        raise ValueError(
            f"invalid tenant {tenant!r}: use 1-128 characters from letters, digits and _ . : @ -, "
            "starting with a letter or digit"
        )
    return tenant


def _clean_text(value: Any) -> Any:
    """Values made storable as JSON: lone UTF-16 surrogates (from broken decoders) become U+FFFD,
    bytes are decoded (invalid bytes replaced), dict keys become strings, and anything JSON cannot
    hold becomes its JSON form or, failing that, its ``str``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {(_clean_text(k) if isinstance(k, str) else str(k)): _clean_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_text(v) for v in value]
    try:
        return _clean_text(to_jsonable_python(value))
    except Exception:
        return _clean_text(str(value))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _scalar_strings(value: Any) -> list[str]:
    """All scalar values inside ``value`` (nested args), as strings, longest first."""
    out: list[str] = []
    if isinstance(value, dict):
        for v in value.values():
            out.extend(_scalar_strings(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            out.extend(_scalar_strings(v))
    elif value is not None and not isinstance(value, bool):
        text = str(value).strip()
        if text:
            out.append(text)
    return out


def truncate_observation(observation: str, max_chars: int, keep: list[str] | tuple[str, ...] = ()) -> str:
    """Shorten ``observation`` to about ``max_chars`` characters, keeping what later steps used.

    The head of the observation is kept, and so is a window around every value in ``keep`` (the
    arguments of later steps and the final answer) that occurs in the part that would be cut, so a
    worked example never loses the number its next call or its answer was computed from.

    >>> truncate_observation("x" * 50 + " price=42.5 " + "y" * 50, 20, keep=["42.5"])
    'xxxxxxxxxxxxxxxxxxxx … price=42.5 yyyyy …'
    """
    if max_chars <= 0 or len(observation) <= max_chars:
        return observation
    head = observation[:max_chars]
    windows: list[tuple[int, int]] = []
    for value in sorted(set(keep), key=len, reverse=True):
        if len(value) < 2 or value in head:
            continue
        start = observation.find(value, max_chars)
        if start < 0:
            continue
        windows.append((max(max_chars, start - 6), min(len(observation), start + len(value) + 6)))
    if not windows:
        return head + " …"
    windows.sort()
    merged: list[list[int]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    parts = [head] + [observation[a:b] for a, b in merged]
    tail = " …" if merged[-1][1] < len(observation) else ""
    return " … ".join(parts) + tail


class Step(BaseModel):
    """One tool call of a trajectory: the tool, its arguments and what it returned."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, description="Name of the tool that was called.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the call.")
    observation: str = Field(default="", description="What the tool returned (possibly truncated).")
    error: bool = Field(default=False, description="True when the tool raised or rejected the call.")

    @field_validator("tool", "args", "observation", mode="before")
    @classmethod
    def _storable(cls, v: Any) -> Any:
        return _clean_text(v)


class Verdict(BaseModel):
    """An evaluator's judgement of a finished run."""

    model_config = ConfigDict(extra="forbid")

    success: bool
    source: str = Field(default="unknown", description="Which evaluator decided, e.g. 'reference:numeric'.")
    score: float | None = None
    reason: str = ""


class Usage(BaseModel):
    """How often an experience was recalled and how the runs that recalled it ended."""

    model_config = ConfigDict(extra="forbid")

    recalled: int = 0
    succeeded: int = 0
    failed: int = 0
    duplicates: int = Field(default=0, description="Near-duplicate commits merged into this record.")


class Experience(BaseModel):
    """A trajectory in the experience pool.

    The id is derived from the content hash (tenant, request, intent, steps, answer), so
    committing the same trajectory twice is a no-op and ids never collide by accident.
    """

    model_config = ConfigDict(extra="forbid")

    request: str = Field(description="The user's initial request.")
    steps: list[Step] = Field(default_factory=list)
    answer: str = ""
    intent: str | None = None
    tenant: str = DEFAULT_TENANT
    verdict: Verdict = Field(default_factory=lambda: Verdict(success=True, source="unspecified"))
    usage: Usage = Field(default_factory=Usage)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    content_hash: str = ""
    id: str = ""
    schema_version: Literal[1] = 1

    @field_validator("request", "answer", "intent", "metadata", mode="before")
    @classmethod
    def _storable(cls, v: Any) -> Any:
        return _clean_text(v)

    @field_validator("request")
    @classmethod
    def _request_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("request is empty: an experience needs the user's request")
        return v

    @field_validator("tenant")
    @classmethod
    def _tenant_ok(cls, v: str) -> str:
        return validate_tenant(v)

    @model_validator(mode="after")
    def _derive_ids(self) -> "Experience":
        digest = self.compute_hash()
        if self.content_hash and self.content_hash != digest:
            raise ValueError(
                f"content_hash {self.content_hash!r} does not match the record's content ({digest!r}): "
                "the record was edited or corrupted"
            )
        expected_id = str(uuid.uuid5(_ID_NAMESPACE, digest))
        if self.id and self.id != expected_id:
            raise ValueError(f"id {self.id!r} does not match the record's content hash (expected {expected_id!r})")
        object.__setattr__(self, "content_hash", digest)
        object.__setattr__(self, "id", expected_id)
        return self

    @property
    def tools(self) -> list[str]:
        """The ordered tool chain u1 -> u2 -> ... -> un."""
        return [s.tool for s in self.steps]

    def compute_hash(self) -> str:
        """SHA-256 of the trajectory's content (not of counters, timestamps or verdict)."""
        body = {
            "tenant": self.tenant,
            "request": self.request.strip(),
            "intent": self.intent,
            "steps": [s.model_dump(mode="json") for s in self.steps],
            "answer": self.answer.strip(),
        }
        return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()

    def trajectory_text(self) -> str:
        """The text whose embedding is E_traj (see :func:`trajectory_text`)."""
        return trajectory_text(self.request, self.steps, self.answer)

    def truncated(self, max_observation_chars: int) -> "Experience":
        """A copy whose observations are shortened, keeping values later steps or the answer used."""
        if max_observation_chars <= 0 or all(len(s.observation) <= max_observation_chars for s in self.steps):
            return self  # nothing to cut (re-validating an unchanged record cost ~180 us per commit)
        new_steps = []
        for i, step in enumerate(self.steps):
            later: list[str] = []
            for s in self.steps[i + 1 :]:
                later.extend(_scalar_strings(s.args))
            later.extend(re.findall(r"[-+]?\d[\d,]*\.?\d*|\b[A-Z0-9][A-Za-z0-9_#-]{2,}\b", self.answer))
            obs = truncate_observation(step.observation, max_observation_chars, later)
            new_steps.append(step.model_copy(update={"observation": obs}))
        data = self.model_dump()
        data["steps"] = [s.model_dump() for s in new_steps]
        data["content_hash"] = ""
        data["id"] = ""
        return Experience.model_validate(data)


def _format_args(args: dict[str, Any]) -> str:
    return _canonical(args)


def trajectory_text(request: str, steps: list[Step] | tuple[Step, ...] = (), answer: str | None = None) -> str:
    """Serialise a (partial) trajectory to the text that is embedded.

    The same function serialises the stored trajectory (for E_traj) and the history H_t at step t
    (for the recall query), so the two live in the same space.

    >>> trajectory_text("How much is order 7?", [Step(tool="get_order", args={"id": 7}, observation="$12")])
    'Request: How much is order 7?\\nCall get_order {"id":7} -> $12'
    """
    lines = [f"Request: {request.strip()}"]
    for s in steps:
        lines.append(f"Call {s.tool} {_format_args(s.args)} -> {s.observation}")
    if answer:
        lines.append(f"Answer: {answer.strip()}")
    return "\n".join(lines)
