"""The composition root: every service built from the settings, once, on first use.

The web process (``web_app``), the Socket Mode process (``bolt_app(socket_mode=True)``), the
worker (``chatops_app/worker.py``) and the CLI all start here; nothing else constructs a service. Each
extension point is looked up in its registry: identity providers
(``connectors.identity.registry``), index engines (``connectors.index.registry``), language
models (``connectors.llm.registry``), document sources (``connectors.sources.registry``) and
action connectors (``connectors.actions.registry``). It builds and passes in; the rules are the
use cases' (``usecases/``) and the plugins' own.

One class, ``Container``, made of a part per concern, each in its module: ``core.py`` (settings,
Redis, state, store, Celery, the catalogue), ``index.py`` (the embedder, the index, the model),
``identity.py``, ``answering.py`` (the question's use cases), ``sources.py`` (syncs,
notifications), ``slack.py`` (Slack and the web process), ``console.py`` (``/admin``) and
``workers.py`` (the task handlers, the worker's upkeep), ``tools.py`` (live tools).

Services are built lazily and at most once per process, under one lock (a worker's threads
share the embedded index, which admits one opener, and the model).

The index, embedding, language-model and identity connectors are imported where they are
built (``index.py``, ``identity.py``), not at the top: the web process never builds them, and
importing them would cost it 1.5 s and about 100 MB more per process (all imports: 2.45 s and
203 MB RSS; without those four: 0.93 s and 105 MB, measured on this machine). These are the only
function-level imports of the project outside the CLI, whose commands import this package the
same way (``chatops --help`` 0.24 s instead of 3.3 s).
"""

from __future__ import annotations

from chatops_app.container.answering import AnsweringParts
from chatops_app.container.console import ConsoleParts
from chatops_app.container.core import Core
from chatops_app.container.identity import IdentityParts
from chatops_app.container.index import IndexParts
from chatops_app.container.slack import SlackParts
from chatops_app.container.sources import SourceParts
from chatops_app.container.tools import ToolParts
from chatops_app.container.tools_auth import ToolAuthParts
from chatops_app.container.workers import WorkerParts

__all__ = ["Container"]


class Container(Core, IndexParts, IdentityParts, AnsweringParts, SourceParts, ToolParts, ToolAuthParts, SlackParts,
                ConsoleParts, WorkerParts):
    """Every service of one process (``Container(settings)``; ``http_client``: the session msal,
    Graph and the action connectors talk through, which tests route to the stand-ins)."""
