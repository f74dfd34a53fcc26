"""Shared by the embedding providers' tests: the BM25 model loaded once (every provider's sparse
side), and the embeddings stand-in."""

from __future__ import annotations

import pytest

from connectors.embeddings.sparse import Bm25
from standins.fake_embeddings import FakeEmbeddings

MODEL = "text-embedding-3-small"
KEY = "sk-embeddings-test-key"


@pytest.fixture(scope="session")
def bm25():
    return Bm25()


@pytest.fixture
def server():
    with FakeEmbeddings({MODEL: 1536, "bge-m3": 1024}, api_key=KEY) as fake:
        yield fake
