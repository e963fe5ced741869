"""The qdrant-edge backend: Qdrant's own Rust engine in-process, one shard in one directory.

qdrant-edge-py (the ``edge`` extra) runs the same segment engine as a Qdrant server inside this
process: filtered exact search, payload indexes, formula scoring and a write-ahead log, without a
server. :class:`EdgeBackend` stores both named vectors (``traj`` and ``query``, dot distance) in
one shard at ``path``; the shard has no collection metadata, so the embedder identity and vector
size are kept beside it in ``seer_collection.json`` (written atomically).

Every dense search is exact (``SearchParams(exact=True)``): HNSW recall was poor on the measured
data and an exact scan of a tenant is a few milliseconds up to ~100k points.

One opener per directory: a second :class:`EdgeBackend` (in this process or another) on the same
directory raises :class:`~seer_langgraph.errors.PoolError`. Share one pool object across threads,
or use a Qdrant server (``open_pool(url=...)``) for several processes.

Example:
    >>> import pytest; _ = pytest.importorskip("qdrant_edge")
    >>> import tempfile
    >>> import numpy as np
    >>> from seer_langgraph.pool.backend import PointData
    >>> d = tempfile.mkdtemp()
    >>> be = EdgeBackend(d)
    >>> be.dimension() is None
    True
    >>> be.ensure_collection(2, {"embedder": "demo"})
    >>> v = np.array([0.6, 0.8], dtype=np.float32)
    >>> pid = "00000000-0000-0000-0000-000000000001"
    >>> be.upsert([PointData(pid, {"traj": v, "query": v}, {"tenant": "t", "tools": ["a"], "intent": None})])
    >>> [(h.id, h.tools) for h in be.dense_search(v, "traj", "t", 5)]
    [('00000000-0000-0000-0000-000000000001', ('a',))]
    >>> be.count("other"), be.tenants()
    (0, {'t': 1})
    >>> be.close()
    >>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import PoolClosedError, PoolError
from ..scoring import RecallQuery
from .backend import VECTOR_NAMES, DenseHit, PointData, StoredPoint

try:  # the ``edge`` extra; this module imports without it so that doctest collection works
    import qdrant_edge as qe
except ImportError:  # pragma: no cover - exercised only without the extra
    qe = None

try:  # advisory lock so a second opener fails before touching the shard (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows: the engine's own WAL lock still refuses a second opener
    fcntl = None  # type: ignore[assignment]

__all__ = ["EdgeBackend", "build_edge_seer_formula", "edge_tenant_filter"]

META_FILE = "seer_collection.json"
LOCK_FILE = ".seer.lock"
_SCORING_FIELDS = ["tenant", "intent", "tools"]


def _require_edge() -> None:
    if qe is None:
        raise ImportError(
            "the edge backend needs qdrant-edge-py: pip install 'seer-langgraph[edge]' "
            "(or open the pool with backend='qdrant')"
        )


def edge_tenant_filter(tenant: str) -> qe.Filter:
    """The filter that scopes every read to one tenant."""
    _require_edge()
    return qe.Filter(must=[qe.FieldCondition("tenant", match=qe.MatchValue(tenant))])


def build_edge_seer_formula(query: RecallQuery) -> qe.Formula:
    """The whole SEER score as an edge ``Formula`` over one dense prefetch.

    Same math as :func:`seer_langgraph.pool.qdrant.build_seer_formula`:
    ``w1 * $score + (w2/|T|) * sum(tools == t for t in T) + w3 * (intent == I)``. A match on an
    array payload is true if any element matches, so the sum counts the distinct current tools
    the candidate also used.
    """
    _require_edge()
    E = qe.Expression
    w = query.weights
    terms = [E.Mult([E.Constant(float(w.trajectory)), E.Variable("$score")])]
    if query.tools and w.toolchain:
        per_tool = float(w.toolchain) / len(query.tools)
        for tool in query.tools:
            cond = E.Condition(qe.FieldCondition("tools", match=qe.MatchValue(tool)))
            terms.append(E.Mult([E.Constant(per_tool), cond]))
    if query.intent is not None and w.intent:
        cond = E.Condition(qe.FieldCondition("intent", match=qe.MatchValue(query.intent)))
        terms.append(E.Mult([E.Constant(float(w.intent)), cond]))
    return qe.Formula(E.Sum(terms), defaults={})


def _canonical_id(point_id: Any) -> str | None:
    """The canonical UUID string of ``point_id``, or ``None`` when it is not a UUID."""
    if isinstance(point_id, uuid.UUID):
        return str(point_id)
    try:
        return str(uuid.UUID(str(point_id)))
    except (ValueError, TypeError, AttributeError):
        return None


#: payload keys stored as one JSON string (``<key>_json``) instead of a nested object: qdrant-edge-py
#: converts a Python dict to its payload at about 5 us per value (340 us for a typical record, the
#: largest cost of a commit); one string converts in about 1 us. They are never filtered on.
_JSON_KEYS = ("record",)


def _encode_payload(payload: dict[str, Any]) -> dict[str, Any]:
    if not any(isinstance(payload.get(k), (dict, list)) for k in _JSON_KEYS):
        return payload
    out = dict(payload)
    for key in _JSON_KEYS:
        if isinstance(out.get(key), (dict, list)):
            out[f"{key}_json"] = json.dumps(out.pop(key), ensure_ascii=False, separators=(",", ":"))
    return out


def _decode_payload(raw: Any) -> dict[str, Any]:
    payload = dict(raw or {})
    for key in _JSON_KEYS:
        text = payload.pop(f"{key}_json", None)
        if isinstance(text, str):
            payload[key] = json.loads(text)
    return payload


def _f32(vector: Any) -> np.ndarray:
    return np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)


def _in_use(exc: BaseException) -> bool:
    text = str(exc)
    return "WouldBlock" in text or "Resource temporarily unavailable" in text


class EdgeBackend:
    """Backend over one qdrant-edge shard stored in the directory ``path``.

    Args:
        path: the shard directory (created if missing). The shard itself is created lazily by
            :meth:`ensure_collection`; an existing shard is opened at once.
        max_search_threads: threads of the engine's search pool (``None``: one per CPU). Stored
            in the shard's config when given.
        upsert_batch: points per engine update call in :meth:`upsert`.
        payload_in_ram: a new shard keeps its payloads in RAM (qdrant-edge's ``in_ram_mmap``
            storage, about 1.7 KB per experience) rather than in a file mapping that the OS may
            evict when idle: recall reads k payloads per query, and an evicted page costs a disk
            read (measured 0.25 ms vs 0.04 ms for 4 records after 20 s idle). Existing shards keep
            the layout they were created with.

    Raises:
        PoolError: the directory is in use by another opener, or the shard cannot be opened.
    """

    name = "qdrant-edge"

    def __init__(
        self, path: str | os.PathLike[str], *, max_search_threads: int | None = None, upsert_batch: int = 256, payload_in_ram: bool = True
    ) -> None:
        _require_edge()
        if upsert_batch < 1:
            raise ValueError(f"upsert_batch must be >= 1, got {upsert_batch}")
        self.path = Path(path)
        self.max_search_threads = max_search_threads
        self.upsert_batch = upsert_batch
        self.payload_in_ram = payload_in_ram
        self._shard: Any = None
        self._closed = False
        self._lock_fh: Any = None
        self._dim: int | None = None
        self._meta: dict[str, Any] = {}
        self._index_invalidated = False
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._read_meta()
            if (self.path / "segments").exists() or (self.path / "edge_config.json").exists():
                self._open_existing()
        except BaseException:
            self._release_lock()
            raise

    # -- opening ----------------------------------------------------------------------------
    def _in_use_error(self, detail: str = "") -> PoolError:
        extra = f" ({detail})" if detail else ""
        return PoolError(
            f"the pool directory {self.path} is in use by another opener{extra}: qdrant-edge allows one "
            "opener per directory. Share one pool object per process across threads (ExperiencePool is "
            "thread-safe), close the other pool first, or run a Qdrant server and use open_pool(url=...) "
            "for several processes."
        )

    def _acquire_lock(self) -> None:
        if fcntl is None:
            return
        fh = open(self.path / LOCK_FILE, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            raise self._in_use_error() from exc
        self._lock_fh = fh

    def _release_lock(self) -> None:
        fh, self._lock_fh = self._lock_fh, None
        if fh is not None:
            try:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            finally:
                fh.close()

    def _config(self, dim: int, creating: bool = False) -> qe.EdgeConfig:
        vectors = {name: qe.EdgeVectorParams(dim, qe.Distance.Dot) for name in VECTOR_NAMES}
        if not creating:  # an existing shard keeps its payload layout
            return qe.EdgeConfig(vectors=vectors, max_search_threads=self.max_search_threads)
        return qe.EdgeConfig(vectors=vectors, max_search_threads=self.max_search_threads, on_disk_payload=not self.payload_in_ram)

    def _open_existing(self) -> None:
        if self._dim is None:
            self._dim = self._dim_from_engine_config()
        config = self._config(self._dim) if (self.max_search_threads is not None and self._dim) else None
        try:
            self._shard = qe.EdgeShard.load(str(self.path), config)
        except Exception as exc:
            if _in_use(exc):
                raise self._in_use_error(str(exc)) from exc
            raise PoolError(f"cannot open the qdrant-edge shard at {self.path}: {exc}") from exc
        self._ensure_indexes()

    def _dim_from_engine_config(self) -> int | None:
        """Vector size from the engine's own config file (when our metadata file is missing)."""
        try:
            conf = json.loads((self.path / "edge_config.json").read_text())
            return int(conf["vectors"]["traj"]["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _ensure_indexes(self) -> None:
        """Create the payload indexes that are missing (idempotent; repairs an interrupted create)."""
        have = set(self._shard.info().payload_schema)
        if "tenant" not in have:
            self._shard.update(qe.UpdateOperation.create_field_index("tenant", qe.KeywordIndexParams(is_tenant=True)))
        for key in ("intent", "tools"):
            if key not in have:
                self._shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))

    # -- metadata file ----------------------------------------------------------------------
    def _read_meta(self) -> None:
        try:
            data = json.loads((self.path / META_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise PoolError(f"{self.path / META_FILE} is unreadable ({exc}); restore it or remove it") from None
        self._dim = int(data["dimension"]) if data.get("dimension") is not None else None
        self._meta = dict(data.get("metadata") or {})

    def _write_meta(self) -> None:
        body = json.dumps({"dimension": self._dim, "metadata": self._meta}, ensure_ascii=False, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{META_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / META_FILE)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # -- collection -------------------------------------------------------------------------
    @property
    def shard(self) -> Any:
        """The open ``qdrant_edge.EdgeShard`` (``None`` before :meth:`ensure_collection`)."""
        if self._closed:
            raise PoolClosedError(f"the qdrant-edge backend at {self.path} is closed")
        return self._shard

    def dimension(self) -> int | None:
        if self.shard is None:
            return None
        return self._dim

    def metadata(self) -> dict[str, Any]:
        if self.shard is None:
            return {}
        return dict(self._meta)

    def ensure_collection(self, dim: int, metadata: dict[str, Any]) -> None:
        if self.shard is not None:
            return
        try:
            self._shard = qe.EdgeShard.create(str(self.path), self._config(int(dim), creating=True))
        except Exception as exc:
            if _in_use(exc):
                raise self._in_use_error(str(exc)) from exc
            raise PoolError(f"cannot create the qdrant-edge shard at {self.path}: {exc}") from exc
        self._ensure_indexes()
        self._dim = int(dim)
        self._meta = dict(metadata)
        self._write_meta()

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, points: list[PointData]) -> None:
        if not points:
            return
        shard = self.shard
        if shard is None:
            raise PoolError("ensure_collection() must be called before upsert()")
        self._invalidate_index_copy()
        structs = []
        for p in points:
            pid = _canonical_id(p.id)
            if pid is None:
                raise ValueError(f"point id {p.id!r} is not a UUID string (the pool's ids are UUIDs)")
            structs.append(qe.Point(pid, {name: _f32(v).tolist() for name, v in p.vectors.items()}, _encode_payload(p.payload)))
        for start in range(0, len(structs), self.upsert_batch):
            shard.update(qe.UpdateOperation.upsert_points(structs[start : start + self.upsert_batch]))

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        shard = self.shard
        pid = _canonical_id(point_id)
        if shard is None or pid is None:
            raise KeyError(point_id)
        try:
            shard.update(qe.UpdateOperation.set_payload([pid], _encode_payload(payload)))
        except Exception as exc:
            if "No point with id" in str(exc):
                raise KeyError(point_id) from None
            raise

    def delete(self, ids: list[str]) -> None:
        shard = self.shard
        valid = self._valid_ids(ids)
        if shard is not None and valid:
            self._invalidate_index_copy()
            shard.update(qe.UpdateOperation.delete_points(valid))

    def _invalidate_index_copy(self) -> None:
        """Before the first write of this opener: mark a persisted scoring index stale.

        The index (``seer_langgraph.pool.index``) saves itself clean at close; a pool opened
        without it must not leave a copy that looks valid but misses these writes.
        """
        if not self._index_invalidated:
            from .index import INDEX_DIR, mark_index_dirty

            mark_index_dirty(self.path / INDEX_DIR)
            self._index_invalidated = True

    # -- reads ------------------------------------------------------------------------------
    @staticmethod
    def _valid_ids(ids: Iterable[Any]) -> list[str]:
        """Canonical UUID strings of ``ids``; ids that are not UUIDs cannot exist and are dropped."""
        return [c for c in (_canonical_id(i) for i in ids) if c is not None]

    @staticmethod
    def _vectors(raw: Any) -> dict[str, np.ndarray]:
        if not raw:
            return {}
        return {k: np.asarray(v, dtype=np.float32) for k, v in raw.items()}

    def _stored(self, rec: Any) -> StoredPoint:
        return StoredPoint(str(rec.id), _decode_payload(rec.payload), self._vectors(rec.vector))

    def retrieve(self, ids: list[str], tenant: str, with_vectors: bool = False) -> list[StoredPoint]:
        shard = self.shard
        valid = list(dict.fromkeys(self._valid_ids(ids)))
        if shard is None or not valid:
            return []
        recs = shard.retrieve(valid, True, bool(with_vectors))
        out = [self._stored(r) for r in recs]
        return [p for p in out if p.payload.get("tenant") == tenant]

    def scroll(
        self, tenant: str, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        if limit < 1:
            raise ValueError(f"limit value {limit} is invalid. Must be 1 or larger.")
        shard = self.shard
        if shard is None:
            return [], None
        start = None
        if offset is not None:
            start = _canonical_id(offset)
            if start is None:
                raise ValueError(f"offset {offset!r} is not a point id (use the offset returned by the previous page)")
        recs, nxt = shard.scroll(
            qe.ScrollRequest(
                offset=start,
                limit=limit,
                filter=edge_tenant_filter(tenant),
                with_payload=True,
                with_vector=bool(with_vectors),
            )
        )
        return [self._stored(r) for r in recs], (str(nxt) if nxt is not None else None)

    def retrieve_scoring(self, ids: list[str], tenant: str, using: str, full_payload: bool = False) -> list[StoredPoint]:
        """Like :meth:`retrieve` with the ``using`` vector only, and only the scoring payload
        (tenant, tools, intent) unless ``full_payload``: cheaper to convert."""
        shard = self.shard
        valid = list(dict.fromkeys(self._valid_ids(ids)))
        if shard is None or not valid:
            return []
        out = [self._stored(r) for r in shard.retrieve(valid, True if full_payload else _SCORING_FIELDS, [using])]
        return [p for p in out if p.payload.get("tenant") == tenant]

    def point_ids(self, tenant: str) -> list[str]:
        """Every id of ``tenant`` (no payload, no vectors: about 3 us per point)."""
        shard = self.shard
        out: list[str] = []
        offset = None
        while shard is not None:
            recs, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=8192, filter=edge_tenant_filter(tenant), with_payload=False, with_vector=False)
            )
            out += [str(r.id) for r in recs]
            if offset is None:
                break
        return out

    def scroll_scoring(self, tenant: str, limit: int, offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        """Like :meth:`scroll` with vectors, but only the scoring payload (tenant, tools, intent)."""
        shard = self.shard
        if shard is None:
            return [], None
        recs, nxt = shard.scroll(
            qe.ScrollRequest(
                offset=_canonical_id(offset) if offset is not None else None,
                limit=limit,
                filter=edge_tenant_filter(tenant),
                with_payload=_SCORING_FIELDS,
                with_vector=True,
            )
        )
        return [self._stored(r) for r in recs], (str(nxt) if nxt is not None else None)

    def count(self, tenant: str | None) -> int:
        shard = self.shard
        if shard is None:
            return 0
        flt = edge_tenant_filter(tenant) if tenant is not None else None
        return int(shard.count(qe.CountRequest(exact=True, filter=flt)))

    def tenants(self) -> dict[str, int]:
        shard = self.shard
        if shard is None:
            return {}
        total = self.count(None)
        if total == 0:
            return {}
        facet = shard.facet(qe.FacetRequest("tenant", limit=total, exact=True))
        # the engine keeps a tenant whose points were all deleted in its facet, with count 0
        return {str(h.value): int(h.count) for h in facet.hits if h.count > 0}

    def _hit(self, p: Any, using: str) -> DenseHit:
        payload = p.payload or {}
        raw = p.vector  # each attribute read converts the vectors again: read it once
        vec = raw[using] if isinstance(raw, dict) else raw
        return DenseHit(
            id=str(p.id),
            score=float(p.score),
            vector=np.asarray(vec, dtype=np.float32),
            tools=tuple(payload.get("tools") or ()),
            intent=payload.get("intent"),
        )

    def dense_search(self, vector: np.ndarray, using: str, tenant: str, limit: int) -> list[DenseHit]:
        shard = self.shard
        if shard is None or limit <= 0:
            return []
        res = shard.query(
            qe.QueryRequest(
                limit=limit,
                query=qe.Query.Nearest(_f32(vector), using=using),
                filter=edge_tenant_filter(tenant),
                params=qe.SearchParams(exact=True),
                with_payload=_SCORING_FIELDS,
                with_vector=[using],
            )
        )
        return [self._hit(p, using) for p in res]

    # -- in-engine SEER score ---------------------------------------------------------------
    def formula_search(self, query: RecallQuery, tenant: str, prefetch_limit: int, limit: int) -> list[DenseHit]:
        """Top ``limit`` by the full SEER score, computed by the engine over an exact dense prefetch.

        The hit's ``score`` is the engine's SEER score (float32). Only the ``prefetch_limit``
        nearest points of the tenant are scored (see ``ExperiencePool._search_formula``).
        """
        shard = self.shard
        if shard is None or limit <= 0 or prefetch_limit <= 0:
            return []
        flt = edge_tenant_filter(tenant)
        using = query.vector_name
        res = shard.query(
            qe.QueryRequest(
                limit=limit,
                query=build_edge_seer_formula(query),
                prefetches=[
                    qe.Prefetch(
                        limit=prefetch_limit,
                        query=qe.Query.Nearest(_f32(query.vector), using=using),
                        filter=flt,
                        params=qe.SearchParams(exact=True),
                    )
                ],
                filter=flt,
                with_payload=_SCORING_FIELDS,
                with_vector=[using],
            )
        )
        return [self._hit(p, using) for p in res]

    def dense_score_at(self, vector: np.ndarray, using: str, tenant: str, rank: int) -> float | None:
        """The dense score of the ``rank``-th nearest point of the tenant (1-based), or ``None`` past the end."""
        shard = self.shard
        if shard is None or rank < 1:
            return None
        res = shard.query(
            qe.QueryRequest(
                limit=1,
                offset=rank - 1,
                query=qe.Query.Nearest(_f32(vector), using=using),
                filter=edge_tenant_filter(tenant),
                params=qe.SearchParams(exact=True),
                with_payload=False,
                with_vector=False,
            )
        )
        return float(res[0].score) if res else None

    # -- lifecycle --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write pending changes to disk (also done by :meth:`close`)."""
        if self.shard is not None:
            self.shard.flush()

    def close(self) -> None:
        """Flush, close the shard and release the directory; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        shard, self._shard = self._shard, None
        try:
            if shard is not None:
                try:
                    shard.flush()
                finally:
                    shard.close()
        finally:
            self._release_lock()

    def __enter__(self) -> "EdgeBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("empty" if self._shard is None else f"dim={self._dim}")
        return f"EdgeBackend({str(self.path)!r}, {state})"
