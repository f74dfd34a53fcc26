"""Who may see what: the one place that defines document visibility.

A document (and each of its chunks) carries an ``Acl``: groups, user emails
and a public flag. A ``Principal`` (a resolved person) sees it if it is
public, lists the person's email, or shares a group with the person. No ACL
means visible to nobody.

An ``Audience`` is everyone who will read an answer: the asker alone in a DM,
every member of a channel otherwise. A chunk may be used for an answer only
if *every* principal of the audience may see it. The index turns an audience
into its own filter; ``Audience.may_use`` is the same rule in Python, applied
again to every hit the index returns (defence in depth: a bug in one layer
cannot leak on its own). An audience may also withhold the restricted
documents of sources whose permissions are out of date (``withheld``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable


def _norm_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


@dataclass(frozen=True)
class Acl:
    groups: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()  # lower-cased emails
    public: bool = False

    @classmethod
    def of(cls, groups: Iterable[str] = (), users: Iterable[str] = (), public: bool = False) -> "Acl":
        return cls(
            groups=frozenset(str(g) for g in groups),
            users=frozenset(e for e in (_norm_email(u) for u in users) if e),
            public=bool(public),
        )

    @property
    def visible_to_anyone(self) -> bool:
        return self.public or bool(self.groups) or bool(self.users)

    def to_payload(self) -> dict[str, Any]:
        return {
            "acl_groups": sorted(self.groups),
            "acl_users": sorted(self.users),
            "acl_public": self.public,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "Acl":
        return cls.of(
            payload.get("acl_groups") or (),
            payload.get("acl_users") or (),
            bool(payload.get("acl_public", False)),
        )


@dataclass(frozen=True)
class Principal:
    """A resolved person. ``email`` None means unknown: sees public documents only."""

    email: str | None
    groups: frozenset[str] = frozenset()
    slack_user_id: str | None = None
    display_name: str | None = None
    # The directory's stable id of the person (Entra's object id) where it has one: what per-person
    # credentials are kept under (an email can be reassigned, a display name chosen by anyone).
    object_id: str | None = None

    @classmethod
    def of(cls, email: str | None, groups: Iterable[str] = (), *, slack_user_id: str | None = None,
           display_name: str | None = None, object_id: str | None = None) -> "Principal":
        return cls(email=_norm_email(email), groups=frozenset(groups), slack_user_id=slack_user_id,
                   display_name=display_name, object_id=object_id.lower() if object_id else None)

    @classmethod
    def unknown(cls, slack_user_id: str | None = None) -> "Principal":
        return cls(email=None, groups=frozenset(), slack_user_id=slack_user_id)

    def can_see(self, acl: Acl) -> bool:
        if acl.public:
            return True
        if self.email and self.email in acl.users:
            return True
        return bool(self.groups & acl.groups)


@dataclass(frozen=True)
class Audience:
    """Everyone who will read an answer. ``public_only`` forces public documents.

    A channel's audience also keeps which members it was built from (``members``: Slack
    user ids, bots included) and when that list was read (``as_of``, Unix time), so the
    answer can be checked against the channel as it is just before it is posted."""

    principals: tuple[Principal, ...] = field(default_factory=tuple)
    public_only: bool = False
    reason: str = ""
    members: frozenset[str] = frozenset()
    as_of: float | None = None
    # Sources (index ``source`` ids) whose permissions are too old to trust: their restricted
    # documents are withheld from everyone; their public ones stay usable.
    withheld: frozenset[str] = frozenset()
    # Only documents of these sources may be used (a channel limited to some sources); None: any.
    sources: frozenset[str] | None = None

    @classmethod
    def of(cls, principal: Principal) -> "Audience":
        return cls(principals=(principal,))

    @classmethod
    def everyone(cls, principals: Iterable[Principal], reason: str = "", *,
                 members: Iterable[str] = (), as_of: float | None = None) -> "Audience":
        unique = {}
        for p in principals:
            unique[(p.email, p.groups, p.slack_user_id)] = p
        return cls(principals=tuple(unique.values()), reason=reason, members=frozenset(members), as_of=as_of)

    @classmethod
    def public(cls, reason: str) -> "Audience":
        return cls(principals=(), public_only=True, reason=reason)

    def filter_terms(self) -> list[tuple[str | None, tuple[str, ...]]] | None:
        """The rule as an index filter needs it: None means public documents only; otherwise
        one (email, groups) term per person, each read as "public, or lists this email, or
        shares one of these groups", all of which must hold. Each index engine translates
        these terms into its own filter classes."""
        if self.public_only or not self.principals:
            return None
        return [(p.email, tuple(sorted(p.groups))) for p in self.principals]

    def withholding(self, sources: Iterable[str]) -> "Audience":
        """The same audience, with the restricted documents of these sources withheld."""
        return replace(self, withheld=self.withheld | frozenset(sources))

    def limited_to(self, sources: Iterable[str] | None) -> "Audience":
        """The same audience, drawing only on documents of these sources (None: no limit)."""
        if sources is None:
            return self
        allowed = frozenset(sources) if self.sources is None else self.sources & frozenset(sources)
        return replace(self, sources=allowed)

    def can_see(self, acl: Acl) -> bool:
        if not acl.visible_to_anyone:
            return False
        if self.public_only or not self.principals:
            return acl.public
        return all(p.can_see(acl) for p in self.principals)

    def may_use(self, acl: Acl, source: str) -> bool:
        """``can_see``, not a restricted document of a withheld source, and of an allowed source."""
        if self.sources is not None and source not in self.sources:
            return False
        return self.can_see(acl) and (acl.public or source not in self.withheld)
