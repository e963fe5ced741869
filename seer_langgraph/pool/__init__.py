"""Experience pools over Qdrant engines, and :func:`open_pool` to pick one.

Example:
    >>> from seer_langgraph.pool import open_pool
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> open_pool(":memory:", embeddings=HashingEmbeddings()).backend.name
    'qdrant-client:memory'
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings

from .backend import Backend, DenseHit, PointData, StoredPoint
from .pool import CommitResult, ExperiencePool, ImportReport, PoolStats, RecalledExperience, embedder_id
from .qdrant import QdrantClientBackend, QdrantCollectionSettings

__all__ = [
    "Backend",
    "CommitResult",
    "DenseHit",
    "ExperiencePool",
    "ImportReport",
    "PointData",
    "PoolStats",
    "QdrantClientBackend",
    "QdrantCollectionSettings",
    "RecalledExperience",
    "StoredPoint",
    "edge_available",
    "open_pool",
]

logger = logging.getLogger(__name__)

MARKER = "seer_pool.json"
BackendName = Literal["auto", "qdrant", "edge"]


def edge_available() -> bool:
    """True when qdrant-edge-py (the ``edge`` extra) is importable."""
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


def _engine_for_path(path: Path, backend: BackendName) -> str:
    marker = path / MARKER
    if marker.exists():
        try:
            written_by = json.loads(marker.read_text())["engine"]
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{marker} is not a valid seer pool marker ({exc}); remove it or use another path") from None
        if backend != "auto" and backend != written_by:
            raise ValueError(
                f"the pool at {path} was written by the {written_by!r} engine; open it with backend={written_by!r} "
                f"(or 'auto'), or export it to JSONL and import it into a new {backend!r} pool"
            )
        return written_by
    if backend != "auto":
        return backend
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"{path} exists, is not empty and is not a seer pool (no {MARKER}); use an empty or new directory")
    if edge_available():
        return "edge"
    logger.warning(
        "qdrant-edge-py is not installed: the pool at %s uses qdrant-client's local mode, which scans "
        "every record in Python (slow past ~10k experiences). Install seer-langgraph[edge] for the fast engine.",
        path,
    )
    return "qdrant"


def open_pool(
    location: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    embeddings: Embeddings | None = None,
    backend: BackendName = "auto",
    collection: str = "seer_experiences",
    tenant: str = "default",
    settings: QdrantCollectionSettings | None = None,
    client_kwargs: dict[str, Any] | None = None,
    **pool_kwargs: Any,
) -> ExperiencePool:
    """Open (or create) an experience pool.

    - ``open_pool(":memory:")``: qdrant-client in memory (tests, notebooks).
    - ``open_pool(path="./pool")``: on disk, embedded. A new directory uses qdrant-edge (Qdrant's
      Rust engine in-process) when the ``edge`` extra is installed -- measured 100x+ faster than
      qdrant-client's local mode at 100k records -- else qdrant-client's local mode. An existing
      directory is always opened with the engine that wrote it.
    - ``open_pool(url="http://qdrant:6333", api_key=...)``: a Qdrant server or cluster; the SEER
      score is computed inside Qdrant. ``settings`` sets shards, replication and quantization.

    ``embeddings`` defaults to :class:`~seer_langgraph.embeddings.HashingEmbeddings` (lexical,
    no model). Other keyword arguments go to :class:`ExperiencePool`.
    """
    if embeddings is None:
        from ..embeddings import HashingEmbeddings

        embeddings = HashingEmbeddings()
    given = [x for x in (location, path, url) if x is not None]
    if len(given) > 1:
        raise ValueError("pass only one of location, path= or url=")
    client_kwargs = dict(client_kwargs or {})
    if url is not None or (location is not None and location.startswith(("http://", "https://"))):
        from qdrant_client import QdrantClient

        client = QdrantClient(url=url or location, api_key=api_key, **client_kwargs)
        be: Backend = QdrantClientBackend(client, collection, settings)
        return ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
    if path is None and location not in (None, ":memory:"):
        path = location
    if path is None:
        if backend == "edge":
            raise ValueError("the edge backend needs a directory: pass path=")
        from qdrant_client import QdrantClient

        be = QdrantClientBackend(QdrantClient(location=":memory:", **client_kwargs), collection, settings)
        return ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
    p = Path(path)
    engine = _engine_for_path(p, backend)
    p.mkdir(parents=True, exist_ok=True)
    if engine == "edge":
        from .edge import EdgeBackend

        be = EdgeBackend(p / "shard")
    else:
        from qdrant_client import QdrantClient

        be = QdrantClientBackend(QdrantClient(path=str(p / "qdrant"), **client_kwargs), collection, settings)
    marker = p / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"engine": engine, "collection": collection}) + "\n")
    return ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
