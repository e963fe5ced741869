"""The demo's tool world (deterministic ground truth) and runner plumbing (with a test policy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from seer_langgraph import open_pool
from seer_langgraph.demo import KINDS, ShopJudge, ShopWorld, plot_report, run_demo, safe_calculate
from seer_langgraph.demo.cli import sampled
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.evaluators import RunRecord
from seer_langgraph.experience import Step
from seer_langgraph.render import EXAMPLES_HEADER
from seer_langgraph.testing import ScriptedChatModel, tool_call


def test_world_is_deterministic_and_answers_are_checkable():
    a, b = ShopWorld(seed=3), ShopWorld(seed=3)
    assert a.db == b.db and a.tasks(2, seed=1) == b.tasks(2, seed=1)
    assert ShopWorld(seed=4).db != a.db
    tasks = a.tasks(2, seed=1)
    assert {t.kind for t in tasks} == set(KINDS) and len(tasks) == 24
    assert {t.difficulty for t in tasks} == {"easy", "hard"}
    assert [t.question for t in a.tasks(1, seed=1)] != [t.question for t in a.tasks(1, seed=2)]


def test_gold_chains_reproduce_the_answers():
    """Replaying each kind's method with the real tools gives the ground truth."""
    w = ShopWorld(seed=5)
    tools = w.tools_by_name()
    for t in w.tasks(3, seed=9):
        if t.kind == "order_value":
            oid = t.question.split("order ")[1].split(":")[0]
            order = tools["get_order"].invoke({"order_id": oid})
            parts = [f"{i['quantity']} * {tools['get_product'].invoke({'product_id': i['product_id']})['price']}" for i in order["items"]]
            total = tools["calculator"].invoke({"expression": " + ".join(parts + [str(order["shipping_fee"])])})
            assert round(total, 2) == float(t.answer)
        if t.kind == "customer_order_count":
            name = t.question.split("'")[1]
            cid = tools["find_customer"].invoke({"name": name})["customer_id"]
            assert len(tools["list_orders"].invoke({"customer_id": cid})) == int(t.answer)


def test_tools_fail_with_clear_messages():
    tools = ShopWorld().tools_by_name()
    with pytest.raises(ValueError, match="ids look like"):
        tools["get_order"].invoke({"order_id": "5001"})
    with pytest.raises(ValueError, match="only numbers"):
        safe_calculate("__import__('os')")
    assert safe_calculate("2 * (3 + 4.5) ^ 2") == 112.5


def test_judge_is_strict_about_the_method():
    w = ShopWorld(seed=1)
    t = w.tasks(1, kinds=["units_cost"], seed=1)[0]
    judge = ShopJudge(t)
    good = [Step(tool="find_product", observation="{}"), Step(tool="calculator", observation=t.answer)]
    assert judge.evaluate(RunRecord(request=t.question, answer=t.answer, steps=good)).success
    guessed = [Step(tool="find_product", observation="{}")]  # right number, calculator never ran
    assert not judge.evaluate(RunRecord(request=t.question, answer=t.answer, steps=guessed)).success
    errored = [Step(tool="find_product", observation="{}"), Step(tool="calculator", observation="Error", error=True)]
    assert not judge.evaluate(RunRecord(request=t.question, answer=t.answer, steps=errored)).success


def _price_policy(messages):
    """A test policy for product_price tasks: look the product up, answer with its price."""
    tool_msgs = [m for m in messages if isinstance(m, ToolMessage)]
    if not tool_msgs:
        question = messages[-1].content
        return tool_call("find_product", name=question.split("'")[1])
    return AIMessage(str(json.loads(tool_msgs[-1].content.replace("'", '"'))["price"]))


def test_runner_rounds_commit_only_in_round_one(tmp_path):
    w = ShopWorld(seed=2)
    models = []

    def make(attempt):
        m = ScriptedChatModel(responses=[_price_policy], cycle=True)
        models.append(m)
        return m

    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    rep = run_demo(
        w, make, pool, train_tasks=w.tasks(2, kinds=["product_price"], seed=1), test_tasks=w.tasks(1, kinds=["product_price"], seed=2),
        k=2, explore=2, progress=False,
    )
    assert [r.success for r in rep.train] == [True, True] and pool.count() == 2 and rep.pool_sizes == [1, 2]
    assert len(rep.test_recall) == len(rep.test_no_recall) == 1
    assert rep.test_recall[0].recalled == 2 and rep.test_no_recall[0].recalled == 0
    assert EXAMPLES_HEADER in models[-2].prompts[0][0].content and EXAMPLES_HEADER not in models[-1].prompts[0][0].content
    assert pool.count() == 2  # round 2 never commits
    s = rep.summary()
    assert s["with_recall"]["accuracy"] == 1.0 and s["train_tasks"] == 2
    png = plot_report([rep], tmp_path / "curve.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_exploration_retries_failures_with_sampling():
    w = ShopWorld(seed=2)
    calls = []

    def make(attempt):
        calls.append(attempt)
        return ScriptedChatModel(responses=["no idea"], cycle=True)

    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    rep = run_demo(w, make, pool, train_tasks=w.tasks(1, kinds=["product_price"]), test_tasks=[], explore=3, progress=False)
    assert calls == [0, 1, 2] and not any(r.success for r in rep.train) and pool.count() == 0


def test_sampled_copies_only_known_fields():
    m = ScriptedChatModel(responses=["x"])
    assert sampled(m, 1) is m  # no temperature field: unchanged


def test_expert_solves_every_kind_and_passes_the_strict_judge():
    from seer_langgraph.evaluators import ReferenceMatch

    w = ShopWorld(seed=11)
    for t in w.tasks(3, seed=4):
        steps, answer = w.expert_solution(t)
        assert [s.tool for s in steps] == list(t.gold_tools), t.kind
        assert ShopJudge(t).evaluate(RunRecord(request=t.question, answer=answer, steps=steps)).success, (t, answer)
        wrong = RunRecord(request=t.question, answer=answer + "1" if t.match == "numeric" else "nowhere", steps=steps)
        assert not ShopJudge(t).evaluate(wrong).success


def test_teacher_fills_in_only_failed_tasks_and_only_verified_runs(tmp_path):
    w = ShopWorld(seed=2)
    tasks = w.tasks(1, kinds=["product_price", "order_value"], seed=1)
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    taught = tmp_path / "taught.jsonl"
    asked = []

    def teacher(task):
        asked.append(task.kind)
        steps, answer = w.expert_solution(task)
        return (steps, answer) if task.kind == "order_value" else (steps, "wrong")

    make = lambda attempt: ScriptedChatModel(responses=[_price_policy], cycle=True)  # noqa: E731
    rep = run_demo(w, make, pool, train_tasks=tasks, test_tasks=[], explore=1, progress=False, teacher=teacher, teacher_name="expert", taught_file=taught)
    # the agent solves product_price itself; only the failed order_value task goes to the teacher
    assert asked == ["order_value"] and [r.success for r in rep.train] == [True, False]
    assert [(t.kind, t.success, t.committed) for t in rep.taught] == [("order_value", True, True)]
    assert pool.count() == 2 and rep.own_sizes == [1, 1] and rep.pool_sizes == [1, 2]
    lines = taught.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["verdict"]["source"] == "teacher:expert"
    stored = [e for e in pool.list()[0] if e.verdict.source == "teacher:expert"]
    assert len(stored) == 1 and [s.tool for s in stored[0].steps] == list(tasks[1].gold_tools)
    assert rep.summary()["taught_imported"] == 1 and rep.summary()["teacher"] == "expert"

    # a teacher that gets it wrong (or crashes) is reported and never imported
    pool2 = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    from seer_langgraph.demo.runner import teach

    bad = teach(tasks[1], lambda t: (w.expert_solution(t)[0], "1.0"), pool2, tmp_path / "t2.jsonl", source="x")
    boom = teach(tasks[1], lambda t: 1 / 0, pool2, tmp_path / "t2.jsonl", source="x")
    assert not bad.success and not bad.committed and "ZeroDivisionError" in boom.error and pool2.count() == 0
    assert not (tmp_path / "t2.jsonl").exists()
    with pytest.raises(ValueError, match="taught_file"):
        run_demo(w, make, pool2, train_tasks=tasks, test_tasks=[], teacher=teacher)


def test_seer_demo_command_end_to_end_with_a_test_model(tmp_path, monkeypatch, capsys):
    """`seer demo` wiring: rounds, teacher import, per-seed reports, summary JSON, PNG, pools on disk."""
    import seer_langgraph.local.models as models
    from seer_langgraph.cli import main

    loaded = []

    def fake_load(spec, **kwargs):
        loaded.append((spec, kwargs))
        return ScriptedChatModel(responses=[_price_policy], cycle=True)

    monkeypatch.setattr(models, "load_chat_model", fake_load)
    out = tmp_path / "demo"
    code = main(["demo", "--model", "openai:test", "--embeddings", "hashing", "--seeds", "0", "1", "--kinds", "product_price", "order_value",
                 "--explore", "1", "--k", "2", "--teacher", "expert", "--out", str(out), "--json"])
    printed = capsys.readouterr().out
    assert code == 0 and loaded == [("openai:test", {})]
    summary = json.loads((out / "summary.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [0, 1]
    for s in summary["seeds"]:
        # the test policy solves price lookups only; the order_value task is taught and imported
        assert s["pool_size"] == 2 and s["taught_imported"] == 1 and s["teacher"] == "expert"
        assert s["with_recall"]["tasks"] == s["without_recall"]["tasks"] == 2
        assert s["with_recall"]["solved"] == s["without_recall"]["solved"] == 1  # a fixed policy cannot learn: no gain
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "taught-seed0.jsonl").read_text().splitlines()) == 1
    assert (out / "pool-seed1").is_dir() and json.loads((out / "report-seed1.json").read_text())["taught"][0]["kind"] == "order_value"
    assert "1 the agent's own, 1 taught by --teacher expert" in " ".join(printed.split())

    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_summary", Path(__file__).resolve().parents[2] / "benchmarks" / "demo_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = mod.summarise(out)
    assert "| 0 | 2 (1 + 1) | 1/2 (easy 100%, hard 0%) | 1/2 (easy 100%, hard 0%) | +0 |" in table and "Gain +0.0% ± 0.0%" in table

    with pytest.raises(SystemExit, match="--teacher 'nobody'"):
        main(["demo", "--model", "openai:test", "--embeddings", "hashing", "--kinds", "product_price", "--teacher", "nobody", "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["demo", "--model", "openai:test", "--threads", "0", "--out", str(out)])
    assert "--threads: expected a whole number of at least 1, got '0'" in capsys.readouterr().err
