"""What a modal's submission carries back (the ``private_metadata`` the modal was opened with), and
where a click came from (a message or the App Home tab)."""

from __future__ import annotations

import json


def metadata(view: dict) -> dict:
    """The modal's ``private_metadata`` as a dict ({} when missing or not a JSON object: never trusted
    further than the ids in it, which the worker looks up)."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def in_home_tab(body: dict) -> bool:
    """A ``block_actions`` body from a click on the App Home tab: its ``container`` is the view
    (``{"type": "view", "view_id": …}``) and ``view.type`` is ``home``; it has no ``channel`` and no
    ``message`` (those are a message button's)."""
    container = body.get("container") or {}
    view = body.get("view") or {}
    return container.get("type") == "view" and isinstance(view, dict) and view.get("type") == "home"
