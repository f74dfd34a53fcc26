"""bot/pacing.py: the per-channel token bucket in Redis, by the turns it hands out.

Most tests use a long interval (10 s) and look only at the reservations (the seconds until each
turn), never sleeping: the few milliseconds between two calls are far inside the tolerances.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from bot.pacing import ChannelPacer
from bot.settings import SlackSettings
from chatops.settings import ConfigError
from chatops_app.settings import load_settings

pytestmark = pytest.mark.redis

TEN = 10.0          # seconds per message in the reservation-only tests
CLOSE = 0.5         # how far a reservation may be from its exact turn (calls take milliseconds)


@pytest.fixture
def client(redis_client):
    return redis_client


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


def test_a_burst_goes_at_once_then_one_turn_per_interval(client, prefix):
    pacer = ChannelPacer(client, prefix, TEN, burst=3)
    waits = [pacer.reserve("C1") for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    for n, wait in enumerate(waits[3:], start=1):
        assert n * TEN - CLOSE < wait <= n * TEN, waits
    assert pacer.reserve("C2") == 0.0                      # another channel has its own bucket


def test_over_a_long_run_the_rate_is_one_per_interval(client, prefix):
    pacer = ChannelPacer(client, prefix, TEN, burst=3)
    waits = [pacer.reserve("C1") for _ in range(60)]
    gaps = [b - a for a, b in zip(waits[2:], waits[3:])]
    assert all(TEN - CLOSE < g <= TEN + CLOSE for g in gaps), gaps
    assert 57 * TEN - CLOSE < waits[-1] <= 57 * TEN       # 60 messages: 3 at once, 57 intervals


def test_burst_one_is_the_strict_spacing(client, prefix):
    pacer = ChannelPacer(client, prefix, TEN, burst=1)
    waits = [pacer.reserve("C1") for _ in range(3)]
    assert waits[0] == 0.0
    assert TEN - CLOSE < waits[1] <= TEN and 2 * TEN - CLOSE < waits[2] <= 2 * TEN


def test_concurrent_reservations_from_many_workers_are_each_a_turn_of_their_own(client, prefix):
    """Eight workers (each its own connection and pacer) reserve 10 turns each at once: 80 turns,
    three at once and then exactly one per interval: none lost, none shared, none skipped."""
    start = time.time()
    taken: list[float] = []
    lock = threading.Lock()

    def worker():
        pacer = ChannelPacer(redis.Redis.from_url("redis://127.0.0.1:6379/0"), prefix, TEN, burst=3)
        mine = []
        for _ in range(10):
            mine.append(time.time() + pacer.reserve("CBUSY"))
        assert mine == sorted(mine)                          # each worker's turns keep its order
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = sorted(t - start for t in taken)
    assert len(turns) == 80
    assert turns[2] < CLOSE                                  # the burst
    expected = [(n - 2) * TEN for n in range(3, 80)]
    assert all(abs(got - want) < CLOSE for got, want in zip(turns[3:], expected)), turns
    # never more than burst + rate * t in any window
    for i, first in enumerate(turns):
        for j in range(i, len(turns)):
            assert j - i + 1 <= 3 + (turns[j] - first + CLOSE) / TEN


def test_the_bucket_refills_with_time(client, prefix):
    pacer = ChannelPacer(client, prefix, 1.0, burst=3)
    assert [pacer.reserve("C1") for _ in range(3)] == [0.0, 0.0, 0.0]
    time.sleep(1.05)                                         # one message's worth back, a little more
    assert pacer.reserve("C1") == 0.0
    assert 0.4 < pacer.reserve("C1") < 1.0                   # the next one is not there yet


def test_an_idle_channel_gets_its_whole_burst_back(client, prefix):
    pacer = ChannelPacer(client, prefix, 0.5, burst=3)
    assert [pacer.reserve("C1") for _ in range(4)][3] > 0.3
    time.sleep(2.0)                                          # the schedule (now + 1.5 s) has passed
    waits = [pacer.reserve("C1") for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0.3


def test_wait_turn_sleeps_no_longer_than_max_wait(client, prefix):
    pacer = ChannelPacer(client, prefix, TEN, burst=1, max_wait=0.2)
    assert pacer.wait_turn("C1") == 0.0
    assert pacer.wait_turn("C1") == 0.2                      # its turn is 10 s out: capped
    assert 2 * TEN - CLOSE < pacer.reserve("C1") <= 2 * TEN   # the capped turn was still taken


def test_pace_zero_is_not_paced(client, prefix):
    pacer = ChannelPacer(client, prefix, 0.0, burst=3)
    assert [pacer.wait_turn("C1") for _ in range(10)] == [0.0] * 10
    assert list(client.scan_iter(f"{prefix}:*")) == []       # not even a key


def test_unreachable_redis_posts_now():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                            # bound, not listening: refused
        pacer = ChannelPacer(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1), "x", TEN)
        assert pacer.wait_turn("C1") == 0.0


def test_the_settings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)                              # no stray .env
    for name in ("CHATOPS_SLACK_CHANNEL_PACE", "CHATOPS_SLACK_CHANNEL_BURST"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings().of(SlackSettings)
    assert (s.slack_channel_pace, s.slack_channel_burst) == (1.0, 3)
    s = load_settings(CHATOPS_SLACK_CHANNEL_PACE="0.5", CHATOPS_SLACK_CHANNEL_BURST="5").of(SlackSettings)
    assert (s.slack_channel_pace, s.slack_channel_burst) == (0.5, 5)
    with pytest.raises(ConfigError, match="CHATOPS_SLACK_CHANNEL_BURST"):
        load_settings(CHATOPS_SLACK_CHANNEL_BURST="0")
    with pytest.raises(ValueError):
        ChannelPacer(None, "x", 1.0, burst=0)

