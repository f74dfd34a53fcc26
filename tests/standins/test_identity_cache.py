"""CachedProvider over a DirectoryProvider with the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops.access import Principal
from chatops.errors import IdentityUnavailable
from connectors.identity.base import UnknownUser
from connectors.identity.cached import CachedProvider
from connectors.identity.directory import DirectoryProvider

pytestmark = pytest.mark.redis

try:
    redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
except redis.RedisError as exc:
    pytest.skip(f"needs a Redis server on 127.0.0.1:6379 ({type(exc).__name__})", allow_module_level=True)

DIRECTORY = [
    {"email": "Ana@Example.com", "slack_id": "UANA", "groups": ["engineering", "sre"], "name": "Ana"},
    {"email": "ben@example.com", "groups": ["hr"]},
]


class Counting:
    """Wraps a provider, counting what reaches it; ``fail`` makes the next calls unavailable."""

    def __init__(self, inner):
        self.inner, self.name, self.calls, self.fail = inner, inner.name, [], 0

    def _call(self, kind, arg):
        self.calls.append((kind, arg))
        if self.fail:
            self.fail -= 1
            raise IdentityUnavailable("directory down")
        return getattr(self.inner, kind)(arg)

    def by_email(self, email):
        return self._call("by_email", email)


@pytest.fixture
def r():
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    yield client
    client.close()


@pytest.fixture
def prefix(r):
    prefix = f"test-standins-{uuid.uuid4().hex[:10]}"
    yield prefix
    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)


@pytest.fixture
def inner():
    return Counting(DirectoryProvider(DIRECTORY))


def test_second_lookup_is_served_from_the_cache(r, prefix, inner):
    cache = CachedProvider(inner, r, prefix=prefix, ttl=900)
    first = cache.by_email("ana@example.com")
    second = cache.by_email("  ANA@example.com ")  # same person, same key
    assert first == second == Principal("ana@example.com", frozenset({"engineering", "sre"}), None, "Ana")
    assert inner.calls == [("by_email", "ana@example.com")]
    key = f"{prefix}:identity:v2:directory:email:ana@example.com"
    assert json.loads(r.get(key))["groups"] == ["engineering", "sre"]
    assert 800 < r.ttl(key) <= 900


def test_unknown_users_are_cached_only_briefly(r, prefix, inner):
    cache = CachedProvider(inner, r, prefix=prefix, ttl=900, negative_ttl=1)
    for _ in range(2):
        with pytest.raises(UnknownUser):
            cache.by_email("ghost@example.com")
    assert len(inner.calls) == 1  # the miss was remembered...
    assert 0 < r.pttl(f"{prefix}:identity:v2:directory:email:ghost@example.com") <= 1000

    # ...only until negative_ttl passes: then someone just added to the directory gets in.
    inner.inner = DirectoryProvider(DIRECTORY + [{"email": "ghost@example.com", "groups": ["new"]}])
    time.sleep(1.1)
    assert cache.by_email("ghost@example.com").groups == {"new"}
    assert len(inner.calls) == 2


def test_provider_errors_are_not_cached(r, prefix, inner):
    cache = CachedProvider(inner, r, prefix=prefix)
    inner.fail = 1
    with pytest.raises(IdentityUnavailable):
        cache.by_email("ben@example.com")
    assert list(r.scan_iter(f"{prefix}:*")) == []
    assert cache.by_email("ben@example.com").groups == {"hr"}  # asked again, not a cached failure
    assert cache.by_email("ben@example.com").groups == {"hr"}
    assert len(inner.calls) == 2


def test_redis_down_falls_through_to_the_provider(inner):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # No client-side retries: redis-py's default (3 retries, backoff) costs ~3 s per command.
    dead = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cache = CachedProvider(inner, dead, prefix="unused")
    assert cache.by_email("ben@example.com").groups == {"hr"}
    with pytest.raises(UnknownUser):
        cache.by_email("nobody@example.com")
    assert len(inner.calls) == 2
