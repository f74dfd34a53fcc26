"""Which sources Graph tells of their changes, and their subscriptions kept alive.

Notifications are set up where the web process has a public URL (``CHATOPS_PUBLIC_URL``) and a
secret to sign them with (``GRAPH_NOTIFY_SECRET``), and some configured source is of a kind that
takes them (the registry says which: ``SourceKind.notifications``). The scheduler asks for the
subscriptions to be renewed (``workers/beat.py``), as does a lifecycle notification; each such
source's ``watch`` creates, renews or drops its own (``usecases/notifications.py`` has the URL
and the ``clientState`` it is given).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from connectors.sources.registry import takes_notifications
from usecases.notifications import client_state, notify_url


def notifications_ready(public_url: str | None, secret: str | None, sources: Iterable[Mapping[str, Any]]) -> bool:
    """Notifications are set up, and a configured source (``sources``: their specs) takes them."""
    return bool(public_url and secret and any(takes_notifications(dict(spec)) for spec in sources))


def renew_subscriptions(name: str, sources: Mapping[str, Mapping[str, Any]], open_source: Callable[[str], Any], *,
                        public_url: str | None, secret: str | None) -> dict[str, Any]:
    """Create and renew the subscriptions of one source ("*": every source whose kind takes
    notifications): {source name: what its ``watch`` did}. Nothing where notifications are not set
    up; a source of another kind has none; a name not configured is the opener's error."""
    if not (public_url and secret and notifications_ready(public_url, secret, sources.values())):
        return {}
    out: dict[str, Any] = {}
    for source_name in sorted(sources) if name == "*" else [name]:
        if source_name in sources and not takes_notifications(dict(sources[source_name])):
            continue
        source = open_source(source_name)
        out[source_name] = source.watch(notify_url(public_url, source_name), client_state(secret, source_name))
    return out
