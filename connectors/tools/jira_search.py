"""Live JQL search through a configured Jira source's account, each issue with its synced permissions.

A ``tools:`` entry of kind ``jira_search``::

    - name: tickets-live
      kind: jira_search
      source: tickets          # a ``sources:`` entry of kind jira: its site, account and scope

Functions: ``search(jql, max_results?)`` (at most 50 issues) and ``get_issue(key)``. The JQL is
the model's and runs with the source's service account, which may see more than the asker, so:

* the JQL is confined to what the source covers, the way its sync is: ``(<jql>) AND project in
  (<the source's projects>)`` or ``AND (<the source's JQL filter>)``, its ``ORDER BY`` kept at the
  end; JQL whose parentheses do not balance or whose string does not end is refused before it is
  sent (it could otherwise close the group and ``OR`` its way out of the scope); issues of another
  project are dropped again when they come back;
* every issue returned is a ``ResultItem`` whose ``acl`` is what the source's own
  ``permissions()`` gives it, for an item built the way the source's listing builds it (browse
  holders ∩ security level members, reporter/assignee grants, ``anyone_public``): the same ACL
  the sync writes, so the use case shows it to exactly the people the synced issue is shown to.
  An issue whose permissions cannot be read gets ``Acl()``: visible to nobody.

The source is opened for each call (its permission caches are then this call's: current, and
never shared between calls that run at the same time).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from chatops.access import Acl
from chatops.checks import CheckFailed
from chatops.errors import ConfigError, SourceUnavailable
from chatops.tools import ToolSpec
from connectors.atlassian.adf import adf_text
from connectors.atlassian.http import NotFound, error_message
from connectors.sources.jira.connector import API, JQL_SCOPE, JiraSource
from connectors.tools.base import (Caller, ResultItem, ToolConfigError, ToolDefinition, ToolDeps, ToolFailed,
                                   ToolOutput, describe_call)

SEARCH_PATH = f"{API}/search/jql"
MAX_RESULTS = 50
DEFAULT_RESULTS = 20
MAX_JQL = 2000
MAX_DESCRIPTION = 1500
SEARCH_FIELDS = ["summary", "status", "assignee", "updated", "project"]
ISSUE_FIELDS = SEARCH_FIELDS + ["issuetype", "reporter", "created", "description", "labels"]
READ_ONLY = {"readOnlyHint": True, "destructiveHint": False}
FUNCTIONS = ("search", "get_issue")

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]+-[1-9][0-9]*$")
_ORDER_BY = re.compile(r"order\s+by\b", re.IGNORECASE)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str


def split_jql(jql: str) -> tuple[str, str]:
    """(the condition, the ``ORDER BY ...`` clause or "") of a JQL query. Raises ``ToolFailed``
    for a string that does not end or parentheses that do not balance: such JQL could close the
    group it is put in and reach past the source's scope."""
    depth, i, quote_char = 0, 0, ""
    order_at = -1
    while i < len(jql):
        ch = jql[i]
        if quote_char:
            if ch == "\\":
                i += 2
                continue
            if ch == quote_char:
                quote_char = ""
        elif ch in "\"'":
            quote_char = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ToolFailed("the JQL closes a parenthesis it did not open")
        elif depth == 0 and order_at < 0 and (i == 0 or not (jql[i - 1].isalnum() or jql[i - 1] == "_")) \
                and _ORDER_BY.match(jql, i):
            order_at = i
        i += 1
    if quote_char:
        raise ToolFailed("the JQL has a string that does not end")
    if depth:
        raise ToolFailed("the JQL opens a parenthesis it does not close")
    if order_at < 0:
        return jql.strip(), ""
    return jql[:order_at].strip(), jql[order_at:].strip()


class JiraSearchTool:
    kind: ClassVar[str] = "jira_search"

    def __init__(self, name: str, source_name: str, deps: ToolDeps, *, site: str, scope: str,
                 projects: frozenset[str] | None, source_id: str, label: str):
        self.name = name
        self.source_name = source_name
        self.site = site                      # https://contoso.atlassian.net
        self.scope = scope                    # the JQL the source's sync is limited to
        self.projects = projects              # the source's project keys (None: a JQL filter)
        self.source_id = source_id
        self.label = label
        self._deps = deps

    @classmethod
    def from_config(cls, spec: ToolSpec, deps: ToolDeps) -> "JiraSearchTool":
        try:
            config = _Config.model_validate(spec.kind_settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "source"
            message = {"extra_forbidden": "unknown key", "missing": "required (the name of a jira source)"}.get(
                str(err.get("type")), str(err.get("msg")))
            raise ToolConfigError(where, message) from None
        unknown = [f for f in spec.allow or [] if f not in FUNCTIONS]
        if unknown:
            raise ToolConfigError("allow", f"no function {', '.join(unknown)} (functions: {', '.join(FUNCTIONS)})")
        source = cls._opened(config.source, deps)
        jira = source.config
        if jira.projects:
            scope = f"project in ({', '.join(jira.projects)})"
        else:
            scope = f"({jira.jql})"
        source_id = deps.source_id(config.source) if deps.source_id is not None else source.source_id
        return cls(spec.name, config.source, deps, site=jira.url, scope=scope,
                   projects=frozenset(jira.projects) if jira.projects else None, source_id=source_id,
                   label=spec.label)

    @staticmethod
    def _opened(source_name: str, deps: ToolDeps) -> JiraSource:
        if deps.open_source is None:
            raise ToolConfigError("source", "no configured sources to read through here")
        try:
            source = deps.open_source(source_name)
        except (ConfigError, LookupError, ValueError) as exc:
            raise ToolConfigError("source", f"{source_name!r}: {exc}") from None
        if not isinstance(source, JiraSource):
            raise ToolConfigError("source", f"{source_name!r} is not a source of kind jira (it is a "
                                  f"{type(source).__name__}); jira_search reads through a Jira source")
        return source

    # -- the functions -----------------------------------------------------------------------

    def definitions(self, caller: Caller | None) -> list[ToolDefinition]:
        where = (f"projects {', '.join(sorted(self.projects))}" if self.projects
                 else f"the issues of the filter {self.scope}")
        search = ToolDefinition(
            "search",
            f"Search Jira ({self.site}) live with JQL, within {where}. Returns, for each matching issue "
            f"the asker may see: key, status, summary, assignee and when it was last updated. At most "
            f"{MAX_RESULTS} issues; add ORDER BY to choose which.",
            {"type": "object",
             "properties": {"jql": {"type": "string", "minLength": 1, "maxLength": MAX_JQL,
                                    "description": 'JQL, e.g. status = "In Progress" ORDER BY updated DESC'},
                            "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS,
                                            "default": DEFAULT_RESULTS}},
             "required": ["jql"], "additionalProperties": False},
            dict(READ_ONLY))
        get_issue = ToolDefinition(
            "get_issue",
            f"One Jira issue ({self.site}) by key, live: status, summary, assignee, type, reporter, dates "
            f"and description, if the asker may see it.",
            {"type": "object",
             "properties": {"key": {"type": "string", "pattern": _KEY.pattern, "description": "e.g. OPS-42"}},
             "required": ["key"], "additionalProperties": False},
            dict(READ_ONLY))
        return [search, get_issue]

    def describe_call(self, function: str, arguments: dict[str, Any]) -> str:
        return describe_call(function, arguments)

    def scoped(self, jql: str) -> str:
        """The model's JQL confined to the source's scope (``ToolFailed`` for JQL that could leave it)."""
        if len(jql) > MAX_JQL:
            raise ToolFailed(f"the JQL is longer than {MAX_JQL} characters")
        condition, order = split_jql(jql)
        out = f"({condition}) AND {self.scope}" if condition else self.scope
        return f"{out} {order}" if order else out

    def call(self, function: str, arguments: dict[str, Any], caller: Caller, *, timeout: float) -> ToolOutput:
        if function == "search":
            jql, size = arguments.get("jql"), arguments.get("max_results", DEFAULT_RESULTS)
            extra = sorted(set(arguments) - {"jql", "max_results"})
            if extra:
                raise ToolFailed(f"search takes jql and max_results, not {', '.join(extra)}")
            if not isinstance(jql, str) or not jql.strip():
                raise ToolFailed("search: jql is required (a string)")
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RESULTS:
                raise ToolFailed(f"search: max_results is a whole number from 1 to {MAX_RESULTS}")
            query = self.scoped(jql)
            items, more = self._run(query, size, SEARCH_FIELDS, timeout, detail=False)
            note = "no issues match" if not items else (
                f"more issues match; the first {len(items)} are shown" if more else "")
            return ToolOutput(text=note, items=items, url=f"{self.site}/issues/?jql={quote(query, safe='')}")
        if function == "get_issue":
            key = arguments.get("key")
            if set(arguments) - {"key"}:
                raise ToolFailed("get_issue takes key only")
            if not isinstance(key, str) or not _KEY.match(key):
                raise ToolFailed("get_issue: key is an issue key such as OPS-42")
            key = key.upper()
            items, _ = self._run(f"key = {key} AND {self.scope}", 1, ISSUE_FIELDS, timeout, detail=True)
            if not items:
                return ToolOutput(text=f"{key} is not among the issues this tool can read")
            return ToolOutput(items=items, url=f"{self.site}/browse/{key}")
        raise ToolFailed(f"{self.name} has no function {function!r} (functions: {', '.join(FUNCTIONS)})")

    def _run(self, jql: str, size: int, fields: list[str], timeout: float, *,
             detail: bool) -> tuple[tuple[ResultItem, ...], bool]:
        source = self._open(timeout)
        try:
            resp = source.http.request("POST", SEARCH_PATH,
                                       json_body={"jql": jql, "maxResults": size, "fields": fields})
            if resp.status_code == 400:
                if detail:     # get_issue: Jira's "does not exist" would tell issues outside the scope apart
                    return (), False
                raise ToolFailed(f"Jira refused the JQL: {error_message(resp) or 'no reason given'}")
            body = source.http.json(resp, SEARCH_PATH)
            issues = [i for i in body.get("issues") or [] if isinstance(i, dict) and i.get("id")]
            if self.projects is not None:     # confined by the JQL already; checked again
                issues = [i for i in issues if _project_key(i) in self.projects]
            issues = issues[:size]
            more = bool(body.get("nextPageToken")) and not body.get("isLast", False)
            scope = JQL_SCOPE if self.projects is None else ""
            listed = [(issue, source._item(scope, issue)) for issue in issues]   # as the sync lists it
            acls = source.permissions([item for _, item in listed]) if listed else {}
        except SourceUnavailable as exc:
            raise ToolFailed(str(exc), transient=exc.transient) from None
        except NotFound as exc:
            raise ToolFailed(f"Jira answered 404 to {exc}") from None
        out = []
        for issue, item in listed:
            acl = acls.get(item.doc_id)
            key = str(issue.get("key") or "")
            out.append(ResultItem(text=_text(key, issue.get("fields") or {}, detail),
                                  acl=acl if isinstance(acl, Acl) else Acl(),
                                  source=self.source_id, title=key, url=f"{self.site}/browse/{key}"))
        return tuple(out), more

    def _open(self, timeout: float) -> JiraSource:
        try:
            source = self._opened(self.source_name, self._deps)
        except ToolConfigError as exc:
            raise ToolFailed(f"the source {self.source_name!r} cannot be opened: {exc.message}") from None
        # A call waits no longer than it was given: each request, and throttling (the source's
        # pacer would otherwise wait a sync window's worth).
        budget = max(1.0, float(timeout))
        source.http._timeout = min(source.http._timeout, budget)
        source.http.pacer.max_wait = min(source.http.pacer.max_wait, budget / 2)
        return source

    def check(self) -> str:
        try:
            source = self._open(10.0)
            resp = source.http.request("POST", SEARCH_PATH, json_body={"jql": self.scope, "maxResults": 1,
                                                                         "fields": ["id"]})
            if resp.status_code == 400:
                raise CheckFailed(f"Jira refused the source's scope {self.scope}: {error_message(resp)}",
                                  f"check the source {self.source_name!r} (projects: or jql:)")
            source.http.json(resp, SEARCH_PATH)
        except (ToolFailed, SourceUnavailable, NotFound) as exc:
            raise CheckFailed(f"Jira search at {self.site}: {exc}",
                              f"check the source {self.source_name!r}: its url, email and API token") from None
        return f"JQL search within {self.scope} on {self.site}, through the source {self.source_name!r}"


def _project_key(issue: dict[str, Any]) -> str:
    project = (issue.get("fields") or {}).get("project") or {}
    key = project.get("key") if isinstance(project, dict) else None
    return str(key) if key else str(issue.get("key") or "").rpartition("-")[0]


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("displayName") or value.get("name") or "")
    return str(value or "")


def _when(value: Any) -> str:
    """A Jira time (``2026-11-30T08:05:30.000+0100``) in UTC to the minute."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(timezone.utc) \
            .strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value or "")


def _text(key: str, fields: dict[str, Any], detail: bool) -> str:
    """``KEY · status · summary · assignee · updated`` (and, in detail, the rest of the issue)."""
    line = " · ".join([key, _name(fields.get("status")) or "no status", str(fields.get("summary") or ""),
                       _name(fields.get("assignee")) or "unassigned", f"updated {_when(fields.get('updated'))}"])
    if not detail:
        return line
    facts = [("Type", _name(fields.get("issuetype"))), ("Reporter", _name(fields.get("reporter"))),
             ("Created", _when(fields.get("created"))),
             ("Labels", ", ".join(str(x) for x in fields.get("labels") or []))]
    out = [line, ". ".join(f"{label}: {value}" for label, value in facts if value)]
    description = adf_text(fields.get("description"))
    if description:
        if len(description) > MAX_DESCRIPTION:
            description = description[:MAX_DESCRIPTION].rstrip() + " …"
        out.append(f"Description: {description}")
    return "\n".join(out)
