"""Who may read a SharePoint item, from Graph's permission resources; who is in a site group,
from SharePoint's own REST API. Pure functions: no calls, every rule in one place.

Read access is a role of ``read``, ``write`` or ``owner``; other role names (``sp.full control``,
``sp.limited access`` ...) grant nothing here (deny by default, counted). The principals:

* ``grantedToV2.user`` / ``siteUser`` — that person, by email (the user's ``email``, else the
  ``siteUser``'s, else the user principal name in its ``i:0#.f|membership|`` login name; a user
  known only by object id is looked up through ``resolve_user``);
* ``grantedToV2.group`` — the **Entra group object id** (never its display name, which anyone
  may choose); a ``siteUser`` whose login name is a group claim (``c:0t.c|tenant|<id>``,
  ``c:0o.c|federateddirectoryclaimprovider|<id>``) names the same; ``<id>_o`` is the *owners*
  of that Microsoft 365 group, expanded through ``owners_of`` to people;
* ``siteGroup`` / ``sharePointGroup`` — a group of the site, as the token ``<site id>::<group id>``
  (site groups are numbered per site: "Members" of two sites never collide); their members
  come from :func:`site_group_members`;
* sharing links — ``users`` links grant the people (and groups) in ``grantedToIdentitiesV2``;
  ``organization`` links (and the Everyone claims) make the item public only with
  ``organization_links_public``; ``anonymous`` links never make anything public by themselves;
  ``existingAccess`` grants nothing; a link whose ``expirationDateTime`` has passed grants
  nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

from chatops.access import Acl
from chatops.groups import is_object_id
from connectors.sources.base import Member

log = logging.getLogger(__name__)

READ_ROLES = frozenset({"read", "write", "owner"})
USER_CLAIM = "i:0#.f|membership|"
GROUP_CLAIMS = ("c:0t.c|tenant|", "c:0o.c|federateddirectoryclaimprovider|")
EVERYONE_CLAIMS = ("c:0(.s|true", "c:0-.f|rolemanager|spo-grid-all-users")
NO_EXPIRY = "0001-01-01"
NO_EMAIL = "a person without an email"


def site_group_token(site_id: str, group_id: object) -> str:
    """The ACL token of a SharePoint site group: scoped by its site, so "Members" of two sites differ."""
    return f"{site_id}::{group_id}"


@dataclass
class Grants:
    """What one item's permissions grant, before it becomes an :class:`Acl`."""

    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    public: bool = False
    ignored: list[str] = field(default_factory=list)   # why entries granted nothing (for logs)

    def acl(self) -> Acl:
        return Acl.of(self.groups, self.users, self.public)


@dataclass(frozen=True)
class Principal:
    """One principal a claim or identity names."""

    kind: str        # user | group | owners (of an M365 group) | everyone | none
    value: str = ""


def from_login(login: str | None) -> Principal:
    """A SharePoint login name (claim) as a principal."""
    if not login:
        return Principal("none")
    lowered = login.strip().lower()
    if lowered.startswith(USER_CLAIM):
        upn = lowered[len(USER_CLAIM):]
        return Principal("user", upn) if "@" in upn else Principal("none")
    for prefix in GROUP_CLAIMS:
        if lowered.startswith(prefix):
            ident = lowered[len(prefix):]
            if ident.endswith("_o") and is_object_id(ident[:-2]):
                return Principal("owners", ident[:-2])
            return Principal("group", ident) if is_object_id(ident) else Principal("none")
    if lowered.startswith(EVERYONE_CLAIMS):
        return Principal("everyone")
    return Principal("none")


def _expired(value: str | None, now: datetime) -> bool:
    if not value or value.startswith(NO_EXPIRY):
        return False
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return True  # an expiry we cannot read: treat as expired (grant nothing)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when <= now


def acl_of(permissions: Iterable[dict], *, site_id: str, organization_public: bool, now: datetime,
           resolve_user: Callable[[str], str | None] = lambda _id: None,
           owners_of: Callable[[str], list[str]] = lambda _id: []) -> Grants:
    """The grants of an item's ``permissions`` (Graph's list, every page)."""
    out = Grants()
    for perm in permissions:
        roles = {str(r).lower() for r in perm.get("roles") or []}
        link = perm.get("link") or None
        if not roles & READ_ROLES:
            out.ignored.append(f"roles {sorted(roles)} grant no read access here")
            continue
        if _expired(perm.get("expirationDateTime"), now):
            out.ignored.append("expired")
            continue
        if link is not None:
            scope = str(link.get("scope") or "").lower()
            if scope == "organization":
                if organization_public:
                    out.public = True
                else:
                    out.ignored.append("organization link (organization_links_public is false)")
                continue
            if scope != "users":   # anonymous, existingAccess, anything new: nothing by itself
                out.ignored.append(f"{scope or 'unknown'} link")
                continue
            for identity_set in perm.get("grantedToIdentitiesV2") or []:
                _grant(out, identity_set, site_id, organization_public, resolve_user, owners_of)
            continue
        _grant(out, perm.get("grantedToV2") or {}, site_id, organization_public, resolve_user, owners_of)
    return out


def _grant(out: Grants, ids: dict, site_id: str, organization_public: bool,
           resolve_user: Callable[[str], str | None], owners_of: Callable[[str], list[str]]) -> None:
    """One sharePointIdentitySet: the principals it names, most specific first."""
    if not isinstance(ids, dict):
        return
    group = ids.get("group") or {}
    user = ids.get("user") or {}
    site_user = ids.get("siteUser") or {}
    # sharePointGroup (newer) carries the site's own number as principalId; siteGroup as id.
    sp_group = ids.get("sharePointGroup") or {}
    site_group_id = sp_group.get("principalId") or (ids.get("siteGroup") or {}).get("id")
    if site_group_id not in (None, ""):
        out.groups.add(site_group_token(site_id, site_group_id))
        return
    if group.get("id"):
        gid = str(group["id"]).lower()
        if is_object_id(gid):
            out.groups.add(gid)
        else:
            out.ignored.append("a group without an object id")
        return
    principal = from_login(site_user.get("loginName"))
    if principal.kind == "group":
        out.groups.add(principal.value)
        return
    if principal.kind == "owners":
        out.users.update(e.lower() for e in owners_of(principal.value))
        return
    if principal.kind == "everyone":
        if organization_public:
            out.public = True
        else:
            out.ignored.append("an Everyone claim (organization_links_public is false)")
        return
    if user or site_user:
        email = user.get("email") or site_user.get("email") or (principal.value if principal.kind == "user" else None)
        if not email and user.get("id"):
            email = resolve_user(str(user["id"]))
        if email:
            out.users.add(str(email).strip().lower())
        else:
            out.ignored.append(NO_EMAIL)
        return
    out.ignored.append("an application or device")


def site_group_members(users: Iterable[dict], *, organization_public: bool,
                       owners_of: Callable[[str], list[str]] = lambda _id: []) -> list[Member]:
    """The members of a SharePoint group, from ``_api/web/sitegroups/GetById(n)/users``: people by
    email (or user principal name), Entra groups by object id (classified by login name, not by
    ``PrincipalType``, which differs between tenants), owners of an M365 group as people, and the
    Everyone claims only with ``organization_links_public``."""
    out: list[Member] = []
    for user in users:
        principal = from_login(user.get("LoginName"))
        if principal.kind == "user":
            email = (user.get("Email") or user.get("UserPrincipalName") or principal.value).strip().lower()
            out.append(Member("user", email))
        elif principal.kind == "group":
            out.append(Member("group", principal.value))
        elif principal.kind == "owners":
            out.extend(Member("user", e.lower()) for e in owners_of(principal.value))
        elif principal.kind == "everyone" and organization_public:
            out.append(Member("everyone", "*"))
    return out
