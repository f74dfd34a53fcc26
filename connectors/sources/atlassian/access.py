"""Intersections of Atlassian grants as one ACL.

Confluence (space ∩ page ∩ ancestors) and Jira (project browse ∩ issue security level) both
decide read access as an intersection of grants, each a union of people and groups. One such
union is an ACL as it is (groups stay groups, their membership live through the synced
groups). An intersection of several cannot be written as one union of groups, so it is taken
over people: each grant's people and its groups' members, intersected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from chatops.access import Acl


@dataclass(frozen=True)
class Grant:
    """Who one rule lets read: people (emails), groups (tokens), or everyone (``public``)."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    public: bool = False

    @classmethod
    def of(cls, users: Iterable[str] = (), groups: Iterable[str] = (), public: bool = False) -> "Grant":
        return cls(frozenset(u.strip().lower() for u in users if u), frozenset(groups), public)

    def people(self, members_of: Callable[[str], frozenset[str]]) -> set[str]:
        return set(self.users).union(*(members_of(t) for t in self.groups))


def intersect(grants: Sequence[Grant], members_of: Callable[[str], frozenset[str]]) -> Acl:
    """The ACL of "every one of ``grants`` lets them read" (no grant: nobody)."""
    if not grants:
        return Acl()
    narrowing = [g for g in grants if not g.public]
    if not narrowing:
        return Acl.of(public=True)
    if len(narrowing) == 1:
        only = narrowing[0]
        return Acl.of(groups=only.groups, users=only.users)
    people = narrowing[0].people(members_of)
    for grant in narrowing[1:]:
        people &= grant.people(members_of)
    return Acl.of(users=people)
