"""The SEER nodes in real graphs, driven by a scripted model and real tools."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.config import SeerConfig
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.evaluators import HumanFeedback, ReferenceMatch
from seer_langgraph.graph import create_seer_agent
from seer_langgraph.nodes import STEP_LIMIT_NOTE
from seer_langgraph.render import EXAMPLES_HEADER
from seer_langgraph.testing import ScriptedChatModel, tool_call

PRICES = {"apple": 1.5, "pear": 2.0, "plum": 0.5}


@tool
def get_price(item: str) -> float:
    """Unit price of an item."""
    return PRICES[item]


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


TOOLS = [get_price, multiply]


@pytest.fixture
def pool():
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    yield p
    p.close()


def seed(pool, n=3):
    exps = [
        Experience(
            request=f"What do {q} {item}s cost?",
            steps=[
                Step(tool="get_price", args={"item": item}, observation=str(PRICES[item])),
                Step(tool="multiply", args={"a": PRICES[item], "b": q}, observation=str(PRICES[item] * q)),
            ],
            answer=str(PRICES[item] * q),
            intent="pricing",
        )
        for q, item in [(3, "apple"), (4, "pear"), (2, "plum")][:n]
    ]
    pool.commit_many(exps)
    return exps


def system_texts(model):
    return [p[0].content for p in model.prompts]


def test_recall_before_every_model_step_and_examples_in_system_prompt(pool):
    seed(pool)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="apple"), tool_call("multiply", a=1.5, b=5), "7.5"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=ReferenceMatch("numeric"), config=SeerConfig(k=2))
    searches = []
    real = pool.search
    pool.search = lambda q, **kw: searches.append(q) or real(q, **kw)
    out = agent.invoke({"messages": [HumanMessage("What do 5 apples cost?")], "seer_reference": 7.5})
    # stepwise: one recall per model step, with the tools used so far
    assert [q.tools for q in searches] == [(), ("get_price",), ("get_price", "multiply")]
    assert len(model.prompts) == 3
    for prompt in model.prompts:
        assert isinstance(prompt[0], SystemMessage) and EXAMPLES_HEADER in prompt[0].content
        # examples are text in the system prompt, never fake chat turns
        assert [type(m).__name__ for m in prompt[1:]][:1] == ["HumanMessage"]
        assert sum(isinstance(m, SystemMessage) for m in prompt) == 1
    assert "Request: What do 3 apples cost?" in model.prompts[0][0].content
    ex = out["seer_examples"]
    assert len(ex) == 2 and {"s1", "s2", "s3", "score", "id"} <= set(ex[0])
    assert ex[0]["score"] >= ex[1]["score"]
    assert out["seer_verdict"]["success"] and out["seer_committed_id"]
    assert [s["tool"] for s in out["seer_steps"]] == ["get_price", "multiply"]
    assert pool.count() == 4
    stored = pool.get(out["seer_committed_id"])
    assert stored.tools == ["get_price", "multiply"] and stored.answer == "7.5"
    # outcomes recorded on every recalled experience
    assert sum(pool.get(i).usage.succeeded for i in out["seer_recalled_ids"]) == len(out["seer_recalled_ids"]) > 0


def test_query_mode_recalls_once(pool):
    seed(pool)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="pear"), "2.0"])
    agent = create_seer_agent(model, TOOLS, pool, config=SeerConfig(mode="query", k=1))
    calls = []
    real = pool.search
    pool.search = lambda q, **kw: calls.append(q.mode) or real(q, **kw)
    agent.invoke({"messages": [HumanMessage("price of a pear?")]})
    assert calls == ["query"]
    assert EXAMPLES_HEADER in model.prompts[1][0].content  # the examples stay for later steps


def test_k_zero_shows_no_examples(pool):
    seed(pool)
    model = ScriptedChatModel(responses=["2.0"])
    create_seer_agent(model, TOOLS, pool, config=SeerConfig(k=0)).invoke({"messages": [HumanMessage("price of a pear?")]})
    assert EXAMPLES_HEADER not in model.prompts[0][0].content


def test_failures_are_not_committed_but_counted(pool):
    seeded = seed(pool, 1)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="apple"), "wrong answer 9"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=ReferenceMatch("numeric"))
    out = agent.invoke({"messages": [HumanMessage("What do 3 apples cost?")], "seer_reference": "4.5"})
    assert out["seer_verdict"]["success"] is False and out["seer_committed_id"] is None
    assert pool.count() == 1
    assert pool.get(seeded[0].id).usage.failed == 1


def test_no_evaluator_commits_nothing_unless_asked(pool):
    model = ScriptedChatModel(responses=["hello", "hello"])
    create_seer_agent(model, [], pool).invoke({"messages": [HumanMessage("hi")]})
    assert pool.count() == 0
    create_seer_agent(model, [], pool, config=SeerConfig(commit_unjudged=True)).invoke({"messages": [HumanMessage("hi")]})
    assert pool.count() == 1


def test_tool_errors_and_malformed_calls_become_messages(pool):
    bad = AIMessage("", invalid_tool_calls=[{"name": "multiply", "args": "{a: 1", "id": "bad1", "error": "invalid JSON", "type": "invalid_tool_call"}])
    model = ScriptedChatModel(
        responses=[tool_call("get_price", item="kiwi"), tool_call("no_such_tool"), bad, tool_call("multiply", a="x", b=1), "I could not find it."]
    )
    out = create_seer_agent(model, TOOLS, pool).invoke({"messages": [HumanMessage("price of kiwi?")]})
    tool_msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_msgs) == 4 and all(m.status == "error" for m in tool_msgs)
    assert "KeyError" in tool_msgs[0].content
    assert "not a valid tool" in tool_msgs[1].content
    assert "could not be read" in tool_msgs[2].content and tool_msgs[2].tool_call_id == "bad1"
    assert [s["error"] for s in out["seer_steps"]] == [True, True, True, True]
    assert out["messages"][-1].content == "I could not find it."


def test_step_limit_forces_an_answer(pool):
    model = ScriptedChatModel(responses=[tool_call("get_price", item="apple")] * 2 + ["1.5"])
    create_seer_agent(model, TOOLS, pool, config=SeerConfig(max_steps=2)).invoke({"messages": [HumanMessage("apple?")]})
    assert STEP_LIMIT_NOTE not in model.prompts[1][0].content
    assert STEP_LIMIT_NOTE in model.prompts[2][0].content


def test_tenant_from_run_config(pool):
    seed(pool)
    model = ScriptedChatModel(responses=["1.5", "1.5"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=lambda run: True)
    out = agent.invoke({"messages": [HumanMessage("What do 3 apples cost?")]}, config={"configurable": {"seer_tenant": "acme"}})
    assert out["seer_examples"] == []  # the default tenant's records are invisible to acme
    assert pool.count(tenant="acme") == 1 and pool.get(out["seer_committed_id"], tenant="acme") is not None
    with pytest.raises(ValueError, match="invalid tenant"):
        agent.invoke({"messages": [HumanMessage("x")]}, config={"configurable": {"seer_tenant": "no spaces"}})


def test_new_turn_resets_turn_fields(pool):
    model = ScriptedChatModel(responses=[tool_call("get_price", item="apple"), "1.5", "2.0"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=lambda run: True, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    first = agent.invoke({"messages": [HumanMessage("apple?")]}, cfg)
    second = agent.invoke({"messages": [HumanMessage("pear?")]}, cfg)
    assert len(first["seer_steps"]) == 1 and second["seer_steps"] == []
    assert second["seer_request"] == "pear?" and pool.count() == 2
    assert pool.get(second["seer_committed_id"]).request == "pear?"


def test_recall_failure_does_not_stop_the_agent(pool, caplog):
    seed(pool)
    pool.search = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("qdrant down"))
    model = ScriptedChatModel(responses=["4.5"])
    out = create_seer_agent(model, TOOLS, pool).invoke({"messages": [HumanMessage("What do 3 apples cost?")]})
    assert out["messages"][-1].content == "4.5" and out["seer_examples"] == []
    assert "recall failed" in caplog.text


def test_human_feedback_through_interrupt(pool):
    model = ScriptedChatModel(responses=["1.5", "2.0"])
    agent = create_seer_agent(model, [], pool, evaluator=HumanFeedback(), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "h1"}}
    out = agent.invoke({"messages": [HumanMessage("apple?")]}, cfg)
    assert "__interrupt__" in out and out["__interrupt__"][0].value["answer"] == "1.5"
    assert pool.count() == 0
    done = agent.invoke(Command(resume="approve"), cfg)
    assert done["seer_verdict"]["source"] == "human" and done["seer_verdict"]["success"] and pool.count() == 1
    cfg2 = {"configurable": {"thread_id": "h2"}}
    agent.invoke({"messages": [HumanMessage("pear?")]}, cfg2)
    assert agent.invoke(Command(resume={"approved": False, "reason": "wrong"}), cfg2)["seer_verdict"]["success"] is False
    assert pool.count() == 1


def test_intent_is_classified_once_per_turn_and_aligns(pool):
    seed(pool)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="plum"), "0.5"])
    classifier = ScriptedChatModel(responses=["shipping", "not-a-label"])
    intents = {"pricing": "prices and costs of items", "shipping": "delivery and tracking"}
    agent = create_seer_agent(model, TOOLS, pool, intents=intents, intent_model=classifier)
    out = agent.invoke({"messages": [HumanMessage("what do plums cost")]})
    assert len(classifier.prompts) == 1 and "pricing: prices and costs" in classifier.prompts[0][0].content
    assert out["seer_intent"] == "shipping"  # the model's choice wins
    assert all(e["s3"] == 0.0 for e in out["seer_examples"])
    # an answer outside the label set falls back to the nearest description by embedding
    model2 = ScriptedChatModel(responses=["0.5"])
    out = create_seer_agent(model2, TOOLS, pool, intents=intents, intent_model=classifier).invoke({"messages": [HumanMessage("what do plums cost")]})
    assert out["seer_intent"] == "pricing" and all(e["s3"] == 1.0 for e in out["seer_examples"])


async def test_async_graph(pool):
    seed(pool)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="pear"), tool_call("multiply", a=2.0, b=2), "4.0"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=ReferenceMatch("numeric"))
    out = await agent.ainvoke({"messages": [HumanMessage("What do 2 pears cost?")], "seer_reference": 4})
    assert out["seer_verdict"]["success"] and pool.count() == 4
    assert len(out["seer_examples"]) == 3 and EXAMPLES_HEADER in model.prompts[0][0].content


async def test_async_nodes_do_not_block_the_event_loop(pool):
    """While the agent runs, a ticker task keeps running: no node blocks the loop for long."""
    seed(pool)
    model = ScriptedChatModel(responses=[tool_call("get_price", item="pear"), "2.0"])
    agent = create_seer_agent(model, TOOLS, pool, evaluator=lambda r: True)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await agent.ainvoke({"messages": [HumanMessage("price of a pear?")]})
    t.cancel()
    assert ticks > 5


def test_require_tool_first_binds_tool_choice_for_the_first_step_only(pool):
    class Recording(ScriptedChatModel):
        def bind_tools(self, tools, **kwargs):
            from langchain_core.runnables import RunnableLambda

            choice = kwargs.get("tool_choice")
            return RunnableLambda(lambda msgs, config=None: (self._bind_kwargs.append({"used": choice}), self.invoke(msgs))[1])

    model = Recording(responses=[tool_call("get_price", item="apple"), "1.5"])
    create_seer_agent(model, TOOLS, pool, config=SeerConfig(require_tool_first=True)).invoke({"messages": [HumanMessage("apple?")]})
    assert [k["used"] for k in model.bind_kwargs] == ["any", None]
    model2 = Recording(responses=["1.5"])
    create_seer_agent(model2, TOOLS, pool).invoke({"messages": [HumanMessage("apple?")]})
    assert [k["used"] for k in model2.bind_kwargs] == [None]
