"""Faults: the pool, the embedder or the judge failing; a process killed mid-commit."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from reliability_helpers import FaultyBackend, always, edge_installed, fail_times, record

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.cli import main as cli_main
from seer_langgraph.durability import RetryPolicy
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.errors import PoolClosedError
from seer_langgraph.evaluators import LLMJudge, ReferenceMatch
from seer_langgraph.graph import create_seer_agent
from seer_langgraph.hygiene import verify_pool
from seer_langgraph.spill import read_journal
from seer_langgraph.testing import ScriptedChatModel, tool_call

FAST = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.005, jitter=0.0)


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value-of-{key}"


def agent_for(pool, answer="value-of-k", evaluator=None, **kw):
    model = ScriptedChatModel(responses=[tool_call("lookup", key="k"), answer])
    return create_seer_agent(model, [lookup], pool, evaluator=evaluator or (lambda run: True), **kw)


def expected(answer="value-of-k", request="what is k?") -> Experience:
    return Experience(request=request, steps=[Step(tool="lookup", args={"key": "k"}, observation="value-of-k")], answer=answer)


def spill_pool(tmp_path, **kw):
    return open_pool(path=tmp_path / "pool", backend="qdrant", embeddings=HashingEmbeddings(dimension=64), retry=FAST, strategy="rerank", **kw)


FAULTS = {
    "injected": lambda: RuntimeError("qdrant: 503 service unavailable"),
    "disk-full": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "connection": lambda: ConnectionError("connection refused"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_agent_answers_and_commit_is_spilled_when_the_pool_fails(fault, tmp_path, caplog):
    pool = spill_pool(tmp_path)
    pool.commit(record(1))
    real = pool.backend
    err = FAULTS[fault]()
    pool.backend = FaultyBackend(real, {m: always(err) for m in ("upsert", "retrieve", "dense_search", "dimension", "scroll")})
    caplog.set_level(logging.WARNING)
    out = agent_for(pool).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k"  # the agent still answers
    assert out["seer_examples"] == [] and "recall failed" in caplog.text
    assert out["seer_commit_status"] == "spilled" and out["seer_committed_id"] == expected().id
    assert "spill journal" in caplog.text and "retry" in caplog.text  # retried, then kept: never silent
    assert pool.spill_pending() == 1
    pool.backend = real  # the engine is back
    report = pool.replay_spill()
    assert (report.replayed, report.failed) == (1, 0) and pool.get(expected().id) is not None
    assert pool.spill_pending() == 0
    pool.close()


def test_closed_client_mid_run(tmp_path, caplog):
    """The Qdrant client closed under the pool: answer without examples, commit kept for later."""
    pool = spill_pool(tmp_path)
    pool.backend.client.close()
    out = agent_for(pool).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k" and out["seer_commit_status"] == "spilled"
    pool.close()
    again = spill_pool(tmp_path)  # reopening replays the journal the closed pool left behind
    assert again.get(expected().id) is not None and again.spill_pending() == 0
    again.close()


def test_commit_is_retried_with_backoff(tmp_path, caplog):
    pool = spill_pool(tmp_path)
    pool.commit(record(1))
    pool.backend = FaultyBackend(pool.backend, {"upsert": fail_times(2, ConnectionError("flaky network"))})
    res = pool.commit(record(2))
    assert res.status == "created" and pool.backend.calls["upsert"] == 3
    assert caplog.text.count("retry") >= 2 and pool.spill_pending() == 0
    pool.close()


def test_spilled_commits_replay_automatically_at_the_next_good_commit(tmp_path):
    pool = spill_pool(tmp_path)
    pool.commit(record(0))
    real = pool.backend
    pool.backend = FaultyBackend(real, {"upsert": always(OSError(errno.ENOSPC, "No space left on device"))})
    spilled = [pool.commit(record(i)) for i in range(1, 4)]
    assert {r.status for r in spilled} == {"spilled"} and pool.spill_pending() == 3
    lines = [json.loads(x) for x in Path(spilled[0].spill_file).read_text().splitlines()]
    assert {x["op"] for x in lines} >= {"put", "fail"} and all(x["op"] != "put" or x["record"]["request"] for x in lines)
    pool.backend = real
    assert pool.commit(record(9)).status == "created"
    assert pool.spill_pending() == 0 and pool.count() == 5  # the three came back with it
    pool.close()


def test_cli_replay_and_replay_at_open(tmp_path, capsys):
    pool = spill_pool(tmp_path)
    pool.commit(record(0))
    pool.backend = FaultyBackend(pool.backend, {"upsert": always(RuntimeError("down"))})
    assert pool.commit(record(1)).status == "spilled"
    pool.backend.faults.clear()
    pool.close()  # the journal stays behind as an orphan
    pending = [p for p in (tmp_path / "pool" / "spill").glob("journal-*.jsonl") if read_journal(p)[0]]
    assert len(pending) == 1
    code = cli_main(["pool", "replay", "--path", str(tmp_path / "pool"), "--embeddings", "hashing", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["replayed"] == 1
    again = spill_pool(tmp_path)
    assert again.count() == 2 and again.spill_pending() == 0
    again.close()


def test_embedder_failure_at_commit_spills_and_at_recall_degrades(tmp_path, caplog):
    class Broken(HashingEmbeddings):
        broken = True

        def embed_documents(self, texts):
            if self.broken:
                raise TimeoutError("embedding API timed out")
            return super().embed_documents(texts)

        def embed_query(self, text):
            if self.broken:
                raise TimeoutError("embedding API timed out")
            return super().embed_query(text)

    emb = Broken(dimension=64)
    pool = open_pool(path=tmp_path / "pool", backend="qdrant", embeddings=emb, retry=FAST, strategy="rerank")
    out = agent_for(pool).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k" and "recall failed" in caplog.text
    assert out["seer_commit_status"] == "spilled"
    entries = pool._pipeline.journal.failed_entries()
    assert len(entries) == 1 and entries[0].vectors is None and "timed out" in entries[0].error
    emb.broken = False
    assert pool.replay_spill().replayed == 1 and pool.get(expected().id) is not None
    pool.close()


def test_judge_failure_is_logged_and_recorded_not_committed(tmp_path, caplog):
    pool = spill_pool(tmp_path)

    def judge(run):
        raise ConnectionError("judge model unreachable")

    out = agent_for(pool, evaluator=judge).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k"
    v = out["seer_verdict"]
    assert v["success"] is False and v["source"].startswith("error:") and "judge model unreachable" in v["reason"]
    assert out["seer_committed_id"] is None and pool.count() == 0 and "evaluator" in caplog.text
    # an LLM judge whose model fails: same outcome
    bad_model = ScriptedChatModel(responses=[])
    out = agent_for(pool, evaluator=LLMJudge(bad_model, use_reference=False)).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["seer_verdict"]["success"] is False and pool.count() == 0
    pool.close()


async def test_async_paths_degrade_the_same_way(tmp_path, caplog):
    pool = spill_pool(tmp_path)
    real = pool.backend
    pool.backend = FaultyBackend(real, {m: always(RuntimeError("down")) for m in ("upsert", "retrieve", "dense_search", "dimension")})
    out = await agent_for(pool, evaluator=ReferenceMatch("exact")).ainvoke({"messages": [HumanMessage("what is k?")], "seer_reference": "value-of-k"})
    assert out["messages"][-1].content == "value-of-k" and out["seer_commit_status"] == "spilled"
    pool.backend = real
    assert (await pool.areplay_spill()).replayed == 1
    await pool.aclose()


def test_no_spill_dir_means_the_error_is_reported_not_swallowed(tmp_path, caplog):
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64), retry=FAST)
    pool.commit(record(1))
    pool.backend = FaultyBackend(pool.backend, {"upsert": always(OSError(errno.ENOSPC, "No space left on device"))})
    with pytest.raises(OSError, match="No space left"):
        pool.commit(record(2))
    out = agent_for(pool).invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k"
    assert out["seer_commit_status"] == "failed" and "No space left" in out["seer_commit_error"]
    assert "could not commit" in caplog.text
    pool.close()
    out = agent_for(pool).invoke({"messages": [HumanMessage("what is k?")]})  # a closed pool: same
    assert out["messages"][-1].content == "value-of-k" and "PoolClosedError" in out["seer_commit_error"]


def test_journal_on_a_full_disk_does_not_block_a_working_engine(tmp_path, caplog):
    pool = spill_pool(tmp_path)
    journal = pool._pipeline.journal

    def full(data, sync):
        raise OSError(errno.ENOSPC, "No space left on device")

    journal._append = full
    assert pool.commit(record(1)).status == "created" and "could not journal" in caplog.text
    pool.close()


# -- a process killed mid-commit ----------------------------------------------------------------------
CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from langchain_core.tools import tool
    from seer_langgraph import open_pool
    from seer_langgraph.embeddings import HashingEmbeddings
    from seer_langgraph.graph import create_seer_agent
    from seer_langgraph.testing import ScriptedChatModel, tool_call

    path, point, engine = sys.argv[1:4]
    pool = open_pool(path=path, backend=engine, embeddings=HashingEmbeddings(dimension=64), strategy="rerank")

    def die(*a, **k):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    be = pool.backend
    real_upsert = be.upsert
    if point == "embed":
        pool.embeddings.embed_documents = die
    elif point == "upsert":
        be.upsert = die
    elif point == "after_upsert":
        be.upsert = lambda points: (real_upsert(points), die())
    elif point == "journal":
        j = pool._pipeline.journal
        def torn(data, sync):
            os.write(j._open(), data[: len(data) // 2])
            die()
        j._append = torn

    @tool
    def lookup(key: str) -> str:
        \"\"\"Look a key up.\"\"\"
        return f"value-of-{key}"

    model = ScriptedChatModel(responses=[tool_call("lookup", key="k"), "value-of-k"])
    agent = create_seer_agent(model, [lookup], pool, evaluator=lambda run: True)
    agent.invoke({"messages": [("user", "what is k?")]})
    print("not killed")
    """
)


def _crash_runs(tmp_path: Path, cases: list[tuple[str, str]]) -> dict[tuple[str, str], Path]:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = {}
    for point, engine in cases:
        d = tmp_path / f"{point}-{engine}"
        procs[(point, engine)] = (d, subprocess.Popen([sys.executable, str(script), str(d), point, engine], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    out = {}
    for key, (d, p) in procs.items():
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == -9, (key, p.returncode, stderr[-2000:])
        assert "not killed" not in stdout
        out[key] = d
    return out


def _check_after_crash(point: str, d: Path) -> None:
    pool = open_pool(path=d, embeddings=HashingEmbeddings(dimension=64), strategy="rerank")  # replays at open
    report = verify_pool(pool)
    assert not report.corrupt  # never a torn record
    if point == "journal":
        # killed while journaling, before the commit began: nothing stored, the torn line set aside
        assert pool.count() == 0 and list((d / "spill").glob("corrupt-*.jsonl"))
    else:
        got = pool.get(expected().id)
        assert got is not None and got.answer == "value-of-k" and got.tools == ["lookup"], point
        assert pool.count() == 1 and pool.spill_pending() == 0
    pool.close()


FAST_CRASHES = [("embed", "edge" if edge_installed() else "qdrant"), ("upsert", "qdrant"), ("after_upsert", "qdrant"), ("journal", "qdrant")]


def test_killed_mid_commit_the_record_is_present_or_replayed_never_torn(tmp_path):
    for (point, _), d in _crash_runs(tmp_path, FAST_CRASHES).items():
        _check_after_crash(point, d)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEER_SLOW"), reason="slow: set SEER_SLOW=1")
@pytest.mark.skipif(not edge_installed(), reason="no qdrant-edge-py")
def test_killed_mid_commit_every_point_every_engine(tmp_path):
    cases = [(p, e) for p in ("embed", "upsert", "after_upsert", "journal") for e in ("qdrant", "edge")]
    for (point, _), d in _crash_runs(tmp_path, cases).items():
        _check_after_crash(point, d)


def test_pool_closed_by_the_caller_raises(tmp_path):
    pool = spill_pool(tmp_path)
    pool.close()
    with pytest.raises(PoolClosedError):
        pool.commit(record(1))


def test_intent_classifier_failure_degrades_to_no_intent(tmp_path, caplog):
    class DownEmbeddings(HashingEmbeddings):
        def embed_documents(self, texts):
            raise ConnectionError("embedding service down")

        def embed_query(self, text):
            raise ConnectionError("embedding service down")

    pool = open_pool(":memory:", embeddings=DownEmbeddings(dimension=64), retry=FAST)  # the classifier's fallback fails too
    model = ScriptedChatModel(responses=[tool_call("lookup", key="k"), "value-of-k"])
    failing_classifier = ScriptedChatModel(responses=[])  # raises: out of responses
    agent = create_seer_agent(model, [lookup], pool, evaluator=lambda r: True, intents={"a": "about a", "b": "about b"}, intent_model=failing_classifier)
    out = agent.invoke({"messages": [HumanMessage("what is k?")]})
    assert out["messages"][-1].content == "value-of-k" and out["seer_intent"] is None
    assert "intent classification failed" in caplog.text


def test_replay_refuses_other_embeddings_and_keeps_the_records(tmp_path):
    pool = spill_pool(tmp_path)
    pool.commit(record(0))
    pool.embeddings.embed_documents = lambda texts: (_ for _ in ()).throw(TimeoutError("down"))
    assert pool.commit(record(1)).status == "spilled"
    pool.close()
    emb = HashingEmbeddings(dimension=64)
    emb.model = "another-model"  # same size, another model: its vectors must not be mixed in
    other = open_pool(path=tmp_path / "pool", embeddings=emb, allow_embedder_change=True, retry=FAST)
    assert other.count() == 1 and other.spill_pending() == 1  # not replayed at open either
    report = other.replay_spill()
    assert report.failed == 1 and "original embeddings" in " ".join(report.errors) and other.count() == 1
    other.close()
    again = spill_pool(tmp_path)  # the right embeddings: replayed at open
    assert again.count() == 2 and again.spill_pending() == 0
    again.close()
