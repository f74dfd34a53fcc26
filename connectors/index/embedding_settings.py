"""The embedding settings are the embedding registry's now (``connectors/embeddings/settings.py``);
kept importable from here."""

from __future__ import annotations

from connectors.embeddings.settings import EmbeddingSettings

__all__ = ["EmbeddingSettings"]
