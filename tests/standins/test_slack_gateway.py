"""SlackGateway with the real slack_sdk WebClient against the loopback Slack Web API."""

from __future__ import annotations

import re
import threading

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.gateway import SlackGateway, SlackTransientError, make_client
from bot.people import SlackPeople
from standins.fake_slack import block_actions_body, event_body, sign

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}},
          {"type": "context", "elements": [{"type": "mrkdwn", "text": "from the docs"}]}]


@pytest.fixture
def gateway(fake_slack) -> SlackGateway:
    return SlackGateway(make_client("xoxb-test", fake_slack.url, retries=2))


def test_post_and_update_a_threaded_message(gateway, fake_slack):
    ts = gateway.post("C1", {"text": "hello", "blocks": BLOCKS}, thread_ts="1699999999.000001")
    assert re.fullmatch(r"\d{10}\.\d{6}", ts)
    [posted] = fake_slack.calls_to("chat.postMessage")
    assert posted["channel"] == "C1"
    assert posted["thread_ts"] == "1699999999.000001"
    assert posted["text"] == "hello"
    assert posted["blocks"] == BLOCKS
    assert posted["unfurl_links"] is False and posted["unfurl_media"] is False
    assert fake_slack.calls[0]["headers"]["authorization"] == "Bearer xoxb-test"

    gateway.update("C1", ts, {"text": "done", "blocks": BLOCKS[:1]})
    [updated] = fake_slack.calls_to("chat.update")
    assert (updated["channel"], updated["ts"], updated["text"]) == ("C1", ts, "done")
    assert updated["blocks"] == BLOCKS[:1]


def test_post_without_thread_or_blocks_sends_neither(gateway, fake_slack):
    first = gateway.post("C1", {"text": "one"})
    second = gateway.post("C1", {"text": "two"})
    assert second > first  # distinct, increasing timestamps
    params = fake_slack.calls_to("chat.postMessage")[0]
    assert "thread_ts" not in params and "blocks" not in params


def test_ephemeral_and_dm(gateway, fake_slack):
    gateway.post_ephemeral("C1", "UANA", {"text": "only you", "blocks": BLOCKS}, thread_ts="1.2")
    [eph] = fake_slack.calls_to("chat.postEphemeral")
    assert (eph["channel"], eph["user"], eph["thread_ts"], eph["blocks"]) == ("C1", "UANA", "1.2", BLOCKS)
    assert gateway.open_dm("UANA") == "DUANA"
    assert fake_slack.calls_to("conversations.open") == [{"users": "UANA"}]


def test_members_are_paged_through(gateway, fake_slack):
    assert gateway.members("CFIVE") == ["U1", "U2", "U3", "U4", "U5"]
    calls = fake_slack.calls_to("conversations.members")
    assert len(calls) == 3  # the fake returns at most 2 per page, whatever the limit
    assert "cursor" not in calls[0] and calls[1]["cursor"] and calls[2]["cursor"]


def test_members_of_unknown_channel(gateway):
    with pytest.raises(SlackApiError) as err:
        gateway.members("CNOPE")
    assert err.value.response["error"] == "channel_not_found"


@pytest.fixture
def state():
    import uuid

    import redis

    from chatops.state import State

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-gw-{uuid.uuid4().hex[:8]}"
    yield State(client, prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_email_and_is_bot_share_one_users_info_and_one_cache(gateway, fake_slack, state):
    people = SlackPeople(gateway, state)
    assert people.someone("UANA").email == "ana@example.com"
    assert people.is_bot("UANA") is False
    assert people.is_bot("UAPP") is True
    assert people.is_bot("USLACKBOT") is True
    # Another process (its own SlackPeople) reads the same record from Redis.
    assert SlackPeople(gateway, state).someone("UANA").email == "ana@example.com"
    assert [p["user"] for p in fake_slack.calls_to("users.info")] == ["UANA", "UAPP"]


def test_an_unknown_user_has_no_email(gateway, state):
    someone = SlackPeople(gateway, state).someone("UGONE")
    assert someone.email is None and not someone.external


def _count(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_rate_limit_is_retried_by_the_sdk(gateway, fake_slack):
    limited = _count("chatops_slack_rate_limited_total")
    ok = _count("chatops_slack_api_calls_total", method="chat_postMessage", outcome="ok")
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0)
    ts = gateway.post("C1", {"text": "hello"})
    assert ts
    attempts = fake_slack.calls_to("chat.postMessage")
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    # the 429 is counted, and the call once, by its final outcome
    assert _count("chatops_slack_rate_limited_total") == limited + 1
    assert _count("chatops_slack_api_calls_total", method="chat_postMessage", outcome="ok") == ok + 1


def test_persistent_server_errors_are_transient(gateway, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=500, count=10)
    with pytest.raises(SlackTransientError, match="500"):
        gateway.post("C1", {"text": "hello"})
    assert len(fake_slack.calls_to("chat.postMessage")) == 3  # first try + 2 retries


def test_persistent_rate_limit_is_transient(fake_slack):
    gateway = SlackGateway(make_client("xoxb-test", fake_slack.url, retries=0))
    fake_slack.fail_next("chat.update", status=429, retry_after=0, count=5)
    before = _count("chatops_slack_api_calls_total", method="chat_update", outcome="rate_limited")
    with pytest.raises(SlackTransientError, match="429"):
        gateway.update("C1", "1.2", {"text": "x"})
    assert _count("chatops_slack_api_calls_total", method="chat_update", outcome="rate_limited") == before + 1


def test_unreachable_slack_is_transient(fake_slack):
    gateway = SlackGateway(make_client("xoxb-test", fake_slack.url, retries=0))
    fake_slack.stop()
    with pytest.raises(SlackTransientError, match="unreachable"):
        gateway.post("C1", {"text": "hello"})


# -- The other direction: what the fake builds for Slack -> app is what Bolt accepts --------------

def test_signed_event_and_block_action_bodies_pass_bolt(fake_slack):
    app = App(client=WebClient(token="xoxb-test", base_url=fake_slack.url), signing_secret="s3cret")
    seen, done = [], threading.Event()

    @app.event("app_mention")
    def on_mention(event, context):
        seen.append(("mention", event["text"], context.bot_user_id))
        done.set()

    @app.action("answer_in_dm")
    def on_click(ack, body):
        seen.append(("click", body["user"]["id"], body["container"]["is_ephemeral"]))
        ack()  # dispatch() returns once acked

    event = {"type": "app_mention", "user": "UANA", "channel": "C1", "text": "<@UBOT> hi", "ts": "1.2"}
    body = event_body(event, event_id="Ev1")
    assert app.dispatch(BoltRequest(body=body.decode(), headers=sign(body, "s3cret"))).status == 200
    assert done.wait(5)

    body = block_actions_body("UANA", "C1", {"action_id": "answer_in_dm", "value": "q1"})
    assert app.dispatch(BoltRequest(body=body.decode(), headers=sign(body, "s3cret"))).status == 200
    stale = sign(body, "s3cret", timestamp=1_600_000_000)
    assert app.dispatch(BoltRequest(body=body.decode(), headers=stale)).status == 401
    assert app.dispatch(BoltRequest(body=body.decode(), headers=sign(body, "wrong"))).status == 401
    assert seen == [("mention", "<@UBOT> hi", "UBOT"), ("click", "UANA", True)]
    assert fake_slack.calls_to("auth.test")  # Bolt verified the token against the fake


# -- Slack's one message per second per channel, with short bursts (bot/pacing.py) ----------------

GAP = 0.3           # seconds per message once the burst of 3 is out
JITTER = 0.1        # how much later than its turn a post may reach the stand-in on a busy machine


@pytest.fixture
def pacer(state):
    from bot.pacing import ChannelPacer

    return ChannelPacer(state.redis, state.prefix, interval=GAP, burst=3)


def _post_at_once(fake_slack, pacer, channel: str, posters: int, each: int = 1) -> list[float]:
    """``posters`` workers (each its own client) post ``each`` messages into ``channel`` at once:
    when Slack received them, in order."""
    def poster(i: int) -> None:
        gateway = SlackGateway(make_client("xoxb-test", fake_slack.url), pacer=pacer)
        for n in range(each):
            gateway.post(channel, {"text": f"answer {i}.{n}"})

    threads = [threading.Thread(target=poster, args=(i,)) for i in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(c["at"] for c in fake_slack.calls
                  if c["method"] == "chat.postMessage" and c["params"].get("channel") == channel)


def test_a_burst_of_three_goes_at_once_and_the_fourth_waits_an_interval(fake_slack, pacer):
    """Five workers post into one channel at once: three go out together, then one per interval;
    a post to another channel meanwhile goes at once, not behind the busy channel's queue."""
    elsewhere = SlackGateway(make_client("xoxb-test", fake_slack.url), pacer=pacer)
    quiet = threading.Timer(0.05, elsewhere.post, args=("CQUIET", {"text": "elsewhere"}))
    quiet.start()
    busy = _post_at_once(fake_slack, pacer, "CBUSY", 5)
    quiet.join()
    [at] = [c["at"] for c in fake_slack.calls if c["params"].get("channel") == "CQUIET"]
    assert len(busy) == 5
    assert busy[2] - busy[0] < GAP - JITTER, busy                       # the burst, together
    assert busy[3] - busy[0] >= GAP - JITTER, busy                      # the 4th: one interval on
    assert busy[4] - busy[3] >= GAP - JITTER, busy                      # and one more
    assert at < busy[3]                                                 # CQUIET did not wait its turn


def test_many_posters_never_exceed_the_burst_plus_the_rate(fake_slack, pacer):
    """Six workers post three messages each into one channel: all 18 arrive, and in no stretch of
    time t does Slack see more than 3 + t / interval of them."""
    times = _post_at_once(fake_slack, pacer, "CBUSY", posters=6, each=3)
    assert len(times) == 18
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 3 + (times[j] - first + JITTER) / GAP, (i, j, times)
    assert times[-1] - times[0] >= 15 * GAP - JITTER                    # 18 messages: 15 intervals at least


def test_only_new_messages_are_paced(fake_slack, state):
    """Updates, ephemeral messages, views and reads take no turn and never wait for one."""
    from bot.pacing import ChannelPacer

    slow = ChannelPacer(state.redis, state.prefix, interval=5.0, burst=1)
    gateway = SlackGateway(make_client("xoxb-test", fake_slack.url), pacer=slow)
    ts = gateway.post("C1", {"text": "working"})                        # the only turn of the bucket
    gateway.update("C1", ts, {"text": "the answer"})
    gateway.post_ephemeral("C1", "UANA", {"text": "only you"})
    gateway.open_view("trigger-1", {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []})
    gateway.open_dm("UANA")
    gateway.members("CFIVE")
    methods = [c["method"] for c in fake_slack.calls]
    assert methods[:5] == ["chat.postMessage", "chat.update", "chat.postEphemeral", "views.open",
                           "conversations.open"]
    assert fake_slack.calls[-1]["at"] - fake_slack.calls[0]["at"] < 2.5  # none waited the 5 s turn
    assert 4.0 < slow.reserve("C1") <= 5.0                              # one turn taken: the post's


def test_pace_zero_does_not_pace(fake_slack, state):
    from bot.pacing import ChannelPacer

    off = ChannelPacer(state.redis, state.prefix, interval=0, burst=3)
    times = _post_at_once(fake_slack, off, "CBUSY", posters=5, each=2)
    assert len(times) == 10
    assert list(state.redis.scan_iter(f"{state.prefix}:pace:*")) == []  # no bucket at all


def test_a_429_during_a_burst_is_waited_out_and_no_answer_is_lost(fake_slack, pacer):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1, count=2)
    gateways = [SlackGateway(make_client("xoxb-test", fake_slack.url, retries=3), pacer=pacer) for _ in range(5)]
    threads = [threading.Thread(target=g.post, args=("CBUSY", {"text": f"answer {i}"})) for i, g in enumerate(gateways)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delivered = [c["params"]["text"] for c in fake_slack.calls
                 if c["method"] == "chat.postMessage" and (c.get("response") or {}).get("ok")]
    assert sorted(delivered) == [f"answer {i}" for i in range(5)]
    assert len(fake_slack.calls_to("chat.postMessage")) == 7          # two 429s, each retried after Retry-After
