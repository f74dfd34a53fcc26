"""The embedder interface every provider meets, what identifies one (the index records it), and the
rule that an index is never used with another embedder than the one that built it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from chatops.errors import ConfigError, TransientError
from connectors.index.base import Built, SparseVec

LOCAL = "local"     # the provider of every index that recorded a model name only (before providers)


class Embedder(Protocol):
    """Dense vectors from a provider, BM25 sparse vectors from the local model (``sparse.py``)."""

    provider: str       # its registry name: local, openai, onnx_dir
    name: str           # the model, as the index records it (``Built.embedder``)
    dim: int            # the dense vectors' length

    def embed_documents(self, texts: Sequence[str]) -> tuple[list, list[SparseVec]]:
        """Dense and sparse vectors of passages, in the order given."""
        ...

    def embed_dense(self, texts: Sequence[str]) -> list:
        """Dense vectors of passages alone, in the order given."""
        ...

    def embed_sparse(self, texts: Sequence[str]) -> list[SparseVec]:
        """BM25 vectors alone, in the order given."""
        ...

    def embed_query(self, text: str) -> tuple[list[float], SparseVec]:
        """A question's dense and sparse vectors."""
        ...


class EmbeddingUnavailable(TransientError):
    """The embedding server did not answer, or kept answering 429/5xx past the retries."""

    service = "the embedding server"


class EmbeddingRefused(ConfigError):
    """The embedding server refused the request (a key, a model, a dimension it does not have)."""


class DimensionMismatch(ConfigError):
    """The server's vectors are not as long as declared (or as the index's)."""


@dataclass(frozen=True)
class EmbedderId:
    """What identifies an embedder: the index built with it records the same three."""

    provider: str
    model: str | None    # None: not recorded (an older index), not named (a test's embedder)
    dim: int | None      # None: not known before the model is loaded or the server asked

    def describe(self) -> str:
        return f"{self.provider}:{self.model or 'an unnamed model'}" + (f" ({self.dim} dims)" if self.dim else "")

    @classmethod
    def of(cls, embedder: Embedder) -> "EmbedderId":
        # an embedder written before providers (a test's) is a local one, its model unnamed
        return cls(getattr(embedder, "provider", LOCAL), getattr(embedder, "name", None), embedder.dim)

    @classmethod
    def recorded(cls, built: Built) -> "EmbedderId":
        """What an index records; one recorded before providers (a model name only) was local."""
        return cls(built.provider or LOCAL, built.embedder, built.dim)


def refusal(built: Built | None, configured: EmbedderId) -> str | None:
    """Why an index built as ``built`` must not be used with the ``configured`` embedder, in one
    line naming both; None when it may (a new index, or the same provider, model and dimension).
    An older index that recorded no model name is compared by provider and dimension only."""
    if built is None:
        return None
    was = EmbedderId.recorded(built)
    same = (was.provider == configured.provider
            and (not built.embedder or not configured.model or built.embedder == configured.model)
            and (configured.dim is None or was.dim == configured.dim))
    if same:
        return None
    return (f"the index was built with {was.describe()} but CHATOPS_EMBEDDING_* configure {configured.describe()}; "
            "run `chatops index rebuild` or set them back")


class WrongEmbedder(ConfigError):
    """The index was built with another embedder than the configured one: never queried with it."""


def refuse_other_embedder(built: Built | None, configured: EmbedderId) -> None:
    """Raise ``WrongEmbedder`` (one line, naming both) when ``built`` is not ``configured``'s."""
    why = refusal(built, configured)
    if why:
        raise WrongEmbedder(why)
