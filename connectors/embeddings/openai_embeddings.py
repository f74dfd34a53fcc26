"""``openai``: any OpenAI-compatible ``POST /v1/embeddings`` through the official openai SDK: OpenAI,
Azure OpenAI (an API key, or an Entra token of the app for the Cognitive Services scope), vLLM,
Ollama, Hugging Face TEI, LiteLLM.

* texts go in batches of ``batch_size``, up to ``concurrency`` batches at a time (one pool per
  process, shared by every caller), and come back in the order given;
* the SDK retries a batch on 429 (honouring ``Retry-After``), 408/409, 5xx, timeouts and
  network errors, ``max_retries`` times with back-off; then ``EmbeddingUnavailable`` (transient:
  a task is tried again later);
* ``dimensions`` is sent only when set; every vector that comes back is checked against the
  expected length (the declared one, else the server's first answer): ``DimensionMismatch``, one line;
* a refused key, an unknown model or a bad request: ``EmbeddingRefused``, one line.

The SDK asks for base64 (little-endian float32) by default and decodes it; a server that answers
with float lists is read as well.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import openai
import requests

from chatops.errors import ConfigError
from chatops.settings import Settings
from connectors.embeddings.base import DimensionMismatch, EmbeddingRefused, EmbeddingUnavailable
from connectors.embeddings.settings import EmbeddingSettings, OpenAIEmbeddingSettings
from connectors.embeddings.sparse import Bm25, WithBm25
from connectors.microsoft.credentials import graph_client
from connectors.microsoft.graph import GraphError
from connectors.microsoft.settings import EntraSettings

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


class OpenAIEmbedder(WithBm25):
    provider = "openai"

    @classmethod
    def from_settings(cls, settings: Settings, http: requests.Session | None = None) -> "OpenAIEmbedder":
        s, o = settings.of(EmbeddingSettings), settings.of(OpenAIEmbeddingSettings)
        model, _ = cls.declared(settings)
        token = None
        if o.embedding_azure_entra:
            if not o.embedding_azure_api_version:
                raise ConfigError("CHATOPS_EMBEDDING_AZURE_ENTRA needs CHATOPS_EMBEDDING_AZURE_API_VERSION "
                                  "(Entra tokens are for Azure OpenAI)")
            token = entra_token(settings.of(EntraSettings), http)
        return cls(model, base_url=o.embedding_url,
                   api_key=o.embedding_api_key.get_secret_value() if o.embedding_api_key else None,
                   dimensions=o.embedding_dimensions, batch_size=s.embedding_batch_size,
                   concurrency=o.embedding_concurrency, timeout=o.embedding_timeout,
                   max_retries=o.embedding_max_retries, azure_api_version=o.embedding_azure_api_version,
                   azure_token=token)

    @staticmethod
    def declared(settings: Settings) -> tuple[str, int | None]:
        model = settings.of(EmbeddingSettings).embedding_model
        if not model:
            raise ConfigError("CHATOPS_EMBEDDING_PROVIDER=openai needs CHATOPS_EMBEDDING_MODEL: the server's "
                              "embedding model (Azure: the deployment's name), e.g. text-embedding-3-small")
        return model, settings.of(OpenAIEmbeddingSettings).embedding_dimensions

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 dimensions: int | None = None, batch_size: int = 32, concurrency: int = 4, timeout: float = 30.0,
                 max_retries: int = 4, azure_api_version: str | None = None,
                 azure_token: Callable[[], str] | None = None, sparse: Bm25 | None = None):
        self.name = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.where = shown(base_url or OPENAI_URL)
        client: openai.OpenAI
        if azure_api_version:
            if not base_url:
                raise ConfigError("Azure OpenAI needs CHATOPS_EMBEDDING_URL: the resource's endpoint, "
                                  "https://NAME.openai.azure.com")
            if azure_token is None and not api_key:
                raise ConfigError("Azure OpenAI needs CHATOPS_EMBEDDING_API_KEY, or CHATOPS_EMBEDDING_AZURE_ENTRA=true "
                                  "with the app's ENTRA_* settings")
            client = openai.AzureOpenAI(azure_endpoint=base_url, api_version=azure_api_version,
                                        api_key=None if azure_token else api_key, azure_ad_token_provider=azure_token,
                                        timeout=timeout, max_retries=max_retries)
        else:
            client = openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url or OPENAI_URL,
                                   timeout=timeout, max_retries=max_retries)
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="embeddings")
        self.concurrency = concurrency
        self.sparse = sparse or Bm25(batch_size)
        self._expected: int | None = dimensions
        self.dim = dimensions or len(self._batch(["dimension probe"])[0])

    def embed_dense(self, texts: Sequence[str]) -> list:
        batches = [list(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if len(batches) <= 1:
            return [v for b in batches for v in self._batch(b)]
        return [v for vectors in self._pool.map(self._batch, batches) for v in vectors]

    def dense_query(self, text: str) -> list[float]:
        return self._batch([text])[0]

    def check(self) -> str:
        """``chatops doctor``: one text embedded, its dimension."""
        self._batch(["chatops doctor"])
        return f"openai:{self.name} at {self.where}, {self.dim} dims"

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()

    def _batch(self, texts: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        texts = [t or " " for t in texts]      # OpenAI refuses an empty string
        try:
            response = self._client.embeddings.create(model=self.name, input=texts, **extra)
        except openai.AuthenticationError:
            raise EmbeddingRefused(f"the embedding server at {self.where} refused the key (401); set "
                                   "CHATOPS_EMBEDDING_API_KEY (Azure with Entra: the app's access to the "
                                   "resource)") from None
        except openai.PermissionDeniedError:
            raise EmbeddingRefused(f"the embedding server at {self.where} denied access (403); give the key "
                                   "or the app access to the model") from None
        except openai.NotFoundError:
            raise EmbeddingRefused(f"the embedding server at {self.where} has no model {self.name!r} (404); "
                                   "set CHATOPS_EMBEDDING_MODEL (Azure: the deployment's name) or "
                                   "CHATOPS_EMBEDDING_URL") from None
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
            # APITimeoutError is an APIConnectionError; all after the SDK's retries
            raise EmbeddingUnavailable(f"the embedding server at {self.where} did not answer after retries "
                                       f"({type(exc).__name__})") from None
        except openai.APIStatusError as exc:
            raise EmbeddingRefused(f"the embedding server at {self.where} refused the request "
                                   f"({exc.status_code}: {_message(exc)})") from None
        except ValueError as exc:     # the SDK's "No embedding data received"
            raise EmbeddingUnavailable(f"the embedding server at {self.where} answered no vectors ({exc})") from None
        except GraphError as exc:     # the Entra token for Azure
            error = EmbeddingUnavailable if exc.transient else EmbeddingRefused
            raise error(f"no Entra token for Azure OpenAI: {exc}") from None
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingUnavailable(f"the embedding server at {self.where} answered {len(data)} vectors "
                                       f"for {len(texts)} texts")
        vectors = [[float(x) for x in d.embedding] for d in data]
        expected = self._expected
        for vector in vectors:
            if expected is None:
                expected = self._expected = len(vector)
            if len(vector) != expected:
                why = ("CHATOPS_EMBEDDING_DIMENSIONS" if self.dimensions else "its first answer")
                raise DimensionMismatch(
                    f"the embedding server at {self.where} returned {len(vector)}-dimensional vectors for "
                    f"{self.name} but {expected} are expected ({why}); set CHATOPS_EMBEDDING_DIMENSIONS to what "
                    "the index holds, or point CHATOPS_EMBEDDING_MODEL and CHATOPS_EMBEDDING_URL back at its model")
        return vectors


def entra_token(s: EntraSettings, http: requests.Session | None) -> Callable[[], str]:
    """The app's token for Azure OpenAI (``https://cognitiveservices.azure.com/.default``) through
    its Entra credential (a secret or a certificate); msal keeps it until it expires."""
    if not s.configured or not s.has_credential:
        raise ConfigError("CHATOPS_EMBEDDING_AZURE_ENTRA needs the Entra app: ENTRA_TENANT_ID, ENTRA_CLIENT_ID "
                          "and ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH")
    client = graph_client(s, http)
    return lambda: client.token(COGNITIVE_SCOPE)


def shown(url: str) -> str:
    """A URL as shown in messages: no user info, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}".rstrip("/")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    text = error.get("message") if isinstance(error, dict) else None
    return " ".join(str(text or exc.message).split())[:200]
