"""chatops.settings: environment -> typed Settings, and each plugin's own settings beside it
(loaded together at start by chatops_app/settings.py)."""

from pathlib import Path

import pytest

from bot.settings import SlackSettings
from chatops.settings import ConfigError, FileConfig, PluginSettings, Settings, env, load_file_config
from chatops_app.settings import load_settings
from connectors.identity.directory_settings import DirectorySettings
from connectors.microsoft.settings import EntraSettings
from connectors.identity.registry import provider_for
from connectors.index.settings import IndexSettings
from connectors.llm.openai_settings import OpenAISettings
from connectors.llm.registry import provider_for as llm_provider_for
from connectors.llm.settings import LLMSettings
from tests.settings_env import clear_settings_env, settings_env_names

ENV_NAMES = settings_env_names()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    clear_settings_env(monkeypatch)
    monkeypatch.chdir(tmp_path)   # no stray .env or relative paths from the repo


def test_documented_env_names_are_the_aliases():
    documented = {
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "REDIS_URL", "QDRANT_URL",
        "QDRANT_PATH", "QDRANT_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATOPS_LLM_MODEL",
        "CHATOPS_CONFIG", "CHATOPS_DATA_DIR", "CHATOPS_DIRECTORY_FILE", "ENTRA_TENANT_ID",
        "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "CHATOPS_TOP_K", "CHATOPS_CANDIDATES",
    }
    assert documented <= ENV_NAMES


def test_defaults_without_environment():
    s = load_settings()
    index = s.of(IndexSettings)
    assert s.of(SlackSettings).slack_bot_token is None
    assert index.qdrant_url is None and index.qdrant_path is None
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.of(LLMSettings).llm_model == "gpt-4o-mini"
    assert s.top_k == 6 and s.candidates == 50
    assert index.path(s.data_dir) == Path(".data") / "index"
    assert not s.of(OpenAISettings).configured and llm_provider_for(s) is None
    assert s.file == FileConfig()


def test_env_names_map_to_fields(monkeypatch, tmp_path):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-abc",
        "SLACK_SIGNING_SECRET": "signsecret",
        "SLACK_APP_TOKEN": "xapp-1-abc",
        "REDIS_URL": "redis://redis:6379/3",
        "QDRANT_URL": "http://qdrant:6333",
        "QDRANT_API_KEY": "qkey",
        "CHATOPS_COLLECTION": "docs",
        "OPENAI_API_KEY": "sk-testkey123456",
        "OPENAI_BASE_URL": "http://llm:8080/v1",
        "CHATOPS_LLM_MODEL": "llama-3",
        "CHATOPS_LLM_TIMEOUT": "12.5",
        "CHATOPS_TOP_K": "4",
        "CHATOPS_CANDIDATES": "40",
        "CHATOPS_MIN_SIMILARITY": "0.25",
        "CHATOPS_DATA_DIR": str(tmp_path / "data"),
        "CHATOPS_DIRECTORY_FILE": str(tmp_path / "dir.yml"),
        "CHATOPS_IDENTITY_PROVIDER": "directory",
        "CHATOPS_LOG_LEVEL": "DEBUG",
        "CHATOPS_LOG_FORMAT": "text",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    slack, index, server, llm = s.of(SlackSettings), s.of(IndexSettings), s.of(OpenAISettings), s.of(LLMSettings)
    assert slack.slack_bot_token.get_secret_value() == "xoxb-1-abc"
    assert slack.slack_signing_secret.get_secret_value() == "signsecret"
    assert slack.slack_app_token.get_secret_value() == "xapp-1-abc"
    assert s.redis_url == "redis://redis:6379/3"
    assert index.qdrant_url == "http://qdrant:6333"
    assert index.qdrant_api_key.get_secret_value() == "qkey"
    assert index.collection == "docs"
    assert server.openai_api_key.get_secret_value() == "sk-testkey123456"
    assert server.openai_base_url == "http://llm:8080/v1"
    assert llm.llm_model == "llama-3"
    assert llm.llm_timeout == 12.5
    assert s.top_k == 4 and s.candidates == 40
    assert s.min_similarity == 0.25
    assert s.data_dir == tmp_path / "data"
    assert s.of(DirectorySettings).directory_file == tmp_path / "dir.yml"
    assert provider_for(s).name == "directory"
    assert s.log_level == "DEBUG" and s.log_format == "text"
    assert server.configured and llm_provider_for(s).name == "openai"


def test_field_names_are_not_env_names(monkeypatch):
    # Only the documented names configure chatops; generic names other tools use must not.
    monkeypatch.setenv("LLM_MODEL", "wrong")
    monkeypatch.setenv("DATA_DIR", "/somewhere/else")
    s = load_settings()
    assert s.of(LLMSettings).llm_model == "gpt-4o-mini"
    assert s.data_dir == Path(".data")


def test_unrelated_file_env_var_is_ignored(monkeypatch):
    monkeypatch.setenv("FILE", "/tmp/whatever.txt")
    assert Settings.load().file == FileConfig()


def test_qdrant_path_sets_index_path(monkeypatch, tmp_path):
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "idx"))
    s = load_settings()
    assert s.of(IndexSettings).path(s.data_dir) == tmp_path / "idx"


def test_qdrant_url_and_path_together_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "idx"))
    with pytest.raises(ConfigError, match="QDRANT_URL or QDRANT_PATH"):
        load_settings()


@pytest.mark.parametrize("top_k,candidates", [("0", "10"), ("10", "5")])
def test_candidates_must_cover_top_k(monkeypatch, top_k, candidates):
    monkeypatch.setenv("CHATOPS_TOP_K", top_k)
    monkeypatch.setenv("CHATOPS_CANDIDATES", candidates)
    with pytest.raises(ConfigError, match="CHATOPS_CANDIDATES"):
        Settings.load()


def test_bad_value_is_a_config_error(monkeypatch):
    monkeypatch.setenv("CHATOPS_TOP_K", "many")
    with pytest.raises(ConfigError):
        Settings.load()
    monkeypatch.setenv("CHATOPS_TOP_K", "6")
    monkeypatch.setenv("CHATOPS_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError):
        Settings.load()


def test_config_file_loaded(monkeypatch, tmp_path):
    cfg = tmp_path / "chatops.yml"
    cfg.write_text("sources:\n  - path: /srv/docs\nactions: []\n")
    monkeypatch.setenv("CHATOPS_CONFIG", str(cfg))
    s = Settings.load()
    assert s.config_file == cfg
    assert s.file.sources == [{"path": "/srv/docs"}]


def test_config_file_unknown_top_level_key_is_named(monkeypatch, tmp_path):
    cfg = tmp_path / "chatops.yml"
    cfg.write_text("sources: []\nsorces:\n  - path: /srv\n")
    monkeypatch.setenv("CHATOPS_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="sorces") as info:
        Settings.load()
    assert str(cfg) in str(info.value)


def test_config_file_missing_or_invalid(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_file_config(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file_config(bad)
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_file_config(scalar)
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert load_file_config(empty) == FileConfig()


def test_secrets_do_not_appear_in_repr_or_str(monkeypatch):
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-SECRET-bot",
        "SLACK_SIGNING_SECRET": "SECRET-signing",
        "SLACK_APP_TOKEN": "xapp-SECRET-app",
        "QDRANT_API_KEY": "SECRET-qdrant",
        "OPENAI_API_KEY": "sk-SECRET-openai",
        "ENTRA_CLIENT_SECRET": "SECRET-entra",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    models = [s, s.of(SlackSettings), s.of(IndexSettings), s.of(OpenAISettings), s.of(EntraSettings)]
    dumped = "".join(repr(m) + str(m) + repr(m.model_dump()) for m in models)
    for v in secrets.values():
        assert v not in dumped
    assert s.of(EntraSettings).entra_client_secret.get_secret_value() == "SECRET-entra"


def test_secret_not_in_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-SECRET-in-error")
    monkeypatch.setenv("QDRANT_URL", "http://q")
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "SECRET" not in str(info.value)


def test_identity_provider_resolution(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="no identity provider"):
        provider_for(Settings.load())
    monkeypatch.setenv("CHATOPS_DIRECTORY_FILE", str(tmp_path / "d.yml"))
    assert provider_for(Settings.load()).name == "directory"
    monkeypatch.setenv("ENTRA_TENANT_ID", "t")
    monkeypatch.setenv("ENTRA_CLIENT_ID", "c")
    assert provider_for(Settings.load()).name == "entra"


def test_overrides_by_env_name_win_over_environment(monkeypatch):
    monkeypatch.setenv("CHATOPS_LLM_MODEL", "from-env")
    monkeypatch.setenv("QDRANT_URL", "http://q")
    s = load_settings(CHATOPS_LLM_MODEL="local", CHATOPS_TOP_K=2, CHATOPS_CANDIDATES=3, QDRANT_URL=None)
    assert (s.of(LLMSettings).llm_model, s.top_k, s.candidates, s.of(IndexSettings).qdrant_url) == ("local", 2, 3, None)


def test_a_plugin_read_after_load_takes_the_same_overrides(monkeypatch):
    monkeypatch.setenv("CHATOPS_LLM_MODEL", "from-env")
    s = Settings.load(CHATOPS_LLM_MODEL="local")          # the core only: plugins are read on first use
    assert s.of(LLMSettings).llm_model == "local"
    assert s.of(LLMSettings) is s.of(LLMSettings)          # once per process


def test_every_bad_value_is_named_in_one_line():
    with pytest.raises(ConfigError) as info:
        load_settings(CHATOPS_TOP_K="many", CHATOPS_LLM_TIMEOUT="soon", CHATOPS_SLACK_CHANNEL_BURST="0")
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in ("CHATOPS_TOP_K", "CHATOPS_LLM_TIMEOUT", "CHATOPS_SLACK_CHANNEL_BURST"))
    settings = Settings.load(CHATOPS_LLM_TIMEOUT="soon")              # the core only: the model is read later
    with pytest.raises(ConfigError, match="^CHATOPS_LLM_TIMEOUT: "):   # with the same error
        settings.of(LLMSettings)


class _Example(PluginSettings):
    url: str | None = env("CHATOPS_EXAMPLE_URL")


def test_a_plugin_model_reads_its_variables_and_nothing_else(monkeypatch):
    monkeypatch.setenv("CHATOPS_EXAMPLE_URL", "https://example.test")
    monkeypatch.setenv("URL", "https://wrong.test")
    assert Settings.load().of(_Example).url == "https://example.test"
    assert Settings.load(CHATOPS_EXAMPLE_URL=None).of(_Example).url is None


def test_group_names_follow_the_identity_provider(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("groups: {sre: Site Reliability}\n")
    assert load_settings(CHATOPS_CONFIG=str(config)).group_names.resolve("sre", "acl") == "Site Reliability"
    with pytest.raises(ConfigError, match=r"groups\.sre"):      # with Entra, group names are object ids
        load_settings(CHATOPS_CONFIG=str(config), ENTRA_TENANT_ID="t", ENTRA_CLIENT_ID="c")
