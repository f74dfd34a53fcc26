"""Finding 5: Slack Connect strangers were resolved by their profile email; finding 4's event half:
membership changes drop the cached member list.

The real slack_sdk client against the loopback Slack (users.info, auth.test), the real
directory provider behind it, and the real web app for the membership events.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
import yaml

from bot.gateway import SlackGateway, make_client
from bot.people import SlackPeople
from chatops.access import Acl, Principal
from connectors.identity.directory import DirectoryProvider
from standins.fake_slack import FakeSlack
from usecases.people import Someone, reader, resolve

HR_EMAIL = "hr@corp.example"
USERS = {
    "UHR": {"id": "UHR", "profile": {"email": HR_EMAIL}},
    # Another organisation's user, in a shared channel, showing the HR person's email.
    "UOUT": {"id": "UOUT", "team_id": "T_OTHER", "profile": {"email": HR_EMAIL}},
    # Slack says so outright.
    "USTRANGE": {"id": "USTRANGE", "is_stranger": True, "profile": {"email": HR_EMAIL}},
    # Same Enterprise Grid organisation, another workspace of it.
    "UGRID": {"id": "UGRID", "team_id": "T_SISTER", "enterprise_user": {"enterprise_id": "E1"},
              "profile": {"email": "grid@corp.example"}},
    "UGUEST": {"id": "UGUEST", "is_restricted": True, "profile": {"email": "guest@partner.example"}},
    "USINGLE": {"id": "USINGLE", "is_ultra_restricted": True, "profile": {"email": HR_EMAIL}},
}
DIRECTORY = [{"email": HR_EMAIL, "groups": ["hr"]}, {"email": "grid@corp.example", "groups": ["eng"]},
             {"email": "guest@partner.example", "groups": []}]
SALARIES = Acl.of(groups=["hr"])


@pytest.fixture
def slack():
    with FakeSlack(users=USERS, channels={}, team_id="T123") as fake:
        yield fake


DIRECTORY_PROVIDER = DirectoryProvider(DIRECTORY)


def people(slack, **kw) -> SlackPeople:
    return SlackPeople(SlackGateway(make_client("xoxb-test", slack.url)), **kw)


def principal(slack, user: str, **kw) -> Principal:
    """The principal a Slack user gets: Slack's side, then the directory by email only."""
    return reader(DIRECTORY_PROVIDER, people(slack, **kw).someone(user))


@pytest.mark.parametrize("user", ["UOUT", "USTRANGE"])
def test_a_user_of_another_organisation_is_not_the_employee_whose_email_they_show(slack, user):
    who = people(slack).someone(user)
    assert who.external and who.email is None                   # never looked up
    assert principal(slack, user) == Principal.unknown(user)      # public documents only
    assert not principal(slack, user).can_see(SALARIES)


def test_own_people_resolve_as_before(slack):
    assert principal(slack, "UHR").can_see(SALARIES)
    assert principal(slack, "UHR").slack_user_id == "UHR"


def test_the_same_enterprise_grid_organisation_is_not_foreign(slack):
    # auth.test of an Enterprise Grid workspace names the organisation.
    slack._auth_test = lambda p: {"ok": True, "team_id": "T123", "enterprise_id": "E1", "user_id": "UBOT"}
    assert principal(slack, "UGRID").groups == {"eng"}


def test_configured_workspaces_replace_the_tokens_own(slack):
    assert principal(slack, "UOUT", team_ids=frozenset({"T_OTHER"})).email == HR_EMAIL
    assert people(slack, team_ids=frozenset({"T_OTHER"})).someone("UHR").external


def test_guests_follow_the_guest_setting(slack):
    assert principal(slack, "UGUEST").email == "guest@partner.example"
    assert people(slack, guests="unknown").someone("UGUEST").external
    assert people(slack, guests="unknown").someone("USINGLE").external


def test_auth_test_is_asked_once(slack):
    slack_people = people(slack)
    slack_people.someone("UHR")
    slack_people.someone("UOUT")
    assert len(slack.calls_to("auth.test")) == 1


def test_a_stranger_in_a_channel_narrows_it_to_public_documents(slack):
    from usecases.ask import Question, resolve_audience

    slack_people = people(slack)

    class Members:
        def members(self, channel, *, max_age=None):
            return [slack_people.someone("UHR"), slack_people.someone("UOUT")], time.time()

    hr = resolve(DIRECTORY_PROVIDER, slack_people.someone("UHR"))
    audience = resolve_audience(Question(text="q", channel="CSHARED", channel_type="channel"), hr,
                                DIRECTORY_PROVIDER, Members(), max_members=50)
    assert not audience.can_see(SALARIES) and audience.can_see(Acl.of(public=True))
    assert Principal.unknown("UOUT") in audience.principals
    assert Someone("UOUT", None, external=True) == slack_people.someone("UOUT")


# -- 4: the membership events ------------------------------------------------------------------------

pytest_redis = pytest.mark.redis


@pytest_redis
@pytest.mark.parametrize("kind", ["member_joined_channel", "member_left_channel"])
def test_membership_events_drop_the_cached_member_list(web, kind):
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"{web.prefix}:cache:members:CHR"
    client.set(key, json.dumps({"ids": ["UHR"], "at": time.time()}), ex=300)
    resp = web.event({"type": kind, "user": "UENG", "channel": "CHR", "channel_type": "C", "team": "T123",
                      "event_ts": f"{time.time():.6f}"})
    assert resp.status_code == 200
    assert not client.exists(key)
    assert web.enqueued == []


def test_the_manifest_subscribes_to_membership_events():
    from pathlib import Path

    manifest = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yml").read_text())
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"member_joined_channel", "member_left_channel"} <= set(events)
