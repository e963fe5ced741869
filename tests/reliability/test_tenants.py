"""Tenant isolation: random operation sequences across tenants never touch another tenant's records.

One pool per backend of tests/conftest.py; each hypothesis example works in fresh tenants (the
pool keeps every earlier example's tenants too, so there is always foreign data to leak into).
A model of the pool (tenant -> id -> usage counters) is updated by what each operation should do
and compared with the pool after every operation.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import BACKENDS, make_pool

from seer_langgraph import Experience, Step

_examples = itertools.count()
RECORDS = 6  # record i has a tool chain of its own, so two records never look like near-duplicates


def rec(i: int, tenant: str) -> Experience:
    return Experience(
        request=f"shared request {i} about order {i}",
        steps=[Step(tool=f"tool_{i}", args={"order": i}, observation=f"order {i} is shipped")],
        answer=f"order {i} shipped",
        intent="status",
        tenant=tenant,
    )


tenant_ix = st.integers(0, 2)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), tenant_ix, st.integers(0, RECORDS - 1)),
        st.tuples(st.just("commit_many"), tenant_ix, st.lists(st.integers(0, RECORDS - 1), min_size=1, max_size=3)),
        st.tuples(st.just("delete"), tenant_ix, st.lists(st.tuples(tenant_ix, st.integers(0, RECORDS - 1)), max_size=3)),
        st.tuples(st.just("outcome"), tenant_ix, st.lists(st.tuples(tenant_ix, st.integers(0, RECORDS - 1)), max_size=3), st.booleans()),
        st.tuples(st.just("prune"), tenant_ix, st.integers(0, 3)),
        st.tuples(st.just("read"), tenant_ix, st.integers(0, RECORDS - 1)),
    ),
    min_size=1,
    max_size=10,
)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_pool(request, tmp_path_factory):
    p = make_pool(request.param, tmp_path_factory.mktemp(f"tenants-{request.param}"), hygiene=None)  # dedup on
    yield p
    p.close()


def _usage(pool, tenant):
    return {e.id: (e.usage.recalled, e.usage.succeeded, e.usage.failed, e.usage.duplicates) for e in pool.scroll(tenant=tenant, batch_size=3)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=ops)
def test_no_operation_touches_another_tenant(shared_pool, sequence, tmp_path_factory):
    pool = shared_pool
    n = next(_examples)
    tenants = [f"t{n}-{k}" for k in range(3)]
    model: dict[str, dict[str, list[int]]] = {t: {} for t in tenants}  # id -> [recalled, succeeded, failed, duplicates]
    others_before = {t: c for t, c in pool.stats().tenants.items() if t not in tenants}

    def check():
        for t in tenants:
            got = _usage(pool, t)
            assert {i: tuple(v) for i, v in model[t].items()} == got, t
            assert pool.count(tenant=t) == len(model[t])
        assert {t: c for t, c in pool.stats().tenants.items() if t not in tenants} == others_before

    for op in sequence:
        kind, ti = op[0], op[1]
        t = tenants[ti]
        if kind == "commit":
            e = rec(op[2], t)
            res = pool.commit(e)
            assert res.id == e.id and res.status == ("present" if e.id in model[t] else "created")
            model[t].setdefault(e.id, [0, 0, 0, 0])
        elif kind == "commit_many":
            res = pool.commit_many([rec(i, "default") for i in op[2]], tenant=t)  # moved into t
            for r in res:
                assert pool.get(r.id, tenant=t) is not None
                model[t].setdefault(r.id, [0, 0, 0, 0])
        elif kind == "delete":
            ids = [rec(i, tenants[u]).id for u, i in op[2]]
            n_del = pool.delete(ids, tenant=t)
            own = {i for i in ids if i in model[t]}
            assert n_del == len(own)
            for i in own:
                del model[t][i]
        elif kind == "outcome":
            ids = [rec(i, tenants[u]).id for u, i in op[2]]
            n_rec = pool.record_outcome(ids, op[3], tenant=t)
            own = [i for i in dict.fromkeys(ids) if i in model[t]]
            assert n_rec == len(own)
            for i in own:
                model[t][i][0] += 1
                model[t][i][1 if op[3] else 2] += 1
        elif kind == "prune":
            report = pool.prune(op[2], tenant=t)
            assert report.tenant == t and report.before == len(model[t])
            for d in report.dropped:
                assert d.id in model[t]  # only the tenant's own records are candidates
                del model[t][d.id]
            assert len(model[t]) == min(report.before, op[2])
        elif kind == "read":
            i = op[2]
            own = set(model[t])
            for hit in pool.recall(rec(i, t).request, tools=[f"tool_{i}"], intent="status", k=10, tenant=t):
                assert hit.id in own and hit.experience.tenant == t
            page, _ = pool.list(tenant=t, limit=100)
            assert {e.id for e in page} == own and all(e.tenant == t for e in page)
            for u, other in enumerate(tenants):
                if other != t:
                    assert pool.get(rec(i, other).id, tenant=t) is None  # another tenant's id is invisible
            path = tmp_path_factory.mktemp("export") / "out.jsonl"
            n_exp = pool.export_jsonl(path, tenant=t)
            rows = [json.loads(x) for x in path.read_text().splitlines()]
            assert n_exp == len(own) and {r["id"] for r in rows} == own and all(r["tenant"] == t for r in rows)
        check()
