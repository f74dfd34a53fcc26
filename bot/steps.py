"""Steps shared by the Slack handlers: the working message, and telling someone a task failed.

The failure report goes out by the first way that works: in place of the working message,
in the thread, in a DM. Each attempt is counted. An answer already posted is left alone.
"""

from __future__ import annotations

import logging
from typing import Callable

from bot import blocks
from chatops import metrics
from chatops.progress import Progress

log = logging.getLogger(__name__)

ProgressFor = Callable[[str, dict], Progress]   # (task kind, payload) -> its step record


def working_message(gateway, progress: Progress, channel: str, thread_ts: str | None,
                    step: str = "placeholder") -> str:
    """The "Looking into it…" message of this task: posted once, whatever the deliveries."""
    ts = progress.get(step)
    if ts:
        return ts
    ts = gateway.post(channel, blocks.working_message(), thread_ts=thread_ts)
    progress.mark(step, ts)
    return ts


def report_failure(gateway, progress: Progress | None, *, user: str | None, channel: str | None,
                   thread_ts: str | None, reference: str, detail: str = "", ephemeral: bool = False) -> None:
    """Tell the person something went wrong (see the module)."""
    message = blocks.error_message(reference, detail)
    ways: list[tuple[str, Callable[[], object]]] = []
    if ephemeral:
        if channel and user:
            ways.append(("ephemeral", lambda: gateway.post_ephemeral(channel, user, message)))
    else:
        if progress is not None and progress.done("posted"):
            # The answer is out; a later step (the note, a proposal) failed. Keep the answer.
            log.error("a step after the answer failed for good")
            return
        where = (progress.get("dm") if progress is not None else None) or channel
        placeholder = progress.get("placeholder") if progress is not None else None
        streamed = progress.get("stream_ts") if progress is not None else None
        if streamed and where:
            try:    # a streamed answer cut short ends, so its message is not left "writing"
                gateway.stop_stream(where, streamed)
            except Exception as exc:  # noqa: BLE001 - already ended or expired
                log.info("could not end the failed answer's stream", extra={"error": type(exc).__name__})
        if placeholder and where:
            ways.append(("update", lambda: gateway.update(where, placeholder, message)))
        if where:
            ways.append(("thread", lambda: gateway.post(where, message, thread_ts=thread_ts)))
    if user:
        ways.append(("dm", lambda: gateway.post(gateway.open_dm(user), message)))
    for via, attempt in ways:
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - try the next way
            metrics.FAILURE_REPORTS.labels(via=via, outcome="failed").inc()
            log.warning("could not report the failure this way", extra={"via": via, "error": type(exc).__name__})
            continue
        metrics.FAILURE_REPORTS.labels(via=via, outcome="sent").inc()
        return
    log.error("could not tell anyone about the failure", extra={"reference": reference})
