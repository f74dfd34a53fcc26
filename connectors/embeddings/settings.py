"""The embedding providers' settings: the registry's own (which provider, which model, batches)
and each provider's beside it (``OpenAIEmbeddingSettings``, ``OnnxDirSettings``). Read at start by
``chatops_app/settings.py``; a bad value stops the start in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from chatops.settings import PluginSettings, env


class EmbeddingSettings(PluginSettings):
    # local (the shipped MiniLM ONNX), openai (any OpenAI-compatible /v1/embeddings), onnx_dir.
    embedding_provider: str = Field(default="local", validation_alias=AliasChoices("CHATOPS_EMBEDDING_PROVIDER"))
    # The model: a fastembed model name (local; unset: all-MiniLM-L6-v2, shipped offline), the
    # server's model or Azure deployment (openai; required), a name for the directory's model
    # (onnx_dir; unset: the directory's name). The index records it.
    embedding_model: str | None = env("CHATOPS_EMBEDDING_MODEL")
    embedding_path: Path | None = env("CHATOPS_EMBEDDING_PATH")
    embedding_batch_size: int = Field(
        default=32, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_SIZE")
    )
    # Padded word pieces per batch (see connectors.embeddings.batching.token_batches): bounds the
    # model's working memory, which ONNX Runtime keeps at its high-water mark (local, onnx_dir).
    embedding_batch_tokens: int = Field(
        default=2048, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_TOKENS")
    )


class OpenAIEmbeddingSettings(PluginSettings):
    """``openai``: OpenAI, Azure OpenAI, vLLM, Ollama, Hugging Face TEI, LiteLLM."""

    # The server's base URL (http://host:8080/v1); unset: OpenAI's. Azure: the resource's endpoint
    # (https://NAME.openai.azure.com) with CHATOPS_EMBEDDING_AZURE_API_VERSION.
    embedding_url: str | None = env("CHATOPS_EMBEDDING_URL")
    embedding_api_key: SecretStr | None = env("CHATOPS_EMBEDDING_API_KEY")
    # Sent as ``dimensions`` only when set (text-embedding-3-* shorten their vectors to it).
    embedding_dimensions: int | None = Field(default=None, ge=1,
                                             validation_alias=AliasChoices("CHATOPS_EMBEDDING_DIMENSIONS"))
    # Batches sent at the same time, at most.
    embedding_concurrency: int = Field(default=4, ge=1, le=64,
                                       validation_alias=AliasChoices("CHATOPS_EMBEDDING_CONCURRENCY"))
    embedding_timeout: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("CHATOPS_EMBEDDING_TIMEOUT"))
    # Retries of one batch on 429 (honouring Retry-After), 5xx, timeouts and network errors.
    embedding_max_retries: int = Field(default=4, ge=0, le=20,
                                       validation_alias=AliasChoices("CHATOPS_EMBEDDING_MAX_RETRIES"))
    # Azure OpenAI: set to its API version (2024-10-21) to call a deployment; the key is
    # CHATOPS_EMBEDDING_API_KEY, or with CHATOPS_EMBEDDING_AZURE_ENTRA=true an Entra token of the
    # app (ENTRA_*) for https://cognitiveservices.azure.com/.default.
    embedding_azure_api_version: str | None = env("CHATOPS_EMBEDDING_AZURE_API_VERSION")
    embedding_azure_entra: bool = Field(default=False, validation_alias=AliasChoices("CHATOPS_EMBEDDING_AZURE_ENTRA"))


class OnnxDirSettings(PluginSettings):
    """``onnx_dir``: ``model.onnx`` and ``tokenizer.json`` in a directory the operator supplies
    (e.g. bge-small or multilingual-e5 exported with Optimum), read from disk only."""

    embedding_dir: Path | None = env("CHATOPS_EMBEDDING_DIR")
    # How the model's token vectors become one (its model card says): mean (sentence-transformers,
    # e5) or cls (bge). Required for onnx_dir: never guessed.
    embedding_pooling: Literal["mean", "cls"] | None = env("CHATOPS_EMBEDDING_POOLING")
    embedding_normalize: bool = Field(default=True, validation_alias=AliasChoices("CHATOPS_EMBEDDING_NORMALIZE"))
    embedding_max_tokens: int = Field(default=512, ge=8, le=8192,
                                      validation_alias=AliasChoices("CHATOPS_EMBEDDING_MAX_TOKENS"))
    # Prefixes some models were trained with (e5: "query: " and "passage: ").
    embedding_query_prefix: str | None = env("CHATOPS_EMBEDDING_QUERY_PREFIX")
    embedding_document_prefix: str | None = env("CHATOPS_EMBEDDING_DOCUMENT_PREFIX")
