"""The index registry's settings: which engine, where its data is, the collection.

Every engine in the registry is Qdrant's (its engine in process, qdrant-client's local mode, a
server), so they share these; ``QDRANT_URL`` selects the server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator

from chatops.settings import PluginSettings, env


class IndexSettings(PluginSettings):
    qdrant_url: str | None = env("QDRANT_URL")
    qdrant_path: Path | None = env("QDRANT_PATH")
    qdrant_api_key: SecretStr | None = env("QDRANT_API_KEY")
    collection: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_COLLECTION"))
    # The embedded engine when QDRANT_URL is not set (connectors/index/registry.py): "edge" (Qdrant's
    # own engine in-process: HNSW, payload indexes) or "local" (qdrant-client's local mode).
    index_engine: str = Field(default="edge", validation_alias=AliasChoices("CHATOPS_INDEX_ENGINE"))
    # Seconds between two looks at which generation of the index is active (a stat of active.json,
    # or the server's alias): a running process follows `chatops index switch` within this.
    index_switch_poll: float = Field(default=2.0, gt=0, le=300,
                                     validation_alias=AliasChoices("CHATOPS_INDEX_SWITCH_POLL"))

    @model_validator(mode="after")
    def _one_place(self) -> "IndexSettings":
        if self.qdrant_url and self.qdrant_path:
            raise ValueError("set QDRANT_URL or QDRANT_PATH, not both")
        return self

    def path(self, data_dir: Path) -> Path:
        """Folder of the embedded index (used when no QDRANT_URL is set)."""
        return self.qdrant_path or (data_dir / "index")

    def location(self, data_dir: Path) -> str:
        """Where the index is, as people are told: the server's URL or the embedded folder."""
        return self.qdrant_url or str(self.path(data_dir))
