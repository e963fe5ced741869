"""The SEER scorer: properties of the reference, and every backend equal to it on random pools."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import edge_installed, make_pool
from seer_langgraph import Experience, Step
from seer_langgraph.scoring import Candidate, RecallQuery, SeerWeights, coverage, reference_top_k

TOOLS = ["a", "b", "c", "d", "e"]
INTENTS = [None, "x", "y"]
DIM = 8


def test_coverage_uses_sets_not_repeats():
    assert coverage(["a", "a", "a", "b"], ["a"]) == 0.5
    assert coverage(["a"], ["a", "a"]) == 1.0
    assert coverage([], ["a"]) == 0.0


def test_each_term_and_weight():
    c = Candidate(id="1", vector=np.array([1.0, 0.0]), tools=("a", "b"), intent="x")
    q = RecallQuery(vector=np.array([1.0, 1.0]), tools=("a", "c"), intent="x", weights=SeerWeights(trajectory=2, toolchain=3, intent=5))
    (r,) = reference_top_k(q, [c])
    assert r.s1 == pytest.approx(np.sqrt(0.5)) and r.s2 == 0.5 and r.s3 == 1.0
    assert r.score == pytest.approx(2 * np.sqrt(0.5) + 1.5 + 5)


def test_weights_change_the_ranking_as_documented():
    sim = Candidate(id="sim", vector=np.array([1.0, 0.0]), tools=("z",), intent="other")
    tool = Candidate(id="tool", vector=np.array([0.0, 1.0]), tools=("a",), intent="other")
    intent = Candidate(id="intent", vector=np.array([0.0, 1.0]), tools=("z",), intent="x")
    q = dict(vector=np.array([1.0, 0.1]), tools=("a",), intent="x", k=3)
    assert reference_top_k(RecallQuery(**q, weights=SeerWeights(trajectory=1, toolchain=0, intent=0)), [sim, tool, intent])[0].id == "sim"
    assert reference_top_k(RecallQuery(**q, weights=SeerWeights(trajectory=0, toolchain=1, intent=0)), [sim, tool, intent])[0].id == "tool"
    assert reference_top_k(RecallQuery(**q, weights=SeerWeights(trajectory=0, toolchain=0, intent=1)), [sim, tool, intent])[0].id == "intent"


def test_invalid_inputs():
    with pytest.raises(ValueError, match="zero length"):
        RecallQuery(vector=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        RecallQuery(vector=np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="k must be"):
        RecallQuery(vector=np.ones(3), k=-1)
    with pytest.raises(ValueError):
        SeerWeights(trajectory=-1)
    with pytest.raises(ValueError):
        SeerWeights(intent=float("inf"))


records = st.lists(
    st.tuples(
        st.integers(0, 5),  # vector id: few distinct vectors, so exact ties happen
        st.lists(st.sampled_from(TOOLS), min_size=0, max_size=4),
        st.sampled_from(INTENTS),
    ),
    min_size=1,
    max_size=30,
)
queries = st.tuples(
    st.integers(0, 5),
    st.lists(st.sampled_from(TOOLS), max_size=3),
    st.sampled_from(INTENTS),
    st.integers(0, 8),
    st.sampled_from([None, 0.5, 1.5]),
    st.sampled_from([SeerWeights(), SeerWeights(trajectory=0.5, toolchain=0.3, intent=0.2), SeerWeights(trajectory=0.0), SeerWeights(toolchain=0.0, intent=0.0)]),
)


def _vectors(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(6, DIM))
    base[5] = base[4] + 1e-7  # a near-tie
    return base


@pytest.mark.parametrize(
    "kind",
    ["memory", "memory-formula", pytest.param("edge", marks=pytest.mark.skipif(not edge_installed(), reason="no qdrant-edge-py")),
     pytest.param("edge-formula", marks=pytest.mark.skipif(not edge_installed(), reason="no qdrant-edge-py"))],
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(records=records, query=queries)
def test_backend_equals_reference(kind, records, query):
    vecs = _vectors()
    with tempfile.TemporaryDirectory() as tmp:
        pool = make_pool(kind, Path(tmp))
        pool.initial_prefetch = 2  # force the widening loop to run
        exps, vsets = [], []
        for i, (v, tools, intent) in enumerate(records):
            exps.append(Experience(request=f"r{i}", steps=[Step(tool=t, observation="o") for t in tools], answer="a", intent=intent))
            vsets.append({"traj": vecs[v], "query": vecs[(v + 1) % 6]})
        pool.commit_many(exps, vectors=vsets)
        v, tools, intent, k, min_score, weights = query
        for mode in ("stepwise", "query"):
            q = RecallQuery(vector=vecs[v] + 0.01, tools=tuple(tools), intent=intent, k=k, min_score=min_score, weights=weights, mode=mode)
            got = [(h.id, h.score, h.s1, h.s2, h.s3) for h in pool.search(q)]
            cands = []
            offset = None
            while True:
                pts, offset = pool.backend.scroll("default", 100, offset, with_vectors=True)
                cands += [Candidate(id=p.id, vector=p.vectors[q.vector_name], tools=tuple(p.payload["tools"]), intent=p.payload["intent"]) for p in pts]
                if offset is None:
                    break
            want = [(r.id, r.score, r.s1, r.s2, r.s3) for r in reference_top_k(q, cands)]
            assert got == want
        pool.close()
