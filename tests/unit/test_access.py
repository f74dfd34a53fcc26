"""chatops.access: who may see what."""

import pytest

from chatops.access import Acl, Audience, Principal

ALICE = Principal.of("Alice@Example.com", ["eng", "staff"], slack_user_id="U1")
BOB = Principal.of("bob@example.com", ["sales"], slack_user_id="U2")
UNKNOWN = Principal.unknown("U3")

PUBLIC = Acl.of(public=True)
ENG = Acl.of(groups=["eng"])
ALICE_ONLY = Acl.of(users=["ALICE@example.COM"])
NOBODY = Acl()


# --- Acl -------------------------------------------------------------------

def test_acl_of_normalises_emails_and_drops_empty_ones():
    acl = Acl.of(users=["  Carol@Example.COM ", "", None])
    assert acl.users == frozenset({"carol@example.com"})


def test_acl_visible_to_anyone():
    assert not NOBODY.visible_to_anyone
    assert not Acl.of(groups=[], users=[], public=False).visible_to_anyone
    assert PUBLIC.visible_to_anyone
    assert ENG.visible_to_anyone
    assert ALICE_ONLY.visible_to_anyone


def test_acl_payload_round_trip():
    acl = Acl.of(groups=["b", "a"], users=["X@y.z"], public=False)
    payload = acl.to_payload()
    assert payload == {"acl_groups": ["a", "b"], "acl_users": ["x@y.z"], "acl_public": False}
    assert Acl.from_payload(payload) == acl


def test_acl_from_empty_payload_is_visible_to_nobody():
    acl = Acl.from_payload({})
    assert acl == Acl()
    assert not acl.visible_to_anyone


# --- Principal ---------------------------------------------------------------

def test_principal_sees_public():
    assert BOB.can_see(PUBLIC)
    assert UNKNOWN.can_see(PUBLIC)


def test_principal_sees_by_email_case_insensitively():
    assert ALICE.email == "alice@example.com"
    assert ALICE.can_see(ALICE_ONLY)
    assert not BOB.can_see(ALICE_ONLY)


def test_principal_sees_by_group_overlap():
    assert ALICE.can_see(ENG)
    assert ALICE.can_see(Acl.of(groups=["hr", "staff"]))
    assert not BOB.can_see(ENG)


def test_principal_with_nothing_in_common_sees_nothing():
    acl = Acl.of(groups=["hr"], users=["carol@example.com"])
    assert not ALICE.can_see(acl)
    assert not BOB.can_see(acl)


def test_acl_with_nothing_is_visible_to_nobody():
    for who in (ALICE, BOB, UNKNOWN, Principal.of("x@y.z", ["eng", "sales", "hr"])):
        assert not who.can_see(NOBODY)
        assert not Audience.of(who).can_see(NOBODY)
    assert not Audience.public("p").can_see(NOBODY)
    assert not Audience().can_see(NOBODY)


def test_unknown_principal_sees_only_public():
    assert UNKNOWN.email is None and not UNKNOWN.groups
    assert UNKNOWN.can_see(PUBLIC)
    assert not UNKNOWN.can_see(ENG)
    assert not UNKNOWN.can_see(ALICE_ONLY)
    # An ACL listing an empty/None user must not match an unknown email.
    assert not UNKNOWN.can_see(Acl(users=frozenset({""})))
    assert not Principal.of("", []).can_see(Acl.of(users=[""]))


# --- Audience ----------------------------------------------------------------

def test_single_person_audience_matches_principal():
    aud = Audience.of(ALICE)
    assert aud.can_see(ENG)
    assert aud.can_see(ALICE_ONLY)
    assert aud.can_see(PUBLIC)
    assert not aud.can_see(Acl.of(groups=["sales"]))


def test_audience_requires_every_principal():
    channel = Audience.everyone([ALICE, BOB])
    assert not channel.can_see(ENG)           # Bob lacks it
    assert not channel.can_see(ALICE_ONLY)    # Bob lacks it
    assert channel.can_see(PUBLIC)
    assert channel.can_see(Acl.of(groups=["eng", "sales"]))   # each via their own group
    assert channel.can_see(Acl.of(groups=["eng"], users=["bob@example.com"]))


def test_one_member_without_access_excludes_the_document():
    members = [Principal.of(f"p{i}@example.com", ["eng"]) for i in range(20)]
    assert Audience.everyone(members).can_see(ENG)
    assert not Audience.everyone(members + [BOB]).can_see(ENG)
    assert not Audience.everyone(members + [UNKNOWN]).can_see(ENG)


def test_public_audience_sees_only_public():
    aud = Audience.public("external members")
    assert aud.public_only
    assert aud.reason == "external members"
    assert aud.can_see(PUBLIC)
    assert not aud.can_see(ENG)
    assert not aud.can_see(ALICE_ONLY)


def test_public_only_wins_over_principals():
    aud = Audience(principals=(ALICE,), public_only=True)
    assert not aud.can_see(ENG)
    assert aud.can_see(PUBLIC)


def test_empty_audience_sees_only_public():
    for aud in (Audience(), Audience.everyone([])):
        assert aud.can_see(PUBLIC)
        assert not aud.can_see(ENG)
        assert not aud.can_see(ALICE_ONLY)


def test_audience_with_unknown_member_sees_only_public():
    aud = Audience.everyone([ALICE, UNKNOWN])
    assert not aud.can_see(ENG) and not aud.can_see(ALICE_ONLY)
    assert aud.can_see(PUBLIC)
    assert Audience.everyone([ALICE, BOB]).can_see(Acl.of(groups=["eng", "sales"]))


def test_principal_with_groups_but_no_email_is_not_public_only():
    p = Principal.of(None, ["eng"])
    assert Audience.of(p).can_see(ENG)


def test_everyone_deduplicates_the_same_person():
    aud = Audience.everyone([ALICE, ALICE, BOB, Principal.of("alice@example.com", ["eng", "staff"],
                                                             slack_user_id="U1")], reason="chan")
    assert len(aud.principals) == 2
    assert aud.reason == "chan"


@pytest.mark.parametrize("acl", [PUBLIC, ENG, ALICE_ONLY, NOBODY, Acl.of(groups=["sales"])])
def test_audience_of_one_equals_principal_rule(acl):
    for p in (ALICE, BOB, UNKNOWN):
        assert Audience.of(p).can_see(acl) == p.can_see(acl)


# --- withheld sources (permissions out of date) -----------------------------

def test_withheld_source_hides_its_restricted_documents_only():
    aud = Audience.of(ALICE).withholding(["eng-docs"])
    assert not aud.may_use(ENG, "eng-docs")            # Alice could see it, but its ACL is stale
    assert not aud.may_use(ALICE_ONLY, "eng-docs")
    assert aud.may_use(PUBLIC, "eng-docs")             # public documents stay
    assert aud.may_use(ENG, "handbook")                # other sources are untouched


def test_withholding_never_widens_what_an_audience_sees():
    aud = Audience.of(BOB).withholding(["eng-docs"])
    assert not aud.may_use(ENG, "handbook")            # not Bob's group, withheld or not
    assert not aud.may_use(NOBODY, "handbook")
    assert Audience.of(ALICE).withholding(["a"]).withholding(["b"]).withheld == frozenset({"a", "b"})


def test_may_use_without_withheld_sources_is_can_see():
    for acl in (PUBLIC, ENG, ALICE_ONLY, NOBODY):
        assert Audience.of(ALICE).may_use(acl, "any") == Audience.of(ALICE).can_see(acl)
