"""Graph structure: snapshots of the prebuilt agent and of add_seer in a user's own graph."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from seer_langgraph import open_pool
from seer_langgraph.graph import add_seer, create_seer_agent
from seer_langgraph.testing import ScriptedChatModel


def test_prebuilt_agent_structure(snapshot):
    agent = create_seer_agent(ScriptedChatModel(responses=["x"]), [], open_pool(":memory:"))
    assert agent.get_graph().draw_mermaid() == snapshot


def test_add_seer_into_an_existing_two_node_graph(snapshot):
    """The README's promise: SEER in an existing two-node graph in a few lines."""

    def guard(state: MessagesState):
        return {}

    def format_answer(state: MessagesState):
        return {"messages": [("ai", f"Answer: {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("guard", guard)
    builder.add_node("format_answer", format_answer)
    builder.add_edge(START, "guard")
    nodes = add_seer(builder, ScriptedChatModel(responses=["42"]), [], open_pool(":memory:"), entry="guard", exit="format_answer")
    builder.add_edge("format_answer", END)
    graph = builder.compile()
    assert graph.get_graph().draw_mermaid() == snapshot
    out = graph.invoke({"messages": [HumanMessage("q")]})
    assert out["messages"][-1].content == "Answer: 42"
    assert nodes.recall == "seer_recall"
    state_keys = set(graph.get_graph().nodes)
    assert {"guard", "seer_recall", "seer_agent", "seer_tools", "seer_commit", "format_answer"} <= state_keys


def test_add_seer_twice_needs_a_prefix():
    builder = StateGraph(MessagesState)
    pool = open_pool(":memory:")
    add_seer(builder, ScriptedChatModel(responses=["a"]), [], pool)
    with pytest.raises(ValueError, match="prefix"):
        add_seer(builder, ScriptedChatModel(responses=["a"]), [], pool, entry=None, exit=None)
    add_seer(builder, ScriptedChatModel(responses=["a"]), [], pool, entry=None, exit=None, prefix="second_")
