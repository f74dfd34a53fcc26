"""What a Slack feature's handler is built from: the services the composition root provides
(``chatops_app/container/`` has each, built once per process) and the settings."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from bot.channels import CachedChannelDirectory
from bot.gateway import SlackGateway
from bot.people import SlackPeople
from bot.policies import ChannelPolicyLookup
from chatops.catalogue import Catalogue
from chatops.errors import ConfigError
from chatops.progress import Progress
from chatops.settings import Settings
from chatops.state import State
from chatops.store.answers import Answers
from usecases.answer_cache import AnswerCache
from usecases.answering import Answering
from usecases.proposals import ProposalService
from usecases.tools import Toolbox


class Services(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def redis(self) -> Any: ...
    @property
    def state(self) -> State: ...
    @property
    def gateway(self) -> SlackGateway | None: ...
    @property
    def people(self) -> SlackPeople | None: ...
    @property
    def channel_directory(self) -> CachedChannelDirectory | None: ...
    @property
    def channel_policies(self) -> ChannelPolicyLookup: ...
    @property
    def identity(self) -> Any: ...                               # connectors.identity.base.IdentityProvider
    @property
    def answering(self) -> Answering: ...
    @property
    def proposals(self) -> ProposalService: ...
    @property
    def catalogue(self) -> Catalogue: ...
    @property
    def answers(self) -> Answers: ...
    @property
    def answer_cache(self) -> AnswerCache | None: ...
    @property
    def source_ids(self) -> dict[str, tuple[str, str]]: ...     # source name -> (kind, its index source id)
    @property
    def toolbox(self) -> Toolbox: ...                            # the live tools (usecases/tools.py)
    @property
    def tool_connections(self) -> Any: ...                       # usecases.tool_auth.ToolConnections | None
    @property
    def dispatch(self) -> Callable[[str, dict], None]: ...       # hands a task to the workers (kind, payload)

    def progress_for(self, kind: str, payload: dict) -> Progress: ...


def slack_required(services: Services) -> SlackGateway:
    """The gateway of a handler that answers in Slack (a worker without a bot token cannot)."""
    if services.gateway is None:
        raise ConfigError("SLACK_BOT_TOKEN must be set for the worker to answer in Slack")
    return services.gateway
