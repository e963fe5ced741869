"""Wire SEER into your own graph builder (:func:`add_seer`) or get the prebuilt agent.

Example: SEER inside a graph you already have, next to your own nodes.

    >>> from langgraph.graph import StateGraph, MessagesState, START, END
    >>> from seer_langgraph import open_pool
    >>> from seer_langgraph.graph import add_seer
    >>> from seer_langgraph.testing import ScriptedChatModel
    >>> def prepare(state):  # your own node
    ...     return {}
    >>> builder = StateGraph(MessagesState)
    >>> _ = builder.add_node("prepare", prepare)
    >>> _ = builder.add_edge(START, "prepare")
    >>> nodes = add_seer(builder, ScriptedChatModel(responses=["hi"]), [], open_pool(":memory:"), entry="prepare")
    >>> graph = builder.compile()
    >>> graph.invoke({"messages": [("user", "hello")]})["messages"][-1].content
    'hi'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from .config import SeerConfig
from .evaluators import Evaluator, RunRecord
from .intent import IntentClassifier, IntentSet
from .nodes import make_agent_node, make_commit_node, make_recall_node, make_tools_node, route_after_agent
from .pool import ExperiencePool
from .state import SeerState

__all__ = ["SeerNodes", "add_seer", "create_seer_agent"]


@dataclass(frozen=True)
class SeerNodes:
    """The names of the nodes :func:`add_seer` added, to connect your own edges to them."""

    recall: str
    agent: str
    tools: str
    commit: str


def _classifier(intents: IntentSet | dict[str, str] | None, model: BaseChatModel | None, pool: ExperiencePool) -> IntentClassifier | None:
    if intents is None:
        return None
    if isinstance(intents, dict):
        intents = IntentSet.from_dict(intents)
    return IntentClassifier(intents, model=model, embeddings=pool.embeddings)


def add_seer(
    builder: StateGraph,
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]],
    pool: ExperiencePool,
    *,
    evaluator: Evaluator | Callable[[RunRecord], Any] | None = None,
    intents: IntentSet | dict[str, str] | None = None,
    intent_model: BaseChatModel | None = None,
    config: SeerConfig | None = None,
    entry: str | None = START,
    exit: str | None = END,
    prefix: str = "seer_",
) -> SeerNodes:
    """Add the SEER agent loop to ``builder`` (uncompiled); you keep the builder and compile it.

    Adds ``recall -> agent -> (tools -> recall)* -> commit``. ``entry`` is the node (or START)
    that leads into recall and ``exit`` the node (or END) commit leads to; pass ``None`` to
    connect them yourself. ``intents`` (``{label: description}``) turns on intent alignment; the
    label is chosen by ``intent_model`` (default: ``model``), falling back to embeddings. The builder's state needs a ``messages`` key; SEER's own fields
    (:class:`~seer_langgraph.state.SeerState`) are added to the graph's channels.
    """
    cfg = config or SeerConfig()
    names = SeerNodes(recall=f"{prefix}recall", agent=f"{prefix}agent", tools=f"{prefix}tools", commit=f"{prefix}commit")
    taken = [n for n in vars(names).values() if n in builder.nodes]
    if taken:
        raise ValueError(f"the builder already has node(s) {taken}; pass another prefix=")
    builder.add_node(names.recall, make_recall_node(pool, cfg, _classifier(intents, intent_model or model, pool)), input_schema=SeerState)
    builder.add_node(names.agent, make_agent_node(model, tools, cfg), input_schema=SeerState)
    builder.add_node(names.tools, make_tools_node(tools), input_schema=SeerState)
    builder.add_node(names.commit, make_commit_node(pool, evaluator, cfg), input_schema=SeerState)
    if entry is not None:
        builder.add_edge(entry, names.recall)
    builder.add_edge(names.recall, names.agent)
    builder.add_conditional_edges(names.agent, route_after_agent(names.tools, names.commit), [names.tools, names.commit])
    builder.add_edge(names.tools, names.recall)
    if exit is not None:
        builder.add_edge(names.commit, exit)
    return names


def create_seer_agent(
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]],
    pool: ExperiencePool,
    *,
    evaluator: Evaluator | Callable[[RunRecord], Any] | None = None,
    intents: IntentSet | dict[str, str] | None = None,
    intent_model: BaseChatModel | None = None,
    config: SeerConfig | None = None,
    checkpointer: Any = None,
    store: Any = None,
    name: str = "seer_agent",
) -> Any:
    """The prebuilt SEER agent: a compiled graph over :class:`~seer_langgraph.state.SeerState`.

    Invoke it with ``{"messages": [...]}`` and optionally ``"seer_reference"`` (for reference
    evaluators); per-run tenant via ``config={"configurable": {"seer_tenant": "..."}}``.

    >>> from seer_langgraph import open_pool
    >>> from seer_langgraph.testing import ScriptedChatModel
    >>> agent = create_seer_agent(ScriptedChatModel(responses=["4"]), [], open_pool(":memory:"), evaluator=lambda run: run.answer == "4")
    >>> out = agent.invoke({"messages": [("user", "2+2?")]})
    >>> out["seer_verdict"]["success"], out["seer_committed_id"] is not None
    (True, True)
    """
    builder = StateGraph(SeerState)
    add_seer(builder, model, tools, pool, evaluator=evaluator, intents=intents, intent_model=intent_model, config=config)
    return builder.compile(checkpointer=checkpointer, store=store, name=name)
