"""The Confluence kind: the loopback Confluence (``standins/fake_confluence.py``) over TLS, opened
through the registry. Space ENG is the team's (READER and INSIDER may read it) with a page
restricted to INSIDER; space OPS (READER) is the ``other`` scope.

A rename is a new version (read again); a move leaves version and modified time alone, and a
restriction change too, so both show at the permission pass, which reads every page's ancestors
and restrictions.
"""

from __future__ import annotations

from urllib.parse import quote_plus

import requests

from connectors.http.pacing import Pacer
from connectors.sources.registry import SourceContext, open_sync_source
from standins._loopback import Reply
from standins.fake_confluence import FakeConfluence
from tests.sources.conformance.harness import Adapter, Ref, Wiretap

TOKEN_ENV = "CONFORMANCE_CONFLUENCE_TOKEN"
ACCOUNTS = {"acc-ana": "ana@contoso.com", "acc-bob": "bob@contoso.com"}


class ConfluenceAdapter(Adapter):
    kind = "confluence"
    passes = {"move": ("changes", "permissions"), "permissions only": ("permissions",),
              "reveal": ("permissions",)}
    moves_in_place = True

    def __init__(self, request, tmp_path):
        super().__init__()
        self.cf = FakeConfluence()
        self.cf.tls = request.getfixturevalue("loopback_tls")
        self.cf.start()
        self.tap = Wiretap(self.cf)
        self.spaces: dict[str, str] = {}

    def build(self) -> None:
        cf = self.cf
        for account, email in ACCOUNTS.items():
            cf.add_user(account, email)
        self.spaces = {"team": cf.add_space("ENG", "Engineering", read=[("user", "acc-ana"), ("user", "acc-bob")]).id,
                       "other": cf.add_space("OPS", "Operations", read=[("user", "acc-ana")]).id}
        self.restricted = cf.add_page("ENG", "Restricted", "<p>Only for the inner circle.</p>",
                                      read_users=["acc-bob"])

    def open(self, max_wait: float):
        spec = {"kind": "confluence", "url": self.cf.base, "email": self.cf.email, "token_env": TOKEN_ENV,
                "spaces": ["ENG", "OPS"]}
        source = open_sync_source("wiki", spec, SourceContext(http=requests.Session(),
                                                              environ={TOKEN_ENV: self.cf.token}))
        source.http.pacer = Pacer("Confluence", max_wait=max_wait, sleep=self.sleeps.append)
        return source

    def _ref(self, page_id: str) -> Ref:
        page = self.cf.contents[page_id]
        key = self.cf.spaces[page.space_id].key
        return Ref(f"page:{page_id}", page.title, f"{self.cf.base}/spaces/{key}/pages/{page_id}/{quote_plus(page.title)}",
                   handle=page_id)

    def create(self, name: str, text: str, where: str = "team") -> Ref:
        space = "ENG" if where == "team" else "OPS"
        return self._ref(self.cf.add_page(space, name, f"<p>{text}</p>"))

    def edit(self, ref: Ref, text: str) -> None:
        self.cf.edit(ref.handle, body_html=f"<p>{text}</p>")

    def rename(self, ref: Ref, name: str) -> Ref:
        self.cf.edit(ref.handle, title=name)
        return self._ref(ref.handle)

    def move(self, ref: Ref) -> Ref:
        self.cf.move(ref.handle, self.restricted)
        return self._ref(ref.handle)

    def delete(self, ref: Ref) -> None:
        self.cf.trash(ref.handle)

    def share_only_with_insider(self, ref: Ref) -> None:
        self.cf.restrict(ref.handle, users=["acc-bob"])

    def hide_permissions(self, ref: Ref) -> None:
        path = f"/wiki/rest/api/content/{ref.handle}/restriction/byOperation/read"
        self.tap.answer(f"hide {ref.handle}", lambda r: r.path == path,
                        Reply(404, {"statusCode": 404, "message": "No content found", "reason": "Not Found"}))

    def reveal_permissions(self, ref: Ref) -> None:
        self.tap.clear(f"hide {ref.handle}")

    def provoke_finding(self, ref: Ref) -> str:
        self.cf.add_user("acc-ghost", "ghost@contoso.com", hidden=True)
        self.cf.restrict(ref.handle, users=["acc-ana", "acc-ghost"])
        return "Atlassian accounts without a visible email"

    # -- faults and counts ----------------------------------------------------------------------
    def small_pages(self) -> None:
        self.cf.page_size_max = 2

    def throttle(self, count: int, retry_after: int) -> None:
        self.cf.throttle(count, retry_after=retry_after)

    def scope(self, where: str) -> str:
        return self.spaces[where]

    def _listing(self, where: str, request) -> bool:
        return request.path == f"/wiki/api/v2/spaces/{self.spaces[where]}/pages" and "status" not in request.query

    def break_listing(self, where: str) -> None:
        self.tap.answer("break", lambda r: self._listing(where, r) and "cursor" in r.query,
                        Reply(500, {"statusCode": 500, "message": "Internal server error"}))

    def heal(self) -> None:
        self.tap.clear("break")

    def listings_started(self, where: str) -> int:
        return self.tap.count(lambda r: self._listing(where, r) and "cursor" not in r.query)

    def continued_listings(self) -> int:
        return self.tap.count(lambda r: "cursor" in r.query)

    def requests(self) -> int:
        return self.tap.count()

    def downloads(self) -> int:
        return self.cf.downloads + self.tap.count(lambda r: r.query.get("body-format") == "storage")

    def close(self) -> None:
        self.cf.stop()
