"""The qdrant-edge backend (``seer_langgraph.pool.edge.EdgeBackend``) on its own and under a pool."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

qe = pytest.importorskip("qdrant_edge", reason="qdrant-edge-py not installed (the `edge` extra)")

from seer_langgraph import Experience, Step  # noqa: E402
from seer_langgraph.embeddings import HashingEmbeddings  # noqa: E402
from seer_langgraph.errors import PoolClosedError, PoolError  # noqa: E402
from seer_langgraph.pool import ExperiencePool, open_pool  # noqa: E402
from seer_langgraph.pool.backend import Backend, PointData  # noqa: E402
from seer_langgraph.pool.edge import META_FILE, EdgeBackend  # noqa: E402
from seer_langgraph.scoring import Candidate, RecallQuery, SeerWeights, rank_key, reference_top_k, score_candidate  # noqa: E402

pytestmark = pytest.mark.edge

DIM = 16
TOOLS = ["search", "lookup", "refund", "email", "calc"]
INTENTS = ["refund", "cancel", "status", None]


def unit_rows(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    m = rng.normal(size=(n, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m.astype(np.float32)


def make_points(n: int, seed: int = 0, tenants: tuple[str, ...] = ("a", "b")) -> list[PointData]:
    rng = np.random.default_rng(seed)
    traj, query = unit_rows(rng, n), unit_rows(rng, n)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        tools = [str(t) for t in rng.choice(TOOLS, size=k, replace=False)]
        out.append(
            PointData(
                id=str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)),
                vectors={"traj": traj[i], "query": query[i]},
                payload={
                    "tenant": tenants[i % len(tenants)],
                    "intent": INTENTS[int(rng.integers(0, len(INTENTS)))],
                    "tools": tools,
                    "usage": {"recalled": 0},
                    "record": {"i": i, "nested": {"x": [1, 2.5, None, "é"]}},
                },
            )
        )
    return out


@pytest.fixture
def backend(tmp_path: Path):
    be = EdgeBackend(tmp_path / "shard")
    yield be
    be.close()


@pytest.fixture
def filled(backend: EdgeBackend):
    points = make_points(120)
    backend.ensure_collection(DIM, {"embedder": "test", "seer_schema": 1})
    backend.upsert(points)
    return backend, points


def test_protocol_and_lazy_collection(backend: EdgeBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "qdrant-edge"
    assert backend.dimension() is None
    assert backend.metadata() == {}
    assert backend.count(None) == 0 and backend.tenants() == {}
    assert backend.retrieve([str(uuid.uuid4())], "a") == []
    assert backend.scroll("a", 10) == ([], None)
    assert backend.dense_search(np.ones(DIM), "traj", "a", 5) == []
    backend.ensure_collection(DIM, {"embedder": "x"})
    assert backend.dimension() == DIM
    assert backend.metadata() == {"embedder": "x"}
    backend.ensure_collection(DIM, {"embedder": "other"})  # already there: a no-op
    assert backend.metadata() == {"embedder": "x"}
    schema = backend.shard.info().payload_schema
    assert set(schema) >= {"tenant", "intent", "tools"}
    assert schema["tenant"].params.is_tenant is True


def test_round_trip_points_payloads_and_exact_float32_bits(filled) -> None:
    be, points = filled
    by_id = {p.id: p for p in points}
    ids = [p.id for p in points if p.payload["tenant"] == "a"]
    got = be.retrieve(ids, "a", with_vectors=True)
    assert sorted(p.id for p in got) == sorted(ids)
    for sp in got:
        want = by_id[sp.id]
        assert sp.payload == want.payload
        for name in ("traj", "query"):
            assert sp.vectors[name].dtype == np.float32
            assert np.array_equal(sp.vectors[name].view(np.uint32), want.vectors[name].view(np.uint32))
    # without vectors, and ids in non-canonical spellings come back canonical
    one = ids[0]
    plain = be.retrieve([one.upper(), one.replace("-", "")], "a")
    assert [p.id for p in plain] == [one] and plain[0].vectors == {}
    # missing and malformed ids are skipped, not errors
    assert be.retrieve([str(uuid.uuid4()), "not-a-uuid", ""], "a") == []


def test_tenant_scoping(filled) -> None:
    be, points = filled
    a_ids = sorted(p.id for p in points if p.payload["tenant"] == "a")
    b_ids = sorted(p.id for p in points if p.payload["tenant"] == "b")
    assert be.retrieve(a_ids + b_ids, "b") and {p.id for p in be.retrieve(a_ids + b_ids, "b")} == set(b_ids)
    assert be.retrieve(a_ids, "b") == [] and be.retrieve(a_ids, "nobody") == []
    assert be.count("a") == len(a_ids) and be.count("b") == len(b_ids) and be.count("zz") == 0
    assert be.count(None) == len(points)
    assert be.tenants() == {"a": len(a_ids), "b": len(b_ids)}
    # scroll: id order, pages chained by offset, only the tenant
    seen, offset, pages = [], None, 0
    while True:
        page, offset = be.scroll("a", 7, offset, with_vectors=(pages == 0))
        assert all(p.payload["tenant"] == "a" for p in page)
        if pages == 0:
            assert set(page[0].vectors) == {"traj", "query"}
        else:
            assert page[0].vectors == {}
        seen += [p.id for p in page]
        pages += 1
        if offset is None:
            break
        assert isinstance(offset, str)
    assert seen == a_ids and pages == -(-len(a_ids) // 7)
    assert be.scroll("zz", 5) == ([], None)
    with pytest.raises(ValueError):
        be.scroll("a", 0)
    # dense search never crosses tenants
    hits = be.dense_search(points[0].vectors["traj"], "traj", "b", 1000)
    assert {h.id for h in hits} == set(b_ids)


def test_set_payload_merges_and_delete(filled) -> None:
    be, points = filled
    p = points[0]
    be.set_payload(p.id, {"usage": {"recalled": 3}, "extra": [1, 2]})
    got = be.retrieve([p.id], p.payload["tenant"])[0].payload
    assert got["usage"] == {"recalled": 3} and got["extra"] == [1, 2]
    assert got["record"] == p.payload["record"] and got["tools"] == p.payload["tools"]
    with pytest.raises(KeyError):
        be.set_payload(str(uuid.uuid4()), {"x": 1})
    be.delete([p.id, str(uuid.uuid4()), "junk"])
    assert be.retrieve([p.id], p.payload["tenant"]) == []
    assert be.count(None) == len(points) - 1
    be.delete([])


def test_dense_search_is_exact_and_dense_score_at(filled) -> None:
    be, points = filled
    rng = np.random.default_rng(7)
    for using in ("traj", "query"):
        a = [p for p in points if p.payload["tenant"] == "a"]
        mat = np.stack([p.vectors[using] for p in a])
        for q in unit_rows(rng, 5):
            hits = be.dense_search(q, using, "a", 10)
            ref = mat @ q
            order = np.argsort(-ref, kind="stable")[:10]
            assert [h.id for h in hits] == [a[i].id for i in order]
            np.testing.assert_allclose([h.score for h in hits], ref[order], atol=1e-6)
            by_id = {p.id: p for p in a}
            for h in hits:
                assert np.array_equal(h.vector, by_id[h.id].vectors[using])
                assert h.tools == tuple(by_id[h.id].payload["tools"])
                assert h.intent == by_id[h.id].payload["intent"]
            for rank in (1, 4, 10):
                assert be.dense_score_at(q, using, "a", rank) == pytest.approx(hits[rank - 1].score, abs=0)
            assert be.dense_score_at(q, using, "a", len(a)) is not None
            assert be.dense_score_at(q, using, "a", len(a) + 1) is None
            assert be.dense_score_at(q, using, "nobody", 1) is None


@pytest.mark.parametrize("weights", [SeerWeights(), SeerWeights(trajectory=0.5, toolchain=0.3, intent=0.2)])
def test_formula_search_matches_python_scoring(filled, weights: SeerWeights) -> None:
    be, points = filled
    rng = np.random.default_rng(11)
    a = [p for p in points if p.payload["tenant"] == "a"]
    for trial in range(12):
        tools = tuple(str(t) for t in rng.choice(TOOLS, size=int(rng.integers(0, 4)), replace=False))
        intent = INTENTS[trial % len(INTENTS)]
        mode = "stepwise" if trial % 2 == 0 else "query"
        q = RecallQuery(vector=unit_rows(rng, 1)[0], tools=tools, intent=intent, k=5, weights=weights, mode=mode)
        using = q.vector_name
        # whole tenant prefetched: the formula's top k equals the brute-force reference
        hits = be.formula_search(q, "a", prefetch_limit=len(a), limit=q.k + 2)
        ref = reference_top_k(q, [Candidate(p.id, p.vectors[using], tuple(p.payload["tools"]), p.payload["intent"]) for p in a])
        engine = sorted(hits, key=lambda h: (-h.score, h.id))
        np.testing.assert_allclose([h.score for h in engine[: q.k]], [r.score for r in ref], atol=1e-5)
        everything = reference_top_k(
            dataclasses.replace(q, k=len(a)),
            [Candidate(p.id, p.vectors[using], tuple(p.payload["tools"]), p.payload["intent"]) for p in a],
        )
        ref_scores = {r.id: r.score for r in everything}
        for h in hits:
            assert h.score == pytest.approx(ref_scores[h.id], abs=1e-5)
        # a partial prefetch scores exactly the dense top M, as dense_search + python scoring does
        m = 20
        dense = be.dense_search(q.vector, using, "a", m)
        py = sorted(
            (score_candidate(q, h.id, float(np.dot(q.vector, h.vector.astype(np.float64))), h.tools, h.intent) for h in dense),
            key=rank_key,
        )
        part = be.formula_search(q, "a", prefetch_limit=m, limit=m)
        assert {h.id for h in part} == {h.id for h in dense}
        py_scores = {s.id: s.score for s in py}
        for h in part:
            assert h.score == pytest.approx(py_scores[h.id], abs=1e-5)
            assert h.vector.dtype == np.float32 and h.vector.shape == (DIM,)


def test_pool_formula_strategy_equals_rerank(tmp_path: Path) -> None:
    be = EdgeBackend(tmp_path / "shard")
    emb = HashingEmbeddings(dimension=DIM)
    try:
        rerank = ExperiencePool(be, emb, strategy="rerank")
        formula = ExperiencePool(be, emb, strategy="formula")
        rerank.initial_prefetch = formula.initial_prefetch = 8  # force a few widening rounds
        rng = np.random.default_rng(3)
        exps, vecs = [], []
        for i in range(150):
            tools = [str(t) for t in rng.choice(TOOLS, size=int(rng.integers(1, 4)), replace=False)]
            exps.append(
                Experience(
                    request=f"request {i}",
                    steps=[Step(tool=t, args={"i": i}, observation=str(i)) for t in tools],
                    answer=str(i),
                    intent=INTENTS[i % 3],
                )
            )
            v = unit_rows(rng, 2)
            vecs.append({"traj": v[0], "query": v[1]})
        rerank.commit_many(exps, vectors=vecs)
        for trial in range(10):
            q = RecallQuery(
                vector=unit_rows(rng, 1)[0],
                tools=tuple(TOOLS[: trial % 4]),
                intent=INTENTS[trial % 4],
                k=4,
                mode="stepwise" if trial % 3 else "query",
            )
            r1 = [(x.id, round(x.score, 6)) for x in rerank.search(q)]
            r2 = [(x.id, round(x.score, 6)) for x in formula.search(q)]
            assert r1 == r2 and len(r1) == 4
    finally:
        be.close()


def test_metadata_and_dimension_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    be = EdgeBackend(path)
    pts = make_points(10)
    be.ensure_collection(DIM, {"embedder": "e", "dimension": DIM})
    be.upsert(pts)
    be.close()
    be.close()  # harmless
    with pytest.raises(PoolClosedError):
        be.count(None)
    be2 = EdgeBackend(path)
    try:
        assert be2.dimension() == DIM and be2.metadata() == {"embedder": "e", "dimension": DIM}
        assert be2.count(None) == 10
        got = be2.retrieve([pts[0].id], pts[0].payload["tenant"], with_vectors=True)[0]
        assert np.array_equal(got.vectors["traj"], pts[0].vectors["traj"])
    finally:
        be2.close()
    # without our metadata file the size is still found (from the engine's config)
    (path / META_FILE).unlink()
    with EdgeBackend(path) as be3:
        assert be3.dimension() == DIM and be3.metadata() == {} and be3.count(None) == 10


def test_directory_in_use_in_process(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    first = EdgeBackend(path)
    with pytest.raises(PoolError, match="in use by another opener") as info:
        EdgeBackend(path)
    assert "url=" in str(info.value) and "one pool object per process" in str(info.value)
    first.ensure_collection(DIM, {})
    with pytest.raises(PoolError, match="in use by another opener"):
        EdgeBackend(path)
    first.close()
    EdgeBackend(path).close()  # free again after close


def test_directory_in_use_by_engine_lock(tmp_path: Path) -> None:
    """Our lock file aside, the engine's own WAL lock is reported the same way."""
    path = tmp_path / "shard"
    with EdgeBackend(path) as be:
        be.ensure_collection(DIM, {})
    raw = qe.EdgeShard.load(str(path))
    try:
        with pytest.raises(PoolError, match="in use by another opener"):
            EdgeBackend(path)
    finally:
        raw.close()


def test_directory_in_use_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    with EdgeBackend(path) as be:
        be.ensure_collection(DIM, {})
    holder = textwrap.dedent(
        f"""
        import sys, time
        from seer_langgraph.pool.edge import EdgeBackend
        be = EdgeBackend({str(path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        be.close()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(PoolError, match="in use by another opener"):
            EdgeBackend(path)
        with pytest.raises(PoolError, match="in use by another opener"):
            open_pool(path=tmp_path, backend="edge", embeddings=HashingEmbeddings(dimension=DIM))
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    EdgeBackend(path).close()


def _experiences(n: int) -> list[Experience]:
    tools = ["get_item", "search", "refund_order", "send_email"]
    out = []
    for i in range(n):
        used = tools[i % 4 : i % 4 + 2]
        out.append(
            Experience(
                request=f"what does item {i} cost and can I get a refund for order {i % 7}?",
                steps=[Step(tool=t, args={"id": i}, observation=f"value {i}") for t in used],
                answer=f"{i}.5",
                intent=["refund", "price", None][i % 3],
            )
        )
    return out


def test_open_pool_end_to_end_and_persistence(tmp_path: Path) -> None:
    emb = HashingEmbeddings()
    pool = open_pool(path=tmp_path, embeddings=emb)
    assert pool.backend.name == "qdrant-edge"
    exps = _experiences(30)
    res = pool.commit_many(exps)
    assert all(r.created for r in res)
    assert not pool.commit(exps[0]).created
    pool.commit(exps[1], tenant="other")
    assert pool.count() == 30 and pool.count(tenant="other") == 1 and pool.count(all_tenants=True) == 31
    hits = pool.recall("how much is item 3?", tools=["get_item"], intent="price", k=3)
    assert len(hits) == 3 and hits == sorted(hits, key=lambda h: (-h.score, h.id))
    got = pool.get(res[0].id)
    assert got is not None and (got.id, got.request, got.steps, got.intent) == (exps[0].id, exps[0].request, exps[0].steps, exps[0].intent)
    assert pool.get(res[0].id, tenant="other") is None and pool.get("not-an-id") is None
    page, nxt = pool.list(limit=10)
    assert len(page) == 10 and nxt is not None
    assert [e.id for e in pool.scroll(batch_size=7)] == sorted(e.id for e in exps)
    assert pool.record_outcome([res[0].id], success=True) == 1
    assert pool.get(res[0].id).usage.recalled == 1
    assert pool.delete([res[1].id, res[2].id]) == 2 and pool.count() == 28
    assert pool.delete(res[3].id, tenant="other") == 0
    export = tmp_path / "export.jsonl"
    assert pool.export_jsonl(export) == 28
    stats = pool.stats()
    assert stats.backend == "qdrant-edge" and stats.tenants == {"default": 28, "other": 1} and stats.collection_dimension == 384
    before = [(h.id, h.score) for h in pool.recall("how much is item 3?", tools=["get_item"], intent="price", k=5)]
    pool.close()
    pool.close()

    # reopen: everything is still there, same recall
    pool2 = open_pool(path=tmp_path, embeddings=HashingEmbeddings())
    try:
        assert pool2.backend.name == "qdrant-edge" and pool2.count() == 28
        assert pool2.get(res[0].id).usage.recalled == 1
        assert [(h.id, h.score) for h in pool2.recall("how much is item 3?", tools=["get_item"], intent="price", k=5)] == before
        # import into a fresh edge pool: same records, same vectors, no re-embedding needed
        pool3 = open_pool(path=tmp_path / "copy", backend="edge", embeddings=HashingEmbeddings())
        try:
            rep = pool3.import_jsonl(export)
            assert rep.imported == 28 and rep.already_present == 0
            assert pool3.import_jsonl(export).already_present == 28
            a = {e.id: e for e in pool2.scroll()}
            b = {e.id: e for e in pool3.scroll()}
            assert a == b
            r2 = [(h.id, round(h.score, 9)) for h in pool2.recall("refund for order 2", tools=["refund_order"], k=4)]
            r3 = [(h.id, round(h.score, 9)) for h in pool3.recall("refund for order 2", tools=["refund_order"], k=4)]
            assert r2 == r3
        finally:
            pool3.close()
    finally:
        pool2.close()


async def test_async_api_on_edge(tmp_path: Path) -> None:
    pool = open_pool(path=tmp_path, embeddings=HashingEmbeddings())
    try:
        exps = _experiences(5)
        await pool.acommit_many(exps)
        assert await pool.acount() == 5
        hits = await pool.arecall("item 2 price", tools=["get_item"], k=2)
        assert len(hits) == 2
        assert (await pool.aget(exps[0].id)) is not None
    finally:
        await pool.aclose()
