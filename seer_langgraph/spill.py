"""The commit journal: a local, fsync'd JSONL file that keeps every commit until it is stored.

Each :class:`~seer_langgraph.pool.ExperiencePool` with a spill directory writes its commits to a
journal file of its own *before* touching the engine (write-ahead), marks them done once stored,
and keeps the ones that could not be stored (the engine down, the disk full, the embedder
failing after its retries) until a later replay stores them. A process killed mid-commit leaves
its journal behind; the next pool that opens the directory replays it. Replays are safe to repeat:
records are committed by content hash, so a record that did reach the engine is not stored twice.

Files, in the spill directory (by default ``<pool directory>/spill``):

- ``journal-<pid>-<random>.jsonl``: one JSON object per line: ``put`` (the redacted record, its
  vectors if known, a checksum), ``done``, ``fail`` (why it was kept) or ``drop`` (refused for
  good, e.g. too large);
- ``journal-<pid>-<random>.lock``: held (``flock``) by the live writer. A journal whose lock can be
  taken belongs to a dead or closed writer: an *orphan*, replayed by whoever finds it;
- ``corrupt-*.jsonl``: lines that failed their checksum (a torn last write), kept for inspection.

Appends are single ``write`` calls on an ``O_APPEND`` descriptor followed by ``fsync``, so a crash
tears at most the last line, which fails its checksum and is set aside, never replayed half.
POSIX only (``fcntl``); on other systems orphans are found only by :meth:`SpillJournal.claim_orphans`
with ``force=True``.

Example:
    >>> import tempfile
    >>> from seer_langgraph import Experience
    >>> j = SpillJournal(tempfile.mkdtemp())
    >>> exp = Experience(request="2+2?", answer="4")
    >>> token = j.begin([exp])
    >>> j.fail(token, "ConnectionError: qdrant down")
    >>> [e.id == exp.id for e in j.failed_entries()]
    [True]
    >>> j.resolve([exp.id]); j.failed_entries()
    []
    >>> j.close()
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    from .experience import Experience

__all__ = ["OrphanClaim", "SpillEntry", "SpillJournal", "read_journal"]

logger = logging.getLogger(__name__)

_VERSION = 1


def _checksum(record: Any, vectors: Any) -> str:
    body = json.dumps({"record": record, "vectors": vectors}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


@dataclass
class SpillEntry:
    """A journaled record that is not known to be stored yet."""

    id: str
    tenant: str
    record: dict[str, Any]
    vectors: dict[str, list[float]] | None = None
    prepared: bool = True
    error: str | None = None
    ts: float = 0.0
    raw: bytes = b""

    def experience(self) -> "Experience":
        """The record as an :class:`~seer_langgraph.experience.Experience` (its content hash is checked)."""
        from .experience import Experience

        return Experience.model_validate(self.record)


@dataclass
class _FileState:
    entries: dict[str, SpillEntry] = field(default_factory=dict)
    corrupt: list[tuple[int, bytes]] = field(default_factory=list)


def read_journal(path: str | os.PathLike[str]) -> tuple[list[SpillEntry], list[tuple[int, bytes]]]:
    """The pending entries of a journal file and its corrupt lines ``(line number, raw bytes)``.

    A ``put`` is pending until a later ``done`` or ``drop`` for the same id; ``fail`` notes the
    reason. Lines that are not JSON or fail their checksum (a torn write) are returned as corrupt.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], []
    return _parse_lines(data)


def _parse_lines(data: bytes) -> tuple[list[SpillEntry], list[tuple[int, bytes]]]:
    state = _FileState()
    for lineno, raw in enumerate(data.splitlines(keepends=True), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
            if not isinstance(obj, dict) or obj.get("v") != _VERSION:
                raise ValueError("not a journal line")
            op = obj["op"]
            rid = str(obj["id"])
            if op == "put":
                if _checksum(obj["record"], obj.get("vectors")) != obj.get("sum"):
                    raise ValueError("checksum mismatch")
                state.entries[rid] = SpillEntry(
                    id=rid,
                    tenant=str(obj.get("tenant") or obj["record"].get("tenant") or "default"),
                    record=obj["record"],
                    vectors=obj.get("vectors"),
                    prepared=bool(obj.get("prepared", True)),
                    ts=float(obj.get("ts") or 0.0),
                    raw=raw if raw.endswith(b"\n") else raw + b"\n",
                )
            elif op in ("done", "drop"):
                state.entries.pop(rid, None)
            elif op == "fail":
                if rid in state.entries:
                    state.entries[rid].error = str(obj.get("error") or "")
            else:
                raise ValueError(f"unknown op {op!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            state.corrupt.append((lineno, raw))
    return list(state.entries.values()), state.corrupt


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _try_lock(path: Path) -> Any:
    """Open ``path`` and take an exclusive non-blocking flock; ``None`` if someone holds it."""
    fh = open(path, "a+")
    if fcntl is None:  # pragma: no cover
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def _unlock(fh: Any) -> None:
    if fh is None:
        return
    try:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def _atomic_write(path: Path, lines: Sequence[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _save_corrupt(directory: Path, source: Path, corrupt: list[tuple[int, bytes]]) -> None:
    if not corrupt:
        return
    target = directory / f"corrupt-{source.stem}.jsonl"
    with open(target, "ab") as fh:
        for lineno, raw in corrupt:
            fh.write(_line({"source": source.name, "line": lineno, "raw": raw.decode("utf-8", "replace")}))
        fh.flush()
        os.fsync(fh.fileno())
    logger.warning("%d corrupt line(s) of %s (a torn write?) were set aside in %s", len(corrupt), source, target)


class OrphanClaim:
    """An orphan journal claimed for replay: its pending entries, and :meth:`keep` for the rest.

    Use as a context manager; on exit the file is deleted when nothing is kept, else rewritten
    with the kept entries, and the claim is released.
    """

    def __init__(self, directory: Path, data: Path, lock_path: Path, lock_fh: Any):
        self.directory = directory
        self.path = data
        self._lock_path = lock_path
        self._lock_fh = lock_fh
        self.entries, corrupt = read_journal(data)
        self.corrupt = len(corrupt)
        _save_corrupt(directory, data, corrupt)
        self._keep: list[SpillEntry] | None = None

    def keep(self, entries: Sequence[SpillEntry]) -> None:
        """Entries that could not be replayed now: they stay in the file."""
        self._keep = list(entries)

    def __enter__(self) -> "OrphanClaim":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is not None:
                return  # leave the file as it was: nothing is lost
            if self._keep:
                lines = [e.raw for e in self._keep]
                lines += [_line({"v": _VERSION, "op": "fail", "id": e.id, "error": e.error}) for e in self._keep if e.error]
                _atomic_write(self.path, lines)
            else:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                try:
                    self._lock_path.unlink()
                except FileNotFoundError:
                    pass
        finally:
            _unlock(self._lock_fh)


class SpillJournal:
    """One writer's journal file in ``directory`` (see the module docs).

    Args:
        directory: the spill directory (created, mode 0700).
        fsync: fsync every ``put`` and ``fail`` (turning it off trades crash safety for speed).
        max_bytes: rewrite the file without finished entries once it grows past this.
        prefix: file name prefix.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = True,
        max_bytes: int = 4 << 20,
        compact_bytes: int = 256 << 10,
        prefix: str = "journal",
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.directory, 0o700)
        except OSError:  # pragma: no cover - not the owner
            pass
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.compact_bytes = compact_bytes
        self.name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.directory / f"{self.name}.jsonl"
        self._lock_path = self.directory / f"{self.name}.lock"
        self._lock_fh = _try_lock(self._lock_path)
        if self._lock_fh is None:  # pragma: no cover - the name is unique
            raise RuntimeError(f"cannot lock {self._lock_path}")
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # taken after _lock when both are needed
        self._fd: int | None = None
        self._size = 0
        self._written = 0  # bytes appended since opening (monotonic)
        self._synced = 0  # of those, bytes known to be on disk
        self._tokens = itertools.count(1)
        self._inflight: dict[int, list[tuple[str, bytes]]] = {}
        self._failed: dict[str, SpillEntry] = {}
        self._closed = False
        self._dir_synced = False

    def __repr__(self) -> str:
        return f"SpillJournal({str(self.path)!r}, inflight={len(self._inflight)}, failed={len(self._failed)})"

    # -- low level ------------------------------------------------------------------------------
    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(str(self.path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _append(self, data: bytes, sync: bool) -> int:
        """Append with the lock held; returns the offset :meth:`_sync_to` must reach (when ``sync``)."""
        fd = self._open()
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self._size += len(data)
        self._written += len(data)
        return self._written

    def _sync_to(self, target: int) -> None:
        """fsync (without the append lock) until ``target`` bytes are durable.

        Group commit: writers that appended while another thread's fsync was running find their
        bytes covered by the next single fsync instead of each paying for one.
        """
        if not self.fsync:
            return
        with self._sync_lock:
            if self._synced >= target:
                return
            with self._lock:
                fd, goal = self._fd, self._written
            if fd is None:
                return
            os.fsync(fd)
            self._synced = max(self._synced, goal)
            if not self._dir_synced:
                _fsync_dir(self.directory)
                self._dir_synced = True

    def _maybe_compact(self) -> None:
        """Called with the lock held: empty the file when nothing is pending, or rewrite it when big.

        Emptying is done once the file passes ``compact_bytes`` (a truncate costs about an fsync);
        the finished entries before that are only skipped by readers.
        """
        if self._fd is None:
            return
        if not self._inflight and not self._failed:
            if self._size > self.compact_bytes:
                with self._sync_lock:
                    os.ftruncate(self._fd, 0)
                    self._size = 0
                    self._synced = self._written
            return
        if self._size > self.max_bytes:
            lines = [raw for items in self._inflight.values() for _, raw in items]
            lines += [e.raw for e in self._failed.values()]
            lines += [_line({"v": _VERSION, "op": "fail", "id": e.id, "error": e.error}) for e in self._failed.values()]
            with self._sync_lock:
                _atomic_write(self.path, lines)  # fsync'd
                os.close(self._fd)
                self._fd = None
                self._open()
                self._synced = self._written

    # -- the commit protocol ----------------------------------------------------------------------
    def begin(self, experiences: Sequence["Experience"], vectors: Sequence[dict[str, Any] | None] | None = None, *, prepared: bool = True) -> int:
        """Journal ``experiences`` (fsync'd) before they are written; returns a token for :meth:`done`/:meth:`fail`."""
        items: list[tuple[str, bytes]] = []
        now = time.time()
        for i, exp in enumerate(experiences):
            record = exp.model_dump(mode="json")
            vec = None
            if vectors is not None and vectors[i] is not None:
                vec = {k: [float(x) for x in v] for k, v in vectors[i].items()}  # type: ignore[union-attr]
            items.append(
                (
                    exp.id,
                    _line(
                        {
                            "v": _VERSION,
                            "op": "put",
                            "id": exp.id,
                            "tenant": exp.tenant,
                            "prepared": prepared,
                            "ts": now,
                            "record": record,
                            "vectors": vec,
                            "sum": _checksum(record, vec),
                        }
                    ),
                )
            )
        with self._lock:
            self._check()
            end = self._append(b"".join(raw for _, raw in items), sync=True)
            token = next(self._tokens)
            self._inflight[token] = items
        self._sync_to(end)
        return token

    def done(self, token: int) -> None:
        """The journaled records of ``token`` are stored."""
        with self._lock:
            items = self._inflight.pop(token, None)
            if items is None or self._closed:
                return
            self._append(b"".join(_line({"v": _VERSION, "op": "done", "id": rid}) for rid, _ in items), sync=False)
            self._maybe_compact()

    def discard(self, token: int, reason: str) -> None:
        """The records of ``token`` were refused for good (e.g. too large): never replay them."""
        with self._lock:
            items = self._inflight.pop(token, None)
            if items is None or self._closed:
                return
            self._append(b"".join(_line({"v": _VERSION, "op": "drop", "id": rid, "error": reason}) for rid, _ in items), sync=False)
            self._maybe_compact()

    def fail(self, token: int, error: str) -> None:
        """The records of ``token`` could not be stored: keep them for a later replay."""
        with self._lock:
            items = self._inflight.pop(token, None)
            if items is None or self._closed:
                return  # still in the file: a closed journal is an orphan, replayed by the next opener
            end = self._append(b"".join(_line({"v": _VERSION, "op": "fail", "id": rid, "error": error}) for rid, _ in items), sync=True)
            for rid, raw in items:
                entries, _ = _parse_lines(raw)
                if entries:
                    entries[0].error = error
                    self._failed[rid] = entries[0]
        self._sync_to(end)

    def failed_entries(self) -> list[SpillEntry]:
        """This journal's records that could not be stored yet (oldest first)."""
        with self._lock:
            return list(self._failed.values())

    def failed_count(self) -> int:
        return len(self._failed)

    def resolve(self, ids: Sequence[str]) -> None:
        """Failed records now stored (or dropped for good by a replay): forget them."""
        with self._lock:
            if self._closed:
                return
            gone = [rid for rid in ids if self._failed.pop(rid, None) is not None]
            if gone:
                self._append(b"".join(_line({"v": _VERSION, "op": "done", "id": rid}) for rid in gone), sync=False)
            self._maybe_compact()

    def _check(self) -> None:
        if self._closed:
            from .errors import PoolClosedError

            raise PoolClosedError(f"the spill journal {self.path} is closed")

    # -- orphans ------------------------------------------------------------------------------------
    def orphan_paths(self) -> list[Path]:
        """Journal files in the directory whose writer is gone (their lock is free). Cheap to call."""
        out = []
        for data in sorted(self.directory.glob("journal-*.jsonl")):
            if data == self.path:
                continue
            lock = data.with_suffix(".lock")
            fh = _try_lock(lock)
            if fh is None:
                continue
            _unlock(fh)
            out.append(data)
        return out

    def claim_orphans(self) -> Iterator[OrphanClaim]:
        """Claim each orphan journal in turn (skipping those another process claims first)."""
        for data in self.orphan_paths():
            lock = data.with_suffix(".lock")
            fh = _try_lock(lock)
            if fh is None or not data.exists():
                _unlock(fh)
                continue
            yield OrphanClaim(self.directory, data, lock, fh)

    def pending(self) -> list[SpillEntry]:
        """Every record waiting for a replay: this journal's failed ones and those of orphans."""
        out = self.failed_entries()
        for data in self.orphan_paths():
            out.extend(read_journal(data)[0])
        return out

    # -- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the journal. A journal with nothing pending is deleted; otherwise it stays as an orphan."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            empty = not self._inflight and not self._failed
            if self._fd is not None:
                with self._sync_lock:  # not under a concurrent group-commit fsync
                    os.close(self._fd)
                    self._fd = None
            if empty:
                for p in (self.path, self._lock_path):
                    try:
                        p.unlink()
                    except FileNotFoundError:
                        pass
            else:
                logger.warning(
                    "%d experience(s) are still waiting in the spill journal %s; they are replayed by the next "
                    "pool opened on this directory (or `seer pool replay`)",
                    len(self._failed) + sum(len(v) for v in self._inflight.values()),
                    self.path,
                )
            _unlock(self._lock_fh)
            self._lock_fh = None

