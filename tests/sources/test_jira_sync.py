"""Jira Cloud issues synced with their permissions: the loopback Jira (standins/fake_jira.py)
over TLS, the real requests client, a real embedded index and a SQLite store. The cases the issue
names: an issue with a security level in a visible project, a person removed from a project role;
and browse by group, comments beyond the embedded ones, edits, deletions, unmappable accounts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from chatops.access import Audience, Principal
from chatops.errors import ConfigError
from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.index.base import Query
from connectors.index.edge_index import EdgeIndex
from connectors.sources.atlassian.source import NotOnSite
from connectors.sources.registry import SourceContext, open_sync_source
from tests.ingest_helpers import DIM, HashEmbedder
from standins.fake_jira import FakeJira
from usecases.sync import Sync

TOKEN_ENV = "JIRA_TEST_TOKEN"


@dataclass
class Site:
    jira: FakeJira
    session: requests.Session
    states: SourceStates
    index: EdgeIndex

    def source(self, **config):
        spec = {"kind": "jira", "url": self.jira.origin, "email": self.jira.email, "token_env": TOKEN_ENV,
                "projects": ["OPS", "HR"], **config}
        return open_sync_source("tickets", spec, SourceContext(http=self.session, environ={TOKEN_ENV: self.jira.token}))

    def sync(self, mode: str = "changes", source=None, *, error: bool = False):
        report = Sync(source or self.source(), self.states, self.index, HashEmbedder(), kind="jira").run(mode)
        if not error:
            assert report.error is None, report.summary()
        return report

    def missing(self, *keys: str) -> str:
        """The one line a configured project Jira does not list stops the source with."""
        many = len(keys) > 1
        return (f"Jira source 'tickets': no project{'s' if many else ''} {', '.join(keys)} on {self.jira.origin} "
                f"(or {self.jira.email} cannot browse {'them' if many else 'it'}): check projects: in "
                f"CHATOPS_CONFIG and the account's Browse projects permission; the source's other projects "
                f"wait until then")

    def person(self, email: str) -> Principal:
        return Principal.of(email, self.states.groups_of(email, ()))

    def hits(self, email: str):
        return self.index.search(Query(dense=[0.5] * DIM, sparse=None), Audience.of(self.person(email)),
                                 limit=1000, candidates=1000, mode="dense")

    def visible_to(self, email: str) -> set[str]:
        return {h.chunk.title.split(":")[0] for h in self.hits(email)}


@pytest.fixture
def site(tmp_path, loopback_tls):
    jira = FakeJira(projects=())
    jira.tls = loopback_tls
    with jira:
        store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
        index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
        try:
            yield Site(jira, requests.Session(), SourceStates(store), index)
        finally:
            index.close()
            store.close()


def build(site: Site) -> dict:
    j = site.jira
    for acc, email in (("acc-ana", "ana@contoso.com"), ("acc-ben", "ben@contoso.com"),
                       ("acc-hana", "hana@contoso.com"), ("acc-olga", "olga@contoso.com")):
        j.add_user(acc, email)
    j.add_user("acc-ghost", "ghost@contoso.com", hidden=True)
    eng = j.add_group("engineering")
    j.set_members(eng, ["acc-ana", "acc-ben", "acc-ghost"])
    j.add_project("OPS", "Operations", lead="acc-olga", browse=[("group", eng), ("projectLead",)],
                  security_levels={"Incident responders": [("user", "acc-ana"), ("reporter",)]})
    responders = j.add_role("OPS", "Responders", users=["acc-ben"])
    j.add_project("HR", "People", browse=[("role", responders), ("user", "acc-hana")])
    j.add_role("HR", "Responders", users=["acc-ben"])
    keys = {
        "outage": j.add_issue("OPS", "Scanner outage", "The scanners stopped.\n- gateway certificate expired",
                              comments=[("acc-ana", f"note {n}") for n in range(8)], reporter="acc-ana",
                              links=()),
        "breach": j.add_issue("OPS", "Suspected breach", "Logs show an unknown key.", reporter="acc-hana",
                              security="Incident responders"),
        "rota": j.add_issue("HR", "On-call rota", "Rota for December."),
    }
    j.add_issue("OPS", "Follow-up", "Automate renewals.", links=[("blocks", keys["outage"])])
    return {"eng": eng, "responders": responders, **keys}


def test_issues_are_synced_with_browse_permissions_and_security_levels(site):
    keys = build(site)
    report = site.sync()
    assert report.done and report.added == 4
    # browse by group (and the project lead); the security level narrows to Ana and the reporter
    assert site.visible_to("ana@contoso.com") == {keys["outage"], keys["breach"], "OPS-3"}
    assert site.visible_to("ben@contoso.com") == {keys["outage"], "OPS-3", keys["rota"]}
    assert site.visible_to("olga@contoso.com") == {keys["outage"], "OPS-3"}     # the lead
    # Hana reported the breach but may not browse OPS: browse ∩ level
    assert site.visible_to("hana@contoso.com") == {keys["rota"]}
    # the hidden account grants nothing and is counted
    assert '"Atlassian accounts without a visible email": 1' in site.states.get("tickets").findings


def test_an_issue_is_its_description_links_and_every_comment(site):
    keys = build(site)
    site.sync()
    text = "\n".join(h.chunk.text for h in site.hits("ana@contoso.com") if h.chunk.title.startswith(keys["outage"]))
    assert "gateway certificate expired" in text
    assert all(f"note {n}" in text for n in range(8))      # five embedded in the issue, three paged
    urls = {h.chunk.url for h in site.hits("ana@contoso.com") if h.chunk.title.startswith(keys["outage"])}
    assert urls == {f"{site.jira.origin}/browse/{keys['outage']}"}
    follow = [h.chunk.text for h in site.hits("ana@contoso.com") if h.chunk.title.startswith("OPS-3")]
    assert any(f"blocks {keys['outage']}" in t for t in follow)


def test_a_person_removed_from_a_project_role_loses_its_issues_at_the_permission_pass(site):
    keys = build(site)
    site.sync()
    assert keys["rota"] in site.visible_to("ben@contoso.com")
    site.jira.set_role_actors("HR", keys["responders"], users=[])      # no issue's updated changes
    site.sync("changes")
    site.sync("permissions")
    assert keys["rota"] not in site.visible_to("ben@contoso.com")
    assert keys["rota"] in site.visible_to("hana@contoso.com")


def test_a_security_level_set_later_reaches_the_index_at_the_next_changes_sync(site):
    keys = build(site)
    site.sync()
    site.jira.advance(2)
    site.jira.set_security(keys["outage"], "Incident responders")      # Jira records it: updated moves
    site.sync("changes")
    assert keys["outage"] not in site.visible_to("ben@contoso.com")
    assert keys["outage"] in site.visible_to("ana@contoso.com")


def test_edits_arrive_incrementally_and_deletions_at_the_permission_pass(site):
    keys = build(site)
    site.sync()
    site.jira.advance(3)
    site.jira.edit(keys["rota"], summary="On-call rota (January)")
    report = site.sync("changes")
    assert report.updated == 1 and report.added == 0
    assert site.sync("changes").updated == 0          # the overlap lists it again; its version says known
    site.jira.delete(keys["rota"])
    site.sync("changes")                              # Jira's search cannot list deletions
    assert keys["rota"] in site.visible_to("hana@contoso.com")
    report = site.sync("permissions")                 # bulkfetch answers 404 for it: removed, not hidden
    assert report.deleted == 1
    assert keys["rota"] not in site.visible_to("hana@contoso.com")
    assert site.states.counts("tickets").get("unreadable", 0) == 0


def test_anyone_grants_nothing_unless_the_source_says_so(site):
    j = site.jira
    j.add_user("acc-ana", "ana@contoso.com")
    j.add_project("PUB", "Public", browse=[("anyone",)])
    j.add_issue("PUB", "Canteen menu", "Soup on Mondays.")
    site.sync(source=site.source(projects=["PUB"]))
    assert site.visible_to("ana@contoso.com") == set()
    assert site.index.search(Query(dense=[0.5] * DIM, sparse=None), Audience.public("t"), limit=10,
                             candidates=10, mode="dense") == []
    site.sync("permissions", source=site.source(projects=["PUB"], anyone_public=True))
    assert site.visible_to("ana@contoso.com") == {"PUB-1"}


def test_a_comment_limited_to_a_role_or_group_is_never_indexed_with_the_issue(site):
    keys = build(site)
    site.jira.comment(keys["outage"], "Internal: the vendor's root password leaked.", "acc-ana",
                      visible_to=("group", keys["eng"]))
    site.jira.comment(keys["outage"], "Roles only: legal is involved.", "acc-ana", visible_to=("role", "Responders"))
    site.sync()
    text = "\n".join(h.chunk.text for h in site.hits("ana@contoso.com"))
    assert "root password" not in text and "legal is involved" not in text
    assert "note 7" in text                              # the issue's other comments are there
    assert '"comments limited to a role or group, not indexed": 2' in site.states.get("tickets").findings


def test_a_project_key_that_does_not_exist_stops_the_source_with_one_line_naming_it(site):
    build(site)
    report = site.sync(source=site.source(projects=["OPS", "NOPE"]), error=True)
    assert report.error == site.missing("NOPE") and not report.done
    assert report.added == 0 and site.visible_to("ana@contoso.com") == set()   # OPS waits too
    assert site.states.get("tickets").last_error == site.missing("NOPE")
    with pytest.raises(NotOnSite) as raised:
        site.source(projects=["OPSX", "HR", "NOPE"]).scopes()
    assert str(raised.value) == site.missing("NOPE", "OPSX") and raised.value.keys == ("NOPE", "OPSX")
    assert isinstance(raised.value, ConfigError) and not raised.value.transient
    assert site.jira.requests_by_path["GET /rest/api/3/project/{project}"] == 0   # no 404 to stumble on
    report = site.sync(source=site.source(projects=["OPS"]))                    # the key taken out: syncs
    assert report.done and report.added == 3 and site.states.get("tickets").last_error is None


def test_a_project_the_account_can_no_longer_browse_prunes_nothing_its_issues_leave_one_by_one(site):
    j = site.jira
    j.add_user("acc-ana", "ana@contoso.com")
    j.add_user("acc-hana", "hana@contoso.com")
    j.add_project("OPS", browse=[("user", "acc-ana"), ("user", j.account_id)])
    j.add_project("HR", browse=[("user", "acc-hana"), ("user", j.account_id)])
    ops, hr = j.add_issue("OPS", "Outage", "Down."), j.add_issue("HR", "Rota", "December.")
    j.enforce_permissions = True                       # the account sees what it may browse, as in Jira
    assert site.sync().added == 2
    assert site.visible_to("hana@contoso.com") == {hr}
    j.set_browse("HR", [("user", "acc-hana")])         # the service account taken out of HR's scheme
    j.advance(2)
    late = j.add_issue("OPS", "Follow-up", "Renew certificates.")
    report = site.sync("changes", error=True)
    assert report.error == site.missing("HR")
    assert report.deleted == 0 and site.visible_to("hana@contoso.com") == {hr}  # a listing prunes nothing
    assert late not in site.visible_to("ana@contoso.com")                     # the source's other projects wait
    # The permission pass goes on: Jira answers 404 for each of HR's issues (it cannot say who
    # may read them any more), so they leave; OPS's stay as they were.
    report = site.sync("permissions")
    assert report.deleted == 1 and site.visible_to("hana@contoso.com") == set()
    assert site.visible_to("ana@contoso.com") == {ops}
    j.set_browse("HR", [("user", "acc-hana"), ("user", j.account_id)])     # the account let back in
    site.sync("full")                                                          # back at the latest here
    assert site.visible_to("hana@contoso.com") == {hr} and site.visible_to("ana@contoso.com") == {ops, late}
    report = site.sync("changes", source=site.source(projects=["OPS"]))      # or HR taken out of the config
    assert report.deleted == 1 and site.visible_to("hana@contoso.com") == set()


def test_a_content_error_stays_in_the_status_through_a_complete_permission_pass(site):
    """The configured project that is not there stops each changes sync; the permission pass in
    between gets through, and must not make ``sources status`` say all is well meanwhile."""
    build(site)
    broken = site.source(projects=["OPS", "NOPE"])
    report = site.sync(source=broken, error=True)
    assert report.error == site.missing("NOPE") and "resumes from here" not in report.summary()
    assert site.sync("permissions", source=broken).done
    assert site.states.get("tickets").last_error == site.missing("NOPE")
    fixed = site.sync(source=site.source(projects=["OPS"]))
    assert fixed.done and site.states.get("tickets").last_error is None


def test_a_deleted_issue_leaves_at_the_permission_pass_though_bulkfetch_names_it_nowhere(site):
    """Jira's bulk fetch leaves a deleted issue out of both ``issues`` and ``issueErrors``: it is
    gone (a 404 from ``/issue/{id}`` confirms it), not an issue whose permissions are unreadable."""
    keys = build(site)
    site.sync()
    site.jira.delete(keys["rota"])
    report = site.sync("permissions")
    assert report.deleted == 1 and report.unreadable == 0
    assert keys["rota"] not in site.visible_to("hana@contoso.com")
    assert site.states.counts("tickets").get("unreadable", 0) == 0       # what `sources status` shows
    assert site.jira.requests_by_path["GET /rest/api/3/issue/{issue}"] >= 1   # confirmed, not assumed


def test_an_issue_jira_could_not_return_in_bulk_is_asked_for_again_not_hidden(site):
    keys = build(site)
    site.sync()
    site.jira.fail_in_bulk(keys["outage"])                # a retriable IssueError: {"id", "errorMessage"}
    report = site.sync("permissions")
    assert report.deleted == 0 and report.unreadable == 0
    assert keys["outage"] in site.visible_to("ana@contoso.com")
    assert site.states.counts("tickets").get("unreadable", 0) == 0
