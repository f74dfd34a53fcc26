"""The directory provider's setting: the YAML file of people (connectors/identity/directory.py)."""

from __future__ import annotations

from pathlib import Path

from chatops.settings import PluginSettings, env


class DirectorySettings(PluginSettings):
    directory_file: Path | None = env("CHATOPS_DIRECTORY_FILE")

    @property
    def configured(self) -> bool:
        return bool(self.directory_file)
