"""The index, the embedder and the language model, each from its registry. Their connectors are
imported here, where they are built: the web process never builds them (qdrant-client, fastembed,
ONNX Runtime, the openai SDK; see the package's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops_app.container.core import once
from connectors.index.embedding_settings import EmbeddingSettings

if TYPE_CHECKING:
    from chatops_app.container import Container


class IndexParts:
    @once
    def embedder(self: Container):
        from connectors.index.embeddings import Embedder   # ONNX Runtime: workers and one-shot commands

        s = self.settings.of(EmbeddingSettings)
        return Embedder(s.embedding_model, s.embedding_path, batch_size=s.embedding_batch_size,
                        batch_tokens=s.embedding_batch_tokens)

    @property
    def engine(self: Container):
        from connectors.index.registry import engine_for   # qdrant-client, Qdrant Edge

        return engine_for(self.settings)

    @once
    def index(self: Container):
        from connectors.index.registry import open_index

        return open_index(self.settings, self.embedder.dim, embedder=getattr(self.embedder, "name", None))

    @once
    def llm(self: Container):
        from connectors.llm.registry import build_llm   # the openai SDK

        return build_llm(self.settings)

    def release_embedder(self: Container) -> None:
        """Drop the embedding model and hand its memory back to the system (the next use loads
        it again). The model keeps its largest working set for as long as it lives: the one-shot
        ingest releases it before ``optimize()``, which needs its own."""
        from connectors.index.embeddings import release_free_memory

        with self._lock:
            if self._built.pop("embedder", None) is not None:
                release_free_memory()
