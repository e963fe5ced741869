"""The Studio graphs' helpers in-process (no server): settings, pools, the scripted model, the graphs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # graphs/ is the repository's Studio package, not an installed one
    sys.path.insert(0, ROOT)

from graphs import custom_graph, pool_inspector, seer_agent  # noqa: E402
from graphs.models import ModelRegistry, model_spec, scripted_shop_model  # noqa: E402
from graphs.settings import GraphSettings, PoolRegistry, make_embeddings  # noqa: E402
from seer_langgraph.demo.world import KINDS, ShopWorld  # noqa: E402
from seer_langgraph.embeddings import HashingEmbeddings  # noqa: E402

ONE_CALL_KINDS = {"product_price", "product_stock", "customer_city", "order_status", "order_shipping"}


@pytest.fixture
def env(monkeypatch):
    for key in ("SEER_POOL_PATH", "SEER_TENANT", "SEER_K", "SEER_MODE", "SEER_JUDGE", "SEER_POOL_ROOT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SEER_MODEL", "scripted")
    monkeypatch.setenv("SEER_EMBEDDINGS", "hashing")
    return monkeypatch


def test_settings_come_from_configurable_then_environment(env, tmp_path):
    env.setenv("SEER_POOL_PATH", str(tmp_path / "env-pool"))
    env.setenv("SEER_K", "2")
    s = GraphSettings.from_config({"configurable": {"seer_tenant": "acme", "seer_mode": "query"}})
    assert (s.pool_path, s.tenant, s.k, s.mode, s.judge) == (str(tmp_path / "env-pool"), "acme", 2, "query", "reference")
    s = GraphSettings.from_config({"configurable": {"seer_pool_path": str(tmp_path / "cfg"), "seer_k": 0}})
    assert s.pool_path == str(tmp_path / "cfg") and s.k == 0 and s.tenant is None
    assert s.seer_config().k == 0
    assert GraphSettings.from_config(None).pool_path == str(tmp_path / "env-pool")


@pytest.mark.parametrize("bad", [{"seer_mode": "sometimes"}, {"seer_judge": "coin"}, {"seer_k": 65}, {"seer_k": "many"}])
def test_invalid_settings_are_refused(env, bad):
    with pytest.raises(ValueError):
        GraphSettings.from_config({"configurable": bad})


def test_pool_root_confines_paths_from_a_runs_config(env, tmp_path):
    env.setenv("SEER_POOL_ROOT", str(tmp_path / "pools"))
    assert GraphSettings.from_config({"configurable": {"seer_pool_path": str(tmp_path / "pools" / "a")}}).pool_path
    with pytest.raises(ValueError, match="outside SEER_POOL_ROOT"):
        GraphSettings.from_config({"configurable": {"seer_pool_path": str(tmp_path / "pools" / ".." / "etc")}})


def test_auto_embeddings_follow_the_pool_that_exists():
    emb = make_embeddings("auto", stored="HashingEmbeddings:hashing-64")
    assert isinstance(emb, HashingEmbeddings) and emb.dimension == 64
    assert isinstance(make_embeddings("hashing"), HashingEmbeddings)
    with pytest.raises(ValueError):
        make_embeddings("word2vec")


def test_pool_registry_opens_each_path_once_and_reopens_with_the_stored_embedder(tmp_path):
    reg = PoolRegistry()
    a = reg.get(str(tmp_path / "p"), "hashing")
    assert reg.get(str(tmp_path / "p" / ".." / "p"), "hashing") is a
    assert asyncio.run(reg.aget(str(tmp_path / "p"))) is a
    from seer_langgraph import Experience

    a.commit(Experience(request="q?", answer="a"))
    reg.close_all()
    b = reg.get(str(tmp_path / "p"))  # auto: the embedder the pool was written with
    assert b is not a and b.count() == 1 and isinstance(b.embeddings, HashingEmbeddings)
    reg.close_all()


def test_model_spec_and_registry(env):
    assert model_spec() == "scripted" and model_spec("openai:gpt-x") == "openai:gpt-x"
    env.delenv("SEER_MODEL")
    assert model_spec() == "local"
    reg = ModelRegistry()
    assert reg.get("scripted") is not reg.get("scripted")  # fresh: it records its prompts


def test_scripted_model_solves_exactly_the_one_call_kinds(env):
    """The scripted stand-in is honest: one lookup, no arithmetic, and it ignores examples."""
    world = ShopWorld(seed=0)
    graph = asyncio.run(seer_agent.make_graph({"configurable": {"seer_pool_path": ":memory:", "seer_k": 0}}))
    solved = set()
    for task in world.tasks(2, seed=3):
        out = graph.invoke({"messages": [("user", task.question)], "seer_reference": task.answer})
        if out["seer_verdict"]["success"]:
            solved.add(task.kind)
        elif task.kind in ONE_CALL_KINDS:
            pytest.fail(f"{task.question} -> {out['messages'][-1].content} (expected {task.answer})")
    assert solved == ONE_CALL_KINDS and set(KINDS) > solved


def test_scripted_model_does_not_classify_intents():
    from langchain_core.messages import HumanMessage, SystemMessage

    m = scripted_shop_model()
    assert m.invoke([SystemMessage("Classify the user's request into exactly one of these intents: ..."), HumanMessage("x")]).content == ""
    assert "only look up" in m.invoke([HumanMessage("tell me a joke")]).content


def test_graphs_build_in_process_and_share_one_pool(env, tmp_path):
    cfg = {"configurable": {"seer_pool_path": str(tmp_path / "pool")}}

    async def run():
        agent = await seer_agent.make_graph(cfg)
        desk = await custom_graph.make_graph(cfg)
        inspector = await pool_inspector.make_graph(cfg)
        task = ShopWorld(seed=0).tasks(1, kinds=["order_shipping"], seed=4)[0]
        a = await agent.ainvoke({"messages": [("user", task.question)], "seer_reference": task.answer})
        d = await desk.ainvoke({"messages": [("user", task.question)], "seer_reference": task.answer})
        i = await inspector.ainvoke({"messages": [("user", "what did you learn about shipping fees?")]})
        return desk, a, d, i

    desk, a, d, i = asyncio.run(run())
    assert a["seer_committed_id"] and [e["id"] for e in d["seer_examples"]] == [a["seer_committed_id"]]
    assert d["seer_committed_id"] == a["seer_committed_id"]  # same trajectory: same content hash, stored once
    assert i["seer_topic"] == "shipping fees" and [e["id"] for e in i["seer_examples"]] == [a["seer_committed_id"]]
    assert i["pool_stats"]["total"] == 1
    drawn = desk.get_graph().draw_mermaid()
    assert "triage" in drawn and "seer_recall" in drawn and "report" in drawn


def test_topic_of():
    assert pool_inspector.topic_of("What did you learn about order status?") == "order status"
    assert pool_inspector.topic_of("what have you learned on find_product") == "find_product"
    assert pool_inspector.topic_of("prices") == "prices"


def test_helper_doctests():
    import doctest

    from graphs import models

    assert doctest.testmod(models).failed == 0
