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

The file is read again when it changes: a look-up more than ``RECHECK_SECONDS`` after the last
look at it reads it and compares its hash, so an edit reaches the next question within a few
seconds, in every process, without a restart. The identity cache keys its entries by the
table's content (``cache_namespace``), so nothing cached for the previous version is served. A
changed file that cannot be read or is not valid refuses look-ups (``IdentityUnavailable``: the
question is refused) until it is fixed; serving the previous version instead would keep a
removal made in the same edit from applying.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path

import yaml

from chatops import metrics
from chatops.access import Principal
from chatops.errors import ConfigError, IdentityUnavailable
from chatops.groups import GroupNames
from chatops.settings import Settings
from connectors.identity.base import UnknownUser
from connectors.identity.directory_settings import DirectorySettings

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0     # a look-up reads the file again when it was last looked at this long ago


class _People:
    """One version of the directory: people by email, and the identity cache's namespace for it."""

    def __init__(self, users: list[dict], names: GroupNames):
        self.by_email: dict[str, Principal] = {}
        for i, entry in enumerate(users):
            if not isinstance(entry, dict) or not entry.get("email"):
                raise ConfigError(f"directory entry {i + 1} needs an 'email'")
            groups = entry.get("groups") or []
            if not isinstance(groups, list):
                raise ConfigError(f"directory entry {entry['email']}: 'groups' must be a list")
            p = Principal.of(
                entry["email"],
                names.resolve_all(groups, f"directory entry {entry['email']}: groups"),
                display_name=entry.get("name"), object_id=str(entry["id"]) if entry.get("id") else None,
            )
            self.by_email[p.email] = p
        # A changed file (or alias table) is never answered from entries cached for the previous one.
        content = json.dumps(sorted((p.email, sorted(p.groups), p.display_name or "", p.object_id or "")
                                    for p in self.by_email.values()))
        self.namespace = f"directory:{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def _users(data: bytes, path: Path) -> list[dict]:
    try:
        parsed = yaml.safe_load(data) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"directory file {path} is not valid YAML: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("users", []), list):
        raise ConfigError(f"directory file {path} must have a top-level 'users:' list")
    return parsed.get("users") or []


class DirectoryProvider:
    name = "directory"

    @classmethod
    def from_settings(cls, settings: Settings, http=None) -> "DirectoryProvider":
        path = settings.of(DirectorySettings).directory_file
        if not path:
            raise ConfigError("the directory provider needs CHATOPS_DIRECTORY_FILE")
        return cls.from_file(path, groups=settings.group_names)

    def __init__(self, users: list[dict], groups: GroupNames | None = None, *, path: Path | None = None,
                 digest: str | None = None, recheck: float = RECHECK_SECONDS):
        """``path``: the file ``users`` came from (with its ``digest``), read again when it changes."""
        self._names = groups or GroupNames()
        self._people = _People(users, self._names)
        self._path, self._digest, self._recheck = path, digest, recheck
        self._error: str | None = None
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, groups: GroupNames | None = None) -> "DirectoryProvider":
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"directory file {path} does not exist (CHATOPS_DIRECTORY_FILE)") from None
        return cls(_users(data, path), groups, path=path, digest=hashlib.sha256(data).hexdigest())

    @property
    def cache_namespace(self) -> str:
        """The identity cache's namespace for the directory as it is now."""
        return self._current().namespace

    def check(self) -> str:
        """``chatops doctor``: the file was read (opening it raised otherwise)."""
        return f"the directory file: {len(self._current().by_email)} people"

    def by_email(self, email: str) -> Principal:
        p = self._current().by_email.get(email.strip().lower())
        if p is None:
            raise UnknownUser(email)
        return p

    # -- re-reading the file ---------------------------------------------------------------

    def _current(self) -> _People:
        with self._lock:
            if self._path is not None and time.monotonic() - self._checked_at >= self._recheck:
                self._checked_at = time.monotonic()
                self._reread()
            if self._error is not None:
                raise IdentityUnavailable(self._error)
            return self._people

    def _reread(self) -> None:
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            self._digest = None
            self._failed(f"directory file {self._path} cannot be read: {exc.strerror or type(exc).__name__}")
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return          # unchanged (a version that failed stays failed, reported once)
        self._digest = digest
        try:
            self._people = _People(_users(data, self._path), self._names)
        except ConfigError as exc:
            self._failed(str(exc))
            return
        self._error = None
        metrics.DIRECTORY_RELOADS.labels(outcome="reloaded").inc()
        log.info("directory file changed: read again", extra={"people": len(self._people.by_email)})

    def _failed(self, error: str) -> None:
        if error != self._error:
            metrics.DIRECTORY_RELOADS.labels(outcome="failed").inc()
            log.error("directory file changed and cannot be used: questions are refused until it is fixed",
                      extra={"error": error})
        self._error = error
