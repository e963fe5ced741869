"""The ``seer`` command: inspect and maintain experience pools.

Examples::

    seer --version
    seer demo [--model local|local:qwen2.5-0.5b|openai:NAME] [--seeds 0 1 2]
    seer pool stats --path ./seer-pool
    seer pool list --path ./seer-pool --tenant acme --limit 20
    seer pool show ID --path ./seer-pool
    seer pool export out.jsonl --path ./seer-pool
    seer pool import in.jsonl --path ./seer-pool [--skip-invalid]
    seer pool delete ID [ID ...] --path ./seer-pool
    seer pool prune --max 5000 --path ./seer-pool [--dry-run]
    seer pool replay --path ./seer-pool
    seer pool verify --path ./seer-pool
    seer pool serve --path ./seer-pool
    seer bench perf [--sizes 1000 10000 100000] [--million] [--out benchmarks/results]

Every command takes ``--json`` for machine-readable output, and ``--path``, ``--url`` (with
``--api-key`` or ``QDRANT_API_KEY``) or ``--memory`` to choose the pool. A ``--path`` pool that
another process owns (``open_pool(path, shared=True)`` or ``seer pool serve``) is reached through
that process, so the commands work while agents run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from ._version import __version__

__all__ = ["build_parser", "main"]


def _add_pool_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--path", help="directory of an embedded pool")
    where.add_argument("--url", help="URL of a Qdrant server or cluster")
    where.add_argument("--memory", action="store_true", help="an empty in-memory pool (for trying commands)")
    p.add_argument("--api-key", default=None, help="Qdrant API key (default: $QDRANT_API_KEY)")
    p.add_argument("--collection", default="seer_experiences")
    p.add_argument("--tenant", default="default")
    p.add_argument("--embeddings", default="auto", help="auto | hashing | minilm (for import of lines without vectors)")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``seer`` command."""
    parser = argparse.ArgumentParser(prog="seer", description="SEER experience pools for LangGraph agents.")
    parser.add_argument("--version", action="version", version=f"seer-langgraph {__version__}")
    sub = parser.add_subparsers(dest="command")
    from .demo.cli import add_demo_parser

    add_demo_parser(sub)
    bench = sub.add_parser("bench", help="benchmarks (seer bench perf --help)")
    bsub = bench.add_subparsers(dest="bench")
    perf = bsub.add_parser(
        "perf", help="recall latency, exactness, import, reopen and memory vs the reference scan", add_help=False, prefix_chars="\0"
    )
    perf.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of benchmarks/perf.py (see --help)")
    pool = sub.add_parser("pool", help="inspect and maintain an experience pool")
    psub = pool.add_subparsers(dest="action")
    for name, helptext in [
        ("stats", "backend, dimension, embedder and counts per tenant"),
        ("list", "list experiences of a tenant"),
        ("show", "show one experience"),
        ("export", "export a tenant to JSONL (with vectors)"),
        ("import", "import a JSONL file (validated line by line)"),
        ("delete", "delete experiences by id"),
        ("prune", "drop the least useful experiences of a tenant down to --max"),
        ("replay", "store the commits waiting in the pool's spill journals"),
        ("verify", "check every stored record against its content hash"),
        ("serve", "own an embedded pool and serve it to shared=True processes until stopped"),
    ]:
        p = psub.add_parser(name, help=helptext)
        _add_pool_args(p)
        if name == "list":
            p.add_argument("--limit", type=int, default=20)
        if name == "show":
            p.add_argument("id")
        if name in ("export", "import"):
            p.add_argument("file")
        if name == "export":
            p.add_argument("--no-vectors", action="store_true", help="leave vectors out (import will re-embed)")
        if name == "import":
            p.add_argument("--skip-invalid", action="store_true", help="import the valid lines, report the others")
        if name == "delete":
            p.add_argument("ids", nargs="+")
        if name == "prune":
            p.add_argument("--max", type=int, required=True, dest="max_records", help="experiences to keep in the tenant")
            p.add_argument("--dry-run", action="store_true", help="show what would be dropped, drop nothing")
    return parser


def _embeddings(choice: str, stored: str | None) -> Any:
    from .embeddings import HashingEmbeddings

    if choice == "auto":
        choice = "minilm" if stored and stored.startswith("MiniLM") else "hashing"
    if choice == "minilm":
        from .local import MiniLMEmbeddings  # type: ignore[attr-defined]

        return MiniLMEmbeddings()
    if choice == "hashing":
        dim = int(stored.rsplit("-", 1)[-1]) if stored and stored.startswith("HashingEmbeddings:hashing-") else 384
        return HashingEmbeddings(dimension=dim)
    raise ValueError(f"unknown --embeddings {choice!r} (use auto, hashing or minilm)")


def _open(args: argparse.Namespace, writing: bool = False) -> Any:
    from .pool import open_pool

    if not (args.path or args.url or args.memory):
        raise ValueError("say which pool: --path DIR, --url URL or --memory")
    if args.path and not writing and not os.path.isdir(args.path):
        raise ValueError(f"no pool at {args.path} (the directory does not exist)")
    api_key = args.api_key or os.environ.get("QDRANT_API_KEY")
    kwargs: dict[str, Any] = {"collection": args.collection, "tenant": args.tenant}
    if args.url:
        kwargs.update(url=args.url, api_key=api_key)
    elif args.path:
        kwargs.update(path=args.path)
    from .embeddings import HashingEmbeddings

    if args.path:
        kwargs["shared"] = True  # reach the owner process if agents hold the directory
    # the probe only reads the embedder's name: no journal, so it never replays with the wrong model
    probe = open_pool(embeddings=HashingEmbeddings(), allow_embedder_change=True, spill_dir=None, **kwargs) if not args.memory else None
    stored = probe.backend.metadata().get("embedder") if probe is not None else None
    if probe is not None and not writing:
        return probe
    if probe is not None:
        probe.close()
    return open_pool(embeddings=_embeddings(args.embeddings, stored), **kwargs)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(text)


def _table(rows: list[list[str]], headers: list[str], title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in headers:
        table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*r)
    console = Console(width=120, record=True, file=open(os.devnull, "w"))
    console.print(table)
    return console.export_text()


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo.cli import run_demo_command

        return run_demo_command(args)
    if args.command == "bench":
        if getattr(args, "bench", None) != "perf":
            build_parser().parse_args(["bench", "--help"])
            return 2
        from .bench.perf import main as perf_main

        return perf_main(args.bench_args, prog="seer bench perf")
    if args.command != "pool" or not args.action:
        build_parser().print_help()
        return 2
    action = args.action
    if action == "serve":
        return _serve(args)
    pool = _open(args, writing=action in ("import", "replay"))
    try:
        if action == "stats":
            st = pool.stats()
            rows = [[t, str(n)] for t, n in st.tenants.items()]
            head = f"backend {st.backend}, dimension {st.collection_dimension}, embedder {st.embedder}, total {st.total}\n"
            _print(args, st.model_dump(), head + _table(rows, ["tenant", "experiences"], "experiences per tenant"))
        elif action == "list":
            page, _ = pool.list(limit=args.limit)
            data = [
                {"id": e.id, "intent": e.intent, "tools": e.tools, "request": e.request, "usage": e.usage.model_dump()}
                for e in page
            ]
            rows = [[e.id, e.intent or "", " > ".join(e.tools), e.request[:60], f"{e.usage.recalled}/{e.usage.succeeded}/{e.usage.failed}"] for e in page]
            _print(args, data, _table(rows, ["id", "intent", "tools", "request", "recalled/ok/failed"], f"tenant {args.tenant}"))
        elif action == "show":
            exp = pool.get(args.id)
            if exp is None:
                print(f"seer: no experience {args.id} in tenant {args.tenant}", file=sys.stderr)
                return 1
            _print(args, exp.model_dump(mode="json"), json.dumps(exp.model_dump(mode="json"), indent=2, ensure_ascii=False))
        elif action == "export":
            n = pool.export_jsonl(args.file, include_vectors=not args.no_vectors)
            _print(args, {"exported": n, "file": args.file}, f"exported {n} experiences of tenant {args.tenant} to {args.file}")
        elif action == "import":
            rep = pool.import_jsonl(args.file, skip_invalid=args.skip_invalid, progress=not args.json)
            text = f"imported {rep.imported}, already present {rep.already_present}, invalid lines skipped {len(rep.skipped_invalid)}"
            for line, msg in rep.skipped_invalid[:20]:
                text += f"\n  {args.file}:{line}: {msg}"
            _print(args, rep.model_dump(), text)
        elif action == "delete":
            n = pool.delete(args.ids)
            _print(args, {"deleted": n}, f"deleted {n} of {len(args.ids)} (ids of other tenants or unknown ids are left alone)")
        elif action == "prune":
            if args.max_records < 0:
                raise ValueError(f"--max must be 0 or more, got {args.max_records}")
            rep = pool.prune(args.max_records, dry_run=args.dry_run)
            verb = "would drop" if rep.dry_run else "dropped"
            text = f"tenant {rep.tenant}: {rep.before} experiences, {verb} {len(rep.dropped)}, {rep.after if not rep.dry_run else rep.before - len(rep.dropped)} left"
            if rep.dropped:
                rows = [[d.id, f"{d.success_rate:.2f}", str(d.recalled), d.created_at[:19], d.request[:50]] for d in rep.dropped[:50]]
                text += "\n" + _table(rows, ["id", "success rate", "recalled", "created", "request"], f"{verb} (least useful first)")
            _print(args, rep.model_dump(), text)
        elif action == "replay":
            rep = pool.replay_spill()
            at_open = getattr(getattr(pool, "_pipeline", None), "open_report", None)
            if at_open is not None:  # opening the pool replayed the orphan journals already
                for f in ("replayed", "already_present", "duplicates", "corrupt", "dropped", "files"):
                    setattr(rep, f, getattr(rep, f) + getattr(at_open, f))
            text = (
                f"replayed {rep.replayed}, already present {rep.already_present}, duplicates {rep.duplicates}, "
                f"still failing {rep.failed}, refused {rep.dropped}, corrupt lines set aside {rep.corrupt}"
            )
            for err in rep.errors[:20]:
                text += f"\n  {err}"
            _print(args, rep.model_dump(), text)
            return 1 if rep.failed else 0
        elif action == "verify":
            from .hygiene import verify_pool

            rep = verify_pool(pool)
            text = f"{rep.checked} records checked, {len(rep.corrupt)} corrupt, {rep.spill_pending} waiting in the spill journal"
            for pid, why in rep.corrupt[:50]:
                text += f"\n  {pid}: {why}"
            _print(args, rep.model_dump(), text)
            return 1 if rep.corrupt else 0
    finally:
        pool.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .pool import open_pool
    from .pool.shared import serve_pool

    if not args.path:
        raise ValueError("seer pool serve needs --path DIR (a Qdrant server is shared already)")
    from .embeddings import HashingEmbeddings

    probe = open_pool(path=args.path, embeddings=HashingEmbeddings(), allow_embedder_change=True, spill_dir=None)
    stored = probe.backend.metadata().get("embedder")
    probe.close()
    pool = open_pool(path=args.path, embeddings=_embeddings(args.embeddings, stored), collection=args.collection, tenant=args.tenant)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"seer: serving {args.path} to shared=True processes (pid {os.getpid()}); Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        serve_pool(pool, args.path, stop=stop)
    finally:
        pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seer`` console script."""
    args = build_parser().parse_args(argv)
    from .errors import SeerError

    try:
        return _run(args)
    except (ValueError, OSError, SeerError) as exc:
        print(f"seer: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("seer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for a user error; say what failed
        print(f"seer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
