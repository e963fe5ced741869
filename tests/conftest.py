"""Shared fixtures: no network (loopback only) in any test, and pools on every backend."""

from __future__ import annotations

import os

import pytest

from seer_langgraph.testing import forbid_network

os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.pop("OPENAI_API_KEY", None)


@pytest.fixture(autouse=True)
def _no_network():
    with forbid_network():
        yield


def edge_installed() -> bool:
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


def numba_installed() -> bool:
    from seer_langgraph.pool.index import index_available

    return index_available()


# Every backend that can run here. "memory-formula" computes the SEER score inside Qdrant
# (the strategy a server uses) on qdrant-client's local engine.
BACKENDS = [
    "memory",
    "memory-formula",
    "path",
    pytest.param("edge", marks=pytest.mark.skipif(not edge_installed(), reason="qdrant-edge-py not installed")),
    pytest.param("edge-formula", marks=pytest.mark.skipif(not edge_installed(), reason="qdrant-edge-py not installed")),
    pytest.param("memory-index", marks=pytest.mark.skipif(not numba_installed(), reason="numba not installed")),
    pytest.param(
        "edge-index", marks=pytest.mark.skipif(not (edge_installed() and numba_installed()), reason="needs qdrant-edge-py and numba")
    ),
]


def make_pool(kind: str, tmp_path, embeddings=None, **kwargs):
    from seer_langgraph.embeddings import HashingEmbeddings
    from seer_langgraph.pool import open_pool

    emb = embeddings or HashingEmbeddings(dimension=64)
    # The congruence and reference suites compare rankings over exactly the records they commit
    # (some with identical vectors on purpose), so near-duplicate merging is off here; it is
    # tested on every backend in tests/reliability/test_hygiene.py.
    if "hygiene" not in kwargs:
        from seer_langgraph.hygiene import HygienePolicy

        kwargs["hygiene"] = HygienePolicy(dedup_threshold=None)
    if kind == "memory":
        return open_pool(":memory:", embeddings=emb, strategy="rerank", **kwargs)
    if kind == "memory-formula":
        return open_pool(":memory:", embeddings=emb, strategy="formula", **kwargs)
    if kind == "path":
        return open_pool(path=tmp_path / "pool-client", backend="qdrant", embeddings=emb, **kwargs)
    if kind == "edge":
        return open_pool(path=tmp_path / "pool-edge", backend="edge", embeddings=emb, strategy="rerank", **kwargs)
    if kind == "memory-index":
        return open_pool(":memory:", embeddings=emb, strategy="index", **kwargs)
    if kind == "edge-index":
        return open_pool(path=tmp_path / "pool-edge", backend="edge", embeddings=emb, strategy="index", **kwargs)
    if kind == "edge-formula":
        return open_pool(path=tmp_path / "pool-edge", backend="edge", embeddings=emb, strategy="formula", **kwargs)
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend_kind(request):
    return request.param


@pytest.fixture
def pool(backend_kind, tmp_path):
    p = make_pool(backend_kind, tmp_path)
    yield p
    p.close()
