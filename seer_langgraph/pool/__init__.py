"""Experience pools over Qdrant engines, and :func:`open_pool` to pick one.

Example:
    >>> from seer_langgraph.pool import open_pool
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> open_pool(":memory:", embeddings=HashingEmbeddings()).backend.name
    'qdrant-client:memory'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings

from .backend import Backend, DenseHit, PointData, StoredPoint
from ..errors import PoolError, PoolInUseError
from .pool import _DEFAULT_REDACTOR, CommitResult, ExperiencePool, ImportReport, PoolStats, RecalledExperience, embedder_id
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
# files a pool directory may hold before its marker is written (shared-mode owner lock, journals)
_OWN_FILES = {".seer-owner.lock", "seer_owner.json", "spill"}
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
    if path.exists() and any(x.name not in _OWN_FILES for x in path.iterdir()):
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
    shared: bool = False,
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

    Embedded pools journal their commits in ``<path>/spill`` (see :mod:`seer_langgraph.durability`)
    and replay what a crashed or failing run left there when they open; a server pool journals in
    ``$SEER_SPILL_DIR`` or ``~/.cache/seer-langgraph/spill/<collection>-<hash>``. Pass
    ``spill_dir=None`` to turn the journal off.

    An embedded directory has one opener at a time. ``shared=True`` lets several processes use
    it: the first becomes its owner and serves the others over loopback, which get a
    :class:`~seer_langgraph.pool.shared.RemotePool` with the same methods (see
    :mod:`seer_langgraph.pool.shared`). Without it, a second opener gets
    :class:`~seer_langgraph.errors.PoolInUseError`.
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

        if shared:
            raise ValueError("shared=True is for embedded directories; a Qdrant server is shared already")
        client = QdrantClient(url=url or location, api_key=api_key, **client_kwargs)
        be: Backend = QdrantClientBackend(client, collection, settings)
        pool_kwargs.setdefault("spill_dir", _server_spill_dir(url or location or "", collection))
        return ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
    if path is None and location not in (None, ":memory:"):
        path = location
    if path is None:
        if backend == "edge":
            raise ValueError("the edge backend needs a directory: pass path=")
        if shared:
            raise ValueError("shared=True needs a directory (path=); an in-memory pool lives in one process")
        from qdrant_client import QdrantClient

        be = QdrantClientBackend(QdrantClient(location=":memory:", **client_kwargs), collection, settings)
        return ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{p} is a file, not a pool directory")
    engine = _engine_for_path(p, backend)
    p.mkdir(parents=True, exist_ok=True)
    pool_kwargs.setdefault("spill_dir", p / "spill")

    def open_local() -> ExperiencePool:
        be = _open_embedded(p, engine, collection, settings, client_kwargs)
        marker = p / MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"engine": engine, "collection": collection}) + "\n")
        pool = ExperiencePool(be, embeddings, tenant=tenant, **pool_kwargs)
        pool._pipeline.open_report = pool._pipeline.after_success()  # replay what a crashed or failing run left
        return pool

    if shared:
        from .shared import open_shared_pool

        redact = pool_kwargs.get("redact", _DEFAULT_REDACTOR)
        if redact is _DEFAULT_REDACTOR:
            from ..redaction import Redactor

            redact = Redactor()
        return open_shared_pool(  # type: ignore[return-value]
            p,
            open_local,
            embeddings=embeddings,
            tenant=tenant,
            redact=redact,
            limits=pool_kwargs.get("limits"),
            retry=pool_kwargs.get("retry"),
            spill_dir=pool_kwargs.get("spill_dir"),
        )
    return open_local()


def _in_use(p: Path, detail: str) -> PoolInUseError:
    return PoolInUseError(
        f"the pool directory {p} is in use by another opener ({detail}): embedded engines allow one opener per "
        "directory. Share one pool object across the threads of a process, open every process with "
        "open_pool(path=..., shared=True) (one becomes the owner and serves the others; or run `seer pool serve "
        "--path DIR`), or use a Qdrant server with open_pool(url=...)."
    )


def _open_embedded(p: Path, engine: str, collection: str, settings: Any, client_kwargs: dict[str, Any]) -> Backend:
    if engine == "edge":
        from .edge import EdgeBackend

        try:
            return EdgeBackend(p / "shard")
        except PoolError as exc:
            if "in use" in str(exc):
                raise _in_use(p, "qdrant-edge shard locked") from exc
            raise
    from qdrant_client import QdrantClient

    try:
        client = QdrantClient(path=str(p / "qdrant"), **client_kwargs)
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise _in_use(p, "qdrant-client storage locked") from None
        raise
    return QdrantClientBackend(client, collection, settings)


def _server_spill_dir(url: str, collection: str) -> Path:
    root = os.environ.get("SEER_SPILL_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "seer-langgraph", "spill")
    digest = hashlib.sha256(f"{url}|{collection}".encode()).hexdigest()[:12]
    return Path(root) / f"{collection}-{digest}"
