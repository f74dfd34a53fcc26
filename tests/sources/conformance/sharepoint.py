"""The SharePoint kind: the loopback tenant of ``tests/sources/conftest.py`` (Entra, Graph and
SharePoint), one site with two libraries: Documents (the team's, with a restricted folder) and
Archive (the ``other`` scope).

Items are tracked by id and delta reports sharing changes, so every change shows at the next
changes sync; a rename or a move rewrites the title and link in place.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, unquote

from standins._loopback import Reply
from standins.fake_sharepoint import user_perm
from tests.sources.conformance.harness import INSIDER, READER, Adapter, Ref, Wiretap

NAME = "eng-docs"
# A person granted by a permission that names no email (nor an id to look one up by).
NO_EMAIL_PERM = {"id": "Z3Vlc3Q=", "roles": ["read"], "grantedToV2": {"user": {"displayName": "Guest"}}}


class SharePointAdapter(Adapter):
    kind = "sharepoint"
    passes = {"reveal": ("permissions",)}
    renames_in_place = moves_in_place = True

    def __init__(self, request, tmp_path):
        super().__init__()
        self.tenant = request.getfixturevalue("tenant")
        self.sp = self.tenant.sp
        self.sleeps = self.tenant.sleeps
        self.tap = Wiretap(self.tenant.entra)

    def build(self) -> None:
        sp = self.sp
        self.site = sp.add_site("sites/engineering")
        self.drives = {"team": sp.add_drive(self.site, "Documents", [user_perm(READER, "write")]),
                       "other": sp.add_drive(self.site, "Archive", [user_perm(READER)])}
        self.restricted = sp.add_folder(self.drives["team"], "restricted", perms=[user_perm(INSIDER)])

    def open(self, max_wait: float):
        return self.tenant.source(name=NAME, max_wait=max_wait)

    def _ref(self, drive, item) -> Ref:
        path = f"restricted/{item.name}" if item.parent == self.restricted.id else item.name
        return Ref(f"{drive.id}/{item.id}", item.name, f"{self.sp.web_url(self.site)}/{quote(drive.name)}/{path}",
                   handle=(drive, item))

    def create(self, name: str, text: str, where: str = "team") -> Ref:
        drive = self.drives[where]
        return self._ref(drive, self.sp.add_file(drive, f"{name}.md", text))

    def edit(self, ref: Ref, text: str) -> None:
        drive, item = ref.handle
        self.sp.edit(drive, item.id, text)

    def rename(self, ref: Ref, name: str) -> Ref:
        drive, item = ref.handle
        self.sp.rename(drive, item.id, f"{name}.md")
        return self._ref(drive, item)

    def move(self, ref: Ref) -> Ref:
        drive, item = ref.handle
        self.sp.rename(drive, item.id, item.name, parent=self.restricted.id)
        return self._ref(drive, item)

    def delete(self, ref: Ref) -> None:
        drive, item = ref.handle
        self.sp.delete(drive, item.id)

    def share_only_with_insider(self, ref: Ref) -> None:
        drive, item = ref.handle
        self.sp.set_perms(drive, item.id, [user_perm(INSIDER)])

    def hide_permissions(self, ref: Ref) -> None:
        ref.handle[1].unreadable = True          # Graph answers 403 for its permissions

    def reveal_permissions(self, ref: Ref) -> None:
        ref.handle[1].unreadable = False

    def provoke_finding(self, ref: Ref) -> str:
        drive, item = ref.handle
        self.sp.set_perms(drive, item.id, [user_perm(READER), NO_EMAIL_PERM])
        return "permission entries naming a person without an email"

    # -- faults and counts ----------------------------------------------------------------------
    def small_pages(self) -> None:
        self.sp.page_size = 2

    def throttle(self, count: int, retry_after: int) -> None:
        self.tenant.entra.throttle_next(count, retry_after=retry_after)

    def scope(self, where: str) -> str:
        return self.drives[where].id

    def _delta(self, where: str, request) -> bool:
        return unquote(request.path) == f"/graph/v1.0/drives/{self.drives[where].id}/root/delta"

    def break_listing(self, where: str) -> None:
        self.tap.answer("break", lambda r: self._delta(where, r) and _offset(r) > 0,
                        Reply(503, {"error": {"code": "serviceNotAvailable", "message": "down"}}))

    def heal(self) -> None:
        self.tap.clear("break")

    def listings_started(self, where: str) -> int:
        return self.tap.count(lambda r: self._delta(where, r) and "token" not in r.query)

    def continued_listings(self) -> int:
        return self.tap.count(lambda r: r.path.endswith("/root/delta") and _offset(r) > 0)

    def requests(self) -> int:
        return self.tap.count()

    def downloads(self) -> int:
        return self.sp.downloads


def _offset(request) -> int:
    """How far into a delta round a request's token is (0: its first page)."""
    token = request.query.get("token")
    if not token:
        return 0
    return int(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).get("offset", 0))
