"""The settings every process loads at start: the core's and every plugin's, read once.

Each plugin declares its settings model in its registry (connectors/*/registry.py: the
registry's own ``SETTINGS``, and an entry's ``settings``); Slack's is ``bot/settings.py``. They
are listed here from their own modules, which import nothing but pydantic: the index and model
registries import qdrant-client and the openai SDK, which the web process never loads.
``tests/unit/test_settings_reference.py`` checks that this list and the registries agree, and
that every variable they read is documented.
"""

from __future__ import annotations

from typing import Any

from bot.settings import SlackSettings
from chatops.settings import PluginSettings, Settings
from connectors.identity.directory_settings import DirectorySettings
from connectors.microsoft.settings import EntraSettings
from connectors.identity.registry import group_ids_are_object_ids
from connectors.identity.settings import IdentitySettings
from connectors.embeddings.settings import EmbeddingSettings, OnnxDirSettings, OpenAIEmbeddingSettings
from connectors.index.settings import IndexSettings
from connectors.llm.openai_settings import OpenAISettings
from connectors.llm.settings import LLMSettings
from connectors.rerank.settings import HttpRerankSettings, RerankSettings
from connectors.sources.settings import SourceSettings
from connectors.tools.settings import ToolSettings

PLUGIN_SETTINGS: tuple[type[PluginSettings], ...] = (
    SlackSettings,
    IdentitySettings, EntraSettings, DirectorySettings,
    IndexSettings, EmbeddingSettings, OpenAIEmbeddingSettings, OnnxDirSettings,
    LLMSettings, OpenAISettings,
    RerankSettings, HttpRerankSettings,
    SourceSettings,
    ToolSettings,
)

# Every model whose fields are read from the environment.
SETTINGS_MODELS: tuple[type, ...] = (Settings, *PLUGIN_SETTINGS)


def load_settings(**overrides: Any) -> Settings:
    """The process's settings: every model read now (a bad value stops the start, in one line),
    configured group names held to the identity provider's rule. ``overrides`` by variable name."""
    return Settings.load(*PLUGIN_SETTINGS, object_ids=group_ids_are_object_ids, **overrides)
