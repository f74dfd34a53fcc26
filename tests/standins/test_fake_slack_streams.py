"""The stand-in Slack's agent surfaces, driven by the real slack_sdk WebClient: streamed messages
(chat.startStream / appendStream / stopStream and the SDK's ``chat_stream`` helper), Stop pressed by
the person, rate limits, the thread's status and suggested prompts, and the Home tab."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import PlanUpdateChunk, TaskUpdateChunk

from standins.fake_slack import STOPPED, STOPPED_BY_USER, app_context_changed_event, app_home_opened_event

THREAD = "1700000000.000100"
FEEDBACK = [{"type": "context_actions", "elements": [{
    "type": "feedback_buttons", "action_id": "feedback",
    "positive_button": {"text": {"type": "plain_text", "text": "Good"}, "value": "good"},
    "negative_button": {"text": {"type": "plain_text", "text": "Bad"}, "value": "bad"}}]}]


@pytest.fixture
def client(fake_slack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake_slack.url)


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


# -- the methods, one by one ---------------------------------------------------------------------

def test_start_append_stop_in_a_dm(client, fake_slack):
    started = client.chat_startStream(channel="DUANA", thread_ts=THREAD, markdown_text="The answer")
    assert set(started.data) == {"ok", "channel", "ts"} and started["channel"] == "DUANA"
    ts = started["ts"]
    client.chat_appendStream(channel="DUANA", ts=ts, markdown_text=" is 42.")
    stopped = client.chat_stopStream(channel="DUANA", ts=ts, markdown_text=" [1]", blocks=FEEDBACK,
                                     metadata={"event_type": "answer", "event_payload": {"id": "a1"}})
    assert stopped["message"]["text"] == "The answer is 42. [1]"
    assert stopped["message"]["blocks"] == FEEDBACK and stopped["message"]["thread_ts"] == THREAD
    assert stopped["message"]["subtype"] == "bot_message" and stopped["ts"] == ts

    stream = fake_slack.stream(ts)
    assert stream.appends == ["The answer", " is 42.", " [1]"]
    assert stream.text == "The answer is 42. [1]"
    assert (stream.state, stream.blocks, stream.metadata["event_type"]) == (STOPPED, FEEDBACK, "answer")
    assert fake_slack.streams_in("DUANA", THREAD) == [stream]


def test_a_channel_stream_needs_its_recipient(client, fake_slack):
    assert error_of(lambda: client.chat_startStream(channel="CENG", thread_ts=THREAD)) == "missing_recipient_user_id"
    assert error_of(lambda: client.chat_startStream(channel="CENG", thread_ts=THREAD, recipient_user_id="UANA")) \
        == "missing_recipient_team_id"
    assert error_of(lambda: client.chat_startStream(channel="CENG", thread_ts=THREAD, recipient_user_id="UNOBODY",
                                                    recipient_team_id="T123")) == "user_not_found"
    ok = client.chat_startStream(channel="CENG", thread_ts=THREAD, recipient_user_id="UANA", recipient_team_id="T123")
    assert fake_slack.stream(ok["ts"]).recipient_user_id == "UANA"
    assert not fake_slack.streams_in("CENG", "1.1")


def test_appends_after_the_end_are_refused(client, fake_slack):
    ts = client.chat_startStream(channel="DUANA", thread_ts=THREAD, markdown_text="a")["ts"]
    client.chat_stopStream(channel="DUANA", ts=ts)
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=ts, markdown_text="b")) \
        == "message_not_in_streaming_state"
    assert error_of(lambda: client.chat_stopStream(channel="DUANA", ts=ts)) == "message_not_in_streaming_state"
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts="1.000009", markdown_text="b")) \
        == "message_not_found"
    assert error_of(lambda: client.chat_appendStream(channel="DBEN", ts=ts, markdown_text="b")) == "message_not_found"
    posted = client.chat_postMessage(channel="DUANA", text="not a stream")["ts"]
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=posted, markdown_text="b")) \
        == "message_not_in_streaming_state"
    fake_slack.foreign_messages.add("1699999999.000001")
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts="1699999999.000001", markdown_text="b")) \
        == "message_not_owned_by_app"
    assert fake_slack.stream(ts).appends == ["a"]


def test_an_expired_stream_takes_nothing_more(client, fake_slack):
    ts = client.chat_startStream(channel="DUANA", thread_ts=THREAD, markdown_text="a")["ts"]
    fake_slack.expire(ts)
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=ts, markdown_text="b")) \
        == "message_not_in_streaming_state"
    assert error_of(lambda: client.chat_stopStream(channel="DUANA", ts=ts)) == "message_not_in_streaming_state"
    client.chat_update(channel="DUANA", ts=ts, text="the whole answer")      # the SDK's suggested fallback
    assert [u["text"] for u in fake_slack.stream(ts).updates] == ["the whole answer"]


def test_bad_chunks_and_empty_appends(client):
    ts = client.chat_startStream(channel="DUANA", thread_ts=THREAD)["ts"]
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=ts)) == "no_text"
    bad = [{"type": "task_update", "id": "t1", "title": "x", "status": "done"}]
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=ts, chunks=bad)) == "invalid_chunks"
    assert error_of(lambda: client.chat_appendStream(channel="DUANA", ts=ts, chunks=[{"type": "poem"}])) \
        == "invalid_chunks"
    assert error_of(lambda: client.chat_stopStream(channel="DUANA", ts=ts, metadata={"x": 1})) \
        == "invalid_metadata_schema"


def test_the_scopes_the_stream_and_thread_methods_need(fake_slack):
    fake_slack.scopes = {"users:read"}
    client = WebClient(token="xoxb-test", base_url=fake_slack.url)
    with pytest.raises(SlackApiError) as err:
        client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    assert (err.value.response["error"], err.value.response["needed"]) == ("missing_scope", "chat:write")
    with pytest.raises(SlackApiError) as err:
        client.assistant_threads_setSuggestedPrompts(channel_id="DUANA", prompts=[{"title": "a", "message": "b"}])
    assert err.value.response["needed"] == "assistant:write"
    assert client.views_publish(user_id="UANA", view={"type": "home", "blocks": []})["ok"]   # no scope


# -- the SDK's chat_stream helper -----------------------------------------------------------------

def test_the_sdk_helper_buffers_and_sends_tasks(client, fake_slack):
    streamer = client.chat_stream(channel="CENG", thread_ts=THREAD, recipient_user_id="UANA",
                                  recipient_team_id="T123", buffer_size=10, task_display_mode="plan")
    assert streamer.append(markdown_text="Hello") is None           # buffered: nothing sent yet
    assert not fake_slack.calls_to("chat.startStream")
    streamer.append(chunks=[PlanUpdateChunk(title="Answering"),
                            TaskUpdateChunk(id="acl", title="Checking who can read this channel", status="in_progress")])
    ts = streamer.ts
    streamer.append(chunks=[TaskUpdateChunk(id="acl", title="Checking who can read this channel", status="complete")])
    streamer.append(markdown_text=" wor")                           # buffered
    streamer.append(markdown_text="ld, again!")                     # 14 >= 10: flushed
    streamer.stop(markdown_text=" Bye.", blocks=FEEDBACK)

    [start] = fake_slack.calls_to("chat.startStream")
    assert start["task_display_mode"] == "plan" and start["chunks"][0] == {"type": "markdown_text", "text": "Hello"}
    assert len(fake_slack.calls_to("chat.appendStream")) == 2
    stream = fake_slack.stream(ts)
    assert stream.appends == ["Hello", " world, again!", " Bye."]
    assert stream.plan_title == "Answering"
    assert stream.tasks["acl"]["status"] == "complete"
    assert [t["status"] for t in stream.task_history] == ["in_progress", "complete"]
    assert stream.blocks == FEEDBACK and stream.state == STOPPED


def test_the_sdk_helper_stopped_before_anything_was_flushed(client, fake_slack):
    streamer = client.chat_stream(channel="DUANA", thread_ts=THREAD, buffer_size=1000)
    streamer.append(markdown_text="short")
    streamer.stop(blocks=FEEDBACK)
    stream = fake_slack.stream(streamer.ts)
    assert stream.appends == ["short"] and stream.blocks == FEEDBACK
    assert [c["method"] for c in fake_slack.calls] == ["chat.startStream", "chat.stopStream"]


# -- Stop pressed by the person -------------------------------------------------------------------

def test_stop_by_user_refuses_later_appends_and_makes_the_event(client, fake_slack):
    streamer = client.chat_stream(channel="CENG", thread_ts=THREAD, recipient_user_id="UANA",
                                  recipient_team_id="T123", buffer_size=1)
    streamer.append(markdown_text="First sentence.")
    event = fake_slack.stop_by_user(streamer.ts)
    assert event == {"type": "agent_session_stopped", "channel": "CENG", "user": "UANA", "thread_ts": THREAD,
                     "streaming_message_ts": [streamer.ts], "event_ts": event["event_ts"]}
    assert fake_slack.stop_events == [event]
    with pytest.raises(SlackApiError) as err:
        streamer.append(markdown_text=" Second.")
    assert err.value.response["error"] == "stopped_by_user"
    # the app may still end the session with chat.stopStream (the final blocks land)
    client.chat_stopStream(channel="CENG", ts=streamer.ts, blocks=FEEDBACK)
    stream = fake_slack.stream(streamer.ts)
    assert stream.appends == ["First sentence."] and stream.stopped_by_user and stream.blocks == FEEDBACK
    assert stream.state == STOPPED


def test_stop_by_user_in_a_dm_names_the_person(client, fake_slack):
    ts = client.chat_startStream(channel="DUANA", thread_ts=THREAD, markdown_text="a")["ts"]
    assert fake_slack.stop_by_user(ts)["user"] == "UANA"
    assert fake_slack.stream(ts).state == STOPPED_BY_USER


# -- rate limits -----------------------------------------------------------------------------------

def test_a_rate_limited_method_answers_429_with_retry_after(client, fake_slack):
    fake_slack.rate_limit("chat.startStream", 2)
    client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    with pytest.raises(SlackApiError) as err:
        client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    assert 1 <= int(err.value.response.headers["Retry-After"]) <= 60
    assert len(fake_slack.streams) == 2                        # the refused call started nothing
    fake_slack.rate_limit("chat.startStream", None)
    client.chat_startStream(channel="DUANA", thread_ts=THREAD)


def test_the_tiers(client, fake_slack):
    fake_slack.enforce_tiers()
    ts = client.chat_startStream(channel="DUANA", thread_ts=THREAD)["ts"]
    for _ in range(100):                                       # tier 4: 100 a minute
        client.chat_appendStream(channel="DUANA", ts=ts, markdown_text=".")
    with pytest.raises(SlackApiError) as err:
        client.chat_appendStream(channel="DUANA", ts=ts, markdown_text=".")
    assert err.value.response.status_code == 429
    assert len(fake_slack.stream(ts).appends) == 100
    for _ in range(19):                                        # tier 2: 20 a minute, one used
        client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    assert client.chat_stopStream(channel="DUANA", ts=ts)["ok"]   # each method has its own budget
    with pytest.raises(SlackApiError) as err:
        client.chat_startStream(channel="DUANA", thread_ts=THREAD)
    assert err.value.response.status_code == 429


# -- the thread's status, prompts and title ---------------------------------------------------------

def test_status_is_shown_until_the_reply(client, fake_slack):
    client.assistant_threads_setStatus(channel_id="DUANA", thread_ts=THREAD, status="is looking into it…",
                                       loading_messages=["Checking who can read this", "Searching Confluence"])
    assert fake_slack.status_of("DUANA", THREAD)["loading_messages"][1] == "Searching Confluence"
    client.chat_startStream(channel="DUANA", thread_ts=THREAD, markdown_text="Here")
    assert fake_slack.status_of("DUANA", THREAD) is None       # the reply cleared it
    client.assistant_threads_setStatus(channel_id="DUANA", thread_ts=THREAD, status="again")
    client.assistant_threads_setStatus(channel_id="DUANA", thread_ts=THREAD, status="")
    assert fake_slack.status_of("DUANA", THREAD) is None
    assert [s["status"] for s in fake_slack.statuses] == ["is looking into it…", "again", ""]
    client.assistant_threads_setStatus(channel_id="DUANA", thread_ts=THREAD, status="x")
    client.chat_postMessage(channel="DUANA", thread_ts=THREAD, text="answer")
    assert fake_slack.status_of("DUANA", THREAD) is None


def test_status_errors(client):
    assert error_of(lambda: client.assistant_threads_setStatus(channel_id="DUANA", thread_ts="soon", status="x")) \
        == "invalid_thread_ts"
    assert error_of(lambda: client.assistant_threads_setStatus(
        channel_id="DUANA", thread_ts=THREAD, status="x", loading_messages=["m"] * 11)) == "invalid_arguments"
    assert error_of(lambda: client.assistant_threads_setStatus(
        channel_id="DUANA", thread_ts=THREAD, status="x", loading_messages=["m" * 51])) == "invalid_arguments"


def test_suggested_prompts_and_title(client, fake_slack):
    prompts = [{"title": "Vacation", "message": "How many vacation days do I have?"}]
    client.assistant_threads_setSuggestedPrompts(channel_id="DUANA", thread_ts=THREAD, title="Try", prompts=prompts)
    assert fake_slack.prompts_for("DUANA") == {"channel_id": "DUANA", "thread_ts": THREAD, "title": "Try",
                                               "prompts": prompts}
    assert error_of(lambda: client.assistant_threads_setSuggestedPrompts(channel_id="DUANA", prompts=prompts * 5)) \
        == "invalid_arguments"
    assert error_of(lambda: client.assistant_threads_setSuggestedPrompts(
        channel_id="DUANA", prompts=[{"title": "no message"}])) == "invalid_arguments"
    fake_slack.agent_enabled = False
    assert error_of(lambda: client.assistant_threads_setSuggestedPrompts(channel_id="DUANA", prompts=prompts)) \
        == "not_agent_app"
    client.assistant_threads_setTitle(channel_id="DUANA", thread_ts=THREAD, title="Vacation days")
    assert fake_slack.titles[("DUANA", THREAD)] == "Vacation days"


# -- the Home tab ----------------------------------------------------------------------------------

def test_views_publish(client, fake_slack):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Your sources*"}}]
    view = client.views_publish(user_id="UANA", view={"type": "home", "blocks": blocks})["view"]
    assert view["type"] == "home" and view["blocks"] == blocks and view["id"].startswith("V") and view["hash"]
    assert fake_slack.home_view("UANA") == view
    again = client.views_publish(user_id="UANA", view=json.dumps({"type": "home", "blocks": []}), hash=view["hash"])
    assert again["view"]["id"] == view["id"]
    assert error_of(lambda: client.views_publish(user_id="UANA", view={"type": "home", "blocks": []},
                                                 hash=view["hash"])) == "hash_conflict"
    assert error_of(lambda: client.views_publish(user_id="UANA", view={"type": "modal", "blocks": []})) \
        == "invalid_arguments"
    with pytest.raises(SlackApiError) as err:
        client.views_publish(user_id="UANA", view={"type": "home", "blocks": blocks * 101})
    assert "no more than 100 items" in err.value.response["response_metadata"]["messages"][0]
    fake_slack.home_tab_enabled = False
    assert error_of(lambda: client.views_publish(user_id="UANA", view={"type": "home", "blocks": []})) \
        == "not_enabled"


def test_the_events_the_agent_surfaces_send():
    opened = app_home_opened_event("UANA", "messages", context_channel="CENG")
    assert (opened["type"], opened["tab"], opened["channel"]) == ("app_home_opened", "messages", "DUANA")
    assert opened["context"]["entities"][0] == {"type": "slack#/types/channel_id", "value": "CENG", "team_id": "T123"}
    assert "view" not in app_home_opened_event("UANA", "home")
    changed = app_context_changed_event("UANA", "CENG")
    assert changed["context"]["entities"][0]["value"] == "CENG"
    assert app_context_changed_event("UANA", None)["context"] == {}
