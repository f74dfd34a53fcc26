"""The scheduler's upkeep, run by a worker: expire proposals, the daily report, the answer cache's
clean-up (``handler``); the report's Block Kit (``blocks``); the ``maintenance`` task (``task``).
No listener: ``chatops beat`` sends the jobs (workers/beat.py)."""
