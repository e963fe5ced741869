"""The ``url=`` path: the REST requests qdrant-client sends to a Qdrant server / cluster.

qdrant-client runs for real against a fake server on 127.0.0.1 (``fake_qdrant.FakeQdrant``) that
records each request: collection creation (shards, replication, quantization, HNSW, sharding
method), payload indexes (tenant with ``is_tenant``), shard keys per tenant, upserts, and the
FormulaQuery-over-prefetch body that computes the SEER score inside Qdrant.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fake_qdrant import FakeQdrant
from seer_langgraph import Experience, Step
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.pool import ExperiencePool, QdrantCollectionSettings, open_pool
from seer_langgraph.scoring import Candidate, RecallQuery, SeerWeights, reference_top_k

DIM = 16
COLL = "seer_experiences"


def _kwargs(tmp_path):
    params = inspect.signature(ExperiencePool.__init__).parameters
    return {"spill_dir": tmp_path / "spill"} if "spill_dir" in params else {}


def _exp(i, tenant="acme", tools=("lookup", "refund"), intent="refund"):
    return Experience(request=f"refund order {i}", steps=[Step(tool=t, args={"order": i}, observation=f"ok {i}") for t in tools],
                      answer=f"done {i}", intent=intent, tenant=tenant)


def _vec(seed):
    v = np.random.default_rng(seed).normal(size=DIM)
    return {"traj": v, "query": v[::-1].copy()}


CLUSTER = QdrantCollectionSettings(
    shard_number=2,
    sharding_method="custom",
    shard_key=lambda tenant: "big" if tenant == "acme" else "small",
    shard_key_shards=2,
    replication_factor=2,
    write_consistency_factor=2,
    on_disk_payload=True,
    on_disk_vectors=True,
    hnsw_m=0,
    hnsw_payload_m=16,
    int8_quantization=True,
)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_collection_indexes_shard_keys_and_upserts(tmp_path):
    with FakeQdrant() as server:
        pool = open_pool(url=server.url, api_key="s3cret", embeddings=HashingEmbeddings(dimension=DIM), settings=CLUSTER, tenant="acme", **_kwargs(tmp_path))
        assert pool.strategy == "formula" and pool.backend.name == "qdrant-client:server"
        pool.commit_many([_exp(1), _exp(2)], vectors=[_vec(1), _vec(2)])
        pool.commit(_exp(3, tenant="tiny"), vectors=_vec(3))
        pool.close()

    (create,) = server.find("PUT", f"/collections/{COLL}")
    body = create["body"]
    for name in ("traj", "query"):
        v = body["vectors"][name]
        assert v["size"] == DIM and v["distance"] == "Dot" and v["on_disk"] is True
        assert v["quantization_config"] == {"scalar": {"type": "int8", "always_ram": True}}
    assert body["shard_number"] == 2 and body["sharding_method"] == "custom"
    assert body["replication_factor"] == 2 and body["write_consistency_factor"] == 2 and body["on_disk_payload"] is True
    assert body["hnsw_config"] == {"m": 0, "payload_m": 16}
    assert body["metadata"]["embedder"] == "HashingEmbeddings:hashing-16" and body["metadata"]["dimension"] == DIM

    indexes = {r["body"]["field_name"]: r["body"]["field_schema"] for r in server.find("PUT", f"/collections/{COLL}/index")}
    assert indexes["tenant"] == {"type": "keyword", "is_tenant": True}
    assert indexes["intent"] == "keyword" and indexes["tools"] == "keyword"

    keys = [r["body"] for r in server.find("PUT", f"/collections/{COLL}/shards")]
    assert keys == [{"shard_key": "big", "shards_number": 2, "replication_factor": 2}, {"shard_key": "small", "shards_number": 2, "replication_factor": 2}]

    upserts = server.find("PUT", f"/collections/{COLL}/points")
    assert [u["body"]["shard_key"] for u in upserts] == ["big", "small"]
    assert all(u["query"].get("wait") == ["true"] for u in upserts)
    first = upserts[0]["body"]["points"]
    assert len(first) == 2 and {p["payload"]["tenant"] for p in first} == {"acme"}
    assert first[0]["payload"]["tools"] == ["lookup", "refund"] and first[0]["payload"]["intent"] == "refund"
    assert len(first[0]["vector"]["traj"]) == DIM and "record" in first[0]["payload"]

    # every read of a tenant names its shard key; every request carries the API key
    reads = server.find("POST", f"/collections/{COLL}/points") + server.find("POST", f"/collections/{COLL}/points/query")
    assert reads and all(r["body"].get("shard_key") in ("big", "small") for r in reads)
    assert all(r["headers"].get("api-key") == "s3cret" for r in server.requests if r["path"] != "/")


def test_recall_sends_the_seer_formula_over_an_exact_prefetch(tmp_path):
    weights = SeerWeights(trajectory=0.5, toolchain=0.3, intent=0.2)
    with FakeQdrant() as server:
        pool = open_pool(url=server.url, embeddings=HashingEmbeddings(dimension=DIM), settings=CLUSTER, tenant="acme", **_kwargs(tmp_path))
        exps = [_exp(i, tools=[("lookup",), ("lookup", "refund"), ("email",)][i % 3], intent=["refund", "cancel"][i % 2]) for i in range(6)]
        pool.commit_many(exps, vectors=[_vec(i) for i in range(6)])
        server.requests.clear()
        q = RecallQuery(vector=_vec(2)["traj"] + 0.1, tools=("lookup", "refund"), intent="refund", k=3, weights=weights)
        got = pool.search(q)
        pool.close()

    (query, *rest) = server.find("POST", f"/collections/{COLL}/points/query")
    body = query["body"]
    tenant = {"must": [{"key": "tenant", "match": {"value": "acme"}}]}
    assert body["shard_key"] == "big" and body["filter"] == tenant and body["limit"] == q.k + 8
    prefetch = body["prefetch"]
    assert prefetch["using"] == "traj" and prefetch["filter"] == tenant and prefetch["params"] == {"exact": True}
    assert prefetch["limit"] == 64 and np.allclose(prefetch["query"], q.vector, atol=1e-6)
    formula = body["query"]
    assert formula["defaults"] == {}
    assert formula["formula"] == {
        "sum": [
            {"mult": [0.5, "$score"]},
            {"mult": [0.15, {"key": "tools", "match": {"value": "lookup"}}]},
            {"mult": [0.15, {"key": "tools", "match": {"value": "refund"}}]},
            {"mult": [0.2, {"key": "intent", "match": {"value": "refund"}}]},
        ]
    }
    # the dense score at rank M proves that no point outside the prefetch can enter the top k
    assert rest and rest[0]["body"]["offset"] == 63 and rest[0]["body"]["params"] == {"exact": True}
    # and the pool re-scores exactly: the same result as the reference over the stored points
    cands = [Candidate(p["id"], np.array(p["vector"]["traj"], dtype=np.float32), tuple(p["payload"]["tools"]), p["payload"]["intent"]) for p in server.points.values()]
    assert [(h.id, h.score) for h in got] == [(r.id, r.score) for r in reference_top_k(q, cands)]


def test_approximate_search_settings_for_huge_tenants(tmp_path):
    settings = QdrantCollectionSettings(exact_search=False, hnsw_ef=256, int8_quantization=True, quantization_oversampling=3.0)
    with FakeQdrant() as server:
        pool = open_pool(url=server.url, embeddings=HashingEmbeddings(dimension=DIM), settings=settings, **_kwargs(tmp_path))
        pool.commit(_exp(1, tenant="default"), vectors=_vec(1))
        pool.search(RecallQuery(vector=_vec(1)["traj"], k=2))
        pool.close()
    query = next(r for r in server.find("POST", f"/collections/{COLL}/points/query") if "prefetch" in r["body"])
    assert query["body"]["prefetch"]["params"] == {"hnsw_ef": 256, "quantization": {"rescore": True, "oversampling": 3.0}}
    assert "shard_key" not in query["body"] and "sharding_method" not in server.find("PUT", f"/collections/{COLL}")[0]["body"]


def test_settings_validation_and_index_refused_on_a_server(tmp_path):
    with pytest.raises(ValueError, match="sharding_method"):
        QdrantCollectionSettings(sharding_method="by-tenant")
    with pytest.raises(ValueError, match="custom"):
        QdrantCollectionSettings(shard_key=lambda t: t)
    with FakeQdrant() as server:
        with pytest.raises(ValueError, match="server"):
            open_pool(url=server.url, embeddings=HashingEmbeddings(dimension=DIM), strategy="index", **_kwargs(tmp_path))
