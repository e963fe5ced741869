"""Shared helpers of the reliability suite: the backends of tests/conftest.py, records, fault injection."""

from __future__ import annotations

import importlib.util
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable

from seer_langgraph import Experience, Step

_spec = importlib.util.spec_from_file_location("seer_tests_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
_root = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_root)  # type: ignore[union-attr]

BACKENDS = _root.BACKENDS
make_pool = _root.make_pool
edge_installed = _root.edge_installed

WORDS = (
    "order refund invoice customer warehouse parcel ticket flight hotel coffee price stock account "
    "address shipping return exchange discount payment receipt delivery tracking cancel upgrade seat"
).split()
TOOLS = ["get_order", "find_user", "refund", "calc", "search", "book", "track", "cancel"]


def record(i: int, *, tenant: str = "default", rng: random.Random | None = None, salt: str = "") -> Experience:
    """A distinct, realistic-looking experience (no two share a tool chain and text)."""
    rng = rng or random.Random(i)
    words = " ".join(rng.choice(WORDS) for _ in range(6))
    chain = [TOOLS[(i + k) % len(TOOLS)] for k in range(1 + i % 3)] + [f"tool_{i}"]
    return Experience(
        request=f"{salt}request {i}: {words}?",
        steps=[Step(tool=t, args={"id": i, "q": words.split()[k % 6]}, observation=f"{t} result {i}-{k}") for k, t in enumerate(chain)],
        answer=f"answer {i} {words.split()[0]}",
        intent=rng.choice(["status", "refund", None]),
        tenant=tenant,
    )


class FaultyBackend:
    """Wraps a backend: injects exceptions or delays into chosen methods.

    ``faults[name]`` is a callable run before the real method; it may raise (a failing engine) or
    sleep (to widen race windows). Everything else is passed through.
    """

    def __init__(self, inner: Any, faults: dict[str, Callable[[], None]] | None = None):
        self._inner = inner
        self.faults: dict[str, Callable[[], None]] = dict(faults or {})
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._inner.name

    def __getattr__(self, item: str) -> Any:
        attr = getattr(self._inner, item)
        if not callable(attr):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[item] = self.calls.get(item, 0) + 1
            fault = self.faults.get(item)
            if fault is not None:
                fault()
            return attr(*args, **kwargs)

        return wrapped


def fail_times(n: int, exc: BaseException) -> Callable[[], None]:
    """A fault that raises ``exc`` the first ``n`` times, then lets calls through."""
    left = [n]
    lock = threading.Lock()

    def fault() -> None:
        with lock:
            if left[0] > 0:
                left[0] -= 1
                raise exc

    return fault


def always(exc: BaseException) -> Callable[[], None]:
    def fault() -> None:
        raise exc

    return fault


def sleep(seconds: float) -> Callable[[], None]:
    def fault() -> None:
        time.sleep(seconds)

    return fault


def stored_payload_text(pool: Any) -> str:
    """Every payload of every tenant, as one JSON text (what an attacker with the disk would read)."""
    import json

    out = []
    for tenant in pool.backend.tenants():
        offset = None
        while True:
            pts, offset = pool.backend.scroll(tenant, 256, offset)
            out += [json.dumps(p.payload, ensure_ascii=False) for p in pts]
            if offset is None:
                break
    return "\n".join(out)
