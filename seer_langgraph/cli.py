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

Every command takes ``--json`` for machine-readable output, and ``--path``, ``--url`` (with
``--api-key`` or ``QDRANT_API_KEY``) or ``--memory`` to choose the pool.
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
    pool = sub.add_parser("pool", help="inspect and maintain an experience pool")
    psub = pool.add_subparsers(dest="action")
    for name, helptext in [
        ("stats", "backend, dimension, embedder and counts per tenant"),
        ("list", "list experiences of a tenant"),
        ("show", "show one experience"),
        ("export", "export a tenant to JSONL (with vectors)"),
        ("import", "import a JSONL file (validated line by line)"),
        ("delete", "delete experiences by id"),
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

    probe = open_pool(embeddings=HashingEmbeddings(), allow_embedder_change=True, **kwargs) if not args.memory else None
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
    if args.command != "pool" or not args.action:
        build_parser().print_help()
        return 2
    action = args.action
    pool = _open(args, writing=action == "import")
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
    finally:
        pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seer`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as exc:
        print(f"seer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
