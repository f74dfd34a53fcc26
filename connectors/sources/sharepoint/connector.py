"""SharePoint Online document libraries and OneDrive for Business as a synced source.

* Scopes are drives: every library of each configured site (``GET /sites/{host}:/{path}``,
  then ``GET /sites/{id}/drives``; only ``drives:`` when given) and each configured
  person's OneDrive (``GET /users/{upn}/drive``).
* Content: ``GET /drives/{id}/root/delta`` page by page to the ``@odata.deltaLink``, which is
  the stored cursor; a 410 on it means list the drive again and diff. Items are tracked by id
  (a rename or move changes the title and link in place, not the embedding); the version is
  the content hash Graph keeps (``quickXorHash``; the ``cTag`` where there is none), so a
  metadata-only change downloads nothing. Deltas ask for sharing changes (``Prefer:
  deltashowsharingchanges, hierarchicalsharing`` and the two that must come with them);
  flagged items are re-read, and so is everything below a flagged folder.
* Files: ``GET /drives/{d}/items/{i}/content`` (a redirect to a pre-authenticated URL,
  fetched without our token), parsed by ``connectors.sources.parsing``.
* Permissions: ``GET /drives/{d}/items/{i}/permissions`` through ``$batch``; the rules are in
  ``connectors.sources.sharepoint.permissions``. A 403 or 404 there leaves the item visible
  to nobody.
* The sites' own groups: SharePoint REST ``_api/web/sitegroups`` and ``GetById(n)/users``
  (SharePoint accepts app-only tokens from a certificate only: ``ENTRA_CLIENT_CERTIFICATE_PATH``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator, Sequence
from urllib.parse import quote, urlsplit

from chatops.access import Acl
from chatops.checks import CheckFailed
from connectors.microsoft import sharepoint_rest
from connectors.microsoft.app_roles import SHAREPOINT as SHAREPOINT_ROLES, SITES, check_graph_roles, token_for, token_roles
from connectors.microsoft.credentials import graph_client
from connectors.microsoft.graph import GraphClient, graph_error
from connectors.microsoft.settings import EntraSettings
from connectors.sources.base import GONE, Document, Item, ItemAcl, Page, SourceGroup, SourceUnavailable, Unfetchable
from connectors.sources.isolation import DEFAULT_LIMITS, ParseLimits, parse_isolated
from connectors.sources.parsing import SUPPORTED, Unsupported
from connectors.sources.settings import SourceSettings
from connectors.sources.sharepoint.config import SharePointConfig
from connectors.sources.sharepoint.http import NotFound, SourceHttp
from connectors.sources.sharepoint.permissions import NO_EMAIL, acl_of, site_group_members, site_group_token

log = logging.getLogger(__name__)

# The sharing annotations need the two preferences before them (Graph's delta documentation).
DELTA_PREFER = "deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges, hierarchicalsharing"
SHARED_CHANGED = "@microsoft.graph.sharedChanged"
# Graph keeps a drive subscription at most 42,300 minutes; ask for a little less, renew early.
SUBSCRIPTION_LIFETIME = timedelta(minutes=41000)
RENEW_BEFORE = timedelta(days=3)


@dataclass(frozen=True)
class Drive:
    id: str
    site_id: str          # Graph's "host,site collection id,web id": scopes the site's groups
    site_url: str         # for SharePoint REST
    name: str


def _parse_time(value: object) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)   # unreadable: renew it
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _split(doc_id: str) -> tuple[str, str]:
    drive, _, item = doc_id.rpartition("/")
    return drive, item


class SharePointSource:
    Config = SharePointConfig
    lists_everything = False

    @staticmethod
    def missing_settings(s, config: SharePointConfig | None = None) -> str | None:
        """What the environment lacks for a SharePoint source (checked at start-up)."""
        entra = s.of(EntraSettings)
        if not entra.configured:
            return "a SharePoint source needs the Entra app: set ENTRA_TENANT_ID and ENTRA_CLIENT_ID"
        if not entra.has_credential:
            return ("a SharePoint source needs the Entra app's certificate (ENTRA_CLIENT_CERTIFICATE_PATH; "
                    "SharePoint's site groups are read with it)")
        return None

    @staticmethod
    def id_for(name: str, config: SharePointConfig | None = None) -> str:
        return f"sharepoint:{name}"

    @classmethod
    def from_config(cls, config: SharePointConfig, context) -> "SharePointSource":
        if context.settings is None:
            raise ValueError("a SharePoint source needs the settings (the Entra app)")
        graph = graph_client(context.settings.of(EntraSettings), context.http, max_attempts=1)
        return cls(context.name or "sharepoint", config, graph,
                   max_wait=context.settings.of(SourceSettings).source_max_throttle_wait,
                   parse_limits=ParseLimits.of(context.settings))

    def __init__(self, name: str, config: SharePointConfig, graph: GraphClient, *, max_wait: float = 120.0,
                 sleep=time.sleep, now=lambda: datetime.now(timezone.utc), parse_limits: ParseLimits = DEFAULT_LIMITS):
        self.name = name
        self.source_id = self.id_for(name)
        self.config = config
        self.graph = graph
        self.parse_limits = parse_limits
        self.http = SourceHttp(graph, max_wait=max_wait, sleep=sleep)
        self._now = now
        self._drives: dict[str, Drive] = {}
        self._emails: dict[str, str | None] = {}
        self._owners: dict[str, list[str]] = {}
        self._no_email = 0

    # -- scopes -----------------------------------------------------------------------------

    def scopes(self) -> list[str]:
        self.http.new_window()
        drives: dict[str, Drive] = {}
        wanted = set(self.config.drives or [])
        for url in self.config.sites:
            parts = urlsplit(url)
            try:
                site = self.http.get_json(f"/sites/{parts.hostname}:{quote(parts.path)}")
            except NotFound:
                raise SourceUnavailable(f"site {url} not found (or not granted to the app)", transient=False) from None
            for drive in self.http.pages(f"/sites/{quote(site['id'], safe='')}/drives"):
                if wanted and drive["id"] not in wanted:
                    continue
                drives[drive["id"]] = Drive(drive["id"], site["id"], site.get("webUrl") or url,
                                            drive.get("name") or "")
        for upn in self.config.onedrive_users:
            try:
                drive = self.http.get_json(f"/users/{quote(upn)}/drive")
            except NotFound:
                log.warning("no OneDrive for this person; skipped", extra={"source": self.name, "user": upn})
                continue
            ids = drive.get("sharePointIds") or {}
            host = urlsplit(ids.get("siteUrl") or drive.get("webUrl") or "").hostname or ""
            site_id = f"{host},{ids.get('siteId', '')},{ids.get('webId', '')}"
            drives[drive["id"]] = Drive(drive["id"], site_id, ids.get("siteUrl") or "", drive.get("name") or upn)
        if wanted - set(drives):
            log.warning("configured drives not found in the sites", extra={"source": self.name,
                                                                           "drives": sorted(wanted - set(drives))})
        self._drives = drives
        return sorted(drives)

    def _drive(self, drive_id: str) -> Drive:
        if drive_id not in self._drives:
            self.scopes()
        try:
            return self._drives[drive_id]
        except KeyError:
            raise SourceUnavailable(f"drive {drive_id} is no longer part of this source") from None

    # -- content ----------------------------------------------------------------------------

    def changes(self, scope: str, cursor: str | None) -> Iterator[Page]:
        self.http.new_window()
        link = cursor or f"/drives/{quote(scope, safe='')}/root/delta"
        while True:
            page = self.http.get_json(link, headers={"Prefer": DELTA_PREFER})
            latest: dict[str, dict] = {}
            for raw in page.get("value") or []:   # the same item may come twice: the last one counts
                if raw.get("id"):
                    latest.pop(raw["id"], None)
                    latest[raw["id"]] = raw
            items = [self._item(scope, raw) for raw in latest.values()]
            # checked before it is kept as the cursor: a link off Graph's origin is never stored
            next_link = self.http.link(page.get("@odata.nextLink"))
            if next_link:
                yield Page(items=items, cursor=next_link, done=False)
                link = next_link
                continue
            yield Page(items=items, cursor=self.http.link(page.get("@odata.deltaLink")) or cursor, done=True)
            return

    def _item(self, scope: str, raw: dict) -> Item:
        parent = (raw.get("parentReference") or {}).get("id")
        doc_id = f"{scope}/{raw['id']}"
        name = raw.get("name") or ""
        if raw.get("deleted") is not None and "deleted" in raw:
            return Item(doc_id=doc_id, scope=scope, title=name, deleted=True,
                        folder="folder" in raw)
        folder = "folder" in raw or "root" in raw
        hashes = (raw.get("file") or {}).get("hashes") or {}
        version = (hashes.get("quickXorHash") or raw.get("cTag") or raw.get("eTag")
                   or f"{raw.get('lastModifiedDateTime', '')}:{raw.get('size', '')}")
        skip = None
        if not folder:
            suffix = ("." + name.rsplit(".", 1)[1].lower()) if "." in name else ""
            if "package" in raw or "file" not in raw:
                skip = "not a file (a notebook or other package)"
            elif suffix not in SUPPORTED:
                skip = f"unsupported file type {suffix or '(none)'}"
            elif (raw.get("size") or 0) > self.config.max_file_mb * 1_000_000:
                skip = f"larger than {self.config.max_file_mb:g} MB"
        return Item(doc_id=doc_id, scope=scope, version=str(version), title=name or self._drives.get(scope, Drive(
                    scope, "", "", "")).name, url=raw.get("webUrl"), parent=f"{scope}/{parent}" if parent else None,
                    folder=folder, sharing_changed=str(raw.get(SHARED_CHANGED, "")).lower() == "true", skip=skip)

    def fetch(self, item: Item) -> Document:
        drive, item_id = _split(item.doc_id)
        try:
            data = self.http.download(f"/drives/{quote(drive, safe='')}/items/{quote(item_id, safe='')}/content",
                                      max_bytes=int(self.config.max_file_mb * 1_000_000))
        except NotFound:
            raise Unfetchable("no longer there") from None
        except ValueError as exc:
            raise Unfetchable(str(exc)) from None
        try:
            _title, sections = parse_isolated(item.title, data, self.parse_limits)   # ParseFailed: Unfetchable
        except Unsupported as exc:
            raise Unfetchable(str(exc)) from None
        # The file name is the title people know it by in SharePoint (a document's own title
        # property is often a template's leftover).
        return Document(doc_id=item.doc_id, title=item.title, sections=tuple(sections), acl=Acl(),
                        content_hash=item.version, url=item.url)

    def refresh(self, items: Sequence[Item]) -> dict[str, Item | None]:
        paths = {i.doc_id: "/drives/{}/items/{}".format(*(quote(p, safe="") for p in _split(i.doc_id)))
                 for i in items}
        out: dict[str, Item | None] = {}
        for doc_id, (status, body) in self.http.batch(paths).items():
            if status == 200:
                out[doc_id] = self._item(_split(doc_id)[0], body)
            elif status == 404:
                out[doc_id] = None
            else:
                raise SourceUnavailable(f"reading an item answered {status}", transient=status >= 500)
        return out

    # -- permissions --------------------------------------------------------------------------

    def permissions(self, items: Sequence[Item]) -> dict[str, ItemAcl]:
        paths = {i.doc_id: "/drives/{}/items/{}/permissions".format(*(quote(p, safe="") for p in _split(i.doc_id)))
                 for i in items}
        out: dict[str, ItemAcl] = {}
        now = self._now()
        for doc_id, (status, body) in self.http.batch(paths).items():
            if status == 404:         # deleted since it was listed
                out[doc_id] = GONE
                continue
            if status != 200:
                # 401/403: the app may not read them: nobody sees the item until they can be read
                if status not in (401, 403):
                    raise SourceUnavailable(f"reading permissions answered {status}", transient=status >= 500)
                log.warning("permissions unreadable; the item is hidden",
                            extra={"source": self.name, "doc_id": doc_id, "status": status})
                out[doc_id] = None
                continue
            perms = list(body.get("value") or [])
            link = body.get("@odata.nextLink")
            while link:
                page = self.http.get_json(link)
                perms.extend(page.get("value") or [])
                link = page.get("@odata.nextLink")
            grants = acl_of(perms, site_id=self._drive(_split(doc_id)[0]).site_id,
                            organization_public=self.config.organization_links_public, now=now,
                            resolve_user=self._email_of, owners_of=self._owners_of)
            out[doc_id] = grants.acl()
            self._no_email += sum(1 for why in grants.ignored if why == NO_EMAIL)
        return out

    def findings(self) -> dict[str, int]:
        return {"permission entries naming a person without an email": self._no_email}

    def groups(self) -> list[SourceGroup]:
        """Every group of every site the drives belong to, with its members (SharePoint REST)."""
        self.http.new_window()
        self._owners.clear()
        self._emails.clear()
        self._no_email = 0          # a permission pass starts here
        if not self._drives:
            self.scopes()
        sites = {d.site_id: d.site_url for d in self._drives.values() if d.site_url}
        if sites and not self.graph.has_certificate:
            raise SourceUnavailable(
                "reading SharePoint site group members needs the Entra app's certificate "
                "(ENTRA_CLIENT_CERTIFICATE_PATH): SharePoint refuses app-only tokens from a client secret",
                transient=False)
        out: list[SourceGroup] = []
        for site_id, site_url in sorted(sites.items()):
            scope = sharepoint_rest.site_scope(site_url)   # SharePoint's own resource
            api = sharepoint_rest.sitegroups(site_url)
            headers = {"Accept": sharepoint_rest.ACCEPT}
            for group in list(self.http.pages(f"{api}?$select=Id,Title", headers=headers, scope=scope,
                                              next_keys=sharepoint_rest.NEXT_KEYS)):
                users = self.http.pages(
                    f"{api}/GetById({int(group['Id'])})/users?$select=Id,LoginName,Email,UserPrincipalName,PrincipalType",
                    headers=headers, scope=scope, next_keys=sharepoint_rest.NEXT_KEYS)
                members = site_group_members(users, organization_public=self.config.organization_links_public,
                                             owners_of=self._owners_of)
                out.append(SourceGroup(site_group_token(site_id, group["Id"]), tuple(members)))
        return out

    def close(self) -> None:
        pass

    def check(self) -> str:
        """``chatops doctor``: the app's Graph permissions, every site and OneDrive resolved, and
        each site's groups readable through SharePoint REST with SharePoint's own token (which
        needs the certificate and a SharePoint permission, or the site granted to the app)."""
        graph = check_graph_roles(self.graph, list(SHAREPOINT_ROLES))
        try:
            drives = self.scopes()
        except SourceUnavailable as exc:
            raise CheckFailed(str(exc), "grant the site to the app (Sites.Selected) or check its URL in sites:") \
                from None
        sites = {d.site_id: d.site_url for d in self._drives.values() if d.site_url}
        if sites and not self.graph.has_certificate:
            raise CheckFailed("SharePoint's site groups can be read only with the Entra app's certificate "
                              "(SharePoint refuses app-only tokens from a client secret)",
                              "set ENTRA_CLIENT_CERTIFICATE_PATH")
        for site_url in sorted(set(sites.values())):
            parts = urlsplit(site_url)
            scope = sharepoint_rest.site_scope(site_url)
            granted = token_roles(token_for(self.graph, scope))
            if not granted & set(SITES):
                raise CheckFailed(f"the app's SharePoint token for {parts.netloc} holds none of "
                                  f"{', '.join(SITES[:2])} (granted: {', '.join(sorted(granted)) or 'nothing'})",
                                  "add SharePoint → Application permissions → Sites.Selected (and grant the site) "
                                  "or Sites.Read.All, with admin consent")
            resp = self.http.request("GET", sharepoint_rest.sitegroups(site_url) + "?$select=Id&$top=1",
                                     headers={"Accept": sharepoint_rest.ACCEPT}, scope=scope)
            if resp.status_code != 200:
                raise CheckFailed(f"SharePoint answered {resp.status_code} to {site_url}'s site groups",
                                  "with Sites.Selected, grant this site to the app (read)")
        return (f"{len(self.config.sites)} site(s), {len(self.config.onedrive_users)} OneDrive(s), {len(drives)} "
                f"librar{'y' if len(drives) == 1 else 'ies'}; site groups readable; {graph.split(';')[0]}")

    # -- change notifications -----------------------------------------------------------------

    def watch(self, notify_url: str, client_state: str, *, now: datetime | None = None) -> dict:
        """Keep one Graph subscription per drive (``drives/{id}/root``, "updated"): create the
        missing ones, renew those that expire within ``RENEW_BEFORE``, delete this source's
        subscriptions for drives it no longer has. Graph checks ``notify_url`` (the
        ``validationToken`` handshake) before it creates one. {created, renewed, deleted, kept}."""
        now = now or self._now()
        drives = set(self.scopes())
        expires = (now + SUBSCRIPTION_LIFETIME).isoformat().replace("+00:00", "Z")
        counts = {"created": 0, "renewed": 0, "deleted": 0, "kept": 0}
        covered: set[str] = set()
        for sub in self.http.pages("/subscriptions"):
            if sub.get("notificationUrl") != notify_url:
                continue   # another source's or another application's
            drive = str(sub.get("resource", "")).strip("/").removeprefix("drives/").removesuffix("/root")
            if drive not in drives or drive in covered:
                self._call("DELETE", f"/subscriptions/{quote(sub['id'], safe='')}")
                counts["deleted"] += 1
                continue
            covered.add(drive)
            left = _parse_time(sub.get("expirationDateTime")) - now
            if left < RENEW_BEFORE:
                self._call("PATCH", f"/subscriptions/{quote(sub['id'], safe='')}", {"expirationDateTime": expires})
                counts["renewed"] += 1
            else:
                counts["kept"] += 1
        for drive in sorted(drives - covered):
            self._call("POST", "/subscriptions", {
                "changeType": "updated", "resource": f"drives/{drive}/root", "notificationUrl": notify_url,
                "lifecycleNotificationUrl": notify_url, "expirationDateTime": expires,
                "clientState": client_state})
            counts["created"] += 1
        return counts

    def _call(self, method: str, path: str, body: dict | None = None) -> None:
        resp = self.http.request(method, path, json_body=body)
        if resp.status_code >= 300 and not (method == "DELETE" and resp.status_code == 404):
            code, message = graph_error(resp)
            raise SourceUnavailable(f"{method} {path.split('?')[0]} answered {resp.status_code} {code or ''}: "
                                    f"{message or ''}".strip(), transient=resp.status_code >= 500)

    # -- people behind ids ----------------------------------------------------------------------

    def _email_of(self, user_id: str) -> str | None:
        if user_id not in self._emails:
            try:
                user = self.http.get_json(f"/users/{quote(user_id, safe='')}?$select=mail,userPrincipalName")
                self._emails[user_id] = (user.get("mail") or user.get("userPrincipalName") or "").lower() or None
            except NotFound:
                self._emails[user_id] = None
        return self._emails[user_id]

    def _owners_of(self, group_id: str) -> list[str]:
        if group_id not in self._owners:
            try:
                owners = self.http.pages(f"/groups/{quote(group_id, safe='')}/owners?$select=mail,userPrincipalName")
                self._owners[group_id] = [(o.get("mail") or o.get("userPrincipalName") or "").lower()
                                          for o in owners if o.get("mail") or o.get("userPrincipalName")]
            except NotFound:
                self._owners[group_id] = []
        return self._owners[group_id]
