"""``seer demo``: an agent visibly learning from its own experience, offline."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

__all__ = ["add_demo_parser", "run_demo_command", "sampled"]


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the learning demo (round 1 accumulate, round 2 with vs without recall)")
    p.add_argument("--model", default="local", help="local | local:qwen2.5-0.5b | openai:NAME (default: local 1.5B)")
    p.add_argument("--embeddings", default="auto", help="auto (MiniLM if installed) | minilm | hashing")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (default: 0)")
    p.add_argument("--train-per-kind", type=int, default=1)
    p.add_argument("--test-per-kind", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=None, help="task kinds (default: all twelve)")
    p.add_argument("--explore", type=int, default=2, help="attempts per training task: 1 greedy + N-1 sampled")
    p.add_argument("--k", type=int, default=4, help="examples recalled per step in round 2")
    p.add_argument(
        "--teacher", default="none",
        help="who solves the training tasks the agent failed on every attempt: none (the pool holds only the agent's own "
             "verified successes) | expert (the world's scripted solver, standing in for a person showing how) | "
             "openai:NAME (a stronger model); verified trajectories are imported through the pool's JSONL import",
    )
    p.add_argument(
        "--follow-examples", action="store_true",
        help="require a tool call while the best matching recalled example made one at that point (SeerConfig.follow_examples; "
             "not in the paper; acts only through recalled examples, so k=0 is unchanged)",
    )
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for the local model (default: half the CPUs)")
    p.add_argument("--render-style", default="auto", help="auto (hermes for local models, json otherwise) | json | hermes | plain")
    p.add_argument("--out", default="seer-demo", help="output directory (pool, report JSON, PNG)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def sampled(model: BaseChatModel, attempt: int, temperature: float = 0.7) -> BaseChatModel:
    """The model for an attempt: greedy for attempt 0, sampled with a distinct seed after."""
    if attempt == 0:
        fields = {"temperature": 0.0}
    else:
        fields = {"temperature": temperature, "seed": 1000 + attempt}
    known = {k: v for k, v in fields.items() if k in type(model).model_fields}
    return model.model_copy(update=known) if known else model


def _embeddings(choice: str) -> Any:
    from ..embeddings import HashingEmbeddings

    if choice in ("auto", "minilm"):
        try:
            from ..local.embeddings import MiniLMEmbeddings

            emb = MiniLMEmbeddings()
            emb.embed_query("probe")
            return emb
        except ImportError as exc:
            if choice == "minilm":
                raise
            print(f"(MiniLM embeddings not available: {exc}; using lexical hashing embeddings)")
    return HashingEmbeddings()


def _teacher(choice: str, world: Any, pool: Any, style: str) -> Any:
    from .runner import model_teacher

    if choice in ("", "none"):
        return None
    if choice == "expert":
        return world.expert_solution
    if choice.startswith(("openai:", "local")):
        from ..local.models import load_chat_model

        return model_teacher(sampled(load_chat_model(choice), 0), world, pool, render_style=style)
    raise SystemExit(f"--teacher {choice!r}: expected none, expert, openai:NAME or local[:NAME]")


def run_demo_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..local.models import load_chat_model
    from ..pool import open_pool
    from .runner import DemoReport, TaskResult, plot_report, run_demo
    from .world import ShopWorld

    console = Console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]seer demo[/bold]: model {args.model}, seeds {args.seeds}, output {out}/")
    base = load_chat_model(args.model, **({"n_threads": args.threads} if args.threads and args.model.startswith("local") else {}))
    emb = _embeddings(args.embeddings)
    style = args.render_style if args.render_style != "auto" else "json"
    if args.model.startswith("local") and "stop" in type(base).model_fields:
        # a small model that imitates an example goes on to invent its observation: stop it there
        base = base.model_copy(update={"stop": ["\nObservation", "<tool_response>"]})

    def show(r: TaskResult) -> None:
        mark = "[green]ok  [/green]" if r.success else "[red]fail[/red]"
        label = f"{r.round}{'' if r.round in ('train', 'teacher') else (' k=' + str(r.k))}"
        console.print(
            f"{mark} {label:<9} {r.kind:<26} {r.difficulty:<4} attempt {r.attempt}  steps {r.steps}  "
            f"recalled {r.recalled}  {r.seconds:5.1f}s  answer {str(r.answer)[:30]!r} (expected {r.expected!r})"
        )

    reports: list[DemoReport] = []
    for seed in args.seeds:
        world = ShopWorld(seed=seed)
        pool_dir = out / f"pool-seed{seed}"
        if pool_dir.exists():
            shutil.rmtree(pool_dir)  # each run starts from an empty pool
        pool = open_pool(path=pool_dir, embeddings=emb)
        teacher = _teacher(args.teacher, world, pool, style)
        taught_file = out / f"taught-seed{seed}.jsonl"
        taught_file.unlink(missing_ok=True)
        try:
            rep = run_demo(
                world,
                lambda attempt: sampled(base, attempt),
                pool,
                train_tasks=world.tasks(args.train_per_kind, kinds=args.kinds, seed=100 + seed),
                test_tasks=world.tasks(args.test_per_kind, kinds=args.kinds, seed=200 + seed),
                k=args.k,
                explore=args.explore,
                model_name=args.model,
                seed=seed,
                on_result=show,
                render_style=style,
                teacher=teacher,
                teacher_name=args.teacher,
                taught_file=taught_file,
                follow_examples=args.follow_examples,
            )
        finally:
            pool.close()
        reports.append(rep)
        (out / f"report-seed{seed}.json").write_text(rep.to_json())

    table = Table(title="Round 2: the same new tasks, with and without recall")
    for col in ["", "accuracy", "easy", "hard", "mean tool calls", "tool errors", "time (s)"]:
        table.add_column(col)
    for label, attr in [("with recall", "test_recall"), ("without recall (k=0)", "test_no_recall")]:
        rows: list[list[TaskResult]] = [getattr(r, attr) for r in reports]
        allrows = [x for rs in rows for x in rs]
        accs = [DemoReport.accuracy(rs) for rs in rows]
        spread = f" ± {statistics.pstdev(accs) * 100:.0f}" if len(accs) > 1 else ""
        table.add_row(
            label,
            f"{statistics.fmean(accs) * 100:.0f}%{spread} ({sum(x.success for x in allrows)}/{len(allrows)})",
            f"{DemoReport.accuracy(allrows, 'easy') * 100:.0f}%",
            f"{DemoReport.accuracy(allrows, 'hard') * 100:.0f}%",
            f"{statistics.fmean(x.steps for x in allrows):.1f}" if allrows else "-",
            str(sum(x.tool_errors for x in allrows)),
            f"{sum(x.seconds for x in allrows):.0f}",
        )
    console.print(table)
    for rep in reports:
        taught = sum(t.committed for t in rep.taught)
        source = f", {taught} taught by --teacher {rep.teacher} (imported after the agent failed)" if rep.teacher else ""
        console.print(f"seed {rep.seed}: the pool holds {rep.pool_size} verified experiences: {rep.pool_size - taught} the agent's own{source}")
    png = plot_report(reports, out / "learning_curve.png")
    summary = {"seeds": [r.summary() for r in reports], "png": str(png)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"pool(s) in {out}/pool-seed*/, reports in {out}/report-seed*.json, plot in {png}")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0
