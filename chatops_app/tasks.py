"""Every task kind the workers run, in one table: each Slack feature's (bot/features.py) and the
workers' own (workers/tasks.py)."""

from __future__ import annotations

from bot.features import FEATURES, tasks_of
from chatops.tasks import TaskTable
from workers.tasks import WORKER_TASKS

TASKS = TaskTable(*tasks_of(FEATURES), *WORKER_TASKS)
