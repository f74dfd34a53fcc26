"""Confluence Cloud as a source: spaces, their pages and blog posts (and attachments in supported
formats), with who may read each.

Content: each space is a scope. A full listing pages through the v2 API (pages, then blog posts,
``cursor`` paging); an incremental sync asks CQL for what was modified since the last sync minus
an overlap (CQL has minute precision, in the site's time zone, read from the site), and lists the
space's trash (trashed pages leave the index). Versions de-duplicate what the overlap lists again.
Bodies in storage format become heading-aware sections (``storage.py``).

Permissions (``permissions.py`` has the rule): read access = the space's read permission ∩ the
page's read restriction ∩ every ancestor's read restriction. Permission changes do not change a
page's modified time, so the permission pass re-reads space permissions and restrictions (and
the site's groups) on its own schedule.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Sequence
from urllib.parse import quote, urlencode

from chatops.access import Acl
from connectors.atlassian.accounts import group_token
from connectors.atlassian.http import AtlassianHttp, NotFound, page_link_base
from connectors.sources.atlassian.source import AtlassianSourceBase
from connectors.sources.base import GONE, Document, Item, ItemAcl, Page, SourceUnavailable, Unfetchable
from connectors.sources.confluence.config import ConfluenceConfig
from connectors.sources.confluence.permissions import Restriction, SpaceRead, effective_acl, space_read
from connectors.sources.confluence.storage import storage_sections
from connectors.sources.isolation import DEFAULT_LIMITS, ParseLimits, parse_isolated
from connectors.sources.parsing import SUPPORTED, Unsupported

log = logging.getLogger(__name__)

V2 = "/wiki/api/v2"
V1 = "/wiki/rest/api"
LIMIT = 250          # v2's largest page
KINDS = ("page", "blogpost")


@dataclass(frozen=True)
class Space:
    id: str
    key: str
    name: str


def _doc_id(kind: str, content_id: object) -> str:
    return f"{kind}:{content_id}"


def _split(doc_id: str) -> tuple[str, str]:
    kind, _, content_id = doc_id.partition(":")
    return kind, content_id


class ConfluenceSource(AtlassianSourceBase):
    Config = ConfluenceConfig
    KIND, SERVICE = "confluence", "Confluence"
    SCOPE_NOUN = "space"
    USERS_BULK, EMAILS_BULK = f"{V1}/user/bulk", f"{V1}/user/email/bulk"
    ZONE = (f"{V1}/settings/systemInfo", "defaultTimeZone")

    def __init__(self, name: str, config: ConfluenceConfig, http: AtlassianHttp, *,
                 parse_limits: ParseLimits = DEFAULT_LIMITS, **kw):
        super().__init__(name, config, http, **kw)
        self.parse_limits = parse_limits
        self._spaces: dict[str, Space] = {}

    @classmethod
    def from_config(cls, config: ConfluenceConfig, context) -> ConfluenceSource:
        source = super().from_config(config, context)
        source.parse_limits = ParseLimits.of(context.settings)
        return source

    # -- scopes -----------------------------------------------------------------------------

    def scopes(self) -> list[str]:
        self.http.new_window()
        params: list[tuple[str, object]] = [("limit", LIMIT)]
        if self.config.spaces:
            params.append(("keys", ",".join(self.config.spaces)))
        spaces = {}
        for s in self.http.pages(f"{V2}/spaces", params):
            spaces[str(s["id"])] = Space(str(s["id"]), str(s.get("key") or ""), str(s.get("name") or ""))
        if self.config.spaces:
            # none by that key, or the account may not view it (Confluence lists neither): the
            # whole source stops, and a listing that lacks a space prunes nothing of it
            missing = set(self.config.spaces) - {s.key for s in spaces.values()}
            if missing:
                raise self.not_on_site(missing, noun="space", field="spaces", verb="view",
                                       permission="View permission on the space")
        self._spaces = spaces
        return sorted(spaces)

    def _space(self, scope: str) -> Space:
        if scope not in self._spaces:
            self.scopes()
        if scope not in self._spaces:
            raise SourceUnavailable(f"space {scope} is no longer listed", transient=False)
        return self._spaces[scope]

    # -- content ------------------------------------------------------------------------------

    def changes(self, scope: str, cursor: str | None) -> Iterator[Page]:
        self.http.new_window()
        state = json.loads(cursor) if cursor else {"mode": "list"}
        space = self._space(scope)
        if state["mode"] == "list":
            yield from self._listing(space, state)
        else:
            yield from self._since(space, state)

    def _listing(self, space: Space, state: dict) -> Iterator[Page]:
        """Every page and blog post of the space (current ones), page by page."""
        started = state.get("started") or self._now().isoformat()
        kinds = KINDS[KINDS.index(state.get("kind", "page")):]
        for kind in kinds:
            link = state.get("next") if kind == state.get("kind") else None
            link = link or f"{V2}/spaces/{quote(space.id)}/{kind}s?limit={LIMIT}"
            while link:
                body = self.http.get_json(link)
                base = page_link_base(body, self.http.origin)
                items = []
                for entry in body.get("results") or []:
                    items.append(self._item(space, kind, entry, base))
                    if self.config.attachments and kind == "page":
                        items.extend(self._attachments(space, str(entry["id"]), base))
                link = (body.get("_links") or {}).get("next")
                if link:
                    yield Page(items, json.dumps({"mode": "list", "started": started, "kind": kind, "next": link}),
                               done=False)
                else:
                    last = kind == KINDS[-1]
                    cursor = ({"mode": "since", "at": started, "trashed": sorted(self._trash_ids(space))} if last
                              else {"mode": "list", "started": started, "kind": KINDS[KINDS.index(kind) + 1]})
                    yield Page(items, json.dumps(cursor), done=last)

    def _since(self, space: Space, state: dict) -> Iterator[Page]:
        """What CQL says was modified since the last sync (less the overlap), then the trash: what
        is in it leaves the index, and what left it since the last sync (restored, as restoring
        changes no modified time) comes back."""
        upto = state.get("upto") or self._now().isoformat()
        known = state.get("trashed") or []
        link = state.get("next")
        if not link and not state.get("trash"):
            since = datetime.fromisoformat(state["at"]) - timedelta(minutes=self.config.overlap_minutes)
            types = "page, blogpost, attachment" if self.config.attachments else "page, blogpost"
            cql = (f'space = "{space.key}" AND type IN ({types}) AND lastmodified >= "{self.local_minutes(since)}" '
                   f'ORDER BY lastmodified')
            link = f"{V1}/search?" + urlencode({"cql": cql, "limit": 100}, quote_via=quote)
        while link:
            body = self.http.get_json(link)
            items = self._found(space, body.get("results") or [], page_link_base(body, self.http.origin))
            link = self.http.next_link(body)
            resume = {"mode": "since", "at": state["at"], "upto": upto, "trashed": known}
            resume.update({"next": link} if link else {"trash": True})
            yield Page(items, json.dumps(resume), done=False)
        trashed = self._trash_ids(space)
        items = [Item(doc_id, scope=space.id, deleted=True) for doc_id in sorted(trashed)]
        items += self._restored(space, set(known) - trashed)
        yield Page(items, json.dumps({"mode": "since", "at": upto, "trashed": sorted(trashed)}), done=True)

    def _found(self, space: Space, results: list[dict], base: str) -> list[Item]:
        """The items of one page of search results, read again in bulk (v2 ``?id=``) for what
        search leaves out: versions and parents."""
        wanted: dict[str, list[str]] = {kind: [] for kind in (*KINDS, "attachment")}
        for result in results:
            content = result.get("content") or {}
            kind, content_id = str(content.get("type") or ""), str(content.get("id") or "")
            if content_id and kind in wanted and (content.get("status") or "current") == "current":
                wanted[kind].append(content_id)
        out: list[Item] = []
        for kind in KINDS:
            ids = list(dict.fromkeys(wanted[kind]))
            seen = set()
            for start in range(0, len(ids), LIMIT):
                for entry in self.http.pages(f"{V2}/{kind}s", [("id", ",".join(ids[start:start + LIMIT])),
                                                               ("limit", LIMIT)]):
                    seen.add(str(entry["id"]))
                    if str(entry.get("spaceId") or space.id) == space.id:
                        out.append(self._item(space, kind, entry, base))
            # listed by search but no longer there (deleted meanwhile)
            out.extend(Item(_doc_id(kind, i), scope=space.id, deleted=True) for i in ids if i not in seen)
        if self.config.attachments:
            for content_id in dict.fromkeys(wanted["attachment"]):
                try:
                    entry = self.http.get_json(f"{V2}/attachments/{quote(content_id)}")
                except NotFound:
                    out.append(Item(_doc_id("attachment", content_id), scope=space.id, deleted=True))
                    continue
                if entry.get("pageId"):
                    out.append(self._attachment_item(space, entry, base))
        return out

    def _trash_ids(self, space: Space) -> set[str]:
        """The doc ids of the space's trashed pages and blog posts."""
        return {_doc_id(kind, entry["id"]) for kind in KINDS
                for entry in self.http.pages(f"{V2}/spaces/{quote(space.id)}/{kind}s",
                                             [("status", "trashed"), ("limit", LIMIT)])}

    def _restored(self, space: Space, doc_ids: set[str]) -> list[Item]:
        """Items that left the trash: back as they are now, or gone (purged)."""
        out = []
        for doc_id in sorted(doc_ids):
            kind, content_id = _split(doc_id)
            try:
                entry = self.http.get_json(f"{V2}/{kind}s/{quote(content_id)}")
            except NotFound:
                out.append(Item(doc_id, scope=space.id, deleted=True))
                continue
            if (entry.get("status") or "current") == "current" and str(entry.get("spaceId") or space.id) == space.id:
                out.append(self._item(space, kind, entry, page_link_base(entry, self.http.origin)))
                if self.config.attachments and kind == "page":
                    out.extend(self._attachments(space, content_id, page_link_base(entry, self.http.origin)))
        return out

    def _item(self, space: Space, kind: str, entry: dict, base: str) -> Item:
        webui = (entry.get("_links") or {}).get("webui")
        parent = entry.get("parentId") if entry.get("parentType") in (None, "page") else None
        return Item(_doc_id(kind, entry["id"]), scope=space.id,
                    version=str((entry.get("version") or {}).get("number") or ""),
                    title=str(entry.get("title") or ""), url=f"{base}{webui}" if webui else None,
                    parent=_doc_id("page", parent) if parent else None)

    def _attachments(self, space: Space, page_id: str, base: str) -> list[Item]:
        return [self._attachment_item(space, a, base)
                for a in self.http.pages(f"{V2}/pages/{quote(page_id)}/attachments", [("limit", LIMIT)])]

    def _attachment_item(self, space: Space, entry: dict, base: str) -> Item:
        title = str(entry.get("title") or "")
        suffix = os.path.splitext(title)[1].lower()
        skip = None
        if suffix not in SUPPORTED:
            skip = f"unsupported file type {suffix or '(none)'}"
        elif (entry.get("fileSize") or 0) > self.config.max_file_mb * 1_000_000:
            skip = f"larger than {self.config.max_file_mb:g} MB"
        webui = entry.get("webuiLink") or (entry.get("_links") or {}).get("webui")
        return Item(_doc_id("attachment", entry["id"]), scope=space.id,
                    version=str((entry.get("version") or {}).get("number") or ""), title=title,
                    url=f"{base}{webui}" if webui else None, parent=_doc_id("page", entry.get("pageId")),
                    skip=skip)

    def fetch(self, item: Item) -> Document:
        kind, content_id = _split(item.doc_id)
        try:
            if kind == "attachment":
                return self._fetch_attachment(item, content_id)
            entry = self.http.get_json(f"{V2}/{kind}s/{quote(content_id)}", {"body-format": "storage"})
        except NotFound:
            raise Unfetchable("gone from Confluence") from None
        storage = ((entry.get("body") or {}).get("storage") or {}).get("value") or ""
        title = str(entry.get("title") or item.title)
        sections = storage_sections(storage, title)
        webui = (entry.get("_links") or {}).get("webui")
        url = f"{page_link_base(entry, self.http.origin)}{webui}" if webui else item.url
        version = str((entry.get("version") or {}).get("number") or item.version)
        return Document(item.doc_id, title, tuple(sections), Acl(), content_hash=f"{version}:{title}:{url}", url=url)

    def _fetch_attachment(self, item: Item, content_id: str) -> Document:
        entry = self.http.get_json(f"{V2}/attachments/{quote(content_id)}")
        link = entry.get("downloadLink") or (entry.get("_links") or {}).get("download")
        if not link:
            raise Unfetchable("Confluence gives no download link")
        path = link if link.startswith("/wiki/") else "/wiki" + link
        try:
            data = self.http.download(path, max_bytes=int(self.config.max_file_mb * 1_000_000))
            _title, sections = parse_isolated(item.title, data, self.parse_limits)   # ParseFailed: Unfetchable
        except (Unsupported, ValueError) as exc:
            raise Unfetchable(str(exc)) from None
        return Document(item.doc_id, item.title, tuple(sections), Acl(),
                        content_hash=f"{item.version}:{item.title}:{item.url}", url=item.url)

    def refresh(self, items: Sequence[Item]) -> dict[str, Item | None]:
        out: dict[str, Item | None] = {}
        for item in items:
            kind, content_id = _split(item.doc_id)
            try:
                entry = self.http.get_json(f"{V2}/{kind}s/{quote(content_id)}")
            except NotFound:
                out[item.doc_id] = None
                continue
            if (entry.get("status") or "current") != "current":
                out[item.doc_id] = None
                continue
            space = self._spaces.get(str(entry.get("spaceId") or item.scope)) or self._space(item.scope)
            base = page_link_base(entry, self.http.origin)
            out[item.doc_id] = (self._attachment_item(space, entry, base) if kind == "attachment"
                                else self._item(space, kind, entry, base))
        return out

    # -- permissions --------------------------------------------------------------------------

    def permissions(self, items: Sequence[Item]) -> dict[str, ItemAcl]:
        self.http.new_window()
        restrictions: dict[str, Restriction | None] = {}
        spaces: dict[str, SpaceRead | None] = {}
        out: dict[str, ItemAcl] = {}
        for item in items:
            kind, content_id = _split(item.doc_id)
            if kind == "attachment":
                if not item.parent:
                    out[item.doc_id] = None
                    continue
                kind, content_id = _split(item.parent)
            try:
                chain = self._chain(kind, content_id)
            except NotFound:      # the page (or an attachment's page) was purged since it was listed
                out[item.doc_id] = GONE
                continue
            if item.scope not in spaces:
                spaces[item.scope] = self._space_read(item.scope)
            grants = []
            for cid in chain:
                if cid not in restrictions:
                    restrictions[cid] = self._restriction(cid)
                grants.append(restrictions[cid])
            if restrictions[content_id] is None and self._gone(kind, content_id):
                out[item.doc_id] = GONE   # a blog post (no ancestors asked for) purged since it was listed
                continue
            out[item.doc_id] = effective_acl(spaces[item.scope], grants, self._members_of)
        return out

    def _gone(self, kind: str, content_id: str) -> bool:
        """Whether the content whose restriction answered 404 is itself gone (404 again), rather
        than its restriction unreadable (the item then stays hidden)."""
        try:
            self.http.get_json(f"{V2}/{kind}s/{quote(content_id)}")
        except NotFound:
            return True
        return False

    def _chain(self, kind: str, content_id: str) -> list[str]:
        """The content and every ancestor (pages), highest first."""
        if kind != "page":
            return [content_id]
        chain = [content_id]
        while True:
            # the nearest ``limit`` ancestors, highest first; deeper trees: ask again from the top one
            body = self.http.get_json(f"{V2}/pages/{quote(chain[0])}/ancestors", {"limit": LIMIT})
            found = [str(a["id"]) for a in body.get("results") or [] if a.get("id")]
            chain = found + chain
            if len(found) < LIMIT or len(chain) > 10_000:
                return chain

    def _restriction(self, content_id: str) -> Restriction | None:
        """A content's own read restriction (None: it cannot be read; the item is then hidden)."""
        users: list[str] = []
        groups: list[str] = []
        start = 0
        while True:
            try:
                body = self.http.get_json(f"{V1}/content/{quote(content_id)}/restriction/byOperation/read",
                                          {"expand": "restrictions.user,restrictions.group", "start": start,
                                           "limit": 200})
            except NotFound:
                log.warning("read restriction unreadable; the content stays hidden",
                            extra={"source": self.name, "content": content_id})
                return None
            r = body.get("restrictions") or {}
            user_part, group_part = r.get("user") or {}, r.get("group") or {}
            for u in user_part.get("results") or []:
                self.accounts.remember(str(u.get("accountId") or ""), u.get("email"))
                users.append(str(u.get("accountId") or ""))
            for g in group_part.get("results") or []:
                if g.get("id"):
                    groups.append(group_token(self.host, str(g["id"])))
            got = max(len(user_part.get("results") or []), len(group_part.get("results") or []))
            if got < int(user_part.get("limit") or group_part.get("limit") or 200) or got == 0:
                break
            start += got
        emails = self.accounts.emails(users)
        return Restriction(frozenset(e for e in emails.values() if e), frozenset(groups), restricted=bool(users or groups))

    def _space_read(self, scope: str) -> SpaceRead | None:
        try:
            entries = list(self.http.pages(f"{V2}/spaces/{quote(scope)}/permissions", [("limit", LIMIT)]))
        except NotFound:
            return None
        anonymous = self.config.anonymous_public and self._anonymous(scope)
        read = space_read(entries, host=self.host, anonymous=anonymous, anonymous_public=self.config.anonymous_public)
        emails = self.accounts.emails(read.accounts)
        return read.with_users(e for e in emails.values() if e)

    def _anonymous(self, scope: str) -> bool:
        """Whether the space is open to anonymous readers (only v1 says so); asked only when the
        source lets that make pages public."""
        body = self.http.get_json(f"{V1}/space/{quote(self._space(scope).key)}", {"expand": "permissions"})
        return any(p.get("anonymousAccess") and (p.get("operation") or {}).get("operation") == "read"
                   and (p.get("operation") or {}).get("targetType") == "space" for p in body.get("permissions") or [])

    def findings(self) -> dict[str, int]:
        return {"Atlassian accounts without a visible email": len(self.accounts.unmapped)}

    # -- the site's groups --------------------------------------------------------------------

    def _site_group_ids(self) -> Iterator[str]:
        for g in self.http.pages(f"{V1}/group", [("limit", 200)]):
            if g.get("id"):
                yield str(g["id"])

    def _member_accounts(self, group_id: str) -> Iterator[tuple[str, str | None]]:
        for m in self.http.pages(f"{V1}/group/{quote(group_id)}/membersByGroupId", [("limit", 200)]):
            yield str(m.get("accountId") or ""), m.get("email")
