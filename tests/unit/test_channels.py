"""Per-channel settings (chatops/channels.py): merging over the default, lookups by id or name,
and the start-up checks."""

from __future__ import annotations

import pytest

from chatops.channels import ChannelConfig, ChannelPolicies
from chatops.errors import ConfigError


def policies(raw: dict) -> ChannelPolicies:
    return ChannelPolicies({k: ChannelConfig.model_validate(v) for k, v in raw.items()})


def test_an_entry_is_merged_over_the_default_field_by_field():
    p = policies({"default": {"reply": "ephemeral", "escalation": {"users": ["U0ONCALL"]}, "actions": False},
                  "#support": {"sources": ["support-library"], "escalation": {"usergroup": "S0SUPPORT"}},
                  "C0SECRET1": {"disabled": True}, "CTHREADS": {"respond": "mentions_only"}})
    support = p.for_channel("C0SUPPORT", "support")
    assert support.reply == "ephemeral" and support.actions is False and support.sources == ("support-library",)
    assert support.escalation_usergroup == "S0SUPPORT" and support.escalation_users == ()
    assert support.escalation_mentions == "<!subteam^S0SUPPORT>"
    assert p.for_channel("C0SECRET1").enabled is False
    assert p.for_channel("CTHREADS").respond == "mentions"
    other = p.for_channel("C0OTHER", "random")
    assert other == p.default and other.escalation_mentions == "<@U0ONCALL>" and other.sources is None
    assert p.needs_names and not policies({"C0ONE": {"actions": False}}).needs_names


def test_misnamed_sources_and_escalations_stop_the_start():
    with pytest.raises(ConfigError, match=r"channels.#support.sources: no source named 'wiki'"):
        policies({"#support": {"sources": ["wiki"]}}).check(["handbook"])
    with pytest.raises(ConfigError, match="not a Slack user id"):
        policies({"default": {"escalation": {"users": ["jane.doe"]}}}).check([])
    with pytest.raises(ConfigError, match="not a Slack user group id"):
        policies({"default": {"escalation": {"group": "@oncall"}}}).check([])
    assert policies({"#support": {"sources": ["handbook"]}}).check(["handbook"])
    with pytest.raises(ValueError):
        ChannelConfig.model_validate({"enabled": True, "disabled": True})
    with pytest.raises(ValueError):
        ChannelConfig.model_validate({"reply": "dm"})
