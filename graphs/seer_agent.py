"""Studio graph ``seer_agent``: the prebuilt SEER agent over the demo shop's tools.

Ask it a shop question (``What is the unit price of the product 'oak scarf'?``) and give the
expected answer as ``seer_reference`` in the input so the run can be judged and, if right,
committed to the pool; or set ``seer_judge: human`` in the assistant's configurable and approve
the run when it pauses. The state panel shows ``seer_examples`` (each recalled experience with
s1, s2, s3 and score), ``seer_intent``, ``seer_steps``, ``seer_verdict`` and ``seer_committed_id``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.models import MODELS
from graphs.settings import POOLS, GraphSettings, make_evaluator
from seer_langgraph.demo.world import ShopWorld
from seer_langgraph.graph import create_seer_agent

#: The demo world every Studio graph works on (seed 0: same shop, same answers, everywhere).
WORLD = ShopWorld(seed=0)


async def make_graph(config: RunnableConfig) -> Any:
    """Graph factory: ``langgraph dev`` calls it per run with the run's config."""
    settings = GraphSettings.from_config(config)
    pool = await POOLS.aget(settings.pool_path, settings.embeddings)
    model = await MODELS.aget()
    return create_seer_agent(
        model,
        WORLD.tools(),
        pool,
        evaluator=make_evaluator(settings.judge),
        intents=WORLD.intents(),
        config=settings.seer_config(),
        name="seer_agent",
    )
