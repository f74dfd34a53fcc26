"""What the Confluence and Jira stand-ins share: an Atlassian site's people and groups (one
directory per site, as Atlassian keeps it), a clock tests can move, and scripted 429s.

A stand-in mixes :class:`AtlassianSite` in before ``LoopbackServer`` and sets, in its
``__init__``, ``users``, ``groups``, ``members``, ``clock``, ``_throttle``, ``_lock``, and the
service account's ``email`` and API ``token`` (HTTP basic authentication)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import timedelta


@dataclass
class FakeUser:
    account_id: str
    email: str
    hidden: bool          # the profile hides the email from other accounts
    name: str
    active: bool = True


class AtlassianSite:
    def _authenticated(self, header: str) -> bool:
        """HTTP basic with the service account's email (any case) and API token."""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user.lower() == self.email.lower() and password == self.token

    # -- time and scripted faults ----------------------------------------------------------------

    def advance(self, minutes: float) -> None:
        earlier = self.clock
        self.clock = lambda: earlier() + timedelta(minutes=minutes)

    def throttle(self, n: int, retry_after: int = 1) -> None:
        """The next ``n`` requests answer 429 with this ``Retry-After``."""
        with self._lock:
            self._throttle.extend([retry_after] * n)

    # -- people and groups -----------------------------------------------------------------------

    def add_user(self, account_id: str, email: str, *, hidden: bool = False, name: str | None = None,
                 active: bool = True) -> FakeUser:
        with self._lock:
            user = FakeUser(account_id, email, hidden, name or email.split("@")[0].replace(".", " ").title(), active)
            self.users[account_id] = user
            return user

    def add_group(self, name: str) -> str:
        with self._lock:
            group_id = str(uuid.uuid4())
            self.groups[group_id], self.members[group_id] = name, []
            return group_id

    def rename_group(self, group_id: str, new_name: str) -> None:
        with self._lock:
            assert group_id in self.groups, f"no group {group_id}"
            self.groups[group_id] = new_name

    def set_members(self, group_id: str, account_ids) -> None:
        with self._lock:
            missing = [a for a in account_ids if a not in self.users]
            assert not missing and group_id in self.groups, f"unknown group or users {missing}"
            self.members[group_id] = list(account_ids)
