"""The rerank registry's own settings (which reranker, how many candidates, how long it may take),
and the ``http`` reranker's (its endpoint and key). Read at start by ``chatops_app/settings.py``."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator

from chatops.settings import PluginSettings, env


class RerankSettings(PluginSettings):
    # none: first-stage order (no cost); http: a rerank endpoint; llm: one listwise call to the model
    rerank: str = Field(default="none", validation_alias=AliasChoices("CHATOPS_RERANK"))
    # http: the model name sent to the endpoint; llm: a model of the language-model server other than
    # CHATOPS_LLM_MODEL (unset: that one)
    rerank_model: str | None = env("CHATOPS_RERANK_MODEL")
    rerank_candidates: int = Field(default=20, ge=2, le=100, validation_alias=AliasChoices("CHATOPS_RERANK_CANDIDATES"))
    # seconds the whole rerank step may take, retries included; past it the first-stage order stands
    rerank_timeout: float = Field(default=3.0, gt=0, le=60, validation_alias=AliasChoices("CHATOPS_RERANK_TIMEOUT"))

    @field_validator("rerank")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class HttpRerankSettings(PluginSettings):
    # the endpoint's full URL, e.g. http://tei:8080/rerank or https://api.jina.ai/v1/rerank
    rerank_url: str | None = env("CHATOPS_RERANK_URL")
    rerank_api_key: SecretStr | None = env("CHATOPS_RERANK_API_KEY")   # sent as Authorization: Bearer

    @field_validator("rerank_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be the rerank endpoint's full http(s) URL, e.g. http://host:8080/rerank")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.rerank_url)


def rerank_version(rerank: RerankSettings, http: HttpRerankSettings, llm_model: str) -> str:
    """What of the reranking shapes an answer (for the answer cache's version): "none", or the
    reranker, its model (and endpoint) and how many candidates it ranks."""
    if rerank.rerank == "none":
        return "none"
    if rerank.rerank == "http":
        return f"http|{rerank.rerank_model}|{http.rerank_url}|{rerank.rerank_candidates}"
    return f"{rerank.rerank}|{rerank.rerank_model or llm_model}|{rerank.rerank_candidates}"
