"""Where the embedder used to live: the providers are ``connectors/embeddings/`` now. The names
imported from here before stay importable (``Embedder`` is the providers' interface, the local
model is ``LocalEmbedder``); new code imports them from ``connectors/embeddings/``."""

from __future__ import annotations

from connectors.embeddings.base import Embedder
from connectors.embeddings.batching import estimated_tokens, limit_malloc_arenas, release_free_memory, token_batches
from connectors.embeddings.local import DEFAULT_EMBEDDING_MODEL, LocalEmbedder

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Embedder", "LocalEmbedder", "estimated_tokens", "limit_malloc_arenas",
           "release_free_memory", "token_batches"]
