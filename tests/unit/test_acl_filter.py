"""connectors.index.qdrant_index.acl_filter: the audience as a Qdrant filter."""

from qdrant_client import models

from chatops.access import Audience, Principal
from connectors.index.qdrant_index import acl_filter

PUBLIC = models.FieldCondition(key="acl_public", match=models.MatchValue(value=True))


def conditions_by_key(filter_):
    return {c.key: c for c in filter_.should}


def test_two_person_audience_has_one_should_group_per_person():
    alice = Principal.of("Alice@Example.com", ["eng", "admins"])
    bob = Principal.of("bob@example.com", ["sales"])
    flt = acl_filter(Audience.everyone([alice, bob]))
    assert flt.should is None and flt.must_not is None
    assert isinstance(flt.must, list) and len(flt.must) == 2
    for group, person in zip(flt.must, (alice, bob)):
        assert isinstance(group, models.Filter)
        assert group.must is None
        by_key = conditions_by_key(group)
        assert set(by_key) == {"acl_public", "acl_users", "acl_groups"}
        assert by_key["acl_public"] == PUBLIC
        assert by_key["acl_users"].match == models.MatchAny(any=[person.email])
        assert by_key["acl_groups"].match == models.MatchAny(any=sorted(person.groups))
    assert flt.must[0].should[1].match.any == ["alice@example.com"]
    assert flt.must[0].should[2].match.any == ["admins", "eng"]


def test_public_only_audience_gives_only_the_public_condition():
    alice = Principal.of("alice@example.com", ["eng"])
    for aud in (Audience.public("external members"), Audience(), Audience(principals=(alice,), public_only=True)):
        flt = acl_filter(aud)
        assert flt.must == [PUBLIC]
        assert flt.should is None and flt.must_not is None


def test_principal_without_groups_has_no_empty_match_any():
    p = Principal.of("solo@example.com", [])
    (group,) = acl_filter(Audience.of(p)).must
    assert [c.key for c in group.should] == ["acl_public", "acl_users"]
    for c in group.should:
        if isinstance(c.match, models.MatchAny):
            assert c.match.any


def test_unknown_principal_gets_only_the_public_condition():
    (group,) = acl_filter(Audience.of(Principal.unknown("U9"))).must
    assert group.should == [PUBLIC]


def test_principal_with_groups_but_no_email():
    (group,) = acl_filter(Audience.of(Principal.of(None, ["eng"]))).must
    assert [c.key for c in group.should] == ["acl_public", "acl_groups"]
    assert group.should[1].match == models.MatchAny(any=["eng"])


def test_filter_is_deterministic():
    p = Principal.of("a@b.c", ["z", "y", "x"])
    assert acl_filter(Audience.of(p)) == acl_filter(Audience.of(p))
    assert acl_filter(Audience.of(p)).must[0].should[2].match.any == ["x", "y", "z"]
