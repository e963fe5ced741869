"""One suite, every backend: the same cases must give the same results everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import edge_installed, make_pool
from seer_langgraph import DimensionMismatchError, Experience, ImportValidationError, PoolClosedError, Step
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.scoring import Candidate, RecallQuery, SeerWeights, reference_top_k

DIM = 64


def exp(i: int, tools=("get_order",), intent="status", tenant="default", answer=None) -> Experience:
    return Experience(
        request=f"request number {i} about order {i % 7}",
        steps=[Step(tool=t, args={"order_id": i}, observation=f"result {i} of {t}") for t in tools],
        answer=answer or f"answer {i}",
        intent=intent,
        tenant=tenant,
    )


def fixed_pool_records() -> list[Experience]:
    tool_sets = [("get_order",), ("get_order", "refund"), ("find_user", "get_order"), ("calc",), ("find_user",)]
    intents = ["status", "refund", None, "status", "cancel"]
    return [exp(i, tools=tool_sets[i % 5], intent=intents[i % 5]) for i in range(40)]


def reference_for(pool, query: RecallQuery, tenant="default"):
    cands = []
    for point in _all_points(pool, tenant):
        cands.append(
            Candidate(id=point.id, vector=point.vectors[query.vector_name], tools=tuple(point.payload["tools"]), intent=point.payload["intent"])
        )
    return reference_top_k(query, cands)


def _all_points(pool, tenant):
    out, offset = [], None
    while True:
        pts, offset = pool.backend.scroll(tenant, 100, offset, with_vectors=True)
        out += pts
        if offset is None:
            return out


def test_commit_is_idempotent_and_get_roundtrips(pool):
    e = exp(1)
    first = pool.commit(e)
    second = pool.commit(e)
    assert first.created and not second.created and first.id == second.id == e.id
    assert pool.count() == 1
    got = pool.get(e.id)
    assert got is not None and got.model_dump(exclude={"usage"}) == e.model_dump(exclude={"usage"})


def test_list_scroll_count_delete(pool):
    records = [exp(i) for i in range(25)]
    pool.commit_many(records)
    assert pool.count() == 25
    page, nxt = pool.list(limit=10)
    assert len(page) == 10 and nxt is not None
    assert sorted(e.id for e in pool.scroll(batch_size=7)) == sorted(e.id for e in records)
    assert pool.delete([records[0].id, records[1].id, "00000000-0000-0000-0000-000000000000"]) == 2
    assert pool.count() == 23 and pool.get(records[0].id) is None


def test_tenants_are_isolated(pool):
    a = exp(1, tenant="acme")
    b = exp(1, tenant="globex")
    pool.commit_many([a, b])
    assert a.id != b.id  # the tenant is part of the content hash
    assert pool.count(tenant="acme") == 1 and pool.count(all_tenants=True) == 2
    assert pool.get(a.id, tenant="globex") is None
    assert [e.id for e in pool.scroll(tenant="acme")] == [a.id]
    assert pool.delete([a.id], tenant="globex") == 0 and pool.count(tenant="acme") == 1
    hits = pool.recall("request number 1 about order 1", tenant="globex", k=5)
    assert [h.id for h in hits] == [b.id]
    assert pool.stats().tenants == {"acme": 1, "globex": 1}


def test_commit_under_another_tenant_rewrites_id(pool):
    e = exp(3)
    res = pool.commit(e, tenant="other")
    assert res.id != e.id and pool.get(res.id, tenant="other").tenant == "other"


@pytest.mark.parametrize("mode", ["stepwise", "query"])
@pytest.mark.parametrize(
    "weights", [SeerWeights(), SeerWeights(trajectory=0.5, toolchain=0.3, intent=0.2), SeerWeights(trajectory=0.0, toolchain=1, intent=1)]
)
def test_ranking_equals_brute_force_reference(pool, mode, weights):
    pool.commit_many(fixed_pool_records())
    for text, tools, intent in [
        ("request number 3 about order 3", (), None),
        ("request number 11 about order 4", ("get_order",), "status"),
        ("order 2 refund please", ("get_order", "refund", "calc"), "refund"),
        ("who is the user", ("find_user",), "cancel"),
    ]:
        for k in (1, 4, 9):
            q = pool.make_query(text, tools=tools, intent=intent, k=k, weights=weights, mode=mode)
            got = pool.search(q)
            ref = reference_for(pool, q)
            assert [(h.id, h.s1, h.s2, h.s3, h.score) for h in got] == [(r.id, r.s1, r.s2, r.s3, r.score) for r in ref]


def test_min_score_and_k_zero(pool):
    pool.commit_many(fixed_pool_records())
    q = pool.make_query("request number 3 about order 3", tools=("calc",), intent="status", k=40, min_score=1.5)
    got = pool.search(q)
    assert got and all(h.score >= 1.5 for h in got)
    assert [h.id for h in got] == [r.id for r in reference_for(pool, q)]
    assert pool.recall("anything", k=0) == []


def test_identical_results_across_backends(tmp_path):
    results = {}
    kinds = ["memory", "memory-formula", "path"] + (["edge", "edge-formula"] if edge_installed() else [])
    for kind in kinds:
        p = make_pool(kind, tmp_path / kind)
        p.commit_many(fixed_pool_records())
        results[kind] = [
            [(h.id, h.score) for h in p.recall("order 5 refund", tools=("get_order", "refund"), intent="refund", k=6)],
            [(h.id, h.score) for h in p.recall("find the user", k=3, mode="query")],
        ]
        p.close()
    first = next(iter(results.values()))
    assert len(results) >= 3
    for kind, res in results.items():
        assert res == first, kind


def test_ties_are_broken_by_id(pool):
    same = [
        Experience(request="identical request", steps=[Step(tool="t", args={}, observation="o")], answer=f"a{i}", intent="x")
        for i in range(6)
    ]
    vec = np.ones(DIM) / np.sqrt(DIM)
    pool.commit_many(same, vectors=[{"traj": vec, "query": vec}] * 6)
    got = pool.search(RecallQuery(vector=vec, tools=("t",), intent="x", k=4))
    assert [h.id for h in got] == sorted(e.id for e in same)[:4]
    assert len({h.score for h in got}) == 1


def test_export_import_roundtrip_keeps_vectors(pool, tmp_path, backend_kind):
    pool.commit_many(fixed_pool_records()[:10])
    pool.commit(exp(99, tenant="other"))
    path = tmp_path / "out.jsonl"
    assert pool.export_jsonl(path) == 10
    lines = path.read_text().splitlines()
    assert all("vectors" in json.loads(line) for line in lines)

    class Exploding(HashingEmbeddings):
        def embed_documents(self, texts):
            raise AssertionError("import must not re-embed records that carry vectors")

    other = make_pool(backend_kind, tmp_path / "second", embeddings=Exploding(dimension=DIM), allow_embedder_change=True)
    rep = other.import_jsonl(path)
    assert rep.imported == 10 and rep.already_present == 0 and not rep.skipped_invalid
    assert sorted(e.id for e in other.scroll()) == sorted(e.id for e in pool.scroll())
    assert other.import_jsonl(path).already_present == 10
    q = pool.make_query("order 3", tools=("get_order",), k=5)
    assert [h.id for h in other.search(q)] == [h.id for h in pool.search(q)]
    other.close()


def test_import_rejects_a_bad_file_whole(pool, tmp_path):
    good = exp(1).model_dump(mode="json")
    bad_tenant = dict(exp(2).model_dump(mode="json"), tenant="bad tenant!")
    bad_tenant.pop("id"), bad_tenant.pop("content_hash")
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        (json.dumps(good) + "\n" + "{not json\n" + json.dumps(bad_tenant) + "\n" + json.dumps({"request": ""}) + "\n").encode()
        + b"\xff\xfe\n"
        + (json.dumps(dict(exp(3).model_dump(mode="json"), vectors={"traj": [0.0] * DIM, "query": [1.0] * DIM})) + "\n").encode()
    )
    with pytest.raises(ImportValidationError) as err:
        pool.import_jsonl(path)
    lines = [line for line, _ in err.value.errors]
    assert lines == [2, 3, 4, 5, 6]
    assert f"{path}:2:" in str(err.value) and "tenant" in str(err.value) and "UTF-8" in str(err.value) and "zero length" in str(err.value)
    assert pool.count() == 0  # nothing imported
    rep = pool.import_jsonl(path, skip_invalid=True)
    assert rep.imported == 1 and len(rep.skipped_invalid) == 5 and pool.count() == 1


def test_edited_record_fails_hash_check(pool, tmp_path):
    row = exp(1).model_dump(mode="json")
    row["answer"] = "tampered"
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ImportValidationError, match="content_hash"):
        pool.import_jsonl(path)


def test_dimension_mismatch_is_refused(pool, backend_kind, tmp_path):
    pool.commit(exp(1))
    with pytest.raises(DimensionMismatchError, match="64"):
        pool.commit(exp(2), vectors={"traj": np.ones(32), "query": np.ones(32)})
    with pytest.raises(DimensionMismatchError):
        pool.search(RecallQuery(vector=np.ones(32)))
    assert pool.count() == 1


def test_reopen_with_other_embeddings_is_refused(tmp_path):
    from seer_langgraph.pool import open_pool

    p = open_pool(path=tmp_path / "p", backend="qdrant", embeddings=HashingEmbeddings(dimension=64))
    p.commit(exp(1))
    p.close()
    q = open_pool(path=tmp_path / "p", embeddings=HashingEmbeddings(dimension=32))
    with pytest.raises(DimensionMismatchError, match="64-dimensional"):
        q.commit(exp(2))
    assert q.count() == 1
    q.close()


def test_bad_vectors_never_leave_a_record(pool):
    with pytest.raises(ValueError, match="NaN"):
        pool.commit(exp(1), vectors={"traj": [float("nan")] * DIM, "query": [1.0] * DIM})
    with pytest.raises(ValueError, match="missing vector"):
        pool.commit(exp(1), vectors={"traj": [1.0] * DIM})
    assert pool.count() == 0


def test_usage_counters(pool):
    a, b = exp(1), exp(2)
    pool.commit_many([a, b])
    pool.record_outcome([a.id, b.id], True)
    pool.record_outcome([a.id], False)
    pool.record_outcome([a.id], True, tenant="other")  # another tenant's id: untouched
    ua, ub = pool.get(a.id).usage, pool.get(b.id).usage
    assert (ua.recalled, ua.succeeded, ua.failed) == (2, 1, 1)
    assert (ub.recalled, ub.succeeded, ub.failed) == (1, 1, 0)
    assert pool.commit(a).created is False and pool.get(a.id).usage.recalled == 2  # re-commit keeps counters


def test_closed_pool_raises(pool):
    pool.close()
    with pytest.raises(PoolClosedError):
        pool.count()
    pool.close()  # twice is harmless


async def test_async_twins(pool):
    e = exp(5)
    assert (await pool.acommit(e)).created
    assert (await pool.aget(e.id)).id == e.id
    hits = await pool.arecall("request number 5", tools=("get_order",), k=1)
    assert hits[0].id == e.id
    assert await pool.acount() == 1
    assert await pool.adelete([e.id]) == 1


def test_unknown_intent_is_refused(tmp_path, backend_kind):
    from seer_langgraph import UnknownIntentError

    p = make_pool(backend_kind, tmp_path / "intents", intents={"status": "order status", "refund": "money back"})
    p.commit(exp(1, intent="status"))
    with pytest.raises(UnknownIntentError, match="'cancel'.*status"):
        p.commit(exp(2, intent="cancel"))
    with pytest.raises(UnknownIntentError):
        p.recall("x", intent="refnd")
    assert p.count() == 1 and p.recall("request number 1", intent="status", k=1)[0].s3 == 1.0
    p.close()


def test_empty_request_is_refused(pool):
    with pytest.raises(ValueError, match="empty"):
        pool.recall("   ")
