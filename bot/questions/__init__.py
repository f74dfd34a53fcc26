"""Questions: @-mentions, DMs and follow-ups (``listener``), answered by a worker (``handler``) with
the answer's Block Kit (``blocks``); the ``question`` task (``task``)."""
