"""A loopback SharePoint Online and OneDrive for Business: Graph's sites, drives, delta,
content and permissions, SharePoint REST's site groups, and change-notification subscriptions.

It extends :class:`standins.fake_entra.FakeEntra` (``entra.extend(sharepoint)``): the
same server answers the token endpoint (secrets and certificate assertions; SharePoint REST
refuses a token from a secret with ``401 Unsupported app only token.``, as SharePoint does),
Graph, the SharePoint host (REST and the pre-authenticated download URLs) - all under their
real https URLs through ``entra.session()``.

What it reproduces, because the connector must cope with it:

* delta pages of ``page_size`` items with absolute ``@odata.nextLink``/``@odata.deltaLink``,
  the token opaque; an item listed twice in one enumeration (``duplicate_in_listing``);
  deletes as ``{"deleted": {"state": "deleted"}}`` tombstones without name or cTag; renames and
  moves as the item alone (descendants are not listed again); sharing changes only when the
  request's ``Prefer`` asks for them, as ``@microsoft.graph.sharedChanged: "True"`` on the root
  of the changed hierarchy (``hierarchicalsharing``); ``expire_tokens()`` makes every token
  issued so far answer ``410 Gone`` ``resyncRequired``;
* ``/content`` answers 302 to a download URL on the SharePoint host that takes no token (a
  request that carries one is refused: the token must not leave Graph) and expires;
* permissions with ``inheritedFrom: {}`` on inherited entries, ``siteGroup`` principals with
  per-site numeric ids, ``user``+``siteUser``, ``group``, sharing links of each scope, expiry;
  403 for items whose permissions the app may not read;
* subscriptions: the ``validationToken`` handshake against the notification URL before 201,
  the 42,300-minute limit, root-only resources, renewal (PATCH) and deletion, and
  ``notify()``/``lifecycle()`` posting to subscribers.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import requests

from standins._loopback import Reply, Request, grown

GRAPH = "https://graph.microsoft.com"
MAX_SUBSCRIPTION_MINUTES = 42300


def _error(code: str, message: str = "") -> dict:
    return {"error": {"code": code, "message": message or code,
                      "innerError": {"date": "2026-11-30T00:00:00", "request-id": secrets.token_hex(8)}}}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


@dataclass
class FakeItem:
    id: str
    name: str
    parent: str | None                  # item id of the folder; None for the root
    folder: bool = False
    content: bytes = b""
    perms: list[dict] | None = None     # None: inherits from the parent (the root always has its own)
    unreadable: bool = False            # the app may not read its permissions (403)
    version: int = 1
    grown_by: int = 0                   # bytes its download sends beyond ``content`` (it grew since it was listed)
    chunked: bool = False               # that download without a Content-Length


@dataclass
class FakeDrive:
    id: str
    name: str
    site: "FakeSite"
    items: dict[str, FakeItem] = field(default_factory=dict)
    log: list[tuple[int, str, str]] = field(default_factory=list)   # (seq, item id, "change"|"delete"|"sharing")
    root_id: str = ""


@dataclass
class FakeSite:
    host: str
    path: str                           # "sites/engineering"
    id: str                             # "host,<collection guid>,<web guid>"
    groups: dict[int, dict] = field(default_factory=dict)   # id -> {"Title", "users": [SP.User dicts]}
    drives: list[str] = field(default_factory=list)




class FakeSharePoint:
    def __init__(self, host: str = "contoso.sharepoint.com", *, page_size: int = 3, group_page_size: int = 50):
        self.host = host
        self.hosts = {host, host.replace(".sharepoint.com", "-my.sharepoint.com")}
        self.page_size = page_size
        self.group_page_size = group_page_size
        self.entra = None                      # set by FakeEntra.extend
        self.sites: dict[str, FakeSite] = {}   # path -> site
        self.drives: dict[str, FakeDrive] = {}
        self.onedrives: dict[str, str] = {}    # upn -> drive id
        self.subscriptions: dict[str, dict] = {}
        self.downloads = 0
        self.download_bytes_sent = 0           # bytes of grown downloads that went out
        self.duplicate_in_listing = False
        self.rest_next_link_base: str | None = None   # SharePoint REST next links elsewhere (a test)
        self.token_leaks = 0                   # download requests that carried an Authorization header
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._expired_before = 0               # tokens from before this sequence number answer 410
        self._tempauth: dict[str, float] = {}  # download credential -> expiry (time.time)
        # per drive, the last listing built: its pages are slices of one snapshot (as a delta round
        # reads the drive as of its start), not rebuilt for every page
        self._listings: dict[str, tuple[tuple, list[dict]]] = {}
        self._lock = threading.RLock()

    @property
    def graph(self) -> str:
        return self.entra.graph_base if self.entra is not None else GRAPH

    @property
    def _links(self) -> str:
        """Where its Graph next (and delta) links point: Graph, unless a test set Entra's
        ``next_link_base`` to another origin (a tampered answer)."""
        return (self.entra.next_link_base if self.entra is not None else None) or self.graph

    def web_url(self, site: FakeSite) -> str:
        return f"{self._host_url(site.host)}/{site.path}"

    def _host_url(self, host: str) -> str:
        return self.entra.host_url(host) if self.entra is not None else f"https://{host}"

    # -- building the tenant ------------------------------------------------------------------

    def _new_id(self, prefix: str = "01") -> str:
        return f"{prefix}{next(self._ids):08d}ITEM"

    def add_site(self, path: str, groups: dict[int, tuple[str, list[dict]]] | None = None) -> FakeSite:
        """A site; ``groups``: {id: (title, [SP.User member dicts])}."""
        n = len(self.sites) + 1
        site = FakeSite(self.host, path.strip("/"), f"{self.host},{n:08d}-0000-4000-8000-000000000001,"
                                                     f"{n:08d}-0000-4000-8000-000000000002")
        for gid, (title, users) in (groups or {}).items():
            site.groups[gid] = {"Title": title, "users": list(users)}
        self.sites[site.path] = site
        return site

    def add_drive(self, site: FakeSite, name: str = "Documents", root_perms: list[dict] | None = None) -> FakeDrive:
        drive = FakeDrive(id=f"b!{secrets.token_urlsafe(12)}", name=name, site=site)
        root = FakeItem(self._new_id(), "root", None, folder=True, perms=list(root_perms or []))
        drive.root_id = root.id
        drive.items[root.id] = root
        self.drives[drive.id] = drive
        site.drives.append(drive.id)
        return drive

    def add_onedrive(self, upn: str, owner_email: str) -> FakeDrive:
        host = self.host.replace(".sharepoint.com", "-my.sharepoint.com")
        site = FakeSite(host, f"personal/{upn.replace('@', '_').replace('.', '_')}",
                        f"{host},{len(self.sites) + 1:08d}-0000-4000-8000-000000000001,"
                        f"{len(self.sites) + 1:08d}-0000-4000-8000-000000000002")
        self.sites[site.path] = site
        drive = self.add_drive(site, "OneDrive", [user_perm(owner_email, "owner")])
        self.onedrives[upn.lower()] = drive.id
        return drive

    def add_folder(self, drive: FakeDrive, name: str, parent: str | None = None, perms: list[dict] | None = None) -> FakeItem:
        return self._add(drive, FakeItem(self._new_id(), name, parent or drive.root_id, folder=True, perms=perms))

    def add_file(self, drive: FakeDrive, name: str, content: bytes | str, parent: str | None = None,
                 perms: list[dict] | None = None) -> FakeItem:
        data = content.encode() if isinstance(content, str) else content
        return self._add(drive, FakeItem(self._new_id(), name, parent or drive.root_id, content=data, perms=perms))

    def _add(self, drive: FakeDrive, item: FakeItem) -> FakeItem:
        with self._lock:
            drive.items[item.id] = item
            drive.log.append((next(self._seq), item.id, "change"))
        return item

    # -- changing it (each change lands in the drive's log, as delta reports it) ------------------

    def edit(self, drive: FakeDrive, item_id: str, content: bytes | str) -> None:
        with self._lock:
            item = drive.items[item_id]
            item.content = content.encode() if isinstance(content, str) else content
            item.version += 1
            drive.log.append((next(self._seq), item_id, "change"))

    def rename(self, drive: FakeDrive, item_id: str, name: str, parent: str | None = None) -> None:
        with self._lock:
            item = drive.items[item_id]
            item.name = name
            if parent:
                item.parent = parent
            drive.log.append((next(self._seq), item_id, "change"))

    def delete(self, drive: FakeDrive, item_id: str) -> None:
        """Delete an item (a folder with everything below: only the folder is reported)."""
        with self._lock:
            gone = [item_id] + [i.id for i in self.below(drive, item_id)]
            for iid in gone:
                drive.items.pop(iid, None)
            drive.log.append((next(self._seq), item_id, "delete"))

    def set_perms(self, drive: FakeDrive, item_id: str, perms: list[dict] | None) -> None:
        """New permissions of an item (None: inherit again). Only a sharing change: delta lists it
        only for a request that asks for sharing changes."""
        with self._lock:
            drive.items[item_id].perms = None if perms is None else list(perms)
            drive.log.append((next(self._seq), item_id, "sharing"))

    def set_group_members(self, site: FakeSite, group_id: int, users: list[dict]) -> None:
        with self._lock:
            site.groups[group_id]["users"] = list(users)

    def expire_tokens(self) -> None:
        """Every delta token issued so far is too old from now on (410 Gone)."""
        with self._lock:
            self._expired_before = next(self._seq)

    def below(self, drive: FakeDrive, item_id: str) -> list[FakeItem]:
        out, frontier = [], [item_id]
        while frontier:
            children = [i for i in drive.items.values() if i.parent in frontier]
            out.extend(children)
            frontier = [c.id for c in children if c.folder]
        return out

    # -- Graph --------------------------------------------------------------------------------

    def handle_graph(self, request: Request, parts: list[str]) -> Reply | None:
        if parts[:1] != ["v1.0"]:
            return None
        p = parts[1:]
        if len(p) > 2 and p[0] == "sites" and p[1].endswith(":"):   # /sites/{host}:/{path}
            return self._site_by_path("/".join(p[1:]))
        if len(p) == 3 and p[0] == "sites" and p[2] == "drives":
            site = next((s for s in self.sites.values() if s.id == p[1]), None)
            if site is None:
                return Reply(404, _error("itemNotFound", "Requested site could not be found"))
            drives = [self._drive_json(self.drives[d]) for d in site.drives]
            return Reply(200, self._paged(drives, f"{self._links}/v1.0/sites/{quote(site.id, safe='')}/drives", request))
        if len(p) == 3 and p[0] == "users" and p[2] == "drive":
            drive_id = self.onedrives.get(p[1].lower())
            if drive_id is None:
                return Reply(404, _error("itemNotFound", "The resource could not be found."))
            return Reply(200, self._drive_json(self.drives[drive_id]))
        if len(p) >= 3 and p[0] == "drives":
            drive = self.drives.get(p[1])
            if drive is None:
                return Reply(404, _error("itemNotFound", "Item not found"))
            if p[2:] == ["root", "delta"]:
                return self._delta(drive, request)
            if len(p) >= 4 and p[2] == "items":
                return self._item_call(drive, p[3], p[4:], request)
        if p[:1] == ["subscriptions"]:
            return self._subscriptions(request, p[1:])
        return None

    def _site_by_path(self, rest: str) -> Reply:
        host, _, path = rest.partition(":")
        site = self.sites.get(path.strip("/:"))
        if host not in self.hosts:
            return Reply(400, _error("invalidRequest", "Provided id has an invalid hostname for this tenancy"))
        if site is None or site.host != host:
            return Reply(404, _error("itemNotFound", "Requested site could not be found"))
        return Reply(200, {"id": site.id, "name": site.path.rsplit("/", 1)[-1], "displayName": site.path,
                           "webUrl": self.web_url(site)})

    def _drive_json(self, drive: FakeDrive) -> dict:
        site = drive.site
        guids = site.id.split(",")
        return {"id": drive.id, "name": drive.name, "driveType": "documentLibrary" if "personal/" not in site.path
                else "business", "webUrl": f"{self.web_url(site)}/{quote(drive.name)}",
                "sharePointIds": {"siteId": guids[1], "webId": guids[2], "siteUrl": self.web_url(site)}}

    def _paged(self, values: list, base: str, request: Request) -> dict:
        start = int(request.query.get("$skiptoken") or 0)
        page = {"value": values[start:start + self.page_size]}
        if start + self.page_size < len(values):
            page["@odata.nextLink"] = f"{base}?$skiptoken={start + self.page_size}"
        return page

    # -- delta --------------------------------------------------------------------------------

    def _delta(self, drive: FakeDrive, request: Request) -> Reply:
        prefer = {p.strip().lower() for p in request.headers.get("prefer", "").split(",")}
        sharing = "deltashowsharingchanges" in prefer
        with self._lock:
            token = request.query.get("token")
            if token:
                state = _unb64(token)
                if state["issued"] < self._expired_before:
                    return Reply(410, _error("resyncRequired", "Resync required. Replace any local items with the "
                                             "server's version (including deletes)..."),
                                 {"Location": f"{self.graph}/v1.0/drives/{drive.id}/root/delta"})
                since, upto, offset = state["since"], state.get("upto"), state.get("offset", 0)
            else:
                since, upto, offset = 0, None, 0
            upto = upto if upto is not None else (drive.log[-1][0] if drive.log else 0)
            key = (since, upto, sharing)
            cached = self._listings.get(drive.id)
            if cached is None or cached[0] != key:
                cached = self._listings[drive.id] = (key, self._changes(drive, since, upto, sharing))
            entries = cached[1]
        page_entries = entries[offset:offset + self.page_size]
        if self.duplicate_in_listing and since == 0 and offset == 0 and page_entries:
            page_entries = page_entries + [page_entries[0]]   # the same item twice: the last counts
        body: dict = {"@odata.context": f"{self.graph}/v1.0/$metadata#Collection(driveItem)", "value": page_entries}
        base = f"{self._links}/v1.0/drives/{drive.id}/root/delta"
        with self._lock:
            issued = next(self._seq)
        if offset + self.page_size < len(entries):
            body["@odata.nextLink"] = f"{base}?token=" + _b64({"since": since, "upto": upto, "issued": issued,
                                                              "offset": offset + self.page_size})
        else:
            body["@odata.deltaLink"] = f"{base}?token={_b64({'since': upto, 'issued': issued})}"
        return Reply(200, body)

    def _changes(self, drive: FakeDrive, since: int, upto: int, sharing: bool) -> list[dict]:
        if since == 0:   # a full enumeration: every item there now, parents before children
            order, frontier = [], [drive.root_id]
            while frontier:
                order.extend(frontier)
                parents = set(frontier)
                frontier = [i.id for i in drive.items.values() if i.parent in parents]
            return [self._item_json(drive, drive.items[i]) for i in order if i in drive.items]
        kinds: dict[str, set[str]] = {}
        for seq, iid, kind in drive.log:   # the changes after the token, up to the listing's snapshot
            if since < seq <= upto and (kind != "sharing" or sharing):
                kinds.setdefault(iid, set()).add(kind)
        out = []
        for iid, seen in kinds.items():
            item = drive.items.get(iid)
            if "delete" in seen or item is None:
                out.append({"id": iid, "deleted": {"state": "deleted"},
                            "parentReference": {"driveId": drive.id, "driveType": "documentLibrary"}})
                continue
            data = self._item_json(drive, item)
            if "sharing" in seen:
                data["@microsoft.graph.sharedChanged"] = "True"
            out.append(data)
        return out

    def _item_json(self, drive: FakeDrive, item: FakeItem) -> dict:
        site = drive.site
        path = self._path(drive, item)
        data = {"id": item.id, "name": item.name, "eTag": f'"{{{item.id}}},{item.version}"',
                "webUrl": f"{self.web_url(site)}/{quote(drive.name)}{quote(path)}",
                "parentReference": {"driveId": drive.id, "driveType": "documentLibrary",
                                    **({"id": item.parent} if item.parent else {})}}
        if item.parent is None:
            data["root"] = {}
            data["folder"] = {"childCount": sum(1 for i in drive.items.values() if i.parent == item.id)}
        elif item.folder:
            data["folder"] = {"childCount": sum(1 for i in drive.items.values() if i.parent == item.id)}
        else:
            digest = base64.b64encode(hashlib.sha1(item.content).digest()).decode()
            data.update({"cTag": f'"c:{{{item.id}}},{item.version}"', "size": len(item.content),
                         "file": {"mimeType": "application/octet-stream", "hashes": {"quickXorHash": digest}}})
        return data

    def _path(self, drive: FakeDrive, item: FakeItem) -> str:
        names = []
        current: FakeItem | None = item
        while current is not None and current.parent is not None:
            names.append(current.name)
            current = drive.items.get(current.parent)
        return "/" + "/".join(reversed(names)) if names else ""

    # -- items: metadata, content, permissions ----------------------------------------------------

    def _item_call(self, drive: FakeDrive, item_id: str, rest: list[str], request: Request) -> Reply:
        item = drive.items.get(item_id)
        if item is None:
            return Reply(404, _error("itemNotFound", "Item not found"))
        if not rest:
            return Reply(200, self._item_json(drive, item))
        if rest == ["content"]:
            if item.folder:
                return Reply(400, _error("invalidRequest", "Cannot download a folder"))
            credential = secrets.token_urlsafe(16)
            with self._lock:
                self._tempauth[credential] = time.time() + 300
            return Reply(302, b"", {"Location": f"{self._host_url(drive.site.host)}/_layouts/15/download.aspx?"
                                                f"UniqueId={drive.id}:{item.id}&tempauth={credential}"})
        if rest == ["permissions"]:
            if item.unreadable:
                return Reply(403, _error("accessDenied", "Access denied"))
            return Reply(200, {"value": self.effective(drive, item)})
        return Reply(400, _error("invalidRequest"))

    def effective(self, drive: FakeDrive, item: FakeItem) -> list[dict]:
        """The item's permissions: its own, or its nearest ancestor's marked ``inheritedFrom: {}``."""
        current: FakeItem | None = item
        while current is not None and current.perms is None:
            current = drive.items.get(current.parent) if current.parent else None
        perms = [dict(p) for p in (current.perms if current is not None else [])]
        if current is not item:
            for p in perms:
                p["inheritedFrom"] = {}
        return perms

    # -- the SharePoint host: REST and downloads -----------------------------------------------------

    def handle_host(self, host: str, request: Request, path: str) -> Reply:
        if path == "/_layouts/15/download.aspx":
            return self._download(request)
        if "/_api/" in path:
            return self._rest(host, request, path)
        return Reply(404, "not found")

    def _download(self, request: Request) -> Reply:
        if "authorization" in request.headers:
            with self._lock:
                self.token_leaks += 1
            return Reply(400, "a download URL takes no Authorization header")
        with self._lock:
            expires = self._tempauth.get(request.query.get("tempauth", ""))
        if expires is None or expires < time.time():
            return Reply(401, "tempauth expired or invalid")
        drive_id, _, item_id = request.query.get("UniqueId", "").partition(":")
        item = self.drives[drive_id].items.get(item_id) if drive_id in self.drives else None
        if item is None:
            return Reply(404, "File Not Found.")
        with self._lock:
            self.downloads += 1
        if item.grown_by:
            return Reply(200, grown(item.content, item.grown_by, chunked=item.chunked, on_sent=self._sent))
        return Reply(200, item.content)

    def _sent(self, n: int) -> None:
        with self._lock:
            self.download_bytes_sent += n

    def _rest(self, host: str, request: Request, path: str) -> Reply:
        info = self.entra.token_info(request.headers.get("authorization", "")) if self.entra else None
        if info is None or info[0] not in (f"https://{host}", "direct"):
            return Reply(401, {"odata.error": {"code": "-2147024891, System.UnauthorizedAccessException",
                                               "message": {"lang": "en-US", "value": "Invalid audience or token."}}})
        if info[1] != "certificate":
            return Reply(401, "Unsupported app only token.")
        site_path, _, api = path.strip("/").partition("/_api/")
        site = self.sites.get(site_path)
        if site is None or site.host != host:
            return Reply(404, {"odata.error": {"code": "-2147024894, System.IO.FileNotFoundException",
                                               "message": {"lang": "en-US", "value": "File Not Found."}}})
        if "odata=nometadata" not in request.headers.get("accept", ""):
            return Reply(406, "this stand-in speaks odata=nometadata only")
        if api == "web/sitegroups":
            groups = [{"Id": gid, "Title": g["Title"], "LoginName": g["Title"], "PrincipalType": 8}
                      for gid, g in sorted(site.groups.items())]
            return Reply(200, {"value": groups})
        if api.startswith("web/sitegroups/GetById(") and api.endswith(")/users"):
            gid = int(api[len("web/sitegroups/GetById("):-len(")/users")])
            group = site.groups.get(gid)
            if group is None:
                return Reply(404, {"odata.error": {"code": "-2146232832, Microsoft.SharePoint.SPException",
                                                   "message": {"lang": "en-US", "value": "Group cannot be found."}}})
            start = int(request.query.get("$skiptoken") or 0)
            users = group["users"][start:start + self.group_page_size]
            body: dict = {"value": users}
            if start + self.group_page_size < len(group["users"]):
                body["odata.nextLink"] = (f"{self.rest_next_link_base or self._host_url(host)}/{site.path}/_api/{api}?"
                                          f"{urlencode({'$skiptoken': start + self.group_page_size})}")
            return Reply(200, body)
        return Reply(400, {"odata.error": {"code": "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                                           "message": {"lang": "en-US", "value": "Bad request."}}})

    # -- subscriptions ------------------------------------------------------------------------------

    def _subscriptions(self, request: Request, rest: list[str]) -> Reply:
        if not rest and request.method == "POST":
            return self._subscribe(request.json())
        if not rest and request.method == "GET":
            return Reply(200, self._paged(list(self.subscriptions.values()), f"{self._links}/v1.0/subscriptions", request))
        sub = self.subscriptions.get(rest[0]) if rest else None
        if sub is None:
            return Reply(404, _error("ResourceNotFound", "The object was not found."))
        if request.method == "PATCH":
            expires = request.json().get("expirationDateTime", "")
            if not self._expiry_ok(expires):
                return Reply(400, _error("InvalidRequest", "Subscription expiration can only be 42300 minutes in the future."))
            sub["expirationDateTime"] = expires
            return Reply(200, sub)
        if request.method == "DELETE":
            self.subscriptions.pop(rest[0], None)
            return Reply(204, b"")
        return Reply(200, sub)

    @staticmethod
    def _expiry_ok(value: str) -> bool:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        now = datetime.now(timezone.utc)
        return now < when <= now + timedelta(minutes=MAX_SUBSCRIPTION_MINUTES)

    def _subscribe(self, body: dict) -> Reply:
        resource = str(body.get("resource", "")).strip("/")
        parts = resource.split("/")
        if body.get("changeType") != "updated" or len(parts) != 3 or parts[0] != "drives" or parts[2] != "root" \
                or parts[1] not in self.drives:
            return Reply(400, _error("InvalidRequest", "Only the root of a drive can be subscribed to, for 'updated'."))
        if not self._expiry_ok(str(body.get("expirationDateTime", ""))):
            return Reply(400, _error("InvalidRequest", "Subscription expiration can only be 42300 minutes in the future."))
        for url in filter(None, (body.get("notificationUrl"), body.get("lifecycleNotificationUrl"))):
            token = secrets.token_urlsafe(12) + " <&>"
            try:
                joiner = "&" if "?" in url else "?"
                answer = requests.post(f"{url}{joiner}validationToken={quote(token)}", data=b"",
                                       headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=10)
            except requests.RequestException:
                return Reply(400, _error("InvalidRequest", "Subscription validation request failed."))
            if answer.status_code != 200 or answer.text != token:
                return Reply(400, _error("InvalidRequest", "Subscription validation request failed. Response must "
                                         "exactly match validationToken query parameter."))
        sub = {"id": secrets.token_hex(8), "resource": resource, "changeType": "updated",
               "clientState": body.get("clientState"), "notificationUrl": body["notificationUrl"],
               "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
               "expirationDateTime": body["expirationDateTime"], "applicationId": "client-1"}
        self.subscriptions[sub["id"]] = sub
        return Reply(201, sub)

    def notify(self, drive: FakeDrive) -> list[int]:
        """Tell every subscriber of the drive that it changed (a shoulder tap: no detail)."""
        statuses = []
        for sub in list(self.subscriptions.values()):
            if sub["resource"] == f"drives/{drive.id}/root":
                body = {"value": [{"subscriptionId": sub["id"], "clientState": sub["clientState"],
                                   "changeType": "updated", "resource": sub["resource"],
                                   "subscriptionExpirationDateTime": sub["expirationDateTime"],
                                   "tenantId": "tenant-1", "resourceData": None}]}
                statuses.append(requests.post(sub["notificationUrl"], json=body, timeout=10).status_code)
        return statuses

    def lifecycle(self, subscription_id: str, event: str = "reauthorizationRequired") -> int:
        sub = self.subscriptions[subscription_id]
        body = {"value": [{"subscriptionId": sub["id"], "clientState": sub["clientState"], "lifecycleEvent": event,
                           "subscriptionExpirationDateTime": sub["expirationDateTime"], "tenantId": "tenant-1"}]}
        return requests.post(sub["lifecycleNotificationUrl"] or sub["notificationUrl"], json=body, timeout=10).status_code


# -- permission resources, as Graph writes them --------------------------------------------------


def site_group_perm(site: FakeSite, group_id: int, role: str = "read") -> dict:
    title = site.groups[group_id]["Title"] if group_id in site.groups else f"group {group_id}"
    return {"id": base64.b64encode(title.encode()).decode(), "roles": [role],
            "grantedToV2": {"siteGroup": {"@odata.type": "#microsoft.graph.sharePointIdentity", "id": str(group_id),
                                          "displayName": title, "loginName": title}}}


def user_perm(email: str, role: str = "read", *, user_id: str | None = None) -> dict:
    return {"id": base64.b64encode(f"i:0#.f|membership|{email}".encode()).decode(), "roles": [role],
            "grantedToV2": {"user": {"id": user_id or f"id-{email}", "displayName": email.split("@")[0],
                                     "email": email},
                            "siteUser": {"id": "14", "displayName": email.split("@")[0], "email": email,
                                         "loginName": f"i:0#.f|membership|{email}"}}}


def entra_group_perm(group_id: str, name: str, role: str = "read") -> dict:
    return {"id": base64.b64encode(f"c:0t.c|tenant|{group_id}".encode()).decode(), "roles": [role],
            "grantedToV2": {"group": {"id": group_id, "displayName": name, "email": f"{name}@contoso.com"},
                            "siteUser": {"id": "33", "displayName": name,
                                         "loginName": f"c:0t.c|tenant|{group_id}"}}}


def display_name_group_perm(name: str, role: str = "read") -> dict:
    """A group a user created and named: Graph reports it with an id, but a principal granted only
    by its display name (as old ``grantedTo`` output did) names no id at all."""
    return {"id": base64.b64encode(name.encode()).decode(), "roles": [role],
            "grantedTo": {"user": {"displayName": name}},
            "grantedToV2": {"group": {"displayName": name}}}


def link_perm(scope: str, *, people: list[str] = (), role: str = "read", expires: str | None = None) -> dict:
    perm = {"id": secrets.token_hex(8) if scope != "existingAccess" else "00000000-0000-0000-0000-000000000000",
            "roles": [role], "hasPassword": False,
            "link": {"scope": scope, "type": "view" if role == "read" else "edit",
                     "webUrl": f"https://contoso.sharepoint.com/:w:/s/x/{secrets.token_hex(4)}", "preventsDownload": False},
            "expirationDateTime": expires or "0001-01-01T00:00:00Z"}
    if people:
        perm["grantedToIdentitiesV2"] = [{"user": {"id": f"id-{p}", "displayName": p.split("@")[0], "email": p}}
                                         for p in people]
    return perm


def sp_user(email: str) -> dict:
    """A person as SharePoint REST lists a group's members."""
    return {"Id": abs(hash(email)) % 1000, "LoginName": f"i:0#.f|membership|{email}", "Title": email.split("@")[0],
            "PrincipalType": 1, "Email": email, "UserPrincipalName": email}


def sp_entra_group(group_id: str, *, owners: bool = False, security: bool = True) -> dict:
    """An Entra group (or a Microsoft 365 group's owners: ``_o``) as a member of a site group."""
    claim = f"c:0t.c|tenant|{group_id}" if security else \
        f"c:0o.c|federateddirectoryclaimprovider|{group_id}{'_o' if owners else ''}"
    return {"Id": 17, "LoginName": claim, "Title": "group", "PrincipalType": 4, "Email": "",
            "UserPrincipalName": None}

