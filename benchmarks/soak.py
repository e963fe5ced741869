"""Bounded soak: thousands of concurrent simulated agent runs against one pool, then integrity checks.

Each simulated run is the real SEER graph (recall before every model step, tools, judge, commit,
usage counters) driven by a deterministic scripted model: "What do Q ITEMs cost?" -> get_price ->
multiply -> answer (wrong on purpose in ``--wrong-rate`` of the runs, which the judge then
rejects). ``--concurrency`` asyncio tasks run back to back until ``--seconds`` have passed,
spread over ``--tenants`` tenants; with ``--procs N`` the load comes from N processes sharing one
embedded pool (``open_pool(path, shared=True)``: this process owns it, the others are clients).
``--fault-rate`` makes the engine's writes fail at random (retries, then the spill journal).

At the end it replays the spill journal and checks:

- every acknowledged commit (created / present / duplicate) is in the pool, and every spilled one
  is there after the replay: nothing lost;
- per tenant, the records equal the distinct records reported created (plus those the replay
  created): nothing extra, nothing in the wrong tenant;
- every record passes its content-hash check and its payload agrees with it (``verify_pool``);
- the ``duplicates`` counters add up to the near-duplicate commits, and the ``recalled`` counters
  to the recalls the runs made;
- every example a run recalled belonged to the run's tenant.

Run:  python benchmarks/soak.py --seconds 60 [--concurrency 2000] [--procs 3] [--fault-rate 0.2] [--json]
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

from seer_langgraph import open_pool  # noqa: E402
from seer_langgraph.config import SeerConfig  # noqa: E402
from seer_langgraph.durability import RetryPolicy  # noqa: E402
from seer_langgraph.embeddings import HashingEmbeddings  # noqa: E402
from seer_langgraph.evaluators import ReferenceMatch  # noqa: E402
from seer_langgraph.graph import create_seer_agent  # noqa: E402
from seer_langgraph.hygiene import verify_pool  # noqa: E402
from seer_langgraph.testing import ScriptedChatModel  # noqa: E402

PRICES = {"apple": 1.5, "pear": 2.0, "plum": 0.5, "kiwi": 0.75, "mango": 2.25, "fig": 1.25, "lime": 0.4, "peach": 1.8}
ITEMS = sorted(PRICES)


@tool
def get_price(item: str) -> float:
    """Unit price of an item."""
    return PRICES[item]


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return round(a * b, 4)


def _task(text: str) -> tuple[int, str]:
    words = text.split()
    return int(words[2]), words[3].rstrip("s")


def _policy(wrong: set[str]) -> Any:
    """The scripted model: price, then multiply, then the answer (a wrong one for the runs in ``wrong``)."""

    def reply(messages: list[Any]) -> AIMessage:
        human = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        qty, item = _task(str(human.content))
        tools_done = [m for m in messages[messages.index(human) :] if isinstance(m, ToolMessage)]
        if not tools_done:
            return AIMessage("", tool_calls=[{"name": "get_price", "args": {"item": item}, "id": f"p{random.random()}", "type": "tool_call"}])
        if len(tools_done) == 1:
            price = float(tools_done[0].content)
            return AIMessage("", tool_calls=[{"name": "multiply", "args": {"a": price, "b": qty}, "id": f"m{random.random()}", "type": "tool_call"}])
        total = float(tools_done[-1].content)
        return AIMessage(f"The total is {total + 1 if str(human.content) in wrong else total}")

    return reply


class _FaultyWrites:
    """Wraps a backend: each upsert fails with probability ``rate`` (a flaky engine)."""

    def __init__(self, inner: Any, rate: float, seed: int):
        self._inner = inner
        self._rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected = 0

    @property
    def name(self) -> str:
        return self._inner.name

    def upsert(self, points: Any) -> None:
        with self._lock:
            fail = self._rng.random() < self._rate
            self.injected += fail
        if fail:
            raise ConnectionError("injected fault: the engine dropped the write")
        self._inner.upsert(points)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def drive(pool: Any, args: argparse.Namespace, worker: int) -> dict[str, Any]:
    """Run simulated runs for ``args.seconds``; return what each commit reported."""
    rng = random.Random(args.seed * 1000 + worker)
    wrong: set[str] = set()
    model = ScriptedChatModel(responses=[_policy(wrong)], cycle=True)
    agent = create_seer_agent(model, [get_price, multiply], pool, evaluator=ReferenceMatch("numeric"), config=SeerConfig(k=args.k))
    deadline = time.monotonic() + args.seconds
    out: dict[str, Any] = {"statuses": Counter(), "ids": defaultdict(list), "latency": [], "recalled": 0, "leaks": 0, "errors": [], "runs": 0}
    counter = iter(range(10**9))

    async def one_task(t: int) -> None:
        while time.monotonic() < deadline:
            i = next(counter)
            tenant = f"tenant-{rng.randrange(args.tenants)}"
            qty, item = rng.randint(1, 40), rng.choice(ITEMS)
            text = f"What do {qty} {item}s cost? (w{worker} run {i} {rng.choice(['please', 'quickly', 'for the invoice', 'today', ''])})"
            if rng.random() < args.wrong_rate:
                wrong.add(text)
            t0 = time.perf_counter()
            try:
                state = await agent.ainvoke(
                    {"messages": [HumanMessage(text)], "seer_reference": PRICES[item] * qty},
                    config={"configurable": {"seer_tenant": tenant}, "recursion_limit": 50},
                )
            except Exception as exc:  # a crashed run is a failure of the soak
                out["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            out["latency"].append(time.perf_counter() - t0)
            out["runs"] += 1
            status = state.get("seer_commit_status") or ("rejected" if not (state.get("seer_verdict") or {}).get("success") else "none")
            out["statuses"][status] += 1
            if state.get("seer_committed_id"):
                out["ids"][status].append([tenant, state["seer_committed_id"]])
            out["recalled"] += len(state.get("seer_recalled_ids") or [])
            out["leaks"] += sum(1 for e in state.get("seer_examples") or [] if e["experience"]["tenant"] != tenant)

    await asyncio.gather(*(one_task(t) for t in range(args.concurrency)))
    out["statuses"] = dict(out["statuses"])
    out["ids"] = dict(out["ids"])
    totals = getattr(pool, "totals", None) or getattr(getattr(pool, "_pipeline", None), "totals", None)
    out["replay_duplicates"] = totals.duplicates if totals is not None else 0  # automatic replays in this process
    return out


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"statuses": Counter(), "ids": defaultdict(list), "latency": [], "recalled": 0, "leaks": 0, "errors": [], "runs": 0, "replay_duplicates": 0}
    for r in results:
        merged["statuses"].update(r["statuses"])
        for k, v in r["ids"].items():
            merged["ids"][k] += v
        for k in ("latency", "errors"):
            merged[k] += r[k]
        for k in ("recalled", "leaks", "runs", "replay_duplicates"):
            merged[k] += r.get(k, 0)
    return merged


def check(pool: Any, res: dict[str, Any]) -> dict[str, Any]:
    """The integrity checks (see the module docs); returns the figures and a list of failures."""
    failures: list[str] = []
    stored: dict[str, dict[str, Any]] = defaultdict(dict)
    for tenant in pool.stats().tenants:
        for exp in pool.scroll(tenant=tenant):
            stored[tenant][exp.id] = exp
            if exp.tenant != tenant:
                failures.append(f"record {exp.id} of tenant {exp.tenant} listed under {tenant}")
    acknowledged = [(t, i) for s in ("created", "present", "duplicate") for t, i in res["ids"].get(s, [])]
    lost = [(t, i) for t, i in acknowledged if i not in stored.get(t, {})]
    if lost:
        failures.append(f"{len(lost)} acknowledged commit(s) missing, e.g. {lost[:3]}")
    # a spilled commit is stored by a replay -- or, if a near-duplicate was stored meanwhile, merged
    # into it and counted there: then its own id is absent, once per duplicate the replays found
    spilled_absent = [(t, i) for t, i in res["ids"].get("spilled", []) if i not in stored.get(t, {})]
    if len(spilled_absent) != res["replay_duplicates"]:
        failures.append(
            f"{len(spilled_absent)} spilled commit(s) not stored after the replay, but the replays merged "
            f"{res['replay_duplicates']} into near-duplicates, e.g. {spilled_absent[:3]}"
        )
    created = defaultdict(set)
    for t, i in res["ids"].get("created", []):
        created[t].add(i)
    spilled_ids = {(t, i) for t, i in res["ids"].get("spilled", [])}
    for t, ids in stored.items():
        extra = set(ids) - created[t] - {i for tt, i in spilled_ids if tt == t}
        if extra:
            failures.append(f"tenant {t}: {len(extra)} record(s) nobody created, e.g. {sorted(extra)[:3]}")
    n_created = sum(len(v) for v in created.values())
    n_stored = sum(len(v) for v in stored.values())
    dup_counters = sum(e.usage.duplicates for v in stored.values() for e in v.values())
    # near-duplicate commits: reported by the runs, or found by replays of spilled commits (every process)
    n_dups = res["statuses"].get("duplicate", 0) + res["replay_duplicates"]
    if dup_counters != n_dups:
        failures.append(f"duplicates counters add up to {dup_counters}, {n_dups} near-duplicate commits were reported")
    recalled = sum(e.usage.recalled for v in stored.values() for e in v.values())
    if recalled != res["recalled"]:
        failures.append(f"recalled counters add up to {recalled}, the runs recalled {res['recalled']}")
    if res["leaks"]:
        failures.append(f"{res['leaks']} recalled example(s) from another tenant")
    if res["errors"]:
        failures.append(f"{len(res['errors'])} run(s) raised, e.g. {res['errors'][:2]}")
    report = verify_pool(pool)
    if report.corrupt:
        failures.append(f"{len(report.corrupt)} corrupt record(s), e.g. {report.corrupt[:2]}")
    if report.spill_pending:
        failures.append(f"{report.spill_pending} commit(s) still in the spill journal after the replay")
    return {
        "stored": n_stored,
        "created_reported": n_created,
        "tenants": {t: len(v) for t, v in sorted(stored.items())},
        "duplicate_counters": dup_counters,
        "recalled_counters": recalled,
        "verified_records": report.checked,
        "failures": failures,
    }


WORKER = """
import asyncio, faulthandler, json, sys
sys.path.insert(0, {here!r})
import soak
args = soak.build_parser().parse_args(json.loads(sys.argv[1]))
faulthandler.dump_traceback_later(args.seconds + 40, exit=True)  # a stuck worker says where, then exits
from seer_langgraph import open_pool
from seer_langgraph.embeddings import HashingEmbeddings
pool = open_pool(path=args.path, shared=True, embeddings=HashingEmbeddings(dimension=args.dim))
res = asyncio.run(soak.drive(pool, args, int(sys.argv[2])))
pool.close()
print("RESULT " + json.dumps(res))
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    p.add_argument("--concurrency", type=int, default=2000, help="concurrent simulated runs per process (default 2000)")
    p.add_argument("--procs", type=int, default=1, help="processes sharing the pool (default 1)")
    p.add_argument("--tenants", type=int, default=4)
    p.add_argument("--path", default=None, help="pool directory (default: a temporary one)")
    p.add_argument("--backend", default="auto", choices=["auto", "edge", "qdrant"])
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability that an engine write fails (default 0)")
    p.add_argument("--wrong-rate", type=float, default=0.1, help="runs whose answer is wrong, so the judge rejects them")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--dim", type=int, default=128, help="embedding size (HashingEmbeddings)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory(prefix="seer-soak-")
        args.path = str(Path(tmp.name) / "pool")
    emb = HashingEmbeddings(dimension=args.dim)
    retry = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
    pool = open_pool(path=args.path, backend=args.backend, embeddings=emb, retry=retry, shared=args.procs > 1)
    faulty = None
    if args.fault_rate > 0:
        faulty = pool.backend = _FaultyWrites(pool.backend, args.fault_rate, args.seed)
    procs = []
    if args.procs > 1:
        here = str(Path(__file__).resolve().parent)
        argv_json = json.dumps([a for a in (argv if argv is not None else sys.argv[1:])] + ["--path", args.path])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        for w in range(1, args.procs):
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER.format(here=here), argv_json, str(w)], stdout=subprocess.PIPE, text=True, env=env))
    t0 = time.perf_counter()
    results = [asyncio.run(drive(pool, args, 0))]
    for p in procs:
        out, _ = p.communicate(timeout=args.seconds + 600)
        line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
        if p.returncode != 0 or line is None:
            results.append({"statuses": {}, "ids": {}, "latency": [], "recalled": 0, "leaks": 0, "errors": [f"worker exited {p.returncode}"], "runs": 0, "replay_duplicates": 0})
        else:
            results.append(json.loads(line[len("RESULT ") :]))
    wall = time.perf_counter() - t0
    if faulty is not None:
        pool.backend = faulty._inner  # the engine recovers
    t1 = time.perf_counter()
    replay = pool.replay_spill()
    replay_s = time.perf_counter() - t1
    res = _merge(results)
    res["replay_duplicates"] = sum(r.get("replay_duplicates", 0) for r in results[1:]) + pool._pipeline.totals.duplicates
    figures = check(pool, res)
    lat = res["latency"]
    figures.update(
        {
            "seconds": args.seconds,
            "wall_s": round(wall, 2),
            "procs": args.procs,
            "concurrency_per_proc": args.concurrency,
            "backend": pool.backend.name,
            "strategy": getattr(pool, "strategy", None),
            "runs": res["runs"],
            "runs_per_s": round(res["runs"] / wall, 1) if wall else None,
            "commit_status": dict(res["statuses"]),
            "run_latency_ms": {
                "p50": round(1000 * _pct(lat, 0.5), 1),
                "p95": round(1000 * _pct(lat, 0.95), 1),
                "p99": round(1000 * _pct(lat, 0.99), 1),
                "mean": round(1000 * statistics.fmean(lat), 1) if lat else None,
            },
            "faults_injected": faulty.injected if faulty else 0,
            "replay": replay.model_dump(exclude={"errors"}),
            "replay_s": round(replay_s, 3),
            "ok": not figures["failures"],
        }
    )
    pool.close()
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"soak: {figures['runs']} runs in {figures['wall_s']} s ({figures['runs_per_s']} runs/s), "
              f"{args.procs} process(es) x {args.concurrency} concurrent runs, {args.tenants} tenants, {figures['backend']} ({figures['strategy']})")
        print(f"  commits: {figures['commit_status']}")
        print(f"  run latency ms: {figures['run_latency_ms']}")
        print(f"  faults injected: {figures['faults_injected']}; replay: {figures['replay']} in {figures['replay_s']} s")
        print(f"  stored {figures['stored']} records {figures['tenants']}; duplicates counted {figures['duplicate_counters']}; "
              f"recalls counted {figures['recalled_counters']}; verified {figures['verified_records']}")
        print("  integrity: OK" if figures["ok"] else "  integrity: FAILED\n    " + "\n    ".join(figures["failures"]))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
