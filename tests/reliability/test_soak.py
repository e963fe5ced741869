"""The soak script, bounded to a few seconds: concurrent runs, injected faults, integrity checks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location("seer_soak", Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py")
soak = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(soak)  # type: ignore[union-attr]


def test_short_soak_with_faults_passes_its_integrity_checks(tmp_path, capsys):
    code = soak.main(["--seconds", "3", "--concurrency", "40", "--fault-rate", "0.3", "--path", str(tmp_path / "pool"), "--json"])
    figures = json.loads(capsys.readouterr().out)
    assert code == 0 and figures["ok"], figures["failures"]
    assert figures["runs"] >= 20 and figures["faults_injected"] > 0
    statuses = figures["commit_status"]
    assert statuses.get("created", 0) > 0 and statuses.get("rejected", 0) > 0
    assert figures["stored"] == figures["verified_records"] > 0


def test_the_checks_catch_a_lost_commit(tmp_path):
    """The integrity check is not vacuous: a record deleted behind the runs' backs is reported."""
    from seer_langgraph import open_pool
    from seer_langgraph.embeddings import HashingEmbeddings

    pool = open_pool(path=tmp_path / "p", embeddings=HashingEmbeddings(dimension=32))
    res = pool.commit_many([soak_record(i) for i in range(3)])
    pool.delete([res[0].id])
    runs = {"statuses": {"created": 3}, "ids": {"created": [["default", r.id] for r in res]}, "latency": [], "recalled": 0,
            "leaks": 0, "errors": [], "runs": 3, "replay_duplicates": 0}
    figures = soak.check(pool, runs)
    assert any("missing" in f for f in figures["failures"])
    # a spilled commit that no replay stored (and no replay merged into a near-duplicate) is reported too
    runs["ids"] = {"created": [["default", r.id] for r in res[1:]], "spilled": [["default", res[0].id]]}
    runs["statuses"] = {"created": 2, "spilled": 1}
    figures = soak.check(pool, runs)
    assert any("spilled commit(s) not stored" in f for f in figures["failures"])
    runs["replay_duplicates"] = 1  # ... unless a replay merged it into a near-duplicate
    assert not [f for f in soak.check(pool, runs)["failures"] if "spilled" in f]
    pool.close()


def soak_record(i):
    from seer_langgraph import Experience, Step

    return Experience(request=f"What do {i} apples cost? (run {i})", steps=[Step(tool=f"t{i}", observation=str(i))], answer=str(i))
