"""The ``onnx_dir`` provider with the installed MiniLM folder as the operator's directory: read
from disk, pooled and normalised as declared (mean + normalised gives what the local provider
gives for the same model), its prefixes applied, and one-line errors for what is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from chatops.errors import ConfigError
from chatops_app.settings import load_settings
from connectors.embeddings.local import LocalEmbedder
from connectors.embeddings.onnx_dir import OnnxDirEmbedder
from connectors.embeddings.registry import build_embedder, configured
from connectors.index.models import default_model_dir

TEXTS = ["How do I restart the billing service?", "Expenses are reimbursed at the end of each month.",
         "VPN: connect with the corporate client and your badge number."]


@pytest.fixture(scope="module")
def local():
    return LocalEmbedder()


def test_mean_pooled_and_normalised_it_is_the_local_model(local):
    mine = OnnxDirEmbedder(default_model_dir(), pooling="mean", normalize=True, name="minilm-from-my-dir")
    assert mine.dim == 384 and mine.provider == "onnx_dir" and mine.name == "minilm-from-my-dir"
    ours, theirs = np.asarray(mine.embed_dense(TEXTS)), np.asarray(local.embed_dense(TEXTS))
    assert np.allclose((ours * theirs).sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    dense, sparse = mine.embed_query(TEXTS[0])
    assert float(np.dot(dense, local.embed_query(TEXTS[0])[0])) > 0.9999
    assert sparse == local.embed_query(TEXTS[0])[1]                  # the same local BM25


def test_pooling_normalisation_and_prefixes_are_what_is_declared():
    cls = OnnxDirEmbedder(default_model_dir(), pooling="cls", normalize=False)
    mean = OnnxDirEmbedder(default_model_dir(), pooling="mean", normalize=False)
    a, b = np.asarray(cls.embed_dense(TEXTS[:1])[0]), np.asarray(mean.embed_dense(TEXTS[:1])[0])
    assert abs(np.linalg.norm(a) - 1.0) > 0.01                         # not normalised
    assert float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)) < 0.99   # another pooling
    prefixed = OnnxDirEmbedder(default_model_dir(), pooling="mean", query_prefix="query: ",
                               document_prefix="passage: ")
    assert np.allclose(prefixed.embed_query("vpn")[0], mean_norm(prefixed, "query: vpn"), atol=1e-5)
    assert np.allclose(prefixed.embed_dense(["vpn"])[0], mean_norm(prefixed, "passage: vpn"), atol=1e-5)


def mean_norm(embedder: OnnxDirEmbedder, text: str):
    return embedder._run([text])[0]


def test_the_settings_build_it_and_say_what_is_missing(tmp_path):
    def settings(**env):
        return load_settings(CHATOPS_EMBEDDING_PROVIDER="onnx_dir", **env)

    with pytest.raises(ConfigError, match="needs CHATOPS_EMBEDDING_DIR"):
        configured(settings())
    empty = tmp_path / "bge-small"
    empty.mkdir()
    shutil.copy(default_model_dir() / "tokenizer.json", empty / "tokenizer.json")
    with pytest.raises(ConfigError, match=r"bge-small has no model.onnx \(export the model with Optimum"):
        configured(settings(CHATOPS_EMBEDDING_DIR=str(empty)))
    with pytest.raises(ConfigError, match="needs CHATOPS_EMBEDDING_POOLING: mean or cls"):
        configured(settings(CHATOPS_EMBEDDING_DIR=str(default_model_dir())))
    with pytest.raises(ConfigError, match="CHATOPS_EMBEDDING_POOLING"):
        load_settings(CHATOPS_EMBEDDING_POOLING="max")
    s = settings(CHATOPS_EMBEDDING_DIR=str(default_model_dir()), CHATOPS_EMBEDDING_POOLING="mean")
    assert configured(s).describe() == "onnx_dir:all-MiniLM-L6-v2-int8"
    built = build_embedder(s)
    assert (built.provider, built.name, built.dim) == ("onnx_dir", "all-MiniLM-L6-v2-int8", 384)
