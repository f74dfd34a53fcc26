"""The Slack features, one line each: what each listens to, the tasks it hands to the workers, and
how its handler is built. ``bot/app.py`` registers the listeners from this table, the composition
root builds the task table and the handlers from it.

A feature is a folder, ``bot/<feature>/``, with the same parts where it has them: ``listener.py``
(``register(app, deps)``: Bolt listeners that acknowledge and queue), ``task.py`` (its
``chatops.tasks.TaskKind``), ``handler.py`` (the worker's side: ``handle(payload)``,
``failed(payload, reference, detail)``, and ``build(services)``) and ``blocks.py`` (its Block Kit).
Adding one is that folder and a line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from bot.decisions import handler as decisions_handler, listener as decisions_listener
from bot.decisions.task import DECISION
from bot.dm_offer import handler as dm_offer_handler, listener as dm_offer_listener
from bot.dm_offer.task import ANSWER_IN_DM
from bot.enqueue import ListenerDeps
from bot.feedback import handler as feedback_handler, listener as feedback_listener
from bot.feedback.task import FEEDBACK
from bot.home import handler as home_handler, listener as home_listener
from bot.home.task import HOME
from bot.maintenance import handler as maintenance_handler
from bot.maintenance.task import MAINTENANCE
from bot.membership import listener as membership_listener
from bot.questions import handler as questions_handler, listener as questions_listener
from bot.questions.task import QUESTION
from bot.services import Services
from bot.tool_connections import handler as tool_connections_handler, listener as tool_connections_listener
from bot.tool_connections.task import TOOL_CONNECTION
from chatops.tasks import TaskKind


@dataclass(frozen=True)
class Feature:
    name: str
    listen: Callable[[Any, ListenerDeps], None] | None = None    # registers its Bolt listeners on the app
    tasks: tuple[TaskKind, ...] = ()                             # the kinds of work it queues
    handler: Callable[[Services], Any] | None = None             # builds the handler of those tasks


FEATURES: tuple[Feature, ...] = (
    Feature("questions", questions_listener.register, (QUESTION,), questions_handler.build),
    Feature("membership", membership_listener.register),
    Feature("dm_offer", dm_offer_listener.register, (ANSWER_IN_DM,), dm_offer_handler.build),
    Feature("decisions", decisions_listener.register, (DECISION,), decisions_handler.build),
    Feature("feedback", feedback_listener.register, (FEEDBACK,), feedback_handler.build),   # and escalations
    Feature("tool_connections", tool_connections_listener.register, (TOOL_CONNECTION,),
            tool_connections_handler.build),   # Connect / Disconnect a person's own account to a tool
    Feature("home", home_listener.register, (HOME,), home_handler.build),   # App Home, prompts, context
    Feature("maintenance", None, (MAINTENANCE,), maintenance_handler.build),   # its jobs: sent by chatops beat
)


def tasks_of(features: Iterable[Feature]) -> tuple[TaskKind, ...]:
    return tuple(task for feature in features for task in feature.tasks)


def handlers_of(features: Iterable[Feature]) -> dict[str, Callable[[Services], Any]]:
    """Task kind -> how its handler is built."""
    return {task.kind: feature.handler for feature in features if feature.handler is not None
            for task in feature.tasks}
