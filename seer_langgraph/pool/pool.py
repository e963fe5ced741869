"""The experience pool: SEER's memory, over any Qdrant backend.

:class:`ExperiencePool` embeds each experience once at commit (a trajectory vector and a request
vector), stores it in Qdrant with its tenant, intent and tool set as payload, and answers SEER
recall exactly: the top k by ``w1*s1 + w2*s2 + w3*s3``, identical to the brute-force reference.

Example:
    >>> from seer_langgraph import Experience, Step, open_pool
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> pool = open_pool(":memory:", embeddings=HashingEmbeddings())
    >>> exp = Experience(request="price of item 3?", steps=[Step(tool="get_item", args={"id": 3}, observation="9.5")], answer="9.5")
    >>> pool.commit(exp).created
    True
    >>> pool.commit(exp).created  # same content hash: a no-op
    False
    >>> hits = pool.recall("what does item 4 cost?", tools=["get_item"], k=1)
    >>> hits[0].experience.answer, hits[0].s2
    ('9.5', 1.0)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from ..errors import CorruptRecordError, DimensionMismatchError, ImportValidationError, PoolClosedError, PoolError
from ..experience import DEFAULT_TENANT, Experience, Usage, validate_tenant
from ..scoring import RecallMode, RecallQuery, ScoreBreakdown, SeerWeights, normalize, rank_key, score_candidate
from typing import TYPE_CHECKING

from ..durability import CommitPipeline, ReplayReport, RetryPolicy
from ..hygiene import HygienePolicy, PruneReport, prune_tenant
from ..limits import RecordLimits
from ..redaction import Redactor
from ..spill import SpillJournal
from .backend import VECTOR_NAMES, Backend, DenseHit, PointData, StoredPoint

__all__ = [
    "CommitResult",
    "ExperiencePool",
    "ImportReport",
    "PoolStats",
    "RecalledExperience",
    "embedder_id",
]

if TYPE_CHECKING:
    from ..intent import IntentSet

logger = logging.getLogger(__name__)

#: Sentinel: the default redactor (``redact=None`` turns redaction off).
_DEFAULT_REDACTOR: Any = object()

#: Margin that covers float32 rounding in the engine's dot products when proving exactness.
_EPS = 1e-5
_SCHEMA = 1


def embedder_id(embeddings: Embeddings) -> str:
    """A stable name for an embeddings object: its class and model name, if it has one."""
    name = type(embeddings).__name__
    for attr in ("model", "model_name", "model_id"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    return name


class RecalledExperience(BaseModel):
    """An experience returned by recall, with why it was chosen (s1, s2, s3 and the total)."""

    model_config = ConfigDict(frozen=True)

    experience: Experience
    s1: float
    s2: float
    s3: float
    score: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """The experience's id (shown in dumps, so state panels list it)."""
        return self.experience.id


class CommitResult(BaseModel):
    """Outcome of a commit: the record id and whether it was new.

    ``status`` says what happened: ``"created"``, ``"present"`` (the same content was stored
    already), ``"duplicate"`` (a near-duplicate of ``duplicate_of``, which was kept and counted;
    ``id`` is the kept record's) or ``"spilled"`` (not stored yet: kept in ``spill_file`` for replay).
    """

    id: str
    created: bool
    status: Literal["created", "present", "duplicate", "spilled"] | None = None
    duplicate_of: str | None = None
    spill_file: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.status is None:
            self.status = "created" if self.created else "present"


class ImportReport(BaseModel):
    """Outcome of a JSONL import."""

    path: str
    imported: int = 0
    already_present: int = 0
    skipped_invalid: list[tuple[int, str]] = []


class PoolStats(BaseModel):
    """What is in a pool."""

    backend: str
    collection_dimension: int | None
    embedder: str | None
    total: int
    tenants: dict[str, int]


try:  # orjson (a dependency of langsmith) parses a line with two 384-d vectors 18x faster
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def _loads(line: str) -> Any:
    """``json.loads``, through orjson when it accepts the line (it refuses NaN and huge ints)."""
    if _orjson is not None:
        try:
            return _orjson.loads(line)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(line)


class _RecordCache:
    """Validated records by id, reused when the stored record is unchanged (recall hot path).

    Validating a record (content hash, pydantic) costs ~0.2 ms; recall returns the same popular
    records again and again. A hit needs the stored record to be *equal* to the one validated,
    so an edited or corrupted record is validated (and refused) again.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.items: OrderedDict[str, tuple[dict[str, Any], Experience | None]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, pid: str, record: dict[str, Any]) -> Experience | None:
        with self.lock:
            hit = self.items.get(pid)
            if hit is None or hit[1] is None or hit[0] != record:
                return None
            self.items.move_to_end(pid)
            return hit[1]

    def put(self, pid: str, record: dict[str, Any], exp: Experience) -> None:
        """Remember a validated record. The first read of an id only notes it; from the second
        read of the same content on, a private deep copy is kept (the caller owns ``exp``)."""
        with self.lock:
            seen = self.items.get(pid)
            if seen is None or seen[0] != record:
                self.items[pid] = (record, None)
            elif seen[1] is None:
                self.items[pid] = (record, exp.model_copy(deep=True))
            self.items.move_to_end(pid)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_RECORDS = _RecordCache()


@dataclass
class _EmbedCache:
    """A small per-pool LRU of query embeddings (the same history is embedded once per step)."""

    size: int = 256
    items: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> np.ndarray | None:
        with self.lock:
            vec = self.items.get(key)
            if vec is not None:
                self.items.move_to_end(key)
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self.lock:
            self.items[key] = vec
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class ExperiencePool:
    """SEER's experience pool over a Qdrant backend. Use :func:`open_pool` to build one.

    Args:
        backend: the storage engine (see :mod:`seer_langgraph.pool.backend`).
        embeddings: any LangChain ``Embeddings``; called once per commit and once per recall query.
        tenant: the default tenant of every operation; each method also takes ``tenant=``.
        max_observation_chars: observations longer than this are truncated at commit, keeping the
            values that later steps and the answer used (0 keeps everything).
        strategy: how recall is computed: ``"rerank"`` (exact dense prefetch in the engine, exact
            SEER re-rank here), ``"formula"`` (the SEER score computed inside Qdrant by a
            ``FormulaQuery``; the default for a server), ``"index"`` (an in-process exact scoring
            index beside the engine, see :mod:`seer_langgraph.pool.index`; the default for embedded
            engines when numba is installed) or ``"auto"``.
        redact: a function applied to every experience before it is stored; by default a
            :class:`~seer_langgraph.redaction.Redactor` (API keys, tokens, passwords, e-mails, card
            numbers). ``None`` stores records as they are.
        allow_embedder_change: accept embeddings whose name differs from the one the collection
            was built with (the dimension must still match).
        intents: the intent label set; when given, an experience or a recall with an intent
            outside it raises :class:`~seer_langgraph.errors.UnknownIntentError`.
        limits: size limits of a record (:class:`~seer_langgraph.limits.RecordLimits`).
        hygiene: near-duplicate detection, size cap per tenant, pruning
            (:class:`~seer_langgraph.hygiene.HygienePolicy`).
        retry: retries of a failing embedder or engine (:class:`~seer_langgraph.durability.RetryPolicy`).
        spill_dir: directory of the commit journal: commits are journaled before they are written
            and kept there when they fail, for replay (:mod:`seer_langgraph.spill`). ``open_pool``
            sets ``<path>/spill`` for embedded pools; ``None`` (the default here): no journal,
            failed commits raise after the retries.
    """

    def __init__(
        self,
        backend: Backend,
        embeddings: Embeddings,
        *,
        tenant: str = DEFAULT_TENANT,
        max_observation_chars: int = 2000,
        strategy: Literal["auto", "rerank", "formula", "index"] = "auto",
        redact: Callable[[Experience], Experience] | None = _DEFAULT_REDACTOR,  # type: ignore[assignment]
        allow_embedder_change: bool = False,
        intents: "IntentSet | dict[str, str] | None" = None,
        embed_cache_size: int = 256,
        limits: RecordLimits | None = None,
        hygiene: HygienePolicy | None = None,
        retry: RetryPolicy | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if strategy not in ("auto", "rerank", "formula", "index"):
            raise ValueError(f"strategy must be 'auto', 'rerank', 'formula' or 'index', got {strategy!r}")
        if strategy == "formula" and not hasattr(backend, "formula_search"):
            raise ValueError(f"backend {backend.name!r} cannot compute the score in the engine; use strategy='rerank'")
        from .index import IndexedBackend, check_index_strategy, index_available

        if strategy == "index":
            check_index_strategy(backend)
        if strategy == "auto":
            # measured (benchmarks/perf.py): embedded engines use the in-process index when numba
            # is installed; a server computes the score inside Qdrant; else in-engine scoring on
            # qdrant-edge, re-rank here on qdrant-client's local mode (it evaluates formulas in Python)
            if not backend.name.endswith(":server") and index_available():
                strategy = "index"
            else:
                strategy = "formula" if backend.name.endswith(":server") or backend.name == "qdrant-edge" else "rerank"
        if strategy == "index" and not isinstance(backend, IndexedBackend):
            backend = IndexedBackend(backend)  # keeps the index in sync with every write
        self.backend = backend
        self.embeddings = embeddings
        self.tenant = validate_tenant(tenant)
        self.max_observation_chars = max_observation_chars
        self.strategy = strategy
        #: runs over every experience before it is stored; a default :class:`Redactor` unless ``redact=None``
        self.redact = Redactor() if redact is _DEFAULT_REDACTOR else (redact or None)
        #: size limits of a record (see :mod:`seer_langgraph.limits`)
        self.limits = limits or RecordLimits()
        #: near-duplicates, size cap, pruning (see :mod:`seer_langgraph.hygiene`)
        self.hygiene = hygiene or HygienePolicy()
        self.allow_embedder_change = allow_embedder_change
        if isinstance(intents, dict):
            from ..intent import IntentSet

            intents = IntentSet.from_dict(intents)
        #: optional label set: when given, commits and recalls with another intent are refused
        self.intents = intents
        self.initial_prefetch = 64
        self._cache = _EmbedCache(size=embed_cache_size)
        self._lock = threading.RLock()
        self._closed = False
        self._checked_dim: int | None = None
        #: journal, retries and spill (see :mod:`seer_langgraph.durability`); ``spill_dir=None``: no journal
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self._pipeline = CommitPipeline(self, SpillJournal(self.spill_dir) if self.spill_dir is not None else None, retry)
        #: run by :meth:`close` before / after the engine is released (a shared pool's server and lock)
        self._close_hooks: list[Callable[[], None]] = []
        self._released_hooks: list[Callable[[], None]] = []

    # -- helpers ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"ExperiencePool(backend={self.backend.name!r}, tenant={self.tenant!r}, strategy={self.strategy!r})"

    def __enter__(self) -> "ExperiencePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tenant(self, tenant: str | None) -> str:
        return self.tenant if tenant is None else validate_tenant(tenant)

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError(f"the pool over {self.backend.name} is closed")

    def _ensure_dim(self, dim: int) -> None:
        """Create the collection on first write; refuse vectors of another size or embedder."""
        if self._checked_dim == dim:
            return
        with self._lock:
            existing = self.backend.dimension()
            ident = embedder_id(self.embeddings)
            if existing is None:
                self.backend.ensure_collection(dim, {"seer_schema": _SCHEMA, "embedder": ident, "dimension": dim})
            elif existing != dim:
                raise DimensionMismatchError(
                    f"the embeddings ({ident}) give {dim}-dimensional vectors but the pool's collection "
                    f"({self.backend.name}) holds {existing}-dimensional vectors; open it with the embeddings "
                    "it was built with, or use a new collection or path"
                )
            else:
                stored = self.backend.metadata().get("embedder")
                if stored and stored != ident and not self.allow_embedder_change:
                    raise DimensionMismatchError(
                        f"the pool was built with embeddings {stored!r} but is opened with {ident!r}: vectors from "
                        "two models are not comparable; pass the original embeddings, or "
                        "allow_embedder_change=True if they are really the same model"
                    )
            self._checked_dim = dim

    @staticmethod
    def _unit32(vector: Sequence[float], what: str) -> np.ndarray:
        try:
            return normalize(vector).astype(np.float32)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None

    def _validate_vectors(self, vectors: dict[str, Sequence[float]], where: str) -> dict[str, np.ndarray]:
        missing = [n for n in VECTOR_NAMES if n not in vectors]
        if missing:
            raise ValueError(f"{where}: missing vector(s) {missing}; expected {list(VECTOR_NAMES)}")
        out = {n: self._unit32(vectors[n], f"{where}: vector {n!r}") for n in VECTOR_NAMES}
        dims = {v.shape[0] for v in out.values()}
        if len(dims) != 1:
            raise DimensionMismatchError(f"{where}: vectors have different sizes {sorted(dims)}")
        return out

    def _prepare(self, exp: Experience, tenant: str | None) -> Experience:
        if not isinstance(exp, Experience):
            raise TypeError(f"expected an Experience, got {type(exp).__name__}")
        if self.intents is not None:
            self.intents.validate_label(exp.intent)
        if tenant is not None and exp.tenant != tenant:
            exp = exp.model_copy(update={"tenant": validate_tenant(tenant), "id": "", "content_hash": ""})
            exp = Experience.model_validate(exp.model_dump())
        self.limits.check(exp)
        if self.redact is not None:
            exp = self.redact(exp)
            if not isinstance(exp, Experience):
                raise TypeError(f"the redact function must return an Experience, got {type(exp).__name__}")
        if self.max_observation_chars:
            exp = exp.truncated(self.max_observation_chars)
        self.limits.check_stored(exp)
        return exp

    @staticmethod
    def _payload(exp: Experience) -> dict[str, Any]:
        return {
            "tenant": exp.tenant,
            "intent": exp.intent,
            "tools": list(dict.fromkeys(exp.tools)),
            "usage": exp.usage.model_dump(),
            "record": exp.model_dump(mode="json", exclude={"usage"}),
        }

    @staticmethod
    def _to_experience(point: StoredPoint) -> Experience:
        """The stored record, validated: a record whose content no longer matches its content hash
        (edited, torn, corrupted) raises :class:`CorruptRecordError` instead of being returned."""
        record = point.payload.get("record") or {}
        cached = _RECORDS.get(point.id, record)
        if cached is not None:  # the same stored content, validated before: only the usage differs
            # a deep copy (about half the cost of validating): callers may modify what they get
            return cached.model_copy(update={"usage": Usage.model_validate(point.payload.get("usage") or {})}, deep=True)
        data = dict(record)
        data["usage"] = point.payload.get("usage") or {}
        try:
            exp = Experience.model_validate(data)
            _RECORDS.put(point.id, record, exp)  # kept from its second read on (a private copy)
            return exp
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CorruptRecordError(
                f"stored record {point.id} is corrupt ({first['msg']}); it is skipped by recall and list. "
                "Find such records with `seer pool verify` and delete them (or restore them from an export)"
            ) from None

    def _valid_experiences(self, points: Iterable[StoredPoint]) -> Iterator[tuple[StoredPoint, Experience]]:
        """Points with their validated records; corrupt ones are skipped with a warning."""
        for p in points:
            try:
                yield p, self._to_experience(p)
            except CorruptRecordError as exc:
                logger.warning("%s", exc)

    def _texts(self, exp: Experience) -> list[str]:
        return [exp.trajectory_text(), exp.request]

    # -- embeddings -------------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        """Embed a recall query (a history H_t or a request), with a per-pool cache."""
        self._check_open()
        if not isinstance(text, str) or not text.strip():
            raise ValueError("cannot recall for an empty request or history")
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        vec = self._unit32(self.embeddings.embed_query(text), "query embedding")
        self._cache.put(text, vec)
        return vec

    async def aembed_query(self, text: str) -> np.ndarray:
        """Async twin of :meth:`embed_query`."""
        self._check_open()
        if not isinstance(text, str) or not text.strip():
            raise ValueError("cannot recall for an empty request or history")
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        vec = self._unit32(await self.embeddings.aembed_query(text), "query embedding")
        self._cache.put(text, vec)
        return vec

    def _embed_experiences(self, exps: list[Experience]) -> list[dict[str, np.ndarray]]:
        texts = [t for e in exps for t in self._texts(e)]
        raw = self.embeddings.embed_documents(texts) if texts else []
        return self._pair_vectors(exps, raw)

    async def _aembed_experiences(self, exps: list[Experience]) -> list[dict[str, np.ndarray]]:
        texts = [t for e in exps for t in self._texts(e)]
        raw = await self.embeddings.aembed_documents(texts) if texts else []
        return self._pair_vectors(exps, raw)

    def _pair_vectors(self, exps: list[Experience], raw: list[list[float]]) -> list[dict[str, np.ndarray]]:
        if len(raw) != 2 * len(exps):
            raise PoolError(f"embeddings returned {len(raw)} vectors for {2 * len(exps)} texts")
        return [
            self._validate_vectors({"traj": raw[2 * i], "query": raw[2 * i + 1]}, f"experience {e.id}")
            for i, e in enumerate(exps)
        ]

    # -- writes -----------------------------------------------------------------------------
    def _write(self, exps: list[Experience], vectors: list[dict[str, np.ndarray]]) -> list[CommitResult]:
        """Upsert the experiences that are not stored yet; return one result per input."""
        self._check_open()
        if not exps:
            return []
        self._ensure_dim(int(vectors[0]["traj"].shape[0]))
        for v, e in zip(vectors, exps):
            if v["traj"].shape[0] != self._checked_dim:
                raise DimensionMismatchError(
                    f"experience {e.id}: vectors have {v['traj'].shape[0]} dimensions, the collection {self._checked_dim}"
                )
        with self._lock:
            present: set[str] = set()
            for tenant in {e.tenant for e in exps}:
                ids = [e.id for e in exps if e.tenant == tenant]
                present |= {p.id for p in self.backend.retrieve(ids, tenant)}
            results, points, seen = [], [], set()
            for e, v in zip(exps, vectors):
                new = e.id not in present and e.id not in seen
                results.append(CommitResult(id=e.id, created=new))
                if new:
                    seen.add(e.id)
                    points.append(PointData(id=e.id, vectors=v, payload=self._payload(e)))
            self.backend.upsert(points)
        return results

    def commit(self, experience: Experience, *, tenant: str | None = None, vectors: dict[str, Sequence[float]] | None = None) -> CommitResult:
        """Store one experience (idempotent by content hash). Vectors are computed unless given.

        The record is embedded first and written in one upsert, so a failure leaves nothing behind.
        """
        return self.commit_many([experience], tenant=tenant, vectors=[vectors] if vectors is not None else None)[0]

    add = commit

    def commit_many(
        self,
        experiences: Iterable[Experience],
        *,
        tenant: str | None = None,
        vectors: list[dict[str, Sequence[float]]] | None = None,
    ) -> list[CommitResult]:
        """Store several experiences; each is written whole or not at all.

        Each is redacted, size-checked and truncated, journaled (when the pool has a spill
        directory), embedded and written, with retries; near-duplicates are counted on the record
        they duplicate instead of stored. A commit that still fails is kept in the journal and
        reported as ``status="spilled"`` (see :mod:`seer_langgraph.durability`).
        """
        self._check_open()
        exps, vecs = self._commit_inputs(experiences, tenant, vectors)
        return self._pipeline.commit(exps, vecs)

    def _commit_inputs(
        self, experiences: Iterable[Experience], tenant: str | None, vectors: list[dict[str, Sequence[float]]] | None
    ) -> tuple[list[Experience], list[dict[str, np.ndarray]] | None]:
        if isinstance(experiences, (Experience, str, bytes, dict)):
            raise TypeError(f"commit_many takes an iterable of Experience, got {type(experiences).__name__}")
        exps = [self._prepare(e, tenant) for e in experiences]
        if vectors is None:
            return exps, None
        if len(vectors) != len(exps):
            raise ValueError(f"got {len(vectors)} vector sets for {len(exps)} experiences")
        vecs = []
        for v, e in zip(vectors, exps):
            if not isinstance(v, dict):
                raise TypeError(f"experience {e.id}: vectors must be a dict {{'traj': [...], 'query': [...]}}, got {type(v).__name__}")
            vecs.append(self._validate_vectors(v, f"experience {e.id}"))
        try:
            dim = self._checked_dim or (self.backend.dimension() if vecs else None)
        except Exception:  # the engine is unreachable: the write path retries, then spills
            dim = None
        for v, e in zip(vecs, exps):
            if dim is not None and v["traj"].shape[0] != dim:
                raise DimensionMismatchError(f"experience {e.id}: vectors have {v['traj'].shape[0]} dimensions, the collection {dim}")
        return exps, vecs

    async def acommit(self, experience: Experience, *, tenant: str | None = None, vectors: dict[str, Sequence[float]] | None = None) -> CommitResult:
        """Async twin of :meth:`commit`."""
        return (await self.acommit_many([experience], tenant=tenant, vectors=[vectors] if vectors is not None else None))[0]

    async def acommit_many(
        self,
        experiences: Iterable[Experience],
        *,
        tenant: str | None = None,
        vectors: list[dict[str, Sequence[float]]] | None = None,
    ) -> list[CommitResult]:
        """Async twin of :meth:`commit_many`."""
        self._check_open()
        exps, vecs = self._commit_inputs(experiences, tenant, vectors)
        return await self._pipeline.acommit(exps, vecs)

    # -- durability and hygiene -------------------------------------------------------------
    def replay_spill(self) -> ReplayReport:
        """Store the commits waiting in the spill journals (this pool's and orphans'); see :mod:`seer_langgraph.durability`."""
        self._check_open()
        return self._pipeline.replay()

    async def areplay_spill(self) -> ReplayReport:
        """Async twin of :meth:`replay_spill`."""
        return await asyncio.to_thread(self.replay_spill)

    def spill_pending(self) -> int:
        """How many commits wait in the spill journals for a replay (0 without a spill directory)."""
        journal = self._pipeline.journal
        return len(journal.pending()) if journal is not None else 0

    def prune(self, max_records: int | None = None, *, tenant: str | None = None, dry_run: bool = False) -> PruneReport:
        """Drop the tenant's least useful records until at most ``max_records`` are left.

        Least useful first: the lowest Laplace-smoothed success rate, then the least recalled,
        then the oldest (see :mod:`seer_langgraph.hygiene`). ``max_records`` defaults to the
        policy's ``max_per_tenant``; ``dry_run`` reports without deleting.
        """
        self._check_open()
        cap = self.hygiene.max_per_tenant if max_records is None else max_records
        if cap is None:
            raise ValueError("say how many records to keep: prune(max_records=N), or set HygienePolicy(max_per_tenant=N)")
        return prune_tenant(self, self._tenant(tenant), cap, dry_run=dry_run)

    async def aprune(self, max_records: int | None = None, *, tenant: str | None = None, dry_run: bool = False) -> PruneReport:
        """Async twin of :meth:`prune`."""
        return await asyncio.to_thread(self.prune, max_records, tenant=tenant, dry_run=dry_run)

    def delete(self, ids: str | Iterable[str], *, tenant: str | None = None) -> int:
        """Delete experiences of ``tenant`` by id; ids of other tenants are left alone. Returns how many."""
        self._check_open()
        t = self._tenant(tenant)
        wanted = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))  # an id listed twice counts once
        with self._lock:
            own = list(dict.fromkeys(p.id for p in self.backend.retrieve(wanted, t)))
            self.backend.delete(own)
        return len(own)

    async def adelete(self, ids: str | Iterable[str], *, tenant: str | None = None) -> int:
        """Async twin of :meth:`delete`."""
        return await asyncio.to_thread(self.delete, ids, tenant=tenant)

    def record_outcome(self, ids: Iterable[str], success: bool, *, tenant: str | None = None) -> int:
        """Count one recall and its outcome on each experience in ``ids`` (for pruning)."""
        self._check_open()
        t = self._tenant(tenant)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        with self._lock:
            points = self.backend.retrieve(wanted, t)
            for p in points:
                usage = dict(p.payload.get("usage") or {})
                usage["recalled"] = int(usage.get("recalled", 0)) + 1
                key = "succeeded" if success else "failed"
                usage[key] = int(usage.get(key, 0)) + 1
                self.backend.set_payload(p.id, {"usage": usage})
        return len(points)

    async def arecord_outcome(self, ids: Iterable[str], success: bool, *, tenant: str | None = None) -> int:
        """Async twin of :meth:`record_outcome`."""
        return await asyncio.to_thread(self.record_outcome, list(ids), success, tenant=tenant)

    # -- reads ------------------------------------------------------------------------------
    def get(self, experience_id: str, *, tenant: str | None = None) -> Experience | None:
        """The experience with this id in ``tenant``, or ``None``."""
        self._check_open()
        with self._lock:
            points = self.backend.retrieve([experience_id], self._tenant(tenant))
        return self._to_experience(points[0]) if points else None

    async def aget(self, experience_id: str, *, tenant: str | None = None) -> Experience | None:
        """Async twin of :meth:`get`."""
        return await asyncio.to_thread(self.get, experience_id, tenant=tenant)

    def list(self, *, tenant: str | None = None, limit: int = 100, offset: str | None = None) -> tuple[list[Experience], str | None]:
        """One page of the tenant's experiences (id order) and the offset of the next page."""
        self._check_open()
        with self._lock:
            points, nxt = self.backend.scroll(self._tenant(tenant), limit, offset)
        return [e for _, e in self._valid_experiences(points)], nxt

    async def alist(self, *, tenant: str | None = None, limit: int = 100, offset: str | None = None) -> tuple[list[Experience], str | None]:
        """Async twin of :meth:`list`."""
        return await asyncio.to_thread(self.list, tenant=tenant, limit=limit, offset=offset)

    def scroll(self, *, tenant: str | None = None, batch_size: int = 256) -> Iterator[Experience]:
        """Every experience of ``tenant``, lazily."""
        offset: str | None = None
        while True:
            page, offset = self.list(tenant=tenant, limit=batch_size, offset=offset)
            yield from page
            if offset is None:
                return

    def count(self, *, tenant: str | None = None, all_tenants: bool = False) -> int:
        """Number of experiences of ``tenant`` (or of every tenant with ``all_tenants=True``)."""
        self._check_open()
        with self._lock:
            return self.backend.count(None if all_tenants else self._tenant(tenant))

    async def acount(self, *, tenant: str | None = None, all_tenants: bool = False) -> int:
        """Async twin of :meth:`count`."""
        return await asyncio.to_thread(self.count, tenant=tenant, all_tenants=all_tenants)

    def stats(self) -> PoolStats:
        """Backend, dimension, embedder and per-tenant counts."""
        self._check_open()
        with self._lock:
            tenants = self.backend.tenants()
            return PoolStats(
                backend=self.backend.name,
                collection_dimension=self.backend.dimension(),
                embedder=self.backend.metadata().get("embedder"),
                total=sum(tenants.values()),
                tenants=dict(sorted(tenants.items())),
            )

    # -- recall -----------------------------------------------------------------------------
    def search(self, query: RecallQuery, *, tenant: str | None = None) -> list[RecalledExperience]:
        """Exact SEER top-k for ``query``, in score order (ties by id), with s1/s2/s3 per hit."""
        self._check_open()
        t = self._tenant(tenant)
        if query.k == 0:
            return []
        with self._lock:
            if self.backend.dimension() is None:
                return []
            dim = self.backend.dimension()
            if query.vector.shape[0] != dim:
                raise DimensionMismatchError(
                    f"the query vector has {query.vector.shape[0]} dimensions, the pool's collection {dim}"
                )
            fetched: dict[str, StoredPoint] = {}
            if self.strategy == "index":
                ranked = self._search_index(query, t, fetched)
            elif self.strategy == "formula":
                ranked = self._search_formula(query, t)
            else:
                ranked = self._search_rerank(query, t)
            missing = [r.id for r in ranked if r.id not in fetched]
            points = {**fetched, **{p.id: p for p in self.backend.retrieve(missing, t)}} if missing else fetched
        out = []
        valid = {p.id: e for p, e in self._valid_experiences(points[r.id] for r in ranked if r.id in points)}
        for r in ranked:
            if r.id in valid:
                # validated already: constructing with validation would re-hash the record (~0.1 ms each)
                out.append(RecalledExperience.model_construct(experience=valid[r.id], s1=r.s1, s2=r.s2, s3=r.s3, score=r.score))
        return out

    async def asearch(self, query: RecallQuery, *, tenant: str | None = None) -> list[RecalledExperience]:
        """Async twin of :meth:`search`."""
        return await asyncio.to_thread(self.search, query, tenant=tenant)

    @staticmethod
    def _exact(query: RecallQuery, hits: list[DenseHit]) -> list[ScoreBreakdown]:
        scored = []
        for h in hits:
            s1 = float(np.dot(query.vector, normalize(h.vector)))
            item = score_candidate(query, h.id, s1, h.tools, h.intent)
            if query.min_score is None or item.score >= query.min_score:
                scored.append(item)
        scored.sort(key=rank_key)
        return scored

    @staticmethod
    def _threshold(query: RecallQuery, scored: list[ScoreBreakdown]) -> float:
        """The score an unseen record would have to beat to enter the top k."""
        kth = scored[query.k - 1].score if len(scored) >= query.k else -np.inf
        if query.min_score is not None:
            kth = max(kth, query.min_score)
        return kth

    def _search_index(self, query: RecallQuery, tenant: str, fetched: dict[str, StoredPoint]) -> list[ScoreBreakdown]:
        """Exact top k via the in-process index (:mod:`.index`): bounds prune, :meth:`_exact` decides.

        The few rows the bounds cannot rule out are fetched from the engine (vectors and payload,
        kept in ``fetched`` for the results) and scored by :meth:`_exact`, like every strategy.
        """
        from .index import IndexOutOfSyncError

        fetch = getattr(self.backend, "retrieve_scoring", None)  # the one vector needed, not both

        def evaluate(ids: list[str]) -> list[ScoreBreakdown]:
            if fetch is not None:
                got = fetch(ids, tenant, query.vector_name, full_payload=True)
            else:
                got = self.backend.retrieve(ids, tenant, with_vectors=True)
            if len(got) != len(set(ids)):
                raise IndexOutOfSyncError(f"{len(set(ids)) - len(got)} indexed id(s) are not in tenant {tenant!r}")
            fetched.update((p.id, p) for p in got)
            hits = [
                DenseHit(p.id, 0.0, p.vectors[query.vector_name], tuple(p.payload.get("tools") or ()), p.payload.get("intent"))
                for p in got
            ]
            return self._exact(query, hits)

        return self.backend.index_search(query, tenant, evaluate)  # type: ignore[attr-defined]

    def _search_rerank(self, query: RecallQuery, tenant: str) -> list[ScoreBreakdown]:
        """Exact dense prefetch of M, exact SEER re-rank, widen M until the bound proves exactness.

        Every unseen record has s1 <= the M-th prefetch score and s2, s3 <= 1, so once
        ``w1*s1_M + w2 + w3`` is below the k-th best score no unseen record can enter the top k.
        """
        limit = max(self.initial_prefetch, 4 * query.k)
        while True:
            hits = self.backend.dense_search(query.vector, query.vector_name, tenant, limit)
            scored = self._exact(query, hits)
            if len(hits) < limit:
                return scored[: query.k]  # the whole tenant was seen
            s1_m = min(h.score for h in hits)
            bound = query.weights.trajectory * (s1_m + _EPS) + query.max_bonus()
            if bound < self._threshold(query, scored) - _EPS:
                return scored[: query.k]
            limit *= 4

    def _search_formula(self, query: RecallQuery, tenant: str) -> list[ScoreBreakdown]:
        """The SEER score computed inside Qdrant over a dense prefetch, made exact the same way.

        Two conditions are checked each round: the prefetch bound (as in :meth:`_search_rerank`,
        with the M-th dense score asked of the engine) and enough returned rows that no float32
        near-tie beyond them can change the exact float64 top k.
        """
        prefetch = max(self.initial_prefetch, 4 * query.k)
        rows = query.k + 8
        backend: Any = self.backend
        while True:
            hits = backend.formula_search(query, tenant, prefetch, rows)
            scored = self._exact(query, hits)
            threshold = self._threshold(query, scored)
            if len(hits) == rows and min(h.score for h in hits) + 2 * _EPS >= threshold:
                rows *= 2
                continue
            s1_m = backend.dense_score_at(query.vector, query.vector_name, tenant, prefetch)
            if s1_m is None:
                return scored[: query.k]
            bound = query.weights.trajectory * (s1_m + _EPS) + query.max_bonus()
            if bound < threshold - _EPS:
                return scored[: query.k]
            prefetch *= 4

    def make_query(
        self,
        text: str,
        *,
        tools: Sequence[str] = (),
        intent: str | None = None,
        k: int = 4,
        weights: SeerWeights | None = None,
        min_score: float | None = None,
        mode: RecallMode = "stepwise",
    ) -> RecallQuery:
        """Embed ``text`` (the history H_t, or the request in query mode) into a :class:`RecallQuery`."""
        if self.intents is not None:
            self.intents.validate_label(intent)
        return RecallQuery(
            vector=self.embed_query(text),
            tools=tuple(tools),
            intent=intent,
            k=k,
            min_score=min_score,
            weights=weights or SeerWeights(),
            mode=mode,
        )

    def recall(
        self,
        text: str,
        *,
        tools: Sequence[str] = (),
        intent: str | None = None,
        k: int = 4,
        weights: SeerWeights | None = None,
        min_score: float | None = None,
        mode: RecallMode = "stepwise",
        tenant: str | None = None,
    ) -> list[RecalledExperience]:
        """Embed ``text`` and return the SEER top-k (see :meth:`search`)."""
        q = self.make_query(text, tools=tools, intent=intent, k=k, weights=weights, min_score=min_score, mode=mode)
        return self.search(q, tenant=tenant)

    async def arecall(
        self,
        text: str,
        *,
        tools: Sequence[str] = (),
        intent: str | None = None,
        k: int = 4,
        weights: SeerWeights | None = None,
        min_score: float | None = None,
        mode: RecallMode = "stepwise",
        tenant: str | None = None,
    ) -> list[RecalledExperience]:
        """Async twin of :meth:`recall`."""
        if self.intents is not None:
            self.intents.validate_label(intent)
        vec = await self.aembed_query(text)
        q = RecallQuery(vector=vec, tools=tuple(tools), intent=intent, k=k, min_score=min_score, weights=weights or SeerWeights(), mode=mode)
        return await self.asearch(q, tenant=tenant)

    # -- JSONL ------------------------------------------------------------------------------
    def export_jsonl(self, path: str | os.PathLike[str] | IO[str], *, tenant: str | None = None, include_vectors: bool = True) -> int:
        """Write the tenant's experiences as JSON lines (with their vectors, so import needs no model).

        A path is written atomically (temporary file, then rename). Returns the number of lines.
        """
        self._check_open()
        t = self._tenant(tenant)

        def dump(fh: IO[str]) -> int:
            n, offset = 0, None
            while True:
                with self._lock:
                    points, offset = self.backend.scroll(t, 256, offset, with_vectors=include_vectors)
                for p in points:
                    row = self._to_experience(p).model_dump(mode="json")
                    if include_vectors:
                        row["vectors"] = {k: [float(x) for x in v] for k, v in p.vectors.items()}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    n += 1
                if offset is None:
                    return n

        if isinstance(path, io.TextIOBase) or hasattr(path, "write"):
            return dump(path)  # type: ignore[arg-type]
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                n = dump(fh)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return n

    def _parse_jsonl(
        self, path: str | os.PathLike[str], tenant: str | None
    ) -> tuple[list[Experience], list[dict[str, np.ndarray] | None], list[tuple[int, str]]]:
        exps: list[Experience] = []
        vecs: list[dict[str, np.ndarray] | None] = []
        errors: list[tuple[int, str]] = []
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    errors.append((lineno, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))
                    continue
                if not line.strip():
                    continue
                try:
                    row = _loads(line)
                except json.JSONDecodeError as exc:
                    errors.append((lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"))
                    continue
                if not isinstance(row, dict):
                    errors.append((lineno, f"expected a JSON object, got {type(row).__name__}"))
                    continue
                raw_vectors = row.pop("vectors", None)
                try:
                    if tenant is not None:
                        row["tenant"] = validate_tenant(tenant)
                        row.pop("id", None)
                        row.pop("content_hash", None)
                    exp = Experience.model_validate(row)
                    vec = self._validate_vectors(raw_vectors, "vectors") if raw_vectors is not None else None
                    if vec is not None and self.backend.dimension() not in (None, vec["traj"].shape[0]):
                        raise DimensionMismatchError(
                            f"vectors have {vec['traj'].shape[0]} dimensions, the collection {self.backend.dimension()}"
                        )
                except ValidationError as exc:
                    first = exc.errors()[0]
                    loc = ".".join(str(x) for x in first["loc"]) or "record"
                    errors.append((lineno, f"{loc}: {first['msg']}"))
                    continue
                except (ValueError, TypeError) as exc:
                    errors.append((lineno, str(exc)))
                    continue
                exps.append(exp)
                vecs.append(vec)
        return exps, vecs, errors

    def import_jsonl(
        self,
        path: str | os.PathLike[str],
        *,
        tenant: str | None = None,
        skip_invalid: bool = False,
        batch_size: int = 512,
        progress: bool = False,
    ) -> ImportReport:
        """Import experiences from JSON lines, validating every line first.

        If any line is invalid, nothing is imported and :class:`ImportValidationError` lists each
        bad line as ``file:line: problem`` -- unless ``skip_invalid=True``, which imports the
        valid lines and reports the others. Lines carrying ``vectors`` are not re-embedded.
        ``tenant`` moves every record into that tenant (their ids change accordingly).
        """
        self._check_open()
        exps, vecs, errors = self._parse_jsonl(path, tenant)
        if errors and not skip_invalid:
            raise ImportValidationError(str(path), errors)
        report = ImportReport(path=str(path), skipped_invalid=errors)
        batches = range(0, len(exps), batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"import {Path(path).name}", unit="batch")
        for start in batches:
            chunk = [self._prepare(e, None) for e in exps[start : start + batch_size]]
            chunk_vecs = vecs[start : start + batch_size]
            need = [i for i, v in enumerate(chunk_vecs) if v is None]
            if need:
                embedded = self._embed_experiences([chunk[i] for i in need])
                for i, v in zip(need, embedded):
                    chunk_vecs[i] = v
            results = self._write(chunk, chunk_vecs)  # type: ignore[arg-type]
            report.imported += sum(r.created for r in results)
            report.already_present += sum(not r.created for r in results)
        return report

    async def aimport_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> ImportReport:
        """Async twin of :meth:`import_jsonl`."""
        return await asyncio.to_thread(self.import_jsonl, path, **kwargs)

    async def aexport_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> int:
        """Async twin of :meth:`export_jsonl`."""
        return await asyncio.to_thread(self.export_jsonl, path, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and release the engine. Further calls raise :class:`PoolClosedError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for hook in list(self._close_hooks):
                    try:
                        hook()
                    except Exception as exc:  # pragma: no cover - a hook never blocks the close
                        logger.warning("close hook failed (%s)", exc)
                try:
                    self.backend.close()
                finally:
                    if self._pipeline.journal is not None:
                        self._pipeline.journal.close()  # what is still pending stays for the next opener
                    for hook in list(self._released_hooks):
                        hook()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await asyncio.to_thread(self.close)
