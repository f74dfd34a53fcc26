"""A model's answer streamed into the question's thread (``chat.startStream`` / ``appendStream`` /
``stopStream``), with the thread's status while retrieval and tools run.

The pieces written here are already safe for the answer's audience (``usecases/streaming.py``: whole
sentences, closed links and citations, claims and unknown citations taken out); here each piece also
goes through the link policy (a link to a host the policy does not allow is shown inert before it is
ever appended) and appends are paced (``chat.appendStream`` is tier 4: at most one every
``min_interval`` seconds, the rest held and sent with the next piece or at the end).

The stream is opened only once the audience is settled (``check_audience``: for a channel, its
members read again when older than ``channel_fresh`` seconds, nobody new): until then nothing is
shown but the status. Slack refusing the stream (an error from ``chat.startStream``), or a stream that
stops taking appends (expired), leaves the answer to the post-and-update path; the person pressing
Stop ends generation (``StreamStopped``) before the next piece: the ``agent_session_stopped`` event
marks the thread (``was_stopped``), and an append Slack refuses with ``stopped_by_user`` says so too.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from bot.limits import TASK_TITLE_MAX
from bot.links import LinkPolicy
from bot.mrkdwn import _BARE_URL, _CODE, _HOST_PATH, _IMAGE, _MD_LINK, _split_url, removed
from chatops.access import Audience
from chatops.errors import TransientError
from usecases.streaming import StreamStopped

log = logging.getLogger(__name__)

STATUS = "is looking into it…"
LOADING = ["Checking who will read the answer…", "Searching the documents…", "Writing the answer…"]


def safe_markdown(markdown: str, policy: LinkPolicy) -> str:
    """Markdown with every link the policy does not allow shown inert (its host, defanged), images
    dropped; code left as it is. What is allowed stays Markdown (``markdown_text`` is Markdown)."""
    pieces = _CODE.split(markdown)
    for i in range(0, len(pieces), 2):
        pieces[i] = _inert_links(pieces[i], policy)
    return "".join(pieces)


def _inert_links(text: str, policy: LinkPolicy) -> str:
    tokens: list[str] = []

    def keep(rendered: str) -> str:
        tokens.append(rendered)
        return f"\x00{len(tokens) - 1}\x00"

    def md_link(m: re.Match) -> str:
        label, url = m.group(1), m.group(2)
        if policy.allows(url):
            return keep(m.group(0))
        label = _BARE_URL.sub(lambda u: removed(_split_url(u.group(0))[0]), label)
        return keep(f"{label} {removed(url)}")

    def bare(m: re.Match) -> str:
        url, tail = _split_url(m.group(0))
        return keep(url if policy.allows(url) else removed(url)) + tail

    def host_path(m: re.Match) -> str:
        url, tail = _split_url(m.group(0))
        return keep(url if policy.allows("https://" + url) else removed("https://" + url)) + tail

    # Slack's control sequences (<!channel>, <@U…>, <#C…>, <url|label>) are never the model's to
    # write: their brackets are escaped, as on the posted path (bot/mrkdwn.py escape).
    text = text.replace("\x00", "").replace("<", "&lt;").replace(">", "&gt;")
    text = _IMAGE.sub("", text)
    text = _MD_LINK.sub(md_link, text)
    text = _BARE_URL.sub(bare, text)
    text = _HOST_PATH.sub(host_path, text)
    return re.sub("\x00(\\d+)\x00", lambda t: tokens[int(t.group(1))], text)


@dataclass
class StreamedAnswer:
    """One answer streamed into ``thread_ts`` of ``channel`` (see the module).

    ``state``: "idle" (not opened), "declined" (the audience changed: not streamed), "unavailable"
    (Slack refused the stream), "open", "stopped" (the person pressed Stop), "broken" (Slack stopped
    taking appends), "done" (``chat.stopStream`` taken)."""

    gateway: Any
    channel: str
    thread_ts: str
    recipient_user_id: str | None = None
    recipient_team_id: str | None = None
    link_hosts: tuple[str, ...] = ()
    check_audience: Callable[[Audience], bool] = lambda audience: True
    on_start: Callable[[str], None] = lambda ts: None     # told the stream's ts (the step record)
    was_stopped: Callable[[], bool] = lambda: False        # the person pressed Stop (agent_session_stopped)
    early: bool = False           # opened at the first task update (the asker alone reads it: a DM)
    min_interval: float = 0.25
    clock: Callable[[], float] = time.monotonic
    state: str = "idle"
    ts: str | None = None
    shown: str = ""                 # the answer's text (as the model's pieces) Slack has taken
    appended: list[str] = field(default_factory=list)   # each chat.appendStream's markdown_text
    _pending: list[str] = field(default_factory=list)
    _last: float = float("-inf")

    def open(self, audience: Audience) -> Callable[[str], None] | None:
        """Called once the answer's audience is known and before its first piece: settle the
        audience, start the stream. None: the answer is not streamed (posted as before)."""
        if self.was_stopped():
            # Stop pressed while the answer was being prepared: nothing is shown, generation ends
            # at its first piece.
            self.state = "stopped"
            return self.write
        if self.state == "open":
            return self.write          # opened early, by a task update
        if self.state != "idle" or not self.check_audience(audience):
            self.state = "declined" if self.state == "idle" else self.state
            return None
        return self.write if self._start() else None

    def task(self, task_id: str, title: str, status: str) -> None:
        """A step shown as a task card (``task_update``: ``in_progress``, ``complete``, ``error``).
        An ``early`` stream opens with its first task; any other shows tasks once it is open (a
        channel's, once its audience is settled)."""
        chunk = {"type": "task_update", "id": task_id, "title": title[:TASK_TITLE_MAX], "status": status}
        if self.state == "idle" and self.early and not self.was_stopped():
            self._start([chunk])
            return
        if self.state != "open":
            return
        try:
            self._flush()          # the text written so far comes first
            if self.state == "open":
                self._append(None, [chunk])
        except StreamStopped:
            return                 # the next piece of the answer ends generation

    def _start(self, chunks: list[dict] | None = None) -> bool:
        in_channel = not self.channel.startswith("D")
        try:
            self.ts = self.gateway.start_stream(
                self.channel, self.thread_ts,
                recipient_user_id=self.recipient_user_id if in_channel else None,
                recipient_team_id=self.recipient_team_id if in_channel else None, chunks=chunks)
        except (SlackApiError, TransientError) as exc:
            log.warning("could not start a streamed answer; posting it whole",
                        extra={"channel": self.channel, "error": _error(exc)})
            self.state = "unavailable"
            return False
        self.state = "open"
        self.on_start(self.ts)
        return True

    def write(self, piece: str) -> None:
        if self.state == "open" and self.was_stopped():
            self.state = "stopped"
        if self.state != "open":
            if self.state == "stopped":
                raise StreamStopped()
            return
        self._pending.append(piece)
        if self.clock() - self._last >= self.min_interval:
            self._flush()

    def finish(self, blocks: list[dict]) -> bool:
        """What is held appended, then ``chat.stopStream`` with ``blocks`` (the Sources, feedback).
        False: the stream could not be finished (the caller posts the answer the other way)."""
        if self.state == "open":
            try:
                self._flush()
            except StreamStopped:
                pass
        if self.state not in ("open", "stopped") or self.ts is None:
            return False
        try:
            self.gateway.stop_stream(self.channel, self.ts, blocks=blocks)
        except (SlackApiError, TransientError) as exc:
            log.warning("could not finish a streamed answer", extra={"channel": self.channel, "error": _error(exc)})
            self.state = "broken"
            return False
        if self.state == "open":
            self.state = "done"
        return True

    def _flush(self) -> None:
        if not self._pending or self.ts is None:
            return
        raw = "".join(self._pending)
        policy = LinkPolicy.of((), self.link_hosts)
        text = safe_markdown(raw, policy)
        self._pending.clear()
        if self._append(text, None):
            self._last = self.clock()
            self.appended.append(text)
            self.shown += raw

    def _append(self, text: str | None, chunks: list[dict] | None) -> bool:
        """One chat.appendStream; False: Slack did not take it (the state says why)."""
        assert self.ts is not None
        try:
            self.gateway.append_stream(self.channel, self.ts, text, chunks=chunks)
        except (SlackApiError, TransientError) as exc:
            error = _error(exc)
            if error == "stopped_by_user":
                self.state = "stopped"
                raise StreamStopped() from None
            log.warning("a streamed answer stopped taking text; posting it whole",
                        extra={"channel": self.channel, "error": error})
            self.state = "broken"
            return False
        return True


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str((exc.response or {}).get("error") or "error")
    return type(exc).__name__
