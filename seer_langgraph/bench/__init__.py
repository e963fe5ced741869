"""Benchmarks shipped with the package, so that ``seer bench ...`` runs them where it is installed.

- :mod:`seer_langgraph.bench.perf`: recall latency, exactness, import, reopen, memory and the SEER
  nodes' overhead per step, against the reference scan and a vectorized numpy baseline
  (``seer bench perf`` or ``python benchmarks/perf.py``).
"""
