"""The Slack Web API as the rest of the system needs it.

Wraps slack_sdk's ``WebClient`` (pointed at ``SLACK_API_URL``) with its
built-in retry handlers for rate limits (honouring Retry-After), connection
errors and 5xx. Whatever still fails raises ``SlackApiError`` or
``SlackTransientError`` to the caller, which decides whether to retry.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from chatops import metrics
from chatops.errors import TransientError

NO_UNFURL = {"unfurl_links": False, "unfurl_media": False}


class SlackTransientError(TransientError):
    service = "Slack"
    """Slack rate-limited us or failed on its side; worth retrying later."""


def make_client(token: str | None, base_url: str, *, retries: int = 2, timeout: int = 15) -> WebClient:
    client = WebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/",
                       timeout=timeout)
    client.retry_handlers.extend([
        CountedRateLimitRetryHandler(max_retry_count=retries),
        ServerErrorRetryHandler(max_retry_count=retries),
    ])
    # WebClient already has a ConnectionErrorRetryHandler with one retry; allow the same count.
    for handler in client.retry_handlers:
        if isinstance(handler, ConnectionErrorRetryHandler):
            handler.max_retry_count = retries
    return client


class CountedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """The SDK's 429 handling (wait ``Retry-After``, try again), counting every 429 it sees."""

    def can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is not None and response.status_code == 429:
            metrics.SLACK_RATE_LIMITED.inc()
        return super().can_retry(state=state, request=request, response=response, error=error)


def _call(fn, **kwargs):
    method = getattr(fn, "__name__", "unknown")
    try:
        resp = fn(**kwargs)
    except SlackApiError as exc:
        status = getattr(exc.response, "status_code", 0)
        outcome = "rate_limited" if status == 429 else "server_error" if status >= 500 else "error"
        metrics.SLACK_API_CALLS.labels(method=method, outcome=outcome).inc()
        if status == 429 or status >= 500:
            raise SlackTransientError(f"Slack answered {status}") from None
        raise
    except (ConnectionError, TimeoutError, OSError) as exc:
        metrics.SLACK_API_CALLS.labels(method=method, outcome="unreachable").inc()
        raise SlackTransientError(f"Slack unreachable: {type(exc).__name__}") from None
    metrics.SLACK_API_CALLS.labels(method=method, outcome="ok").inc()
    return resp


class SlackGateway:
    def __init__(self, client: WebClient, pacer=None):
        self.client = client
        self.pacer = pacer          # bot.pacing.ChannelPacer: new messages per channel, a burst then one per interval

    # Messages ----------------------------------------------------------------

    # Every message goes out with unfurling off: a link in an answer must never make Slack fetch it.

    def post(self, channel: str, message: dict, thread_ts: str | None = None) -> str:
        """``chat.postMessage``: the one call that adds a message to a channel, so the one that is paced
        (updates, ephemeral messages, views and reads are not)."""
        if self.pacer is not None:
            self.pacer.wait_turn(channel)
        resp = _call(self.client.chat_postMessage, channel=channel, thread_ts=thread_ts,
                     text=message["text"], blocks=message.get("blocks"), **NO_UNFURL)
        return resp["ts"]

    def update(self, channel: str, ts: str, message: dict) -> None:
        _call(self.client.chat_update, channel=channel, ts=ts, text=message["text"],
              blocks=message.get("blocks"), **NO_UNFURL)

    def post_ephemeral(self, channel: str, user: str, message: dict, thread_ts: str | None = None) -> None:
        _call(self.client.chat_postEphemeral, channel=channel, user=user, thread_ts=thread_ts,
              text=message["text"], blocks=message.get("blocks"), **NO_UNFURL)

    def open_dm(self, user: str) -> str:
        resp = _call(self.client.conversations_open, users=user)
        return resp["channel"]["id"]

    # Streamed messages and the agent's thread status ---------------------------
    # (https://docs.slack.dev/reference/methods/chat.startStream, chat.appendStream, chat.stopStream,
    # assistant.threads.setStatus). start/stop are tier 2, append tier 4: the caller paces appends.

    def set_status(self, channel: str, thread_ts: str, status: str,
                   loading_messages: list[str] | None = None) -> None:
        """The thread's status ("is searching…", loading messages); "" clears it (so does a reply)."""
        _call(self.client.assistant_threads_setStatus, channel_id=channel, thread_ts=thread_ts, status=status,
              loading_messages=loading_messages)

    def start_stream(self, channel: str, thread_ts: str, *, recipient_user_id: str | None = None,
                     recipient_team_id: str | None = None, chunks: list[dict] | None = None) -> str:
        """A streamed reply in the thread (outside a DM Slack wants whom it is for), opened with
        ``chunks`` (task updates) if any; its ts."""
        resp = _call(self.client.chat_startStream, channel=channel, thread_ts=thread_ts,
                     recipient_user_id=recipient_user_id, recipient_team_id=recipient_team_id, chunks=chunks)
        return resp["ts"]

    def append_stream(self, channel: str, ts: str, markdown_text: str | None = None, *,
                      chunks: list[dict] | None = None) -> None:
        _call(self.client.chat_appendStream, channel=channel, ts=ts, markdown_text=markdown_text, chunks=chunks)

    def stop_stream(self, channel: str, ts: str, *, blocks: list[dict] | None = None) -> None:
        _call(self.client.chat_stopStream, channel=channel, ts=ts, blocks=blocks)

    # People and channels -----------------------------------------------------

    def members(self, channel: str) -> list[str]:
        out: list[str] = []
        cursor = None
        while True:
            resp = _call(self.client.conversations_members, channel=channel, limit=1000, cursor=cursor)
            out.extend(resp.get("members", []))
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return out

    def conversation(self, channel: str) -> dict:
        """``conversations.info``: the conversation object (``is_private``, ``is_im``, ``name``, ...)."""
        return _call(self.client.conversations_info, channel=channel).get("channel") or {}

    def channel_name(self, channel: str) -> str | None:
        """``conversations.info``: the channel's name (None for a DM)."""
        return self.conversation(channel).get("name")

    def usergroup_members(self, usergroup: str) -> list[str]:
        """``usergroups.users.list``: the user ids of a user group."""
        return list(_call(self.client.usergroups_users_list, usergroup=usergroup).get("users") or [])

    def open_view(self, trigger_id: str, view: dict) -> None:
        _call(self.client.views_open, trigger_id=trigger_id, view=view)

    def user(self, user_id: str) -> dict:
        """``users.info`` (callers cache it: bot/people.py)."""
        return _call(self.client.users_info, user=user_id)["user"]

    def auth(self) -> dict:
        """``auth.test``: the bot's own user, workspace and Enterprise Grid organisation."""
        resp = _call(self.client.auth_test)
        return {k: resp.get(k) for k in ("team_id", "enterprise_id", "user_id", "bot_id")}
