"""The Slack side of a streamed answer (bot/questions/stream.py): the link policy on every piece,
appends paced, Slack's refusals and the person's Stop."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.links import LinkPolicy
from bot.questions.stream import StreamedAnswer, safe_markdown
from usecases.streaming import StreamStopped

POLICY = LinkPolicy.of((), ("wiki.corp.example",))


def refused(error: str) -> SlackApiError:
    response = SlackResponse(client=None, http_verb="POST", api_url="https://slack.test/api/x", req_args={},
                             data={"ok": False, "error": error}, headers={}, status_code=200)
    return SlackApiError(error, response)


class Gateway:
    """Records what the stream asks of Slack; ``refuse``: method -> the error Slack answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.refuse: dict[str, str] = {}

    def _do(self, method: str, arg: object) -> None:
        self.calls.append((method, arg))
        if method in self.refuse:
            raise refused(self.refuse[method])

    def start_stream(self, channel, thread_ts, *, recipient_user_id=None, recipient_team_id=None,
                     chunks=None) -> str:
        self._do("start", (channel, thread_ts, recipient_user_id, recipient_team_id))
        if chunks:
            self.calls.append(("chunks", chunks))
        return "1.000100"

    def append_stream(self, channel, ts, markdown_text=None, *, chunks=None) -> None:
        self._do("append", markdown_text if chunks is None else chunks)

    def stop_stream(self, channel, ts, *, blocks=None) -> None:
        self._do("stop", blocks)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sink(gateway: Gateway, clock: Clock, channel: str = "D1") -> StreamedAnswer:
    return StreamedAnswer(gateway, channel, "9.000001", recipient_user_id="U1", recipient_team_id="T1",
                          link_hosts=("wiki.corp.example",), clock=clock)


@pytest.mark.parametrize("markdown, shown", [
    ("See [the form](https://attacker.example/?q=x).", "See the form [link removed: attacker[.]example]."),
    ("Or https://attacker.example/collect?d=1.", "Or [link removed: attacker[.]example]."),
    ("Or attacker.example/collect?d=1 now.", "Or [link removed: attacker[.]example] now."),
    ("![x](https://attacker.example/p.png) gone.", " gone."),
    ("Read [the wiki](https://wiki.corp.example/a).", "Read [the wiki](https://wiki.corp.example/a)."),
    ("Code `https://attacker.example/x` stays.", "Code `https://attacker.example/x` stays."),
])
def test_safe_markdown_keeps_only_allowed_links(markdown: str, shown: str) -> None:
    assert safe_markdown(markdown, POLICY) == shown


def test_channel_streams_name_their_recipient_dms_do_not() -> None:
    gateway = Gateway()
    assert sink(gateway, Clock(), "C1").open(audience=None) is not None   # type: ignore[arg-type]
    assert sink(gateway, Clock(), "D1").open(audience=None) is not None   # type: ignore[arg-type]
    assert [c[1] for c in gateway.calls] == [("C1", "9.000001", "U1", "T1"), ("D1", "9.000001", None, None)]


def test_appends_are_paced_and_nothing_is_lost() -> None:
    gateway, clock = Gateway(), Clock()
    stream = sink(gateway, clock)
    write = stream.open(audience=None)                                     # type: ignore[arg-type]
    assert write is not None
    write("One.")
    clock.now += 0.1
    write(" Two.")                   # within 250 ms of the last append: held
    write(" Three.")
    clock.now += 0.3
    write(" Four.")
    write(" Five.")
    assert stream.finish([{"type": "divider"}])
    assert [c for c in gateway.calls if c[0] == "append"] == [
        ("append", "One."), ("append", " Two. Three. Four."), ("append", " Five.")]
    assert gateway.calls[-1] == ("stop", [{"type": "divider"}])
    assert stream.shown == "One. Two. Three. Four. Five." and stream.state == "done"


def test_a_declined_audience_or_a_refused_start_is_not_streamed() -> None:
    gateway = Gateway()
    declined = StreamedAnswer(gateway, "C1", "9.000001", check_audience=lambda a: False)
    assert declined.open(audience=None) is None and declined.state == "declined"   # type: ignore[arg-type]
    assert gateway.calls == []
    gateway.refuse["start"] = "messages_tab_disabled"
    refused_start = sink(gateway, Clock())
    assert refused_start.open(audience=None) is None and refused_start.state == "unavailable"  # type: ignore[arg-type]
    assert not refused_start.finish([])


def test_stop_by_the_user_raises_and_the_stream_is_still_finished() -> None:
    gateway, clock = Gateway(), Clock()
    stream = sink(gateway, clock)
    write = stream.open(audience=None)                                     # type: ignore[arg-type]
    assert write is not None
    write("One.")
    gateway.refuse["append"] = "stopped_by_user"
    clock.now += 1
    with pytest.raises(StreamStopped):
        write(" Two.")
    with pytest.raises(StreamStopped):
        write(" Three.")
    assert stream.state == "stopped" and stream.shown == "One."
    assert stream.finish([{"type": "divider"}])                            # the Sources still go
    assert gateway.calls[-1][0] == "stop"


def test_an_expired_stream_is_broken_not_fatal() -> None:
    gateway, clock = Gateway(), Clock()
    stream = sink(gateway, clock)
    write = stream.open(audience=None)                                     # type: ignore[arg-type]
    assert write is not None
    gateway.refuse["append"] = "message_not_in_streaming_state"
    write("One.")                    # generation goes on; the answer will be posted whole
    write(" Two.")
    assert stream.state == "broken" and not stream.finish([])


def test_slack_control_sequences_in_streamed_text_are_escaped():
    from bot.links import LinkPolicy
    from bot.questions.stream import safe_markdown

    out = safe_markdown("Ping <!channel> and <@U0ANA>, see <https://attacker.example/x|here>.", LinkPolicy.of((), ()))
    assert "<!channel>" not in out and "<@U0ANA>" not in out and "<https://" not in out
    assert "&lt;!channel&gt;" in out and "attacker.example" not in out


def test_an_early_stream_opens_with_its_first_task_and_shows_the_steps_in_order() -> None:
    gateway = Gateway()
    stream = StreamedAnswer(gateway, "DUANA", "1.000001", early=True, clock=Clock())
    stream.task("search", "Searching Confluence", "in_progress")
    assert stream.state == "open" and gateway.calls[0][0] == "start"
    assert gateway.calls[1] == ("chunks", [{"type": "task_update", "id": "search", "title": "Searching Confluence",
                                            "status": "in_progress"}])
    write = stream.open(audience=None)                                     # type: ignore[arg-type]
    assert write is not None
    write("Pages live in")
    stream.task("search", "Searching Confluence", "complete")
    # the text written before a task goes out before it
    assert [c[0] for c in gateway.calls[2:]] == ["append", "append"]
    assert gateway.calls[2][1] == "Pages live in"
    assert gateway.calls[3][1][0]["status"] == "complete"


def test_a_channel_stream_shows_no_task_before_it_is_opened() -> None:
    gateway = Gateway()
    stream = StreamedAnswer(gateway, "CENG", "1.000001", recipient_user_id="UANA", recipient_team_id="T1")
    stream.task("audience", "Checking who can read this channel", "in_progress")
    assert gateway.calls == [] and stream.state == "idle"


def test_stop_marked_before_the_stream_opened_shows_nothing_and_ends_generation() -> None:
    gateway = Gateway()
    stream = StreamedAnswer(gateway, "DUANA", "1.000001", early=True, was_stopped=lambda: True)
    stream.task("search", "Searching", "in_progress")
    write = stream.open(audience=None)                                     # type: ignore[arg-type]
    assert gateway.calls == [] and stream.state == "stopped" and write is not None
    with pytest.raises(StreamStopped):
        write("Anything")
