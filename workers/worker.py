"""The worker process's entry: ``celery -A workers.worker worker`` or ``chatops worker``."""

from __future__ import annotations

from chatops import logs
from chatops.container import Container
from chatops.settings import Settings
from workers.celery_app import create_celery, register_tasks
from workers.pipelines.respond import Responder


def build(settings: Settings | None = None):
    settings = settings or Settings.load()
    logs.setup(settings.log_level, settings.log_format)
    app = create_celery(settings)
    container = Container(settings)
    register_tasks(app, lambda: Responder(container))
    return app, container


app, container = build()
