"""Studio graph ``seer_pool_inspector``: "what did you learn about X?"

One node, no model: it recalls the experiences nearest to X from the pool (the same exact SEER
score the agents use, in ``query`` mode: s1 compares X with each stored request) and lists them
with s1, s2, s3 and score. Name a tool (``find_product``) in the question to fill s2 (tool
coverage); name an intent label (``order_lookup``) to fill s3. The state keeps the list in
``seer_examples`` and the pool's counts in ``pool_stats``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from typing_extensions import NotRequired

from graphs.settings import POOLS, GraphSettings
from seer_langgraph import RecalledExperience
from seer_langgraph.demo.world import ShopWorld

WORLD = ShopWorld(seed=0)
TOOL_NAMES = [t.name for t in WORLD.tools()]
INTENTS = list(WORLD.intents())
_PREFIX = re.compile(r"^\s*(what|which)\s+(did|have)\s+you\s+(learn(ed|t)?|learned)\s+(about|on|for)\s+", re.I)


class InspectState(MessagesState):
    seer_topic: NotRequired[str]
    """X, taken from the question."""
    seer_examples: NotRequired[list[dict[str, Any]]]
    """The recalled experiences, best first, with s1, s2, s3 and score."""
    pool_stats: NotRequired[dict[str, Any]]
    """Backend, embedder and experiences per tenant."""


def topic_of(question: str) -> str:
    """``what did you learn about order status?`` -> ``order status``."""
    return _PREFIX.sub("", question).strip().rstrip("?.! ").strip() or question.strip()


def describe(recalled: list[RecalledExperience], topic: str, tenant: str, total: int) -> str:
    if not recalled:
        return f"Nothing yet about {topic!r}: tenant {tenant!r} has {total} experience(s) in this pool."
    lines = [f"{len(recalled)} of {total} experience(s) of tenant {tenant!r}, best first, for {topic!r}:"]
    for i, r in enumerate(recalled, 1):
        e = r.experience
        chain = " -> ".join(s.tool for s in e.steps) or "no tools"
        lines.append(
            f"{i}. score {r.score:.3f} = s1 {r.s1:.3f} (similar request) + s2 {r.s2:.2f} (tool coverage) "
            f"+ s3 {r.s3:.0f} (same intent)\n"
            f"   {e.request}\n   tools: {chain}; answer: {e.answer}; intent: {e.intent}; "
            f"recalled {e.usage.recalled}x ({e.usage.succeeded} later successes)"
        )
    return "\n".join(lines)


async def make_graph(config: RunnableConfig) -> Any:
    """Graph factory: ``langgraph dev`` calls it per run with the run's config."""
    settings = GraphSettings.from_config(config)
    pool = await POOLS.aget(settings.pool_path, settings.embeddings)

    async def inspect(state: InspectState, config: RunnableConfig) -> dict[str, Any]:
        humans = [m for m in state["messages"] if isinstance(m, HumanMessage)]
        question = str(humans[-1].content) if humans else ""
        topic = topic_of(question)
        words = set(re.findall(r"[A-Za-z_]+", topic))
        tenant = settings.tenant or pool.tenant
        stats = await asyncio.to_thread(pool.stats)
        recalled = await pool.arecall(
            topic,
            tools=[t for t in TOOL_NAMES if t in words],
            intent=next((i for i in INTENTS if i in words), None),
            k=max(settings.k, 1),
            mode="query",
            tenant=tenant,
        ) if topic else []
        text = describe(recalled, topic, tenant, stats.tenants.get(tenant, 0))
        return {
            "messages": [AIMessage(text)],
            "seer_topic": topic,
            "seer_examples": [r.model_dump(mode="json") for r in recalled],
            "pool_stats": stats.model_dump(mode="json"),
        }

    builder = StateGraph(InspectState)
    builder.add_node("inspect", inspect)
    builder.add_edge(START, "inspect")
    builder.add_edge("inspect", END)
    return builder.compile(name="seer_pool_inspector")
