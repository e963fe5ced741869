"""Studio graph ``seer_custom``: ``add_seer`` inside a hand-built graph with nodes of its own.

    START -> triage --(shop question)--> seer_recall -> seer_agent <-> seer_tools ... -> seer_commit -> report -> END
                   \\--(anything else)--> smalltalk -> END

``triage`` (before SEER) routes: shop questions go to SEER, anything else gets a canned reply
without touching the model or the pool. ``report`` (after SEER) writes ``desk_report``: the
answer, the verdict, the committed id, and which past experiences were recalled and why
(s1/s2/s3/score). SEER's own fields stay in the state next to the graph's.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import NotRequired

from graphs.models import MODELS
from graphs.settings import POOLS, GraphSettings, make_evaluator
from seer_langgraph.demo.world import ShopWorld
from seer_langgraph.graph import add_seer
from seer_langgraph.state import SeerState

WORLD = ShopWorld(seed=0)
SMALLTALK = "I am the shop's help desk: ask me about products, customers or orders."
_SHOP_WORDS = re.compile(r"\b(product|products|price|stock|units?|customer|order|orders|shipping|cost)\b|\bO-\d+\b", re.I)


class DeskState(SeerState):
    """The graph's own fields next to SEER's."""

    desk_route: NotRequired[str]
    """``seer`` or ``smalltalk``: what triage decided."""
    desk_report: NotRequired[str]
    """What happened in this turn, written by the report node."""


def _last_question(state: dict[str, Any]) -> str:
    humans = [m for m in state["messages"] if isinstance(m, HumanMessage)]
    return str(humans[-1].content) if humans else ""


def triage(state: DeskState) -> dict[str, Any]:
    """Before SEER: only shop questions go to the agent."""
    return {"desk_route": "seer" if _SHOP_WORDS.search(_last_question(state)) else "smalltalk"}


def smalltalk(state: DeskState) -> dict[str, Any]:
    return {"messages": [AIMessage(SMALLTALK)], "desk_report": "not a shop question: answered without SEER"}


def report(state: DeskState) -> dict[str, Any]:
    """After SEER: a readable account of the turn, built from SEER's state fields."""
    verdict = state.get("seer_verdict") or {}
    lines = [
        f"question: {state.get('seer_request', '')}",
        f"answer: {state['messages'][-1].content}",
        f"verdict: {'success' if verdict.get('success') else 'failure'} ({verdict.get('source')}: {verdict.get('reason')})",
        f"committed: {state.get('seer_committed_id') or 'nothing'}",
        f"tool steps: {', '.join(s['tool'] for s in state.get('seer_steps') or []) or 'none'}",
    ]
    examples = state.get("seer_examples") or []
    lines.append(f"examples shown before the last model step: {len(examples)}")
    for e in examples:
        lines.append(
            f"  - {e['id'][:8]} score {e['score']:.2f} (s1 {e['s1']:.2f}, s2 {e['s2']:.2f}, s3 {e['s3']:.0f}): "
            f"{e['experience']['request']}"
        )
    return {"desk_report": "\n".join(lines)}


async def make_graph(config: RunnableConfig) -> Any:
    """Graph factory: ``langgraph dev`` calls it per run with the run's config."""
    settings = GraphSettings.from_config(config)
    pool = await POOLS.aget(settings.pool_path, settings.embeddings)
    model = await MODELS.aget()

    builder = StateGraph(DeskState)
    builder.add_node("triage", triage)
    builder.add_node("smalltalk", smalltalk)
    builder.add_node("report", report)
    builder.add_edge(START, "triage")
    # entry=None: triage's conditional edge leads into SEER; exit="report": SEER's commit leads there
    seer = add_seer(
        builder,
        model,
        WORLD.tools(),
        pool,
        evaluator=make_evaluator(settings.judge),
        intents=WORLD.intents(),
        config=settings.seer_config(),
        entry=None,
        exit="report",
    )
    builder.add_conditional_edges("triage", lambda s: s["desk_route"], {"seer": seer.recall, "smalltalk": "smalltalk"})
    builder.add_edge("smalltalk", END)
    builder.add_edge("report", END)
    return builder.compile(name="seer_custom")
