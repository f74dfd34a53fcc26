"""CHATOPS_RERANK and its settings: the registry builds the named reranker, and every mistake
stops the start with one line naming the variable and what to set."""

from __future__ import annotations

import pytest

from chatops.errors import ConfigError
from chatops_app.settings import load_settings
from connectors.rerank.http import HttpReranker
from connectors.rerank.llm import LlmReranker
from connectors.rerank.registry import RERANKERS, build_reranker
from connectors.rerank.settings import HttpRerankSettings, RerankSettings, rerank_version


class _Model:   # an LLM is only handed over, never called, when building
    model = "m"


def test_none_is_the_default_and_builds_nothing():
    assert build_reranker(load_settings(), _Model()) is None
    assert set(RERANKERS) == {"none", "http", "llm"}


def test_http_and_llm_are_built_from_their_settings():
    http = build_reranker(load_settings(CHATOPS_RERANK="HTTP", CHATOPS_RERANK_URL="http://r:8080/rerank",
                                        CHATOPS_RERANK_MODEL="bge", CHATOPS_RERANK_CANDIDATES="30",
                                        CHATOPS_RERANK_TIMEOUT="1.5"), None)
    assert isinstance(http, HttpReranker)
    assert (http.url, http.model, http.candidates, http.timeout) == ("http://r:8080/rerank", "bge", 30, 1.5)
    llm = build_reranker(load_settings(CHATOPS_RERANK="llm"), _Model())
    assert isinstance(llm, LlmReranker) and llm.candidates == 20 and llm.model is None


@pytest.mark.parametrize("overrides,message", [
    ({"CHATOPS_RERANK": "cohere"}, "CHATOPS_RERANK: unknown reranker 'cohere' (known: none, http, llm)"),
    ({"CHATOPS_RERANK": "http"}, "CHATOPS_RERANK=http needs CHATOPS_RERANK_URL"),
    ({"CHATOPS_RERANK": "llm", "_llm": None}, "CHATOPS_RERANK=llm needs a language model"),
])
def test_a_reranker_that_cannot_be_built_is_named_in_one_line(overrides, message):
    llm = overrides.pop("_llm", _Model())
    with pytest.raises(ConfigError) as failed:
        build_reranker(load_settings(**overrides), llm)
    assert str(failed.value).startswith(message) and "\n" not in str(failed.value)


@pytest.mark.parametrize("name,value", [
    ("CHATOPS_RERANK_URL", "reranker:8080/rerank"), ("CHATOPS_RERANK_TIMEOUT", "0"),
    ("CHATOPS_RERANK_TIMEOUT", "soon"), ("CHATOPS_RERANK_CANDIDATES", "1"), ("CHATOPS_RERANK_CANDIDATES", "500"),
])
def test_a_bad_value_stops_the_start_in_one_line_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as failed:
        load_settings(**{name: value})
    assert name in str(failed.value) and "\n" not in str(failed.value)


def test_the_cache_version_names_what_shapes_the_ranking():
    def version(**env):
        return rerank_version(RerankSettings.read(env), HttpRerankSettings.read(env), "gpt-4o-mini")
    assert version() == "none"
    assert version(CHATOPS_RERANK="llm") == "llm|gpt-4o-mini|20"
    assert version(CHATOPS_RERANK="http", CHATOPS_RERANK_URL="http://r/rerank", CHATOPS_RERANK_MODEL="bge") \
        == "http|bge|http://r/rerank|20"
