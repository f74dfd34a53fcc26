"""The rules the composition root used to hold, now use cases: the answer cache's version, which
sources take Graph's notifications and their subscriptions, the worker's gauges, the doctor's
checks of the shared services, the console's sign-in links, the consumer's staleness."""

from __future__ import annotations

import hashlib

import pytest

from chatops import metrics
from chatops.checks import CheckFailed, CheckWarning, NotConfigured
from chatops.errors import ConfigError
from connectors.sources.registry import SOURCES, takes_notifications
from usecases import doctor_checks as check
from usecases.answer import SYSTEM_PROMPT
from usecases.answer_cache import answer_version
from usecases.gauges import refresh_worker_gauges
from usecases.notifications import client_state, notify_url
from usecases.subscriptions import notifications_ready, renew_subscriptions
from workers.health import TICK_S, consumer_stale_after, web_ready

# -- the answer cache's version ---------------------------------------------------------------

VERSION = dict(model="gpt-4o-mini", small_model=None, route_min_similarity=0.6, route_margin=0.1, top_k=6,
               candidates=50, min_similarity=0.3, retrieval="feedback", dense_weight=0.95,
               embedding_model=None, max_tokens=800, with_model=True)


def test_the_answer_version_is_the_hash_of_what_shapes_an_answer():
    parts = ("gpt-4o-mini", None, 0.6, 0.1, SYSTEM_PROMPT, 6, 50, 0.3, "feedback", 0.95, None, 800, True)
    assert answer_version(**VERSION) == hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@pytest.mark.parametrize("field,value", [
    ("model", "gpt-4o"), ("small_model", "gpt-4o-mini"), ("route_min_similarity", 0.7), ("route_margin", 0.2),
    ("top_k", 5), ("candidates", 40), ("min_similarity", 0.2), ("retrieval", "hybrid"), ("dense_weight", 0.9),
    ("embedding_model", "BAAI/bge-small-en-v1.5"), ("max_tokens", 400), ("with_model", False)])
def test_any_change_starts_a_new_cache(field, value):
    assert answer_version(**{**VERSION, field: value}) != answer_version(**VERSION)
    assert answer_version(**VERSION) == answer_version(**dict(VERSION))   # and nothing else does


def test_a_reranker_starts_a_new_cache_and_none_keeps_the_old_one():
    assert answer_version(**VERSION, rerank="none") == answer_version(**VERSION)
    http = answer_version(**VERSION, rerank="http|bge-reranker|http://r/rerank|20")
    assert http != answer_version(**VERSION)
    assert http != answer_version(**VERSION, rerank="http|bge-reranker|http://r/rerank|30")
    assert http != answer_version(**VERSION, rerank="llm|gpt-4o-mini|20")


# -- Graph's notifications ----------------------------------------------------------------------

SP, FS = {"kind": "sharepoint"}, {"kind": "filesystem", "path": "/srv"}


def test_the_registry_says_which_kinds_take_notifications():
    assert {name for name, kind in SOURCES.items() if kind.notifications} == {"sharepoint"}
    assert takes_notifications(SP) and not takes_notifications(FS) and not takes_notifications({"kind": "nope"})


@pytest.mark.parametrize("url,secret,sources,ready", [
    ("https://bot.example", "s3cret", [SP], True),
    ("https://bot.example", "s3cret", [FS, SP], True),
    ("https://bot.example", "s3cret", [FS], False),      # no source of a kind that takes them
    ("https://bot.example", "s3cret", [], False),
    (None, "s3cret", [SP], False),                       # nowhere to deliver them
    ("https://bot.example", None, [SP], False),          # nothing to sign them with
    ("https://bot.example", "", [SP], False)])
def test_notifications_are_ready_with_a_url_a_secret_and_a_source_that_takes_them(url, secret, sources, ready):
    assert notifications_ready(url, secret, sources) is ready


class Watching:
    def __init__(self, name):
        self.name = name

    def watch(self, url, state):
        return {"url": url, "state": state}


def test_renewing_every_source_opens_only_those_that_take_notifications():
    opened = []

    def open_source(name):
        opened.append(name)
        return Watching(name)

    sources = {"docs": FS, "team": SP, "hr": SP}
    done = renew_subscriptions("*", sources, open_source, public_url="https://bot.example/", secret="k")
    assert opened == ["hr", "team"]
    assert done == {name: {"url": notify_url("https://bot.example/", name), "state": client_state("k", name)}
                    for name in ("hr", "team")}
    assert renew_subscriptions("docs", sources, open_source, public_url="https://bot.example", secret="k") == {}
    assert renew_subscriptions("team", sources, open_source, public_url="https://bot.example", secret="k") == {
        "team": {"url": notify_url("https://bot.example", "team"), "state": client_state("k", "team")}}


def test_nothing_is_renewed_where_notifications_are_not_set_up():
    def never(name):
        raise AssertionError("opened")

    assert renew_subscriptions("*", {"team": SP}, never, public_url=None, secret="k") == {}
    assert renew_subscriptions("*", {"team": SP}, never, public_url="https://bot.example", secret=None) == {}
    assert renew_subscriptions("*", {"docs": FS}, never, public_url="https://bot.example", secret="k") == {}


def test_a_name_not_configured_is_the_openers_error():
    def open_source(name):
        raise ConfigError(f"no source named {name!r}")

    with pytest.raises(ConfigError):
        renew_subscriptions("gone", {"team": SP}, open_source, public_url="https://bot.example", secret="k")


# -- the worker's gauges ------------------------------------------------------------------------

@pytest.mark.parametrize("embedded,opened,counted", [(False, False, True), (True, True, True), (True, False, False)])
def test_an_embedded_index_is_counted_only_where_it_is_open(embedded, opened, counted):
    calls = []
    metrics.INDEX_POINTS.set(-1)
    refresh_worker_gauges(queue_depths=lambda: calls.append("queues"), index_embedded=embedded, index_opened=opened,
                          index_count=lambda: calls.append("count") or 42, freshness=lambda: calls.append("fresh"))
    assert calls == ["queues", *(["count"] if counted else []), "fresh"]
    assert metrics.INDEX_POINTS._value.get() == (42 if counted else -1)


def test_without_sources_no_freshness_is_read():
    calls = []
    refresh_worker_gauges(queue_depths=lambda: calls.append("queues"), index_embedded=True, index_opened=False,
                          index_count=lambda: 0)
    assert calls == ["queues"]


# -- liveness -----------------------------------------------------------------------------------

def test_a_consumer_is_stale_after_half_the_workers_window_and_at_least_three_ticks():
    assert consumer_stale_after(120.0) == 60.0
    assert consumer_stale_after(10.0) == 3 * TICK_S


def test_the_web_process_is_not_ready_without_redis():
    class Down:
        def ping(self):
            raise ConnectionError("refused")

    assert web_ready(Down(), "chatops", "chatops", 60.0) == (False, "redis unavailable: ConnectionError")


# -- the doctor's checks of the shared services --------------------------------------------------

def test_the_configuration_check():
    with pytest.raises(NotConfigured):
        check.configuration(None, sources=0, actions=0, aliases=0)
    assert check.configuration("/etc/chatops.yml", sources=2, actions=1, aliases=3) == \
        "/etc/chatops.yml: 2 source(s), 1 action(s), 3 group alias(es)"


def test_a_url_is_shown_without_its_password():
    assert check.safe_url("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"
    assert check.safe_url("redis://user:pw@cache/1") == "redis://user:***@cache/1"
    assert check.safe_url("redis://cache:6379") == "redis://cache:6379"


def test_the_redis_check_hides_the_password():
    class Up:
        def info(self, section):
            return {"redis_version": "7.2.4"}

    class Down:
        def info(self, section):
            raise ConnectionError

    assert check.redis(Up(), "redis://:pw@cache:6379") == "redis://:***@cache:6379 (Redis 7.2.4)"
    with pytest.raises(CheckFailed, match=r"cannot reach Redis at redis://:\*\*\*@cache:6379 \(ConnectionError\)"):
        check.redis(Down(), "redis://:pw@cache:6379")


def test_the_model_check():
    with pytest.raises(NotConfigured, match="answers quote passages"):
        check.model(None, provider="openai", small_model=None)
    with pytest.raises(NotConfigured, match="the local provider has no check"):
        check.model(object(), provider="local", small_model=None)

    class Model:
        def check(self, models):
            return f"ok {models}"

    assert check.model(Model(), provider="openai", small_model="mini") == "ok ('mini',)"
    assert check.model(Model(), provider="openai", small_model=None) == "ok ()"


def test_notifications_need_https():
    with pytest.raises(CheckFailed, match="HTTPS URLs only"):
        check.notifications("http://bot.example", lambda: "roles")
    assert check.notifications("https://bot.example", lambda: "Subscription.Read.All; more") == \
        "Subscription.Read.All; https://bot.example"


def test_a_source_is_closed_after_its_check():
    class Source:
        closed = False

        def check(self):
            raise CheckFailed("down", "fix")

        def close(self):
            Source.closed = True

    with pytest.raises(CheckFailed):
        check.source(Source)
    assert Source.closed


def test_the_workers_check():
    with pytest.raises(NotConfigured):
        check.workers([], stale_after=60, needed=False)
    with pytest.raises(CheckFailed, match="no worker seen in the last 60 s; the last one 90 s ago"):
        check.workers([("w1", 90.0)], stale_after=60, needed=True)
    assert check.workers([("w1", 3.0), ("w2", 30.0), ("w3", 99.0)], stale_after=60, needed=True) == \
        "2 alive (w1 3 s ago, w2 30 s ago)"


def test_the_beat_check():
    assert check.beat(10.0, interval=30.0, has_sources=True, has_slack=True) == "seen 10 s ago"
    with pytest.raises(CheckFailed, match="chatops beat never seen: the sources are not synced"):
        check.beat(None, interval=30.0, has_sources=True, has_slack=True)
    with pytest.raises(CheckWarning, match="last seen 100 s ago"):
        check.beat(100.0, interval=30.0, has_sources=False, has_slack=True)
    with pytest.raises(NotConfigured, match="no sources and no Slack"):
        check.beat(None, interval=30.0, has_sources=False, has_slack=False)
