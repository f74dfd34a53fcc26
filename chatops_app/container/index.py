"""The index, the embedder and the language model, each from its registry. Their connectors are
imported here, where they are built: the web process never builds them (qdrant-client, fastembed,
ONNX Runtime, the openai SDK; see the package's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops_app.container.core import once

if TYPE_CHECKING:
    from chatops_app.container import Container


class IndexParts:
    def embedder(self: Container):
        # ONNX Runtime, fastembed, the openai SDK: workers and one-shot commands
        from connectors.embeddings.registry import build_embedder

        return build_embedder(self.settings, self._http_client)

    configured_embedder = once(embedder)     # kept as "embedder" (release_embedder drops it)

    @property
    def embedder(self: Container):
        """The configured embedder; once the index is open, the one of its active generation (which
        follows a switch together with the index: connectors/embeddings/switching.py)."""
        index = self._built.get("index")
        return index.embedder if index is not None else self.configured_embedder

    def check_index_embedder(self: Container) -> None:
        """At start-up, before any model loads: refuse (one line, naming both) an index built with
        another embedder than the configured one."""
        from connectors.embeddings.registry import refuse_index_of_another

        refuse_index_of_another(self.settings)

    @property
    def engine(self: Container):
        from connectors.index.registry import engine_for   # qdrant-client, Qdrant Edge

        return engine_for(self.settings)

    @once
    def index(self: Container):
        # refuses an active generation of another embedder; follows a switch to another generation
        from connectors.embeddings.registry import open_switching_index

        return open_switching_index(self.settings, self.configured_embedder, self._http_client,
                                    embedder_of=lambda: self.configured_embedder)

    @once
    def llm(self: Container):
        from connectors.llm.registry import build_llm   # the openai SDK

        return build_llm(self.settings)

    @once
    def reranker(self: Container):
        from connectors.rerank.registry import build_reranker   # httpx, the reranker's clients

        return build_reranker(self.settings, self.llm)

    def release_embedder(self: Container) -> None:
        """Drop the embedding model and hand its memory back to the system (the next use loads
        it again). The model keeps its largest working set for as long as it lives: the one-shot
        ingest releases it before ``optimize()``, which needs its own."""
        from connectors.index.embeddings import release_free_memory

        with self._lock:
            if self._built.pop("embedder", None) is not None:
                release_free_memory()
