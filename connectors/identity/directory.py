"""A YAML directory for development and small teams.

    users:
      - email: ana@example.com
        name: Ana Lima           # optional
        groups: [engineering, sre]

People are found by email, as with every provider (the chat side supplies it). A
``slack_id`` in an entry is accepted and ignored: a Slack user is matched by the email
of their Slack profile.

Groups are matched as written, after the ``groups:`` alias table of
``CHATOPS_CONFIG`` (an alias listed here becomes its id, as it does in an ACL).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from chatops.access import Principal
from chatops.errors import ConfigError
from chatops.groups import GroupNames
from chatops.settings import Settings
from connectors.identity.base import UnknownUser


class DirectoryProvider:
    name = "directory"

    @staticmethod
    def configured(s: Settings) -> bool:
        return bool(s.directory_file)

    @classmethod
    def from_settings(cls, s: Settings, http=None) -> "DirectoryProvider":
        if not s.directory_file:
            raise ConfigError("the directory provider needs CHATOPS_DIRECTORY_FILE")
        return cls.from_file(s.directory_file, groups=s.group_names)

    def __init__(self, users: list[dict], groups: GroupNames | None = None):
        names = groups or GroupNames()
        self._by_email: dict[str, Principal] = {}
        for i, entry in enumerate(users):
            if not isinstance(entry, dict) or not entry.get("email"):
                raise ConfigError(f"directory entry {i + 1} needs an 'email'")
            groups = entry.get("groups") or []
            if not isinstance(groups, list):
                raise ConfigError(f"directory entry {entry['email']}: 'groups' must be a list")
            p = Principal.of(
                entry["email"],
                names.resolve_all(groups, f"directory entry {entry['email']}: groups"),
                display_name=entry.get("name"),
            )
            self._by_email[p.email] = p
        # The identity cache's namespace: a changed file (or alias table) is never answered from
        # entries cached for the previous one.
        content = json.dumps(sorted((p.email, sorted(p.groups), p.display_name or "")
                                    for p in self._by_email.values()))
        self.cache_namespace = f"directory:{hashlib.sha256(content.encode()).hexdigest()[:12]}"

    @classmethod
    def from_file(cls, path: Path, groups: GroupNames | None = None) -> "DirectoryProvider":
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"directory file {path} does not exist (CHATOPS_DIRECTORY_FILE)") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"directory file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("users", []), list):
            raise ConfigError(f"directory file {path} must have a top-level 'users:' list")
        return cls(data.get("users") or [], groups)

    def check(self) -> str:
        """``chatops doctor``: the file was read (opening it raised otherwise)."""
        return f"the directory file: {len(self._by_email)} people"

    def by_email(self, email: str) -> Principal:
        p = self._by_email.get(email.strip().lower())
        if p is None:
            raise UnknownUser(email)
        return p
