"""Bad input everywhere: a clear error or a graceful skip, never a crashed agent or a corrupt pool."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from reliability_helpers import record

from seer_langgraph import Experience, SeerError, Step, open_pool
from seer_langgraph.cli import main as cli_main
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.errors import ImportValidationError, RecordTooLargeError
from seer_langgraph.graph import create_seer_agent
from seer_langgraph.hygiene import verify_pool
from seer_langgraph.limits import RecordLimits
from seer_langgraph.scoring import RecallQuery
from seer_langgraph.testing import ScriptedChatModel, tool_call

CLEAR = (ValueError, TypeError, SeerError)  # pydantic's ValidationError is a ValueError
DIM = 64
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
wild_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5),  # lone surrogates
    st.just("\x00\x01\x7f" * 10),
    st.builds(lambda n: "x" * n, st.integers(30_000, 40_000)),
)


@pytest.fixture(scope="module")
def fuzz_pool():
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM), limits=RecordLimits(max_request_chars=20_000))
    p.commit(record(0))
    yield p
    p.close()


@SETTINGS
@given(fields=st.dictionaries(st.sampled_from(["request", "steps", "answer", "intent", "tenant", "metadata", "verdict", "usage", "id", "bogus"]), junk))
def test_experience_constructor_gives_a_clear_error(fields):
    try:
        Experience(**fields)
    except CLEAR:
        pass


@SETTINGS
@given(request=wild_text, answer=wild_text, obs=wild_text, tool_name=wild_text, args=st.dictionaries(st.text(max_size=10), junk, max_size=4))
def test_commit_wild_records_never_corrupts_the_pool(fuzz_pool, request, answer, obs, tool_name, args):
    before = fuzz_pool.count()
    try:
        exp = Experience(request=request, steps=[Step(tool=tool_name, args=args, observation=obs)], answer=answer)
    except CLEAR:
        return
    try:
        res = fuzz_pool.commit(exp)
    except CLEAR as exc:
        assert fuzz_pool.count() == before
        if len(request) > 20_000:
            assert isinstance(exc, RecordTooLargeError) and "max_request_chars" in str(exc)
        return
    assert fuzz_pool.count() == before + (1 if res.status == "created" else 0)
    got = fuzz_pool.get(res.id)
    assert got is not None and got.content_hash == got.compute_hash()


@SETTINGS
@given(thing=junk)
def test_commit_of_a_non_experience(fuzz_pool, thing):
    with pytest.raises(CLEAR):
        fuzz_pool.commit(thing)
    with pytest.raises(CLEAR):
        fuzz_pool.commit_many([thing])


bad_vectors = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=3 * DIM),
    st.builds(lambda v, i: [1.0] * DIM if i is None else [1.0] * i[0] + [v] + [1.0] * (DIM - i[0] - 1), st.sampled_from([math.nan, math.inf, -math.inf]), st.tuples(st.integers(0, DIM - 1)) | st.none()),
    st.builds(lambda n: [0.5] * n, st.integers(0, 2 * DIM).filter(lambda n: n != DIM)),
    junk,
)


@SETTINGS
@given(traj=bad_vectors, query=bad_vectors)
def test_bad_vectors_are_refused(fuzz_pool, traj, query):
    before = fuzz_pool.count()
    ok = lambda v: isinstance(v, list) and len(v) == DIM and all(isinstance(x, float) and math.isfinite(x) for x in v) and any(v)  # noqa: E731
    try:
        res = fuzz_pool.commit(record(1_000_000 + before), vectors={"traj": traj, "query": query})
    except CLEAR:
        assert fuzz_pool.count() == before
        return
    assert ok(traj) and ok(query) and res.status in ("created", "present")


@SETTINGS
@given(text=junk | wild_text, k=st.integers(-3, 100) | junk, tools=junk, intent=junk)
def test_recall_with_bad_arguments(fuzz_pool, text, k, tools, intent):
    try:
        hits = fuzz_pool.recall(text, tools=tools if isinstance(tools, (list, tuple)) else (), intent=intent, k=k)
    except CLEAR:
        return
    assert all(h.experience.content_hash == h.experience.compute_hash() for h in hits)


@SETTINGS
@given(vec=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=2 * DIM))
def test_search_with_bad_query_vectors(fuzz_pool, vec):
    try:
        fuzz_pool.search(RecallQuery(vector=vec, k=3))
    except CLEAR:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.binary(max_size=80), st.builds(lambda d: json.dumps(d, default=str).encode(), junk), st.just(b'{"request": "ok", "answer": "1"}')), max_size=6))
def test_malformed_jsonl_import(fuzz_pool, tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = fuzz_pool.count()
    try:
        fuzz_pool.import_jsonl(path)
    except ImportValidationError as exc:
        assert fuzz_pool.count() == before and all(line >= 1 for line, _ in exc.errors)  # nothing imported
    rep = fuzz_pool.import_jsonl(path, skip_invalid=True)
    assert fuzz_pool.count() >= before and rep.imported + rep.already_present + len(rep.skipped_invalid) >= 0
    assert not verify_pool(fuzz_pool).corrupt


CLI_TOKENS = ["pool", "stats", "list", "show", "export", "import", "delete", "prune", "replay", "verify", "--path", "--memory", "--json",
              "--tenant", "--max", "--dry-run", "--limit", "--embeddings", "-3", "0", "bad tenant", "x" * 300, "\udcff", "/nonexistent", "--url"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.sampled_from(CLI_TOKENS) | st.text(max_size=12), max_size=7))
def test_cli_never_crashes(argv, capsys):
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        assert exc.code in (0, 2)
        return
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err
    if code == 1:
        assert err.startswith("seer: ")


def test_cli_bad_files(tmp_path, capsys):
    d = tmp_path / "pool"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"request": "x", "answer": "y"}\n\xff\xfe garbage\n{"request": 5}\n[1, 2]\n')
    assert cli_main(["pool", "import", str(bad), "--path", str(d)]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "UTF-8" in err and "bad.jsonl:3" in err and "bad.jsonl:4" in err
    assert cli_main(["pool", "import", str(tmp_path / "missing.jsonl"), "--path", str(d)]) == 1
    assert "No such file" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("not a pool")
    assert cli_main(["pool", "stats", "--path", str(afile)]) == 1
    assert "seer: " in capsys.readouterr().err


# -- the agent ------------------------------------------------------------------------------------------
@tool
def get_price(item: str) -> float:
    """Unit price of an item."""
    return {"apple": 1.5}[item]


model_outputs = st.one_of(
    st.text(max_size=100).map(AIMessage),
    st.just(AIMessage(content=[{"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "weird"}])),
    st.builds(lambda name, args: tool_call(name, **args), st.sampled_from(["get_price", "no_such_tool", "rm -rf /", "x" * 200]), st.dictionaries(st.sampled_from(["item", "a", "zz"]), junk, max_size=2)),
    st.builds(
        lambda name, raw: AIMessage("", invalid_tool_calls=[{"name": name, "args": raw, "id": "bad", "error": "not json", "type": "invalid_tool_call"}]),
        st.sampled_from(["get_price", "", None]),
        st.text(max_size=30),
    ),
    st.just(AIMessage("", tool_calls=[{"name": "", "args": {}, "id": "empty", "type": "tool_call"}])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(outputs=st.lists(model_outputs, min_size=1, max_size=4), request=wild_text.filter(lambda s: s.strip() != ""))
def test_agent_never_crashes_on_model_outputs(outputs, request):
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM))
    model = ScriptedChatModel(responses=[*outputs, "final answer"])
    agent = create_seer_agent(model, [get_price], pool, evaluator=lambda run: True)
    out = agent.invoke({"messages": [HumanMessage(request)]})
    assert out["messages"][-1].type == "ai"
    assert out["seer_commit_status"] in (None, "created", "present", "duplicate", "failed")
    assert not verify_pool(pool).corrupt


def test_unknown_tools_in_a_stored_trajectory_are_harmless():
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM))
    pool.commit(Experience(request="price of apple?", steps=[Step(tool="retired_tool", args={"x": 1}, observation="1.5")], answer="1.5"))
    model = ScriptedChatModel(responses=[tool_call("get_price", item="apple"), "1.5"])
    out = create_seer_agent(model, [get_price], pool, evaluator=lambda r: True).invoke({"messages": [HumanMessage("price of apple?")]})
    assert out["seer_examples"] and out["seer_examples"][0]["experience"]["steps"][0]["tool"] == "retired_tool"
    assert out["messages"][-1].content == "1.5"


# -- size limits --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "limits,exp,name",
    [
        (RecordLimits(max_request_chars=10), Experience(request="r" * 11, answer="a"), "max_request_chars"),
        (RecordLimits(max_answer_chars=10), Experience(request="r", answer="a" * 11), "max_answer_chars"),
        (RecordLimits(max_steps=2), Experience(request="r", steps=[Step(tool="t")] * 3, answer="a"), "max_steps"),
        (RecordLimits(max_args_chars=20), Experience(request="r", steps=[Step(tool="t", args={"q": "x" * 30})], answer="a"), "max_args_chars"),
        (RecordLimits(max_observation_chars=100), Experience(request="r", steps=[Step(tool="t", observation="o" * 101)], answer="a"), "max_observation_chars"),
        (RecordLimits(max_record_bytes=1000), Experience(request="r" * 900, answer="a" * 200), "max_record_bytes"),
    ],
)
def test_each_size_limit_is_enforced_with_a_clear_message(limits, exp, name):
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM), limits=limits)
    with pytest.raises(RecordTooLargeError, match=name) as err:
        pool.commit(exp)
    assert exp.id in str(err.value) and "RecordLimits" in str(err.value)
    assert pool.count() == 0


def test_limits_in_the_agent_are_reported_not_raised(caplog):
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM), limits=RecordLimits(max_answer_chars=100))
    model = ScriptedChatModel(responses=["y" * 5000])
    out = create_seer_agent(model, [], pool, evaluator=lambda r: True).invoke({"messages": [HumanMessage("long please")]})
    assert out["messages"][-1].content == "y" * 5000
    assert out["seer_commit_status"] == "failed" and "max_answer_chars" in out["seer_commit_error"]
    assert pool.count() == 0


def test_a_huge_history_is_clipped_for_recall():
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=DIM), limits=RecordLimits(max_query_chars=2000))
    pool.commit(record(1))
    seen = []
    real = pool.recall
    pool.recall = lambda text, **kw: seen.append(text) or real(text, **kw)

    @tool
    def dump(n: int) -> str:
        """A tool with a huge output."""
        return "z" * 200_000

    model = ScriptedChatModel(responses=[tool_call("dump", n=1), tool_call("dump", n=2), "done"])
    out = create_seer_agent(model, [dump], pool).invoke({"messages": [HumanMessage("dump it")]})
    assert out["messages"][-1].content == "done"
    assert len(seen) == 3 and max(len(t) for t in seen) <= 2100


def test_cli_reports_an_unexpected_engine_error_without_a_traceback(tmp_path, capsys):
    d = tmp_path / "pool"
    p = open_pool(path=d, backend="qdrant", embeddings=HashingEmbeddings(dimension=DIM))
    p.commit(record(1))
    p.close()
    for f in d.rglob("storage.sqlite"):
        f.write_bytes(b"this is not a database" * 10)  # a damaged engine file: not a ValueError or OSError
    code = cli_main(["pool", "stats", "--path", str(d)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("seer: ") and "DatabaseError" in err and "Traceback" not in err
