"""A dependency-free lexical embedder: hashed words and character trigrams.

:class:`HashingEmbeddings` needs no model and no network, is deterministic across processes and
machines, and is good enough to find trajectories that share words and tool names. It is the
default of tests and doctests, and a fallback when no neural model is installed. For semantic
recall use a neural model: ``seer_langgraph.local.MiniLMEmbeddings`` (the ``local`` extra) or any
LangChain ``Embeddings`` (OpenAI, fastembed, ...).

Example:
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> emb = HashingEmbeddings(dimension=64)
    >>> v = emb.embed_query("cancel my order")
    >>> len(v), round(sum(x * x for x in v), 6)
    (64, 1.0)
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from langchain_core.embeddings import Embeddings

__all__ = ["HashingEmbeddings"]

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)


class HashingEmbeddings(Embeddings):
    """Feature-hashing embeddings over word unigrams, bigrams and character trigrams.

    Args:
        dimension: vector size.
        ngram_weight: weight of character trigrams relative to words.
    """

    def __init__(self, dimension: int = 384, ngram_weight: float = 0.5) -> None:
        if dimension < 8:
            raise ValueError(f"dimension must be >= 8, got {dimension}")
        self.dimension = dimension
        self.ngram_weight = ngram_weight
        self.model = f"hashing-{dimension}"

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = [w.lower() for w in _TOKEN.findall(text) if w.isalnum()]
        feats: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
        feats += [(f"b:{a}_{b}", 0.7) for a, b in zip(words, words[1:])]
        for w in words:
            padded = f"#{w}#"
            feats += [(f"c:{padded[i:i + 3]}", self.ngram_weight) for i in range(len(padded) - 2)]
        return feats

    def _embed(self, text: str) -> list[float]:
        vec = np.zeros(self.dimension, dtype=np.float64)
        for feat, weight in self._features(text):
            h = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
            idx = int.from_bytes(h[:4], "little") % self.dimension
            sign = 1.0 if h[4] & 1 else -1.0
            vec[idx] += sign * weight
        norm = np.linalg.norm(vec)
        if norm == 0.0:
            vec[0] = 1.0  # empty text: a fixed unit vector, so cosine stays defined
            norm = 1.0
        return (vec / norm).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text."""
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text."""
        return self._embed(text)
