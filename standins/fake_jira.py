"""A loopback Jira Cloud (REST API v3, HTTP Basic ``email:api_token``): the write side an action
connector uses and the read side a document-source connector needs, served by ONE server.

Write side: ``POST /rest/api/3/issue`` validates like Jira does (answers ``400 {"errorMessages":
[...], "errors": {field: message}}``): the project must exist, the summary must be there and not
blank, the issue type must be known, labels may not contain spaces and the description must be an
Atlassian Document Format doc. Created issues get incrementing keys per project (``OPS-1``, ...)
and are kept in ``issues`` (the ``fields`` as received); in a project made with ``add_project``
they also become readable issues. ``fail_next``/``hang_next`` script outages.

Read side (``add_user``/``add_group``/``add_project``/``add_issue``/... build the site):

* ``/myself`` (its ``timeZone`` is the zone JQL dates are read in), ``/project/search`` (a key
  not found is left out of ``values``) and ``/project/{key}`` (404 ``No project could be found
  with key 'X'.``, the same for a project the account may not browse),
  ``/project/{key}/permissionscheme`` + ``/permissionscheme/{id}/permission`` (BROWSE_PROJECTS
  grants among others a connector must ignore), ``/project/{key}/role[/{id}]``
  (roles are site-wide in Jira Cloud: one id per role name, actors per project),
  ``/project/{key}/issuesecuritylevelscheme``, ``/issuesecurityschemes/level/member`` (its filters
  are *inclusive*: ``schemeId`` and ``levelId`` together give the union) and the older
  ``/issuesecurityschemes/{id}/members``; these configuration reads need an admin (``admin=False``
  answers them the way Jira answers a non-admin);
* the enhanced JQL search ``/search/jql`` (GET and POST): ``nextPageToken`` paging (absent on the
  last page), ids only unless ``fields`` says otherwise, unbounded or unparsable JQL refused with
  400; the removed ``/search`` answers 410 as Jira does now. JQL: ``project``, ``key``, ``status``
  with ``= != in (..) not in (..)``; ``updated``/``created`` with ``> >= < <= =`` and
  ``"yyyy/MM/dd HH:mm"``, ``"yyyy-MM-dd HH:mm"``, a date alone or ``-15m``/``-2h``/``-1d``/``-1w``,
  read in the service account's time zone; clauses joined by ``AND`` (and grouped in parentheses);
  ``ORDER BY updated|created|key [ASC|DESC], ...``. Anything else (``OR``, functions, other fields)
  is a 400;
* ``/issue/{key}`` and ``/issue/{key}/comment``; search results embed only the first
  ``embedded_comments`` comments (``total`` tells the rest is there to be paged);
* ``POST /issue/bulkfetch`` as Jira answers it: an issue that does not exist or that the account
  may not see is in neither ``issues`` nor ``issueErrors``; ``issueErrors`` holds only what Jira
  could not return for a retriable reason, as ``{"id", "errorMessage"}`` (``fail_in_bulk(key)``
  scripts one);
* ``/group/bulk``, ``/group/member`` (pages of at most 50), ``/user/bulk`` (``maxResults`` defaults
  to 10), ``/user/email`` (only with ``email_api=True``; a user's API token gets Jira's 401 there);
* users with ``hidden=True`` come without ``emailAddress``; times are rendered in the service
  account's time zone (``2026-11-30T08:00:00.000+0100``);
* everything is visible to the service account unless ``enforce_permissions=True``: then projects
  it may not browse and issues whose security level leaves it out are hidden (JQL naming such a
  project is a 400, the issue itself a 404), as for a real account;
* ``throttle(n, retry_after)`` answers the next n requests 429 with ``Retry-After`` and the
  ``X-RateLimit-*``/``RateLimit-Reason`` headers; ``requests_by_path`` counts ``"GET /rest/api/3/..."``
  by templated path; ``clock``/``advance(minutes)`` drive every timestamp.

Changes Jira records (edit, comment, security level, status, a new link, a move) bump ``updated`` to
``clock()``; membership, role, grant and level-member changes do not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as _tz
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from standins._atlassian import AtlassianSite, FakeUser
from standins._loopback import LoopbackServer, Reply, Request

ISSUE_TYPES = ("Task", "Bug", "Story", "Incident")
SERVICE_ACCOUNT_ID = "712020:0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5"
UNAUTHORIZED = "Client must be authenticated to access this resource."
NOT_ADMIN = "You are not authorized to perform this action. Administrator privileges are required."
ISSUE_GONE = "Issue does not exist or you do not have permission to see it."
SEARCH_GONE = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
               "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
STATUS_CATEGORIES = {"new": (2, "blue-gray", "To Do"), "indeterminate": (4, "yellow", "In Progress"),
                     "done": (3, "green", "Done")}
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"), "In Review": ("10002", "indeterminate"),
            "Done": ("10001", "done")}
ISSUE_TYPE_IDS = {"Task": "10001", "Bug": "10002", "Story": "10003", "Incident": "10004"}
LINK_TYPES = {  # name -> (id, outward, inward)
    "Blocks": ("10000", "blocks", "is blocked by"),
    "Cloners": ("10001", "clones", "is cloned by"),
    "Duplicate": ("10002", "duplicates", "is duplicated by"),
    "Relates": ("10003", "relates to", "relates to"),
}
FIELDS = ("summary", "description", "status", "assignee", "reporter", "issuelinks", "security", "updated",
          "created", "project", "issuetype", "labels", "comment")
NAVIGABLE = tuple(f for f in FIELDS if f != "comment")
HOLDER_ARITY = {"group": (1,), "role": (1,), "projectRole": (1,), "user": (1,), "anyone": (0,),
                "applicationRole": (0, 1), "reporter": (0,), "assignee": (0,), "projectLead": (0,)}
_JQL_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|'
                        r'(>=|<=|!=|=|>|<|\(|\)|,)|([^\s()=,<>!"\']+))')
_RELATIVE = re.compile(r"([-+]?)(\d+)([mhdw])")


# -- small helpers -------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(_tz.utc)


def _one(q: list[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    values = [v for k, v in q if k == name]
    return values[-1] if values else default


def _many(q: list[tuple[str, str]], name: str) -> list[str]:
    """A multi-valued parameter: repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    return [part.strip() for k, v in q if k == name for part in v.split(",") if part.strip()]


def _error(*messages: str, **errors: str) -> dict:
    return {"errorMessages": list(messages), "errors": errors}


def _int(q, name: str, default: int) -> int:
    raw = _one(q, name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise ValueError(f"The '{name}' parameter must be a number, not '{raw}'.") from None
    if value < 0:
        raise ValueError(f"The '{name}' parameter must not be negative.")
    return value


def adf_from_text(text: str | None) -> dict | None:
    """Plain text as an Atlassian Document Format doc: blank-line-separated blocks; in a block,
    lines starting ``"- "`` are bullet list items, other lines a paragraph (line breaks as
    ``hardBreak``). None or blank text is no document at all (Jira's ``description: null``)."""
    if text is None or not text.strip():
        return None

    def paragraph(lines: list[str]) -> dict:
        nodes: list[dict] = []
        for i, line in enumerate(lines):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        return {"type": "paragraph", "content": nodes}

    content: list[dict] = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip("\n")):
        lines, items = [], []
        for line in block.split("\n"):
            if line.startswith("- "):
                if lines:
                    content.append(paragraph(lines))
                    lines = []
                items.append(line[2:])
            else:
                if items:
                    content.append(_bullets(items))
                    items = []
                lines.append(line)
        if lines and any(line.strip() for line in lines):
            content.append(paragraph(lines))
        if items:
            content.append(_bullets(items))
    return {"type": "doc", "version": 1, "content": content}


def _bullets(items: list[str]) -> dict:
    def item(text: str) -> dict:
        return {"type": "listItem", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}] if text else []}]}
    return {"type": "bulletList", "content": [item(text) for text in items]}


def _encode(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(state, dict):
        raise ValueError("not a page token")
    return state


def _template(match: re.Match) -> str:
    """The path with its named parts as {name}: the key under which requests_by_path counts it."""
    path, out, pos = match.string, [], 0
    for name in sorted(match.re.groupindex, key=match.start):
        out += [path[pos:match.start(name)], "{" + name + "}"]
        pos = match.end(name)
    return "".join(out) + path[pos:]


class JqlError(ValueError):
    """A JQL query Jira would refuse; the message is the one it answers in ``errorMessages``."""


# -- the site's state ----------------------------------------------------------------------------

@dataclass
class FakeLevel:
    id: str
    name: str
    members: list[tuple[int, tuple]] = field(default_factory=list)    # (member id, holder spec)


@dataclass
class FakeProject:
    id: str
    key: str
    name: str
    lead: str | None
    permission_scheme_id: int
    browse: list[tuple] = field(default_factory=list)
    grants: list[tuple[int, str, tuple]] = field(default_factory=list)    # (grant id, permission, holder)
    security_scheme_id: int | None = None
    levels: list[FakeLevel] = field(default_factory=list)
    role_actors: dict[int, list[tuple[int, str, str]]] = field(default_factory=dict)  # role -> (actor id, kind, ref)


@dataclass
class FakeComment:
    id: str
    author: str | None
    body: dict | None
    created: datetime
    updated: datetime
    visibility: dict | None = None      # {"type": "role"|"group", "value": ..., "identifier": ...}


@dataclass
class FakeIssue:
    id: str
    key: str
    project_key: str
    summary: str
    description: dict | None
    status: str
    reporter: str | None
    assignee: str | None
    security: str | None          # level id
    issuetype: str
    labels: list[str]
    created: datetime
    updated: datetime
    comments: list[FakeComment] = field(default_factory=list)

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])


class FakeJira(AtlassianSite, LoopbackServer):
    def __init__(self, *, email: str = "chatops-bot@example.com", token: str = "jira-api-token-1",
                 projects=("OPS",), hang_seconds: float = 30.0, timezone: str = "Europe/Berlin",
                 account_id: str = SERVICE_ACCOUNT_ID, display_name: str = "ChatOps Bot",
                 enforce_permissions: bool = False, admin: bool = True, email_api: bool = False,
                 embedded_comments: int = 5, search_page_max: int = 100):
        super().__init__()
        self.email = email
        self.token = token
        self.projects = set(projects)      # keys POST /issue accepts (add_project adds its key too)
        self.hang_seconds = hang_seconds
        self.timezone, self.zone = timezone, ZoneInfo(timezone)
        self.account_id = account_id
        self.enforce_permissions, self.admin, self.email_api = enforce_permissions, admin, email_api
        self.embedded_comments, self.search_page_max = embedded_comments, search_page_max
        self.issues: list[dict] = []       # fields of issues created through POST /issue
        self.requests: list[Request] = []  # everything that arrived
        self.requests_by_path: Counter[str] = Counter()
        self.clock = _now                  # tests replace it, or advance()
        self.users: dict[str, FakeUser] = {account_id: FakeUser(account_id, email, False, display_name)}
        self.groups: dict[str, str] = {}                 # group id -> name
        self.members: dict[str, list[str]] = {}          # group id -> account ids
        self.roles: dict[int, str] = {}                  # site-wide project roles: id -> name
        self.project_by_key: dict[str, FakeProject] = {}
        self.by_key: dict[str, FakeIssue] = {}           # the readable issues
        self.links: list[tuple[str, str, str, str]] = []  # (link id, type name, outward key, inward key)
        self._script: list[tuple] = []
        self._throttle: list[int] = []
        self._bulk_failures: Counter[str] = Counter()   # issue id -> bulkfetches that answer an IssueError
        self._ids = itertools.count(10001)               # issue ids
        self._numbers: dict[str, itertools.count] = {}   # issue numbers per project key
        self._project_ids = itertools.count(10000)
        self._scheme_ids = itertools.count(10000)
        self._grant_ids = itertools.count(10100)
        self._security_ids = itertools.count(10200)
        self._level_ids = itertools.count(10300)
        self._member_ids = itertools.count(10400)
        self._role_ids = itertools.count(10002)
        self._actor_ids = itertools.count(10500)
        self._comment_ids = itertools.count(10000)
        self._link_ids = itertools.count(10700)
        self._lock = threading.RLock()

    # -- scripted faults (time, people and 429s: standins/_atlassian.py) ------------------------

    def fail_next(self, status: int, count: int = 1, body=None, headers: dict | None = None) -> None:
        with self._lock:
            self._script.extend([(status, body, headers or {})] * count)

    def fail_in_bulk(self, key: str, count: int = 1) -> None:
        """The next ``count`` bulk fetches asking for this issue answer it in ``issueErrors`` (a
        retriable error) instead of ``issues``; reading it on its own still works."""
        with self._lock:
            self._bulk_failures[self.by_key[key].id] += count

    def hang_next(self, count: int = 1) -> None:
        with self._lock:
            self._script.extend([("hang", None, {})] * count)

    # -- building the site: projects, roles, grants, security levels --------------------------------

    def add_project(self, key: str, name: str | None = None, *, lead: str | None = None, browse=(),
                    security_levels: dict | None = None) -> str:
        """A project and its own permission scheme; ``browse`` holders get BROWSE_PROJECTS (and
        CREATE_ISSUES/ADD_COMMENTS, noise a connector must ignore). ``security_levels`` maps level
        names to their members (the same holder specs): the project's issue security scheme."""
        with self._lock:
            assert key not in self.project_by_key, f"project {key} exists"
            assert lead is None or lead in self.users, f"no user {lead}"
            project = FakeProject(str(next(self._project_ids)), key, name or key, lead, next(self._scheme_ids))
            self.project_by_key[key] = project
            self.projects.add(key)
            self.set_browse(key, browse)
            if security_levels is not None:
                project.security_scheme_id = next(self._security_ids)
                for level_name, holders in security_levels.items():
                    project.levels.append(FakeLevel(str(next(self._level_ids)), level_name))
                    self.set_level_members(key, level_name, holders)
            return project.id

    def set_browse(self, project_key: str, holders) -> None:
        """Who may browse the project: ("group", group_id) | ("role", role_id) | ("user", account_id)
        | ("anyone",) | ("applicationRole", "jira-software") | ("applicationRole",) | ("reporter",)
        | ("assignee",) | ("projectLead",). The grants get new ids; no issue changes."""
        with self._lock:
            project = self._project(project_key)
            project.browse = [self._holder_spec(h) for h in holders]
            project.grants = [(next(self._grant_ids), permission, h) for h in project.browse
                              for permission in ("BROWSE_PROJECTS", "CREATE_ISSUES", "ADD_COMMENTS")]
            project.grants.append((next(self._grant_ids), "ADMINISTER_PROJECTS", ("projectLead",)))

    def add_role(self, project_key: str, role_name: str, users=(), groups=()) -> int:
        """A project role (site-wide in Jira Cloud: the same name is the same id in every project)
        and its actors in this project."""
        with self._lock:
            self._project(project_key)
            role_id = next((rid for rid, n in self.roles.items() if n == role_name), None)
            if role_id is None:
                role_id = next(self._role_ids)
                self.roles[role_id] = role_name
            self.set_role_actors(project_key, role_id, users, groups)
            return role_id

    def set_role_actors(self, project_key: str, role_id: int, users=(), groups=()) -> None:
        """Replace the role's actors in the project; no issue's ``updated`` changes."""
        with self._lock:
            project = self._project(project_key)
            assert role_id in self.roles, f"no role {role_id}"
            assert all(u in self.users for u in users) and all(g in self.groups for g in groups), "unknown actor"
            project.role_actors[role_id] = ([(next(self._actor_ids), "user", u) for u in users]
                                             + [(next(self._actor_ids), "group", g) for g in groups])

    def set_level_members(self, project_key: str, level_name: str, holders) -> None:
        """Replace who may see issues at that security level (holder specs as for ``set_browse``)."""
        with self._lock:
            level = self._level(self._project(project_key), level_name)
            level.members = [(next(self._member_ids), self._holder_spec(h)) for h in holders]

    # -- building the site: issues -----------------------------------------------------------------

    def add_issue(self, project_key: str, summary: str, description_text: str | None = None, *, comments=(),
                  status: str = "To Do", reporter: str | None = None, assignee: str | None = None,
                  security: str | None = None, links=(), issuetype: str = "Task", labels=()) -> str:
        """An issue created at ``clock()``; ``comments`` are texts or (author account id, text);
        ``links`` are (link type or its outward verb, other issue key): ("blocks", "OPS-1") makes
        this issue block OPS-1 (whose ``updated`` moves, as Jira records the link there too)."""
        with self._lock:
            now = self.clock()
            issue = self._new_issue(project_key, summary, adf_from_text(description_text), now, status=status,
                                    reporter=reporter, assignee=assignee, issuetype=issuetype, labels=list(labels))
            if security is not None:
                issue.security = self._level(self._project(project_key), security).id
            for entry in comments:
                author, text = (self.account_id, entry) if isinstance(entry, str) else entry
                issue.comments.append(FakeComment(str(next(self._comment_ids)), author, adf_from_text(text), now, now))
            for link_type, other in links:
                self._link(issue.key, link_type, other)
            return issue.key

    def _new_issue(self, project_key: str, summary: str, description, now: datetime, *, status="To Do",
                   reporter=None, assignee=None, issuetype="Task", labels=(), issue_id=None, key=None) -> FakeIssue:
        project = self._project(project_key)
        for who in (reporter, assignee):
            assert who is None or who in self.users, f"no user {who}"
        if key is None:
            key = f"{project.key}-{next(self._numbers.setdefault(project.key, itertools.count(1)))}"
        issue = FakeIssue(issue_id or str(next(self._ids)), key, project.key, summary, description, status,
                          reporter or self.account_id, assignee, None, issuetype, list(labels), now, now)
        self.by_key[key] = issue
        return issue

    def _link(self, key: str, link_type: str, other: str) -> None:
        name = next((n for n, (_, outward, _i) in LINK_TYPES.items() if link_type in (n, outward)), None)
        assert name is not None, f"unknown link type {link_type}"
        assert other in self.by_key, f"no issue {other}"
        self.links.append((str(next(self._link_ids)), name, key, other))
        self.by_key[other].updated = self.clock()

    def edit(self, key: str, summary: str | None = None, description_text: str | None = None) -> None:
        with self._lock:
            issue = self.by_key[key]
            if summary is not None:
                issue.summary = summary
            if description_text is not None:
                issue.description = adf_from_text(description_text)
            issue.updated = self.clock()

    def comment(self, key: str, text: str, author: str | None = None, *, visible_to: tuple[str, str] | None = None) -> str:
        """A comment; ``visible_to``: ("role", role name) or ("group", group id) — Jira's comment
        visibility, which limits the comment below the issue's own readers."""
        with self._lock:
            issue, now = self.by_key[key], self.clock()
            assert author is None or author in self.users, f"no user {author}"
            visibility = None
            if visible_to is not None:
                kind, ref = visible_to
                visibility = ({"type": "role", "value": ref, "identifier": ref} if kind == "role" else
                              {"type": "group", "value": self.groups[ref], "identifier": ref})
            comment = FakeComment(str(next(self._comment_ids)), author or self.account_id, adf_from_text(text),
                                  now, now, visibility)
            issue.comments.append(comment)
            issue.updated = now
            return comment.id

    def set_security(self, key: str, level_name: str | None) -> None:
        """Set or clear the issue's security level: Jira records it, so ``updated`` moves."""
        with self._lock:
            issue = self.by_key[key]
            issue.security = None if level_name is None else self._level(self._project(issue.project_key),
                                                                          level_name).id
            issue.updated = self.clock()

    def set_status(self, key: str, status: str) -> None:
        with self._lock:
            issue = self.by_key[key]
            issue.status, issue.updated = status, self.clock()

    def move(self, key: str, project_key: str) -> str:
        """Jira's *Move*: the issue keeps its id, takes the next key of the other project (its
        security level, which belongs to the old project's scheme, is cleared) and ``updated``
        moves. Returns the new key."""
        with self._lock:
            issue, target = self.by_key.pop(key), self._project(project_key)
            number = next(self._numbers.setdefault(target.key, itertools.count(1)))
            issue.key, issue.project_key, issue.security = f"{target.key}-{number}", target.key, None
            issue.updated = self.clock()
            self.by_key[issue.key] = issue
            self.links = [(lid, name, issue.key if out == key else out, issue.key if inw == key else inw)
                          for lid, name, out, inw in self.links]
            return issue.key

    def delete(self, key: str) -> None:
        """Gone: 404 from then on, out of search, and out of the other issues' links."""
        with self._lock:
            del self.by_key[key]
            self.links = [link for link in self.links if key not in (link[2], link[3])]

    def _project(self, key: str) -> FakeProject:
        project = self.project_by_key.get(key)
        assert project is not None, f"no project {key}"
        return project

    def _level(self, project: FakeProject, name: str) -> FakeLevel:
        level = next((lv for lv in project.levels if lv.name == name), None)
        assert level is not None, f"project {project.key} has no security level {name}"
        return level

    def _holder_spec(self, holder) -> tuple:
        spec = tuple(holder)
        assert spec and spec[0] in HOLDER_ARITY and len(spec) - 1 in HOLDER_ARITY[spec[0]], f"bad holder {holder}"
        if spec[0] == "projectRole":
            spec = ("role",) + spec[1:]
        if spec[0] == "role":
            spec = ("role", int(spec[1]))
            assert spec[1] in self.roles, f"no role {spec[1]}"
        if spec[0] == "group":
            assert spec[1] in self.groups, f"no group {spec[1]}"
        return spec

    # -- dispatch --------------------------------------------------------------------------------

    ROUTES = [(re.compile(pattern), methods) for pattern, methods in [
        (r"/rest/api/3/issue", {"POST": "_create_issue"}),
        (r"/rest/api/3/myself", {"GET": "_myself"}),
        (r"/rest/api/3/project/search", {"GET": "_project_search"}),
        (r"/rest/api/3/project/(?P<project>[^/]+)", {"GET": "_project_get"}),
        (r"/rest/api/3/project/(?P<project>[^/]+)/permissionscheme", {"GET": "_project_permission_scheme"}),
        (r"/rest/api/3/permissionscheme/(?P<schemeId>\d+)/permission", {"GET": "_grants"}),
        (r"/rest/api/3/project/(?P<project>[^/]+)/role", {"GET": "_project_roles"}),
        (r"/rest/api/3/project/(?P<project>[^/]+)/role/(?P<roleId>\d+)", {"GET": "_project_role"}),
        (r"/rest/api/3/project/(?P<project>[^/]+)/issuesecuritylevelscheme", {"GET": "_security_scheme"}),
        (r"/rest/api/3/issuesecurityschemes/level/member", {"GET": "_level_members"}),
        (r"/rest/api/3/issuesecurityschemes/(?P<schemeId>\d+)/members", {"GET": "_scheme_members"}),
        (r"/rest/api/3/search/jql", {"GET": "_search", "POST": "_search"}),
        (r"/rest/api/3/search", {"GET": "_search_removed", "POST": "_search_removed"}),
        (r"/rest/api/3/issue/bulkfetch", {"POST": "_bulk_fetch"}),
        (r"/rest/api/3/issue/(?P<issue>[^/]+)", {"GET": "_issue_get"}),
        (r"/rest/api/3/issue/(?P<issue>[^/]+)/comment", {"GET": "_comments"}),
        (r"/rest/api/3/group/bulk", {"GET": "_groups"}),
        (r"/rest/api/3/group/member", {"GET": "_group_members"}),
        (r"/rest/api/3/user/bulk", {"GET": "_users_bulk"}),
        (r"/rest/api/3/user/email", {"GET": "_user_email"}),
    ]]

    def handle(self, request: Request) -> Reply:
        q = request.pairs
        match, methods = next(((m, ms) for rx, ms in self.ROUTES if (m := rx.fullmatch(request.path))), (None, None))
        with self._lock:
            self.requests.append(request)
            self.requests_by_path[f"{request.method} {_template(match) if match else request.path}"] += 1
            step = self._script.pop(0) if self._script else None
            retry_after = self._throttle.pop(0) if step is None and self._throttle else None
        if step:
            status, body, headers = step
            if status == "hang":
                self.stopping.wait(self.hang_seconds)
                return Reply(504, "too late")
            return Reply(status, body if body is not None else _error(f"scripted {status}"), headers)
        if retry_after is not None:
            return self._too_many(retry_after)
        if not self._authenticated(request.headers.get("authorization", "")):
            return Reply(401, UNAUTHORIZED)
        if match is None:
            return Reply(404, _error("Not found"))
        if request.method not in methods:
            return Reply(405, _error("Method not allowed"))
        with self._lock:
            try:
                return getattr(self, methods[request.method])(request, match, q)
            except ValueError as exc:   # JQL Jira refuses, a startAt that is no number, a page token not ours
                return Reply(400, _error(str(exc)))

    def _too_many(self, retry_after: int) -> Reply:
        reset = (self.clock() + timedelta(seconds=retry_after)).astimezone(_tz.utc).strftime("%Y-%m-%dT%H:%MZ")
        return Reply(429, _error("Rate limit exceeded."),
                     {"Retry-After": str(retry_after), "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": reset, "RateLimit-Reason": "jira-burst-based"})

    # -- write side: POST /rest/api/3/issue ------------------------------------------------------------

    def _create_issue(self, request, m, q) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return Reply(400, _error("Unexpected character in the JSON body"))
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return Reply(400, _error("Issue must have 'fields' set."))
        errors = self._validate(fields)
        if errors:
            return Reply(400, {"errorMessages": [], "errors": errors})
        project = fields["project"]["key"]
        number = next(self._numbers.setdefault(project, itertools.count(1)))
        issue_id, key = str(next(self._ids)), f"{project}-{number}"
        self.issues.append(fields)
        if project in self.project_by_key:   # a project of the read side: the issue becomes readable
            self._new_issue(project, fields["summary"], fields.get("description"), self.clock(),
                            issuetype=fields["issuetype"]["name"], labels=fields.get("labels") or (),
                            issue_id=issue_id, key=key)
        return Reply(201, {"id": issue_id, "key": key, "self": f"{self.origin}/rest/api/3/issue/{issue_id}"})

    def _validate(self, fields: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        project = fields.get("project")
        if not isinstance(project, dict) or project.get("key") not in self.projects:
            errors["project"] = "valid project is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        issuetype = fields.get("issuetype")
        if not isinstance(issuetype, dict) or issuetype.get("name") not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        for label in fields.get("labels") or []:
            if not isinstance(label, str) or " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        description = fields.get("description")
        if description is not None and not (isinstance(description, dict) and description.get("type") == "doc"
                                            and description.get("version") == 1):
            errors["description"] = ("Operation value must be an Atlassian Document "
                                     "(see the Atlassian Document Format)")
        return errors

    # -- rendering -------------------------------------------------------------------------------

    def _time(self, when: datetime) -> str:
        """Jira's timestamp, in the caller's (the service account's) time zone."""
        local = when.astimezone(self.zone)
        return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{local:%z}"

    def _avatars(self, seed: str) -> dict:
        return {f"{n}x{n}": f"{self.origin}/avatars/{quote(seed)}?size={n}" for n in (16, 24, 32, 48)}

    def _user_json(self, account_id: str | None) -> dict | None:
        if account_id is None:
            return None
        user = self.users.get(account_id)
        if user is None:   # a deleted account: Jira still names it, without details
            return {"self": f"{self.origin}/rest/api/3/user?accountId={quote(account_id)}", "accountId": account_id,
                    "accountType": "atlassian", "avatarUrls": self._avatars(account_id), "displayName": "Former user",
                    "active": False}
        data = {"self": f"{self.origin}/rest/api/3/user?accountId={quote(account_id)}", "accountId": account_id,
                "accountType": "atlassian"}
        if not user.hidden or account_id == self.account_id:
            data["emailAddress"] = user.email
        data.update({"avatarUrls": self._avatars(account_id), "displayName": user.name, "active": user.active,
                     "timeZone": self.timezone})
        return data

    def _project_json(self, project: FakeProject, expand: set[str]) -> dict:
        data = {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                "self": f"{self.origin}/rest/api/3/project/{project.id}", "id": project.id, "key": project.key,
                "name": project.name, "avatarUrls": self._avatars(f"project-{project.id}"),
                "projectTypeKey": "software", "simplified": False, "style": "classic", "isPrivate": False,
                "properties": {}}
        if "description" in expand:
            data["description"] = ""
        if "lead" in expand and project.lead:
            lead = self._user_json(project.lead)
            data["lead"] = {k: lead[k] for k in ("self", "accountId", "avatarUrls", "displayName", "active")
                            if k in lead}
        return data

    def _holder_json(self, spec: tuple) -> dict:
        kind = spec[0]
        if kind == "group":
            return {"type": "group", "parameter": self.groups.get(spec[1], ""), "value": spec[1], "expand": "group"}
        if kind == "role":
            return {"type": "projectRole", "parameter": str(spec[1]), "value": str(spec[1]), "expand": "projectRole"}
        if kind == "user":
            return {"type": "user", "parameter": spec[1], "value": spec[1], "expand": "user"}
        if kind == "applicationRole" and len(spec) > 1:
            return {"type": "applicationRole", "parameter": spec[1], "value": spec[1]}
        return {"type": kind}

    def _status_json(self, name: str) -> dict:
        status_id, category = STATUSES.get(name, (str(10100 + sum(map(ord, name))), "indeterminate"))
        cat_id, colour, cat_name = STATUS_CATEGORIES[category]
        return {"self": f"{self.origin}/rest/api/3/status/{status_id}", "description": "",
                "iconUrl": f"{self.origin}/images/icons/statuses/generic.png", "name": name, "id": status_id,
                "statusCategory": {"self": f"{self.origin}/rest/api/3/statuscategory/{cat_id}", "id": cat_id,
                                   "key": category, "colorName": colour, "name": cat_name}}

    def _issuetype_json(self, name: str) -> dict:
        type_id = ISSUE_TYPE_IDS.get(name, "10009")
        return {"self": f"{self.origin}/rest/api/3/issuetype/{type_id}", "id": type_id, "description": "",
                "iconUrl": f"{self.origin}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{type_id}",
                "name": name, "subtask": False, "avatarId": int(type_id), "hierarchyLevel": 0}

    def _level_json(self, project: FakeProject, level: FakeLevel) -> dict:
        return {"self": f"{self.origin}/rest/api/3/securitylevel/{level.id}", "id": level.id,
                "description": f"Only {level.name} may see these issues.", "name": level.name}

    def _comment_json(self, issue: FakeIssue, c: FakeComment) -> dict:
        return {"self": f"{self.origin}/rest/api/3/issue/{issue.id}/comment/{c.id}", "id": c.id,
                "author": self._user_json(c.author), "body": c.body, "updateAuthor": self._user_json(c.author),
                "created": self._time(c.created), "updated": self._time(c.updated), "jsdPublic": True,
                **({"visibility": c.visibility} if c.visibility else {})}

    def _links_json(self, issue: FakeIssue) -> list[dict]:
        out = []
        for link_id, name, outward, inward in self.links:
            if issue.key not in (outward, inward):
                continue
            other = self.by_key.get(inward if issue.key == outward else outward)
            if other is None or not self._issue_visible(other):
                continue
            type_id, out_verb, in_verb = LINK_TYPES[name]
            out.append({"id": link_id, "self": f"{self.origin}/rest/api/3/issueLink/{link_id}",
                        "type": {"id": type_id, "name": name, "inward": in_verb, "outward": out_verb,
                                 "self": f"{self.origin}/rest/api/3/issueLinkType/{type_id}"},
                        ("outwardIssue" if issue.key == outward else "inwardIssue"): {
                            "id": other.id, "key": other.key, "self": f"{self.origin}/rest/api/3/issue/{other.id}",
                            "fields": {"summary": other.summary, "status": self._status_json(other.status),
                                       "issuetype": self._issuetype_json(other.issuetype)}}})
        return out

    def _field(self, issue: FakeIssue, name: str):
        project = self.project_by_key[issue.project_key]
        if name == "summary":
            return issue.summary
        if name == "description":
            return issue.description
        if name == "status":
            return self._status_json(issue.status)
        if name in ("assignee", "reporter"):
            return self._user_json(getattr(issue, name))
        if name == "issuelinks":
            return self._links_json(issue)
        if name == "security":
            level = next((lv for lv in project.levels if lv.id == issue.security), None)
            return None if level is None else self._level_json(project, level)
        if name in ("updated", "created"):
            return self._time(getattr(issue, name))
        if name == "project":
            p = self._project_json(project, set())
            return {k: p[k] for k in ("self", "id", "key", "name", "projectTypeKey", "simplified", "avatarUrls")}
        if name == "issuetype":
            return self._issuetype_json(issue.issuetype)
        if name == "labels":
            return list(issue.labels)
        if name == "comment":
            shown = issue.comments[:self.embedded_comments]
            return {"comments": [self._comment_json(issue, c) for c in shown],
                    "self": f"{self.origin}/rest/api/3/issue/{issue.id}/comment",
                    "maxResults": len(shown), "total": len(issue.comments), "startAt": 0}
        raise KeyError(name)

    @staticmethod
    def _wanted_fields(tokens: list[str], default: list[str]) -> list[str] | None:
        """The fields asked for (``*all``, ``*navigable``, names, ``-name`` to leave one out); None
        when only ids are asked for. Unknown names are ignored, as Jira does."""
        tokens = tokens or default
        if all(t == "id" for t in tokens):
            return None
        chosen: list[str] = []
        if all(t.startswith("-") for t in tokens):
            chosen = list(NAVIGABLE)
        for t in tokens:
            if t == "*all":
                chosen += FIELDS
            elif t == "*navigable":
                chosen += NAVIGABLE
            elif t in FIELDS:
                chosen.append(t)
        dropped = {t[1:] for t in tokens if t.startswith("-")}
        return [f for f in FIELDS if f in chosen and f not in dropped]

    def _issue_json(self, issue: FakeIssue, wanted: list[str] | None) -> dict:
        if wanted is None:
            return {"id": issue.id}
        return {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                "id": issue.id, "self": f"{self.origin}/rest/api/3/issue/{issue.id}", "key": issue.key,
                "fields": {name: self._field(issue, name) for name in wanted}}

    def _page(self, request: Request, q, items: list, default_max: int, cap: int | None = None) -> dict:
        """Jira's offset pages: ``{self, nextPage?, maxResults, startAt, total, isLast, values}``."""
        start, size = _int(q, "startAt", 0), _int(q, "maxResults", default_max)
        size = min(size, cap) if cap else size
        size = size or default_max
        page = items[start:start + size]
        last = start + size >= len(items)
        data: dict = {"self": f"{self.origin}{request.path}" + (f"?{urlencode(q)}" if q else "")}
        if not last:
            params = [(k, v) for k, v in q if k not in ("startAt", "maxResults")]
            params += [("startAt", start + size), ("maxResults", size)]
            data["nextPage"] = f"{self.origin}{request.path}?{urlencode(params)}"
        data.update({"maxResults": size, "startAt": start, "total": len(items), "isLast": last, "values": page})
        return data

    # -- visibility (only with enforce_permissions) -----------------------------------------------------

    def _holds(self, spec: tuple, project: FakeProject, issue: FakeIssue | None = None) -> bool:
        who, kind = self.account_id, spec[0]
        if kind in ("anyone", "applicationRole"):   # the service account has product access
            return True
        if kind == "group":
            return who in self.members.get(spec[1], [])
        if kind == "user":
            return spec[1] == who
        if kind == "role":
            actors = project.role_actors.get(spec[1], [])
            return any(ref == who if k == "user" else who in self.members.get(ref, []) for _, k, ref in actors)
        if kind == "projectLead":
            return project.lead == who
        if kind in ("reporter", "assignee"):
            return issue is not None and getattr(issue, kind) == who
        return False

    def _project_visible(self, project: FakeProject) -> bool:
        return not self.enforce_permissions or any(
            spec[0] in ("reporter", "assignee") or self._holds(spec, project) for spec in project.browse)

    def _issue_visible(self, issue: FakeIssue) -> bool:
        if not self.enforce_permissions:
            return True
        project = self.project_by_key[issue.project_key]
        if not any(self._holds(spec, project, issue) for spec in project.browse):
            return False
        level = next((lv for lv in project.levels if lv.id == issue.security), None)
        return level is None or any(self._holds(spec, project, issue) for _, spec in level.members)

    def _find_project(self, key_or_id: str) -> FakeProject | None:
        key_or_id = unquote(key_or_id)
        project = self.project_by_key.get(key_or_id) or next(
            (p for p in self.project_by_key.values() if p.id == key_or_id), None)
        return project if project is not None and self._project_visible(project) else None

    def _no_project(self, key_or_id: str) -> Reply:
        """Jira's 404, the same for a project that does not exist and one the account may not
        browse; a key starts with a letter, so digits are an id."""
        ref = unquote(key_or_id)
        return Reply(404, _error(f"No project could be found with {'id' if ref.isdigit() else 'key'} '{ref}'."))

    # -- read side: myself, projects, permission schemes, roles ----------------------------------------

    def _myself(self, request, m, q) -> Reply:
        data = self._user_json(self.account_id)
        groups = [g for g, members in self.members.items() if self.account_id in members]
        data.update({"locale": "en_US", "groups": {"size": len(groups), "items": []},
                     "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"})
        return Reply(200, data)

    def _project_search(self, request, m, q) -> Reply:
        """The projects the account may browse, filtered by ``keys``/``id``: repeated parameters
        (``keys=A&keys=B``; ``keys=A,B`` is one key no project has). Keys not found are simply
        not in ``values``: no error."""
        keys, ids = {v for k, v in q if k == "keys"}, {v for k, v in q if k == "id"}
        projects = [p for p in sorted(self.project_by_key.values(), key=lambda p: p.key)
                    if self._project_visible(p) and (not keys or p.key in keys) and (not ids or p.id in ids)]
        expand = set(_many(q, "expand"))
        values = [self._project_json(p, expand) for p in projects]
        return Reply(200, self._page(request, q, values, 50, cap=100))

    def _project_get(self, request, m, q) -> Reply:
        project = self._find_project(m["project"])
        if project is None:
            return self._no_project(m["project"])
        return Reply(200, self._project_json(project, {"lead", "description"} | set(_many(q, "expand"))))

    def _project_permission_scheme(self, request, m, q) -> Reply:
        project = self._find_project(m["project"])
        if project is None:
            return self._no_project(m["project"])
        if not self.admin:
            return Reply(403, _error("You cannot view the permission scheme of this project."))
        return Reply(200, {"expand": "permissions,user,group,projectRole,field,all", "id": project.permission_scheme_id,
                           "self": f"{self.origin}/rest/api/3/permissionscheme/{project.permission_scheme_id}",
                           "name": f"{project.key} permission scheme", "description": ""})

    def _grants(self, request, m, q) -> Reply:
        scheme_id = int(m["schemeId"])
        project = next((p for p in self.project_by_key.values() if p.permission_scheme_id == scheme_id), None)
        if project is None:
            return Reply(404, _error(f"Permission scheme with id {scheme_id} not found."))
        return Reply(200, {"expand": "user,group,projectRole,field,all", "permissions": [
            {"id": grant_id, "self": f"{self.origin}/rest/api/3/permissionscheme/{scheme_id}/permission/{grant_id}",
             "holder": self._holder_json(spec), "permission": permission}
            for grant_id, permission, spec in project.grants]})

    def _project_roles(self, request, m, q) -> Reply:
        project = self._find_project(m["project"])
        if project is None or not self.admin:
            return self._no_project(m["project"])
        return Reply(200, {name: f"{self.origin}/rest/api/3/project/{project.id}/role/{rid}"
                           for rid, name in sorted(self.roles.items())})

    def _project_role(self, request, m, q) -> Reply:
        project, role_id = self._find_project(m["project"]), int(m["roleId"])
        if project is None or not self.admin:
            return self._no_project(m["project"])
        if role_id not in self.roles:
            return Reply(404, _error(f"No project role found with id {role_id}."))
        actors = []
        for actor_id, kind, ref in project.role_actors.get(role_id, []):
            if kind == "user":
                user = self.users.get(ref)
                actors.append({"id": actor_id, "displayName": user.name if user else "Former user",
                               "type": "atlassian-user-role-actor", "actorUser": {"accountId": ref}})
            else:
                name = self.groups.get(ref, "")
                actors.append({"id": actor_id, "displayName": name, "type": "atlassian-group-role-actor",
                               "name": name, "actorGroup": {"name": name, "displayName": name, "groupId": ref}})
        actors.sort(key=lambda a: a["displayName"].lower())
        return Reply(200, {"self": f"{self.origin}/rest/api/3/project/{project.id}/role/{role_id}",
                           "name": self.roles[role_id], "id": role_id,
                           "description": f"A project role that represents {self.roles[role_id].lower()} in a project",
                           "actors": actors})

    # -- read side: issue security -------------------------------------------------------------------

    def _security_scheme(self, request, m, q) -> Reply:
        project = self._find_project(m["project"])
        if project is None:
            return self._no_project(m["project"])
        if not self.admin:
            return Reply(403, _error(NOT_ADMIN))
        if project.security_scheme_id is None:
            return Reply(404, _error(f"No issue security scheme is associated with project '{project.key}'."))
        sid = project.security_scheme_id
        return Reply(200, {"self": f"{self.origin}/rest/api/3/issuesecurityschemes/{sid}", "id": sid,
                           "name": f"{project.key} security scheme", "description": "",
                           "levels": [self._level_json(project, lv) for lv in project.levels]})

    def _all_members(self):
        for project in sorted(self.project_by_key.values(), key=lambda p: int(p.id)):
            for level in project.levels:
                for member_id, spec in level.members:
                    yield project, level, member_id, spec

    def _level_members(self, request, m, q) -> Reply:
        """The newer endpoint. Its filters are inclusive: each of ``id``/``schemeId``/``levelId``
        adds members, so ``schemeId=S&levelId=L`` is everything in S plus everything in L."""
        if not self.admin:
            return Reply(403, _error(NOT_ADMIN))
        ids, schemes, levels = set(_many(q, "id")), set(_many(q, "schemeId")), set(_many(q, "levelId"))
        values = [{"id": str(member_id), "issueSecurityLevelId": level.id,
                   "issueSecuritySchemeId": str(project.security_scheme_id), "holder": self._holder_json(spec)}
                  for project, level, member_id, spec in self._all_members()
                  if not (ids or schemes or levels) or str(member_id) in ids
                  or str(project.security_scheme_id) in schemes or level.id in levels]
        return Reply(200, self._page(request, q, values, 50))

    def _scheme_members(self, request, m, q) -> Reply:
        """The older endpoint: one scheme (in the path), optionally narrowed to some levels."""
        if not self.admin:
            return Reply(403, _error(NOT_ADMIN))
        scheme_id, levels = int(m["schemeId"]), set(_many(q, "issueSecurityLevelId"))
        if not any(p.security_scheme_id == scheme_id for p in self.project_by_key.values()):
            return Reply(404, _error(f"Issue security scheme with id {scheme_id} not found."))
        values = [{"id": member_id, "issueSecurityLevelId": int(level.id), "holder": self._holder_json(spec)}
                  for project, level, member_id, spec in self._all_members()
                  if project.security_scheme_id == scheme_id and (not levels or level.id in levels)]
        return Reply(200, self._page(request, q, values, 50))

    # -- read side: search, issues, comments ---------------------------------------------------------

    def _search_removed(self, request, m, q) -> Reply:
        return Reply(410, _error(SEARCH_GONE))

    def _search(self, request, m, q) -> Reply:
        if request.method == "POST":
            try:
                body = request.json() or {}
            except ValueError:
                return Reply(400, _error("Unexpected character in the JSON body"))
            if not isinstance(body, dict):
                return Reply(400, _error("The request body must be a JSON object."))
            jql, token = body.get("jql") or "", body.get("nextPageToken")
            raw = body.get("fields") or []
            raw = [raw] if isinstance(raw, str) else raw
            fields = [f.strip() for entry in raw for f in str(entry).split(",") if f.strip()]
            size = body.get("maxResults", 50)
            if not isinstance(size, int) or size < 0:
                raise ValueError("maxResults must be a positive number.")
        else:
            jql, token, fields = _one(q, "jql", ""), _one(q, "nextPageToken"), _many(q, "fields")
            size = _int(q, "maxResults", 50)
        tests, order = self._parse_jql(jql)
        hits = [i for i in self.by_key.values() if self._issue_visible(i) and all(t(i) for t in tests)]
        hits.sort(key=lambda i: (i.project_key, i.number))
        if order:
            for name, descending in reversed(order):
                hits.sort(key=self._sort_key(name), reverse=descending)
        else:   # no ORDER BY: newest first
            hits.sort(key=lambda i: (i.created, int(i.id)), reverse=True)
        wanted = self._wanted_fields(fields, ["id"])
        cap = 5000 if wanted is None else self.search_page_max
        size = min(size or 50, cap)
        digest = hashlib.sha1(jql.encode()).hexdigest()[:12]
        start = 0
        if token:
            state = _decode(token)
            if state.get("q") != digest or not isinstance(state.get("at"), int):
                raise ValueError("The provided next page token is invalid or expired.")
            start = state["at"]
        page = hits[start:start + size]
        data: dict = {"issues": [self._issue_json(i, wanted) for i in page]}
        if start + size < len(hits):
            data["nextPageToken"] = _encode({"at": start + size, "q": digest})
        data["isLast"] = start + size >= len(hits)
        return Reply(200, data)

    def _issue_by_id_or_key(self, ref: str) -> FakeIssue | None:
        ref = unquote(ref)
        issue = self.by_key.get(ref) or self.by_key.get(ref.upper()) or next(
            (i for i in self.by_key.values() if i.id == ref), None)
        return issue if issue is not None and self._issue_visible(issue) else None

    def _issue_get(self, request, m, q) -> Reply:
        issue = self._issue_by_id_or_key(m["issue"])
        if issue is None:
            return Reply(404, _error(ISSUE_GONE))
        return Reply(200, self._issue_json(issue, self._wanted_fields(_many(q, "fields"), ["*all"])))

    def _bulk_fetch(self, request, m, q) -> Reply:
        """``POST /issue/bulkfetch``: up to 100 issues by id or key. The ones that do not exist or
        are hidden are left out of both lists (Jira says so of ``issueErrors``); that list holds
        ``{"id", "errorMessage"}`` for issues it could not return for a retriable reason."""
        body = request.json() or {}
        refs = [str(r) for r in body.get("issueIdsOrKeys") or []]
        if not refs or len(refs) > 100:
            return Reply(400, _error("issueIdsOrKeys: give between 1 and 100 issue ids or keys."))
        wanted = self._wanted_fields([str(f) for f in body.get("fields") or []], ["*navigable"])
        issues, errors = [], []
        for ref in refs:
            issue = self._issue_by_id_or_key(ref)
            if issue is None:
                continue
            with self._lock:
                failing = self._bulk_failures[issue.id] > 0
                if failing:
                    self._bulk_failures[issue.id] -= 1
            if failing:
                errors.append({"id": issue.id, "errorMessage": "Retrieving the issue timed out. Try again."})
            else:
                issues.append(self._issue_json(issue, wanted))
        return Reply(200, {"expand": "schema,names", "issues": issues, "issueErrors": errors})

    def _comments(self, request, m, q) -> Reply:
        issue = self._issue_by_id_or_key(m["issue"])
        if issue is None:
            return Reply(404, _error(ISSUE_GONE))
        order = _one(q, "orderBy")
        if order not in (None, "created", "+created", "-created"):
            return Reply(400, _error(f"The value '{order}' is not supported for the orderBy parameter."))
        comments = sorted(issue.comments, key=lambda c: (c.created, int(c.id)), reverse=order == "-created")
        start, size = _int(q, "startAt", 0), _int(q, "maxResults", 100) or 100
        page = comments[start:start + size]
        return Reply(200, {"comments": [self._comment_json(issue, c) for c in page], "maxResults": size,
                           "total": len(comments), "startAt": start})

    def _sort_key(self, name: str):
        if name in ("updated", "created"):
            return lambda i: getattr(i, name)
        return lambda i: (i.project_key, i.number)   # key / issuekey

    # -- JQL -----------------------------------------------------------------------------------------

    def _parse_jql(self, jql: str):
        """(tests on an issue, [(order field, descending)]) or JqlError with Jira's message."""
        tokens, pos, text = [], 0, jql.rstrip()
        while pos < len(text):
            t = _JQL_TOKEN.match(text, pos)
            if t is None:
                raise JqlError(f"Error in the JQL Query: The character '{text[pos]}' is a reserved JQL character. "
                               f"You must enclose it in a string or use the escape '\\u{ord(text[pos]):04x}' instead. "
                               f"(line 1, character {pos + 1})")
            quoted = t[1] if t[1] is not None else t[2]
            kind, value = ("v", quoted) if quoted is not None else ("o", t[3]) if t[3] else ("w", t[4])
            tokens.append((kind, value, t.start(t.lastindex) + 1))
            pos = t.end()
        words = [v.lower() if k == "w" else None for k, v, _ in tokens]
        order = []
        if "order" in words:
            at = words.index("order")
            if at + 1 >= len(words) or words[at + 1] != "by":
                raise JqlError("Error in the JQL Query: Expecting 'BY' after 'ORDER'.")
            order, tokens = self._parse_order(tokens[at + 2:]), tokens[:at]
        tokens = self._ungrouped(tokens)
        if not tokens:
            raise JqlError(UNBOUNDED)
        clauses, clause = [], []
        for token in tokens:
            if token[0] == "w" and token[1].lower() == "and":
                if not clause:
                    raise JqlError(f"Error in the JQL Query: Expecting a field name but got 'AND'. "
                                   f"(line 1, character {token[2]})")
                clauses.append(clause)
                clause = []
            else:
                clause.append(token)
        if not clause:
            raise JqlError("Error in the JQL Query: Expecting a field name but got the end of the query.")
        clauses.append(clause)
        return [self._clause(c) for c in clauses], order

    @staticmethod
    def _ungrouped(tokens):
        """The tokens without the parentheses that group clauses (``(a AND b) AND c``): with AND
        alone, grouping changes nothing. They must balance; a list's parentheses (after IN) stay."""
        out, depth, in_list = [], 0, False
        for token in tokens:
            prev = out[-1] if out else None
            if token[:2] == ("o", "("):
                if prev is not None and prev[0] == "w" and prev[1].lower() == "in":
                    in_list = True
                elif prev is None or (prev[0] == "w" and prev[1].lower() == "and"):
                    depth += 1
                    continue
            elif token[:2] == ("o", ")"):
                if in_list:
                    in_list = False
                elif depth:
                    depth -= 1
                    continue
            out.append(token)
        if depth:
            raise JqlError("Error in the JQL Query: Expecting ')' but got the end of the query.")
        return out

    def _parse_order(self, tokens) -> list[tuple[str, bool]]:
        if not tokens:
            raise JqlError("Error in the JQL Query: Expecting a field name after 'ORDER BY'.")
        order, parts = [], [[]]
        for token in tokens:
            if token[:2] == ("o", ","):
                parts.append([])
            else:
                parts[-1].append(token)
        for part in parts:
            if not part or part[0][0] == "o" or len(part) > 2 or \
                    (len(part) == 2 and (part[1][0] != "w" or part[1][1].lower() not in ("asc", "desc"))):
                raise JqlError("Error in the JQL Query: Expecting a field name and an optional ASC or DESC "
                               "in the ORDER BY clause.")
            name = part[0][1].lower()
            name = {"issuekey": "key", "updateddate": "updated", "createddate": "created"}.get(name, name)
            if name not in ("updated", "created", "key"):
                raise JqlError(f"Field '{part[0][1]}' does not exist or you do not have permission to view it.")
            order.append((name, len(part) == 2 and part[1][1].lower() == "desc"))
        if len(order) > 7:
            raise JqlError("The ORDER BY clause can contain at most 7 fields.")
        return order

    def _clause(self, tokens):
        head = tokens[0]
        if head[0] == "o":
            raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{head[1]}'. "
                           f"(line 1, character {head[2]})")
        if head[0] == "w" and head[1].lower() in ("or", "not"):
            raise JqlError(f"Error in the JQL Query: '{head[1]}' is not supported by this stand-in.")
        name, rest = head[1].lower(), tokens[1:]
        if not rest:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got the end of the query "
                           f"after '{head[1]}'.")
        op_token = rest[0]
        op = op_token[1].lower() if op_token[0] in ("o", "w") else None
        if op == "not" and len(rest) > 1 and rest[1][1].lower() == "in":
            op, rest = "not in", rest[2:]
        else:
            rest = rest[1:]
        if op in ("in", "not in"):
            close = next((n for n, t in enumerate(rest) if t[:2] == ("o", ")")), None)
            inner = rest[1:close] if close is not None else []
            values, commas = inner[0::2], inner[1::2]
            if not rest or rest[0][:2] != ("o", "(") or not inner or len(inner) % 2 == 0 or \
                    any(v[0] == "o" for v in values) or any(c[:2] != ("o", ",") for c in commas):
                raise JqlError("Error in the JQL Query: Expecting a list of values in parentheses after "
                               f"'{op.upper()}'.")
            values, trailing = [v[1] for v in values], rest[close + 1:]
        elif op in ("=", "!=", ">", ">=", "<", "<="):
            if not rest or rest[0][0] == "o":
                got = rest[0][1] if rest else "the end of the query"
                raise JqlError(f"Error in the JQL Query: Expecting either a value, list or function but got "
                               f"'{got}'.")
            values, trailing = [rest[0][1]], rest[1:]
        else:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op_token[1]}'. "
                           f"(line 1, character {op_token[2]})")
        if trailing:
            extra = trailing[0]
            if extra[0] == "w" and extra[1].lower() == "or":
                raise JqlError("Error in the JQL Query: 'OR' is not supported by this stand-in "
                               "(clauses joined by AND only).")
            raise JqlError(f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{extra[1]}'. "
                           f"(line 1, character {extra[2]})")
        negate = op in ("!=", "not in")
        if name in ("project", "key", "issuekey", "status"):
            if op not in ("=", "!=", "in", "not in"):
                raise JqlError(f"The operator '{op}' is not supported by the '{head[1]}' field.")
            if name == "project":
                wanted = {self._jql_project(v).key for v in values}
                return lambda i: (i.project_key in wanted) != negate
            if name == "status":
                wanted = {v.lower() for v in values}
                return lambda i: (i.status.lower() in wanted) != negate
            wanted = set()
            for v in values:
                issue = self._issue_by_id_or_key(v)
                if issue is None:
                    raise JqlError(f"An issue with key '{v}' does not exist for field 'key'.")
                wanted.add(issue.key)
            return lambda i: (i.key in wanted) != negate
        if name in ("updated", "updateddate", "created", "createddate"):
            attr = "updated" if name.startswith("updated") else "created"
            if op not in ("=", "!=", ">", ">=", "<", "<="):
                raise JqlError(f"The operator '{op}' is not supported by the '{head[1]}' field.")
            when = self._jql_time(values[0], head[1])
            if op in ("=", "!="):
                return lambda i: (getattr(i, attr).replace(second=0, microsecond=0) == when) != negate
            return {">=": lambda i: getattr(i, attr) >= when, ">": lambda i: getattr(i, attr) > when,
                    "<=": lambda i: getattr(i, attr) <= when, "<": lambda i: getattr(i, attr) < when}[op]
        raise JqlError(f"Field '{head[1]}' does not exist or you do not have permission to view it.")

    def _jql_project(self, value: str) -> FakeProject:
        project = next((p for p in self.project_by_key.values()
                        if value.upper() == p.key or value == p.id or value.lower() == p.name.lower()), None)
        if project is None or not self._project_visible(project):
            raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
        return project

    def _jql_time(self, value: str, field_name: str) -> datetime:
        """A JQL date (minutes at most) in the service account's time zone, or a period from now."""
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=self.zone).astimezone(_tz.utc)
            except ValueError:
                continue
        rel = _RELATIVE.fullmatch(value.strip())
        if rel:
            amount = int(rel[2]) * {"m": 1, "h": 60, "d": 1440, "w": 10080}[rel[3]]
            return (self.clock() + timedelta(minutes=-amount if rel[1] == "-" else amount)).astimezone(_tz.utc)
        raise JqlError(f"Date value '{value}' for field '{field_name}' is invalid. Valid formats include: "
                       "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
                       "e.g. '-5d', '4w 2d'.")

    # -- read side: groups and users -----------------------------------------------------------------

    def _groups(self, request, m, q) -> Reply:
        ids, names = set(_many(q, "groupId")), set(_many(q, "groupName"))
        groups = [{"name": self.groups[g], "groupId": g}
                  for g in sorted(self.groups, key=lambda g: self.groups[g].lower())
                  if (not ids and not names) or g in ids or self.groups[g] in names]
        return Reply(200, self._page(request, q, groups, 50))

    def _group_members(self, request, m, q) -> Reply:
        group_id, name = _one(q, "groupId"), _one(q, "groupname") or _one(q, "groupName")
        if group_id and name:
            return Reply(400, _error("You can specify either a groupId or a groupname, not both."))
        if not group_id and not name:
            return Reply(400, _error("You must specify a group name or a group id."))
        if name:
            group_id = next((g for g, n in self.groups.items() if n == name), None)
        if group_id not in self.groups:
            return Reply(404, _error("Specified group does not exist."))
        inactive = (_one(q, "includeInactiveUsers", "false") or "false").lower() == "true"
        users = [self.users[a] for a in self.members[group_id] if a in self.users]
        users = sorted((u for u in users if u.active or inactive), key=lambda u: u.email.split("@")[0].lower())
        return Reply(200, self._page(request, q, [self._user_json(u.account_id) for u in users], 50, cap=50))

    def _users_bulk(self, request, m, q) -> Reply:
        wanted = _many(q, "accountId")
        if not wanted:
            return Reply(400, _error("You must specify at least one accountId."))
        found = [self._user_json(a) for a in dict.fromkeys(wanted) if a in self.users]
        return Reply(200, self._page(request, q, found, 10))

    def _user_email(self, request, m, q) -> Reply:
        if not self.email_api:   # only approved apps: a user's API token is answered like a bad login
            return Reply(401, _error("This resource is only available to apps approved by Atlassian."))
        user = self.users.get(_one(q, "accountId", ""))
        if user is None:
            return Reply(404, _error("User not found"))
        return Reply(200, {"accountId": user.account_id, "email": user.email})
