"""The storage-engine protocol every pool backend implements.

A backend is a thin adapter over one Qdrant engine (qdrant-client in any mode, qdrant-edge). It
knows nothing of SEER: it stores points with two named dense vectors (``traj`` and ``query``)
and a payload, scopes every read by tenant, and answers exact dense searches. The SEER score,
the exactness bound, embeddings, validation and usage counters live once, in
:class:`seer_langgraph.pool.ExperiencePool`, above this seam. The congruence test suite runs
the same cases over every backend.

Vectors are stored unit-length as float32 under the *dot* distance, so every engine keeps the
same bits and ``dot == cosine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "VECTOR_NAMES",
    "Backend",
    "DenseHit",
    "PointData",
    "StoredPoint",
]

VECTOR_NAMES = ("traj", "query")


@dataclass(frozen=True)
class PointData:
    """A point to write: id, one unit float32 vector per name in :data:`VECTOR_NAMES`, payload."""

    id: str
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredPoint:
    """A point as read back. ``vectors`` is empty unless they were asked for."""

    id: str
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DenseHit:
    """One result of an exact dense search: the engine's dot product and what scoring needs."""

    id: str
    score: float
    vector: np.ndarray
    tools: tuple[str, ...]
    intent: str | None


@runtime_checkable
class Backend(Protocol):
    """What :class:`~seer_langgraph.pool.ExperiencePool` needs from a storage engine.

    Every method that reads takes ``tenant`` and must never return a point of another tenant.
    Methods are synchronous; the pool runs them in a worker thread for its async API.
    """

    #: short engine name, e.g. ``"qdrant-client:memory"`` or ``"qdrant-edge"``
    name: str

    def dimension(self) -> int | None:
        """Vector size of the existing collection, or ``None`` if it does not exist yet."""

    def ensure_collection(self, dim: int, metadata: dict[str, Any]) -> None:
        """Create the collection (both named vectors, dot distance) and payload indexes if missing.

        ``metadata`` (embedder identity, schema version) is stored with the collection.
        """

    def metadata(self) -> dict[str, Any]:
        """The metadata stored with the collection (empty if none or no collection)."""

    def upsert(self, points: list[PointData]) -> None:
        """Write points atomically per point; a batch may be split, but no point is half-written."""

    def retrieve(self, ids: list[str], tenant: str, with_vectors: bool = False) -> list[StoredPoint]:
        """The points among ``ids`` that belong to ``tenant`` (missing ids are skipped)."""

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        """Merge ``payload`` into the top-level payload keys of one point."""

    def delete(self, ids: list[str]) -> None:
        """Delete points by id (the pool checks tenancy before calling)."""

    def scroll(
        self, tenant: str, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        """A page of the tenant's points in id order and the offset of the next page."""

    def count(self, tenant: str | None) -> int:
        """Points of ``tenant`` (all tenants when ``None``)."""

    def tenants(self) -> dict[str, int]:
        """Every tenant and its number of points."""

    def dense_search(self, vector: np.ndarray, using: str, tenant: str, limit: int) -> list[DenseHit]:
        """Exact top-``limit`` by dot product with the ``using`` vector, within ``tenant``."""

    def close(self) -> None:
        """Release the engine (flush to disk where it has one)."""
