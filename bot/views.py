"""What a modal's submission carries back: the ``private_metadata`` the modal was opened with."""

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
