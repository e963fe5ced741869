"""Commits that survive failures: retries with backoff, a write-ahead journal, and replay.

:class:`CommitPipeline` is how :class:`~seer_langgraph.pool.ExperiencePool` commits:

1. the prepared (redacted, truncated, size-checked) records are journaled, fsync'd, in the pool's
   spill directory (:mod:`seer_langgraph.spill`) -- before anything else can fail;
2. they are embedded, retried with exponential backoff and jitter (tenacity) when the embedder
   fails;
3. they are written, also retried; near-duplicates are counted instead of stored
   (:mod:`seer_langgraph.hygiene`);
4. the journal marks them done. If step 2 or 3 still fails after the retries, the records stay in
   the journal, :class:`~seer_langgraph.pool.CommitResult` says ``status="spilled"`` and a
   warning names the file. Nothing is dropped silently.

Journaled records are replayed by :meth:`CommitPipeline.replay` -- ``pool.replay_spill()``,
``seer pool replay``, after the next successful commit, and when a pool opens a directory whose
journals were left by a crashed or closed process. Replays commit by content hash, so replaying a
record that did reach the engine is a no-op.

A pool without a spill directory (``:memory:``, or ``spill_dir=None``) still retries, then
raises: the caller (the commit node) logs the error and records it in the graph state.

Errors that no retry can fix (a record too large, wrong vector dimensions -- ``ValueError`` and
``TypeError``) are raised at once and never journaled for replay.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

import numpy as np
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from .errors import PoolClosedError, PoolError
from .spill import SpillEntry, SpillJournal

if TYPE_CHECKING:  # pragma: no cover
    from .experience import Experience
    from .pool.pool import CommitResult, ExperiencePool

__all__ = ["CommitPipeline", "ReplayReport", "RetryPolicy", "is_permanent"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How often and how patiently a failing embedder or engine is retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=4, ge=1, le=100, description="Tries in all (1 = no retry).")
    initial_wait: float = Field(default=0.05, ge=0, description="Seconds before the first retry; doubles each time.")
    max_wait: float = Field(default=2.0, ge=0, description="Longest wait between two tries.")
    jitter: float = Field(default=0.05, ge=0, description="Random seconds added to each wait.")


class ReplayReport(BaseModel):
    """What a replay of the spill journals did."""

    replayed: int = 0
    already_present: int = 0
    duplicates: int = 0
    failed: int = 0
    corrupt: int = 0
    dropped: int = 0
    files: int = 0
    errors: list[str] = []

    @property
    def pending(self) -> int:
        """Records still waiting after the replay."""
        return self.failed

    def add_to(self, total: "ReplayReport") -> None:
        """Add this report's counts to ``total``."""
        for f in ("replayed", "already_present", "duplicates", "failed", "corrupt", "dropped", "files"):
            setattr(total, f, getattr(total, f) + getattr(self, f))


def is_permanent(exc: BaseException) -> bool:
    """Errors no retry can fix: bad input, too large, wrong dimensions."""
    return isinstance(exc, (ValueError, TypeError))


class CommitPipeline:
    """Journal, embed, write, with retries; see the module docs."""

    def __init__(self, pool: "ExperiencePool", journal: SpillJournal | None, retry: RetryPolicy | None = None) -> None:
        self.pool = pool
        self.journal = journal
        self.retry = retry or RetryPolicy()
        self._replay_lock = threading.Lock()
        self._last_orphan_scan = 0.0
        self.orphan_scan_interval = 2.0
        self.replay_batch = 256
        #: what the replay run when the pool was opened did (``None`` if none ran)
        self.open_report: ReplayReport | None = None
        #: every replay since the pool opened, added up (automatic ones included)
        self.totals = ReplayReport()

    # -- retries ------------------------------------------------------------------------------------
    def _retryable(self, exc: BaseException, permanent_check: bool) -> bool:
        if self.pool._closed:
            return False
        if permanent_check and is_permanent(exc):
            return False
        return isinstance(exc, Exception)

    def _kwargs(self, what: str, permanent_check: bool) -> dict[str, Any]:
        p = self.retry

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "SEER %s failed (%s: %s); retry %d of %d", what, type(exc).__name__, exc, state.attempt_number, p.attempts - 1
            )

        return dict(
            stop=tenacity.stop_after_attempt(p.attempts),
            wait=tenacity.wait_exponential(multiplier=p.initial_wait, max=p.max_wait) + tenacity.wait_random(0, p.jitter),
            retry=tenacity.retry_if_exception(lambda e: self._retryable(e, permanent_check)),
            before_sleep=before_sleep,
            reraise=True,
        )

    def call(self, what: str, fn: Callable[[], T], *, permanent_check: bool = True) -> T:
        """``fn()`` with retries (permanent errors and a closed pool are not retried)."""
        return tenacity.Retrying(**self._kwargs(what, permanent_check))(fn)

    async def acall(self, what: str, fn: Callable[[], Awaitable[T]], *, permanent_check: bool = True) -> T:
        """Async twin of :meth:`call`."""
        async for attempt in tenacity.AsyncRetrying(**self._kwargs(what, permanent_check)):
            with attempt:
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- commit -------------------------------------------------------------------------------------
    def _write(self, exps: list["Experience"], vecs: list[dict[str, np.ndarray]]) -> list["CommitResult"]:
        from .hygiene import hygienic_write

        return self.call("write", lambda: hygienic_write(self.pool, exps, vecs))

    def _begin(self, exps: list["Experience"], vecs: list[dict[str, np.ndarray]] | None) -> int | None:
        """Journal the records; a journal that cannot be written (disk full) does not stop the commit."""
        if self.journal is None:
            return None
        try:
            return self.journal.begin(exps, vecs)
        except OSError as exc:
            logger.warning(
                "SEER could not journal %d experience(s) in %s (%s); committing without the journal: "
                "if the write fails too, the commit raises",
                len(exps),
                self.journal.directory,
                exc,
            )
            return None

    def _spilled(self, exps: Sequence["Experience"], token: int, exc: BaseException) -> list["CommitResult"]:
        from .pool.pool import CommitResult

        assert self.journal is not None
        reason = f"{type(exc).__name__}: {exc}"
        self.journal.fail(token, reason)
        logger.warning(
            "SEER could not store %d experience(s) (%s); kept in the spill journal %s for replay "
            "(pool.replay_spill() or `seer pool replay`)",
            len(exps),
            reason,
            self.journal.path,
        )
        return [CommitResult(id=e.id, created=False, status="spilled", spill_file=str(self.journal.path)) for e in exps]

    def commit(self, exps: list["Experience"], vecs: list[dict[str, np.ndarray]] | None = None, *, journal: bool = True) -> list["CommitResult"]:
        """Journal, embed (unless ``vecs``), write; spill on failure. ``exps`` are prepared already.

        ``journal=False`` skips the journal (the caller journaled the records itself, e.g. a
        :class:`~seer_langgraph.pool.shared.RemotePool` client): failures then raise.
        """
        if not exps:
            return []
        token = self._begin(exps, vecs) if journal else None
        try:
            if vecs is None:
                vecs = self.call("embedding", lambda: self.pool._embed_experiences(exps), permanent_check=False)
            results = self._write(exps, vecs)
        except Exception as exc:
            if token is None:
                raise
            if is_permanent(exc) and not isinstance(exc, PoolClosedError):
                self.journal.discard(token, f"{type(exc).__name__}: {exc}")  # type: ignore[union-attr]
                raise
            return self._spilled(exps, token, exc)
        if token is not None:
            self.journal.done(token)  # type: ignore[union-attr]
            self.after_success()
        return results

    async def acommit(self, exps: list["Experience"], vecs: list[dict[str, np.ndarray]] | None = None, *, journal: bool = True) -> list["CommitResult"]:
        """Async twin of :meth:`commit` (blocking work runs in worker threads)."""
        if not exps:
            return []
        token = await asyncio.to_thread(self._begin, exps, vecs) if journal else None
        try:
            if vecs is None:
                vecs = await self.acall("embedding", lambda: self.pool._aembed_experiences(exps), permanent_check=False)
            results = await asyncio.to_thread(self._write, exps, vecs)
        except Exception as exc:
            if token is None:
                raise
            if is_permanent(exc) and not isinstance(exc, PoolClosedError):
                await asyncio.to_thread(self.journal.discard, token, f"{type(exc).__name__}: {exc}")  # type: ignore[union-attr]
                raise
            return await asyncio.to_thread(self._spilled, exps, token, exc)
        if token is not None:
            await asyncio.to_thread(self.journal.done, token)  # type: ignore[union-attr]  # fsync: off the event loop
            if self._replay_due():
                await asyncio.to_thread(self.after_success)
        return results

    # -- replay -------------------------------------------------------------------------------------
    def _replay_due(self) -> bool:
        if self.journal is None:
            return False
        if self.journal.failed_count():
            return True
        return time.monotonic() - self._last_orphan_scan >= self.orphan_scan_interval

    def after_success(self) -> ReplayReport | None:
        """After a successful commit (and when a pool opens): replay what is waiting, one replay at a time."""
        if not self._replay_due():
            return None
        if not self._replay_lock.acquire(blocking=False):
            return None
        try:
            return self._replay_locked()
        except Exception as exc:  # a replay problem never fails the commit that triggered it
            logger.warning("SEER automatic spill replay failed (%s: %s)", type(exc).__name__, exc)
            return None
        finally:
            self._replay_lock.release()

    def replay(self) -> ReplayReport:
        """Replay this pool's failed commits and every orphan journal in the spill directory."""
        with self._replay_lock:
            return self._replay_locked()

    def _replay_locked(self) -> ReplayReport:
        report = ReplayReport()
        if self.journal is None:
            return report
        self._last_orphan_scan = time.monotonic()
        own = self.journal.failed_entries()
        if own:
            done, _ = self._replay_entries(own, report)
            self.journal.resolve(done)
        for claim in self.journal.claim_orphans():
            with claim:
                report.files += 1
                report.corrupt += claim.corrupt
                done, left = self._replay_entries(claim.entries, report)
                claim.keep(left)
        if report.replayed or report.failed or report.corrupt:
            logger.info("SEER spill replay: %s", report.model_dump(exclude={"errors"}))
        report.add_to(self.totals)
        return report

    def _check_embedder(self) -> None:
        """Replays embed with this pool's model: refuse when the collection was built with another."""
        from .pool.pool import embedder_id

        stored = self.pool.backend.metadata().get("embedder") if self.pool.backend.dimension() is not None else None
        mine = embedder_id(self.pool.embeddings)
        if stored and stored != mine:
            raise PoolError(
                f"journaled records need embedding, but this pool is opened with {mine!r} and was built with "
                f"{stored!r}; replay with the original embeddings (they stay in the journal until then)"
            )

    def _replay_entries(self, entries: list[SpillEntry], report: ReplayReport) -> tuple[list[str], list[SpillEntry]]:
        """Commit journaled entries; returns the ids settled and the entries still pending."""
        settled: list[str] = []
        left: list[SpillEntry] = []
        for start in range(0, len(entries), self.replay_batch):
            batch = entries[start : start + self.replay_batch]
            exps: list["Experience"] = []
            vecs: list[dict[str, np.ndarray] | None] = []
            kept: list[SpillEntry] = []
            for entry in batch:
                try:
                    exp = entry.experience()
                    if not entry.prepared:
                        exp = self.pool._prepare(exp, None)
                    vec = self.pool._validate_vectors(entry.vectors, f"journaled {entry.id}") if entry.vectors else None
                except Exception as exc:  # corrupt or now refused: set aside, reported, never half-stored
                    report.dropped += 1
                    report.errors.append(f"{entry.id}: {type(exc).__name__}: {exc}")
                    settled.append(entry.id)
                    continue
                exps.append(exp)
                vecs.append(vec)
                kept.append(entry)
            if not exps:
                continue
            try:
                need = [i for i, v in enumerate(vecs) if v is None]
                if need:
                    self._check_embedder()
                    embedded = self.call("embedding", lambda: self.pool._embed_experiences([exps[i] for i in need]), permanent_check=False)
                    for i, v in zip(need, embedded):
                        vecs[i] = v
                results = self._write(exps, vecs)  # type: ignore[arg-type]
            except Exception as exc:
                report.failed += len(kept)
                report.errors.append(f"{type(exc).__name__}: {exc}")
                for entry in kept:
                    entry.error = f"{type(exc).__name__}: {exc}"
                left.extend(kept)
                continue
            for entry, res in zip(kept, results):
                if res.status == "created":
                    report.replayed += 1
                elif res.status == "duplicate":
                    report.duplicates += 1
                else:
                    report.already_present += 1
                settled.append(entry.id)
        return settled, left
