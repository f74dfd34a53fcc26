"""Decisions on proposed actions: Approve / Reject and the reason form (``listener``), applied by a
worker (``handler``); the proposal messages (``blocks``); the ``decision`` task (``task``)."""
