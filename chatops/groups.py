"""How configuration names groups, and what a group is matched by.

A person's groups are the identity provider's stable ids: Entra object ids
(GUIDs) with Entra, the names written in the directory file with the
directory provider. Never display names: in a default Entra tenant anyone may
create a group and call it ``sre``.

Configuration (``.acl.yml``, an action's ``approvers.groups`` and
``requesters``) may use readable names through the ``groups:`` alias table at
the top of the ``CHATOPS_CONFIG`` file::

    groups:
      sre: 7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91
      hr: 0b7e5d1c-2f4a-4e6b-8c3d-9a1f2e3d4c5b

Every group a configuration names goes through :meth:`GroupNames.resolve`:
an alias becomes its id; with Entra, a name that is neither an alias nor an
object id is a :class:`~chatops.settings.ConfigError` naming it, so a typo or
a missing alias stops the process instead of silently matching nothing (or a
look-alike group).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from chatops.errors import ConfigError

_OBJECT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def is_object_id(value: str) -> bool:
    """An Entra object id: a GUID such as ``7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91``."""
    return bool(_OBJECT_ID.fullmatch(value.strip()))


class GroupNames:
    """The alias table and the identity provider's rule for group names in configuration.

    ``require_object_ids``: the identity provider is Entra, whose people carry object ids only;
    every configured group must then be an alias or an object id.
    """

    def __init__(self, aliases: Mapping[str, str] | None = None, *, require_object_ids: bool = False):
        self.require_object_ids = require_object_ids
        self._aliases: dict[str, str] = {}
        for name, target in (aliases or {}).items():
            where = f"groups.{name}"
            if not isinstance(name, str) or not name.strip():
                raise ConfigError("groups: an alias name is empty")
            if not isinstance(target, str) or not target.strip():
                raise ConfigError(f"{where}: the alias needs a group id")
            if is_object_id(name):
                raise ConfigError(f"{where}: an alias cannot be an object id itself")
            target = target.strip()
            if require_object_ids and not is_object_id(target):
                raise ConfigError(f"{where}: {target!r} is not an Entra object id (a GUID such as "
                                  "7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91)")
            self._aliases[name.strip()] = _canonical(target)
        self._labels = {target: name for name, target in self._aliases.items()}

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def resolve(self, name: object, where: str) -> str:
        """The id a configured group name stands for. ``where`` names the setting in errors."""
        text = str(name).strip() if isinstance(name, (str, int)) else ""
        if not text:
            raise ConfigError(f"{where}: a group name is empty")
        if text in self._aliases:
            return self._aliases[text]
        if is_object_id(text):
            return _canonical(text)
        if self.require_object_ids:
            raise ConfigError(f"{where}: group {text!r} is neither an alias in the 'groups:' table of "
                              "CHATOPS_CONFIG nor an Entra object id; add it there "
                              f"(groups: {{{text}: <object id>}})")
        return text

    def resolve_all(self, names: Iterable[object], where: str) -> tuple[str, ...]:
        out: list[str] = []
        for name in names:
            resolved = self.resolve(name, where)
            if resolved not in out:
                out.append(resolved)
        return tuple(out)

    def resolve_object_ids(self, names: Iterable[object], where: str) -> tuple[str, ...]:
        """Like :meth:`resolve_all`, for a setting only Entra object ids can satisfy whatever the
        identity provider (the console's Microsoft sign-in): each name is an alias of an object id
        or an object id itself, else a ``ConfigError`` naming it."""
        out: list[str] = []
        for name in names:
            text = str(name).strip()
            if not text:
                continue
            if text not in self._aliases and not is_object_id(text):
                raise ConfigError(f"{where}: group {text!r} is neither an alias in the 'groups:' table of "
                                  "CHATOPS_CONFIG nor an Entra object id; add it there "
                                  f"(groups: {{{text}: <object id>}})")
            resolved = self.resolve(text, where)
            if not is_object_id(resolved):
                raise ConfigError(f"{where}: group {text!r} ({resolved}) is not an Entra object id; the console "
                                  "knows people's groups by object id only (a GUID such as "
                                  "7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91)")
            if resolved not in out:
                out.append(resolved)
        return tuple(out)

    def label(self, group_id: str) -> str:
        """A readable name for a group id: its alias where there is one."""
        return self._labels.get(group_id, group_id)


def _canonical(group: str) -> str:
    """Object ids compare lower-cased (Graph returns them so); other names as written."""
    return group.lower() if is_object_id(group) else group
