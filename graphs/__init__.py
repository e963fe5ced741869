"""LangGraph Studio graphs for seer-langgraph (served by ``langgraph dev`` from ``langgraph.json``).

- ``seer_agent``: the prebuilt SEER agent over the demo shop's tools (:mod:`graphs.seer_agent`);
- ``seer_custom``: ``add_seer`` wired into a hand-built graph with nodes of its own before and
  after SEER (:mod:`graphs.custom_graph`);
- ``seer_pool_inspector``: "what did you learn about X?" lists the recalled experiences with
  their s1/s2/s3 and score (:mod:`graphs.pool_inspector`).

Each graph file exposes an async graph factory ``make_graph(config)``: the server calls it per
run with the run's config, so the pool path and tenant come from ``configurable``
(``seer_pool_path``, ``seer_tenant``, ``seer_k``, ``seer_mode``, ``seer_judge``) with environment
defaults (:mod:`graphs.settings`). The model comes from ``SEER_MODEL`` (:mod:`graphs.models`).
The graphs use only seer-langgraph's public API; these helper modules are not part of the
library.
"""
