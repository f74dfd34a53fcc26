"""The Jira kind: the loopback Jira (``standins/fake_jira.py``) over TLS, opened through the
registry. Project OPS is the team's: READER and INSIDER may browse it, and its issues are created
at the security level "Team" (READER); project SEC (INSIDER) is the restricted part, HR (READER)
the ``other`` scope.

Every edit, rename (the summary) and move (to another project) moves ``updated``, so each is read
again at the next changes sync; search cannot list deletions, which show at the permission pass
(Jira answers 404 for the issue); who is at a security level changes no issue, so that shows at
the permission pass too.
"""

from __future__ import annotations

import requests

from connectors.http.pacing import Pacer
from connectors.sources.registry import SourceContext, open_sync_source
from standins._loopback import Reply
from standins.fake_jira import FakeJira
from tests.sources.conformance.harness import Adapter, Ref, Wiretap

TOKEN_ENV = "CONFORMANCE_JIRA_TOKEN"
ACCOUNTS = {"acc-ana": "ana@contoso.com", "acc-bob": "bob@contoso.com"}
PROJECTS = {"team": "OPS", "restricted": "SEC", "other": "HR"}


class JiraAdapter(Adapter):
    kind = "jira"
    passes = {"delete": ("changes", "permissions"), "permissions only": ("permissions",),
              "reveal": ("permissions",)}

    def __init__(self, request, tmp_path):
        super().__init__()
        self.jira = FakeJira(projects=())
        self.jira.tls = request.getfixturevalue("loopback_tls")
        self.jira.start()
        self.tap = Wiretap(self.jira)
        self.projects: dict[str, str] = {}

    def build(self) -> None:
        j = self.jira
        for account, email in ACCOUNTS.items():
            j.add_user(account, email)
        self.projects = {
            "team": j.add_project("OPS", "Operations", browse=[("user", "acc-ana"), ("user", "acc-bob")],
                                  security_levels={"Team": [("user", "acc-ana")], "Vault": [("user", "acc-ana")]}),
            "restricted": j.add_project("SEC", "Security", browse=[("user", "acc-bob")]),
            "other": j.add_project("HR", "People", browse=[("user", "acc-ana")]),
        }

    def open(self, max_wait: float):
        spec = {"kind": "jira", "url": self.jira.origin, "email": self.jira.email, "token_env": TOKEN_ENV,
                "projects": list(PROJECTS.values())}
        source = open_sync_source("tickets", spec, SourceContext(http=requests.Session(),
                                                                 environ={TOKEN_ENV: self.jira.token}))
        source.http.pacer = Pacer("Jira", max_wait=max_wait, sleep=self.sleeps.append)
        return source

    def _ref(self, key: str) -> Ref:
        issue = self.jira.by_key[key]
        return Ref(f"issue:{issue.id}", f"{key}: {issue.summary}", f"{self.jira.origin}/browse/{key}", handle=key)

    def create(self, name: str, text: str, where: str = "team") -> Ref:
        team = where == "team"
        return self._ref(self.jira.add_issue(PROJECTS[where], name, text, security="Team" if team else None))

    def _later(self) -> None:
        self.jira.advance(1)      # a change comes after what was synced (JQL dates are minutes)

    def edit(self, ref: Ref, text: str) -> None:
        self._later()
        self.jira.edit(ref.handle, description_text=text)

    def rename(self, ref: Ref, name: str) -> Ref:
        self._later()
        self.jira.edit(ref.handle, summary=name)
        return self._ref(ref.handle)

    def move(self, ref: Ref) -> Ref:
        self._later()
        return self._ref(self.jira.move(ref.handle, PROJECTS["restricted"]))

    def delete(self, ref: Ref) -> None:
        self.jira.delete(ref.handle)

    def share_only_with_insider(self, ref: Ref) -> None:
        self.jira.set_level_members("OPS", "Team", [("user", "acc-bob")])

    def _vault(self) -> str:
        return next(lv.id for lv in self.jira.project_by_key["OPS"].levels if lv.name == "Vault")

    def hide_permissions(self, ref: Ref) -> None:
        """At a level whose members Jira no longer answers for (404): nobody can be told."""
        self.jira.set_security(ref.handle, "Vault")
        vault = self._vault()
        self.tap.answer("hide", lambda r: r.path == "/rest/api/3/issuesecurityschemes/level/member"
                        and r.query.get("levelId") == vault,
                        Reply(404, {"errorMessages": ["The security level does not exist."], "errors": {}}))

    def reveal_permissions(self, ref: Ref) -> None:
        self.tap.clear("hide")

    def provoke_finding(self, ref: Ref) -> str:
        self.jira.add_user("acc-ghost", "ghost@contoso.com", hidden=True)
        self.jira.set_level_members("OPS", "Team", [("user", "acc-ana"), ("user", "acc-ghost")])
        return "Atlassian accounts without a visible email"

    # -- faults and counts ----------------------------------------------------------------------
    def small_pages(self) -> None:
        self.jira.search_page_max = 2

    def throttle(self, count: int, retry_after: int) -> None:
        self.jira.throttle(count, retry_after=retry_after)

    def scope(self, where: str) -> str:
        return self.projects[where]

    def _listing(self, where: str, request) -> bool:
        return (request.path == "/rest/api/3/search/jql"
                and request.query.get("jql") == f"project = {PROJECTS[where]} ORDER BY key ASC")

    def break_listing(self, where: str) -> None:
        self.tap.answer("break", lambda r: self._listing(where, r) and "nextPageToken" in r.query,
                        Reply(500, {"errorMessages": ["Internal server error"], "errors": {}}))

    def heal(self) -> None:
        self.tap.clear("break")

    def listings_started(self, where: str) -> int:
        return self.tap.count(lambda r: self._listing(where, r) and "nextPageToken" not in r.query)

    def continued_listings(self) -> int:
        return self.tap.count(lambda r: r.path == "/rest/api/3/search/jql" and "nextPageToken" in r.query)

    def requests(self) -> int:
        return self.tap.count()

    def downloads(self) -> int:
        return self.tap.count(lambda r: r.path.startswith("/rest/api/3/issue/")
                              and "description" in r.query.get("fields", ""))

    def close(self) -> None:
        self.jira.stop()
