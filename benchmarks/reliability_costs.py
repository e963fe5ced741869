"""What the reliability protections cost per commit: journal (fsync), near-duplicate check, redaction.

Commits N distinct records one at a time into a fresh embedded pool, after a warm-up, once per
configuration, and prints p50 / p95 milliseconds per commit.

Run:  python benchmarks/reliability_costs.py [--n 300] [--backend edge|qdrant]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.hygiene import HygienePolicy

WORDS = "order refund invoice customer parcel ticket flight hotel price stock account address shipping".split()


def record(i: int, rng: random.Random) -> Experience:
    words = " ".join(rng.choice(WORDS) for _ in range(8))
    return Experience(
        request=f"request {i}: {words} (contact ann{i}@example.com)",
        steps=[Step(tool=f"tool_{i % 7}", args={"id": i, "token": f"tok{i}"}, observation=f"result {i} {words}") for _ in range(2)],
        answer=f"answer {i}",
        intent="status",
    )


CONFIGS = {
    "defaults (journal + dedup + redaction)": {},
    "no journal": {"spill_dir": None},
    "no near-duplicate check": {"hygiene": HygienePolicy(dedup_threshold=None)},
    "no redaction": {"redact": None},
    "none of them": {"spill_dir": None, "hygiene": HygienePolicy(dedup_threshold=None), "redact": None},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--backend", default="edge", choices=["edge", "qdrant"])
    args = ap.parse_args()
    rng = random.Random(0)
    recs = [record(i, rng) for i in range(args.n + 50)]
    for name, kwargs in CONFIGS.items():
        with tempfile.TemporaryDirectory() as tmp:
            pool = open_pool(path=Path(tmp) / "p", backend=args.backend, embeddings=HashingEmbeddings(dimension=128), **kwargs)
            for r in recs[:50]:
                pool.commit(r)
            times = []
            for r in recs[50:]:
                t = time.perf_counter()
                pool.commit(r)
                times.append(1000 * (time.perf_counter() - t))
            pool.close()
        times.sort()
        print(f"{name:40s} p50 {statistics.median(times):6.2f} ms   p95 {times[int(0.95 * len(times))]:6.2f} ms")


if __name__ == "__main__":
    main()
