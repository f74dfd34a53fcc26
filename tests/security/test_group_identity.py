"""Finding 1: a person could grant themselves any group by naming a group they created.

In a default Entra tenant anyone may create a group and name it ``sre`` (or after the
real group's object id). People's groups are object ids only; configuration names
groups through the ``groups:`` alias table. Real msal + Graph client against the
loopback Entra, the real ACL file parser and the real catalogue.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from chatops.access import Audience
from chatops.catalogue import Catalogue
from chatops.errors import ConfigError
from chatops.groups import GroupNames
from chatops_app.settings import load_settings
from connectors.actions.base import ConnectorDeps
from connectors.actions.registry import connector_builder
from connectors.identity.directory import DirectoryProvider
from connectors.identity.entra import EntraProvider
from connectors.sources.filesystem.acl import AclRules
from standins.fake_entra import FakeEntra

SRE_ID = "7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91"
HR_ID = "0b7e5d1c-2f4a-4e6b-8c3d-9a1f2e3d4c5b"
MALLORY_OWN = "11111111-2222-4333-8444-555555555555"
MALLORY_OTHER = "99999999-8888-4777-8666-555555555555"

USERS = {
    "ana@corp.example": {"id": "id-ana", "displayName": "Ana",
                         "groups": [{"id": SRE_ID, "displayName": "Site Reliability"}]},
    # Mallory created two groups herself: one called "sre", one called after the real group's id.
    "mallory@corp.example": {"id": "id-mallory", "displayName": "Mallory",
                             "groups": [{"id": MALLORY_OWN, "displayName": "sre"},
                                        {"id": MALLORY_OTHER, "displayName": SRE_ID}]},
}
ALIASES = GroupNames({"sre": SRE_ID, "hr": HR_ID}, require_object_ids=True)


@pytest.fixture
def entra():
    with FakeEntra(users=USERS) as fake:
        yield EntraProvider(fake.tenant_id, fake.client_id, fake.client_secret,
                            http_client=fake.session(), sleep=lambda s: None)


def test_a_self_made_group_named_like_a_real_one_grants_nothing(entra):
    ana, mallory = entra.by_email("ana@corp.example"), entra.by_email("mallory@corp.example")
    assert mallory.groups == {MALLORY_OWN, MALLORY_OTHER}       # ids only, no display names
    acl = AclRules.parse([{"match": "runbooks/**", "groups": ["sre"]}], groups=ALIASES).acl_for("runbooks/a.md")
    assert acl.groups == {SRE_ID}
    assert ana.can_see(acl)
    assert not mallory.can_see(acl)
    assert not Audience.of(mallory).can_see(acl)


def test_a_self_made_group_cannot_approve_or_request(entra):
    raw = [{"name": "restart", "kind": "webhook", "description": "Restart.", "url": "https://hooks.example/r",
            "secret_env": "HOOK_SECRET", "approvers": {"groups": ["sre"]}, "requesters": ["sre"]}]
    deps = ConnectorDeps(http=requests.Session(), secret=lambda name: "s3cr3t-value")
    catalogue = Catalogue.load(raw, connector_builder(deps), groups=ALIASES)
    spec = catalogue.specs["restart"]
    assert spec.requesters == [SRE_ID] and spec.approvers.groups == [SRE_ID]
    ana, mallory = entra.by_email("ana@corp.example"), entra.by_email("mallory@corp.example")
    assert catalogue.may_request(spec, ana) and not catalogue.may_request(spec, mallory)
    policy = catalogue.policy("restart", {})
    assert set(policy.groups) & ana.groups and not set(policy.groups) & mallory.groups
    assert catalogue.describe(policy) == "group sre"   # people still read the alias


@pytest.mark.parametrize("where", ["acl", "approvers", "requesters"])
def test_with_entra_a_group_name_that_is_no_alias_stops_the_start(where):
    strict = GroupNames({"sre": SRE_ID}, require_object_ids=True)
    deps = ConnectorDeps(http=requests.Session(), secret=lambda name: "s3cr3t-value")
    action = {"name": "restart", "kind": "webhook", "description": "Restart.", "url": "https://hooks.example/r",
              "secret_env": "HOOK_SECRET"}
    with pytest.raises(ConfigError, match="'oncall'"):
        if where == "acl":
            AclRules.parse([{"match": "**", "groups": ["sre", "oncall"]}], groups=strict)
        elif where == "approvers":
            Catalogue.load([{**action, "approvers": {"groups": ["oncall"]}}], connector_builder(deps), groups=strict)
        else:
            Catalogue.load([{**action, "requesters": ["oncall"]}], connector_builder(deps), groups=strict)


def test_object_ids_are_accepted_as_written_and_compared_lower_case():
    strict = GroupNames({}, require_object_ids=True)
    assert strict.resolve(SRE_ID.upper(), "acl") == SRE_ID


def test_alias_table_errors_name_the_alias(tmp_path: Path):
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"groups": {"sre": "Site Reliability"}}))
    env = dict(CHATOPS_CONFIG=str(config), ENTRA_TENANT_ID="t", ENTRA_CLIENT_ID="c",
               CHATOPS_IDENTITY_PROVIDER="entra")
    with pytest.raises(ConfigError, match=r"groups\.sre"):
        load_settings(**env)
    config.write_text(yaml.safe_dump({"groups": {"sre": SRE_ID}}))
    assert load_settings(**env).group_names.resolve("sre", "acl") == SRE_ID


def test_the_directory_provider_keeps_matching_groups_as_written():
    plain = DirectoryProvider([{"email": "ana@corp.example", "groups": ["sre"]}])
    acl = AclRules.parse([{"match": "**", "groups": ["sre"]}]).acl_for("a.md")
    assert plain.by_email("ana@corp.example").can_see(acl)
    # With an alias table both sides resolve through it, so they still meet.
    aliases = GroupNames({"sre": SRE_ID})
    aliased = DirectoryProvider([{"email": "ana@corp.example", "groups": ["sre"]}], groups=aliases)
    acl = AclRules.parse([{"match": "**", "groups": ["sre"]}], groups=aliases).acl_for("a.md")
    assert aliased.by_email("ana@corp.example").groups == {SRE_ID} and aliased.by_email("ana@corp.example").can_see(acl)


def test_a_changed_directory_or_alias_table_is_never_answered_from_the_old_cache():
    import uuid

    from connectors.identity.cached import CachedProvider
    from tests.security.conftest import redis_or_skip

    client = redis_or_skip()
    prefix = f"chatops-groups-{uuid.uuid4().hex[:8]}"
    users = [{"email": "ana@corp.example", "groups": ["sre"]}]
    try:
        before = CachedProvider(DirectoryProvider(users), client, prefix=prefix).by_email("ana@corp.example")
        after = CachedProvider(DirectoryProvider(users, groups=GroupNames({"sre": SRE_ID})), client,
                               prefix=prefix).by_email("ana@corp.example")
        assert before.groups == {"sre"} and after.groups == {SRE_ID}
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
