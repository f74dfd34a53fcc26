"""Channel membership changes: the cached member list of that channel is dropped at once.

An answer in a channel may use only documents every member may see; someone who
joins an HR channel must not get the salary answer asked a moment later from a
member list cached before they joined. These events make the next answer read the
list again; the worker also re-reads it just before posting when it is older than
``CHATOPS_CHANNEL_FRESH`` seconds (events can arrive late).
"""

from __future__ import annotations

import logging

from bot.enqueue import ListenerDeps
from chatops import keys

log = logging.getLogger(__name__)


def register(app, deps: ListenerDeps) -> None:
    state = deps.state

    def forget(event: dict) -> None:
        channel = event.get("channel")
        if not isinstance(channel, str) or not channel:
            return
        try:
            state.drop_json(keys.CACHE_MEMBERS, channel)
        except Exception:  # noqa: BLE001 - the worker re-checks before posting; say so loudly
            log.exception("could not drop the cached member list", extra={"channel": channel})
            raise
        log.info("channel membership changed; member list dropped",
                 extra={"channel": channel, "event_type": event.get("type")})

    @app.event("member_joined_channel")
    def on_joined(event):
        forget(event)

    @app.event("member_left_channel")
    def on_left(event):
        forget(event)
