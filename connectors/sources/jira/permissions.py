"""Who may read a Jira issue: one rule, pure functions, no calls.

Read access = the people the project's permission scheme gives **Browse projects** ∩, when the
issue has a **security level**, the level's members. Holders of either:

* ``group`` — by its id (``value``; the name in ``parameter`` may be renamed), as
  ``atlassian:<site host>::<group id>``;
* ``projectRole`` — the role's actors in that project (people and groups);
* ``user`` — that account; ``projectLead`` — the project's lead;
* ``reporter`` / ``assignee`` — that person *of the issue* (per issue);
* ``anyone`` and ``applicationRole`` (everyone with Jira) — everyone, only when the source says
  ``anyone_public``; otherwise nothing;
* anything else (custom fields, portal customers, new holder types) — nothing (deny by default),
  counted in the logs.

A holder that cannot be resolved (a role that cannot be read) makes the issue unreadable: hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

BROWSE = "BROWSE_PROJECTS"
EVERYONE = frozenset({"anyone", "applicationrole"})
PER_ISSUE = frozenset({"reporter", "assignee"})


@dataclass(frozen=True)
class Holders:
    """The holders of one grant, sorted by what resolving them needs."""

    accounts: frozenset[str] = frozenset()    # account ids (users, the project lead)
    group_ids: frozenset[str] = frozenset()
    group_names: frozenset[str] = frozenset()  # holders that name a group without its id
    roles: frozenset[str] = frozenset()       # project role ids
    per_issue: frozenset[str] = frozenset()   # "reporter", "assignee"
    everyone: bool = False
    ignored: tuple[str, ...] = field(default=())


def holders_of(entries: Iterable[dict], *, lead: str | None = None, permission: str | None = BROWSE) -> Holders:
    """The holders among permission-scheme entries (``permission`` given) or security-level
    members (``permission=None``: every entry counts)."""
    accounts, group_ids, group_names, roles, per_issue, ignored = set(), set(), set(), set(), set(), []
    everyone = False
    for entry in entries:
        if permission is not None and str(entry.get("permission") or "") != permission:
            continue
        holder = entry.get("holder") or {}
        kind = str(holder.get("type") or "").strip()
        parameter = holder.get("parameter")
        value = holder.get("value")
        low = kind.lower()
        if low == "group":
            if value:
                group_ids.add(str(value))
            elif parameter:
                group_names.add(str(parameter))
            else:
                ignored.append("a group without an id or a name")
        elif low == "projectrole" and parameter:
            roles.add(str(parameter))
        elif low == "user" and (parameter or value):
            accounts.add(str(parameter or value))
        elif low == "projectlead":
            if lead:
                accounts.add(lead)
            else:
                ignored.append("the project lead (unknown)")
        elif low in PER_ISSUE:
            per_issue.add(low)
        elif low in EVERYONE:
            everyone = True
        else:
            ignored.append(f"a {kind or 'holder'} holder")
    return Holders(frozenset(accounts), frozenset(group_ids), frozenset(group_names), frozenset(roles),
                   frozenset(per_issue), everyone, tuple(ignored))


def role_members(actors: Iterable[dict]) -> tuple[set[str], set[str], set[str]]:
    """(account ids, group ids, group names without an id) of a project role's actors."""
    accounts, group_ids, group_names = set(), set(), set()
    for actor in actors:
        user = actor.get("actorUser") or {}
        group = actor.get("actorGroup") or {}
        if user.get("accountId"):
            accounts.add(str(user["accountId"]))
        elif group.get("groupId"):
            group_ids.add(str(group["groupId"]))
        elif group.get("name") or actor.get("name"):
            group_names.add(str(group.get("name") or actor.get("name")))
    return accounts, group_ids, group_names
