"""Performance of SEER recall at scale, side by side with the reference scan (issue 7).

For pool sizes 1k, 10k and 100k (1M with ``--million``) of realistic records -- 384-d vectors drawn
around 64 clusters, 1-8 tools from a 50-tool vocabulary, 8 intents, 4 tenants -- it measures, in one
run on one machine:

- recall latency p50/p95/p99 of ``ExperiencePool.search`` (full SEER score, stepwise, k=4, the
  records fetched) per backend and strategy, with a tenant filter (4 tenants, a query scans one)
  and without (one tenant holds the whole pool), and the fraction of queries whose top k equals
  the reference exactly (same ids, same s1/s2/s3/score floats, ties by id);
- baseline (a), the paper's way: a per-record Python loop (:func:`~seer_langgraph.scoring.reference_top_k`)
  and baseline (b), the strong way: one vectorized numpy pass over the tenant's float32 matrix,
  with the ratios;
- bulk import rate (JSONL with vectors, and ``commit_many`` with vectors) and single-commit latency;
- cold open of the persisted 100k pool in a fresh process (open + first recall) and its memory;
- the SEER nodes' overhead per agent step: the prebuilt SEER agent minus a plain tool-calling
  graph, same scripted model, same tools, a constant embedder;
- the size of the scoring index.

Writes ``perf.json``, ``perf.md`` and ``perf.png`` (latency vs size, log-log) to ``--out``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/perf.py [--sizes 1000 10000 100000] [--million]
    seer bench perf --out benchmarks/results

``OPENBLAS_NUM_THREADS=1`` is set for you (the process re-executes itself if numpy may already
use several BLAS threads): BLAS threads compete with the scan on a small machine.
qdrant-client's local mode is measured at the sizes where it is feasible (``--client-sizes``,
default 1k and 10k for ``:memory:``, 1k for ``path=``): at 100k it needs ~120 ms per query and
writes cost 4-9 ms per point.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

DIM = 384
N_TOOLS = 50
N_INTENTS = 8
N_CLUSTERS = 64
K = 4
TOOLS = [f"tool_{i:02d}" for i in range(N_TOOLS)]
INTENTS = [f"intent_{i}" for i in range(N_INTENTS)]


# -- data -----------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """Records as arrays (the Experience objects are built in chunks when a pool is filled)."""

    n: int
    tenants: list[str]
    traj: Any  # (n, DIM) float32 unit rows
    qvec: Any  # (n, DIM) float32 unit rows
    tools: list[tuple[str, ...]]
    intents: list[str]
    tenant_of: list[str]
    cluster: Any
    seed: int
    ids: list[str] = field(default_factory=list)

    def experiences(self, start: int, end: int, tenant: str | None = None) -> list[Any]:
        from seer_langgraph import Experience, Step

        out = []
        for i in range(start, end):
            steps = [Step(tool=t, args={"id": i, "n": j}, observation=f"result {j} for record {i}: value {i * 7 % 1000}") for j, t in enumerate(self.tools[i])]
            out.append(
                Experience(
                    request=f"request {i} about topic {int(self.cluster[i])}",
                    steps=steps,
                    answer=f"answer {i}",
                    intent=self.intents[i],
                    tenant=tenant or self.tenant_of[i],
                )
            )
        return out

    def vectors(self, start: int, end: int) -> list[dict[str, Any]]:
        return [{"traj": self.traj[i], "query": self.qvec[i]} for i in range(start, end)]


def make_dataset(n: int, tenants: int = 4, seed: int = 0) -> Dataset:
    """Clustered 384-d unit vectors, cluster-typical tools and intents, tenants round-robin."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLUSTERS, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    cluster = rng.integers(0, N_CLUSTERS, size=n)
    traj = np.empty((n, DIM), dtype=np.float32)
    qvec = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 100_000):  # in chunks: 1M x 384 float64 would be 3 GB at a time
        e = min(n, s + 100_000)
        t = centers[cluster[s:e]] + rng.normal(size=(e - s, DIM)) * (1.4 / math.sqrt(DIM))
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        q = t + rng.normal(size=(e - s, DIM)) * (2.0 / math.sqrt(DIM))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        traj[s:e], qvec[s:e] = t, q
    favourite_tools = [rng.choice(N_TOOLS, size=10, replace=False) for _ in range(N_CLUSTERS)]
    favourite_intent = rng.integers(0, N_INTENTS, size=N_CLUSTERS)
    tools, intents = [], []
    for i in range(n):
        c = int(cluster[i])
        m = int(rng.integers(1, 9))
        pool_ = favourite_tools[c] if rng.random() < 0.8 else np.arange(N_TOOLS)
        tools.append(tuple(TOOLS[t] for t in rng.choice(pool_, size=m, replace=False)))
        intents.append(INTENTS[int(favourite_intent[c])] if rng.random() < 0.7 else INTENTS[int(rng.integers(0, N_INTENTS))])
    names = [f"t{j}" for j in range(tenants)]
    return Dataset(
        n=n,
        tenants=names,
        traj=traj,
        qvec=qvec,
        tools=tools,
        intents=intents,
        tenant_of=[names[i % tenants] for i in range(n)],
        cluster=cluster,
        seed=seed,
    )


@dataclass
class Query:
    vector: Any
    tools: tuple[str, ...]
    intent: str | None


def make_queries(data: Dataset, rows: Sequence[int], count: int, seed: int) -> list[Query]:
    """Histories near stored trajectories: a record's vector plus noise, a prefix of its tool chain
    (sometimes with another tool), its intent most of the time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        j = int(rows[int(rng.integers(0, len(rows)))])
        v = data.traj[j].astype(np.float64) + rng.normal(size=DIM) * (1.2 / math.sqrt(DIM))
        chain = list(data.tools[j][: int(rng.integers(0, 4))])
        if rng.random() < 0.3:
            chain.append(TOOLS[int(rng.integers(0, N_TOOLS))])
        intent = data.intents[j] if rng.random() < 0.8 else INTENTS[int(rng.integers(0, N_INTENTS))]
        out.append(Query(v, tuple(dict.fromkeys(chain)), intent))
    return out


# -- the reference, and the two baselines -----------------------------------------------------------
class TenantMatrix:
    """One tenant's rows as the baselines and the fast reference see them."""

    def __init__(self, data: Dataset, rows: Sequence[int], ids: Sequence[str]) -> None:
        import numpy as np

        from seer_langgraph.scoring import Candidate

        self.rows = np.asarray(rows)
        self.ids = [ids[i] for i in rows]
        self.m32 = np.ascontiguousarray(data.traj[self.rows])
        self.norms = np.linalg.norm(self.m32.astype(np.float64), axis=1)
        self.x64 = self.m32.astype(np.float64) / self.norms[:, None] if len(rows) <= 200_000 else None
        bits = np.zeros(len(rows), dtype=np.uint64)
        for r, i in enumerate(rows):
            for t in data.tools[i]:
                bits[r] |= np.uint64(1) << np.uint64(int(t[5:]))
        self.bits = bits
        self.intent = np.array([int(data.intents[i][7:]) for i in rows])
        self.tools = [data.tools[i] for i in rows]
        self.intents = [data.intents[i] for i in rows]
        self.candidates = [Candidate(self.ids[r], self.m32[r], self.tools[r], self.intents[r]) for r in range(len(rows))]
        self.id_order = np.argsort(np.array(self.ids))  # rank of each id, for numpy tie-breaks
        self.id_rank = np.empty(len(rows), dtype=np.int64)
        self.id_rank[self.id_order] = np.arange(len(rows))

    def _bonus(self, q: Any) -> Any:
        import numpy as np

        mask = np.uint64(0)
        for t in q.tools:
            mask |= np.uint64(1) << np.uint64(int(t[5:]))
        s2 = np.bitwise_count(self.bits & mask) / len(q.tools) if q.tools else np.zeros(len(self.ids))
        s3 = (self.intent == int(q.intent[7:])).astype(np.float64) if q.intent is not None else np.zeros(len(self.ids))
        return s2, s3

    def baseline_b(self, q: Any, k: int = K) -> list[str]:
        """(b) one vectorized pass: float32 matrix-vector product, coverage by popcount, top k."""
        import numpy as np

        w = q.weights
        s1 = self.m32 @ q.vector.astype(np.float32)
        s2, s3 = self._bonus(q)
        score = w.trajectory * s1 + w.toolchain * s2 + w.intent * s3
        top = np.argpartition(-score, min(k, len(score) - 1))[: k + 4] if len(score) > k + 4 else np.arange(len(score))
        order = sorted(top, key=lambda r: (-score[r], self.id_rank[r]))[:k]
        return [self.ids[r] for r in order]

    def baseline_a(self, q: Any) -> list[Any]:
        """(a) the paper's way: score every record in a Python loop (the reference scorer itself)."""
        from seer_langgraph.scoring import reference_top_k

        return reference_top_k(q, self.candidates)

    def reference(self, q: Any) -> list[tuple]:
        """The reference top k, bit for bit, without scoring every record in Python.

        A float64 numpy pass (error < 1e-13) finds every record whose score can reach the k-th
        best; :func:`reference_top_k` scores exactly those. Records left out score below the k-th
        best by more than 1e-9, so the result is the reference's on the whole tenant.
        """
        import numpy as np

        from seer_langgraph.scoring import reference_top_k

        w = q.weights
        s2, s3 = self._bonus(q)
        if self.x64 is not None:
            s1 = self.x64 @ q.vector
        else:  # large tenants: float64 in chunks
            s1 = np.concatenate([(self.m32[a : a + 100_000].astype(np.float64) @ q.vector) / self.norms[a : a + 100_000] for a in range(0, len(self.ids), 100_000)])
        approx = w.trajectory * s1 + w.toolchain * s2 + w.intent * s3
        if len(approx) > q.k:
            kth = np.partition(approx, -q.k)[-q.k]
            keep = np.nonzero(approx >= kth - 1e-9)[0]
        else:
            keep = np.arange(len(approx))
        return [(r.id, r.s1, r.s2, r.s3, r.score) for r in reference_top_k(q, [self.candidates[i] for i in keep])]


# -- helpers ----------------------------------------------------------------------------------------
def pct(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "p99_ms": float(np.percentile(a, 99)), "n": int(len(a))}


def rss_mb() -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def machine() -> dict[str, Any]:
    import numpy as np

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    from importlib.metadata import PackageNotFoundError, version

    for key, dist in (("numba", "numba"), ("qdrant_client", "qdrant-client"), ("qdrant_edge", "qdrant-edge-py"), ("langgraph", "langgraph")):
        try:
            info[key] = version(dist)
        except PackageNotFoundError:
            info[key] = None
    return info


def fast_pool_kwargs() -> dict[str, Any]:
    """Pool options that write as fast as possible (benchmark builds): no journal, dedup or redaction.

    Only options the installed :class:`ExperiencePool` knows are passed.
    """
    from seer_langgraph.pool import ExperiencePool

    params = inspect.signature(ExperiencePool.__init__).parameters
    out: dict[str, Any] = {}
    if "redact" in params:
        out["redact"] = None
    if "spill_dir" in params:
        out["spill_dir"] = None
    if "hygiene" in params:
        from seer_langgraph.hygiene import HygienePolicy

        out["hygiene"] = HygienePolicy(dedup_threshold=None)
    return out


def progress(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rec", leave=False, mininterval=0.5)


def fill(pool: Any, data: Dataset, tenant: str | None, chunk: int = 2000) -> float:
    """Commit every record with its precomputed vectors; returns records per second."""
    t0 = time.perf_counter()
    bar = progress(data.n, f"fill {pool.backend.name} {data.n:,}")
    for start in range(0, data.n, chunk):
        end = min(data.n, start + chunk)
        exps = data.experiences(start, end, tenant)
        res = pool.commit_many(exps, vectors=data.vectors(start, end))
        if tenant is None:
            data.ids[start:end] = [r.id for r in res]
        bar.update(end - start)
    bar.close()
    return data.n / (time.perf_counter() - t0)


# -- the benchmark -----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.work = Path(tempfile.mkdtemp(prefix="seer-perf-", dir=args.workdir))
        self.results: dict[str, Any] = {"machine": machine(), "args": vars(args), "recall": [], "baselines": [], "notes": []}
        self.t_start = time.perf_counter()

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:7.1f}s] {msg}", flush=True)

    def note(self, msg: str) -> None:
        self.results["notes"].append(msg)
        self.log(msg)

    # -- recall ------------------------------------------------------------------------------------
    def measure_pool(self, label: str, pool: Any, queries: list[Any], tenant: str, refs: list[list[tuple]], size: int, filtered: bool) -> dict[str, Any]:
        times, exact = [], 0
        pool.search(queries[0], tenant=tenant)  # warm up (compiles, loads the index)
        gc.collect()
        deadline = time.perf_counter() + self.args.config_budget
        for i, (q, ref) in enumerate(zip(queries, refs)):
            if i >= 5 and time.perf_counter() > deadline:  # slow strategies: fewer queries
                break
            t = time.perf_counter()
            got = pool.search(q, tenant=tenant)
            times.append(time.perf_counter() - t)
            exact += [(h.id, h.s1, h.s2, h.s3, h.score) for h in got] == ref
        row = {"backend": label, "size": size, "tenant_filter": filtered, "exact_fraction": exact / len(times), **pct(times)}
        index = getattr(pool.backend, "index", None) if label.endswith("/ index") else None
        if index is not None:  # the index's own part: bounds and pruning, no engine call
            core, scanned = [], []
            for q in queries[: len(times)]:
                t = time.perf_counter()
                index.candidates(q, tenant)
                core.append(time.perf_counter() - t)
                scanned.append(index.last_scanned)
            row["index_bounds_only"] = pct(core)
            row["rows_scanned_mean"] = float(sum(scanned) / len(scanned))
        self.results["recall"].append(row)
        self.log(f"  {label:<28} {'filter' if filtered else 'no filter':<9} p50 {row['p50_ms']:8.3f} p99 {row['p99_ms']:8.3f} ms exact {row['exact_fraction']:.3f}")
        return row

    def measure_baselines(self, mat: TenantMatrix, queries: list[Any], refs: list[list[tuple]], size: int, filtered: bool) -> dict[str, Any]:
        times_b, exact_b = [], 0
        for q, ref in zip(queries, refs):
            t = time.perf_counter()
            ids = mat.baseline_b(q)
            times_b.append(time.perf_counter() - t)
            exact_b += ids == [r[0] for r in ref]
        n_a = max(3, min(len(queries), int(self.args.baseline_a_budget / max(1, len(mat.ids)))))
        times_a, exact_a = [], 0
        for q, ref in zip(queries[:n_a], refs[:n_a]):
            t = time.perf_counter()
            got = mat.baseline_a(q)
            times_a.append(time.perf_counter() - t)
            exact_a += [(r.id, r.s1, r.s2, r.s3, r.score) for r in got] == ref
        row = {
            "size": size,
            "tenant_filter": filtered,
            "rows_scanned": len(mat.ids),
            "b_numpy": {**pct(times_b), "exact_ids_fraction": exact_b / len(queries)},
            "a_python_loop": {**pct(times_a), "exact_fraction": exact_a / n_a},
        }
        self.results["baselines"].append(row)
        self.log(
            f"  baseline (b) numpy p50 {row['b_numpy']['p50_ms']:8.3f} ms   (a) python loop p50 {row['a_python_loop']['p50_ms']:9.2f} ms ({n_a} queries)"
        )
        return row

    def recall_queries(self, data: Dataset, tenant: str | None, seed: int) -> tuple[list[Any], TenantMatrix]:
        from seer_langgraph.scoring import RecallQuery

        rows = [i for i in range(data.n) if tenant is None or data.tenant_of[i] == tenant]
        mat = TenantMatrix(data, rows, data.ids)
        qs = [RecallQuery(vector=q.vector, tools=q.tools, intent=q.intent, k=K) for q in make_queries(data, rows, self.args.queries, seed)]
        return qs, mat

    def run_size(self, n: int) -> None:
        import numpy as np

        from seer_langgraph.embeddings import HashingEmbeddings
        from seer_langgraph.pool import ExperiencePool, open_pool
        from seer_langgraph.pool.index import IndexedBackend, index_available

        args = self.args
        self.log(f"== {n:,} experiences")
        t = time.perf_counter()
        data = make_dataset(n, tenants=args.tenants, seed=n)
        single = make_dataset(n, tenants=1, seed=n)
        data.ids, single.ids = [""] * n, [""] * n
        self.log(f"  generated data in {time.perf_counter() - t:.1f}s")
        emb = HashingEmbeddings(dimension=DIM)
        fast = fast_pool_kwargs()
        edge = _edge_available() and n in args.edge_sizes
        kinds: list[tuple[str, Callable[[Path], Any]]] = []
        if edge:
            kinds.append(("qdrant-edge", lambda p: open_pool(path=p, backend="edge", embeddings=emb, strategy="index" if index_available() else "auto", **fast)))
        if n in args.client_sizes:
            kinds.append(("qdrant-client:memory", lambda p: open_pool(":memory:", embeddings=emb, strategy="index" if index_available() else "rerank", **fast)))
        if n in args.path_sizes:
            kinds.append(("qdrant-client:path", lambda p: open_pool(path=p, backend="qdrant", embeddings=emb, strategy="index" if index_available() else "rerank", **fast)))
        if not kinds:
            self.note(f"no backend measured at {n:,}")
            return
        builds = self.results.setdefault("build", [])
        for filtered, ds in ((True, data), (False, single)):
            tenant = ds.tenants[0]
            pools = {}
            for kind, opener in kinds:
                path = self.work / f"{kind.replace(':', '-')}-{n}-{'t' if filtered else 's'}"
                pool = opener(path)
                rate = fill(pool, ds, None)
                builds.append({"backend": kind, "size": n, "tenant_filter": filtered, "commit_many_per_s": rate})
                self.log(f"  built {kind} ({'4 tenants' if filtered else '1 tenant'}) at {rate:,.0f} records/s")
                pools[kind] = pool
            queries, mat = self.recall_queries(ds, tenant, seed=n + (1 if filtered else 2))
            refs = [mat.reference(q) for q in queries]
            base = self.measure_baselines(mat, queries, refs, n, filtered)
            for kind, pool in pools.items():
                inner = pool.backend.inner if isinstance(pool.backend, IndexedBackend) else pool.backend
                strategies: list[tuple[str, Any]] = []
                if pool.strategy == "index":
                    strategies.append(("index", pool))
                if kind == "qdrant-edge":
                    strategies.append(("formula", ExperiencePool(inner, emb, strategy="formula", **fast)))
                if n <= args.rerank_max:
                    strategies.append(("rerank", ExperiencePool(inner, emb, strategy="rerank", **fast)))
                for strat, p in strategies:
                    row = self.measure_pool(f"{kind} / {strat}", p, queries, tenant, refs, n, filtered)
                    row["vs_b_numpy"] = base["b_numpy"]["p50_ms"] / row["p50_ms"]
                    row["vs_a_python_loop"] = base["a_python_loop"]["p50_ms"] / row["p50_ms"]
                if pool.strategy == "index":
                    stats = pool.backend.index.stats()
                    self.results.setdefault("index_memory", []).append({"backend": kind, "size": n, "tenant_filter": filtered, **stats})
            if filtered and edge and n == max(args.edge_sizes):
                self.keep = (pools["qdrant-edge"], data, self.work / f"qdrant-edge-{n}-t")
                for kind, pool in pools.items():
                    if kind != "qdrant-edge":
                        pool.close()
            else:
                for pool in pools.values():
                    pool.close()
            del mat
            gc.collect()
        self.results.setdefault("rss_mb_after_size", {})[str(n)] = rss_mb()

    # -- writes, reopen, nodes ----------------------------------------------------------------------
    def run_writes(self) -> None:
        from seer_langgraph.embeddings import HashingEmbeddings
        from seer_langgraph.pool import open_pool

        if not hasattr(self, "keep"):
            return
        pool, data, path = self.keep
        emb = HashingEmbeddings(dimension=DIM)
        # single commits into the big pool, with the default pipeline of open_pool
        n_import = self.args.import_size
        extra = make_dataset(self.args.commits + n_import, tenants=1, seed=999)  # all in tenant t0
        pool.close()
        t = time.perf_counter()
        pool = open_pool(path=path, embeddings=emb)
        reopen_in_process = time.perf_counter() - t
        exps, vecs = extra.experiences(0, self.args.commits), extra.vectors(0, self.args.commits)
        from seer_langgraph.scoring import RecallQuery

        pool.search(RecallQuery(vector=data.traj[0], k=K), tenant=data.tenants[0])  # index loaded
        times = []
        for e, v in zip(exps, vecs):
            t = time.perf_counter()
            pool.commit(e, vectors=v)
            times.append(time.perf_counter() - t)
        self.results["single_commit_default_pipeline"] = {"pool_size": data.n, "strategy": pool.strategy, **pct(times)}
        self.log(f"  single commit into {data.n:,} (default pipeline): p50 {pct(times)['p50_ms']:.2f} ms p95 {pct(times)['p95_ms']:.2f} ms")
        t = time.perf_counter()
        pool.close()
        close_s = time.perf_counter() - t
        self.results["close_with_index_save_s"] = close_s
        self.results["reopen_in_process_s"] = reopen_in_process
        # bulk import of a JSONL file with vectors into a new pool (default options of open_pool)
        src = open_pool(":memory:", embeddings=emb, strategy="rerank", **fast_pool_kwargs())
        src.commit_many(extra.experiences(self.args.commits, self.args.commits + n_import), vectors=extra.vectors(self.args.commits, self.args.commits + n_import))
        jsonl = self.work / "import.jsonl"
        src.export_jsonl(jsonl, tenant="t0")
        n_lines = sum(1 for _ in open(jsonl, encoding="utf-8"))
        src.close()
        for label, kwargs in (("default options", {}), ("fast options", fast_pool_kwargs())):
            target = open_pool(path=self.work / f"import-{label[:4]}", backend="edge" if _edge_available() else "auto", embeddings=emb, **kwargs)
            t = time.perf_counter()
            rep = target.import_jsonl(jsonl)
            dt = time.perf_counter() - t
            self.results.setdefault("import_jsonl", []).append({"options": label, "lines": n_lines, "imported": rep.imported, "seconds": dt, "per_s": rep.imported / dt})
            self.log(f"  import_jsonl {n_lines:,} lines with vectors ({label}): {rep.imported / dt:,.0f} records/s")
            target.close()
        self.cold_open(path, data)
        self.node_overhead(path, data)

    def cold_open(self, path: Path, data: Dataset) -> None:
        script = textwrap.dedent(
            f"""
            import json, os, time
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            t0 = time.perf_counter()
            import numpy as np
            from seer_langgraph.embeddings import HashingEmbeddings
            from seer_langgraph.pool import open_pool
            from seer_langgraph.scoring import RecallQuery
            t1 = time.perf_counter()
            pool = open_pool(path={str(path)!r}, embeddings=HashingEmbeddings(dimension={DIM}))
            t2 = time.perf_counter()
            n = pool.count(all_tenants=True)
            rng = np.random.default_rng(0)
            q = RecallQuery(vector=rng.normal(size={DIM}), tools=("tool_01",), intent="intent_1", k=4)
            hits = pool.search(q, tenant="t0")
            t3 = time.perf_counter()
            q2 = RecallQuery(vector=rng.normal(size={DIM}), tools=("tool_02",), intent="intent_2", k=4)
            pool.search(q2, tenant="t1")
            t4 = time.perf_counter()
            status = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("VmRSS", "VmHWM")))
            be = pool.backend
            out = dict(imports_s=t1 - t0, open_s=t2 - t1, first_search_s=t3 - t2, second_tenant_first_search_s=t4 - t3,
                       open_and_first_search_s=t3 - t1, count=n, hits=len(hits), strategy=pool.strategy,
                       index_source=getattr(be, "source", None), index_load_s=getattr(be, "load_seconds", None),
                       rss_mb={{k: int(v.split()[0]) / 1024 for k, v in status.items()}})
            pool.close()
            print(json.dumps(out))
            """
        )
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
        if res.returncode != 0:
            self.note(f"cold open failed: {res.stderr[-2000:]}")
            return
        out = json.loads(res.stdout.strip().splitlines()[-1])
        out["pool_size"] = data.n
        self.results["cold_open"] = out
        self.log(
            f"  cold open of {data.n:,}: open {out['open_s']:.2f}s + first recall {out['first_search_s']:.2f}s "
            f"(index {out['index_source']}, {out['index_load_s']:.2f}s); RSS {out['rss_mb'].get('VmRSS', 0):.0f} MB"
        )

    def node_overhead(self, path: Path, data: Dataset) -> None:
        import numpy as np
        from langchain_core.embeddings import Embeddings
        from langchain_core.messages import AIMessage
        from langchain_core.tools import tool
        from langgraph.graph import END, START, MessagesState, StateGraph
        from langgraph.prebuilt import ToolNode

        from seer_langgraph.config import SeerConfig
        from seer_langgraph.graph import create_seer_agent
        from seer_langgraph.pool import open_pool
        from seer_langgraph.testing import ScriptedChatModel, tool_call

        vec = data.traj[0].astype(float).tolist()

        class ConstantEmbeddings(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return [vec for _ in texts]

            def embed_query(self, text: str) -> list[float]:
                return vec

        @tool
        def lookup(id: int) -> str:
            """Look a record up."""
            return f"record {id}: price 12.5, stock 3"

        @tool
        def compute(a: float, b: float) -> str:
            """Multiply two numbers."""
            return str(a * b)

        script = [tool_call("lookup", id=7), tool_call("compute", a=12.5, b=3), tool_call("lookup", id=8), "The total is 37.5."]
        steps_per_task = len(script)
        tasks = self.args.node_tasks

        def plain_graph(model: Any) -> Any:
            bound = model.bind_tools([lookup, compute])

            def agent(state):  # type: ignore[no-untyped-def]  (no hints: langgraph reads them)
                return {"messages": [bound.invoke(state["messages"])]}

            def route(state):  # type: ignore[no-untyped-def]
                last = state["messages"][-1]
                return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

            b = StateGraph(MessagesState)
            b.add_node("agent", agent)
            b.add_node("tools", ToolNode([lookup, compute]))
            b.add_edge(START, "agent")
            b.add_conditional_edges("agent", route, ["tools", END])
            b.add_edge("tools", "agent")
            return b.compile()

        pool = open_pool(path=path, embeddings=ConstantEmbeddings(), allow_embedder_change=True)
        seer = create_seer_agent(ScriptedChatModel(responses=script, cycle=True), [lookup, compute], pool, config=SeerConfig(k=K, tenant="t0"))
        plain = plain_graph(ScriptedChatModel(responses=script, cycle=True))

        def run(graph: Any, i: int) -> float:
            t = time.perf_counter()
            out = graph.invoke({"messages": [("user", f"what is the total value of item {i}?")]})
            assert out["messages"][-1].content == "The total is 37.5."
            return time.perf_counter() - t

        for g in (seer, plain):
            run(g, -1)
        t_seer, t_plain = [], []
        for i in range(tasks):  # interleaved, so machine noise hits both alike
            t_seer.append(run(seer, i))
            t_plain.append(run(plain, i))
        recall = []
        for i in range(50):
            t = time.perf_counter()
            pool.recall(f"history {i}", tools=["lookup"], intent=None, k=K, tenant="t0")
            recall.append(time.perf_counter() - t)
        pool.close()
        med_seer, med_plain = float(np.median(t_seer)), float(np.median(t_plain))
        self.results["node_overhead"] = {
            "pool_size": data.n,
            "tenant_rows": data.n // len(data.tenants),
            "model_steps_per_task": steps_per_task,
            "tasks": tasks,
            "seer_task_ms_p50": med_seer * 1e3,
            "plain_task_ms_p50": med_plain * 1e3,
            "overhead_per_step_ms": (med_seer - med_plain) / steps_per_task * 1e3,
            "recall_call_ms": pct(recall),
        }
        self.log(f"  SEER nodes: {(med_seer - med_plain) / steps_per_task * 1e3:.2f} ms per agent step (task {med_seer * 1e3:.1f} vs {med_plain * 1e3:.1f} ms)")

    # -- 1M, index only --------------------------------------------------------------------------
    def run_million(self) -> None:
        import numpy as np

        from seer_langgraph.pool.index import ScoringIndex, index_available
        from seer_langgraph.scoring import RecallQuery

        if not index_available():
            self.note("--million needs numba")
            return
        n = 1_000_000
        self.log("== 1,000,000 experiences (the scoring index alone; filling an engine with 1M takes ~10 min)")
        data = make_dataset(n, tenants=self.args.tenants, seed=n)
        ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)]
        data.ids = ids
        for filtered in (True, False):
            idx = ScoringIndex(names=("traj",))
            tenants = data.tenant_of if filtered else ["all"] * n
            bar = progress(n, "index 1M")
            for s in range(0, n, 50_000):
                e = min(n, s + 50_000)
                idx.add(ids[s:e], tenants[s:e], data.tools[s:e], data.intents[s:e], {"traj": data.traj[s:e]})
                bar.update(e - s)
            bar.close()
            tenant = tenants[0]
            rows = [i for i in range(n) if tenants[i] == tenant]
            mat = TenantMatrix(data, rows, ids)
            queries = [RecallQuery(vector=q.vector, tools=q.tools, intent=q.intent, k=K) for q in make_queries(data, rows, min(self.args.queries, 100), 7)]
            refs = [mat.reference(q) for q in queries]
            by_id = {c.id: c for c in mat.candidates}
            from seer_langgraph.pool.backend import DenseHit
            from seer_langgraph.pool.pool import ExperiencePool

            for approx in (False, True):
                times, exact, fetched = [], 0, []
                for q, ref in zip(queries, refs):
                    t = time.perf_counter()
                    if approx:
                        rows_, lo, hi = idx.candidates(q, tenant)
                        order = sorted(range(len(rows_)), key=lambda i: (-(lo[i] + hi[i]), idx.ids(tenant)[rows_[i]]))[: q.k]
                        got = [idx.ids(tenant)[rows_[i]] for i in order]
                        exact += got == [r[0] for r in ref]
                    else:
                        calls: list[int] = []

                        def evaluate(batch: list[str]) -> list[Any]:
                            calls.append(len(batch))
                            return ExperiencePool._exact(q, [DenseHit(i, 0.0, by_id[i].vector, by_id[i].tools, by_id[i].intent) for i in batch])

                        res = idx.search(q, tenant, evaluate)
                        exact += [(r.id, r.s1, r.s2, r.s3, r.score) for r in res] == ref
                        fetched.append(sum(calls))
                    times.append(time.perf_counter() - t)
                label = "index (no engine) / approximate: no rescoring" if approx else "index (no engine) / exact"
                row = {"backend": label, "size": n, "tenant_filter": filtered, "exact_fraction": exact / len(queries), **pct(times)}
                if fetched:
                    row["rows_rescored_mean"] = float(np.mean(fetched))
                self.results["recall"].append(row)
                self.log(f"  {label:<45} {'filter' if filtered else 'no filter':<9} p50 {row['p50_ms']:.3f} ms p99 {row['p99_ms']:.3f} exact {row['exact_fraction']:.3f}")
            base = self.measure_baselines(mat, queries, refs, n, filtered)
            for row in self.results["recall"]:
                if row["size"] == n and row["tenant_filter"] == filtered:
                    row["vs_b_numpy"] = base["b_numpy"]["p50_ms"] / row["p50_ms"]
                    row["vs_a_python_loop"] = base["a_python_loop"]["p50_ms"] / row["p50_ms"]
            self.results.setdefault("index_memory", []).append({"backend": "index only (traj)", "size": n, "tenant_filter": filtered, **idx.stats()})
            del idx, mat
            gc.collect()

    # -- report ----------------------------------------------------------------------------------
    def write(self) -> None:
        self.results["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        self.results["total_seconds"] = time.perf_counter() - self.t_start
        self.results["rss_mb_end"] = rss_mb()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "perf.json").write_text(json.dumps(self.results, indent=1, default=str) + "\n")
        (self.out / "perf.md").write_text(markdown(self.results))
        try:
            plot(self.results, self.out / "perf.png")
        except ImportError:
            self.note("matplotlib is not installed: no perf.png (pip install 'seer-langgraph[plot]')")
        self.log(f"wrote {self.out / 'perf.json'}, perf.md, perf.png in {self.results['total_seconds']:.0f}s")


def _edge_available() -> bool:
    from seer_langgraph.pool import edge_available

    return edge_available()


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# SEER recall performance",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, numba {m.get('numba')}, "
        f"qdrant-edge-py {m.get('qdrant_edge')}, qdrant-client {m.get('qdrant_client')}; OPENBLAS_NUM_THREADS={m['OPENBLAS_NUM_THREADS']}; "
        f"load average at start {m.get('load_average_at_start')}, at end {m.get('load_average_at_end')}.",
        "",
        "## Recall latency (`ExperiencePool.search`, k=4, full SEER score, records fetched)",
        "",
        "| size | tenant filter | backend / strategy | p50 ms | p95 ms | p99 ms | exact | vs (b) numpy | vs (a) loop |",
        "|---:|:---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(r["recall"], key=lambda x: (x["size"], not x["tenant_filter"], x["backend"])):
        lines.append(
            f"| {row['size']:,} | {'yes' if row['tenant_filter'] else 'no'} | {row['backend']} | {row['p50_ms']:.3f} | {row['p95_ms']:.3f} | "
            f"{row['p99_ms']:.3f} | {row['exact_fraction']:.3f} | {row.get('vs_b_numpy', float('nan')):.1f}x | {row.get('vs_a_python_loop', float('nan')):.0f}x |"
        )
    idx_rows = [row for row in r["recall"] if "index_bounds_only" in row]
    if idx_rows:
        lines += [
            "",
            "The index's own part (bounds and pruning in numba, no engine call) and how many vectors it read:",
            "",
            "| size | tenant filter | backend | bounds p50 ms | p99 ms | rows in tenant | vectors read (mean) |",
            "|---:|:---:|---|---:|---:|---:|---:|",
        ]
        scanned_of = {(b["size"], b["tenant_filter"]): b["rows_scanned"] for b in r["baselines"]}
        for row in sorted(idx_rows, key=lambda x: (x["size"], not x["tenant_filter"], x["backend"])):
            c = row["index_bounds_only"]
            lines.append(
                f"| {row['size']:,} | {'yes' if row['tenant_filter'] else 'no'} | {row['backend']} | {c['p50_ms']:.3f} | {c['p99_ms']:.3f} | "
                f"{scanned_of.get((row['size'], row['tenant_filter']), 0):,} | {row['rows_scanned_mean']:,.0f} |"
            )
    lines += ["", "## Baselines", "", "| size | tenant filter | rows scanned | (b) numpy p50 ms | p99 ms | (b) same ids | (a) Python loop p50 ms | queries |", "|---:|:---:|---:|---:|---:|---:|---:|---:|"]
    for b in sorted(r["baselines"], key=lambda x: (x["size"], not x["tenant_filter"])):
        lines.append(
            f"| {b['size']:,} | {'yes' if b['tenant_filter'] else 'no'} | {b['rows_scanned']:,} | {b['b_numpy']['p50_ms']:.3f} | {b['b_numpy']['p99_ms']:.3f} | "
            f"{b['b_numpy']['exact_ids_fraction']:.3f} | {b['a_python_loop']['p50_ms']:.1f} | {b['a_python_loop']['n']} |"
        )
    lines += ["", "## Writes, reopen, memory, nodes", ""]
    for b in r.get("build", []):
        lines.append(f"- fill {b['backend']} to {b['size']:,} ({'4 tenants' if b['tenant_filter'] else '1 tenant'}), `commit_many` with vectors, fast options: {b['commit_many_per_s']:,.0f} records/s")
    for i in r.get("import_jsonl", []):
        lines.append(f"- `import_jsonl` of {i['lines']:,} lines with vectors into a new embedded pool ({i['options']}): {i['per_s']:,.0f} records/s")
    if "single_commit_default_pipeline" in r:
        c = r["single_commit_default_pipeline"]
        lines.append(f"- single `commit` with vectors into a {c['pool_size']:,} pool (open_pool defaults: journal, dedup, redaction): p50 {c['p50_ms']:.2f} ms, p95 {c['p95_ms']:.2f} ms")
    if "cold_open" in r:
        c = r["cold_open"]
        lines.append(
            f"- cold open of the persisted {c['pool_size']:,} pool in a fresh process: `open_pool` {c['open_s']:.2f} s + first recall {c['first_search_s']:.2f} s "
            f"= {c['open_and_first_search_s']:.2f} s (index {c['index_source']} in {c['index_load_s']:.2f} s; Python imports {c['imports_s']:.2f} s more); "
            f"RSS {c['rss_mb'].get('VmRSS', 0):.0f} MB, peak {c['rss_mb'].get('VmHWM', 0):.0f} MB"
        )
    if "close_with_index_save_s" in r:
        lines.append(f"- `close()` of the 100k pool, saving the index: {r['close_with_index_save_s']:.2f} s; reopen in process: {r['reopen_in_process_s']:.2f} s")
    for mem in r.get("index_memory", []):
        lines.append(
            f"- scoring index, {mem['backend']} {mem['size']:,} ({'4 tenants' if mem['tenant_filter'] else '1 tenant'}): {mem['array_bytes'] / 1e6:.1f} MB of arrays "
            f"({mem['bytes_per_row']:.0f} B per experience, vectors {mem['names']}) + ~{mem['id_bytes_estimate'] / 1e6:.0f} MB of ids and maps"
        )
    if "node_overhead" in r:
        o = r["node_overhead"]
        lines.append(
            f"- SEER nodes' overhead: {o['overhead_per_step_ms']:.2f} ms per agent step (task of {o['model_steps_per_task']} model steps: "
            f"{o['seer_task_ms_p50']:.1f} ms with SEER vs {o['plain_task_ms_p50']:.1f} ms without; pool of {o['pool_size']:,}, {o['tenant_rows']:,} in the tenant; "
            f"`pool.recall` p50 {o['recall_call_ms']['p50_ms']:.2f} ms)"
        )
    if r.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    lines += ["", f"Total run time {r.get('total_seconds', 0):.0f} s; peak RSS {r.get('rss_mb_end', {}).get('VmHWM', 0):.0f} MB.", ""]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, filtered in zip(axes, (True, False)):
        series: dict[str, list[tuple[int, float]]] = {}
        for row in r["recall"]:
            if row["tenant_filter"] == filtered:
                series.setdefault(row["backend"], []).append((row["size"], row["p50_ms"]))
        for b in r["baselines"]:
            if b["tenant_filter"] == filtered:
                series.setdefault("baseline (b) numpy pass", []).append((b["size"], b["b_numpy"]["p50_ms"]))
                series.setdefault("baseline (a) Python loop", []).append((b["size"], b["a_python_loop"]["p50_ms"]))
        for name, pts in sorted(series.items()):
            pts.sort()
            style = "--" if name.startswith("baseline") else "-"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("experiences in the pool")
        ax.set_title("4 tenants, query scans one (tenant filter)" if filtered else "one tenant (no filter)")
        ax.grid(True, which="both", alpha=0.3)
        ax.axhline(1.0, color="grey", lw=0.8)
    axes[0].set_ylabel("recall latency p50, ms (log)")
    handles, labels = axes[0].get_legend_handles_labels()
    more = [(h, lab) for h, lab in zip(*axes[1].get_legend_handles_labels()) if lab not in labels]
    fig.legend(handles + [h for h, _ in more], labels + [lab for _, lab in more], fontsize=8, loc="lower center", ncol=4)
    fig.suptitle(f"SEER recall latency vs pool size ({r['machine']['cores']} cores; grey line: 1 ms)")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- command line ------------------------------------------------------------------------------------
def build_parser(prog: str = "perf") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="SEER recall performance vs the reference scan (issue 7).")
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000], help="pool sizes (default 1k 10k 100k; none: only --million)")
    p.add_argument("--million", action="store_true", help="also 1M experiences (the scoring index alone)")
    p.add_argument("--queries", type=int, default=200, help="recall queries per configuration")
    p.add_argument("--tenants", type=int, default=4)
    p.add_argument("--edge-sizes", type=int, nargs="*", default=None, help="sizes measured on qdrant-edge (default: all)")
    p.add_argument("--client-sizes", type=int, nargs="*", default=[1000, 10000], help="sizes measured on qdrant-client :memory:")
    p.add_argument("--path-sizes", type=int, nargs="*", default=[1000], help="sizes measured on qdrant-client path=")
    p.add_argument(
        "--rerank-max", type=int, default=10000, help="largest size where the 'rerank' strategy is timed (it widens an exact dense prefetch: seconds per query past 10k)"
    )
    p.add_argument("--baseline-a-budget", type=float, default=5e5, help="records scored by baseline (a) per configuration (at least 3 queries)")
    p.add_argument("--config-budget", type=float, default=6.0, help="seconds per backend/strategy/size (at least 5 queries)")
    p.add_argument("--import-size", type=int, default=10000, help="records in the JSONL import test")
    p.add_argument("--commits", type=int, default=50, help="single commits timed")
    p.add_argument("--node-tasks", type=int, default=30, help="agent runs timed with and without SEER")
    p.add_argument("--out", default="benchmarks/results", help="where perf.json / perf.md / perf.png go")
    p.add_argument("--workdir", default=None, help="where the pools are built (a temporary directory, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "perf") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1" and "numpy" in sys.modules:
        # numpy is loaded with several BLAS threads: start again with one (they compete with the scan)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        return subprocess.call([sys.executable, "-m", "seer_langgraph.bench.perf", *argv], env=env)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser(prog).parse_args(argv)
    if args.edge_sizes is None:
        args.edge_sizes = list(args.sizes)
    bench = Bench(args)
    bench.log(f"work directory {bench.work}; machine {bench.results['machine']['cpu']} x{bench.results['machine']['cores']}")
    try:
        for n in sorted(args.sizes):
            bench.run_size(n)
        bench.run_writes()
        if args.million:
            bench.run_million()
        if args.sizes:
            bench.note(
                f"qdrant-client :memory: measured at {args.client_sizes}, path= at {args.path_sizes} (stopped there: its Python "
                "scan needs ~120 ms per query and its path= writes 4-9 ms per point at 100k)"
            )
    finally:
        bench.write()
        if not args.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
