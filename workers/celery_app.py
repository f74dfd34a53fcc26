"""The Celery app on Redis, and the tasks it runs.

Tasks carry ids and text only. Delivery is at-least-once (``acks_late``;
a worker that dies mid-task gets its task redelivered), and the responder is
written so a redelivery updates the same Slack message instead of posting a
second answer.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from chatops.logs import correlated
from chatops.settings import Settings

log = logging.getLogger(__name__)

TASKS = {"question": "chatops.question", "answer_in_dm": "chatops.answer_in_dm",
         "decision": "chatops.decision"}


def create_celery(settings: Settings) -> Celery:
    app = Celery("chatops", broker=settings.redis_url)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name,
        task_soft_time_limit=settings.task_soft_time_limit, task_time_limit=settings.task_time_limit,
        broker_transport_options={"visibility_timeout": max(3600, settings.task_time_limit * 4)},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False, worker_redirect_stdouts=False,
    )
    return app


def make_dispatch(app: Celery, settings: Settings):
    """The web process's side: send a task by name (no worker code imported)."""
    def dispatch(kind: str, payload: dict) -> None:
        # argsrepr/kwargsrepr: no question text in message headers or monitoring (and no
        # per-message repr cost on the acknowledgement path).
        app.send_task(TASKS[kind], kwargs={"payload": payload}, queue=settings.queue_name,
                      argsrepr="()", kwargsrepr=f"{{payload: {kind} {payload.get('cid', '')}}}")
    return dispatch


def register_tasks(app: Celery, responder_factory, *, max_retries: int = 3) -> None:
    """Bind the tasks to a lazily built responder (one per worker process)."""
    holder: dict = {}
    lock = threading.Lock()

    def responder():
        # Worker threads share one responder; build it once (the embedded index admits one opener).
        with lock:
            if "r" not in holder:
                holder["r"] = responder_factory()
            return holder["r"]

    app.chatops_warm_up = responder  # type: ignore[attr-defined]

    from bot.gateway import SlackTransientError

    def run(task, fn_name: str, payload: dict) -> None:
        with correlated(payload.get("cid")) as cid:
            r = responder()
            try:
                getattr(r, fn_name)(payload)
            except SlackTransientError as exc:
                if task.request.retries >= task.max_retries:
                    log.error("giving up after retries", extra={"error": str(exc)})
                    r.fail(payload, cid, "Slack kept failing")
                    return
                delay = 2 ** task.request.retries
                log.warning("transient failure; will retry", extra={"error": str(exc), "in_s": delay})
                raise task.retry(countdown=delay, exc=exc)
            except SoftTimeLimitExceeded:
                log.error("task ran out of time")
                r.fail(payload, cid, "it took too long")
            except Exception:
                log.exception("task failed")
                r.fail(payload, cid)

    @app.task(name=TASKS["question"], bind=True, max_retries=max_retries)
    def question(self, payload: dict) -> None:
        run(self, "question", payload)

    @app.task(name=TASKS["answer_in_dm"], bind=True, max_retries=max_retries)
    def answer_in_dm(self, payload: dict) -> None:
        run(self, "answer_in_dm", payload)

    @app.task(name=TASKS["decision"], bind=True, max_retries=max_retries)
    def decision(self, payload: dict) -> None:
        run(self, "decision", payload)
