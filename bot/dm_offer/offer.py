"""The offer as kept while it can be taken (a day): the question, who asked it and the thread's
exchanges; written by the question's handler, read by the click's."""

from __future__ import annotations

from typing import Any

from chatops import keys
from chatops.state import State

OFFER_TTL = 86400


def keep(state: State, offer_id: str, *, question: str, asker: str | None, history: list[dict]) -> None:
    state.set_json({"question": question, "asker": asker, "history": history}, OFFER_TTL, keys.CACHE_OFFER, offer_id)


def find(state: State, offer_id: str) -> Any:
    """The offer, or None once it has expired (or never was)."""
    return state.get_json(keys.CACHE_OFFER, offer_id)
