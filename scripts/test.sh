#!/usr/bin/env bash
# The README's test command: a virtualenv with the test extras, then the whole suite.
# pytest exits 5 when it collects no test; that fails here like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,edge,agents]"
.venv/bin/python -m pytest -q "$@"
