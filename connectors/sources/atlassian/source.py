"""What a Confluence and a Jira source have in common: how they are opened from their config,
their account mapping, and dates for CQL and JQL (minutes, in the time zone the site or the
account reads them in). Each kind sets ``KIND``, ``SERVICE``, where users are looked up, and
where its time zone is read; a configured key the site does not show is :class:`NotOnSite`."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatops.checks import CheckFailed
from chatops.errors import ConfigError
from connectors.atlassian.accounts import Accounts, group_token
from connectors.atlassian.http import AtlassianHttp
from connectors.sources.atlassian.opening import missing_token, open_directory, open_http
from connectors.sources.base import Member, SourceGroup, SourceUnavailable

log = logging.getLogger(__name__)


class NotOnSite(SourceUnavailable, ConfigError):
    """Spaces or projects the configuration names that the site does not show the account.
    Atlassian answers the same whether there is none by that key or the account may not see it,
    so the configuration (or the account's permissions) is to fix. The sync stops and records
    it like any unreadable source; nothing is pruned because of it."""

    def __init__(self, message: str, keys=()):
        super().__init__(message, transient=False)
        self.keys = tuple(keys)


class AtlassianSourceBase:
    KIND = ""                   # the kind's name in the registry ("confluence", "jira")
    SERVICE = ""                # as people name it in messages
    SCOPE_NOUN = ""             # what its scopes are ("space", "project")
    USERS_BULK = ""             # users by account id, in bulk
    EMAILS_BULK = ""            # emails by account id (apps Atlassian approved)
    ZONE = ("", "")             # (path, field) of the time zone dates are read in
    lists_everything = False

    @classmethod
    def missing_settings(cls, settings, config=None) -> str | None:
        return missing_token(config)

    @classmethod
    def id_for(cls, name: str, config=None) -> str:
        return f"{cls.KIND}:{name}"

    @classmethod
    def from_config(cls, config, context):
        http = open_http(config, context, cls.SERVICE, config.url)
        return cls(context.name or cls.KIND, config, http, directory=open_directory(config, context, http.pacer))

    def __init__(self, name: str, config, http: AtlassianHttp, *, directory=None,
                 now=lambda: datetime.now(timezone.utc)):
        self.name = name
        self.source_id = self.id_for(name)
        self.config = config
        self.http = http
        self.host = urlsplit(config.url).hostname or ""
        self._now = now
        self._zone: ZoneInfo | None = None
        self.accounts = Accounts(http, bulk_path=self.USERS_BULK, email_path=self.EMAILS_BULK, directory=directory)
        self._members: dict[str, frozenset[str]] = {}     # group token -> emails (this pass)

    # -- the site's groups (one per site; the kind says where they are listed) -------------------

    def groups(self) -> list[SourceGroup]:
        """Every group of the site with its members (a permission pass starts here)."""
        self.http.new_window()
        self._members = {}
        self.accounts.start_pass()
        self._start_pass()
        out = []
        for group_id in self._site_group_ids():
            token = group_token(self.host, group_id)
            members = tuple(self._group_members(group_id))
            self._members[token] = frozenset(m.id for m in members)
            out.append(SourceGroup(token, members))
        return out

    def _start_pass(self) -> None:
        """What the kind forgets when a permission pass starts."""

    def _site_group_ids(self) -> Iterator[str]:
        raise NotImplementedError

    def _member_accounts(self, group_id: str) -> Iterator[tuple[str, str | None]]:
        """(account id, email or None) of each member of a group."""
        raise NotImplementedError

    def _group_members(self, group_id: str) -> list[Member]:
        accounts = []
        for account, email in self._member_accounts(group_id):
            self.accounts.remember(account, email)
            accounts.append(account)
        emails = self.accounts.emails(accounts)
        return [Member("user", e) for e in dict.fromkeys(emails.values()) if e]

    def _members_of(self, token: str) -> frozenset[str]:
        """The people in a group, by its token (synced this pass, or read now)."""
        if token not in self._members:
            self._members[token] = frozenset(m.id for m in self._group_members(token.rpartition("::")[2]))
        return self._members[token]

    def check(self) -> str:
        """``chatops doctor``: the account signs in and every configured space or project is there."""
        try:
            scopes = self.scopes()
        except NotOnSite as exc:
            raise CheckFailed(str(exc).split(": check ")[0], "check " + str(exc).split(": check ", 1)[-1]) from None
        except SourceUnavailable as exc:
            raise CheckFailed(f"{self.SERVICE} at {self.config.url}: {exc}",
                              f"check url, email ({self.config.email}) and the API token") from None
        what = "the JQL filter" if getattr(self.config, "jql", None) and not getattr(self.config, "projects", None) \
            else f"{len(scopes)} {self.SCOPE_NOUN}(s)"
        return f"{what} readable by {self.config.email} on {self.config.url}"

    def not_on_site(self, missing, *, noun: str, field: str, verb: str, permission: str) -> NotOnSite:
        """The error for configured keys the site did not list (one line: what, and what to do)."""
        keys = sorted(missing)
        many = len(keys) > 1
        return NotOnSite(f"{self.SERVICE} source '{self.name}': no {noun}{'s' if many else ''} {', '.join(keys)} "
                         f"on {self.config.url} (or {self.config.email} cannot {verb} {'them' if many else 'it'}): "
                         f"check {field}: in CHATOPS_CONFIG and the account's {permission}; the source's other "
                         f"{noun}s wait until then", keys)

    def local_minutes(self, when: datetime) -> str:
        """A CQL or JQL date: minutes, in the zone the site (or the account) reads dates in."""
        if self._zone is None:
            path, field = self.ZONE
            value = self.http.get_json(path).get(field)
            try:
                self._zone = ZoneInfo(str(value or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone; using UTC", extra={"source": self.name, "zone": value})
                self._zone = ZoneInfo("UTC")
        return when.astimezone(self._zone).strftime("%Y/%m/%d %H:%M")

    def close(self) -> None:
        self.http.session.close()
