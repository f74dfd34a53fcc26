"""connectors.sources.filesystem.acl: .acl.yml rules."""

import pytest

from chatops.access import Acl
from connectors.sources.filesystem.acl import ACL_FILE, AclFileError, AclRules, glob_to_regex


def matches(pattern: str, path: str) -> bool:
    return bool(glob_to_regex(pattern).match(path))


# --- glob semantics ------------------------------------------------------------

@pytest.mark.parametrize("path", ["a.md", "docs/a.md", "docs/x/y/a.md"])
def test_double_star_slash_spans_zero_or_more_folders(path):
    assert matches("**/a.md", path)


@pytest.mark.parametrize("path,expected", [
    ("docs/a.md", True),            # zero folders between
    ("docs/x/a.md", True),
    ("docs/x/y/z/a.md", True),
    ("other/a.md", False),
    ("docsa.md", False),
    ("docs/a.txt", False),
])
def test_double_star_in_the_middle(path, expected):
    assert matches("docs/**/*.md", path) is expected


def test_trailing_double_star_matches_everything_below():
    assert matches("hr/**", "hr/a.md")
    assert matches("hr/**", "hr/x/y/z.pdf")
    assert not matches("hr/**", "eng/hr/a.md")
    assert matches("**", "anything/at/all.md")


def test_single_star_does_not_cross_a_slash():
    assert matches("*.md", "a.md")
    assert not matches("*.md", "docs/a.md")
    assert matches("docs/*", "docs/a.md")
    assert not matches("docs/*", "docs/x/a.md")
    assert matches("docs/*.md", "docs/.md")   # '*' may be empty


def test_question_mark_matches_one_non_slash_character():
    assert matches("doc?.md", "doc1.md")
    assert not matches("doc?.md", "doc.md")
    assert not matches("doc?.md", "doc12.md")
    assert not matches("a?b", "a/b")


def test_pattern_is_anchored_at_both_ends_and_literal_otherwise():
    assert not matches("a.md", "xa.md")
    assert not matches("a.md", "a.md.bak")
    assert not matches("a.md", "aXmd")       # '.' is literal
    assert matches("notes (old)+[1].md", "notes (old)+[1].md")


# --- rule evaluation -------------------------------------------------------------

def test_no_rule_means_visible_to_nobody():
    rules = AclRules.parse([{"match": "eng/**", "groups": ["eng"]}])
    acl = rules.acl_for("hr/pay.md")
    assert acl == Acl()
    assert not acl.visible_to_anyone
    assert AclRules.parse([]).acl_for("a.md") == Acl()


def test_last_matching_rule_wins():
    rules = AclRules.parse([
        {"match": "**", "public": True},
        {"match": "hr/**", "groups": ["hr"]},
        {"match": "hr/handbook.md", "public": True},
        {"match": "eng/*.md", "groups": ["eng"], "users": ["Boss@Example.com"]},
    ])
    assert rules.acl_for("readme.md") == Acl.of(public=True)
    assert rules.acl_for("hr/pay/2024.md") == Acl.of(groups=["hr"])
    assert rules.acl_for("hr/handbook.md") == Acl.of(public=True)
    assert rules.acl_for("eng/deploy.md") == Acl.of(groups=["eng"], users=["boss@example.com"])
    assert rules.acl_for("eng/sub/x.md") == Acl.of(public=True)   # '*' does not cross '/'


def test_earlier_rule_does_not_override_later_one():
    rules = AclRules.parse([
        {"match": "hr/**", "groups": ["hr"]},
        {"match": "**", "groups": ["all"]},
    ])
    assert rules.acl_for("hr/pay.md") == Acl.of(groups=["all"])


def test_leading_slash_in_match_is_ignored():
    rules = AclRules.parse([{"match": "/eng/**", "groups": ["eng"]}])
    assert rules.acl_for("eng/a.md") == Acl.of(groups=["eng"])


def test_public_false_and_empty_lists_give_nobody():
    rules = AclRules.parse([{"match": "**", "public": False, "groups": None, "users": []}])
    assert not rules.acl_for("x.md").visible_to_anyone


# --- loading from disk -------------------------------------------------------------

def test_load_reads_the_acl_file(tmp_path):
    (tmp_path / ACL_FILE).write_text(
        "- match: '**'\n  groups: [staff]\n- match: 'public/**'\n  public: true\n"
    )
    rules = AclRules.load(tmp_path)
    assert rules.acl_for("x/y.md") == Acl.of(groups=["staff"])
    assert rules.acl_for("public/y.md") == Acl.of(public=True)


def test_load_without_file_gives_nobody(tmp_path):
    assert AclRules.load(tmp_path).acl_for("a.md") == Acl()


def test_load_empty_file_gives_nobody(tmp_path):
    (tmp_path / ACL_FILE).write_text("")
    assert AclRules.load(tmp_path).acl_for("a.md") == Acl()


def test_load_invalid_yaml(tmp_path):
    (tmp_path / ACL_FILE).write_text("- match: [unclosed\n")
    with pytest.raises(AclFileError, match="not valid YAML"):
        AclRules.load(tmp_path)


def test_load_error_names_the_file(tmp_path):
    (tmp_path / ACL_FILE).write_text("- match: '**'\n  grops: [x]\n")
    with pytest.raises(AclFileError, match=str(tmp_path / ACL_FILE).replace("\\", "\\\\")):
        AclRules.load(tmp_path)


# --- invalid rule files ----------------------------------------------------------------

@pytest.mark.parametrize("data", [{"match": "**"}, "- match: x", 3])
def test_top_level_must_be_a_list(data):
    with pytest.raises(AclFileError, match="must be a list"):
        AclRules.parse(data)


def test_unknown_key_names_rule_number_and_key():
    with pytest.raises(AclFileError, match=r"rule 2 has unknown key\(s\) grops"):
        AclRules.parse([{"match": "**", "public": True}, {"match": "x", "grops": ["a"]}])


@pytest.mark.parametrize("rule", [{"groups": ["a"]}, {"match": None}, {"match": 5}, "just a string"])
def test_missing_or_bad_match(rule):
    with pytest.raises(AclFileError, match=r"rule 2 needs 'match"):
        AclRules.parse([{"match": "**", "public": True}, rule])


@pytest.mark.parametrize("key", ["groups", "users"])
def test_groups_and_users_must_be_lists(key):
    with pytest.raises(AclFileError, match=r"rule 1: 'groups' and 'users' must be lists"):
        AclRules.parse([{"match": "**", key: "eng"}])


@pytest.mark.parametrize("value", ["true", "yes", 1, None])
def test_public_must_be_a_bool(value):
    with pytest.raises(AclFileError, match=r"rule 3: 'public' must be true or false"):
        AclRules.parse([{"match": "a"}, {"match": "b"}, {"match": "c", "public": value}])


def test_non_string_user_is_an_acl_file_error():
    with pytest.raises(AclFileError, match="rule 1"):
        AclRules.parse([{"match": "**", "users": [42]}])
