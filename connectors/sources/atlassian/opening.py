"""How a configured Confluence or Jira source opens its clients (``connectors/atlassian/``): the
site's, with the API token from the variable its config names and the source-wide pacing, and the
organization's directory when the config names one; what its environment lacks, checked at
start-up."""

from __future__ import annotations

import os
from typing import Mapping

from connectors.atlassian.directory import ADMIN_API, OrgDirectory
from connectors.atlassian.http import AtlassianHttp
from connectors.http.pacing import Pacer
from connectors.sources.settings import SourceSettings


def missing_token(config, environ: Mapping[str, str] = os.environ) -> str | None:
    """What a source's environment lacks (checked at start-up), for ``SourceKind.needs``."""
    if config is not None and not environ.get(config.token_env):
        return (f"token_env: the environment variable {config.token_env} (the API token of "
                f"{config.email}) is not set")
    if config is not None and config.admin_key_env and not environ.get(config.admin_key_env):
        return (f"admin_key_env: the environment variable {config.admin_key_env} (the organization's "
                f"API key) is not set")
    return None


def open_http(config, context, service: str, site: str) -> AtlassianHttp:
    """The client of a configured source: the token from the variable its config names, the
    source-wide pacing bounded by the settings, the context's session (tests route it)."""
    token = (context.environ or os.environ).get(config.token_env)
    if not token:
        raise ValueError(f"the environment variable {config.token_env} holds no API token")
    max_wait = context.settings.of(SourceSettings).source_max_throttle_wait if context.settings is not None else 120.0
    return AtlassianHttp(site, config.email, token, service=service, session=context.http,
                         pacer=Pacer(service, max_wait=max_wait))


def open_directory(config, context, pacer: Pacer) -> OrgDirectory | None:
    """The organization's directory, when the source names one (``org_id``, ``admin_key_env``)."""
    if not config.org_id:
        return None
    key = (context.environ or os.environ).get(config.admin_key_env or "")
    if not key:
        raise ValueError(f"the environment variable {config.admin_key_env} holds no organization API key")
    http = AtlassianHttp(ADMIN_API, None, key, service="the Atlassian admin API", session=context.http, pacer=pacer)
    return OrgDirectory(http, config.org_id)
