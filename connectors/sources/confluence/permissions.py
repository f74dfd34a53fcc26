"""Who may read a Confluence page: one rule, pure functions, no calls.

Read access = the space's **read** permission ∩ the page's own read restriction ∩ the read
restriction of **every** ancestor. A page (or ancestor) without a read restriction adds no
constraint — it inherits, it is neither "nobody" nor "everyone" — and the space decides.

Principals: people by email (account ids mapped by ``Accounts``; an unmapped account grants
nothing), groups by their id (``atlassian:<host>::<group id>``). Space permissions granted to
roles, apps or anything else grant nothing here (deny by default). Anonymous read access (which
only v1's space permissions show: an entry with ``anonymousAccess: true``) makes the space's
pages public only with ``anonymous_public``.

The intersection is ``connectors/sources/atlassian/access.py``'s: with the space alone, the ACL
names its groups and people; with restrictions it is taken over people, and the permission pass
recomputes it when memberships change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

from chatops.access import Acl
from connectors.atlassian.accounts import group_token
from connectors.sources.atlassian.access import Grant, intersect

@dataclass(frozen=True)
class Restriction:
    """One content's own read restriction."""

    users: frozenset[str] = frozenset()      # emails (mapped)
    groups: frozenset[str] = frozenset()     # group tokens
    restricted: bool = False                 # any restriction at all (even of unmapped accounts)


@dataclass(frozen=True)
class SpaceRead:
    """Who may read a space."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    public: bool = False
    accounts: tuple[str, ...] = ()           # account ids still to map to emails
    ignored: tuple[str, ...] = ()            # why entries granted nothing

    def with_users(self, emails: Iterable[str]) -> "SpaceRead":
        return replace(self, users=self.users | frozenset(e.lower() for e in emails), accounts=())


def space_read(entries: Iterable[dict], *, host: str, anonymous: bool = False,
               anonymous_public: bool = False) -> SpaceRead:
    """The read grants among a space's permission assignments (v2 ``/spaces/{id}/permissions``);
    ``anonymous``: the space is open to anonymous readers (v1's ``anonymousAccess``)."""
    accounts, groups, ignored = [], set(), []
    public = anonymous and anonymous_public
    if anonymous and not anonymous_public:
        ignored.append("anonymous access (anonymous_public is false)")
    for entry in entries:
        op = entry.get("operation") or {}
        if str(op.get("key") or "").lower() != "read" or str(op.get("targetType") or "").lower() != "space":
            continue
        principal = entry.get("principal") or {}
        kind, pid = str(principal.get("type") or "").lower(), str(principal.get("id") or "")
        if kind == "user" and pid:
            accounts.append(pid)
        elif kind == "group" and pid:
            groups.add(group_token(host, pid))
        else:
            ignored.append(f"a {kind or 'principal'} grant")
    return SpaceRead(groups=frozenset(groups), public=public, accounts=tuple(accounts), ignored=tuple(ignored))


def effective_acl(space: SpaceRead | None, chain: Sequence[Restriction | None],
                  members_of: Callable[[str], frozenset[str]]) -> Acl | None:
    """The ACL of a content whose space and chain of restrictions (ancestors first, itself last)
    are given; None when any of them could not be read (the content is then hidden)."""
    if space is None or any(r is None for r in chain):
        return None
    grants = [Grant(space.users, space.groups, space.public)]
    grants += [Grant(r.users, r.groups) for r in chain if r is not None and r.restricted]
    return intersect(grants, members_of)
