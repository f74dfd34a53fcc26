"""The embedding model's settings (connectors/index/embeddings.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from chatops.settings import PluginSettings, env


class EmbeddingSettings(PluginSettings):
    # A fastembed model name; unset: the index connector's default (all-MiniLM-L6-v2, shipped offline).
    embedding_model: str | None = env("CHATOPS_EMBEDDING_MODEL")
    embedding_path: Path | None = env("CHATOPS_EMBEDDING_PATH")
    embedding_batch_size: int = Field(
        default=32, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_SIZE")
    )
    # Padded word pieces per batch (see connectors.index.embeddings.token_batches): bounds the
    # model's working memory, which ONNX Runtime keeps at its high-water mark.
    embedding_batch_tokens: int = Field(
        default=2048, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_TOKENS")
    )
