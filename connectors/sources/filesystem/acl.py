"""``.acl.yml`` at the root of an ingested folder.

A list of rules; each has ``match:`` (a glob relative to the root, ``**``
spans folders) and any of ``groups:``, ``users:`` (emails), ``public: true``.
The last rule that matches a file decides its ACL; a file no rule matches is
visible to nobody. Group names go through the ``groups:`` alias table
(:class:`chatops.groups.GroupNames`): with Entra, each must be an alias or an
object id, or loading the file fails naming the rule and the group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from chatops.access import Acl
from chatops.groups import GroupNames

ACL_FILE = ".acl.yml"
_KEYS = {"match", "groups", "users", "public"}


class AclFileError(Exception):
    pass


def glob_to_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern
    acl: Acl


class AclRules:
    def __init__(self, rules: list[Rule]):
        self.rules = rules

    @classmethod
    def load(cls, root: Path, groups: GroupNames | None = None) -> "AclRules":
        path = Path(root) / ACL_FILE
        if not path.exists():
            return cls([])
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise AclFileError(f"{path} is not valid YAML: {exc}") from None
        return cls.parse(data or [], where=str(path), groups=groups)

    @classmethod
    def parse(cls, data, where: str = ACL_FILE, groups: GroupNames | None = None) -> "AclRules":
        """``groups``: how group names resolve (as written when None)."""
        names = groups or GroupNames()
        if not isinstance(data, list):
            raise AclFileError(f"{where} must be a list of rules (- match: ...)")
        rules = []
        for n, raw in enumerate(data, 1):
            if not isinstance(raw, dict) or not isinstance(raw.get("match"), str):
                raise AclFileError(f"{where}: rule {n} needs 'match: <glob>'")
            unknown = set(raw) - _KEYS
            if unknown:
                raise AclFileError(f"{where}: rule {n} has unknown key(s) {', '.join(sorted(unknown))}")
            groups, users = raw.get("groups") or [], raw.get("users") or []
            if not isinstance(groups, list) or not isinstance(users, list):
                raise AclFileError(f"{where}: rule {n}: 'groups' and 'users' must be lists")
            if not all(isinstance(g, (str, int)) for g in groups) or not all(isinstance(u, str) for u in users):
                raise AclFileError(f"{where}: rule {n}: 'groups' and 'users' must list names and emails")
            if "public" in raw and not isinstance(raw["public"], bool):
                raise AclFileError(f"{where}: rule {n}: 'public' must be true or false")
            pattern = raw["match"].lstrip("/")
            resolved = names.resolve_all(groups, f"{where}: rule {n} ({raw['match']})")
            rules.append(Rule(pattern, glob_to_regex(pattern),
                              Acl.of(resolved, users, raw.get("public", False))))
        return cls(rules)

    def acl_for(self, relative_path: str) -> Acl:
        decided = Acl()  # no rule: visible to nobody
        for rule in self.rules:
            if rule.regex.match(relative_path):
                decided = rule.acl
        return decided
