"""SEER recall performance vs the reference scan (issue 7): see :mod:`seer_langgraph.bench.perf`.

    OPENBLAS_NUM_THREADS=1 python benchmarks/perf.py [--sizes 1000 10000 100000] [--million] [--out benchmarks/results]

Same as ``seer bench perf``. Writes perf.json, perf.md and perf.png to ``--out``.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: BLAS threads compete with the scan

from seer_langgraph.bench.perf import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
