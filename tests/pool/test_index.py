"""The in-process exact scoring index: equal to the reference, in sync with the pool, persisted safely."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("numba", reason="numba not installed (strategy='index')")

from conftest import edge_installed, make_pool  # noqa: E402
from seer_langgraph import Experience, Step  # noqa: E402
from seer_langgraph.embeddings import HashingEmbeddings  # noqa: E402
from seer_langgraph.pool import open_pool  # noqa: E402
from seer_langgraph.pool import index as index_mod  # noqa: E402
from seer_langgraph.pool import DenseHit, ExperiencePool  # noqa: E402
from seer_langgraph.pool.index import IndexedBackend, ScoringIndex, quantize  # noqa: E402
from seer_langgraph.scoring import Candidate, RecallQuery, SeerWeights, reference_top_k  # noqa: E402

needs_edge = pytest.mark.skipif(not edge_installed(), reason="qdrant-edge-py not installed")
TOOLS = [f"tool{i}" for i in range(70)]  # more than 64: two mask words
INTENTS = [None, "x", "y", "z"]
WEIGHTS = [
    SeerWeights(),
    SeerWeights(trajectory=0.5, toolchain=0.3, intent=0.2),
    SeerWeights(trajectory=0.0),
    SeerWeights(toolchain=0.0, intent=0.0),
    SeerWeights(trajectory=3.0, toolchain=0.01, intent=0.0),
]


def _uid(i: int) -> str:
    return str(uuid.UUID(int=(i * 2654435761) % 2**128))


class Store:
    """Records kept as the engine would (float32 unit vectors) + an index over them."""

    def __init__(self, dim: int = 24) -> None:
        self.dim = dim
        self.index = ScoringIndex()
        self.rows: dict[str, tuple[str, tuple[str, ...], str | None, dict[str, np.ndarray]]] = {}

    def add(self, ids, tenants, tools, intents, traj, query):
        traj = (traj / np.linalg.norm(traj, axis=1, keepdims=True)).astype(np.float32)
        query = (query / np.linalg.norm(query, axis=1, keepdims=True)).astype(np.float32)
        for i, pid in enumerate(ids):
            self.rows[pid] = (tenants[i], tuple(tools[i]), intents[i], {"traj": traj[i], "query": query[i]})
        self.index.add(ids, tenants, tools, intents, {"traj": traj, "query": query})

    def remove(self, ids):
        for pid in ids:
            self.rows.pop(pid, None)
        self.index.remove(ids)

    def candidates(self, tenant, name):
        return [Candidate(pid, v[name], tools, intent) for pid, (t, tools, intent, v) in self.rows.items() if t == tenant]

    def search(self, q: RecallQuery, tenant: str):
        calls = []

        def evaluate(ids):
            calls.append(list(ids))
            hits = [DenseHit(c.id, 0.0, c.vector, c.tools, c.intent) for c in self.candidates(tenant, q.vector_name) if c.id in set(ids)]
            return ExperiencePool._exact(q, hits)  # what the pool's evaluate does

        return self.index.search(q, tenant, evaluate), calls

    def reference(self, q: RecallQuery, tenant: str):
        return reference_top_k(q, self.candidates(tenant, q.vector_name))


def _same(got, want):
    return [(r.id, r.s1, r.s2, r.s3, r.score) for r in got] == [(r.id, r.s1, r.s2, r.s3, r.score) for r in want]


records = st.lists(
    st.tuples(
        st.integers(0, 7),  # base vector: few distinct ones, so duplicates and exact ties happen
        st.sampled_from([0.0, 0.0, 1e-7, 1e-4, 1e-2]),  # offset: duplicates, near-ties, neighbours
        st.lists(st.sampled_from(TOOLS[:6] + TOOLS[64:67]), max_size=4),
        st.sampled_from(INTENTS),
        st.sampled_from(["a", "b"]),
    ),
    min_size=1,
    max_size=60,
)
queries = st.tuples(
    st.integers(0, 7),
    st.sampled_from([0.0, 1e-3, 0.3]),
    st.lists(st.sampled_from(TOOLS[:6] + TOOLS[64:67] + ["never-used"]), max_size=3),
    st.sampled_from(INTENTS + ["unknown"]),
    st.integers(0, 12),
    st.sampled_from([None, 0.5, 1.5]),
    st.sampled_from(WEIGHTS),
    st.sampled_from(["stepwise", "query"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records, query=queries, seed=st.integers(0, 3))
def test_index_equals_reference_bit_for_bit(records, query, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(8, 24))
    direction = rng.normal(size=24)
    store = Store()
    traj = np.stack([base[b] + off * direction for b, off, *_ in records])
    store.add(
        [_uid(i) for i in range(len(records))],
        [r[4] for r in records],
        [r[2] for r in records],
        [r[3] for r in records],
        traj,
        traj[::-1].copy(),
    )
    b, off, tools, intent, k, min_score, weights, mode = query
    q = RecallQuery(vector=base[b] + off * rng.normal(size=24), tools=tuple(tools), intent=intent, k=k, min_score=min_score, weights=weights, mode=mode)
    for tenant in ("a", "b"):
        got, _ = store.search(q, tenant)
        assert _same(got, store.reference(q, tenant))


def _clustered(rng, n, dim, clusters=5, spread=0.2):
    centers = rng.normal(size=(clusters, dim))
    return centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim)) * spread


def test_index_is_exact_on_a_larger_pool_and_prunes_to_about_k():
    rng = np.random.default_rng(7)
    n, dim = 2000, 96
    store = Store(dim)
    vecs = _clustered(rng, n, dim)
    store.add([_uid(i) for i in range(n)], ["t"] * n, [list(rng.choice(TOOLS, size=int(rng.integers(1, 6)), replace=False)) for _ in range(n)],
              [INTENTS[i % 4] for i in range(n)], vecs, vecs + rng.normal(size=(n, dim)) * 0.1)
    store.remove([_uid(i) for i in range(0, n, 7)])  # deletions move rows around
    fetched = []
    for i in range(40):
        q = RecallQuery(vector=vecs[rng.integers(0, n)] + rng.normal(size=dim) * 0.1, tools=tuple(rng.choice(TOOLS, size=2, replace=False)),
                        intent=INTENTS[i % 4], k=4, weights=WEIGHTS[i % 2], mode="stepwise" if i % 3 else "query")
        got, calls = store.search(q, "t")
        assert _same(got, store.reference(q, "t"))
        fetched.append(sum(len(c) for c in calls))
    assert np.median(fetched) <= 8, fetched  # the bounds leave about k rows to fetch


def test_removing_the_bound_breaks_exactness(monkeypatch):
    """Near-duplicates closer than the int8 step: without the error bound the index is wrong."""
    rng = np.random.default_rng(3)
    dim, n = 64, 400
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    vecs = u + rng.normal(size=(n, dim)) * 2e-3  # true cosines differ by ~1e-5: below the int8 error
    store = Store(dim)
    store.add([_uid(i) for i in range(n)], ["t"] * n, [["a"]] * n, ["x"] * n, vecs, vecs)
    queries = [RecallQuery(vector=u + rng.normal(size=dim) * 0.05, tools=("a",), intent="x", k=4) for _ in range(20)]
    for q in queries:
        got, _ = store.search(q, "t")
        assert _same(got, store.reference(q, "t"))
    # the same queries with the quantisation error taken out of the bounds (e1, e2 = 0, exn = 0)
    t = store.index._tenants["t"]
    for name in ("traj", "query"):
        t.vec[name]["e1"][:] = 0.0
        t.vec[name]["e2"][:] = 0.0
    real = index_mod.quantize_query
    monkeypatch.setattr(index_mod, "quantize_query", lambda x: real(x)[:2] + (0.0,))
    wrong = sum(not _same(store.search(q, "t")[0], store.reference(q, "t")) for q in queries)
    assert wrong > 0, "the data set must be hard enough that the bound matters"


def test_quantize_error_norms_bound_the_residuals():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 384))
    c = quantize(v)
    x = v / np.linalg.norm(v, axis=1, keepdims=True)
    r1 = x - c["q"] * c["a"][:, None]
    r2 = r1 - c["r"] * c["b"][:, None]
    assert np.all(np.linalg.norm(r1, axis=1) <= c["e1"]) and np.all(np.linalg.norm(r2, axis=1) <= c["e2"])
    assert np.all(c["e2"] < c["e1"] / 100)


# -- under the pool ---------------------------------------------------------------------------
def _exp(i, tenant="default", tools=("get_order",), intent="status"):
    return Experience(request=f"request {i} order {i % 5}", steps=[Step(tool=t, args={"i": i}, observation=f"o{i}") for t in tools],
                      answer=f"a{i}", intent=intent, tenant=tenant)


def _engine_ids(pool, tenant):
    return set(pool.backend.inner.point_ids(tenant)) if hasattr(pool.backend.inner, "point_ids") else None


@pytest.mark.parametrize("kind", ["memory-index", pytest.param("edge-index", marks=needs_edge)])
def test_every_write_path_keeps_the_index_in_sync(kind, tmp_path):
    pool = make_pool(kind, tmp_path)
    assert pool.strategy == "index" and isinstance(pool.backend, IndexedBackend)
    tools = [("get_order",), ("get_order", "refund"), ("find_user",), ()]
    pool.commit_many([_exp(i, tools=tools[i % 4], intent=INTENTS[i % 4]) for i in range(30)])
    pool.commit(_exp(100, tenant="other"))
    pool.commit(_exp(101), tenant="moved")
    pool.delete([_exp(3).id, _exp(4).id])
    path = tmp_path / "x.jsonl"
    pool.export_jsonl(path)
    other = make_pool("memory", tmp_path / "o")
    other.import_jsonl(path, tenant="imported")
    other.export_jsonl(tmp_path / "y.jsonl", tenant="imported")
    pool.import_jsonl(tmp_path / "y.jsonl")
    pool.record_outcome([_exp(5).id], True)  # usage only: no effect on the index
    idx = pool.backend.index
    assert idx.counts() == {t: n for t, n in pool.stats().tenants.items()}
    for tenant in idx.counts():
        assert set(idx.ids(tenant)) == _engine_ids(pool, tenant)
        for text, tools_, intent in [("request 7 order 2", ("get_order",), "status"), ("find user", ("find_user", "x"), None)]:
            q = pool.make_query(text, tools=tools_, intent=intent, k=5)
            got = [(h.id, h.s1, h.s2, h.s3, h.score) for h in pool.search(q, tenant=tenant)]
            ref = make_reference(pool, q, tenant)
            assert got == ref
    other.close()
    pool.close()


def make_reference(pool, q, tenant):
    cands, offset = [], None
    while True:
        pts, offset = pool.backend.scroll(tenant, 100, offset, with_vectors=True)
        cands += [Candidate(p.id, p.vectors[q.vector_name], tuple(p.payload["tools"]), p.payload["intent"]) for p in pts]
        if offset is None:
            return [(r.id, r.s1, r.s2, r.s3, r.score) for r in reference_top_k(q, cands)]


def test_write_behind_the_index_back_is_recovered(tmp_path):
    pool = make_pool("memory-index", tmp_path)
    pool.commit_many([_exp(i) for i in range(20)])
    q = pool.make_query("request 1 order 1", tools=("get_order",), intent="status", k=3)
    top = pool.search(q)
    pool.backend.inner.delete([top[0].id])  # bypasses the index: it still lists the row
    assert [(h.id, h.score) for h in pool.search(q)] == [(r[0], r[4]) for r in make_reference(pool, q, "default")]
    assert pool.backend.source == "rebuilt: out of sync"
    pool.close()


def test_fallback_without_numba(monkeypatch):
    monkeypatch.setattr(index_mod, "index_available", lambda: False)
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=16))
    assert pool.strategy == "rerank" and not isinstance(pool.backend, IndexedBackend)
    with pytest.raises(ValueError, match="numba"):
        open_pool(":memory:", embeddings=HashingEmbeddings(dimension=16), strategy="index")


def test_index_is_refused_on_a_server():
    class Server:
        name = "qdrant-client:server"

    with pytest.raises(ValueError, match="server"):
        index_mod.check_index_strategy(Server())


def test_memory_report():
    idx = ScoringIndex()
    v = np.random.default_rng(0).normal(size=(100, 384)).astype(np.float32)
    idx.add([_uid(i) for i in range(100)], ["t"] * 100, [["a"]] * 100, ["x"] * 100, {"traj": v, "query": v})
    stats = idx.stats()
    assert stats["rows"] == 100 and stats["bytes_per_row"] == 2 * (2 * 384 + 4 * 8) + 8 + 4


# -- persistence (edge) ------------------------------------------------------------------------
@needs_edge
def test_persisted_index_is_loaded_verified_and_rebuilt_when_stale(tmp_path):
    emb = HashingEmbeddings(dimension=32)
    where = tmp_path / "p"
    pool = open_pool(path=where, backend="edge", embeddings=emb, strategy="index")
    pool.commit_many([_exp(i, tenant=["a", "b"][i % 2]) for i in range(40)])
    q = pool.make_query("request 3 order 3", tools=("get_order",), intent="status", k=4)
    want = [(h.id, h.score) for h in pool.search(q, tenant="a")]
    pool.close()
    index_dir = where / "shard" / index_mod.INDEX_DIR
    assert json.loads((index_dir / "meta.json").read_text())["state"] == "clean"

    pool = open_pool(path=where, embeddings=emb)  # auto: the index, loaded from disk
    assert pool.strategy == "index" and [(h.id, h.score) for h in pool.search(q, tenant="a")] == want
    assert pool.backend.source == "loaded"
    pool.close()

    # a pool without the index writes: the engine marks the persisted copy stale
    pool = open_pool(path=where, embeddings=emb, strategy="rerank")
    pool.commit(_exp(99, tenant="a"))
    pool.close()
    assert json.loads((index_dir / "meta.json").read_text())["state"] == "dirty"
    pool = open_pool(path=where, embeddings=emb)
    got = [(h.id, h.score) for h in pool.search(q, tenant="a")]
    assert pool.backend.source.startswith("rebuilt") and got == [(r[0], r[4]) for r in make_reference(pool, q, "a")]
    pool.close()

    # a copy that claims to be clean but does not match the engine is rebuilt too
    meta = json.loads((index_dir / "meta.json").read_text())
    ids = np.load(index_dir / "ids.npy")
    ids[0] = str(uuid.uuid4())
    np.save(index_dir / "ids.npy", ids)
    from seer_langgraph.pool.edge import EdgeBackend

    pool = ExperiencePool(IndexedBackend(EdgeBackend(where / "shard"), verify="ids"), emb, strategy="index")
    assert [(h.id, h.score) for h in pool.search(q, tenant="a")] == got
    assert pool.backend.source == "rebuilt: the ids of tenant 'a' differ"
    pool.close()
    assert meta["state"] == "clean"

    (index_dir / "q.npy").write_bytes(b"")  # unrelated junk is ignored; a truncated array is not
    (index_dir / "traj.q.npy").write_bytes(b"\x93NUMPY garbage")
    pool = open_pool(path=where, embeddings=emb)
    assert [(h.id, h.score) for h in pool.search(q, tenant="a")] == got
    assert pool.backend.source.startswith("rebuilt: unreadable")
    pool.close()


def test_same_id_twice_in_a_batch_keeps_one_row():
    idx = ScoringIndex()
    v = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    idx.add(["a", "b", "a"], ["t", "t", "u"], [["x"], [], ["y"]], [None, None, "i"], {"traj": v, "query": v})
    assert len(idx) == 2 and idx.counts() == {"t": 1, "u": 1} and idx.ids("u") == ["a"]
    idx.remove(["a", "b"])
    assert len(idx) == 0 and idx.counts() == {}


def test_whole_bonus_classes_are_skipped_unread():
    """Rows whose best possible score (cosine 1 + their bonus) is below the k-th bound are never read."""
    rng = np.random.default_rng(5)
    n, dim = 4000, 32
    store = Store(dim)
    vecs = _clustered(rng, n, dim)
    intents = ["x" if i % 10 == 0 else "y" for i in range(n)]
    tools = [["a", "b"] if i % 10 == 0 else ["c"] for i in range(n)]
    store.add([_uid(i) for i in range(n)], ["t"] * n, tools, intents, vecs, vecs)
    q = RecallQuery(vector=vecs[0], tools=("a", "b"), intent="x", k=4)
    got, _ = store.search(q, "t")
    assert _same(got, store.reference(q, "t"))
    assert store.index.last_scanned == n // 10  # only the rows that share the intent and the tools
    q0 = RecallQuery(vector=vecs[0], k=4)  # no tools, no intent: one class, everything is read
    assert _same(store.search(q0, "t")[0], store.reference(q0, "t")) and store.index.last_scanned == n


def test_huge_k_returns_everything_in_reference_order():
    store = Store(8)
    v = np.random.default_rng(2).normal(size=(5, 8))
    store.add([_uid(i) for i in range(5)], ["t"] * 5, [["a"]] * 5, ["x"] * 5, v, v)
    q = RecallQuery(vector=v[0], tools=("a",), k=10**15)
    got, _ = store.search(q, "t")
    assert len(got) == 5 and _same(got, store.reference(q, "t"))
