"""A loopback Confluence Cloud: REST API v2 and the parts of v1 a source connector needs, under
``/wiki`` as on ``https://<site>.atlassian.net/wiki``, with HTTP Basic ``email:api_token``.

What it reproduces, because a connector must cope with it:

* v2 keyset paging: ``limit`` (default 25, clamped to ``page_size_max``), an opaque ``cursor``,
  ``_links.next`` as a path from the site root (``/wiki/api/v2/...``), the same in a ``Link`` header,
  ``_links.base`` = ``<origin>/wiki``. v1 pages with ``start``/``limit``, v1 search with a ``cursor``;
  v1 ``_links.next`` is relative to the context (``/rest/api/...``, without ``/wiki``);
* each API's error shape (v2 ``{"errors": [...]}``, v1 ``{"statusCode", "data", "message", "reason"}``),
  the edge proxy's plain-text 401 for a bad token, scripted 429s with ``Retry-After`` (``throttle``);
* a new space has a home page, and a page added without a parent goes under it (as v2's create page
  does unless ``root-level``); trashed pages stay in the tree (``ancestors`` lists them), leave search
  and are listed with ``status=trashed``; ``purge`` makes them 404 and moves their children up;
* restriction changes and moves leave a page's version and ``lastModified`` alone;
* CQL ``lastmodified`` is compared at minute precision in the site's time zone;
* anonymous space access shows only in v1 ``/rest/api/space/{key}?expand=permissions`` (an entry with
  ``anonymousAccess: true`` and no subjects): v2 principals are user, group or role;
* hidden emails are ``""``; ``/user/email`` answers only with ``email_api=True`` (else v1's 400);
* a download answers 302 to a "media" URL on the same port (``/media/file/<fileId>/binary?token=``)
  that takes no Authorization header (one that comes anyway is counted in ``token_leaks`` and
  refused) and whose token expires after ``media_token_ttl`` of ``clock`` time.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, quote_plus, unquote, urlencode
from zoneinfo import ZoneInfo

from standins._atlassian import AtlassianSite, FakeUser
from standins._loopback import LoopbackServer, Reply, Request, grown

AUTHOR_ID = "557058:f0a1b2c3-0000-4000-8000-00000000a11c"   # who wrote every page
UNAUTHORIZED = ("Basic authentication with passwords is deprecated.  For more information, see: "
                "https://confluence.atlassian.com/cloud/deprecation-of-basic-authentication-with-passwords-"
                "for-jira-and-confluence-apis-972355348.html\n")
MEDIA_TYPES = {"application/pdf": "PDF Document", "image/png": "PNG Image", "text/plain": "Text File",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Microsoft Word Document"}
V2_STATUSES = {"current", "archived", "trashed", "deleted", "draft", "historical"}
_CQL_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|'   # "quoted" | 'quoted'
                        r'(>=|<=|!=|=|>|<|\(|\)|,)|([^\s()=,<>!"\']+))')          # operator | word
_CQL_DATES = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _v2_error(status: int, code: str, title: str, detail: str | None = None) -> dict:
    return {"errors": [{"status": status, "code": code, "title": title, "detail": detail}]}


def _v1_error(status: int, message: str, reason: str) -> dict:
    return {"statusCode": status, "data": {"authorized": status not in (401, 403), "valid": True, "errors": [],
                                          "successful": False}, "message": message, "reason": reason}


EMAIL_REFUSED = _v1_error(400, "The calling app is not approved to use this API.", "Bad Request")


def _encode(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    """The state in a cursor; ValueError when it is not one of ours."""
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(state, dict):
        raise ValueError("not a cursor")
    return state


def _one(q: list[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    values = [v for k, v in q if k == name]
    return values[-1] if values else default


def _many(q: list[tuple[str, str]], name: str) -> list[str]:
    """A multi-valued parameter: repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    return [part.strip() for k, v in q if k == name for part in v.split(",") if part.strip()]


@dataclass
class FakeSpace:
    id: str
    key: str
    name: str
    created: datetime
    homepage_id: str | None = None
    read: list[tuple[str, str]] = field(default_factory=list)
    anonymous: bool = False
    perms: list[dict] = field(default_factory=list)        # v2 assignments, ids fixed when set


@dataclass
class FakeContent:
    id: str
    type: str                                              # "page" | "blogpost"
    space_id: str
    title: str
    body: str
    parent: str | None
    status: str
    created: datetime
    modified: datetime
    version: int = 1
    position: int = 0
    restrictions: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # op -> (users, groups)


@dataclass
class FakeAttachment:
    id: str
    content_id: str
    title: str
    data: bytes
    media_type: str
    file_id: str
    created: datetime
    modified: datetime
    version: int = 1
    grown_by: int = 0        # bytes its download sends beyond ``data`` (it grew since it was listed)
    chunked: bool = False    # that download without a Content-Length


class FakeConfluence(AtlassianSite, LoopbackServer):
    media_token_ttl = timedelta(minutes=5)

    def __init__(self, email: str = "svc@contoso.com", token: str = "t0ken", *, timezone: str = "Europe/Berlin",
                 page_size_max: int = 250, email_api: bool = False):
        super().__init__()
        self.email, self.token, self.email_api = email, token, email_api
        self.timezone, self.zone = timezone, ZoneInfo(timezone)
        self.page_size_max = page_size_max
        self.cloud_id = str(uuid.uuid4())
        self.public_url: str | None = None
        self.clock = _now                                      # tests replace it, or advance()
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, str] = {}                       # id -> name
        self.members: dict[str, list[str]] = {}                # group id -> account ids
        self.spaces: dict[str, FakeSpace] = {}                 # id -> space
        self.contents: dict[str, FakeContent] = {}
        self.attachments: dict[str, FakeAttachment] = {}
        self.requests_by_path: Counter[str] = Counter()
        self.token_leaks = 0
        self.downloads = 0
        self.download_bytes_sent = 0                           # bytes of grown downloads that went out
        self._throttle: list[int] = []                         # Retry-After of each scripted 429
        self._media_tokens: dict[str, tuple[str, datetime]] = {}   # token -> (file id, expiry)
        self._ids = itertools.count(65537)
        self._space_ids = itertools.count(163841)
        self._perm_ids = itertools.count(2000001)
        self._lock = threading.RLock()

    @property
    def base(self) -> str:
        """The site's /wiki as it names itself (``public_url``: the real-looking origin a client
        reaches through a rerouting adapter, as the demo does)."""
        return f"{self.public_url or self.origin}/wiki"

    # -- building the site (people, groups, time and 429s: standins/_atlassian.py) ---------------------------------------------------------------------

    def add_space(self, key: str, name: str | None = None, *, read=(), anonymous: bool = False,
                  homepage: bool = True) -> FakeSpace:
        with self._lock:
            space = FakeSpace(str(next(self._space_ids)), key, name or key, self.clock())
            self.spaces[space.id] = space
            self.set_space_read(key, read=read, anonymous=anonymous)
            if homepage:
                space.homepage_id = self._add(key, "page", space.name, "", None, (), (), "current")
            return space

    def set_space_read(self, space_key: str, read=(), anonymous: bool | None = None) -> None:
        """Who may read the space: [("group", group_id) | ("user", account_id) | ("role", role_id)].
        Each of them may also create pages (an assignment a connector must ignore)."""
        with self._lock:
            space = self._space_by_key(space_key)
            space.read = [tuple(p) for p in read]
            if anonymous is not None:
                space.anonymous = anonymous
            space.perms = [{"id": str(next(self._perm_ids)), "principal": {"type": kind, "id": pid},
                            "operation": {"key": op, "targetType": target}}
                           for kind, pid in space.read for op, target in (("read", "space"), ("create", "page"))]

    def add_page(self, space_key: str, title: str, body_html: str, *, parent: str | None = None,
                 read_users=(), read_groups=(), status: str = "current") -> str:
        return self._add(space_key, "page", title, body_html, parent, read_users, read_groups, status)

    def add_blogpost(self, space_key: str, title: str, body_html: str, *, read_users=(), read_groups=(),
                     status: str = "current") -> str:
        return self._add(space_key, "blogpost", title, body_html, None, read_users, read_groups, status)

    def _add(self, space_key, kind, title, body, parent, read_users, read_groups, status) -> str:
        with self._lock:
            space, now = self._space_by_key(space_key), self.clock()
            if kind == "page" and parent is None:
                parent = space.homepage_id
            assert parent is None or self.contents[parent].space_id == space.id, "parent in another space"
            content = FakeContent(str(next(self._ids)), kind, space.id, title, body, parent, status, now, now,
                                  position=sum(1 for c in self.contents.values() if c.parent == parent and parent))
            if read_users or read_groups:
                content.restrictions["read"] = (list(read_users), list(read_groups))
            self.contents[content.id] = content
            return content.id

    def edit(self, page_id: str, body_html: str | None = None, title: str | None = None) -> None:
        with self._lock:
            content = self.contents[page_id]
            content.body = content.body if body_html is None else body_html
            content.title = content.title if title is None else title
            content.version += 1
            content.modified = self.clock()

    def move(self, page_id: str, new_parent: str | None) -> None:
        """A new place in the tree (None: the space's root); no new version."""
        with self._lock:
            self.contents[page_id].parent = new_parent

    def restrict(self, page_id: str, users=(), groups=(), *, operation: str = "read") -> None:
        """Replace the page's ``read`` (or ``update``) restriction; version and lastModified stay."""
        with self._lock:
            self.contents[page_id].restrictions[operation] = (list(users), list(groups))

    def unrestrict(self, page_id: str, *, operation: str | None = None) -> None:
        with self._lock:
            restrictions = self.contents[page_id].restrictions
            restrictions.clear() if operation is None else restrictions.pop(operation, None)

    def trash(self, page_id: str) -> None:
        with self._lock:
            self.contents[page_id].status = "trashed"

    def restore(self, page_id: str) -> None:
        with self._lock:
            self.contents[page_id].status = "current"

    def purge(self, page_id: str) -> None:
        with self._lock:
            gone = self.contents.pop(page_id)
            for child in self.contents.values():
                if child.parent == page_id:
                    child.parent = gone.parent
            for att_id in [a.id for a in self.attachments.values() if a.content_id == page_id]:
                del self.attachments[att_id]

    def add_attachment(self, page_id: str, title: str, data: bytes, media_type: str) -> str:
        """A file on a page; the same title again is a new version of that attachment."""
        with self._lock:
            now = self.clock()
            for att in self.attachments.values():
                if att.content_id == page_id and att.title == title:
                    att.data, att.media_type, att.modified, att.version = data, media_type, now, att.version + 1
                    return att.id
            att = FakeAttachment(f"att{next(self._ids)}", page_id, title, data, media_type, str(uuid.uuid4()),
                                 now, now)
            self.attachments[att.id] = att
            return att.id

    def _space_by_key(self, key: str) -> FakeSpace:
        space = next((s for s in self.spaces.values() if s.key == key), None)
        assert space is not None, f"no space {key}"
        return space

    # -- dispatch --------------------------------------------------------------------------------

    ROUTES = [(re.compile(pattern), name) for pattern, name in [
        (r"/wiki/api/v2/spaces", "_spaces"),
        (r"/wiki/api/v2/(pages|blogposts)", "_all_contents"),
        (r"/wiki/api/v2/spaces/(?P<id>\d+)/(pages|blogposts)", "_space_contents"),
        (r"/wiki/api/v2/spaces/(?P<id>\d+)/permissions", "_space_permissions"),
        (r"/wiki/api/v2/(pages|blogposts)/(?P<id>\d+)", "_content"),
        (r"/wiki/api/v2/pages/(?P<id>\d+)/ancestors", "_ancestors"),
        (r"/wiki/api/v2/(pages|blogposts)/(?P<id>\d+)/attachments", "_attachments"),
        (r"/wiki/api/v2/attachments/(?P<id>att\d+)", "_attachment"),
        (r"/wiki/rest/api/content/(?P<id>\d+)/restriction/byOperation/(read|update)", "_restriction"),
        (r"/wiki/rest/api/space/(?P<key>[^/]+)", "_space_v1"),
        (r"/wiki/rest/api/group", "_groups"),
        (r"/wiki/rest/api/group/(?P<groupId>[^/]+)/membersByGroupId", "_members"),
        (r"/wiki/rest/api/user/bulk", "_users_bulk"),
        (r"/wiki/rest/api/user/email", "_user_email"),
        (r"/wiki/rest/api/user/email/bulk", "_user_email_bulk"),
        (r"/wiki/rest/api/search", "_search"),
        (r"/wiki/rest/api/settings/systemInfo", "_system_info"),
        (r"/wiki/download/attachments/(?P<id>\d+)/(?P<name>[^/]+)", "_download"),
        (r"/media/file/(?P<fileId>[^/]+)/binary", "_media"),
    ]]

    def handle(self, request: Request) -> Reply:
        q = request.pairs
        match, name = next(((m, n) for rx, n in self.ROUTES if (m := rx.fullmatch(request.path))), (None, None))
        with self._lock:
            self.requests_by_path[f"{request.method} {_template(match) if match else request.path}"] += 1
            if name == "_media":
                return self._media(request, match, q)
            if self._throttle:
                return self._too_many(self._throttle.pop(0))
            if not self._authenticated(request.headers.get("authorization", "")):
                return Reply(401, UNAUTHORIZED, {"Content-Type": "text/plain"})
            if match is None:
                return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found") if "/api/v2/" in request.path
                             else _v1_error(404, f"null for uri: {self.origin}{request.path}", "Not Found"))
            if request.method != "GET":
                return Reply(405, _v1_error(405, "Method Not Allowed", "Method Not Allowed"))
            try:
                return getattr(self, name)(request, match, q)
            except (ValueError, KeyError, TypeError) as exc:   # a limit that is no number, a cursor not ours
                if "/api/v2/" in request.path:
                    return Reply(400, _v2_error(400, "INVALID_REQUEST_PARAMETER", "Bad Request", str(exc)))
                return Reply(400, _v1_error(400, str(exc), "Bad Request"))

    def _too_many(self, retry_after: int) -> Reply:
        reset = (self.clock() + timedelta(seconds=retry_after)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        return Reply(429, {"statusCode": 429, "message": "Rate limit exceeded."},
                     {"Retry-After": str(retry_after), "X-RateLimit-Reset": reset})

    # -- paging ----------------------------------------------------------------------------------

    def _limit(self, q, default: int) -> int:
        raw = _one(q, "limit")
        return default if raw is None else max(1, min(int(raw), self.page_size_max))

    def _v2_list(self, request: Request, q, items: list, render, default_limit: int = 25) -> Reply:
        """Keyset paging as v2 does it: the cursor holds the last sort key handed out, so items added
        or removed meanwhile neither repeat nor shift the rest."""
        limit = self._limit(q, default_limit)
        cursor = _one(q, "cursor")
        after = _decode(cursor)["after"] if cursor else -1
        rest = sorted((i for i in items if _sort_key(i) > after), key=_sort_key)
        page = rest[:limit]
        links: dict = {"base": self.base}
        headers = {}
        if len(rest) > limit:
            params = [(k, v) for k, v in q if k != "cursor"] + [("cursor", _encode({"after": _sort_key(page[-1])}))]
            links["next"] = f"{request.path}?{urlencode(params)}"
            headers["Link"] = f'<{links["next"]}>; rel="next", <{self.base}>; rel="base"'
        return Reply(200, {"results": [render(i) for i in page], "_links": links}, headers)

    def _v1_list(self, request: Request, q, results: list, default_limit: int) -> dict:
        start, limit = int(_one(q, "start", "0")), self._limit(q, default_limit)
        page = results[start:start + limit]
        links = {"base": self.base, "context": "/wiki", "self": f"{self.origin}{request.path}"}
        if start + limit < len(results):
            params = [(k, v) for k, v in q if k not in ("start", "limit")]
            params += [("limit", limit), ("start", start + limit)]
            links["next"] = f"{request.path.removeprefix('/wiki')}?{urlencode(params)}"
        return {"results": page, "start": start, "limit": limit, "size": len(page), "_links": links}

    # -- v2: spaces, pages, blog posts, ancestors, permissions, attachments -----------------------------

    def _spaces(self, request, m, q) -> Reply:
        keys = set(_many(q, "keys"))
        spaces = [s for s in self.spaces.values() if not keys or s.key in keys]
        return self._v2_list(request, q, spaces, self._space_json)

    def _space_json(self, space: FakeSpace) -> dict:
        return {"id": space.id, "key": space.key, "name": space.name, "type": "global", "status": "current",
                "authorId": AUTHOR_ID, "createdAt": _iso(space.created), "homepageId": space.homepage_id,
                "_links": {"webui": f"/spaces/{space.key}"}}

    def _space_contents(self, request, m, q) -> Reply:
        if m["id"] not in self.spaces:
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        statuses = set(_many(q, "status")) or {"current", "archived"}
        if statuses - V2_STATUSES:
            raise ValueError(f"Invalid status: {sorted(statuses - V2_STATUSES)}")
        kind = "page" if m[2] == "pages" else "blogpost"
        items = [c for c in self.contents.values() if c.space_id == m["id"] and c.type == kind and c.status in statuses]
        storage = _one(q, "body-format") == "storage"
        return self._v2_list(request, q, items, lambda c: self._content_json(c, storage))

    def _all_contents(self, request, m, q) -> Reply:
        """``GET /pages`` or ``/blogposts``: across spaces, filtered by ``id`` (up to 250) and
        ``space-id``, ``status`` as for a space's list."""
        statuses = set(_many(q, "status")) or {"current", "archived"}
        if statuses - V2_STATUSES:
            raise ValueError(f"Invalid status: {sorted(statuses - V2_STATUSES)}")
        ids, spaces = set(_many(q, "id")), set(_many(q, "space-id"))
        if len(ids) > 250:
            raise ValueError("id: at most 250 values")
        kind = "page" if m[1] == "pages" else "blogpost"
        items = [c for c in self.contents.values() if c.type == kind and c.status in statuses
                 and (not ids or c.id in ids) and (not spaces or c.space_id in spaces)]
        storage = _one(q, "body-format") == "storage"
        return self._v2_list(request, q, items, lambda c: self._content_json(c, storage))

    def _content_json(self, c: FakeContent, storage: bool) -> dict:
        space = self.spaces[c.space_id]
        data = {"id": c.id, "status": c.status, "title": c.title, "spaceId": c.space_id}
        if c.type == "page":
            data.update({"parentId": c.parent, "parentType": "page" if c.parent else None, "position": c.position,
                         "authorId": AUTHOR_ID, "ownerId": AUTHOR_ID, "lastOwnerId": None})
            webui = f"/spaces/{space.key}/pages/{c.id}/{quote_plus(c.title)}"
        else:
            data["authorId"] = AUTHOR_ID
            webui = f"/spaces/{space.key}/blog/{c.created:%Y/%m/%d}/{c.id}/{quote_plus(c.title)}"
        data.update({"createdAt": _iso(c.created),
                     "version": {"number": c.version, "createdAt": _iso(c.modified), "message": "",
                                 "minorEdit": False, "authorId": AUTHOR_ID}})
        if storage:
            data["body"] = {"storage": {"representation": "storage", "value": c.body}}
        tiny = base64.urlsafe_b64encode(int(c.id).to_bytes(4, "little")).decode().rstrip("=A")
        data["_links"] = {"webui": webui, "editui": f"/pages/resumedraft.action?draftId={c.id}", "tinyui": f"/x/{tiny}"}
        return data

    def _content(self, request, m, q) -> Reply:
        content = self.contents.get(m["id"])
        kind = "page" if m[1] == "pages" else "blogpost"
        statuses = set(_many(q, "status"))
        if content is None or content.type != kind or (statuses and content.status not in statuses):
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        data = self._content_json(content, _one(q, "body-format") == "storage")
        data["_links"]["base"] = self.base
        return Reply(200, data)

    def _ancestors(self, request, m, q) -> Reply:
        """Top to bottom; at most ``limit`` of them, the nearest (ask again with the first for more)."""
        content = self.contents.get(m["id"])
        if content is None or content.type != "page":
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        chain, parent = [], content.parent
        while parent is not None and parent in self.contents:
            chain.insert(0, {"id": parent, "type": "page"})
            parent = self.contents[parent].parent
        return Reply(200, {"results": chain[-self._limit(q, 25):], "_links": {"base": self.base}})

    def _space_permissions(self, request, m, q) -> Reply:
        space = self.spaces.get(m["id"])
        if space is None:
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        return self._v2_list(request, q, space.perms, dict)

    def _attachments(self, request, m, q) -> Reply:
        content = self.contents.get(m["id"])
        if content is None or content.type != ("page" if m[1] == "pages" else "blogpost"):
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        items = [a for a in self.attachments.values() if a.content_id == content.id]
        return self._v2_list(request, q, items, self._attachment_json, default_limit=50)

    def _attachment(self, request, m, q) -> Reply:
        att = self.attachments.get(m["id"])
        if att is None:
            return Reply(404, _v2_error(404, "NOT_FOUND", "Not Found"))
        return Reply(200, {**self._attachment_json(att), "_links": {**self._attachment_json(att)["_links"],
                                                                    "base": self.base}})

    def _attachment_json(self, att: FakeAttachment) -> dict:
        owner = self.contents[att.content_id]
        download = (f"/download/attachments/{owner.id}/{quote(att.title)}?version={att.version}"
                    f"&modificationDate={int(att.modified.timestamp() * 1000)}&cacheVersion=1&api=v2")
        webui = (f"/pages/viewpageattachments.action?pageId={owner.id}"
                 f"&preview=%2F{owner.id}%2F{att.id}%2F{quote(att.title)}")
        return {"id": att.id, "status": "current", "title": att.title, "createdAt": _iso(att.created),
                ("pageId" if owner.type == "page" else "blogPostId"): owner.id, "mediaType": att.media_type,
                "mediaTypeDescription": MEDIA_TYPES.get(att.media_type, "File"), "comment": "",
                "fileId": att.file_id, "fileSize": len(att.data), "webuiLink": webui, "downloadLink": download,
                "version": {"number": att.version, "createdAt": _iso(att.modified), "message": "", "minorEdit": False,
                            "authorId": AUTHOR_ID},
                "_links": {"webui": webui, "download": download}}

    # -- v1: restrictions, space permissions, groups, users -------------------------------------------

    def _user_json(self, account_id: str) -> dict:
        user = self.users.get(account_id) or FakeUser(account_id, "", True, "Former user")
        return {"type": "known", "accountId": user.account_id, "accountType": "atlassian",
                "email": "" if user.hidden else user.email, "publicName": user.name,
                "profilePicture": {"path": f"/wiki/aa-avatar/{user.account_id}", "width": 48, "height": 48,
                                   "isDefault": False},
                "displayName": user.name, "isExternalCollaborator": False,
                "_expandable": {"operations": "", "personalSpace": ""},
                "_links": {"self": f"{self.base}/rest/api/user?accountId={quote(user.account_id)}"}}

    def _group_json(self, group_id: str) -> dict:
        return {"type": "group", "name": self.groups.get(group_id, ""), "id": group_id,
                "_links": {"self": f"{self.base}/rest/api/group/by-id?id={group_id}"}}

    def _restriction(self, request, m, q) -> Reply:
        content, operation = self.contents.get(m["id"]), m[2]
        if content is None:
            return Reply(404, _v1_error(404, f"No content found with id : ContentId{{id={m['id']}}}", "Not Found"))
        users, groups = content.restrictions.get(operation, ([], []))
        start, limit = int(_one(q, "start", "0")), int(_one(q, "limit", "100"))

        def part(items):
            page = items[start:start + limit]
            return {"results": page, "start": start, "limit": limit, "size": len(page)}
        return Reply(200, {"operation": operation,
                           "restrictions": {"user": part([self._user_json(a) for a in users]),
                                            "group": part([self._group_json(g) for g in groups])},
                           "_expandable": {"content": f"/rest/api/content/{content.id}"},
                           "_links": {"base": self.base, "context": "/wiki", "self": f"{self.origin}{request.path}"}})

    def _space_v1(self, request, m, q) -> Reply:
        space = next((s for s in self.spaces.values() if s.key == unquote(m["key"])), None)
        if space is None:
            return Reply(404, _v1_error(404, f"No space with key : {unquote(m['key'])}", "Not Found"))
        data = {"id": int(space.id), "key": space.key, "name": space.name, "type": "global", "status": "current",
                "_expandable": {"homepage": f"/rest/api/content/{space.homepage_id}"},
                "_links": {"webui": f"/spaces/{space.key}", "self": f"{self.base}/rest/api/space/{space.key}",
                           "base": self.base, "context": "/wiki"}}
        if "permissions" in _many(q, "expand"):
            data["permissions"] = self._v1_permissions(space)
        return Reply(200, data)

    def _v1_permissions(self, space: FakeSpace) -> list[dict]:
        """One entry per subject and operation; anonymous access is an entry without subjects."""
        out = []
        for perm in space.perms:
            kind, pid = perm["principal"]["type"], perm["principal"]["id"]
            if kind not in ("user", "group"):
                continue
            subject = self._user_json(pid) if kind == "user" else self._group_json(pid)
            out.append({"id": int(perm["id"]), "subjects": {kind: {"results": [subject], "size": 1}},
                        "operation": {"operation": perm["operation"]["key"],
                                      "targetType": perm["operation"]["targetType"]},
                        "anonymousAccess": False, "unlicensedAccess": False})
        if space.anonymous:
            out.append({"id": int(space.id) * 10, "operation": {"operation": "read", "targetType": "space"},
                        "anonymousAccess": True, "unlicensedAccess": False})
        return out

    def _groups(self, request, m, q) -> Reply:
        ordered = sorted(self.groups, key=lambda g: self.groups[g].lower())
        return Reply(200, self._v1_list(request, q, [self._group_json(g) for g in ordered], 200))

    def _members(self, request, m, q) -> Reply:
        group_id = unquote(m["groupId"])
        if int(_one(q, "limit", "200")) > 200:
            return Reply(400, _v1_error(400, "Limit must be less than or equal to 200", "Bad Request"))
        if group_id not in self.groups:
            return Reply(404, _v1_error(404, f"Group with id {group_id} not found", "Not Found"))
        return Reply(200, self._v1_list(request, q, [self._user_json(a) for a in self.members[group_id]], 200))

    def _users_bulk(self, request, m, q) -> Reply:
        found = [self._user_json(a) for a in _many(q, "accountId")[:200] if a in self.users]
        return Reply(200, {"results": found, "start": 0, "limit": 200, "size": len(found),
                           "_links": {"base": self.base, "context": "/wiki"}})

    def _user_email(self, request, m, q) -> Reply:
        if not self.email_api:
            return Reply(400, EMAIL_REFUSED)
        user = self.users.get(_one(q, "accountId", ""))
        if user is None:
            return Reply(404, _v1_error(404, "User not found", "Not Found"))
        return Reply(200, {"accountId": user.account_id, "email": user.email})

    def _user_email_bulk(self, request, m, q) -> Reply:
        if not self.email_api:
            return Reply(400, EMAIL_REFUSED)
        return Reply(200, [{"accountId": a, "email": self.users[a].email} for a in _many(q, "accountId")
                           if a in self.users])

    def _system_info(self, request, m, q) -> Reply:
        return Reply(200, {"cloudId": self.cloud_id, "commitHash": "6f3c9a1e", "baseUrl": self.base,
                           "edition": "standard", "siteTitle": "Confluence", "defaultLocale": "en_US",
                           "defaultTimeZone": self.timezone, "microsPerimeter": "commercial"})

    # -- v1: CQL search ----------------------------------------------------------------------------

    def _search(self, request, m, q) -> Reply:
        cql = _one(q, "cql", "")
        try:
            wanted, order = self._parse_cql(cql)
        except ValueError:
            return Reply(400, _v1_error(400, "com.atlassian.confluence.api.service.exceptions.BadRequestException: "
                                             f"Could not parse cql : {cql}", "Bad Request"))
        hits = [d for d in self._searchable() if all(test(d) for test in wanted)]
        if order:
            hits.sort(key=lambda d: d[2], reverse=order == "desc")
        limit = self._limit(q, 25)
        cursor = _one(q, "cursor")
        start = int(_decode(cursor)["start"]) if cursor else 0
        page = hits[start:start + limit]
        links = {"base": self.base, "context": "/wiki", "self": f"{self.base}/rest/api/search?{urlencode(q)}"}
        if start + limit < len(hits):
            params = [("cql", cql), ("limit", limit), ("cursor", _encode({"start": start + limit})), ("next", "true")]
            links["next"] = f"/rest/api/search?{urlencode(params)}"
        return Reply(200, {"results": [self._search_json(*d) for d in page], "start": start, "limit": limit,
                           "size": len(page), "totalSize": len(hits), "cqlQuery": cql, "searchDuration": 7,
                           "_links": links})

    def _searchable(self) -> list[tuple]:
        """(type, space key, lastModified, object) of everything search can find: current content and
        its attachments; trashed and draft content is not in the index."""
        docs = []
        for c in sorted(self.contents.values(), key=lambda c: int(c.id)):
            if c.status == "current":
                docs.append((c.type, self.spaces[c.space_id].key, c.modified, c))
        for a in sorted(self.attachments.values(), key=_sort_key):
            owner = self.contents[a.content_id]
            if owner.status == "current":
                docs.append(("attachment", self.spaces[owner.space_id].key, a.modified, a))
        return docs

    def _search_json(self, kind: str, space_key: str, modified: datetime, obj) -> dict:
        if kind == "attachment":
            webui = self._attachment_json(obj)["_links"]["webui"]
            content = {"id": obj.id, "type": kind, "status": "current", "title": obj.title}
        else:
            webui = self._content_json(obj, False)["_links"]["webui"]
            content = {"id": obj.id, "type": kind, "status": obj.status, "title": obj.title}
        content["_links"] = {"webui": webui, "self": f"{self.base}/rest/api/content/{obj.id}"}
        content["_expandable"] = {"space": f"/rest/api/space/{space_key}", "version": "", "body": ""}
        space = self._space_by_key(space_key)
        return {"content": content, "title": obj.title, "excerpt": "", "url": webui,
                "resultGlobalContainer": {"title": space.name, "displayUrl": f"/spaces/{space_key}"},
                "breadcrumbs": [], "entityType": "content", "iconCssClass": f"aui-icon content-type-{kind}",
                "lastModified": _iso(modified), "friendlyLastModified": f"{modified.astimezone(self.zone):%b %d, %Y}",
                "score": 1.0}

    def _parse_cql(self, cql: str):
        """Clauses joined by AND, then an optional ORDER BY lastmodified [ASC|DESC]: (tests on
        (type, space key, lastModified, object), order or None); ValueError for anything else."""
        tokens, pos = [], 0
        while pos < len(cql.rstrip()):
            t = _CQL_TOKEN.match(cql, pos)
            if t is None:
                raise ValueError(cql[pos:])
            quoted = t[1] if t[1] is not None else t[2]
            tokens.append(("v", quoted) if quoted is not None else ("o", t[3]) if t[3] else ("w", t[4]))
            pos = t.end()
        words = [t[1].lower() if t[0] == "w" else None for t in tokens]
        order = None
        if "order" in words:
            at = words.index("order")
            tail = words[at:] + [None]
            if tail[1] != "by" or tail[2] not in ("lastmodified", "lastmodified.date") or \
                    tail[3:] not in ([None], ["asc", None], ["desc", None]):
                raise ValueError("order by")
            order, tokens = tail[3] or "asc", tokens[:at]
        tests, clause = [], []
        for token in tokens + [("w", "and")]:
            if token[0] == "w" and token[1].lower() == "and":
                tests.append(self._clause(clause))
                clause = []
            else:
                clause.append(token)
        return tests, order

    def _clause(self, tokens: list[tuple[str, str]]):
        if len(tokens) < 3 or tokens[0][0] != "w":
            raise ValueError("clause")
        fld, op, rest = tokens[0][1].lower(), tokens[1][1].lower(), tokens[2:]
        if op == "not" and rest[0][1].lower() == "in":
            op, rest = "not in", rest[1:]
        if op in ("in", "not in"):
            values, commas = rest[1:-1:2], rest[2:-1:2]
            if len(rest) < 3 or rest[0] != ("o", "(") or rest[-1] != ("o", ")") or \
                    any(v[0] == "o" for v in values) or any(c != ("o", ",") for c in commas):
                raise ValueError("in (...)")
            values = [v[1] for v in values]
        elif len(rest) == 1 and rest[0][0] != "o":
            values = [rest[0][1]]
        else:
            raise ValueError("value")
        if fld in ("space", "space.key", "type") and op in ("=", "!=", "in", "not in"):
            index, wanted = (0, {v.lower() for v in values}) if fld == "type" else (1, set(values))
            negate = op in ("!=", "not in")
            return lambda d: (d[index] in wanted) != negate
        if fld in ("lastmodified", "lastmodified.date") and op in (">=", ">", "<=", "<") and len(values) == 1:
            when = self._cql_time(values[0])
            return {">=": lambda d: d[2] >= when, ">": lambda d: d[2] > when,
                    "<=": lambda d: d[2] <= when, "<": lambda d: d[2] < when}[op]
        raise ValueError(f"{fld} {op}")

    def _cql_time(self, value: str) -> datetime:
        """A CQL date (minutes at most) in the site's time zone, as an instant."""
        for fmt in _CQL_DATES:
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=self.zone).astimezone(timezone.utc)
            except ValueError:
                continue
        raise ValueError(value)

    # -- downloads: the wiki redirects, the media service serves -----------------------------------

    def _download(self, request, m, q) -> Reply:
        title = unquote(m["name"])
        att = next((a for a in self.attachments.values() if a.content_id == m["id"] and a.title == title), None)
        if att is None:
            return Reply(404, "Not Found")
        token = secrets.token_urlsafe(24)
        self._media_tokens[token] = (att.file_id, self.clock() + self.media_token_ttl)
        params = {"token": token, "client": self.cloud_id, "dl": "true", "name": att.title}
        return Reply(302, b"", {"Location": f"{self.origin}/media/file/{att.file_id}/binary?{urlencode(params)}"})

    def _media(self, request, m, q) -> Reply:
        if "authorization" in request.headers:
            self.token_leaks += 1
            return Reply(400, {"error": {"code": "BadRequest", "title": "Bad Request",
                                         "message": "a media token URL takes no Authorization header"}})
        file_id, expires = self._media_tokens.get(_one(q, "token", ""), (None, None))
        if file_id != m["fileId"] or expires < self.clock():
            return Reply(401, {"error": {"code": "Unauthorized", "title": "Unauthorized",
                                         "message": "token expired or not valid for this file"}})
        att = next((a for a in self.attachments.values() if a.file_id == file_id), None)
        if att is None:
            return Reply(404, {"error": {"code": "NotFound", "title": "Not Found", "message": "file not found"}})
        self.downloads += 1
        headers = {"Content-Type": att.media_type, "Content-Disposition": f"attachment; filename=\"{quote(att.title)}\""}
        if att.grown_by:
            return Reply(200, grown(att.data, att.grown_by, chunked=att.chunked, on_sent=self._sent), headers)
        return Reply(200, att.data, headers)

    def _sent(self, n: int) -> None:
        with self.lock:
            self.download_bytes_sent += n


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sort_key(item) -> int:
    """Numeric order of ids ("65540", "att65541")."""
    raw = item["id"] if isinstance(item, dict) else item.id
    return int(raw.removeprefix("att"))


def _template(match: re.Match) -> str:
    """The path with its named parts as {name}: the key under which requests_by_path counts it."""
    path, out, pos = match.string, [], 0
    for name in sorted(match.re.groupindex, key=match.start):
        out += [path[pos:match.start(name)], "{" + name + "}"]
        pos = match.end(name)
    return "".join(out) + path[pos:]
