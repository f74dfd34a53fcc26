"""The ``jira_search`` tool kind through a configured Jira source, against the loopback Jira
(standins/fake_jira.py) over TLS with the real requests client: every issue it returns carries
the ACL the source's sync writes for it (the same index, the same people), the JQL stays inside
the source's scope, and what cannot be read is shown to nobody."""

from __future__ import annotations

import json
import ssl

import pytest
import requests
import trustme

from chatops.access import Acl, Audience
from chatops.checks import CheckFailed
from chatops.errors import ConfigError
from chatops.store import Store
from chatops.store.sources import SourceStates
from chatops.tools import ToolSpec
from connectors.atlassian.accounts import group_token
from connectors.index.edge_index import EdgeIndex
from connectors.sources.base import Item
from connectors.sources.registry import SourceContext, open_sync_source
from connectors.tools.base import Caller, ResultItem, ToolDeps, ToolFailed
from connectors.tools.jira_search import JiraSearchTool
from connectors.tools.registry import build_tool
from standins._loopback import Reply
from standins.fake_jira import FakeJira
from tests.ingest_helpers import DIM
from tests.sources.conformance.harness import Wiretap
from tests.sources.test_jira_sync import Site, build

ASKER = Caller("id-ana", "ana@contoso.com", "UANA")
SOURCE_ID = "jira:tickets"
SEARCH = "POST /rest/api/3/search/jql"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The Jira site of the sync tests (tests/sources/test_jira_sync.py): the stand-in over TLS from
    a throwaway CA that requests trusts, a SQLite store and an embedded index to sync into."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    jira = FakeJira(projects=())
    jira.tls = context
    with jira:
        store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
        index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
        try:
            yield Site(jira, requests.Session(), SourceStates(store), index)
        finally:
            index.close()
            store.close()


def make(site: Site, source: str = "tickets", **source_config) -> JiraSearchTool:
    def open_source(name: str):
        if name != "tickets":
            raise ConfigError(f"no source named {name!r} in sources:")
        return site.source(**source_config)

    deps = ToolDeps(http=site.session, secret=lambda name: None, open_source=open_source,
                    source_id=lambda name: f"jira:{name}")
    tool = build_tool(ToolSpec.model_validate({"name": "tickets-live", "kind": "jira_search", "source": source}),
                      deps)
    assert isinstance(tool, JiraSearchTool)
    return tool


def searched(site: Site) -> list[str]:
    """The JQL of every search the site answered."""
    return [json.loads(r.body)["jql"] for r in site.jira.requests
            if r.method == "POST" and r.path == "/rest/api/3/search/jql"]


def indexed_acls(site: Site, keys) -> dict[str, Acl]:
    ids = {f"issue:{site.jira.by_key[k].id}": k for k in keys}
    return {ids[doc_id]: state.acl for doc_id, state in site.index.documents(SOURCE_ID, list(ids)).items()}


def visible(items, site: Site, email: str) -> set[str]:
    audience = Audience.of(site.person(email))
    return {i.title for i in items if audience.may_use(i.acl, i.source)}


# -- configuration ------------------------------------------------------------------------------

def test_configuration_errors_name_the_tool_and_the_key(site, tmp_path):
    def opener(name: str):
        if name == "docs":
            return open_sync_source("docs", {"kind": "filesystem", "path": str(tmp_path)}, SourceContext())
        if name == "tickets":
            return site.source()
        raise ConfigError(f"no source named {name!r}")

    for config, message in [({"source": "tickets", "colour": "x"}, "tool 'tickets-live': colour: unknown key"),
                            ({}, "tool 'tickets-live': source: required"),
                            ({"source": "nope"}, "tool 'tickets-live': source: 'nope': no source named 'nope'"),
                            ({"source": "docs"}, "tool 'tickets-live': source: 'docs' is not a source of kind jira"),
                            ({"source": "tickets", "allow": ["search", "delete_issue"]},
                             "tool 'tickets-live': allow: no function delete_issue")]:
        deps = ToolDeps(http=site.session, secret=lambda name: None, open_source=opener)
        with pytest.raises(ConfigError) as caught:
            build_tool(ToolSpec.model_validate({"name": "tickets-live", "kind": "jira_search", **config}), deps)
        assert str(caught.value).startswith(message), str(caught.value)
    no_sources = ToolDeps(http=site.session, secret=lambda name: None)
    with pytest.raises(ConfigError, match="source: no configured sources"):
        build_tool(ToolSpec.model_validate({"name": "t", "kind": "jira_search", "source": "tickets"}), no_sources)


def test_definitions_are_read_only_and_say_the_scope(site):
    tool = make(site)
    search, get_issue = tool.definitions(None)
    assert (search.name, get_issue.name) == ("search", "get_issue")
    assert "projects HR, OPS" in search.description
    assert search.input_schema["required"] == ["jql"]
    assert search.input_schema["properties"]["max_results"]["maximum"] == 50
    assert get_issue.input_schema["required"] == ["key"]
    for d in (search, get_issue):
        assert d.annotations == {"readOnlyHint": True, "destructiveHint": False} and d.not_read_only() is None
    assert tool.describe_call("search", {"jql": "status = Done"}) == "search(jql=status = Done)"


# -- the same ACL as the sync ---------------------------------------------------------------------

def test_each_issue_carries_the_acl_the_sync_writes_for_it(site):
    keys = build(site)
    site.sync("full")
    tool = make(site)
    out = tool.call("search", {"jql": "ORDER BY key ASC"}, ASKER, timeout=10)
    assert [i.title for i in out.items] == ["HR-1", "OPS-1", "OPS-2", "OPS-3"]
    assert searched(site)[-1] == "project in (OPS, HR) ORDER BY key ASC"
    by_key = {i.title: i for i in out.items}
    # the very ACLs the index holds for these issues after the sync
    assert {k: i.acl for k, i in by_key.items()} == indexed_acls(site, by_key)
    # and what the source's own permissions() says of the items its listing builds
    fresh = site.source()
    items = [Item(f"issue:{site.jira.by_key[k].id}", scope=site.jira.project_by_key[k.split("-")[0]].id)
             for k in by_key]
    assert {k: by_key[k].acl for k in by_key} == {k: fresh.permissions(items)[i.doc_id]
                                                   for k, i in zip(by_key, items)}
    # the security level narrows the breach to Ana (browse: engineering and the lead ∩ level: Ana
    # and the reporter, Hana, who may not browse OPS)
    assert by_key[keys["breach"]].acl == Acl.of(users=["ana@contoso.com"])
    # so each person is shown exactly the issues the synced index shows them
    for email in ("ana@contoso.com", "ben@contoso.com", "olga@contoso.com", "hana@contoso.com"):
        assert visible(out.items, site, email) == site.visible_to(email), email
    outage = by_key[keys["outage"]]
    assert outage == ResultItem(text=outage.text, acl=outage.acl, source=SOURCE_ID, title=keys["outage"],
                                url=f"{site.jira.origin}/browse/{keys['outage']}")
    assert outage.text.startswith(f"{keys['outage']} · To Do · Scanner outage · unassigned · updated 20")
    assert outage.text.endswith(" UTC")


def test_an_issue_at_a_security_level_restricted_to_a_group_is_restricted_to_that_group(site):
    j = site.jira
    j.add_user("acc-ana", "ana@contoso.com")
    j.add_user("acc-ben", "ben@contoso.com")
    security = j.add_group("security-team")
    j.set_members(security, ["acc-ben"])
    j.add_project("OPS", "Operations", browse=[("anyone",)], security_levels={"Security": [("group", security)]})
    notice = j.add_issue("OPS", "Maintenance notice", "Saturday.")
    findings = j.add_issue("OPS", "Pen-test findings", "Three criticals.", security="Security")
    config = {"projects": ["OPS"], "anyone_public": True}
    site.sync("full", source=site.source(**config))
    out = make(site, **config).call("search", {"jql": "project = OPS ORDER BY key"}, ASKER, timeout=10)
    by_key = {i.title: i for i in out.items}
    assert by_key[findings].acl == Acl.of(groups=[group_token("127.0.0.1", security)])
    assert by_key[notice].acl == Acl.of(public=True)
    assert {k: i.acl for k, i in by_key.items()} == indexed_acls(site, by_key)
    assert visible(out.items, site, "ben@contoso.com") == {notice, findings}
    assert visible(out.items, site, "ana@contoso.com") == {notice}


def test_an_issue_whose_permissions_cannot_be_read_is_shown_to_nobody(site):
    keys = build(site)
    level = next(lv.id for lv in site.jira.project_by_key["OPS"].levels if lv.name == "Incident responders")
    tap = Wiretap(site.jira)
    tap.answer("hide", lambda r: r.path == "/rest/api/3/issuesecurityschemes/level/member"
               and r.query.get("levelId") == level,
               Reply(404, {"errorMessages": ["The security level does not exist."], "errors": {}}))
    out = make(site).call("search", {"jql": "project = OPS ORDER BY key"}, ASKER, timeout=10)
    by_key = {i.title: i for i in out.items}
    assert by_key[keys["breach"]].acl == Acl()
    assert by_key[keys["outage"]].acl.visible_to_anyone           # the others as before
    assert not any(Audience.of(site.person(e)).can_see(by_key[keys["breach"]].acl)
                   for e in ("ana@contoso.com", "ben@contoso.com"))


# -- the source's scope ---------------------------------------------------------------------------

def test_the_jql_never_reaches_past_the_projects_the_source_covers(site):
    build(site)
    site.jira.add_project("FIN", "Finance", browse=[("anyone",)])
    site.jira.add_issue("FIN", "Salary review", "Confidential.")
    tool = make(site)
    out = tool.call("search", {"jql": "project = FIN"}, ASKER, timeout=10)
    assert out.items == () and out.text == "no issues match"
    assert searched(site)[-1] == "(project = FIN) AND project in (OPS, HR)"
    before = site.jira.requests_by_path[SEARCH]
    for escape in ("project = FIN) OR (project = FIN", "project = FIN OR (project = OPS",
                   'summary ~ "x) OR project = FIN', "project = FIN) ORDER BY key"):
        with pytest.raises(ToolFailed) as caught:
            tool.call("search", {"jql": escape}, ASKER, timeout=10)
        assert not caught.value.transient
    assert site.jira.requests_by_path[SEARCH] == before          # refused before anything was sent
    # a key of another project reads as nothing, the same as a key that does not exist
    assert tool.call("get_issue", {"key": "FIN-1"}, ASKER, timeout=10).items == ()
    assert tool.call("get_issue", {"key": "NOPE-9"}, ASKER, timeout=10).text == \
        tool.call("get_issue", {"key": "FIN-1"}, ASKER, timeout=10).text.replace("FIN-1", "NOPE-9")


def test_issues_of_another_project_are_dropped_even_if_jira_returned_them(site):
    build(site)
    site.jira.add_project("FIN", "Finance", browse=[("anyone",)])
    site.jira.add_issue("FIN", "Salary review", "Confidential.")
    fin = requests.post(f"{site.jira.origin}/rest/api/3/search/jql", auth=(site.jira.email, site.jira.token),
                        json={"jql": "project = FIN", "fields": ["summary", "project"]}, timeout=10).json()
    assert [i["key"] for i in fin["issues"]] == ["FIN-1"]
    Wiretap(site.jira).answer("ignores the scope", lambda r: r.path == "/rest/api/3/search/jql", Reply(200, fin))
    assert make(site).call("search", {"jql": "project = OPS"}, ASKER, timeout=10).items == ()


def test_a_source_limited_by_a_jql_filter_limits_the_tool_the_same_way(site):
    keys = build(site)
    site.jira.set_status(keys["outage"], "In Progress")
    config = {"projects": None, "jql": 'project = OPS AND status = "In Progress"'}
    tool = make(site, **config)
    out = tool.call("search", {"jql": "status != Done ORDER BY key DESC"}, ASKER, timeout=10)
    assert [i.title for i in out.items] == [keys["outage"]]
    assert searched(site)[-1] == '(status != Done) AND (project = OPS AND status = "In Progress") ORDER BY key DESC'
    fresh = site.source(**config)
    item = Item(f"issue:{site.jira.by_key[keys['outage']].id}", scope="jql")
    assert out.items[0].acl == fresh.permissions([item])[item.doc_id]
    assert "the filter (project = OPS" in tool.definitions(None)[0].description


def test_get_issue_gives_the_issue_in_detail_with_its_acl(site):
    keys = build(site)
    tool = make(site)
    out = tool.call("get_issue", {"key": keys["outage"].lower()}, ASKER, timeout=10)
    [item] = out.items
    assert item.title == keys["outage"] and out.url == f"{site.jira.origin}/browse/{keys['outage']}"
    assert "Description: The scanners stopped." in item.text and "Reporter: Ana" in item.text
    search = tool.call("search", {"jql": f"key = {keys['outage']}"}, ASKER, timeout=10).items[0]
    assert item.acl == search.acl and item.acl.visible_to_anyone


# -- arguments and errors -------------------------------------------------------------------------

def test_arguments_are_checked_before_anything_is_sent(site):
    build(site)
    tool = make(site)
    for function, arguments in [("search", {}), ("search", {"jql": "  "}), ("search", {"jql": "x", "max_results": 51}),
                                ("search", {"jql": "x", "max_results": True}), ("search", {"jql": "x", "or": 1}),
                                ("get_issue", {"key": "OPS-1 OR project = FIN"}), ("get_issue", {}),
                                ("delete_issue", {"key": "OPS-1"})]:
        with pytest.raises(ToolFailed):
            tool.call(function, arguments, ASKER, timeout=10)
    assert site.jira.requests_by_path[SEARCH] == 0


def test_max_results_bounds_the_search_and_says_more_match(site):
    build(site)
    out = make(site).call("search", {"jql": "ORDER BY key ASC", "max_results": 2}, ASKER, timeout=10)
    assert [i.title for i in out.items] == ["HR-1", "OPS-1"]
    assert out.text == "more issues match; the first 2 are shown"


def test_jira_errors_fail_the_call(site):
    build(site)
    tool = make(site)
    with pytest.raises(ToolFailed) as caught:
        tool.call("search", {"jql": "colour = red"}, ASKER, timeout=10)
    assert str(caught.value).startswith("Jira refused the JQL: Field 'colour' does not exist")
    assert not caught.value.transient
    site.jira.fail_next(401, body={"errorMessages": ["Client must be authenticated."], "errors": {}})
    with pytest.raises(ToolFailed) as caught:
        tool.call("search", {"jql": "project = OPS"}, ASKER, timeout=10)
    assert "refused the account (401" in str(caught.value) and not caught.value.transient
    site.jira.fail_next(503, count=20)
    with pytest.raises(ToolFailed) as caught:
        tool.call("search", {"jql": "project = OPS"}, ASKER, timeout=2)
    assert caught.value.transient


def test_check_makes_one_search_within_the_scope(site):
    build(site)
    tool = make(site)
    before = len(site.jira.requests)
    assert tool.check() == f"JQL search within project in (OPS, HR) on {site.jira.origin}, through the source 'tickets'"
    assert len(site.jira.requests) == before + 1
    site.jira.fail_next(401)
    with pytest.raises(CheckFailed) as caught:
        tool.check()
    assert "refused the account" in str(caught.value) and caught.value.fix
