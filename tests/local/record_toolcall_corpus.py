"""Record raw tool-call outputs of the real local model into the parser corpus.

Run by hand (needs the cached model; never run by pytest):

    .venv/bin/python tests/local/record_toolcall_corpus.py [--model qwen2.5-coder-1.5b]

It appends the model's *raw* text (llama.cpp's own tool parser off, ours off) for a fixed set
of prompts, with the parse the current parser gives as the expectation. Review the new lines
by eye before committing them: the expectation must be what a person reads in the text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATA = Path(__file__).parent / "data"

PROMPTS: list[tuple[str, str, list[dict[str, str]]]] = [
    ("weather", "w1", [{"role": "user", "content": "What's the weather in Paris for the next 3 days?"}]),
    ("weather", "w2", [{"role": "user", "content": "Will it rain in Tokyo tomorrow?"}]),
    ("weather", "w3", [{"role": "user", "content": "Compare the weather in Oslo and in Madrid today."}]),
    ("weather", "w4", [{"role": "user", "content": "Write a haiku about autumn."}]),
    ("weather", "w5", [
        {"role": "system", "content": "You are a weather assistant. Always answer with a tool call inside <tool_call></tool_call> tags when you need data."},
        {"role": "user", "content": "Weather in Berlin for a week, please."}]),
    ("weather", "w6", [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 C, light wind."}]),
    ("calc", "c1", [{"role": "user", "content": "What is (17 * 23) + 4? Use the calculator."}]),
    ("calc", "c2", [{"role": "user", "content": "How much is 15% of 240?"}]),
    ("calc", "c3", [{"role": "user", "content": "Return a JSON object describing a cat named Tom who is 3 years old."}]),
    ("calc", "c4", [{"role": "user", "content": "What is 2 + 2? Just answer."}]),
    ("shop", "s1", [{"role": "user", "content": "Who is customer 42?"}]),
    ("shop", "s2", [{"role": "user", "content": "Show the open orders of customer 7."}]),
    ("shop", "s3", [{"role": "user", "content": "Refund order A-1001 for 19.99 euros and notify the customer."}]),
    ("shop", "s4", [{"role": "user", "content": "List all shipped orders for customer number twelve."}]),
    ("shop", "s5", [{"role": "user", "content": "Find customer 3 and then list their cancelled orders."}]),
    ("shop", "s6", [
        {"role": "user", "content": "Who is customer 42?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_customer", "arguments": "{\"customer_id\": 42}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"name\": \"Ada Lovelace\", \"email\": \"ada@example.com\", \"city\": \"London\"}"}]),
    ("search", "q1", [{"role": "user", "content": "Search the docs for how to configure the retry policy; give me 5 results."}]),
    ("search", "q2", [{"role": "user", "content": "Convert 250 US dollars to euros."}]),
    ("search", "q3", [{"role": "user", "content": "Search the docs for 'rate limits' tagged api and billing."}]),
    ("search", "q4", [{"role": "user", "content": "Explain in one sentence what a vector database is."}]),
    ("search", "q5", [
        {"role": "system", "content": "Answer with exactly one JSON object {\"name\": ..., \"arguments\": {...}} and nothing else."},
        {"role": "user", "content": "How many yen is 99.5 euros?"}]),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--out", default=str(DATA / "toolcall_corpus.jsonl"))
    parser.add_argument("--only", nargs="*", default=None, help="record only these prompt ids")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="suffix for the record ids (e.g. the template used)")
    parser.add_argument("--original-template", action="store_true", help="keep the GGUF's template as is")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from langchain_core.messages import convert_to_messages

    from seer_langgraph.local.chat import ChatLocalLlama
    from seer_langgraph.local.toolcalls import parse_tool_calls
    from seer_langgraph.local.weights import ensure_model

    ensure_model(args.model, download=False)
    toolsets = json.loads((DATA / "toolsets.json").read_text())
    llm = ChatLocalLlama(
        model=args.model,
        temperature=args.temperature,
        seed=args.seed,
        max_tokens=200,
        n_threads=2,
        parse_tool_calls=False,
        fix_chat_template=not args.original_template,
    )
    with open(args.out, "a", encoding="utf-8") as out:
        for toolset, pid, messages in PROMPTS:
            if args.only and pid not in args.only:
                continue
            tools = toolsets[toolset]
            start = time.perf_counter()
            msg = llm.bind_tools(tools).invoke(convert_to_messages(messages))
            text = msg.content if isinstance(msg.content, str) else str(msg.content)
            parsed = parse_tool_calls(text, tools, id_factory=lambda: "id")
            rec = {
                "id": f"{args.model}:{pid}" + (f":t{args.temperature:g}s{args.seed}" if args.temperature else "") + (f":{args.tag}" if args.tag else ""),
                "source": "model",
                "model": args.model,
                "temperature": args.temperature,
                "seed": args.seed,
                "template": "original" if args.original_template else "fixed",
                "toolset": toolset,
                "prompt": messages[-1]["content"],
                "text": text,
                "expect": {
                    "calls": [{"name": c["name"], "args": c["args"]} for c in parsed.tool_calls],
                    "invalid": [{"name": c["name"], "error": c["error"]} for c in parsed.invalid_tool_calls],
                    "content": parsed.content,
                },
            }
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            out.flush()
            print(f"{pid}: {time.perf_counter() - start:.1f}s calls={len(parsed.tool_calls)} invalid={len(parsed.invalid_tool_calls)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
