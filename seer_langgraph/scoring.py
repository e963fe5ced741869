"""The SEER score and the brute-force reference scorer: the definition of a correct recall.

score = w1 * s1 + w2 * s2 + w3 * s3, where at step t with history H_t:

- s1 = cosine(embed(H_t), the candidate's vector) (trajectory vector in ``stepwise`` mode,
  request vector in ``query`` mode);
- s2 = |tools used in H_t ∩ candidate tools| / |tools used in H_t| over *sets* (0 before any call);
- s3 = 1 if the candidate's intent equals the current intent, else 0 (0 when no intent is set).

Ranking is by score descending, ties broken by id ascending, so every backend returns the same
list. Every fast path in the library is tested against :func:`reference_top_k`.

Example:
    >>> import numpy as np
    >>> from seer_langgraph.scoring import Candidate, RecallQuery, reference_top_k
    >>> cands = [
    ...     Candidate(id="a", vector=np.array([1.0, 0.0]), tools=("search",), intent="refund"),
    ...     Candidate(id="b", vector=np.array([0.0, 1.0]), tools=("lookup",), intent="cancel"),
    ... ]
    >>> q = RecallQuery(vector=np.array([0.8, 0.6]), tools=("lookup",), intent="cancel", k=1)
    >>> [(r.id, round(r.score, 2)) for r in reference_top_k(q, cands)]
    [('b', 2.6)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Candidate",
    "RecallMode",
    "RecallQuery",
    "ScoreBreakdown",
    "SeerWeights",
    "coverage",
    "normalize",
    "rank_key",
    "reference_top_k",
    "score_candidate",
]

RecallMode = Literal["stepwise", "query"]


class SeerWeights(BaseModel):
    """Weights of the three SEER terms (all 1.0 in the paper). Must be finite and >= 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trajectory: float = Field(default=1.0, ge=0.0, description="w1: weight of trajectory similarity s1.")
    toolchain: float = Field(default=1.0, ge=0.0, description="w2: weight of toolchain coverage s2.")
    intent: float = Field(default=1.0, ge=0.0, description="w3: weight of intent alignment s3.")

    @field_validator("trajectory", "toolchain", "intent")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"weight must be finite, got {v}")
        return v


def normalize(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return ``vector`` as a unit-length float64 array; raise ``ValueError`` on zero or non-finite."""
    arr = np.asarray(vector, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("embedding vector is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError("embedding vector contains NaN or infinity")
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise ValueError("embedding vector has zero length; cannot compute cosine similarity")
    return arr / norm


def coverage(current_tools: Iterable[str], candidate_tools: Iterable[str]) -> float:
    """Toolchain coverage s2 over sets; 0 when no tool has been used yet.

    >>> coverage(["a", "a", "b"], ["b", "c"])
    0.5
    >>> coverage([], ["b"])
    0.0
    """
    cur = set(current_tools)
    if not cur:
        return 0.0
    return len(cur & set(candidate_tools)) / len(cur)


@dataclass(frozen=True)
class RecallQuery:
    """What recall knows at step t: the query vector, the tools used so far, the current intent."""

    vector: np.ndarray
    tools: tuple[str, ...] = ()
    intent: str | None = None
    k: int = 4
    min_score: float | None = None
    weights: SeerWeights = field(default_factory=SeerWeights)
    mode: RecallMode = "stepwise"

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"k must be >= 0, got {self.k}")
        if self.mode not in ("stepwise", "query"):
            raise ValueError(f"mode must be 'stepwise' or 'query', got {self.mode!r}")
        object.__setattr__(self, "vector", normalize(self.vector))
        object.__setattr__(self, "tools", tuple(dict.fromkeys(self.tools)))

    @property
    def vector_name(self) -> str:
        """Which stored vector s1 compares with: ``traj`` (stepwise) or ``query`` (query mode)."""
        return "traj" if self.mode == "stepwise" else "query"

    def max_bonus(self) -> float:
        """The largest value w2*s2 + w3*s3 can take for any candidate (used by exactness bounds)."""
        bonus = 0.0
        if self.tools:
            bonus += self.weights.toolchain
        if self.intent is not None:
            bonus += self.weights.intent
        return bonus


@dataclass(frozen=True)
class Candidate:
    """A pool record as the scorer sees it: id, the compared vector, its tool set and intent."""

    id: str
    vector: np.ndarray
    tools: tuple[str, ...] = ()
    intent: str | None = None


class ScoreBreakdown(BaseModel):
    """Why a record was recalled: its three terms and the weighted total."""

    model_config = ConfigDict(frozen=True)

    id: str
    s1: float = Field(description="Trajectory (or request) similarity, cosine.")
    s2: float = Field(description="Toolchain coverage over sets.")
    s3: float = Field(description="Intent alignment, 0 or 1.")
    score: float = Field(description="w1*s1 + w2*s2 + w3*s3.")


def score_candidate(query: RecallQuery, cand_id: str, s1: float, tools: Iterable[str], intent: str | None) -> ScoreBreakdown:
    """Score one candidate given its cosine ``s1`` (computed by the caller)."""
    w = query.weights
    s2 = coverage(query.tools, tools)
    s3 = 1.0 if (query.intent is not None and intent == query.intent) else 0.0
    total = w.trajectory * s1 + w.toolchain * s2 + w.intent * s3
    return ScoreBreakdown(id=cand_id, s1=float(s1), s2=float(s2), s3=float(s3), score=float(total))


def rank_key(item: ScoreBreakdown) -> tuple[float, str]:
    """Sort key: score descending, then id ascending (deterministic ties)."""
    return (-item.score, item.id)


def reference_top_k(query: RecallQuery, candidates: Iterable[Candidate]) -> list[ScoreBreakdown]:
    """The brute-force reference: score every candidate in float64, return the top k.

    Candidates whose score is below ``query.min_score`` are dropped.
    """
    if query.k == 0:
        return []
    scored = []
    for c in candidates:
        s1 = float(np.dot(query.vector, normalize(c.vector)))
        item = score_candidate(query, c.id, s1, c.tools, c.intent)
        if query.min_score is not None and item.score < query.min_score:
            continue
        scored.append(item)
    scored.sort(key=rank_key)
    return scored[: query.k]
