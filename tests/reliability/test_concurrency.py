"""Many writers at once: threads, asyncio tasks, processes. Nothing lost, nothing torn."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from reliability_helpers import BACKENDS, FaultyBackend, edge_installed, make_pool, record, sleep

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.errors import CorruptRecordError, PoolError, PoolInUseError
from seer_langgraph.hygiene import verify_pool

# qdrant-client's on-disk mode runs the same engine code as :memory: (plus a write to disk per
# point); it is covered by the multi-process test below.
THREAD_BACKENDS = ["memory", pytest.param("edge", marks=pytest.mark.skipif(not edge_installed(), reason="no qdrant-edge-py"))]
N_WRITERS, M_COMMITS, SHARED = 6, 10, 4
SLOW = pytest.mark.skipif(not os.environ.get("SEER_SLOW"), reason="slow: set SEER_SLOW=1")


def _all_ids(pool, tenant="default"):
    return {e.id for e in pool.scroll(tenant=tenant)}


@pytest.mark.parametrize("kind", THREAD_BACKENDS)
def test_threads_commit_at_once_nothing_lost_each_record_created_once(kind, tmp_path):
    pool = make_pool(kind, tmp_path, hygiene=None)  # default hygiene: dedup on
    pool.backend = FaultyBackend(pool.backend, {"upsert": sleep(0.002)})  # widen the check-then-write window
    shared = [record(10_000 + s) for s in range(SHARED)]  # every writer commits these too
    results: list = []
    errors: list = []
    start = threading.Barrier(N_WRITERS)

    def writer(w: int) -> None:
        try:
            start.wait()
            for m in range(M_COMMITS):
                results.append(pool.commit(record(w * 1000 + m)))
                results.append(pool.commit(shared[(w + m) % SHARED]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(N_WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    want = {record(w * 1000 + m).id for w in range(N_WRITERS) for m in range(M_COMMITS)} | {e.id for e in shared}
    assert pool.count() == len(want) == N_WRITERS * M_COMMITS + SHARED
    assert _all_ids(pool) == want
    # the idempotency check and the write happen under one lock: each record is "created" exactly once
    assert sum(r.created for r in results) == len(want)
    assert not verify_pool(pool).corrupt
    pool.close()


@pytest.mark.parametrize("kind", THREAD_BACKENDS)
async def test_asyncio_tasks_commit_at_once(kind, tmp_path):
    pool = make_pool(kind, tmp_path, hygiene=None)
    pool.backend = FaultyBackend(pool.backend, {"upsert": sleep(0.002)})  # widen the check-then-write window

    async def task(t: int) -> list:
        out = []
        for m in range(4):
            out.append(await pool.acommit(record(t * 100 + m)))
            out.append(await pool.acommit(record(99_999)))  # the same record from every task
        return out

    results = [r for rs in await asyncio.gather(*(task(t) for t in range(25))) for r in rs]
    want = {record(t * 100 + m).id for t in range(25) for m in range(4)} | {record(99_999).id}
    assert await pool.acount() == len(want) == 101
    assert _all_ids(pool) == want
    assert sum(r.created for r in results) == 101
    await pool.aclose()


@pytest.mark.parametrize("kind", THREAD_BACKENDS)
def test_concurrent_usage_counters_lose_no_update(kind, tmp_path):
    """record_outcome is a read-modify-write of the counters: done under the pool lock."""
    pool = make_pool(kind, tmp_path)
    ids = [r.id for r in pool.commit_many([record(i) for i in range(3)])]
    pool.backend = FaultyBackend(pool.backend, {"set_payload": sleep(0.0005)})
    barrier = threading.Barrier(6)

    def worker(w: int) -> None:
        barrier.wait()
        for i in range(10):
            pool.record_outcome(ids, success=(w + i) % 2 == 0)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in ids:
        u = pool.get(i).usage
        assert (u.recalled, u.succeeded + u.failed) == (60, 60)
        assert u.succeeded == 30
    pool.close()


@pytest.mark.parametrize("kind", THREAD_BACKENDS)
def test_readers_never_see_a_half_written_record(kind, tmp_path):
    """Readers scan, get and recall while writers commit: every record read is whole and valid."""
    pool = make_pool(kind, tmp_path)
    stop = threading.Event()
    seen: dict[str, str] = {}
    problems: list = []
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: races show up if they exist

    def writer(w: int) -> None:
        try:
            for m in range(20):
                pool.commit(record(w * 1000 + m))
                pool.record_outcome([record(w * 1000 + m // 2).id], True)
        except BaseException as exc:  # noqa: BLE001
            problems.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for e in pool.scroll(batch_size=7):
                    assert e.content_hash == e.compute_hash() and e.id  # validated on read
                    seen[e.id] = e.content_hash
                    got = pool.get(e.id)
                    assert got is not None and got.content_hash == e.content_hash
                for hit in pool.recall("request 3 order refund", tools=["get_order"], k=4):
                    assert hit.experience.content_hash == hit.experience.compute_hash()
        except BaseException as exc:  # noqa: BLE001
            problems.append(exc)

    try:
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in writers + readers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(old_switch)
    assert not problems, problems[:3]
    assert pool.count() == 60 and set(seen) <= _all_ids(pool)
    assert not verify_pool(pool).corrupt
    pool.close()


@pytest.mark.parametrize("kind", THREAD_BACKENDS)
def test_a_torn_or_edited_record_is_never_returned(kind, tmp_path, caplog):
    """Records carry a content hash that validation checks: a half-updated payload is refused."""
    pool = make_pool(kind, tmp_path)
    good, bad = pool.commit_many([record(1), record(2)])
    torn = pool.backend.retrieve([bad.id], "default")[0].payload["record"]
    torn["answer"] = "half of an update"
    pool.backend.set_payload(bad.id, {"record": torn})
    assert [e.id for e in pool.scroll()] == [good.id]  # skipped, with a warning
    assert "corrupt" in caplog.text
    assert bad.id not in [h.id for h in pool.recall(record(2).request, k=5)]
    with pytest.raises(CorruptRecordError, match=bad.id):
        pool.get(bad.id)
    report = verify_pool(pool)
    assert [pid for pid, _ in report.corrupt] == [bad.id] and report.checked == 2
    pool.close()


# -- several processes ------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import json, sys
    from seer_langgraph import open_pool
    from seer_langgraph.embeddings import HashingEmbeddings
    sys.path.insert(0, {helpers!r})
    from reliability_helpers import record
    path, w, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pool = open_pool(path=path, shared=True, embeddings=HashingEmbeddings(dimension=64))
    out = []
    for i in range(m):
        res = pool.commit(record(w * 1000 + i))
        out.append([res.id, res.status])
        pool.recall(record(w * 1000 + i).request, k=2)
    print(json.dumps({{"kind": type(pool).__name__, "results": out}}))
    pool.close()
    """
)


def _spawn_writers(tmp_path: Path, pool_dir: Path, n: int, m: int) -> list[subprocess.Popen]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(helpers=str(Path(__file__).parent)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return [
        subprocess.Popen([sys.executable, str(script), str(pool_dir), str(w), str(m)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for w in range(n)
    ]


def _share(tmp_path: Path, engines: list[str], n: int, m: int) -> None:
    owners, procs = {}, {}
    for engine in engines:
        d = tmp_path / f"pool-{engine}"
        owners[engine] = open_pool(path=d, backend=engine, shared=True, embeddings=HashingEmbeddings(dimension=64))
        procs[engine] = _spawn_writers(tmp_path / engine, d, n, m)
    want = {record(w * 1000 + i).id for w in range(n) for i in range(m)}
    for engine in engines:
        outs = []
        for p in procs[engine]:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
        owner = owners[engine]
        assert {o["kind"] for o in outs} == {"RemotePool"}
        assert all(status == "created" for o in outs for _, status in o["results"])
        assert owner.count() == n * m and _all_ids(owner) == want, engine
        assert not verify_pool(owner).corrupt and owner.spill_pending() == 0
        owner.close()


def test_processes_share_one_embedded_pool(tmp_path):
    """N writer processes x M commits through the owner process: exactly N x M records, none torn."""
    _share(tmp_path, ["edge" if edge_installed() else "qdrant"], n=2, m=10)


@pytest.mark.slow
@SLOW
def test_processes_share_one_embedded_pool_every_engine(tmp_path):
    _share(tmp_path, ["qdrant"] + (["edge"] if edge_installed() else []), n=3, m=25)


def test_second_plain_opener_gets_a_clear_error(tmp_path):
    d = tmp_path / "pool"
    first = open_pool(path=d, backend="qdrant")
    with pytest.raises(PoolInUseError, match="shared=True"):
        open_pool(path=d)
    first.close()


def test_owner_close_fails_over_to_a_client(tmp_path):
    """When the owner goes away, the next client call takes over the directory; nothing is lost."""
    d = tmp_path / "pool"
    owner = open_pool(path=d, backend="qdrant", shared=True)
    client = open_pool(path=d, shared=True)
    a = client.commit(Experience(request="first", steps=[Step(tool="t")], answer="1"))
    owner.close()
    b = client.commit(Experience(request="second", steps=[Step(tool="u")], answer="2"))
    assert (a.status, b.status) == ("created", "created")
    assert client.is_owner and client.count() == 2
    client.close()
    again = open_pool(path=d)
    assert again.count() == 2 and not verify_pool(again).corrupt
    again.close()


@pytest.mark.slow
@SLOW
def test_owner_killed_mid_run_loses_nothing_acknowledged(tmp_path):
    """SIGKILL the owner while clients write: clients fail over; every acknowledged commit survives."""
    d = tmp_path / "pool"
    owner_script = tmp_path / "owner.py"
    owner_script.write_text(
        "import sys, time\nfrom seer_langgraph import open_pool\nfrom seer_langgraph.embeddings import HashingEmbeddings\n"
        "p = open_pool(path=sys.argv[1], backend='qdrant', shared=True, embeddings=HashingEmbeddings(dimension=64))\n"
        "print('ready', flush=True)\ntime.sleep(600)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    owner = subprocess.Popen([sys.executable, str(owner_script), str(d)], stdout=subprocess.PIPE, text=True, env=env)
    assert owner.stdout.readline().strip() == "ready"
    procs = _spawn_writers(tmp_path, d, 3, 40)
    import time

    time.sleep(1.5)
    owner.kill()
    owner.wait()
    acknowledged = set()
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        acknowledged |= {rid for rid, status in json.loads(out.strip().splitlines()[-1])["results"] if status in ("created", "present")}
    final = open_pool(path=d, embeddings=HashingEmbeddings(dimension=64))
    final.replay_spill()
    ids = _all_ids(final)
    assert acknowledged <= ids
    assert ids == {record(w * 1000 + i).id for w in range(3) for i in range(40)}  # spilled ones replayed too
    assert not verify_pool(final).corrupt
    final.close()


def test_a_stalled_client_does_not_block_the_others(tmp_path):
    """A peer that connects and never authenticates must not stop other clients (handshakes run per connection)."""
    import socket

    d = tmp_path / "pool"
    owner = open_pool(path=d, backend="qdrant", shared=True)
    host, port = owner.shared_server.address
    stalled = [socket.create_connection((host, port)) for _ in range(3)]  # silent peers
    done = []

    def client_work() -> None:
        client = open_pool(path=d, shared=True)
        done.append(client.commit(Experience(request="hello", answer="hi")).status)
        client.close()

    t = threading.Thread(target=client_work, daemon=True)  # daemon: a blocked client must not hang the test run
    t.start()
    t.join(timeout=20)
    assert done == ["created"], "a silent peer blocked the owner"
    for s in stalled:
        s.close()
    owner.close()


def test_clients_can_call_only_pool_methods(tmp_path):
    d = tmp_path / "pool"
    owner = open_pool(path=d, backend="qdrant", shared=True)
    client = open_pool(path=d, shared=True)
    for name in ("close", "_write", "__init__", "backend"):
        with pytest.raises(PoolError, match="not a pool method"):
            client._call(name)
    assert client.count() == 0 and not owner._closed
    client.close()
    owner.close()


def test_seer_pool_serve_owns_the_directory(tmp_path):
    """`seer pool serve` as the dedicated owner: clients commit through it; SIGTERM stops it cleanly."""
    import signal
    import time

    d = tmp_path / "pool"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "seer_langgraph.cli", "pool", "serve", "--path", str(d), "--embeddings", "hashing"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (d / "seer_owner.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
            time.sleep(0.1)
        client = open_pool(path=d, shared=True)
        assert type(client).__name__ == "RemotePool"
        assert client.commit(record(1)).status == "created" and client.count() == 1
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    again = open_pool(path=d)  # the directory is free again
    assert again.count() == 1
    again.close()
