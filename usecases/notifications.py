"""Graph change notifications for synced sources: what to subscribe to, and what a notification
asks for.

Each SharePoint drive of a source has a subscription whose ``notificationUrl`` (and lifecycle
URL) is ``<CHATOPS_PUBLIC_URL>/sources/graph/notify?source=<name>`` and whose ``clientState``
is an HMAC of the source's name under ``GRAPH_NOTIFY_SECRET``: the web process checks a
notification (lifecycle ones included, which name no drive) without a database, and a forged
one (no secret) is refused. A notification is
a shoulder tap - it says which drive changed, not what - so it asks for the source's changes
sync; a lifecycle notification asks for the subscriptions to be renewed or made again
(``reauthorizationRequired``, ``subscriptionRemoved``) or for a changes sync (``missed``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import quote

log = logging.getLogger(__name__)

NOTIFY_PATH = "/sources/graph/notify"


def client_state(secret: str, source: str) -> str:
    """The ``clientState`` of the source's subscriptions (64 hex characters; Graph allows 128)."""
    return hmac.new(secret.encode(), f"chatops source\n{source}".encode(), hashlib.sha256).hexdigest()


def notify_url(public_url: str, source: str) -> str:
    return f"{public_url.rstrip('/')}{NOTIFY_PATH}?source={quote(source, safe='')}"


@dataclass(frozen=True)
class Asked:
    source: str
    mode: str          # "changes" (sync the source) or "subscriptions" (renew or recreate them)


def read_notifications(body: object, source: str, secret: str) -> tuple[set[Asked], int]:
    """What a notification POST asks for, from the items whose ``clientState`` checks out; and
    how many items were refused (a wrong or missing clientState, a foreign resource)."""
    items = body.get("value") if isinstance(body, dict) else None
    asked: set[Asked] = set()
    refused = 0
    expected = client_state(secret, source)
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            refused += 1
            continue
        event = item.get("lifecycleEvent")
        if not _checks_out(item.get("clientState"), expected):
            refused += 1
            continue
        if event in ("reauthorizationRequired", "subscriptionRemoved"):
            asked.add(Asked(source, "subscriptions"))
        else:   # a change, or "missed": catch up
            asked.add(Asked(source, "changes"))
    return asked, refused


def _checks_out(state: object, expected: str) -> bool:
    """Whether a notification's ``clientState`` is ours, in constant time. Ours is ASCII (hex):
    anything else (another JSON type, non-ASCII text, a lone surrogate) is refused before the
    comparison, which takes bytes."""
    if not isinstance(state, str) or not state.isascii():
        return False
    return hmac.compare_digest(state.encode("ascii"), expected.encode("ascii"))

