"""bot/features.py: every Slack feature is a folder of the same parts, and one line of the table
the Bolt app, the task table and the worker's handlers are all built from."""

from __future__ import annotations

from pathlib import Path

from bot.features import FEATURES, handlers_of, tasks_of
from chatops_app.tasks import TASKS
from workers.tasks import WORKER_TASKS

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_every_feature_folder_is_a_line_of_the_table_and_nothing_else_is():
    folders = {p.parent.name for p in BOT.glob("*/__init__.py")}
    assert folders == {f.name for f in FEATURES}


def test_each_feature_has_the_parts_it_declares_where_every_feature_keeps_them():
    for f in FEATURES:
        files = {p.name for p in (BOT / f.name).glob("*.py")}
        assert ("listener.py" in files) == (f.listen is not None), f.name
        assert ("task.py" in files) == bool(f.tasks), f.name
        assert ("handler.py" in files) == (f.handler is not None), f.name
        if f.listen is not None:
            assert (f.listen.__module__, f.listen.__name__) == (f"bot.{f.name}.listener", "register")
        if f.handler is not None:
            assert (f.handler.__module__, f.handler.__name__) == (f"bot.{f.name}.handler", "build")


def test_every_task_kind_has_one_handler_and_is_in_the_task_table():
    slack = handlers_of(FEATURES)
    assert set(slack) == {t.kind for t in tasks_of(FEATURES)}
    assert set(TASKS) == set(slack) | {t.kind for t in WORKER_TASKS}
    assert not set(slack) & {t.kind for t in WORKER_TASKS}
