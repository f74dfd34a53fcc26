"""The sparse side every provider shares: BM25 over the local fastembed model (no network, no
weights: the stopword list ships in code), and the shape every dense provider builds on."""

from __future__ import annotations

from typing import Sequence

from connectors.index.base import SparseVec
from connectors.index.models import bm25_dir
from connectors.index.stopwords import ENGLISH_STOPWORDS


class Bm25:
    def __init__(self, batch_size: int = 32):
        from fastembed import SparseTextEmbedding   # with the model: not in the web process

        self._model = SparseTextEmbedding("Qdrant/bm25", specific_model_path=str(bm25_dir()),
                                          stopwords=ENGLISH_STOPWORDS)
        self.batch_size = batch_size

    def documents(self, texts: Sequence[str]) -> list[SparseVec]:
        return [sparse_vec(s) for s in self._model.embed(list(texts), batch_size=self.batch_size)]

    def query(self, text: str) -> SparseVec:
        return sparse_vec(next(iter(self._model.query_embed(text))))


def sparse_vec(s) -> SparseVec:
    """fastembed's SparseEmbedding (numpy arrays) as the index's plain SparseVec."""
    return SparseVec(tuple(int(x) for x in s.indices), tuple(float(x) for x in s.values))


class WithBm25:
    """An embedder's shared half: BM25 vectors beside the provider's dense ones. A provider sets
    ``sparse`` (a ``Bm25``) and implements ``embed_dense`` and ``dense_query``."""

    sparse: Bm25

    def embed_dense(self, texts: Sequence[str]) -> list:  # pragma: no cover - each provider's own
        raise NotImplementedError

    def dense_query(self, text: str) -> list[float]:  # pragma: no cover - each provider's own
        raise NotImplementedError

    def embed_documents(self, texts: Sequence[str]) -> tuple[list, list[SparseVec]]:
        if not texts:
            return [], []
        return self.embed_dense(texts), self.embed_sparse(texts)

    def embed_sparse(self, texts: Sequence[str]) -> list[SparseVec]:
        """BM25 vectors alone, in the order given."""
        return self.sparse.documents(texts)

    def embed_query(self, text: str) -> tuple[list[float], SparseVec]:
        return self.dense_query(text), self.sparse.query(text)
