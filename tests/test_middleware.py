"""SeerMiddleware with langchain.agents.create_agent."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.config import SeerConfig
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.evaluators import ReferenceMatch
from seer_langgraph.middleware import SeerMiddleware
from seer_langgraph.render import EXAMPLES_HEADER
from seer_langgraph.testing import ScriptedChatModel, tool_call


@tool
def lookup(city: str) -> str:
    """Weather of a city."""
    if city == "Atlantis":
        raise ValueError("unknown city")
    return f"{city}: 21C"


@pytest.fixture
def pool():
    p = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    p.commit(Experience(request="weather in Paris?", steps=[Step(tool="lookup", args={"city": "Paris"}, observation="Paris: 19C")], answer="19C"))
    return p


def test_recall_around_each_model_call_and_commit_after(pool):
    model = ScriptedChatModel(responses=[tool_call("lookup", city="Rome"), "21C"])
    seer = SeerMiddleware(pool, evaluator=ReferenceMatch("contains"), config=SeerConfig(k=1))
    agent = create_agent(model, tools=[lookup], system_prompt="You are a weather bot.", middleware=[seer])
    out = agent.invoke({"messages": [HumanMessage("weather in Rome?")], "seer_reference": "21C"})
    assert len(model.prompts) == 2
    for prompt in model.prompts:
        assert prompt[0].content.startswith("You are a weather bot.") and EXAMPLES_HEADER in prompt[0].content
    assert out["seer_examples"][0]["experience"]["request"] == "weather in Paris?"
    assert out["seer_examples"][0]["s2"] == 1.0 and out["seer_verdict"]["success"]
    # the second recall saw the tool already used (stepwise): coverage of lookup is 1
    assert pool.get(out["seer_committed_id"]).tools == ["lookup"]
    assert pool.count() == 2


def test_tool_exceptions_become_messages(pool):
    model = ScriptedChatModel(responses=[tool_call("lookup", city="Atlantis"), "I don't know."])
    agent = create_agent(model, tools=[lookup], middleware=[SeerMiddleware(pool)])
    out = agent.invoke({"messages": [HumanMessage("weather in Atlantis?")]})
    err = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert err.status == "error" and "unknown city" in err.content
    assert pool.count() == 1  # no evaluator: nothing committed


async def test_async_middleware(pool):
    model = ScriptedChatModel(responses=[tool_call("lookup", city="Oslo"), "Oslo: 21C"])
    agent = create_agent(model, tools=[lookup], middleware=[SeerMiddleware(pool, evaluator=lambda r: "21C" in (r.answer or ""))])
    out = await agent.ainvoke({"messages": [HumanMessage("weather in Oslo?")]})
    assert out["seer_committed_id"] and pool.count() == 2
    assert EXAMPLES_HEADER in model.prompts[0][0].content
