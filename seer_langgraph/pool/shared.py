"""Several processes sharing one embedded pool: one owner process, the others its clients.

Embedded engines (qdrant-edge, qdrant-client's ``path=`` mode) allow one opener per directory.
``open_pool(path=DIR, shared=True)`` lets any number of processes use ``DIR`` anyway:

- the first process to take ``DIR/.seer-owner.lock`` becomes the **owner**: it opens the engine as
  usual and serves it on ``127.0.0.1`` (a random port, HMAC-authenticated with a random key; the
  address and key are in ``DIR/seer_owner.json``, readable by the owner's user only);
- every other process gets a :class:`RemotePool` **client** with the same methods as
  :class:`~seer_langgraph.pool.ExperiencePool`. Each call is one request to the owner, which
  serialises writes under its pool lock, so N processes committing at once lose nothing;
- a client journals its commits locally (fsync'd, in ``DIR/spill``) before sending them, so a
  client killed mid-commit loses nothing, and when the owner is gone (closed, killed) the next
  client call **fails over**: one client takes the owner lock and becomes the owner (replaying
  the journals the dead owner and dead clients left), the others reconnect to it. Commits that
  fail meanwhile are kept in the client's journal and sent again later.

Or run a dedicated owner with ``seer pool serve --path DIR`` and open every worker with
``shared=True``. For many machines, use a Qdrant server (``open_pool(url=...)``).

Security: the socket listens on loopback only and speaks pickle to authenticated peers; anyone
who can read ``seer_owner.json`` (mode 0600) can run code in the owner process. Keep the pool
directory private to the user that runs the agents.

Example:
    >>> import tempfile
    >>> from seer_langgraph import Experience, open_pool
    >>> d = tempfile.mkdtemp()
    >>> owner = open_pool(path=d, backend="qdrant", shared=True)   # takes the directory
    >>> client = open_pool(path=d, shared=True)                      # another process would do this
    >>> type(client).__name__, client.commit(Experience(request="2+2?", answer="4")).created
    ('RemotePool', True)
    >>> owner.count()
    1
    >>> client.close(); owner.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import secrets
import threading
import time
from multiprocessing.connection import Client, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import tenacity

from ..durability import ReplayReport, RetryPolicy
from ..errors import PoolClosedError, PoolError, PoolInUseError
from ..experience import Experience, validate_tenant
from ..spill import SpillJournal, _try_lock, _unlock

if TYPE_CHECKING:  # pragma: no cover
    from .pool import CommitResult, ExperiencePool

__all__ = ["OWNER_FILE", "OWNER_LOCK", "PoolServer", "RemotePool", "open_shared_pool", "serve_pool"]

logger = logging.getLogger(__name__)

OWNER_FILE = "seer_owner.json"
OWNER_LOCK = ".seer-owner.lock"

# Methods a client may call on the owner's pool (nothing else is reachable).
_EXPOSED = frozenset(
    {
        "commit_records",
        "delete",
        "record_outcome",
        "get",
        "list",
        "count",
        "stats",
        "search",
        "recall",
        "make_query",
        "embed_query",
        "export_jsonl",
        "import_jsonl",
        "replay_spill",
        "prune",
        "spill_pending",
        "info",
        "metadata",
        "verify",
    }
)


class _OwnerGone(PoolError):
    """The owner process did not answer (closed, killed): fail over and retry."""


def _portable(exc: BaseException) -> BaseException:
    """An exception that survives pickling (pydantic's ValidationError does not)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        base = ValueError if isinstance(exc, ValueError) else PoolError
        return base(f"{type(exc).__name__}: {exc}")


class _Service:
    """What the owner serves: thin, explicit wrappers over the pool."""

    def __init__(self, pool: "ExperiencePool"):
        self.pool = pool

    def info(self) -> dict[str, Any]:
        from .pool import embedder_id

        return {"backend": self.pool.backend.name, "embedder": embedder_id(self.pool.embeddings), "pid": os.getpid()}

    def metadata(self) -> dict[str, Any]:
        return dict(self.pool.backend.metadata())

    def commit_records(self, records: list[dict[str, Any]], tenant: str | None, prepared: bool) -> list["CommitResult"]:
        exps = [Experience.model_validate(r) for r in records]
        if not prepared:
            exps = [self.pool._prepare(e, tenant) for e in exps]
        self.pool._check_open()
        return self.pool._pipeline.commit(exps, None, journal=False)  # the client journaled them

    def verify(self) -> Any:
        from ..hygiene import verify_pool

        return verify_pool(self.pool)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class PoolServer:
    """Serves an open pool to other processes on ``127.0.0.1`` (see the module docs)."""

    def __init__(self, pool: "ExperiencePool", directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the pool server listens on loopback only, not {host!r}")
        self.pool = pool
        self.directory = Path(directory)
        self.authkey = secrets.token_bytes(32)
        # no authkey here: the handshake runs in each connection's thread (see _serve), so a client
        # that stalls mid-handshake never blocks the others; a deep backlog for bursts of clients
        self._listener = Listener((host, port), backlog=256)
        self.address: tuple[str, int] = self._listener.address  # type: ignore[assignment]
        self._service = _Service(pool)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[Any] = set()
        self._conns_lock = threading.Lock()

    def start(self) -> "PoolServer":
        """Write the owner file and accept clients in a daemon thread."""
        body = json.dumps({"host": self.address[0], "port": self.address[1], "authkey": self.authkey.hex(), "pid": os.getpid()})
        tmp = self.directory / f".{OWNER_FILE}.{os.getpid()}.tmp"
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, self.directory / OWNER_FILE)
        t = threading.Thread(target=self._accept, name="seer-pool-server", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn = self._listener.accept()
            except Exception:
                if self._stopped.is_set():
                    return
                continue  # a client that failed authentication, or went away mid-handshake
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="seer-pool-conn", daemon=True).start()

    def _serve(self, conn: Any) -> None:
        try:
            try:
                deliver_challenge(conn, self.authkey)
                answer_challenge(conn, self.authkey)
            except Exception:  # wrong key, or the client went away: drop it
                return
            while not self._stopped.is_set():
                try:
                    method, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                except Exception as exc:  # an unreadable request (or the connection closed under us)
                    if self._stopped.is_set() or conn.closed:
                        return
                    try:
                        conn.send(("err", PoolError(f"unreadable request ({type(exc).__name__}: {exc})")))
                    except Exception:
                        return
                    continue
                if method not in _EXPOSED:
                    conn.send(("err", PoolError(f"{method!r} is not a pool method a client may call")))
                    continue
                try:
                    result = getattr(self._service, method)(*args, **kwargs)
                    reply: tuple[str, Any] = ("ok", result)
                except BaseException as exc:  # noqa: BLE001 - every error goes back to the caller
                    reply = ("err", _portable(exc))
                try:
                    conn.send(reply)
                except (OSError, EOFError):
                    return
                except Exception as exc:  # an unpicklable result
                    try:
                        conn.send(("err", PoolError(f"{method} returned something that cannot be sent ({exc})")))
                    except Exception:
                        return
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:  # pragma: no cover
                pass

    def stop(self) -> None:
        """Stop accepting, drop the clients' connections and remove the owner file."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            owner = self.directory / OWNER_FILE
            if owner.exists() and json.loads(owner.read_text()).get("pid") == os.getpid():
                owner.unlink()
        except (OSError, ValueError):  # pragma: no cover
            pass
        try:
            self._listener.close()
        except OSError:  # pragma: no cover
            pass
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:  # pragma: no cover
                pass


def _read_owner(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return {"address": (str(data["host"]), int(data["port"])), "authkey": bytes.fromhex(data["authkey"]), "pid": data.get("pid")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _become_owner(directory: Path, open_local: Callable[[], "ExperiencePool"]) -> "ExperiencePool | None":
    """Take the owner lock and serve the pool; ``None`` when another process owns the directory."""
    fh = _try_lock(directory / OWNER_LOCK)
    if fh is None:
        return None
    try:
        pool = open_local()
    except BaseException:
        _unlock(fh)
        raise
    try:
        server = PoolServer(pool, directory).start()
    except BaseException:
        pool.close()
        _unlock(fh)
        raise
    pool._close_hooks.append(server.stop)
    pool._released_hooks.append(lambda: _unlock(fh))
    pool.shared_server = server  # type: ignore[attr-defined]
    logger.info("this process (pid %d) owns the shared pool %s, serving on %s", os.getpid(), directory, server.address)
    return pool


class RemotePool:
    """A client of a shared pool's owner process: the :class:`ExperiencePool` API over loopback.

    Built by ``open_pool(path=DIR, shared=True)`` when another process owns ``DIR``. Records are
    redacted and size-checked here, journaled in ``DIR/spill`` and sent to the owner, which
    truncates, embeds and writes them. When the owner goes away, the next call fails over
    (this process may become the owner). See the module docs.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        open_local: Callable[[], "ExperiencePool"],
        embeddings: Any,
        tenant: str = "default",
        redact: Any = None,
        limits: Any = None,
        retry: RetryPolicy | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        from ..limits import RecordLimits

        self.directory = Path(directory)
        self.embeddings = embeddings
        self.tenant = validate_tenant(tenant)
        self.redact = redact
        self.limits = limits or RecordLimits()
        self.retry = retry or RetryPolicy(attempts=6, initial_wait=0.05, max_wait=1.0)
        self.connect_timeout = connect_timeout
        self._open_local = open_local
        self._local: "ExperiencePool | None" = None
        self._owner: dict[str, Any] | None = None
        self._tls = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.RLock()
        self._closed = False
        self.journal = SpillJournal(spill_dir if spill_dir is not None else self.directory / "spill", prefix="journal")
        #: this client's re-sends of failed commits, added up
        self.totals = ReplayReport()
        self._connect_or_own(initial=True)

    # -- connection and fail-over -----------------------------------------------------------------
    def __repr__(self) -> str:
        where = "owner (local)" if self._local is not None else (self._owner or {}).get("address")
        return f"RemotePool({str(self.directory)!r}, via={where})"

    @property
    def is_owner(self) -> bool:
        """True once this process took over as the owner (after a fail-over)."""
        return self._local is not None

    def _connect_or_own(self, initial: bool = False) -> None:
        deadline = time.monotonic() + self.connect_timeout
        last: BaseException | None = None
        while True:
            owner = _read_owner(self.directory)
            if owner is not None:
                try:
                    conn = Client(owner["address"], authkey=owner["authkey"])
                    conn.close()
                    self._owner = owner
                    return
                except (OSError, EOFError) as exc:
                    last = exc
            if not initial:
                pool = _become_owner(self.directory, self._open_local)
                if pool is not None:
                    self._local = pool
                    logger.warning("the shared pool's owner at %s is gone; pid %d took over", self.directory, os.getpid())
                    return
            if time.monotonic() > deadline:
                raise PoolInUseError(
                    f"the pool directory {self.directory} is owned by another process that does not answer "
                    f"({last or 'no ' + OWNER_FILE}); if that process is stuck, stop it, or open the pool without shared=True"
                )
            initial = False  # after the first look, try to take over a silent directory
            time.sleep(0.05)

    def _conn(self) -> Any:
        conn = getattr(self._tls, "conn", None)
        gen = getattr(self._tls, "owner", None)
        if conn is None or gen is not self._owner:
            if conn is not None:
                try:
                    conn.close()
                except OSError:  # pragma: no cover
                    pass
            assert self._owner is not None
            conn = Client(self._owner["address"], authkey=self._owner["authkey"])
            self._tls.conn = conn
            self._tls.owner = self._owner
            with self._lock:
                self._conns.append(conn)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._tls, "conn", None)
        self._tls.conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:  # pragma: no cover
                pass

    def _failover(self, seen: Any) -> None:
        with self._lock:
            if self._local is not None or self._owner is not seen:
                return  # another thread already failed over
            self._owner = None
            self._connect_or_own()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise PoolClosedError(f"the shared pool client of {self.directory} is closed")
        p = self.retry
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(p.attempts),
            wait=tenacity.wait_exponential(multiplier=p.initial_wait, max=p.max_wait) + tenacity.wait_random(0, p.jitter),
            retry=tenacity.retry_if_exception_type(_OwnerGone),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._call_once(method, args, kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    def _call_once(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        local = self._local
        if local is not None:
            return getattr(_Service(local), method)(*args, **kwargs)
        seen = self._owner
        try:
            conn = self._conn()
            conn.send((method, args, kwargs))
            status, value = conn.recv()
        except (OSError, EOFError) as exc:
            self._drop_conn()
            self._failover(seen)
            raise _OwnerGone(f"the owner of {self.directory} did not answer ({type(exc).__name__})") from exc
        if status == "err":
            if isinstance(value, PoolClosedError):
                self._drop_conn()
                self._failover(seen)
                raise _OwnerGone(f"the owner of {self.directory} is closing") from value
            raise value
        return value

    # -- writes -----------------------------------------------------------------------------------
    def _prepare(self, exp: Experience, tenant: str | None) -> Experience:
        if not isinstance(exp, Experience):
            raise TypeError(f"expected an Experience, got {type(exp).__name__}")
        if tenant is not None and exp.tenant != tenant:
            data = exp.model_dump()
            data.update(tenant=validate_tenant(tenant), id="", content_hash="")
            exp = Experience.model_validate(data)
        self.limits.check(exp)
        if self.redact is not None:
            exp = self.redact(exp)
        return exp

    def commit_many(self, experiences: Iterable[Experience], *, tenant: str | None = None, vectors: Any = None) -> list["CommitResult"]:
        """Redact and journal here, store in the owner (which truncates, embeds, dedups, writes)."""
        from .pool import CommitResult

        if vectors is not None:
            raise ValueError("a shared pool client cannot take precomputed vectors; commit them in the owner process")
        if isinstance(experiences, (Experience, str, bytes, dict)):
            raise TypeError(f"commit_many takes an iterable of Experience, got {type(experiences).__name__}")
        exps = [self._prepare(e, tenant) for e in experiences]
        if not exps:
            return []
        token = self.journal.begin(exps, prepared=False)
        try:
            results = self._call("commit_records", [e.model_dump(mode="json") for e in exps], None, False)
        except (ValueError, TypeError) as exc:
            self.journal.discard(token, f"{type(exc).__name__}: {exc}")
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.journal.fail(token, reason)
            logger.warning("SEER could not reach the shared pool (%s); %d experience(s) kept in %s", reason, len(exps), self.journal.path)
            return [CommitResult(id=e.id, created=False, status="spilled", spill_file=str(self.journal.path)) for e in exps]
        self.journal.done(token)
        if self.journal.failed_count():
            self._resend_failed()
        return results

    def commit(self, experience: Experience, *, tenant: str | None = None, vectors: Any = None) -> "CommitResult":
        return self.commit_many([experience], tenant=tenant, vectors=vectors)[0]

    add = commit

    def _resend_failed(self) -> ReplayReport:
        report = ReplayReport()
        entries = self.journal.failed_entries()
        if not entries:
            return report
        try:
            results = self._call("commit_records", [e.record for e in entries], None, False)
        except Exception as exc:
            report.failed = len(entries)
            report.errors.append(f"{type(exc).__name__}: {exc}")
            return report  # still failing: not added to the totals
        for r in results:
            if r.status == "created":
                report.replayed += 1
            elif r.status == "duplicate":
                report.duplicates += 1
            else:
                report.already_present += 1
        self.journal.resolve([e.id for e in entries])
        report.add_to(self.totals)
        return report

    def replay_spill(self) -> ReplayReport:
        """Send this client's failed commits again, and have the owner replay orphan journals."""
        mine = self._resend_failed()
        theirs = self._call("replay_spill")
        merged = theirs.model_copy()
        for f in ("replayed", "already_present", "duplicates", "failed", "corrupt", "dropped"):
            setattr(merged, f, getattr(theirs, f) + getattr(mine, f))
        merged.errors = mine.errors + theirs.errors
        return merged

    def spill_pending(self) -> int:
        return self.journal.failed_count() + int(self._call("spill_pending"))

    def delete(self, ids: str | Iterable[str], *, tenant: str | None = None) -> int:
        return self._call("delete", [ids] if isinstance(ids, str) else list(ids), tenant=tenant)

    def record_outcome(self, ids: Iterable[str], success: bool, *, tenant: str | None = None) -> int:
        return self._call("record_outcome", list(ids), success, tenant=tenant)

    def prune(self, max_records: int | None = None, *, tenant: str | None = None, dry_run: bool = False) -> Any:
        return self._call("prune", max_records, tenant=tenant, dry_run=dry_run)

    def import_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        return self._call("import_jsonl", str(Path(path).resolve()), **kwargs)

    def export_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> int:
        if hasattr(path, "write"):
            raise TypeError("a shared pool client exports to a file path, not a file object")
        return self._call("export_jsonl", str(Path(path).resolve()), **kwargs)

    # -- reads ------------------------------------------------------------------------------------
    def get(self, experience_id: str, *, tenant: str | None = None) -> Experience | None:
        return self._call("get", experience_id, tenant=tenant)

    def list(self, *, tenant: str | None = None, limit: int = 100, offset: str | None = None) -> tuple[list[Experience], str | None]:
        return self._call("list", tenant=tenant, limit=limit, offset=offset)

    def scroll(self, *, tenant: str | None = None, batch_size: int = 256) -> Iterator[Experience]:
        offset: str | None = None
        while True:
            page, offset = self.list(tenant=tenant, limit=batch_size, offset=offset)
            yield from page
            if offset is None:
                return

    def count(self, *, tenant: str | None = None, all_tenants: bool = False) -> int:
        return self._call("count", tenant=tenant, all_tenants=all_tenants)

    def stats(self) -> Any:
        return self._call("stats")

    def search(self, query: Any, *, tenant: str | None = None) -> list[Any]:
        return self._call("search", query, tenant=tenant)

    def make_query(self, text: str, **kwargs: Any) -> Any:
        return self._call("make_query", text, **kwargs)

    def embed_query(self, text: str) -> Any:
        return self._call("embed_query", text)

    def recall(self, text: str, **kwargs: Any) -> list[Any]:
        return self._call("recall", text, **kwargs)

    @property
    def backend(self) -> Any:
        """A small stand-in with the owner's engine ``name`` and ``metadata()``."""
        info = self._call("info")
        call = self._call

        class _Backend:
            name = info["backend"]

            @staticmethod
            def metadata() -> dict[str, Any]:
                return call("metadata")

        return _Backend()

    # -- async twins ------------------------------------------------------------------------------
    async def acommit(self, experience: Experience, **kwargs: Any) -> "CommitResult":
        return await asyncio.to_thread(self.commit, experience, **kwargs)

    async def acommit_many(self, experiences: Iterable[Experience], **kwargs: Any) -> list["CommitResult"]:
        return await asyncio.to_thread(self.commit_many, list(experiences), **kwargs)

    async def adelete(self, ids: str | Iterable[str], **kwargs: Any) -> int:
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    async def arecord_outcome(self, ids: Iterable[str], success: bool, **kwargs: Any) -> int:
        return await asyncio.to_thread(self.record_outcome, list(ids), success, **kwargs)

    async def aget(self, experience_id: str, **kwargs: Any) -> Experience | None:
        return await asyncio.to_thread(self.get, experience_id, **kwargs)

    async def alist(self, **kwargs: Any) -> tuple[list[Experience], str | None]:
        return await asyncio.to_thread(self.list, **kwargs)

    async def acount(self, **kwargs: Any) -> int:
        return await asyncio.to_thread(self.count, **kwargs)

    async def asearch(self, query: Any, **kwargs: Any) -> list[Any]:
        return await asyncio.to_thread(self.search, query, **kwargs)

    async def arecall(self, text: str, **kwargs: Any) -> list[Any]:
        return await asyncio.to_thread(self.recall, text, **kwargs)

    async def areplay_spill(self) -> ReplayReport:
        return await asyncio.to_thread(self.replay_spill)

    async def aprune(self, max_records: int | None = None, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.prune, max_records, **kwargs)

    async def aexport_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> int:
        return await asyncio.to_thread(self.export_jsonl, path, **kwargs)

    async def aimport_jsonl(self, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.import_jsonl, path, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections (and the pool, if this process became the owner)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for c in self._conns:
                try:
                    c.close()
                except OSError:  # pragma: no cover
                    pass
            self._conns.clear()
            if self._local is not None:
                self._local.close()
            self.journal.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> "RemotePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_shared_pool(
    directory: str | os.PathLike[str],
    open_local: Callable[[], "ExperiencePool"],
    *,
    embeddings: Any,
    tenant: str = "default",
    redact: Any = None,
    limits: Any = None,
    retry: RetryPolicy | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    connect_timeout: float = 10.0,
) -> "ExperiencePool | RemotePool":
    """The owner's pool (this process takes the directory) or a :class:`RemotePool` client."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pool = _become_owner(d, open_local)
    if pool is not None:
        return pool
    return RemotePool(
        d,
        open_local=open_local,
        embeddings=embeddings,
        tenant=tenant,
        redact=redact,
        limits=limits,
        retry=retry,
        spill_dir=spill_dir,
        connect_timeout=connect_timeout,
    )


def serve_pool(pool: "ExperiencePool", directory: str | os.PathLike[str], *, stop: threading.Event | None = None) -> None:
    """Serve an already opened pool to ``shared=True`` clients until ``stop`` is set (or Ctrl-C)."""
    d = Path(directory)
    fh = _try_lock(d / OWNER_LOCK)
    if fh is None:
        raise PoolInUseError(f"{d} is already owned by another process (see {d / OWNER_FILE})")
    server = PoolServer(pool, d).start()
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        server.stop()
        _unlock(fh)

