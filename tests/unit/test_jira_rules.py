"""Jira's read rule (browse holders ∩ the issue's security level), ADF as text, and the config."""

import pytest
from pydantic import ValidationError

from chatops.access import Acl
from connectors.sources.atlassian.access import Grant, intersect
from connectors.atlassian.adf import adf_text
from connectors.sources.jira.config import JiraConfig
from connectors.sources.jira.permissions import holders_of, role_members


def entry(kind, parameter=None, value=None, permission="BROWSE_PROJECTS"):
    holder = {"type": kind}
    if parameter is not None:
        holder["parameter"] = parameter
    if value is not None:
        holder["value"] = value
    return {"id": 1, "holder": holder, "permission": permission}


def test_browse_holders_by_kind():
    h = holders_of([entry("group", "jira-users", "gid-1"), entry("group", "old-name"), entry("projectRole", "10002"),
                    entry("user", "acc-1"), entry("projectLead"), entry("reporter"), entry("assignee"),
                    entry("group", "admins", "gid-2", permission="ADMINISTER_PROJECTS"),
                    entry("userCustomField", "customfield_10010")], lead="acc-lead")
    assert h.group_ids == {"gid-1"} and h.group_names == {"old-name"}   # by id where the scheme gives it
    assert h.roles == {"10002"} and h.accounts == {"acc-1", "acc-lead"}
    assert h.per_issue == {"reporter", "assignee"}
    assert not h.everyone
    assert h.ignored == ("a userCustomField holder",)                   # grants nothing


def test_anyone_and_application_access_are_everyone():
    assert holders_of([entry("anyone")]).everyone
    assert holders_of([entry("applicationRole", "jira-software")]).everyone
    assert holders_of([entry("applicationRole")]).everyone


def test_security_level_members_count_without_a_permission_key():
    members = [{"id": 1, "issueSecurityLevelId": "10100", "holder": {"type": "group", "parameter": "hr",
                                                                      "value": "gid-hr"}}]
    assert holders_of(members, permission=None).group_ids == {"gid-hr"}


def test_role_actors_are_people_and_groups_by_id():
    accounts, ids, names = role_members([
        {"type": "atlassian-user-role-actor", "actorUser": {"accountId": "acc-1"}},
        {"type": "atlassian-group-role-actor", "name": "devs", "actorGroup": {"name": "devs", "groupId": "gid-d"}},
        {"type": "atlassian-group-role-actor", "name": "legacy", "actorGroup": {"name": "legacy"}}])
    assert (accounts, ids, names) == ({"acc-1"}, {"gid-d"}, {"legacy"})


def test_a_security_level_narrows_the_project():
    members = {"g-eng": frozenset({"ana@x.com", "ben@x.com"}), "g-hr": frozenset({"ben@x.com", "hana@x.com"})}
    browse = Grant.of(groups=["g-eng"])
    level = Grant.of(groups=["g-hr"], users=["ivan@x.com"])
    assert intersect([browse], members.get) == Acl.of(groups=["g-eng"])
    assert intersect([browse, level], members.get) == Acl.of(users=["ben@x.com"])
    assert intersect([Grant.of(public=True), level], members.get) == Acl.of(groups=["g-hr"], users=["ivan@x.com"])
    assert not intersect([], members.get).visible_to_anyone


def test_adf_as_text():
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Impact"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "Scanners down, "},
                                          {"type": "mention", "attrs": {"id": "a", "text": "@Ana"}},
                                          {"type": "text", "text": " paged."}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]}]},
        {"type": "codeBlock", "content": [{"type": "text", "text": "systemctl restart scanner\n  --force"}]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "m"}}]}]}
    assert adf_text(doc) == ("Impact\n\nScanners down, @Ana paged.\n\n- one\n- two\n\n"
                             "```\nsystemctl restart scanner\n  --force\n```")
    assert adf_text(None) == "" and adf_text("plain") == "plain"


@pytest.mark.parametrize("change, message", [
    ({"projects": None}, "either projects"),
    ({"jql": "project = OPS"}, "not both"),
    ({"projects": ["ops"]}, "'ops' is not a project key"),
    ({"url": "http://contoso.atlassian.net"}, "is not a Jira site URL"),
    ({"token_env": "tok en"}, "not an environment variable name"),
    ({"org_id": "0a1b"}, "give both org_id and admin_key_env"),
    ({"org_id": "0a1b", "admin_key_env": "key-with-dash"}, "not an environment variable name"),
])
def test_config_mistakes(change, message):
    base = {"url": "https://contoso.atlassian.net", "projects": ["OPS"], "email": "svc@contoso.com"}
    with pytest.raises(ValidationError, match=message):
        JiraConfig(**{**base, **change})
