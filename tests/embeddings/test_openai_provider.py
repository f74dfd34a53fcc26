"""The ``openai`` provider through the real openai SDK against the loopback /v1/embeddings stand-in:
order across batches, batch size and concurrency, ``dimensions``, retries on 429 (Retry-After) and
5xx, timeouts, the one-line errors (a dimension that differs, a refused key, an unknown model), and
Azure OpenAI with a key and with an Entra token of the app."""

from __future__ import annotations

import base64
import struct
import time

import pytest
import requests

from chatops.errors import ConfigError, TransientError
from connectors.embeddings.base import DimensionMismatch, EmbeddingRefused, EmbeddingUnavailable
from connectors.embeddings.openai_embeddings import OpenAIEmbedder
from standins.fake_embeddings import CognitiveServices, FakeEmbeddings, vector
from standins.fake_entra import FakeEntra
from tests.embeddings.conftest import KEY, MODEL


def embedder(server, bm25, **kwargs) -> OpenAIEmbedder:
    options = dict(base_url=server.base_url, api_key=KEY, sparse=bm25, max_retries=3, timeout=5.0)
    return OpenAIEmbedder(kwargs.pop("model", MODEL), **{**options, **kwargs})


def test_vectors_come_back_in_order_in_batches_of_the_batch_size(server, bm25):
    e = embedder(server, bm25, batch_size=4, concurrency=3)
    assert e.dim == 1536 and e.provider == "openai" and e.name == MODEL
    texts = [f"passage number {i} about topic {i % 3}" for i in range(10)]
    server.requests.clear()
    dense, sparse = e.embed_documents(texts)
    assert sorted(server.batch_sizes) == [2, 4, 4]
    assert [round(x, 6) for x in dense[7]] == [round(x, 6) for x in vector(texts[7], 1536)]
    assert len(sparse) == 10 and all(s.indices for s in sparse)        # BM25, local, for every text
    assert {r["encoding_format"] for r in server.requests} == {"base64"}   # the SDK's default, decoded
    assert {r["dimensions"] for r in server.requests} == {None}            # not sent unless set
    q_dense, q_sparse = e.embed_query("passage number 7")
    assert len(q_dense) == 1536 and q_sparse.indices


def test_dimensions_are_sent_when_set(server, bm25):
    e = embedder(server, bm25, dimensions=256)
    assert e.dim == 256 and server.requests == []           # declared: no probe at start
    assert len(e.embed_query("vpn")[0]) == 256
    assert server.requests[-1]["dimensions"] == 256


def test_batches_run_in_parallel_up_to_the_concurrency(server, bm25):
    texts = [f"text {i}" for i in range(16)]
    e = embedder(server, bm25, batch_size=2, concurrency=3, dimensions=64)
    server.delay = 0.2
    start = time.monotonic()
    e.embed_dense(texts)
    elapsed = time.monotonic() - start
    assert server.max_in_flight == 3                      # 8 batches, never more than 3 at once
    assert 0.6 <= elapsed < 1.6                            # ceil(8 / 3) rounds of 0.2 s
    one = embedder(server, bm25, batch_size=2, concurrency=1, dimensions=64)
    server.max_in_flight = 0
    one.embed_dense(texts[:6])
    assert server.max_in_flight == 1


def test_a_429_is_retried_after_the_time_it_says(server, bm25):
    e = embedder(server, bm25, dimensions=64)
    server.fail_next(1, 429, retry_after=1)
    start = time.monotonic()
    assert len(e.embed_query("retry me")[0]) == 64
    assert time.monotonic() - start >= 1.0               # Retry-After: 1 honoured
    assert [r["status"] for r in server.requests] == [429, 200]


def test_5xx_is_retried_then_given_up_as_transient(server, bm25):
    e = embedder(server, bm25, dimensions=64, max_retries=2)
    server.fail_next(2, 500)
    assert len(e.embed_dense(["a", "b"])) == 2
    assert [r["status"] for r in server.requests] == [500, 500, 200]
    server.fail_next(3, 503)
    with pytest.raises(EmbeddingUnavailable) as caught:
        e.embed_dense(["c"])
    assert isinstance(caught.value, TransientError)      # a task is tried again later
    assert "did not answer after retries" in str(caught.value) and "\n" not in str(caught.value)


def test_a_slow_server_times_out(server, bm25):
    e = embedder(server, bm25, dimensions=64, timeout=0.3, max_retries=0)
    server.delay = 1.5
    start = time.monotonic()
    with pytest.raises(EmbeddingUnavailable):
        e.embed_query("slow")
    assert time.monotonic() - start < 1.4


def test_a_dimension_that_differs_is_one_clear_line(server, bm25):
    declared = embedder(server, bm25, dimensions=256)
    server.wrong_dim = 300
    with pytest.raises(DimensionMismatch) as caught:
        declared.embed_query("vpn")
    message = str(caught.value)
    assert "returned 300-dimensional vectors" in message and "256 are expected" in message
    assert "CHATOPS_EMBEDDING_DIMENSIONS" in message and "\n" not in message
    server.wrong_dim = None
    probed = embedder(server, bm25)                     # 1536 from its first answer
    server.wrong_dim = 768                              # then the server's model changes
    with pytest.raises(DimensionMismatch, match="returned 768-dimensional vectors .* 1536 are expected"):
        probed.embed_dense(["x"])
    assert isinstance(caught.value, ConfigError)


def test_a_refused_key_and_an_unknown_model_are_one_line_each(server, bm25):
    with pytest.raises(EmbeddingRefused, match=r"refused the key \(401\); set CHATOPS_EMBEDDING_API_KEY"):
        embedder(server, bm25, api_key="sk-wrong")
    with pytest.raises(EmbeddingRefused, match=r"has no model 'text-embedding-9' \(404\)"):
        embedder(server, bm25, model="text-embedding-9")
    with pytest.raises(EmbeddingRefused, match=r"refused the request \(400: This model does not support"):
        embedder(server, bm25, model="bge-m3", dimensions=256).embed_query("x")
    assert [r["status"] for r in server.requests] == [404, 400]   # 401 before the body is read; none retried


def test_the_stand_in_answers_float_and_base64_as_openai_does(server):
    for fmt in ("float", "base64"):
        reply = requests.post(f"{server.base_url}/embeddings", headers={"Authorization": f"Bearer {KEY}"},
                              json={"model": MODEL, "input": ["hello world", "second"], "encoding_format": fmt,
                                    "dimensions": 8}, timeout=5).json()
        assert reply["object"] == "list" and reply["model"] == MODEL
        assert reply["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
        first = reply["data"][0]
        assert first["object"] == "embedding" and first["index"] == 0
        got = first["embedding"] if fmt == "float" else \
            list(struct.unpack("<8f", base64.b64decode(first["embedding"])))
        assert got == pytest.approx(vector("hello world", 8), abs=1e-6)
    wrong = requests.post(f"{server.base_url}/embeddings", headers={"Authorization": "Bearer nope"},
                          json={"model": MODEL, "input": "x"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_azure_openai_with_an_api_key(bm25):
    with FakeEmbeddings(api_key="azure-key") as azure:
        e = OpenAIEmbedder("my-embedding-deployment", base_url=azure.origin, api_key="azure-key",
                           azure_api_version="2024-10-21", sparse=bm25, max_retries=0)
        assert e.dim == 384
        assert azure.requests[-1]["path"] == "/openai/deployments/my-embedding-deployment/embeddings"
    with pytest.raises(ConfigError, match="Azure OpenAI needs CHATOPS_EMBEDDING_URL"):
        OpenAIEmbedder("d", azure_api_version="2024-10-21", api_key="k", sparse=bm25)


def test_azure_openai_with_an_entra_token_of_the_app(bm25):
    """The app's credential gets a token for the Cognitive Services scope from Entra (msal, the
    real token endpoint's shape), cached: one token request for many embedding requests."""
    from chatops_app.settings import load_settings
    from connectors.embeddings.registry import build_embedder

    cognitive = CognitiveServices()
    with FakeEntra() as entra, FakeEmbeddings(bearer_check=cognitive.accepts) as azure:
        entra.extend(cognitive)
        settings = load_settings(
            CHATOPS_EMBEDDING_PROVIDER="openai", CHATOPS_EMBEDDING_MODEL="embeddings-deployment",
            CHATOPS_EMBEDDING_URL=azure.origin, CHATOPS_EMBEDDING_AZURE_API_VERSION="2024-10-21",
            CHATOPS_EMBEDDING_AZURE_ENTRA="true", CHATOPS_EMBEDDING_MAX_RETRIES="0",
            ENTRA_TENANT_ID=entra.tenant_id, ENTRA_CLIENT_ID=entra.client_id, ENTRA_CLIENT_SECRET=entra.client_secret,
            CHATOPS_IDENTITY_PROVIDER="directory")
        e = build_embedder(settings, entra.session())
        e.embed_dense(["one", "two"])
        e.embed_query("three")
        assert [r["status"] for r in azure.requests] == [200, 200, 200]
        assert cognitive.checked == 3 and entra.token_requests == 1
        wrong = build_embedder(load_settings(
            CHATOPS_EMBEDDING_PROVIDER="openai", CHATOPS_EMBEDDING_MODEL="embeddings-deployment",
            CHATOPS_EMBEDDING_URL=azure.origin, CHATOPS_EMBEDDING_AZURE_API_VERSION="2024-10-21",
            CHATOPS_EMBEDDING_AZURE_ENTRA="true", CHATOPS_EMBEDDING_DIMENSIONS="384",
            ENTRA_TENANT_ID=entra.tenant_id, ENTRA_CLIENT_ID=entra.client_id, ENTRA_CLIENT_SECRET="not-it",
            CHATOPS_IDENTITY_PROVIDER="directory"), entra.session())
        with pytest.raises(EmbeddingRefused, match=r"no Entra token for Azure OpenAI: .*invalid_client"):
            wrong.embed_query("x")


def test_the_doctor_says_what_the_server_refused(server, bm25, tmp_path):
    from chatops.checks import CheckFailed
    from usecases import doctor_checks

    e = embedder(server, bm25, dimensions=64)            # declared: nothing asked at start
    server.api_key = "sk-rotated"
    with pytest.raises(CheckFailed) as caught:
        doctor_checks.index(lambda: e, lambda: None, embedded=lambda: True, path=tmp_path, where=str(tmp_path))
    assert "refused the key (401)" in str(caught.value)


def test_bad_settings_stop_the_start_in_one_line():
    from chatops_app.settings import load_settings
    from connectors.embeddings.registry import build_embedder, configured

    with pytest.raises(ConfigError, match=r"CHATOPS_EMBEDDING_PROVIDER: unknown provider 'cohere' \(known: local, "
                                          r"openai, onnx_dir\)"):
        configured(load_settings(CHATOPS_EMBEDDING_PROVIDER="cohere"))
    with pytest.raises(ConfigError, match="CHATOPS_EMBEDDING_PROVIDER=openai needs CHATOPS_EMBEDDING_MODEL"):
        configured(load_settings(CHATOPS_EMBEDDING_PROVIDER="openai"))
    for name, value in (("CHATOPS_EMBEDDING_DIMENSIONS", "many"), ("CHATOPS_EMBEDDING_CONCURRENCY", "0"),
                        ("CHATOPS_EMBEDDING_TIMEOUT", "-1")):
        with pytest.raises(ConfigError, match=name) as caught:
            load_settings(**{name: value})
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="CHATOPS_EMBEDDING_AZURE_ENTRA needs the Entra app"):
        build_embedder(load_settings(CHATOPS_EMBEDDING_PROVIDER="openai", CHATOPS_EMBEDDING_MODEL="d",
                                     CHATOPS_EMBEDDING_URL="https://x.openai.azure.com",
                                     CHATOPS_EMBEDDING_AZURE_API_VERSION="2024-10-21",
                                     CHATOPS_EMBEDDING_AZURE_ENTRA="true", CHATOPS_IDENTITY_PROVIDER="directory"))
