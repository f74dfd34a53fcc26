"""A loopback Atlassian admin API (``https://api.atlassian.com``): the organization's managed
accounts, ``GET /admin/v1/orgs/{orgId}/users``, with an organization API key (Bearer), cursor
paging through ``links.next`` (an absolute URL on api.atlassian.com) and emails whatever the
accounts' profile visibility says. Clients reach it through a rerouting adapter."""

from __future__ import annotations

import re

from standins._loopback import LoopbackServer, Reply, Request

PUBLIC = "https://api.atlassian.com"
_USERS = re.compile(r"/admin/v1/orgs/(?P<org>[^/]+)/users")


class FakeAtlassianAdmin(LoopbackServer):
    def __init__(self, org_id: str = "org-1", key: str = "org-api-key", *, page_size: int = 2):
        super().__init__()
        self.org_id, self.key, self.page_size = org_id, key, page_size
        self.accounts: list[dict] = []
        self.calls = 0

    def add(self, account_id: str, email: str, name: str = "") -> None:
        self.accounts.append({"account_id": account_id, "account_type": "atlassian", "account_status": "active",
                              "name": name or email.split("@")[0], "picture": "", "email": email,
                              "access_billable": True, "product_access": [],
                              "links": {"self": f"{PUBLIC}/users/{account_id}/manage/profile"}})

    def handle(self, request: Request) -> Reply:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"code": 401, "message": "Unauthorized; scope does not match"})
        m = _USERS.fullmatch(request.path)
        if request.method != "GET" or m is None:
            return Reply(404, {"code": 404, "message": "Not Found"})
        if m["org"] != self.org_id:
            return Reply(404, {"errors": [{"status": "404", "code": "NOT_FOUND", "title": "Not Found"}]})
        start = int(request.query.get("cursor") or 0)
        page = self.accounts[start:start + self.page_size]
        links = {"self": f"{PUBLIC}{request.path}"}
        if start + self.page_size < len(self.accounts):
            links["next"] = f"{PUBLIC}{request.path}?cursor={start + self.page_size}"
        return Reply(200, {"data": page, "links": links, "meta": {"total": len(self.accounts)}})
