"""An in-process exact scoring index beside the pool: SEER recall in well under a millisecond.

Qdrant stays the system of record (persistence, payloads, tenants, the server path). This index
keeps, per tenant, a compact copy of what the SEER score needs -- each vector as int8 codes with a
per-row scale plus an int8 residual, the tool set as a bitmask, the intent as a small integer --
and answers :meth:`ExperiencePool.search <seer_langgraph.pool.ExperiencePool.search>` exactly:

1. **Stage 1** (numba, both cores): for every row of the tenant, an upper and a lower bound of the
   SEER score from the int8 dot product with the int16-quantised query and the *known*
   quantisation error of that row and of the query (Cauchy-Schwarz on the residuals). Every row
   whose upper bound is below the k-th largest lower bound (or below ``min_score``) cannot be in
   the top k and is dropped -- typically all but a few dozen of 25k rows.
2. **Stage 2**: the survivors' bounds are tightened with the int8 residual against the float64
   query (error about 1/250 of stage 1) and pruned again: typically k rows are left.
3. **Exact rescoring**: the rows left are fetched from the engine (vectors and payload, one
   call) and scored by the pool's own float64 code (``ExperiencePool._exact``), lazily in order of
   their upper bounds until no unseen row can beat or tie the k-th exact score. The result is
   bit-identical to :func:`~seer_langgraph.scoring.reference_top_k`: same ids, same s1/s2/s3/score
   floats, ties by id.

The bounds hold for the reference's *floats*: they are widened by a slack that covers every
float64 rounding difference (1e-9, against quantisation errors of about 1e-2 and 3e-5).

Sync: :class:`IndexedBackend` wraps the pool's backend and updates the index on every write that
goes through it (upsert, delete, payload changes of tenant/tools/intent), so no write path of the
pool can bypass it. The index is built lazily at the first search or write: from a persisted copy
(edge pools keep one in ``<shard>/seer_index/``, saved at close and verified at load against the
engine -- per-tenant counts, the set of ids and a sample of rows -- and rebuilt on any mismatch), or
else from a scroll of the stored vectors (never by re-embedding).

Memory: 2 bytes per dimension per named vector plus ~40 bytes per row: 100k experiences with two
384-d vectors take about 158 MB (the engine's float32 copy takes 307 MB).

Requires numba (``pip install numba``); :func:`index_available` says whether it is installed.

Example:
    >>> import numpy as np, pytest
    >>> _ = pytest.importorskip("numba")
    >>> from seer_langgraph.scoring import RecallQuery
    >>> idx = ScoringIndex()
    >>> rng = np.random.default_rng(0)
    >>> vecs = rng.normal(size=(3, 8)).astype(np.float32)
    >>> idx.add(["a", "b", "c"], ["t"] * 3, [["x"], ["y"], []], ["i", None, "i"], {"traj": vecs, "query": vecs})
    >>> rows, lo, hi = idx.candidates(RecallQuery(vector=vecs[1], tools=("y",), k=1), "t")
    >>> [idx.ids("t")[r] for r in rows]
    ['b']
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import PoolError
from ..scoring import RecallQuery, ScoreBreakdown, SeerWeights, normalize, rank_key, score_candidate
from .backend import VECTOR_NAMES, DenseHit, PointData, StoredPoint

__all__ = [
    "INDEX_DIR",
    "check_index_strategy",
    "IndexOutOfSyncError",
    "IndexedBackend",
    "ScoringIndex",
    "index_available",
    "mark_index_dirty",
]

logger = logging.getLogger(__name__)

#: name of the directory, inside an edge shard's directory, that holds the persisted index
INDEX_DIR = "seer_index"
_FORMAT = 1
_SCORING_KEYS = ("tenant", "tools", "intent")
_DENSE = SeerWeights(trajectory=1.0, toolchain=0.0, intent=0.0)
# one numba parallel region at a time: numba's default (workqueue) threading layer must not be
# entered from two Python threads at once
_KERNEL_LOCK = threading.Lock()


def index_available() -> bool:
    """True when numba is installed, so ``strategy="index"`` can be used."""
    return importlib.util.find_spec("numba") is not None


def check_index_strategy(backend: Any) -> None:
    """Raise ``ValueError`` if ``strategy="index"`` cannot be used with ``backend``.

    The index is a copy of the engine's data in this process, kept in sync with this process's
    writes: it needs numba, and an embedded engine (a server may be written to by others).
    """
    name = getattr(backend, "name", "")
    if name.endswith(":server"):
        raise ValueError(
            "strategy='index' keeps an in-process copy in sync with this process's writes; a Qdrant server "
            "can be written to by other processes: use strategy='formula' (the default for a server)"
        )
    if not index_available():
        raise ValueError("strategy='index' needs numba: pip install numba (or use strategy='auto')")


def _kernels() -> Any:
    from . import _kernels as k  # imports numba: only when an index is used

    return k


class IndexOutOfSyncError(PoolError):
    """The index named a row that the engine does not have: it is rebuilt from the engine."""


# -- quantisation ------------------------------------------------------------------------------
def quantize(vectors: np.ndarray) -> dict[str, np.ndarray]:
    """int8 codes of unit-normalised rows: ``v ~ a*q + b*r``, with error norms rounded up.

    ``e1 >= ||v - a*q||`` bounds stage 1, ``e2 >= ||v - a*q - b*r||`` stage 2 (``v`` normalised
    in float64, as the reference scorer does).
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("expected a 2-d array of vectors")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if np.any(~np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("cannot index a zero or non-finite vector")
    x = x / norms[:, None]
    a = np.abs(x).max(axis=1) / 127.0
    q = np.clip(np.rint(x / a[:, None]), -127, 127)
    e = x - q * a[:, None]
    b = np.abs(e).max(axis=1) / 127.0
    b[b == 0] = 1.0
    r = np.clip(np.rint(e / b[:, None]), -127, 127)
    e2 = e - r * b[:, None]
    pad = lambda v: np.sqrt(np.einsum("ij,ij->i", v, v)) * (1 + 1e-9) + 1e-12  # noqa: E731
    return {"q": q.astype(np.int8), "r": r.astype(np.int8), "a": a, "b": b, "e1": pad(e), "e2": pad(e2)}


def _bonus_table(n_tools: int, w2: float, w3: float) -> np.ndarray:
    """``w2*s2 + w3*s3`` for ``c`` shared tools (row) and intent match ``m`` (column).

    Computed with the reference's own operations (``score_candidate``), so the values are the
    reference's floats exactly.
    """
    table = np.empty((n_tools + 1, 2))
    for c in range(n_tools + 1):
        s2 = c / n_tools if n_tools else 0.0
        for m, s3 in ((0, 0.0), (1, 1.0)):
            table[c, m] = w2 * s2 + w3 * s3
    return table


def quantize_query(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The query as int16 codes ``q16`` with scale ``sx``, and ``exn >= ||x - sx*q16||``."""
    sx = float(np.abs(x).max()) / 127.0
    q16 = np.rint(x / sx).astype(np.int16)
    ex = x - q16 * sx
    return q16, sx, float(np.sqrt(ex @ ex)) * (1 + 1e-9) + 1e-12


# -- storage -----------------------------------------------------------------------------------
_ROW_FIELDS = ("q", "r", "a", "b", "e1", "e2")


@dataclass
class _Tenant:
    """One tenant's rows: ids, tool bitmasks, intent codes and, per vector name, the codes."""

    ids: list[str] = field(default_factory=list)
    row: dict[str, int] = field(default_factory=dict)
    masks: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.uint64))
    intents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    vec: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    hi: np.ndarray = field(default_factory=lambda: np.empty(0))
    order: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def capacity(self) -> int:
        return self.intents.shape[0]

    def arrays(self) -> Iterable[tuple[str, np.ndarray]]:
        yield "masks", self.masks
        yield "intents", self.intents
        for name, fields in self.vec.items():
            for f, arr in fields.items():
                yield f"{name}.{f}", arr

    def nbytes(self) -> int:
        return sum(a[: self.n].nbytes for _, a in self.arrays())

    def reserve(self, need: int, dim: int, names: Sequence[str]) -> None:
        if need <= self.capacity and self.vec:
            return
        cap = max(need, 2 * self.capacity, 64)
        n = self.n

        def grown(old: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            new = np.zeros((cap,) + shape, dtype=dtype)
            if old is not None and n:
                new[:n] = old[:n]
            return new

        self.masks = grown(self.masks, (self.masks.shape[1],), np.uint64)
        self.intents = grown(self.intents, (), np.int32)
        for name in names:
            old = self.vec.get(name, {})
            self.vec[name] = {
                "q": grown(old.get("q"), (dim,), np.int8),
                "r": grown(old.get("r"), (dim,), np.int8),
                **{f: grown(old.get(f), (), np.float64) for f in ("a", "b", "e1", "e2")},
            }

    def widen_masks(self, words: int) -> None:
        if self.masks.shape[1] >= words:
            return
        new = np.zeros((self.masks.shape[0], words), dtype=np.uint64)
        new[:, : self.masks.shape[1]] = self.masks
        self.masks = new

    def scratch(self) -> tuple[np.ndarray, np.ndarray]:
        if self.hi.shape[0] < self.n:
            self.hi = np.empty(max(self.capacity, self.n))
            self.order = np.empty(max(self.capacity, self.n), dtype=np.int64)
        return self.hi, self.order


class ScoringIndex:
    """The in-memory index itself: per-tenant int8 codes, tool masks and intents.

    Not thread-safe on its own; :class:`IndexedBackend` serialises access.

    Args:
        names: the vector names indexed (both by default: stepwise and query-mode recall).
        parallel_threshold: tenants with at least this many rows are scanned on numba's thread
            pool (``NUMBA_NUM_THREADS`` threads). ``None`` (the default): one thread -- on a busy
            machine a parallel region waits for its slowest thread (measured: 12-16 ms instead of
            0.7 ms on 2 shared cores), and one thread already scans 25k rows in about 0.35 ms.
    """

    def __init__(self, names: Sequence[str] = VECTOR_NAMES, *, parallel_threshold: int | None = None) -> None:
        self.names = tuple(names)
        self.parallel_threshold = parallel_threshold
        self.dim: int | None = None
        self._tenants: dict[str, _Tenant] = {}
        self._tenant_of: dict[str, str] = {}
        self._tools: dict[str, int] = {}
        self._intents: dict[str, int] = {}
        self._words = 1
        #: vector names whose codes are still on disk (see :meth:`load`)
        self._pending: dict[str, tuple[Path, list[tuple[str, int, int]]]] = {}
        #: rows whose vector the last :meth:`candidates` read (the others were skipped by class)
        self.last_scanned = 0

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tenant_of)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._tenant_of

    def counts(self) -> dict[str, int]:
        """Rows per tenant (tenants with rows only)."""
        return {t: s.n for t, s in self._tenants.items() if s.n}

    def ids(self, tenant: str) -> list[str]:
        """The ids of ``tenant``'s rows, in row order (a live list: do not modify)."""
        t = self._tenants.get(tenant)
        return t.ids if t is not None else []

    def nbytes(self) -> int:
        """Bytes of the row arrays in use (codes, scales, error norms, masks, intents)."""
        return sum(t.nbytes() for t in self._tenants.values())

    def stats(self) -> dict[str, Any]:
        """Rows, tenants, vector names and memory (array bytes, plus a rough id/dict overhead)."""
        rows = len(self)
        return {
            "rows": rows,
            "tenants": len(self.counts()),
            "names": list(self.names),
            "dimension": self.dim,
            "array_bytes": self.nbytes(),
            "names_not_loaded_yet": sorted(self._pending),
            "id_bytes_estimate": rows * 200,
            "bytes_per_row": (self.nbytes() / rows) if rows else 0.0,
        }

    # -- writing ------------------------------------------------------------------------------
    def _tool_bits(self, tools: Iterable[str], create: bool) -> list[int]:
        bits = []
        for tool in dict.fromkeys(tools):
            bit = self._tools.get(tool)
            if bit is None and create:
                bit = self._tools[tool] = len(self._tools)
            if bit is not None:
                bits.append(bit)
        return bits

    def _intent_code(self, intent: str | None, create: bool) -> int:
        if intent is None:
            return -1
        code = self._intents.get(intent)
        if code is None:
            if not create:
                return -2
            code = self._intents[intent] = len(self._intents)
        return code

    def add(
        self,
        ids: Sequence[str],
        tenants: Sequence[str],
        tools: Sequence[Sequence[str]],
        intents: Sequence[str | None],
        vectors: dict[str, np.ndarray],
    ) -> None:
        """Insert (or replace) rows. ``vectors[name]`` is an ``(m, dim)`` array per indexed name."""
        self._ensure_all()
        m = len(ids)
        if not m:
            return
        if not (len(tenants) == len(tools) == len(intents) == m):
            raise ValueError("ids, tenants, tools and intents must have the same length")
        if len(set(ids)) != m:  # the same id twice in one batch: the last one wins
            last = {pid: i for i, pid in enumerate(ids)}
            keep = sorted(last.values())
            ids, tenants = [ids[i] for i in keep], [tenants[i] for i in keep]
            tools, intents = [tools[i] for i in keep], [intents[i] for i in keep]
            vectors = {name: np.asarray(vectors[name])[keep] for name in self.names}
            m = len(ids)
        coded = {}
        for name in self.names:
            arr = np.asarray(vectors[name])
            if arr.shape[0] != m:
                raise ValueError(f"expected {m} {name!r} vectors, got {arr.shape[0]}")
            if self.dim is None:
                self.dim = int(arr.shape[1])
            if arr.shape[1] != self.dim:
                raise ValueError(f"the index holds {self.dim}-dimensional vectors, got {arr.shape[1]}")
            coded[name] = quantize(arr)
        self.remove([i for i in ids if i in self._tenant_of])
        bits = [self._tool_bits(t, create=True) for t in tools]
        words = max(1, (len(self._tools) + 63) // 64)
        if words > self._words:
            self._words = words
            for t in self._tenants.values():
                t.widen_masks(words)
        by_tenant: dict[str, list[int]] = {}
        for i, t in enumerate(tenants):
            by_tenant.setdefault(t, []).append(i)
        for tname, idx in by_tenant.items():
            t = self._tenants.get(tname)
            if t is None:
                t = self._tenants[tname] = _Tenant(masks=np.zeros((0, self._words), dtype=np.uint64))
            start = t.n
            t.reserve(start + len(idx), self.dim, self.names)  # type: ignore[arg-type]
            sel = np.asarray(idx)
            rows = slice(start, start + len(idx))
            for name in self.names:
                for f in _ROW_FIELDS:
                    t.vec[name][f][rows] = coded[name][f][sel]
            t.masks[rows] = 0
            for off, i in enumerate(idx):
                r = start + off
                for bit in bits[i]:
                    t.masks[r, bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
                t.intents[r] = self._intent_code(intents[i], create=True)
                t.ids.append(ids[i])
                t.row[ids[i]] = r
                self._tenant_of[ids[i]] = tname

    def remove(self, ids: Iterable[str]) -> int:
        """Delete rows by id (unknown ids are ignored); returns how many were removed."""
        self._ensure_all()
        removed = 0
        for pid in ids:
            tname = self._tenant_of.pop(pid, None)
            if tname is None:
                continue
            t = self._tenants[tname]
            r = t.row.pop(pid)
            last = t.n - 1
            if r != last:  # move the last row into the hole
                moved = t.ids[last]
                for _, arr in t.arrays():
                    arr[r] = arr[last]
                t.ids[r] = moved
                t.row[moved] = r
            t.ids.pop()
            removed += 1
        return removed

    def drop_tenant(self, tenant: str) -> None:
        """Forget every row of ``tenant``."""
        self._ensure_all()
        t = self._tenants.pop(tenant, None)
        if t is not None:
            for pid in t.ids:
                self._tenant_of.pop(pid, None)

    # -- search -------------------------------------------------------------------------------
    def candidates(self, query: RecallQuery, tenant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows of ``tenant`` that may be in the exact top k, with bounds ``lo <= score <= hi``.

        Every row left out is provably outside the top k (its upper bound is below the k-th
        largest lower bound, or below ``min_score``).
        """
        t = self._tenants.get(tenant)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
        if t is None or t.n == 0 or query.k == 0:
            return empty
        name = query.vector_name
        if name not in self.names:
            raise ValueError(f"vector {name!r} is not indexed (indexed: {list(self.names)})")
        self._ensure(name)
        x = np.ascontiguousarray(query.vector, dtype=np.float64)
        if x.shape[0] != self.dim:
            raise ValueError(f"the query has {x.shape[0]} dimensions, the index {self.dim}")
        w = query.weights
        w1, w2, w3 = float(w.trajectory), float(w.toolchain), float(w.intent)
        slack = 1e-9 * (1.0 + w1 + w2 + w3)
        qmask = np.zeros(self._words, dtype=np.uint64)
        for bit in self._tool_bits(query.tools, create=False):
            qmask[bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
        bonus = _bonus_table(len(query.tools), w2, w3)
        qintent = self._intent_code(query.intent, create=False)
        min_score = -math.inf if query.min_score is None else float(query.min_score)
        q16, sx, exn = quantize_query(x)
        v = t.vec[name]
        hi, order = t.scratch()
        kern = _kernels()
        k = min(int(query.k), t.n)  # k >= n: every row may be in the top k (and the heaps stay small)
        with _KERNEL_LOCK:
            if self.parallel_threshold is not None and t.n >= self.parallel_threshold:
                kth = kern.stage1_parallel(v["q"], v["a"], v["e1"], t.masks, t.intents, t.n, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, k)
                order[: t.n] = np.arange(t.n)
                scanned = t.n
            else:
                kth, scanned = kern.stage1_by_class(
                    v["q"], v["a"], v["e1"], t.masks, t.intents, t.n, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, k, min_score, order
                )
            rows, lo2, hi2, _ = kern.stage2(
                v["q"], v["r"], v["a"], v["b"], v["e2"], t.masks, t.intents, order, scanned, x, qmask, qintent, bonus,
                w1, slack, hi, max(kth, min_score), k,
            )
        self.last_scanned = int(scanned)
        return rows, lo2, hi2

    def search(
        self,
        query: RecallQuery,
        tenant: str,
        evaluate: Callable[[list[str]], list[ScoreBreakdown]],
    ) -> list[ScoreBreakdown]:
        """The exact top k: :meth:`candidates`, then ``evaluate`` on as few of them as proves it.

        ``evaluate(ids)`` must score the given ids exactly (the pool's float64 code) and return
        those that pass ``min_score``; it raises :class:`IndexOutOfSyncError` if an id is unknown
        to the engine. Candidates are evaluated in order of (upper bound desc, id) until the next
        one can neither beat nor tie-and-precede the k-th exact result.
        """
        rows, _, hi = self.candidates(query, tenant)
        if rows.shape[0] == 0:
            return []
        ids = self._tenants[tenant].ids
        cand = sorted(((-float(hi[i]), ids[int(rows[i])]) for i in range(rows.shape[0])))
        k = query.k
        exact: list[ScoreBreakdown] = []
        pos = 0
        while pos < len(cand):
            if len(exact) >= k:
                kth = exact[k - 1]
                end = pos
                while end < len(cand):
                    neg_hi, pid = cand[end]
                    if -neg_hi < kth.score or (-neg_hi == kth.score and pid > kth.id):
                        break
                    end += 1
                if end == pos:
                    break
            else:
                end = len(cand) if len(cand) <= 2 * k else min(len(cand), pos + k - len(exact))
            exact.extend(evaluate([pid for _, pid in cand[pos:end]]))
            exact.sort(key=rank_key)
            pos = end
        return exact[:k]

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> None:
        """Write the index to the directory ``path`` atomically (a new directory, then a rename)."""
        self._ensure_all()
        target = Path(path)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            tenants = [(name, t) for name, t in self._tenants.items() if t.n]
            fields = ["masks", "intents"] + [f"{n}.{f}" for n in self.names for f in _ROW_FIELDS]
            for fname in fields:
                parts = [dict(t.arrays())[fname][: t.n] for _, t in tenants]
                if parts:
                    arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
                else:
                    arr = np.zeros((0,), dtype=np.int8)
                if fname == "masks" and arr.ndim == 2 and arr.shape[1] < self._words:
                    arr = np.pad(arr, ((0, 0), (0, self._words - arr.shape[1])))
                np.save(tmp / f"{fname}.npy", np.ascontiguousarray(arr))
            all_ids = [pid for _, t in tenants for pid in t.ids]
            np.save(tmp / "ids.npy", np.array(all_ids, dtype=str) if all_ids else np.zeros(0, dtype="<U36"))
            meta = {
                "format": _FORMAT,
                "state": "clean",
                "dimension": self.dim,
                "names": list(self.names),
                "tenants": [[name, t.n] for name, t in tenants],
                "tools": sorted(self._tools, key=self._tools.__getitem__),
                "intents": sorted(self._intents, key=self._intents.__getitem__),
                "words": self._words,
                "saved_at": time.time(),
                **(extra or {}),
            }
            _write_json(tmp / "meta.json", meta)
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
            for stale in target.parent.glob(f".{target.name}.*"):  # left by an interrupted save
                shutil.rmtree(stale, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], eager: Sequence[str] = ("traj",), **kwargs: Any) -> tuple["ScoringIndex", dict[str, Any]]:
        """Read an index written by :meth:`save` and its meta.

        The codes of the vector names in ``eager`` are read at once; the others (``query``, used
        by query-mode recall) at their first use or before the first write. Raises
        ``ValueError`` if the directory is not a clean index of this format.
        """
        src = Path(path)
        meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"index format {meta.get('format')!r}, expected {_FORMAT}")
        if meta.get("state") != "clean":
            raise ValueError(f"index state is {meta.get('state')!r} (written to after it was saved)")
        idx = cls(names=tuple(meta["names"]), **kwargs)
        idx.dim = meta["dimension"]
        idx._tools = {t: i for i, t in enumerate(meta["tools"])}
        idx._intents = {t: i for i, t in enumerate(meta["intents"])}
        idx._words = int(meta["words"])
        ids = np.load(src / "ids.npy").tolist()
        arrays = {}
        now = [n for n in idx.names if n in eager]
        for fname in ["masks", "intents"] + [f"{n}.{f}" for n in now for f in _ROW_FIELDS]:
            # read into the process (not a file mapping): an idle mapping can be evicted by the OS
            # and the next query would page it in from disk
            arrays[fname] = np.load(src / f"{fname}.npy")
        spans = []
        start = 0
        for tname, n in meta["tenants"]:
            end = start + int(n)
            t = _Tenant()
            t.ids = ids[start:end]
            t.row = {pid: r for r, pid in enumerate(t.ids)}
            t.masks = arrays["masks"][start:end]
            t.intents = arrays["intents"][start:end]
            t.vec = {name: {f: arrays[f"{name}.{f}"][start:end] for f in _ROW_FIELDS} for name in now}
            idx._tenants[tname] = t
            for pid in t.ids:
                idx._tenant_of[pid] = tname
            spans.append((tname, start, end))
            start = end
        if start != len(ids):
            raise ValueError("index ids and tenant counts disagree")
        for name in idx.names:
            if name not in now:
                idx._pending[name] = (src, spans)
        return idx, meta

    def _ensure(self, name: str) -> None:
        """Read the codes of a vector name that :meth:`load` left on disk."""
        pending = self._pending.pop(name, None)
        if pending is None:
            return
        src, spans = pending
        arrays = {f: np.load(src / f"{name}.{f}.npy") for f in _ROW_FIELDS}
        for tname, start, end in spans:
            self._tenants[tname].vec[name] = {f: arrays[f][start:end] for f in _ROW_FIELDS}

    def _ensure_all(self) -> None:
        for name in list(self._pending):
            self._ensure(name)


def _warm_kernels() -> None:
    """Import numba and load the compiled kernels (from numba's cache) with a tiny call."""
    idx = ScoringIndex()
    v = np.eye(2, 8, dtype=np.float32) + 0.5
    idx.add(["a", "b"], ["t", "t"], [["x"], []], ["i", None], {name: v for name in idx.names})
    idx.candidates(RecallQuery(vector=v[0], tools=("x",), intent="i", k=1), "t")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def mark_index_dirty(path: str | os.PathLike[str]) -> None:
    """Mark a persisted index stale (before the engine is written to without it).

    Called by the edge backend on its first write of a session, so that a pool opened without
    the index can never leave a persisted index that looks valid but misses its writes.
    """
    meta_path = Path(path) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if meta.get("state") != "dirty":
        meta["state"] = "dirty"
        _write_json(meta_path, meta)


# -- the backend wrapper -----------------------------------------------------------------------
def default_index_path(backend: Any) -> Path | None:
    """Where an embedded backend's index is persisted: inside an edge shard's directory."""
    path = getattr(backend, "path", None)
    if backend.__class__.__name__ == "EdgeBackend" and isinstance(path, Path):
        return path / INDEX_DIR
    return None


class IndexedBackend:
    """A backend wrapper that keeps a :class:`ScoringIndex` in sync with every write.

    Everything else is passed through to the wrapped backend (``inner``), so the pool and its
    callers see the same engine. The index is loaded or built at the first search or write.

    Args:
        inner: the engine (any :class:`~seer_langgraph.pool.backend.Backend`).
        path: where the index is persisted (``None``: not persisted). Defaults to
            ``<shard>/seer_index`` for qdrant-edge.
        verify: how a persisted index is checked against the engine at load. ``"counts"`` (the
            default): it must have been saved clean (no write since, by any pool of this library:
            the edge backend marks it stale before its first write), and match the engine's
            per-tenant counts and a random sample of rows (codes, tools, intent). ``"ids"`` also
            compares every tenant's full id set with the engine's (about 0.6 s more per 100k).
        warm: load the index and numba's compiled kernels in a background thread at once, so the
            first recall does not wait for them (it waits only for what is left).
    """

    def __init__(
        self,
        inner: Any,
        *,
        path: str | os.PathLike[str] | None | bool = True,
        verify: str = "counts",
        warm: bool = True,
        **index_kwargs: Any,
    ) -> None:
        if verify not in ("ids", "counts"):
            raise ValueError(f"verify must be 'ids' or 'counts', got {verify!r}")
        self.inner = inner
        self.name = inner.name
        self.index_path = default_index_path(inner) if path is True else (Path(path) if path else None)
        self.verify = verify
        self._index_kwargs = index_kwargs
        self._index: ScoringIndex | None = None
        self._lock = threading.RLock()
        self._changed = False
        self._marked_dirty = False
        #: how the index was obtained: "loaded", "built" or a reason it was rebuilt
        self.source: str | None = None
        self.load_seconds: float | None = None
        if warm:
            threading.Thread(target=self._warm, name="seer-index-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.index  # noqa: B018 - load or build
            _warm_kernels()
        except Exception:  # the first search loads again and reports the error
            logger.debug("warming the SEER index failed", exc_info=True)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def __repr__(self) -> str:
        state = "not loaded" if self._index is None else f"{len(self._index)} rows"
        return f"IndexedBackend({self.inner!r}, index {state})"

    # -- the index ----------------------------------------------------------------------------
    @property
    def index(self) -> ScoringIndex:
        """The index, loaded or built on first use."""
        with self._lock:
            if self._index is None:
                t0 = time.perf_counter()
                self._index = self._load() or self._build()
                self.load_seconds = time.perf_counter() - t0
            return self._index

    def invalidate(self) -> None:
        """Drop the in-memory index; it is rebuilt from the engine at next use."""
        with self._lock:
            self._index = None
            self._changed = True
            if self.index_path is not None:
                self._mark_dirty()

    def _load(self) -> ScoringIndex | None:
        path = self.index_path
        if path is None or not (path / "meta.json").exists():
            return None
        try:
            idx, meta = ScoringIndex.load(path, **self._index_kwargs)
            reason = self._check(idx, meta)
        except Exception as exc:  # unreadable or partial files: rebuild
            reason = f"unreadable ({type(exc).__name__}: {exc})"
            idx = None
        if reason is None:
            self.source = "loaded"
            return idx
        logger.info("the persisted SEER index at %s is rebuilt: %s", path, reason)
        self.source = f"rebuilt: {reason}"
        return None

    def _check(self, idx: ScoringIndex, meta: dict[str, Any]) -> str | None:
        """Why a loaded index does not match the engine, or ``None`` when it does."""
        dim = self.inner.dimension()
        if dim is None:
            return "the engine has no collection" if len(idx) else None
        if idx.dim is not None and idx.dim != dim:
            return f"dimension {idx.dim} != {dim}"
        if tuple(meta["names"]) != VECTOR_NAMES:
            return f"vector names {meta['names']} != {list(VECTOR_NAMES)}"
        counts = {t: n for t, n in self.inner.tenants().items() if n}
        if counts != idx.counts():
            return "per-tenant counts differ"
        if self.verify == "ids":
            for tenant in counts:
                if set(self._engine_ids(tenant)) != set(idx.ids(tenant)):
                    return f"the ids of tenant {tenant!r} differ"
        # a sample of rows must re-quantise to the same codes, tools and intent
        rng = np.random.default_rng()
        for tenant in counts:
            ids = idx.ids(tenant)
            sample = [ids[int(i)] for i in rng.choice(len(ids), size=min(8, len(ids)), replace=False)]
            points = self.inner.retrieve(sample, tenant, with_vectors=True)
            if len(points) != len(sample):
                return f"rows of tenant {tenant!r} are missing from the engine"
            t = idx._tenants[tenant]
            for p in points:
                r = t.row[p.id]
                tools = {b for b in idx._tool_bits(p.payload.get("tools") or (), create=False)}
                if len(tools) != len(set(p.payload.get("tools") or ())):
                    return f"row {p.id}: tools differ"
                mask = np.zeros(idx._words, dtype=np.uint64)
                for bit in tools:
                    mask[bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
                if not np.array_equal(mask, t.masks[r]) or idx._intent_code(p.payload.get("intent"), False) != t.intents[r]:
                    return f"row {p.id}: tools or intent differ"
                for name in t.vec:  # the names loaded so far
                    code = quantize(np.asarray(p.vectors[name])[None, :])
                    if not (np.array_equal(code["q"][0], t.vec[name]["q"][r]) and np.array_equal(code["r"][0], t.vec[name]["r"][r])):
                        return f"row {p.id}: vector {name!r} differs"
        return None

    def _engine_ids(self, tenant: str) -> list[str]:
        fast = getattr(self.inner, "point_ids", None)
        if fast is not None:
            return list(fast(tenant))
        out, offset = [], None
        while True:
            points, offset = self.inner.scroll(tenant, 1024, offset)
            out += [p.id for p in points]
            if offset is None:
                return out

    def _build(self) -> ScoringIndex:
        idx = ScoringIndex(**self._index_kwargs)
        if self.source is None:
            self.source = "built"
        if self.inner.dimension() is None:
            return idx
        fast = getattr(self.inner, "scroll_scoring", None)
        for tenant in sorted(self.inner.tenants()):
            offset = None
            while True:
                if fast is not None:
                    points, offset = fast(tenant, 1024, offset)
                else:
                    points, offset = self.inner.scroll(tenant, 1024, offset, with_vectors=True)
                self._add_points(idx, points)
                if offset is None:
                    break
        self._changed = True
        return idx

    @staticmethod
    def _add_points(idx: ScoringIndex, points: Sequence[PointData | StoredPoint]) -> None:
        if not points:
            return
        idx.add(
            [p.id for p in points],
            [p.payload["tenant"] for p in points],
            [p.payload.get("tools") or () for p in points],
            [p.payload.get("intent") for p in points],
            {name: np.stack([np.asarray(p.vectors[name], dtype=np.float32) for p in points]) for name in idx.names},
        )

    def _mark_dirty(self) -> None:
        if not self._marked_dirty and self.index_path is not None:
            mark_index_dirty(self.index_path)
            self._marked_dirty = True

    # -- writes: engine first, then the index ---------------------------------------------------
    def upsert(self, points: list[PointData]) -> None:
        with self._lock:
            if points:
                self.index  # noqa: B018 - load before the engine changes, so a persisted copy still verifies
                self._mark_dirty()
            self.inner.upsert(points)
            if points and self._index is not None:
                try:
                    self._add_points(self._index, points)
                    self._changed = True
                except Exception as exc:
                    logger.warning("updating the SEER index failed (%s: %s); it is rebuilt from the engine", type(exc).__name__, exc)
                    self.invalidate()

    def delete(self, ids: list[str]) -> None:
        with self._lock:
            if ids:
                self.index  # noqa: B018
                self._mark_dirty()
            self.inner.delete(ids)
            if ids and self._index is not None:
                self._index.remove(ids)
                self._changed = True

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.inner.set_payload(point_id, payload)
            if self._index is not None and any(key in payload for key in _SCORING_KEYS):
                self.invalidate()  # scoring fields changed outside the pool's write path

    # -- search --------------------------------------------------------------------------------
    def index_search(
        self, query: RecallQuery, tenant: str, evaluate: Callable[[list[str]], list[ScoreBreakdown]]
    ) -> list[ScoreBreakdown]:
        """Exact top k through the index; rebuilt once from the engine if it is out of sync."""
        with self._lock:
            try:
                return self.index.search(query, tenant, evaluate)
            except IndexOutOfSyncError as exc:
                logger.warning("the SEER index disagreed with the engine (%s); rebuilding it", exc)
                self.invalidate()
                self.source = "rebuilt: out of sync"
                return self.index.search(query, tenant, evaluate)

    def dense_search(self, vector: np.ndarray, using: str, tenant: str, limit: int) -> list[DenseHit]:
        """Exact dense top-``limit`` through the index (used by near-duplicate checks at commit).

        Same contract as the engine's: the nearest points of the tenant by dot product, best
        first, each with its stored vector, tools and intent. ``score`` is the float64 cosine
        the reference computes (the engine's is float32: they agree to ~1e-7).
        """
        with self._lock:
            idx = self.index
            if limit <= 0 or using not in idx.names or idx.dim != np.asarray(vector).shape[0] or not idx.ids(tenant):
                return self.inner.dense_search(vector, using, tenant, limit) if limit > 0 and idx.ids(tenant) else []
            q = RecallQuery(vector=vector, k=limit, weights=_DENSE, mode="stepwise" if using == "traj" else "query")
            got: dict[str, StoredPoint] = {}
            fetch = getattr(self.inner, "retrieve_scoring", None)

            def evaluate(ids: list[str]) -> list[ScoreBreakdown]:
                points = fetch(ids, tenant, using) if fetch is not None else self.inner.retrieve(ids, tenant, with_vectors=True)
                if len(points) != len(set(ids)):
                    raise IndexOutOfSyncError(f"{len(set(ids)) - len(points)} indexed id(s) are not in tenant {tenant!r}")
                out = []
                for p in points:
                    got[p.id] = p
                    s1 = float(np.dot(q.vector, normalize(p.vectors[using])))
                    out.append(score_candidate(q, p.id, s1, (), None))
                return out

            try:
                ranked = idx.search(q, tenant, evaluate)
            except IndexOutOfSyncError as exc:
                logger.warning("the SEER index disagreed with the engine (%s); rebuilding it", exc)
                self.invalidate()
                return self.inner.dense_search(vector, using, tenant, limit)
            return [
                DenseHit(r.id, r.s1, np.asarray(got[r.id].vectors[using], dtype=np.float32), tuple(got[r.id].payload.get("tools") or ()), got[r.id].payload.get("intent"))
                for r in ranked
            ]

    # -- lifecycle -----------------------------------------------------------------------------
    def save(self) -> bool:
        """Persist the index now (only if it changed since it was loaded); True if written."""
        with self._lock:
            if self.index_path is None or self._index is None or not self._changed:
                return False
            if self.inner.dimension() is None:
                return False
            self._index.save(self.index_path, {"engine": self.inner.name})
            self._changed = False
            self._marked_dirty = False
            return True

    def close(self) -> None:
        """Persist the index (if it changed), then close the engine."""
        with self._lock:
            try:
                if self._index is not None and self.index_path is not None and self.index_path.parent.is_dir():
                    try:
                        self.save()
                    except Exception as exc:  # the engine stays the truth: a missing index is rebuilt at load
                        logger.warning("could not persist the SEER index at %s (%s: %s)", self.index_path, type(exc).__name__, exc)
            finally:
                self._index = None
                self.inner.close()
