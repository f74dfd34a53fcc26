"""Atlassian accounts and groups as the framework's ACL tokens.

* A person is their **email**, as the bot's identity knows people. Atlassian identifies them by
  account id and may hide the email (the profile's visibility setting): the email is then asked
  of the email lookup Atlassian offers to apps allowed to use it, and an account that still has
  none **grants nothing** and is counted (``unmapped``) — never guessed from a display name.
* A group is ``atlassian:<site host>::<group id>``: the group's id, which survives a rename,
  scoped by the site (groups of two sites never collide; Confluence and Jira of one site share
  their groups, as Atlassian does).
"""

from __future__ import annotations

import logging
from typing import Iterable

from chatops.errors import SourceUnavailable
from connectors.atlassian.http import AtlassianHttp, NotFound

log = logging.getLogger(__name__)

BULK = 100      # account ids per lookup


def group_token(site_host: str, group_id: str) -> str:
    return f"atlassian:{site_host.lower()}::{group_id}"


class Accounts:
    """Emails of account ids, looked up in bulk and kept for the life of the source object."""

    def __init__(self, http: AtlassianHttp, *, bulk_path: str, email_path: str | None, directory=None):
        self.http = http
        self.directory = directory          # OrgDirectory: where hidden emails are found, if any
        self._bulk_path = bulk_path
        self._email_path = email_path       # None, or after the site refused it: not asked again
        self._emails: dict[str, str | None] = {}
        self.unmapped: set[str] = set()

    def start_pass(self) -> None:
        """A permission pass begins: ask again for the emails that were hidden."""
        self._emails = {a: e for a, e in self._emails.items() if e}
        self.unmapped = set()
        if self.directory is not None:
            self.directory.reset()

    def remember(self, account_id: str, email: str | None) -> None:
        """An email an answer carried anyway (restrictions and group members list them)."""
        if account_id and email and "@" in email:
            self._emails[account_id] = email.strip().lower()

    def emails(self, account_ids: Iterable[str]) -> dict[str, str | None]:
        wanted = [a for a in dict.fromkeys(account_ids) if a]
        todo = [a for a in wanted if a not in self._emails]
        for start in range(0, len(todo), BULK):
            self._look_up(todo[start:start + BULK])
        out = {a: self._emails.get(a) for a in wanted}
        missing = {a for a, e in out.items() if not e}
        if missing - self.unmapped:
            log.warning("Atlassian accounts without a visible email grant nothing",
                        extra={"accounts": len(missing - self.unmapped)})
        self.unmapped |= missing
        return out

    def _look_up(self, ids: list[str]) -> None:
        # Jira answers 10 a page unless asked for more; Confluence takes ``limit``
        body = self.http.get_json(self._bulk_path, [("accountId", a) for a in ids]
                                  + [("maxResults", len(ids)), ("limit", len(ids))])
        for user in body.get("results") or body.get("values") or []:   # Confluence | Jira
            self.remember(str(user.get("accountId") or ""), user.get("email") or user.get("emailAddress"))
        hidden = [a for a in ids if not self._emails.get(a)]
        if hidden and self._email_path:
            try:
                body = self.http.get_json(self._email_path, [("accountId", a) for a in hidden])
            except (SourceUnavailable, NotFound) as exc:
                log.info("the site's email lookup is not available to this account; hidden emails stay unmapped",
                         extra={"error": str(exc)[:200]})
                self._email_path = None
            else:
                for entry in body.get("results") or ([body] if body.get("accountId") else []):
                    self.remember(str(entry.get("accountId") or ""), entry.get("email"))
        hidden = [a for a in ids if not self._emails.get(a)]
        if hidden and self.directory is not None:
            listed = self.directory.emails()
            for a in hidden:
                self.remember(a, listed.get(a))
        for a in ids:
            self._emails.setdefault(a, None)
