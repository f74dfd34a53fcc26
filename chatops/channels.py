"""How the bot behaves in each channel: ``channels:`` in ``CHATOPS_CONFIG``.

Keys are channel ids (``C0123ABCD``), names (``#support`` or ``support``) or ``default``; a
channel's own entry is merged over the default, field by field::

    channels:
      default:
        respond: mentions_and_threads   # or mentions: only @-mentions are questions
        reply: thread                   # or ephemeral: only the asker sees the answer
        sources: all                    # or a list of source names (sources: in this file)
        escalation: {users: [U0123ABCD], usergroup: S0456EFGH}
        actions: true                   # the model may propose actions here
        enabled: true
      "#support":
        sources: [support-library]
        escalation: {usergroup: S0SUPPORT}
      C0SECRET: {enabled: false}

Direct messages take the default (``respond`` and ``reply`` do not apply to them). A source
name that is not configured, or an escalation person or user group that is not a Slack id,
stops the start: ``ChannelPolicies.check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from chatops.errors import ConfigError

_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_USERGROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class Escalation(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    users: list[str] = Field(default_factory=list)     # Slack user ids
    usergroup: str | None = Field(default=None, validation_alias=AliasChoices("usergroup", "group"))  # S...


class ChannelConfig(BaseModel):
    """One entry of ``channels:``; a field left out comes from ``default``."""

    model_config = {"extra": "forbid"}

    respond: Literal["mentions", "mentions_and_threads"] | None = None
    reply: Literal["thread", "ephemeral"] | None = None
    sources: Literal["all"] | list[str] | None = None
    escalation: Escalation | None = None
    actions: bool | None = None
    enabled: bool | None = None
    disabled: bool | None = None          # the same switch, said the other way round

    @field_validator("respond", mode="before")
    @classmethod
    def _respond_words(cls, value: Any) -> Any:
        """``threads`` reads as ``mentions_and_threads``; ``mentions_only`` as ``mentions``."""
        return {"threads": "mentions_and_threads", "mentions_only": "mentions"}.get(value, value)

    @model_validator(mode="after")
    def _one_switch(self) -> "ChannelConfig":
        if self.disabled is not None:
            if self.enabled is not None and self.enabled == self.disabled:
                raise ValueError("enabled and disabled say opposite things")
            self.enabled, self.disabled = not self.disabled, None
        return self


@dataclass(frozen=True)
class ChannelPolicy:
    """What applies in one channel, every field decided."""

    respond: str = "mentions_and_threads"
    reply: str = "thread"
    sources: tuple[str, ...] | None = None      # source names; None: every source
    escalation_users: tuple[str, ...] = ()
    escalation_usergroup: str | None = None
    actions: bool = True
    enabled: bool = True

    @property
    def escalation_mentions(self) -> str:
        """The Slack mentions that reach this channel's escalation people ('' when none)."""
        parts = [f"<!subteam^{self.escalation_usergroup}>"] if self.escalation_usergroup else []
        parts += [f"<@{u}>" for u in self.escalation_users]
        return " ".join(parts)


def _merge(base: ChannelPolicy, entry: ChannelConfig) -> ChannelPolicy:
    esc = entry.escalation
    return ChannelPolicy(
        respond=entry.respond or base.respond,
        reply=entry.reply or base.reply,
        sources=base.sources if entry.sources is None else (None if entry.sources == "all" else tuple(entry.sources)),
        escalation_users=base.escalation_users if esc is None else tuple(esc.users),
        escalation_usergroup=base.escalation_usergroup if esc is None else esc.usergroup,
        actions=base.actions if entry.actions is None else entry.actions,
        enabled=base.enabled if entry.enabled is None else entry.enabled,
    )


class ChannelPolicies:
    """The policy of each channel, by id or by name."""

    def __init__(self, entries: dict[str, ChannelConfig] | None = None):
        entries = dict(entries or {})
        self.default = _merge(ChannelPolicy(), entries.pop("default", ChannelConfig()))
        self._by_id: dict[str, ChannelPolicy] = {}
        self._by_name: dict[str, ChannelPolicy] = {}
        for key, entry in entries.items():
            policy = _merge(self.default, entry)
            if _CHANNEL_ID.match(key):
                self._by_id[key] = policy
            else:
                self._by_name[key.lstrip("#").lower()] = policy

    @property
    def needs_names(self) -> bool:
        """Some entries are by name: the channel's name must be looked up."""
        return bool(self._by_name)

    def for_channel(self, channel_id: str | None, name: str | None = None) -> ChannelPolicy:
        if channel_id and channel_id in self._by_id:
            return self._by_id[channel_id]
        if name and name.lstrip("#").lower() in self._by_name:
            return self._by_name[name.lstrip("#").lower()]
        return self.default

    def all(self) -> Iterable[tuple[str, ChannelPolicy]]:
        yield "default", self.default
        yield from self._by_id.items()
        yield from ((f"#{n}", p) for n, p in self._by_name.items())

    def check(self, source_names: Iterable[str]) -> "ChannelPolicies":
        """Stop the start on a source that is not configured or an escalation that is not a Slack id."""
        known = set(source_names)
        for key, policy in self.all():
            for name in policy.sources or ():
                if name not in known:
                    raise ConfigError(f"channels.{key}.sources: no source named {name!r} "
                                      f"(configured: {', '.join(sorted(known)) or 'none'})")
            for user in policy.escalation_users:
                if not _USER.match(user):
                    raise ConfigError(f"channels.{key}.escalation.users: {user!r} is not a Slack user id "
                                      "(U... or W...; copy it from the person's profile)")
            group = policy.escalation_usergroup
            if group is not None and not _USERGROUP.match(group):
                raise ConfigError(f"channels.{key}.escalation.usergroup: {group!r} is not a Slack user group id "
                                  "(S...; usergroups.list shows them)")
        return self
