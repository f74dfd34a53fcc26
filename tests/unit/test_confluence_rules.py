"""Confluence's read rule (space ∩ page ∩ every ancestor) and its storage format, as pure functions."""

from chatops.access import Acl, Audience, Principal
from connectors.atlassian.accounts import group_token
from connectors.sources.confluence.permissions import Restriction, SpaceRead, effective_acl, space_read
from connectors.sources.confluence.storage import storage_sections

HOST = "contoso.atlassian.net"
STAFF = group_token(HOST, "g-staff")
HR = group_token(HOST, "g-hr")
MEMBERS = {STAFF: frozenset({"ana@contoso.com", "ben@contoso.com", "hana@contoso.com"}),
           HR: frozenset({"hana@contoso.com", "ivan@contoso.com"})}
SPACE = SpaceRead(groups=frozenset({STAFF}))
OPEN = Restriction()


def members(token):
    return MEMBERS.get(token, frozenset())


def read(user_or_group: str, pid: str, key: str = "read", target: str = "space") -> dict:
    return {"id": "p1", "principal": {"type": user_or_group, "id": pid}, "operation": {"key": key, "targetType": target}}


def test_a_page_without_restrictions_inherits_its_space():
    acl = effective_acl(SPACE, [OPEN, OPEN], members)
    assert acl == Acl.of(groups=[STAFF])             # neither nobody nor everyone


def test_a_restriction_on_a_grandparent_applies_to_every_descendant():
    grandparent = Restriction(groups=frozenset({HR}), restricted=True)
    acl = effective_acl(SPACE, [grandparent, OPEN, OPEN], members)
    # HR ∩ staff: Ivan is in HR but may not read the space
    assert acl == Acl.of(users=["hana@contoso.com"])
    assert not Audience.of(Principal.of("ivan@contoso.com", [HR])).can_see(acl)
    assert not Audience.of(Principal.of("ana@contoso.com", [STAFF])).can_see(acl)


def test_restrictions_along_the_chain_intersect():
    parent = Restriction(groups=frozenset({STAFF}), restricted=True)
    page = Restriction(users=frozenset({"ana@contoso.com", "ivan@contoso.com"}), restricted=True)
    assert effective_acl(SPACE, [parent, page], members) == Acl.of(users=["ana@contoso.com"])


def test_a_restriction_of_accounts_that_could_not_be_mapped_lets_nobody_read():
    page = Restriction(restricted=True)          # restricted to someone whose email is hidden
    acl = effective_acl(SPACE, [page], members)
    assert acl is not None and not acl.visible_to_anyone


def test_anything_unreadable_hides_the_page():
    assert effective_acl(SPACE, [OPEN, None, OPEN], members) is None
    assert effective_acl(None, [OPEN], members) is None


def test_space_read_takes_read_grants_of_users_and_groups_only():
    entries = [read("group", "g-staff"), read("user", "acc-1"), read("group", "g-hr", key="delete"),
               read("group", "g-x", target="page"), read("role", "r-1")]
    space = space_read(entries, host=HOST, anonymous_public=False)
    assert space.groups == {STAFF}
    assert space.accounts == ("acc-1",)
    assert not space.public
    assert any("role" in why for why in space.ignored)


def test_anonymous_access_makes_nothing_public_unless_the_source_says_so():
    entries = [read("group", "g-staff")]
    assert not space_read(entries, host=HOST, anonymous=True, anonymous_public=False).public
    public = space_read(entries, host=HOST, anonymous=True, anonymous_public=True)
    assert effective_acl(public, [OPEN], members).public
    # a restricted page of a public space is still restricted (to the group, which stays a group)
    hr_only = Restriction(groups=frozenset({HR}), restricted=True)
    assert effective_acl(public, [hr_only], members) == Acl.of(groups=[HR])


def test_group_tokens_are_ids_scoped_by_site():
    assert group_token("Contoso.atlassian.net", "abc") == "atlassian:contoso.atlassian.net::abc"
    assert group_token("fabrikam.atlassian.net", "abc") != group_token(HOST, "abc")


def test_storage_format_keeps_headings_tables_and_code_readable():
    body = ('<p>Intro</p><h1>Setup</h1><p>Run it.</p>'
            '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">python</ac:parameter>'
            '<ac:plain-text-body><![CDATA[def f():\n    return 1]]></ac:plain-text-body></ac:structured-macro>'
            '<h2>Limits</h2><table><tbody><tr><th>Key</th><th>Value</th></tr>'
            '<tr><td><p>timeout</p></td><td>30 s</td></tr></tbody></table>'
            '<ac:structured-macro ac:name="info"><ac:rich-text-body><p>Ask &amp; wait</p></ac:rich-text-body>'
            '</ac:structured-macro>')
    sections = storage_sections(body, "Runbook")
    assert [s.heading for s in sections] == ["", "Setup", "Setup › Limits"]
    assert "```\ndef f():\n    return 1\n```" in sections[1].text
    assert "python" not in sections[1].text            # a macro parameter is not text
    assert "Key | Value\ntimeout | 30 s" in sections[2].text
    assert "Ask & wait" in sections[2].text
