"""Quick comparison of the two embedded engines: qdrant-client ``path=`` vs qdrant-edge.

For each size (default 1k and 10k experiences; 384-d clustered random unit vectors, 4 tenants,
tools and intents at random) and each engine it measures, through :class:`ExperiencePool`:

- commit rate: ``commit_many`` in batches with precomputed vectors (no embedding cost);
- recall latency: ``ExperiencePool.search`` (exact SEER top-4, default weights) p50 / p95 over
  random queries with random tool sets and intents, for the default ``rerank`` strategy and, on
  edge, the in-engine ``formula`` strategy too; every engine's top-k is checked against the
  others (same ids);
- reopen time: ``close()`` then ``open_pool(path=...)`` and a first ``count()``.

qdrant-client's local mode is skipped at a size when the measured 1k commit rate says it would
take longer than ``--client-budget`` seconds to load.

    OPENBLAS_NUM_THREADS=1 python benchmarks/edge_vs_client_quick.py [--sizes 1000 10000] [--queries 100]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # keep numpy from competing with the engine

import argparse
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seer_langgraph import Experience, Step
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.pool import ExperiencePool, open_pool
from seer_langgraph.scoring import RecallQuery

DIM = 384
TENANTS = ["t0", "t1", "t2", "t3"]
TOOLS = [f"tool_{i}" for i in range(12)]
INTENTS = ["refund", "price", "cancel", "status", "other"]


@dataclass
class Row:
    engine: str
    size: int
    commit_per_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    formula_p50_ms: float | None = None
    formula_p95_ms: float | None = None
    reopen_s: float | None = None
    note: str = ""
    topk: list[list[str]] = field(default_factory=list)


def make_data(n: int, seed: int) -> tuple[list[Experience], list[dict[str, np.ndarray]], np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(32, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    which = rng.integers(0, len(centers), size=n)
    traj = centers[which] + rng.normal(size=(n, DIM)) * (1.4 / np.sqrt(DIM))
    traj /= np.linalg.norm(traj, axis=1, keepdims=True)
    query = traj + rng.normal(size=(n, DIM)) * (2.0 / np.sqrt(DIM))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    exps, vecs = [], []
    for i in range(n):
        tools = [str(t) for t in rng.choice(TOOLS, size=int(rng.integers(1, 4)), replace=False)]
        exps.append(
            Experience(
                request=f"request {i} of cluster {which[i]}",
                steps=[Step(tool=t, args={"i": i}, observation=f"obs {i}") for t in tools],
                answer=f"answer {i}",
                intent=INTENTS[int(rng.integers(0, len(INTENTS)))],
                tenant=TENANTS[i % len(TENANTS)],
            )
        )
        vecs.append({"traj": traj[i].astype(np.float32), "query": query[i].astype(np.float32)})
    return exps, vecs, centers


def make_queries(centers: np.ndarray, m: int, seed: int) -> list[tuple[RecallQuery, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for j in range(m):
        v = centers[int(rng.integers(0, len(centers)))] + rng.normal(size=DIM) * (1.4 / np.sqrt(DIM))
        tools = tuple(str(t) for t in rng.choice(TOOLS, size=int(rng.integers(0, 4)), replace=False))
        intent = INTENTS[int(rng.integers(0, len(INTENTS)))] if j % 3 else None
        q = RecallQuery(vector=v, tools=tools, intent=intent, k=4, mode="stepwise" if j % 4 else "query")
        out.append((q, TENANTS[j % len(TENANTS)]))
    return out


def time_search(pool: ExperiencePool, queries: list[tuple[RecallQuery, str]]) -> tuple[float, float, list[list[str]]]:
    pool.search(queries[0][0], tenant=queries[0][1])  # warm-up
    times, ids = [], []
    for q, t in queries:
        t0 = time.perf_counter()
        res = pool.search(q, tenant=t)
        times.append(time.perf_counter() - t0)
        ids.append([r.id for r in res])
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), ids


def run_engine(engine: str, root: Path, exps, vecs, queries, batch: int) -> Row:
    emb = HashingEmbeddings(dimension=DIM)  # only its name and size matter: vectors are precomputed
    path = root / f"{engine}-{len(exps)}"
    row = Row(engine=engine, size=len(exps))
    pool = open_pool(path=path, backend=engine, embeddings=emb)
    t0 = time.perf_counter()
    for s in range(0, len(exps), batch):
        pool.commit_many(exps[s : s + batch], vectors=vecs[s : s + batch])
    row.commit_per_s = len(exps) / (time.perf_counter() - t0)
    assert pool.count(all_tenants=True) == len(exps)
    row.p50_ms, row.p95_ms, row.topk = time_search(pool, queries)
    if engine == "edge":
        formula = ExperiencePool(pool.backend, emb, strategy="formula")
        row.formula_p50_ms, row.formula_p95_ms, ids = time_search(formula, queries)
        if ids != row.topk:
            row.note += " formula!=rerank"
    pool.close()
    t0 = time.perf_counter()
    pool = open_pool(path=path, embeddings=emb)
    assert pool.count(all_tenants=True) == len(exps)
    row.reopen_s = time.perf_counter() - t0
    pool.close()
    return row


def fmt(x: float | None, spec: str) -> str:
    return "-".rjust(int(spec.split(".")[0])) if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500, help="experiences per commit_many call")
    ap.add_argument("--client-budget", type=float, default=90.0, help="max seconds to load qdrant-client at one size")
    ap.add_argument("--engines", nargs="+", default=["qdrant", "edge"], choices=["qdrant", "edge"])
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="seer-bench-"))
    rows: list[Row] = []
    client_rate: float | None = None
    try:
        for n in args.sizes:
            exps, vecs, centers = make_data(n, seed=n)
            queries = make_queries(centers, args.queries, seed=n + 1)
            per_size: list[Row] = []
            for engine in args.engines:
                if engine == "qdrant" and client_rate is not None and n / client_rate > args.client_budget:
                    per_size.append(
                        Row(engine, n, note=f"skipped: ~{n / client_rate:.0f} s to load at {client_rate:.0f}/s")
                    )
                    continue
                t0 = time.perf_counter()
                row = run_engine(engine, root, exps, vecs, queries, args.batch)
                print(f"  {engine:6s} n={n}: done in {time.perf_counter() - t0:.1f} s", flush=True)
                if engine == "qdrant":
                    client_rate = row.commit_per_s
                per_size.append(row)
            measured = [r for r in per_size if r.topk]
            for r in measured[1:]:
                if r.topk != measured[0].topk:
                    diff = sum(a != b for a, b in zip(r.topk, measured[0].topk))
                    r.note += f" top-k differs from {measured[0].engine} on {diff} queries"
            rows += per_size
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"dim {DIM}, {len(TENANTS)} tenants, {args.queries} queries, k=4, default weights")
    head = f"{'engine':14s} {'n':>6s} {'commit/s':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'formula p50':>11s} {'formula p95':>11s} {'reopen s':>9s}  note"
    print(head)
    print("-" * len(head))
    names = {"qdrant": "client path=", "edge": "qdrant-edge"}
    for r in rows:
        print(
            f"{names[r.engine]:14s} {r.size:6d} {fmt(r.commit_per_s, '9.0f')} {fmt(r.p50_ms, '8.2f')} {fmt(r.p95_ms, '8.2f')} "
            f"{fmt(r.formula_p50_ms, '11.2f')} {fmt(r.formula_p95_ms, '11.2f')} {fmt(r.reopen_s, '9.3f')}  {r.note.strip()}"
        )


if __name__ == "__main__":
    main()
