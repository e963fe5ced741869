"""Pool hygiene: near-duplicates counted not stored, a size cap per tenant, pruning the least useful."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from reliability_helpers import BACKENDS, make_pool, record

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.cli import main as cli_main
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.hygiene import HygienePolicy

OBS = "order 7 | status shipped | carrier UPS | weight 2.5 kg | items: apple x3, pear x2, plum x1 | total 11.40 | eta friday"


def base(tenant="default", intent="status", answer="Order 7 was shipped with UPS and arrives on Friday.", chain=("get_order", "track")) -> Experience:
    return Experience(
        request="Where is my order 7 and when will it arrive?",
        steps=[Step(tool=t, args={"order_id": 7}, observation=OBS) for t in chain],
        answer=answer,
        intent=intent,
        tenant=tenant,
    )


NEAR = dict(answer="Order 7 was shipped with UPS and it arrives on Friday.")  # one word more


def _cos(pool, a: Experience, b: Experience) -> float:
    va, vb = (np.asarray(pool.embeddings.embed_query(e.trajectory_text())) for e in (a, b))
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


@pytest.fixture
def hpool(backend_kind, tmp_path):
    p = make_pool(backend_kind, tmp_path, hygiene=HygienePolicy())  # the library default: dedup at 0.97
    yield p
    p.close()


@pytest.fixture(params=BACKENDS)
def backend_kind(request):
    return request.param


def test_near_duplicate_is_counted_on_the_kept_record(hpool):
    a, near = base(), base(**NEAR)
    assert a.id != near.id and 0.97 <= _cos(hpool, a, near) < 1.0  # a different record, very similar trajectory
    first = hpool.commit(a)
    dup = hpool.commit(near)
    assert first.status == "created"
    assert (dup.status, dup.created, dup.duplicate_of, dup.id) == ("duplicate", False, a.id, a.id)
    assert hpool.count() == 1 and hpool.get(a.id).usage.duplicates == 1
    assert hpool.commit(a).status == "present" and hpool.get(a.id).usage.duplicates == 1  # exact re-commit: not counted
    # not duplicates: another tool chain, another intent, another tenant
    assert hpool.commit(base(chain=("get_order",), **NEAR)).status == "created"
    assert hpool.commit(base(intent="refund", **NEAR)).status == "created"
    assert hpool.commit(base(tenant="acme", **NEAR)).status == "created"
    assert hpool.count() == 3 and hpool.count(tenant="acme") == 1


def test_near_duplicates_inside_one_batch(hpool):
    res = hpool.commit_many([base(), base(**NEAR), record(1)])
    assert [r.status for r in res] == ["created", "duplicate", "created"]
    assert hpool.count() == 2 and hpool.get(base().id).usage.duplicates == 1


def test_dedup_can_be_switched_off(tmp_path):
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64), hygiene=HygienePolicy(dedup_threshold=None))
    assert [r.status for r in p.commit_many([base(), base(**NEAR)])] == ["created", "created"]


def test_size_cap_per_tenant_keeps_the_most_useful(tmp_path):
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64), hygiene=HygienePolicy(max_per_tenant=10))
    first = [r.id for r in p.commit_many([record(i) for i in range(5)])]
    p.record_outcome(first[:2], True)  # two proven-useful records
    p.record_outcome(first[2:4], False)  # two that led runs astray
    for i in range(5, 16):
        p.commit(record(i))
        time.sleep(0.002)  # distinct creation times
    p.commit(record(100, tenant="acme"))
    assert p.count() == 10 and p.count(tenant="acme") == 1
    kept = {e.id for e in p.scroll()}
    assert set(first[:2]) <= kept and not (set(first[2:4]) & kept)


def test_prune_order_dry_run_and_real(tmp_path):
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    ids = []
    for i in range(5):
        ids.append(p.commit(record(i)).id)
        time.sleep(0.002)
    r0, r1, r2, r3, r4 = ids
    for _ in range(3):
        p.record_outcome([r0], False)  # rate (0+1)/(3+2) = 0.2
        p.record_outcome([r1], True)  # rate 0.8
    p.record_outcome([r3], True)
    p.record_outcome([r3], False)  # rate 0.5, recalled twice
    # r2 and r4: never recalled (rate 0.5, 0 recalls): the older goes first
    dry = p.prune(2, dry_run=True)
    assert [d.id for d in dry.dropped] == [r0, r2, r4] and dry.dry_run and p.count() == 5
    assert dry.dropped[0].success_rate == pytest.approx(0.2)
    done = p.prune(2)
    assert {e.id for e in p.scroll()} == {r1, r3} and done.after == 2
    with pytest.raises(ValueError, match="max_records"):
        p.prune(-1)
    with pytest.raises(ValueError, match="how many"):
        p.prune()


def test_usage_counters_exist_and_count():
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    rid = p.commit(record(1)).id
    p.record_outcome([rid], True)
    p.record_outcome([rid], False)
    u = p.get(rid).usage
    assert (u.recalled, u.succeeded, u.failed, u.duplicates) == (2, 1, 1, 0)


def test_cli_prune_dry_run_and_verify(tmp_path, capsys):
    d = tmp_path / "pool"
    p = open_pool(path=d, backend="qdrant", embeddings=HashingEmbeddings(dimension=64))
    ids = [p.commit(record(i)).id for i in range(6)]
    p.record_outcome(ids[:3], False)
    p.close()
    code = cli_main(["pool", "prune", "--max", "4", "--dry-run", "--path", str(d), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["dry_run"] and [x["id"] for x in out["dropped"]] == ids[:2]
    code = cli_main(["pool", "prune", "--max", "4", "--path", str(d)])
    text = capsys.readouterr().out
    assert code == 0 and "dropped 2" in text and "4 left" in text
    assert cli_main(["pool", "verify", "--path", str(d), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == 4
    code = cli_main(["pool", "prune", "--max", "-3", "--path", str(d)])
    assert code == 1 and "--max" in capsys.readouterr().err
    # a tampered record: verify says which, exit 1
    p = open_pool(path=d, embeddings=HashingEmbeddings(dimension=64))
    rec = p.backend.retrieve([ids[5]], "default")[0].payload["record"]
    rec["answer"] = "tampered"
    p.backend.set_payload(ids[5], {"record": rec})
    p.close()
    assert cli_main(["pool", "verify", "--path", str(d)]) == 1
    assert ids[5] in capsys.readouterr().out
