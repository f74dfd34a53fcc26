"""A Redis cache in front of any identity provider.

Hits are kept for ``ttl`` seconds; unknown users for a short ``negative_ttl``
so a newly added person is not locked out for long. Provider errors are never
cached. A Redis failure falls through to the provider: the cache may make
things faster, never less correct.

So a change in the directory reaches answers within ``ttl`` (``CHATOPS_IDENTITY_TTL``)
at most, unless the provider names the version it serves (``cache_namespace``, asked
on every look-up): the YAML directory does, and entries of an older version are never
read again.
"""

from __future__ import annotations

import json
import logging

import redis

from chatops import keys
from chatops.access import Principal
from connectors.identity.base import IdentityProvider, UnknownUser

log = logging.getLogger(__name__)

_UNKNOWN = {"unknown": True}


class CachedProvider:
    def __init__(self, inner: IdentityProvider, client: redis.Redis, *, prefix: str,
                 ttl: int = 900, negative_ttl: int = 60):
        self.inner = inner
        self.name = inner.name
        self._redis = client
        # v2 (chatops/keys.py): groups are object ids only (v1 entries also held display names; never read them).
        self._prefix = prefix
        self._ttl = ttl
        self._negative_ttl = negative_ttl

    def by_email(self, email: str) -> Principal:
        return self._cached(f"email:{email.strip().lower()}", lambda: self.inner.by_email(email))

    def _namespace(self) -> str:
        """A provider may name the version it serves (the directory file: one per content)."""
        return getattr(self.inner, "cache_namespace", self.inner.name)

    def _cached(self, key: str, load) -> Principal:
        full = keys.identity(self._prefix, self._namespace(), key)
        try:
            raw = self._redis.get(full)
        except redis.RedisError as exc:
            log.warning("identity cache unavailable", extra={"error": type(exc).__name__})
            raw = None
        if raw is not None:
            try:
                data = json.loads(raw)
                if data.get("unknown"):
                    raise UnknownUser(key.split(":", 1)[1])
                return Principal(data["email"], frozenset(data["groups"]), data.get("slack_user_id"),
                                 data.get("display_name"), data.get("object_id"))
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("unreadable identity cache entry; asking the provider", extra={"key": key})
        try:
            p = load()
        except UnknownUser:
            self._store(full, _UNKNOWN, self._negative_ttl)
            raise
        self._store(full, {"email": p.email, "groups": sorted(p.groups),
                           "slack_user_id": p.slack_user_id, "display_name": p.display_name,
                           "object_id": p.object_id}, self._ttl)
        return p

    def _store(self, key: str, value: dict, ttl: int) -> None:
        try:
            self._redis.set(key, json.dumps(value), ex=ttl)
        except redis.RedisError as exc:
            log.warning("identity cache write failed", extra={"error": type(exc).__name__})
