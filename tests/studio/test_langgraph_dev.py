"""``langgraph dev`` serves every graph of ``langgraph.json``; the SDK drives them end to end.

Starts the real server (``langgraph dev`` on loopback, scripted model, a temporary pool), then
through ``langgraph-sdk``: creates threads, streams and waits on runs, reads thread state, checks
that recalled experiences (with s1/s2/s3/score) appear in the state and that commits land in
the pool (through the inspection graph while the server runs, and by reopening the pool after
it stopped). The server runs with blockbuster on (no ``--allow-blocking``), so blocking I/O in
an async path fails the runs. Run alone with ``pytest -m studio``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.studio

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 60
_API_LINE = re.compile(r"API:\s*(?:\x1b\[[0-9;]*m)?(https?://[^\s\x1b]+)")


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:  # a failure, not a skip: CI must install the `studio` extra
        pytest.fail(f"{module} is not installed: install the `studio` extra (langgraph-cli[inmem]) to run this test")


class DevServer:
    """``langgraph dev`` in a subprocess; :meth:`stop` is idempotent and always reaps it."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.lines: list[str] = []
        self.url: str | None = None
        self._seen_url = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        config = self._config()
        with socket.socket() as s:  # a free port now; the server may still pick another: read what it prints
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "langgraph_cli", "dev", "--config", str(config), "--no-browser", "--no-reload",
               "--host", "127.0.0.1", "--port", str(port)]
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            encoding="utf-8", errors="replace", start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._seen_url.wait(START_TIMEOUT_S):
            raise RuntimeError(f"langgraph dev printed no API url within {START_TIMEOUT_S}s:\n{self.log()}")
        assert self.url is not None
        self._wait_ok()
        return self.url

    def _config(self) -> Path:
        """The repository's langgraph.json with absolute paths, so the server can run in a temp dir
        (it writes its own state to ``./.langgraph_api``: nothing of this test lands in the tree)."""
        cfg = json.loads((REPO / "langgraph.json").read_text())
        for gid, spec in cfg["graphs"].items():
            path, _, var = spec.partition(":")
            assert (REPO / path).is_file(), f"graph {gid}: {path} does not exist"
            cfg["graphs"][gid] = f"{(REPO / path).resolve()}:{var}"
        cfg["dependencies"] = [str(REPO)]
        out = self.workdir / "langgraph.json"
        out.write_text(json.dumps(cfg))
        return out

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = _API_LINE.search(line)
            if m and self.url is None:
                self.url = m.group(1).rstrip("/")
                self._seen_url.set()

    def _wait_ok(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"langgraph dev did not answer /ok within {START_TIMEOUT_S}s:\n{self.log()}")

    def log(self) -> str:
        return "".join(self.lines[-200:])

    def stop(self) -> int | None:
        """SIGINT (graceful: the graphs' pools are flushed and closed at exit), then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the group this test started (start_new_session=True)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        return proc.wait(10)


@pytest.fixture
def dev_server(tmp_path):
    _require("langgraph_api")
    _require("langgraph_cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEER_")}
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
        SEER_MODEL="scripted",
        SEER_EMBEDDINGS="hashing",
        SEER_POOL_PATH=str(tmp_path / "pool"),
    )
    work = tmp_path / "server"
    work.mkdir()
    server = DevServer(work, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- helpers ----------------------------------------------------------------------------------
def _stream(client: Any, thread_id: str, graph: str, **kwargs: Any) -> list[Any]:
    parts = list(client.runs.stream(thread_id, graph, stream_mode=["values", "updates"], **kwargs))
    errors = [p.data for p in parts if p.event == "error"]
    assert not errors, errors
    return parts


def _values(client: Any, thread_id: str) -> dict[str, Any]:
    return client.threads.get_state(thread_id)["values"]


def _check_example(e: dict[str, Any]) -> None:
    for key in ("s1", "s2", "s3", "score"):
        assert isinstance(e[key], float), (key, e)
    assert -1.0 <= e["s1"] <= 1.0 and 0.0 <= e["s2"] <= 1.0 and e["s3"] in (0.0, 1.0)
    assert e["score"] == pytest.approx(e["s1"] + e["s2"] + e["s3"], abs=1e-4)  # default weights 1/1/1
    assert e["experience"]["request"] and e["id"] == e["experience"]["id"]


def test_langgraph_dev_drives_every_graph(dev_server, tmp_path):
    from langgraph_sdk import get_sync_client

    from seer_langgraph.demo.world import ShopWorld

    world = ShopWorld(seed=0)  # the graphs' world
    first, second = world.tasks(2, kinds=["product_price"], seed=11)
    city = world.tasks(1, kinds=["customer_city"], seed=11)[0]
    status = world.tasks(1, kinds=["order_status"], seed=11)[0]
    client = get_sync_client(url=dev_server.url, timeout=RUN_TIMEOUT_S)

    # every graph of langgraph.json is served
    graphs = set(json.loads((REPO / "langgraph.json").read_text())["graphs"])
    assert {a["graph_id"] for a in client.assistants.search(limit=50)} == graphs

    # (a) the prebuilt agent: a streamed run is judged against the reference and committed
    t1 = client.threads.create()["thread_id"]
    parts = _stream(client, t1, "seer_agent", input={"messages": [{"role": "user", "content": first.question}], "seer_reference": first.answer})
    updated = [node for p in parts if p.event == "updates" for node in p.data]
    assert updated == ["seer_recall", "seer_agent", "seer_tools", "seer_recall", "seer_agent", "seer_commit"]
    final = [p.data for p in parts if p.event == "values"][-1]
    assert final["seer_verdict"]["success"] is True, final["seer_verdict"]
    first_id = final["seer_committed_id"]
    assert first_id, {k: v for k, v in final.items() if k.startswith("seer_commit")}  # seer_commit_error says why
    assert _values(client, t1)["seer_committed_id"] == first_id
    assert final["seer_examples"] == []  # the pool was empty

    # ... a second question of the same kind recalls the first, with its scores, in the thread's state
    t2 = client.threads.create()["thread_id"]
    client.runs.wait(t2, "seer_agent", input={"messages": [{"role": "user", "content": second.question}], "seer_reference": second.answer})
    state = _values(client, t2)
    assert [e["id"] for e in state["seer_examples"]] == [first_id]
    top = state["seer_examples"][0]
    _check_example(top)
    assert top["s2"] == 1.0  # recalled after find_product: the first run used it too
    assert top["experience"]["request"] == first.question and top["experience"]["answer"] == first.answer
    assert state["seer_recalled_ids"] == [first_id]
    assert state["seer_verdict"]["success"] and state["seer_committed_id"] not in (None, first_id)
    second_id = state["seer_committed_id"]

    # (b) the custom graph: own nodes before (triage) and after (report) SEER, another tenant
    acme = {"configurable": {"seer_tenant": "acme"}}
    t3 = client.threads.create()["thread_id"]
    parts = _stream(client, t3, "seer_custom", input={"messages": [{"role": "user", "content": city.question}], "seer_reference": city.answer}, config=acme)
    nodes = [node for p in parts if p.event == "updates" for node in p.data]
    assert nodes[0] == "triage" and nodes[1] == "seer_recall" and nodes[-2:] == ["seer_commit", "report"]
    state = _values(client, t3)
    assert state["desk_route"] == "seer" and "verdict: success" in state["desk_report"]
    assert state["seer_examples"] == []  # tenant acme has learned nothing yet: tenants are isolated
    acme_id = state["seer_committed_id"]
    assert acme_id and f"committed: {acme_id}" in state["desk_report"]
    # ... a non-shop question never reaches SEER
    t4 = client.threads.create()["thread_id"]
    parts = _stream(client, t4, "seer_custom", input={"messages": [{"role": "user", "content": "hello, who are you?"}]}, config=acme)
    assert [node for p in parts if p.event == "updates" for node in p.data] == ["triage", "smalltalk"]
    assert "seer_committed_id" not in _values(client, t4)
    # ... a human judge: the run pauses at commit until someone approves it
    human = {"configurable": {"seer_judge": "human"}}
    t5 = client.threads.create()["thread_id"]
    client.runs.wait(t5, "seer_custom", input={"messages": [{"role": "user", "content": status.question}]}, config=human)
    paused = client.threads.get_state(t5)
    assert paused["next"] == ["seer_commit"] and paused["tasks"][0]["interrupts"], paused["tasks"]
    assert paused["values"].get("seer_committed_id") is None
    client.runs.wait(t5, "seer_custom", command={"resume": "approve"}, config=human)
    state = _values(client, t5)
    assert state["seer_verdict"]["source"] == "human" and state["seer_verdict"]["success"] is True
    approved_id = state["seer_committed_id"]
    assert approved_id and "verdict: success" in state["desk_report"]

    # (c) the inspection graph lists what was learned, with s1/s2/s3/score
    t6 = client.threads.create()["thread_id"]
    parts = _stream(client, t6, "seer_pool_inspector", input={"messages": [{"role": "user", "content": "What did you learn about the unit price of a product with find_product?"}]})
    state = _values(client, t6)
    assert state["seer_topic"] == "the unit price of a product with find_product"
    ids = [e["id"] for e in state["seer_examples"]]
    assert set(ids[:2]) == {first_id, second_id} and approved_id in ids and acme_id not in ids
    for e in state["seer_examples"]:
        _check_example(e)
    assert [e["s2"] for e in state["seer_examples"]] == [1.0, 1.0, 0.0]  # only the price runs used find_product
    assert state["pool_stats"]["tenants"] == {"acme": 1, "default": 3}
    assert "s1" in state["messages"][-1]["content"] and first.question in state["messages"][-1]["content"]
    t7 = client.threads.create()["thread_id"]
    client.runs.wait(t7, "seer_pool_inspector", input={"messages": [{"role": "user", "content": "what did you learn about customers?"}]}, config=acme)
    assert [e["id"] for e in _values(client, t7)["seer_examples"]] == [acme_id]

    assert "BlockingError" not in dev_server.log(), dev_server.log()

    # after the server stops, the commits are in the pool on disk
    dev_server.stop()
    from seer_langgraph import open_pool
    from seer_langgraph.embeddings import HashingEmbeddings

    with open_pool(path=tmp_path / "pool", embeddings=HashingEmbeddings()) as pool:
        assert pool.count() == 3 and pool.count(tenant="acme") == 1
        assert pool.get(first_id).request == first.question
        assert pool.get(second_id).answer == second.answer
        assert pool.get(approved_id).verdict.source == "human"
        assert pool.get(acme_id, tenant="acme").request == city.question
        assert pool.get(first_id).usage.recalled >= 1  # recalled by the second run (and counted at its commit)
