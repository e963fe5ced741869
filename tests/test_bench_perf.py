"""The performance benchmark's command line and reports (the benchmark itself is not run here)."""

from __future__ import annotations

import json

import pytest

from seer_langgraph.bench import perf
from seer_langgraph.cli import build_parser


def test_seer_bench_perf_passes_its_arguments_through():
    args = build_parser().parse_args(["bench", "perf", "--sizes", "1000", "--million", "--out", "x"])
    assert args.command == "bench" and args.bench == "perf" and args.bench_args == ["--sizes", "1000", "--million", "--out", "x"]
    p = perf.build_parser().parse_args(args.bench_args)
    assert p.sizes == [1000] and p.million and p.out == "x"


def test_reference_helper_is_the_reference_bit_for_bit():
    from seer_langgraph.scoring import RecallQuery, reference_top_k

    data = perf.make_dataset(600, tenants=2, seed=3)
    data.ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(600)]
    rows = [i for i in range(600) if data.tenant_of[i] == "t0"]
    mat = perf.TenantMatrix(data, rows, data.ids)
    for q in perf.make_queries(data, rows, 10, seed=1):
        rq = RecallQuery(vector=q.vector, tools=q.tools, intent=q.intent, k=4)
        full = [(r.id, r.s1, r.s2, r.s3, r.score) for r in reference_top_k(rq, mat.candidates)]
        assert mat.reference(rq) == full
        assert mat.baseline_b(rq) == [r[0] for r in full]


def test_markdown_and_plot_from_a_result(tmp_path):
    row = {"backend": "qdrant-edge / index", "size": 1000, "tenant_filter": True, "exact_fraction": 1.0, "p50_ms": 0.5, "p95_ms": 0.7, "p99_ms": 0.9, "n": 10,
           "vs_b_numpy": 2.0, "vs_a_python_loop": 100.0, "index_bounds_only": {"p50_ms": 0.1, "p95_ms": 0.1, "p99_ms": 0.2, "n": 10}, "rows_scanned_mean": 40.0}
    base = {"size": 1000, "tenant_filter": True, "rows_scanned": 250, "b_numpy": {"p50_ms": 0.05, "p95_ms": 0.1, "p99_ms": 0.1, "n": 10, "exact_ids_fraction": 1.0},
            "a_python_loop": {"p50_ms": 3.0, "p95_ms": 3.0, "p99_ms": 3.0, "n": 3, "exact_fraction": 1.0}}
    r = {"machine": {"cpu": "x", "cores": 2, "python": "3", "numpy": "2", "OPENBLAS_NUM_THREADS": "1"}, "recall": [row], "baselines": [base], "notes": ["n"]}
    text = perf.markdown(r)
    assert "| 1,000 | yes | qdrant-edge / index | 0.500 |" in text and "(b) numpy" in text
    pytest.importorskip("matplotlib")
    perf.plot(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    json.dumps(r)
