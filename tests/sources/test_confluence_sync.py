"""A Confluence Cloud space synced with its permissions: the loopback Confluence
(standins/fake_confluence.py) over TLS, the real requests client, a real embedded index and
a SQLite store. The cases the issue names: a page restricted through a grandparent, a restriction
removed, an unrestricted page in a restricted space, a renamed group, an unmappable account, a
trashed page."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import requests

from chatops.access import Audience, Principal
from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.index.base import Query
from connectors.index.edge_index import EdgeIndex
from connectors.atlassian.accounts import group_token
from connectors.sources.registry import SourceContext, open_sync_source
from tests.ingest_helpers import DIM, HashEmbedder
from standins.fake_confluence import FakeConfluence
from usecases.sync import Sync

TOKEN_ENV = "WIKI_TOKEN"


@dataclass
class Site:
    cf: FakeConfluence
    session: requests.Session
    states: SourceStates
    index: EdgeIndex
    ids: dict = field(default_factory=dict)

    def source(self, **config):
        spec = {"kind": "confluence", "url": self.cf.base, "email": self.cf.email, "token_env": TOKEN_ENV,
                "spaces": ["ENG"], **config}
        return open_sync_source("wiki", spec, SourceContext(http=self.session, environ={TOKEN_ENV: self.cf.token}))

    def sync(self, mode: str = "changes", source=None):
        report = Sync(source or self.source(), self.states, self.index, HashEmbedder(), kind="confluence").run(mode)
        assert report.error is None, report.summary()
        return report

    def person(self, email: str) -> Principal:
        return Principal.of(email, self.states.groups_of(email, ()))

    def visible_to(self, email: str) -> set[str]:
        hits = self.index.search(Query(dense=[0.5] * DIM, sparse=None), Audience.of(self.person(email)),
                                 limit=1000, candidates=1000, mode="dense")
        return {h.chunk.title for h in hits}


@pytest.fixture
def site(tmp_path, loopback_tls):
    cf = FakeConfluence()
    cf.tls = loopback_tls
    session = requests.Session()
    with cf:
        store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
        index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
        try:
            yield Site(cf, session, SourceStates(store), index)
        finally:
            index.close()
            store.close()


def build(site: Site) -> dict:
    cf = site.cf
    for acc, email in (("acc-ana", "ana@contoso.com"), ("acc-ben", "ben@contoso.com"),
                       ("acc-hana", "hana@contoso.com"), ("acc-ivan", "ivan@contoso.com")):
        cf.add_user(acc, email)
    cf.add_user("acc-ghost", "ghost@contoso.com", hidden=True)
    staff, hr = cf.add_group("staff"), cf.add_group("hr")
    cf.set_members(staff, ["acc-ana", "acc-ben", "acc-hana", "acc-ghost"])
    cf.set_members(hr, ["acc-hana", "acc-ivan"])
    cf.add_space("ENG", "Engineering", read=[("group", staff)])
    cf.add_space("SEC", "Security", read=[("user", "acc-ana")])
    ids = dict(staff=staff, hr=hr)
    ids["runbook"] = cf.add_page("ENG", "Runbook", "<h2>Deploys</h2><p>Deploy with make deploy.</p>")
    ids["people"] = cf.add_page("ENG", "People", "<p>People matters.</p>", read_groups=[hr])
    ids["reviews"] = cf.add_page("ENG", "Reviews", "<p>Reviews.</p>", parent=ids["people"])
    ids["salaries"] = cf.add_page("ENG", "Salaries", "<p>Salary bands.</p>", parent=ids["reviews"])
    ids["ghost"] = cf.add_page("ENG", "Ghost notes", "<p>Only the hidden account.</p>", read_users=["acc-ghost"])
    ids["news"] = cf.add_blogpost("ENG", "Launch news", "<p>We launched.</p>")
    ids["sec"] = cf.add_page("SEC", "Keys", "<p>Key rotation.</p>")
    site.ids = ids
    return ids


def test_a_space_is_synced_with_the_read_rule(site):
    build(site)
    report = site.sync()
    assert report.done and report.added >= 6
    everyone_in_eng = {"Runbook", "Launch news"}      # the home page ("Engineering") is empty: no text
    assert site.visible_to("ana@contoso.com") == everyone_in_eng
    # restricted through a grandparent (People → Reviews → Salaries): HR ∩ the space's staff
    assert site.visible_to("hana@contoso.com") == everyone_in_eng | {"People", "Reviews", "Salaries"}
    # Ivan is in HR but may not read the space at all
    assert site.visible_to("ivan@contoso.com") == set()
    # the page restricted to an account whose email is hidden: nobody, and counted
    assert all("Ghost notes" not in site.visible_to(e) for e in ("ana@contoso.com", "hana@contoso.com"))
    status = site.states.get("wiki")
    assert '"Atlassian accounts without a visible email": 1' in status.findings
    # another space was not asked for
    assert "Keys" not in site.visible_to("ana@contoso.com")


def test_a_citation_links_to_the_page_and_groups_are_ids(site):
    ids = build(site)
    site.sync()
    hits = site.index.search(Query(dense=[0.5] * DIM, sparse=None), Audience.of(site.person("ana@contoso.com")),
                             limit=50, candidates=50, mode="dense")
    urls = {h.chunk.title: h.chunk.url for h in hits}
    assert urls["Runbook"].startswith(site.cf.base + "/spaces/ENG/pages/" + ids["runbook"])
    host = "127.0.0.1"
    assert group_token(host, ids["staff"]) in site.person("ana@contoso.com").groups
    # a renamed group keeps its members and its documents: the token is the id
    site.cf.rename_group(ids["staff"], "everyone-old")
    site.sync("permissions")
    assert "Runbook" in site.visible_to("ana@contoso.com")


def test_a_removed_restriction_and_a_new_one_reach_the_index_at_the_permission_pass(site):
    ids = build(site)
    site.sync()
    site.cf.unrestrict(ids["people"])       # no version change, no lastModified change
    site.sync("changes")
    assert "Salaries" not in site.visible_to("ana@contoso.com")     # a changes sync cannot see it
    site.sync("permissions")
    assert {"People", "Reviews", "Salaries"} <= site.visible_to("ana@contoso.com")
    site.cf.restrict(ids["runbook"], users=["acc-ben"])
    site.sync("permissions")
    assert "Runbook" not in site.visible_to("ana@contoso.com")
    assert "Runbook" in site.visible_to("ben@contoso.com")


def test_an_unrestricted_page_in_a_restricted_space_follows_the_space(site):
    build(site)
    report = site.sync(source=site.source(spaces=["SEC"]))
    assert report.done
    assert site.visible_to("ana@contoso.com") == {"Keys"}
    assert site.visible_to("ben@contoso.com") == set()


def test_edits_and_trash_reach_the_index_at_the_next_changes_sync(site):
    ids = build(site)
    site.sync()
    site.cf.advance(3)
    site.cf.edit(ids["runbook"], "<h2>Deploys</h2><p>Deploy with the pipeline now.</p>", title="Runbook v2")
    site.cf.trash(ids["news"])
    report = site.sync("changes")
    assert report.updated == 1 and report.deleted == 1
    assert site.visible_to("ana@contoso.com") == {"Runbook v2"}
    # nothing changed: the overlap lists the edit again, its version says it is known
    again = site.sync("changes")
    assert again.updated == 0 and again.added == 0


def test_a_trashed_ancestor_still_restricts_and_a_move_changes_access(site):
    ids = build(site)
    site.sync()
    site.cf.trash(ids["people"])               # the restricted grandparent goes to the trash
    site.sync("changes")
    site.sync("permissions")
    assert "Salaries" not in site.visible_to("ana@contoso.com")
    assert "Salaries" in site.visible_to("hana@contoso.com")
    site.cf.move(ids["salaries"], None)        # out from under it: the space decides again
    site.sync("permissions")
    assert "Salaries" in site.visible_to("ana@contoso.com")


def test_attachments_carry_their_pages_permissions_and_download_without_the_token(site):
    ids = build(site)
    site.cf.add_attachment(ids["reviews"], "review-guide.md", b"# Review guide\n\nCalibrate every March.\n",
                           "text/markdown")
    site.cf.add_attachment(ids["runbook"], "diagram.png", b"\x89PNG...", "image/png")
    report = site.sync()
    assert ("diagram.png", "unsupported file type .png") in report.skipped, report.summary()
    assert "review-guide.md" in site.visible_to("hana@contoso.com")    # the page is HR only
    assert "review-guide.md" not in site.visible_to("ana@contoso.com")
    assert site.cf.downloads == 1 and site.cf.token_leaks == 0


def test_throttling_is_waited_out_for_the_whole_source(site):
    from connectors.atlassian.http import AtlassianHttp
    from connectors.sources.confluence.config import ConfluenceConfig
    from connectors.sources.confluence.connector import ConfluenceSource
    from connectors.http.pacing import Pacer

    build(site)
    sleeps: list[float] = []
    config = ConfluenceConfig(url=site.cf.base, email=site.cf.email, spaces=["ENG"])
    http = AtlassianHttp(config.url, config.email, site.cf.token, session=site.session,
                         pacer=Pacer("Confluence", max_wait=30, sleep=sleeps.append))
    site.cf.throttle(2, retry_after=7)
    report = site.sync(source=ConfluenceSource("wiki", config, http))
    assert report.done and sleeps and max(sleeps) >= 6.5
    assert http.pacer.throttled == 2
    # past the bound: the sync stops, says why, and resumes later
    site.cf.throttle(1, retry_after=120)
    stopped = Sync(ConfluenceSource("wiki", config, http), site.states, site.index, HashEmbedder(),
                   kind="confluence").run("full")
    assert stopped.error and "throttled by Confluence" in stopped.error


def test_a_purged_page_leaves_at_the_full_reconciliation_at_the_latest(site):
    ids = build(site)
    site.sync()
    site.cf.purge(ids["news"])                  # gone without passing through a listing of the trash
    site.sync("changes")
    site.sync("full")
    assert "Launch news" not in site.visible_to("ana@contoso.com")
    assert site.visible_to("ana@contoso.com") == {"Runbook"}


def test_a_purged_blog_post_leaves_at_the_permission_pass_not_as_unreadable(site):
    """Its read restriction answers 404 once it is purged: that is a deletion (its own 404
    confirms it), not a restriction Confluence would not show (hidden, counted unreadable)."""
    ids = build(site)
    site.sync()
    site.cf.purge(ids["news"])                  # gone without passing through a listing of the trash
    report = site.sync("permissions")
    assert report.deleted == 1 and report.unreadable == 0
    assert "Launch news" not in site.visible_to("ana@contoso.com")
    assert site.states.counts("wiki").get("unreadable", 0) == 0


def test_a_page_restored_from_the_trash_comes_back_at_the_next_changes_sync(site):
    ids = build(site)
    site.sync()
    site.cf.trash(ids["runbook"])
    site.sync("changes")
    assert "Runbook" not in site.visible_to("ana@contoso.com")
    site.cf.advance(30)                        # long after: restoring changes no modified time
    site.cf.restore(ids["runbook"])
    report = site.sync("changes")
    assert report.added == 1
    assert "Runbook" in site.visible_to("ana@contoso.com")


def test_a_hidden_email_is_found_in_the_organizations_directory(site):
    from standins.fake_atlassian_admin import PUBLIC, FakeAtlassianAdmin
    from standins.fake_entra import Reroute

    build(site)
    with FakeAtlassianAdmin(key="org-key") as admin:
        for account, email in (("acc-ana", "ana@contoso.com"), ("acc-ghost", "ghost@contoso.com"),
                               ("acc-ben", "ben@contoso.com")):
            admin.add(account, email)
        site.session.mount(PUBLIC + "/", Reroute(PUBLIC, admin.origin))
        source = open_sync_source("wiki", {"kind": "confluence", "url": site.cf.base, "email": site.cf.email,
                                           "token_env": TOKEN_ENV, "spaces": ["ENG"], "org_id": "org-1",
                                           "admin_key_env": "ORG_KEY"},
                                  SourceContext(http=site.session, environ={TOKEN_ENV: site.cf.token,
                                                                           "ORG_KEY": "org-key"}))
        site.sync(source=source)
        assert "Ghost notes" in site.visible_to("ghost@contoso.com")
        assert '"Atlassian accounts without a visible email": 0' in site.states.get("wiki").findings
        assert admin.calls == 2                      # read once (two pages), not per account
