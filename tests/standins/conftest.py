"""Fixtures: each test gets fresh stand-ins on loopback, stopped afterwards."""

from __future__ import annotations

import pytest

from standins.fake_entra import FakeEntra
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack

ENTRA_USERS = {
    "ana@example.com": {
        "id": "id-ana", "displayName": "Ana Ops",
        "groups": [{"id": f"g-{n}", "displayName": name}
                   for n, name in enumerate(["engineering", "sre", "oncall", "billing", "all-staff"], 1)],
    },
    "guest@partner.example": {
        "id": "id-guest", "displayName": "Guest Person", "upn": "guest_partner.example#EXT#@tenant.onmicrosoft.com",
        "groups": [{"id": "g-guests", "displayName": "guests"}],
    },
    "lonely@example.com": {"id": "id-lonely", "displayName": "No Groups", "groups": []},
}

SLACK_USERS = {
    "UANA": {"id": "UANA", "name": "ana", "profile": {"email": "ana@example.com"}},
    "UBEN": {"id": "UBEN", "name": "ben", "profile": {"email": "ben@example.com"}},
    "UAPP": {"id": "UAPP", "name": "deploybot", "is_bot": True, "profile": {}},
}


@pytest.fixture
def fake_slack():
    with FakeSlack(users=SLACK_USERS, channels={"CFIVE": ["U1", "U2", "U3", "U4", "U5"]},
                   max_page_size=2) as fake:
        yield fake


@pytest.fixture
def fake_entra():
    with FakeEntra(users=ENTRA_USERS, page_size=2) as fake:
        yield fake


@pytest.fixture
def fake_openai():
    with FakeOpenAI(reply="  The answer is 42.  ") as fake:
        yield fake
