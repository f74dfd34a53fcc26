"""An index built with one embedder is never queried or written with another: the index records
provider, model and dimension when its collection is created; every process that opens it (``chatops
ask``, ``ingest``, ``sources sync``, the worker) refuses another at start-up in one line naming
both, and ``chatops doctor`` shows the same line. An index recorded before providers (a model name
only) still opens for the local default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatops.errors import ConfigError
from chatops_app.container import Container
from chatops_app.settings import load_settings
from connectors.embeddings.base import EmbedderId, refusal
from connectors.embeddings.local import DEFAULT_EMBEDDING_MODEL
from connectors.index.base import EMBEDDER_FILE, Built, read_built
from connectors.index.edge_index import EdgeIndex
from connectors.index.qdrant_index import QdrantIndex
from standins.fake_embeddings import FakeEmbeddings
from tests.ingest_helpers import HashEmbedder
from usecases import doctor_checks

MINILM = EmbedderId("local", DEFAULT_EMBEDDING_MODEL, 384)
OPENAI = EmbedderId("openai", "text-embedding-3-small", 1536)
EXPECTED = ("the index was built with openai:text-embedding-3-small (1536 dims) but CHATOPS_EMBEDDING_* configure "
            "local:sentence-transformers/all-MiniLM-L6-v2 (384 dims); run `chatops index rebuild` or set them back")


def test_the_rule_names_both():
    assert refusal(Built("text-embedding-3-small", 1536, "openai"), MINILM) == EXPECTED
    assert refusal(Built("text-embedding-3-small", 1536, "openai"), OPENAI) is None
    assert refusal(None, OPENAI) is None                                      # a new index
    assert refusal(Built(DEFAULT_EMBEDDING_MODEL, 384), MINILM) is None       # recorded before providers
    assert "built with local:sentence-transformers" in refusal(Built(DEFAULT_EMBEDDING_MODEL, 384), OPENAI)
    assert "(256 dims)" in refusal(Built("text-embedding-3-small", 256, "openai"), OPENAI)   # same model, shortened
    assert refusal(Built("m", 384, "onnx_dir"), EmbedderId("onnx_dir", "m", None)) is None  # dim not yet known


def test_engines_record_the_provider(tmp_path):
    edge = EdgeIndex(path=tmp_path / "edge", dim=8, embedder="bge-m3", provider="openai")
    edge.ensure_collection()
    assert edge.built_with() == Built("bge-m3", 8, "openai")
    edge.close()
    assert read_built(tmp_path / "edge") == Built("bge-m3", 8, "openai")
    local = QdrantIndex.local(path=tmp_path / "local", dim=8, embedder="bge-m3", provider="onnx_dir")
    local.ensure_collection()
    assert local.built_with() == Built("bge-m3", 8, "onnx_dir")
    local.close()


def old_index(folder: Path, model: str, dim: int) -> None:
    """An index as chatops recorded it before providers: {"embedder", "dim"} only."""
    index = EdgeIndex(path=folder, dim=dim, embedder=model)
    index.ensure_collection()
    index.close()
    (folder / EMBEDDER_FILE).write_text(json.dumps({"embedder": model, "dim": dim}))


def test_an_index_recorded_before_providers_opens_for_the_local_default(tmp_path):
    old_index(tmp_path / "data" / "index", DEFAULT_EMBEDDING_MODEL, 384)
    container = Container(load_settings(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_IDENTITY_PROVIDER="directory"))
    container.check_index_embedder()
    assert container.index.built_with() == Built(DEFAULT_EMBEDDING_MODEL, 384)
    container.index.close()


def test_the_container_refuses_to_open_it_with_another_embedder(tmp_path):
    old_index(tmp_path / "data" / "index", DEFAULT_EMBEDDING_MODEL, 384)
    with FakeEmbeddings() as server:
        settings = load_settings(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_IDENTITY_PROVIDER="directory",
                                 CHATOPS_EMBEDDING_PROVIDER="openai", CHATOPS_EMBEDDING_MODEL="nomic-embed-text",
                                 CHATOPS_EMBEDDING_URL=server.base_url)
        container = Container(settings)
        expected = ("the index was built with local:sentence-transformers/all-MiniLM-L6-v2 (384 dims) but "
                    "CHATOPS_EMBEDDING_* configure openai:nomic-embed-text")
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            container.check_index_embedder()        # before anything loads: no request
        assert server.requests == []
        with pytest.raises(ConfigError) as caught:
            container.index                          # noqa: B018 - and whoever opens it anyway
        assert str(caught.value).startswith(expected + " (384 dims); run `chatops index rebuild`")
        # the index is let go: the right embedder opens it in this process
        again = Container(load_settings(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_IDENTITY_PROVIDER="directory"))
        again.index.close()


def test_the_doctor_shows_the_same_line(tmp_path):
    folder = tmp_path / "index"
    index = EdgeIndex(path=folder, dim=8, embedder="text-embedding-3-small", provider="openai")
    index.ensure_collection()
    index.close()
    embedder = HashEmbedder()   # a local embedder of 8 dimensions, unnamed

    def opened():
        from connectors.embeddings.base import refuse_other_embedder
        idx = EdgeIndex(path=folder, dim=8)
        refuse_other_embedder(idx.built_with(), EmbedderId.of(embedder))
        return idx

    with pytest.raises(doctor_checks.CheckFailed) as caught:
        doctor_checks.index(lambda: embedder, opened, embedded=lambda: True, path=folder, where=str(folder))
    assert caught.value.args[0] == (f"{folder}: the index was built with openai:text-embedding-3-small (8 dims) but "
                                    "CHATOPS_EMBEDDING_* configure local:an unnamed model (8 dims)")
    assert caught.value.fix == "run `chatops index rebuild` or set them back"


@pytest.mark.parametrize("command", [("ask", "How do I connect to the VPN?", "--as", "ana@northwind.example"),
                                     ("ingest", "CORPUS"), ("sources", "sync", "handbook"), ("worker",),
                                     ("worker", "ENGINE=local")],
                         ids=["ask", "ingest", "sync", "worker", "worker-local-engine"])
def test_processes_refuse_at_start_in_one_line(tmp_path, command):
    """``chatops ask``, ``ingest``, ``sources sync`` and ``worker`` as their own processes: exit 2, one line
    (the worker also on qdrant-client's local mode, which keeps its record inside the index)."""
    engine = "local" if "ENGINE=local" in command else "edge"
    command = tuple(a for a in command if not a.startswith("ENGINE="))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "vpn.md").write_text("# VPN\n\nConnect with the corporate client.\n")
    (tmp_path / "corpus" / ".acl.yml").write_text('- match: "**"\n  public: true\n')
    (tmp_path / "chatops.yml").write_text(f"sources:\n  - name: handbook\n    kind: filesystem\n"
                                          f"    path: {tmp_path / 'corpus'}\n")
    folder = tmp_path / "data" / "index"
    opener = EdgeIndex if engine == "edge" else QdrantIndex.local
    index = opener(path=folder, dim=1536, embedder="text-embedding-3-small", provider="openai")
    index.ensure_collection()
    index.close()
    names = {k for k in os.environ if k.startswith(("CHATOPS_", "OPENAI_", "QDRANT_", "ENTRA_", "SLACK_"))}
    env = {**{k: v for k, v in os.environ.items() if k not in names},
           "CHATOPS_DATA_DIR": str(tmp_path / "data"), "CHATOPS_IDENTITY_PROVIDER": "directory",
           "CHATOPS_DIRECTORY_FILE": str(Path(__file__).resolve().parents[2] / "demo" / "directory.yml"),
           "REDIS_URL": "redis://127.0.0.1:6379/0", "CHATOPS_KEY_PREFIX": f"chatops-test-refusal-{os.getpid()}",
           # a worker that did start (the failure) consumes a queue of its own, and is stopped
           "CHATOPS_QUEUE": f"chatops-test-refusal-{os.getpid()}",
           "CHATOPS_CONFIG": str(tmp_path / "chatops.yml"), "CHATOPS_INDEX_ENGINE": engine}
    args = [a.replace("CORPUS", str(tmp_path / "corpus")) for a in command]
    done = subprocess.run([str(Path(sys.executable).parent / "chatops"), *args], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {EXPECTED}"


def test_a_worker_starts_before_its_qdrant_server_and_checks_when_it_opens(tmp_path):
    """A Qdrant server that is not up yet (compose starts them together) does not stop the start;
    the index is checked when it is opened."""
    settings = load_settings(CHATOPS_DATA_DIR=str(tmp_path), CHATOPS_IDENTITY_PROVIDER="directory",
                             QDRANT_URL="http://127.0.0.1:9")
    Container(settings).check_index_embedder()       # nothing to compare yet: no error
