"""Jira Cloud as a source: issues of some projects (or of a JQL filter), with who may read each.

Content: each project is a scope (one scope, ``jql``, for a filter); a configured project Jira does
not list (none by that key, or the account may not browse it: Jira cannot be asked which) stops
the source's sync with :class:`~connectors.sources.atlassian.source.NotOnSite`. A full listing pages
through the enhanced JQL search (``/rest/api/3/search/jql``, ``nextPageToken``); an incremental
sync asks for issues ``updated >=`` the last sync less an overlap (JQL dates have minute
precision, in the service account's time zone, read from ``/myself``); the ``updated`` time is
the version, which de-duplicates the overlap. Deleted issues leave at the next permission pass
(bulkfetch names them nowhere, and ``/issue/{id}`` answers 404: ``GONE``), at the latest at the
full reconciliation (the id diff). An issue is its summary, status, type and people, its description
and its comments (Atlassian Document Format as text), and its links; citations link to
``/browse/KEY``.

Permissions (``permissions.py``): the project's *Browse projects* holders ∩ the issue's security
level members, intersected over people where both apply (``atlassian/access.py``). Membership
changes and role changes do not touch an issue's ``updated``: the permission pass re-reads
schemes, roles, levels and the site's groups on its own schedule.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Sequence
from urllib.parse import quote

from chatops.access import Acl
from connectors.atlassian.accounts import group_token
from connectors.atlassian.adf import adf_text
from connectors.atlassian.http import AtlassianHttp, NotFound
from connectors.sources.atlassian.access import Grant, intersect
from connectors.sources.atlassian.source import AtlassianSourceBase
from connectors.sources.base import GONE, Document, Item, ItemAcl, Page, Section, Unfetchable
from connectors.sources.jira.config import JiraConfig
from connectors.sources.jira.permissions import Holders, holders_of, role_members

log = logging.getLogger(__name__)

API = "/rest/api/3"
PAGE = 100
LIST_FIELDS = "summary,updated,project"
ACL_FIELDS = "project,security,reporter,assignee"
DOC_FIELDS = "summary,description,comment,status,issuetype,assignee,reporter,issuelinks,created,updated,project"
JQL_SCOPE = "jql"


@dataclass(frozen=True)
class Project:
    id: str
    key: str
    name: str
    lead: str | None


class JiraSource(AtlassianSourceBase):
    Config = JiraConfig
    KIND, SERVICE = "jira", "Jira"
    SCOPE_NOUN = "project"
    USERS_BULK, EMAILS_BULK = f"{API}/user/bulk", f"{API}/user/email/bulk"
    ZONE = (f"{API}/myself", "timeZone")     # JQL reads dates in the account's own time zone

    def __init__(self, name: str, config: JiraConfig, http: AtlassianHttp, **kw):
        super().__init__(name, config, http, **kw)
        self._projects: dict[str, Project] = {}         # by id
        self._group_ids: dict[str, str | None] = {}      # group name -> id
        self.ignored = 0
        self.restricted_comments: set[str] = set()      # ids of comments left out (distinct)

    # -- scopes -----------------------------------------------------------------------------

    def scopes(self) -> list[str]:
        self.http.new_window()
        params = [("expand", "lead")] + [("keys", k) for k in self.config.projects or []]
        projects = {}
        for p in self.http.pages_by_start(f"{API}/project/search", params, key="values", limit=50):
            lead = ((p.get("lead") or {}).get("accountId")) or None
            projects[str(p["id"])] = Project(str(p["id"]), str(p.get("key") or ""), str(p.get("name") or ""), lead)
        if self.config.projects:
            # Jira lists the projects it has by those keys *and* lets the account browse; the
            # rest it leaves out (``/project/{key}`` would answer 404 for them, either way). The
            # whole source stops: a listing that lacks a project prunes nothing of it.
            missing = set(self.config.projects) - {p.key for p in projects.values()}
            if missing:
                raise self.not_on_site(missing, noun="project", field="projects", verb="browse",
                                       permission="Browse projects permission")
        self._projects = projects
        return sorted(projects) if self.config.projects else [JQL_SCOPE]

    def _project(self, project_id: str) -> Project:
        if project_id not in self._projects:
            self._projects.update(self._read_project(project_id))
        return self._projects[project_id]

    def _read_project(self, project_id: str) -> dict[str, Project]:
        p = self.http.get_json(f"{API}/project/{quote(project_id)}", {"expand": "lead"})
        lead = ((p.get("lead") or {}).get("accountId")) or None
        return {str(p["id"]): Project(str(p["id"]), str(p.get("key") or ""), str(p.get("name") or ""), lead)}

    def _filter(self, scope: str) -> str:
        if scope == JQL_SCOPE:
            return f"({self.config.jql})"
        return f"project = {self._project(scope).key}"

    # -- content ------------------------------------------------------------------------------

    def changes(self, scope: str, cursor: str | None) -> Iterator[Page]:
        self.http.new_window()
        if not self._projects:
            self.scopes()
        state = json.loads(cursor) if cursor else {"mode": "list"}
        if state["mode"] == "list":
            started = state.get("started") or self._now().isoformat()
            jql = f"{self._filter(scope)} ORDER BY key ASC"
            done = {"mode": "since", "at": started}
            yield from self._search(scope, jql, state.get("next"), lambda nxt: {**state, "started": started,
                                                                                  "next": nxt}, done)
        else:
            upto = state.get("upto") or self._now().isoformat()
            since = datetime.fromisoformat(state["at"]) - timedelta(minutes=self.config.overlap_minutes)
            jql = f'{self._filter(scope)} AND updated >= "{self.local_minutes(since)}" ORDER BY updated ASC'
            yield from self._search(scope, jql, state.get("next"),
                                    lambda nxt: {"mode": "since", "at": state["at"], "upto": upto, "next": nxt},
                                    {"mode": "since", "at": upto})

    def _search(self, scope: str, jql: str, token: str | None, resume, done: dict) -> Iterator[Page]:
        while True:
            params = {"jql": jql, "maxResults": PAGE, "fields": LIST_FIELDS}
            if token:
                params["nextPageToken"] = token
            body = self.http.get_json(f"{API}/search/jql", params)
            items = [self._item(scope, issue) for issue in body.get("issues") or []]
            token = body.get("nextPageToken")
            if token and not body.get("isLast", False):
                yield Page(items, json.dumps(resume(token)), done=False)
                continue
            yield Page(items, json.dumps(done), done=True)
            return

    def _item(self, scope: str, issue: dict) -> Item:
        fields = issue.get("fields") or {}
        key = str(issue.get("key") or "")
        project = str((fields.get("project") or {}).get("id") or scope)
        return Item(f"issue:{issue['id']}", scope=scope if scope == JQL_SCOPE else project,
                    version=str(fields.get("updated") or ""), title=f"{key}: {fields.get('summary') or ''}".strip(),
                    url=f"{self.config.url}/browse/{key}" if key else None)

    def fetch(self, item: Item) -> Document:
        issue_id = item.doc_id.partition(":")[2]
        try:
            issue = self.http.get_json(f"{API}/issue/{quote(issue_id)}", {"fields": DOC_FIELDS})
        except NotFound:
            raise Unfetchable("gone from Jira (deleted, or no longer visible to the account)") from None
        fields = issue.get("fields") or {}
        key = str(issue.get("key") or "")
        title = f"{key}: {fields.get('summary') or ''}".strip()
        sections = [Section("", _overview(key, fields))]
        description = adf_text(fields.get("description"))
        if description:
            sections.append(Section("Description", description))
        links = _links(fields.get("issuelinks") or [])
        if links:
            sections.append(Section("Links", links))
        for comment in self._comments(issue_id, fields.get("comment") or {}):
            if comment.get("visibility"):
                # limited to a role or a group: fewer people than may read the issue; left out
                # rather than shown to all of them
                self.restricted_comments.add(str(comment.get("id") or id(comment)))
                continue
            text = adf_text(comment.get("body"))
            if text:
                author = (comment.get("author") or {}).get("displayName") or "someone"
                when = str(comment.get("created") or "")[:16].replace("T", " ")
                sections.append(Section(f"Comments › {author}, {when}", text))
        url = f"{self.config.url}/browse/{key}"
        return Document(item.doc_id, title, tuple(sections), Acl(),
                        content_hash=f"{fields.get('updated')}:{title}:{url}", url=url)

    def _comments(self, issue_id: str, embedded: dict) -> list[dict]:
        comments = list(embedded.get("comments") or [])
        total = int(embedded.get("total") or len(comments))
        while len(comments) < total:
            body = self.http.get_json(f"{API}/issue/{quote(issue_id)}/comment",
                                      {"startAt": len(comments), "maxResults": PAGE})
            more = body.get("comments") or []
            if not more:
                break
            comments.extend(more)
            total = int(body.get("total") or total)
        return comments

    def refresh(self, items: Sequence[Item]) -> dict[str, Item | None]:
        out: dict[str, Item | None] = {}
        for item in items:
            try:
                issue = self.http.get_json(f"{API}/issue/{quote(item.doc_id.partition(':')[2])}",
                                           {"fields": LIST_FIELDS})
            except NotFound:
                out[item.doc_id] = None
                continue
            out[item.doc_id] = self._item(item.scope, issue)
        return out

    # -- permissions --------------------------------------------------------------------------

    def permissions(self, items: Sequence[Item]) -> dict[str, ItemAcl]:
        self.http.new_window()
        out: dict[str, ItemAcl] = {i.doc_id: None for i in items}
        issues, gone = self._acl_fields([i.doc_id.partition(":")[2] for i in items])
        out.update({i.doc_id: GONE for i in items if i.doc_id.partition(":")[2] in gone})
        browse: dict[str, tuple[Holders, Grant] | None] = {}
        levels: dict[tuple[str, str], tuple[Holders, Grant] | None] = {}
        for item in items:
            fields = issues.get(item.doc_id.partition(":")[2])
            if fields is None:
                continue          # gone (GONE above), or Jira would not say: nobody
            project_id = str((fields.get("project") or {}).get("id") or item.scope)
            if project_id not in browse:
                browse[project_id] = self._browse(project_id)
            if browse[project_id] is None:
                continue          # the project or its scheme unreadable: nobody
            grants = [browse[project_id]]
            level = (fields.get("security") or {}).get("id")
            if level:
                if (project_id, str(level)) not in levels:
                    levels[(project_id, str(level))] = self._level(project_id, str(level))
                grants.append(levels[(project_id, str(level))])
            if any(g is None for g in grants):
                continue
            out[item.doc_id] = intersect([self._with_issue(h, g, fields) for h, g in grants], self._members_of)
        return out

    def _acl_fields(self, ids: list[str]) -> tuple[dict[str, dict], set[str]]:
        """Project, security level, reporter and assignee of these issues (``bulkfetch``, 100 a
        call), and the ids that are gone (deleted, or no longer visible to the account).

        Jira's bulk fetch leaves an issue that does not exist, or that the account may not see,
        out of both ``issues`` and ``issueErrors``; ``issueErrors`` (``{"id", "errorMessage"}``)
        holds what it could not return for a retriable reason. Both kinds are read again one by
        one (``/issue/{id}``): a 404 there is gone, an answer gives the fields."""
        out: dict[str, dict] = {}
        again: list[str] = []
        for start in range(0, len(ids), PAGE):
            asked = ids[start:start + PAGE]
            resp = self.http.request("POST", f"{API}/issue/bulkfetch",
                                     json_body={"issueIdsOrKeys": asked, "fields": ACL_FIELDS.split(",")})
            body = self.http.json(resp, f"{API}/issue/bulkfetch")
            for issue in body.get("issues") or []:
                out[str(issue["id"])] = issue.get("fields") or {}
            errors = {str(e.get("id")): str(e.get("errorMessage") or "") for e in body.get("issueErrors") or []
                      if isinstance(e, dict)}
            if errors:
                log.warning("Jira could not return some issues in bulk; reading them one by one",
                            extra={"source": self.name, "issues": len(errors),
                                   "why": next(iter(errors.values()))[:200]})
            again += [i for i in asked if i not in out]
        gone: set[str] = set()
        for issue_id in again:
            try:
                issue = self.http.get_json(f"{API}/issue/{quote(issue_id)}", {"fields": ACL_FIELDS})
            except NotFound:
                gone.add(issue_id)
                continue
            out[str(issue.get("id") or issue_id)] = issue.get("fields") or {}
        return out, gone

    def _browse(self, project_id: str) -> tuple[Holders, Grant] | None:
        try:
            project = self._project(project_id)
            scheme = self.http.get_json(f"{API}/project/{quote(project.key)}/permissionscheme")
            body = self.http.get_json(f"{API}/permissionscheme/{quote(str(scheme['id']))}/permission")
        except NotFound:
            # gone (or out of the account's sight) since its issues were read, or no scheme
            log.warning("project or its permission scheme unreadable; the project's issues stay hidden",
                        extra={"source": self.name,
                               "project": getattr(self._projects.get(project_id), "key", project_id)})
            return None
        holders = holders_of(body.get("permissions") or [], lead=project.lead)
        return self._resolved(project, holders)

    def _level(self, project_id: str, level_id: str) -> tuple[Holders, Grant] | None:
        project = self._project(project_id)
        try:
            # by level alone: with a scheme too, Jira answers the union of both
            entries = list(self.http.pages_by_start(f"{API}/issuesecurityschemes/level/member",
                                                    {"levelId": level_id}, key="values"))
        except NotFound:
            log.warning("issue security level unreadable; its issues stay hidden",
                        extra={"source": self.name, "project": project.key, "level": level_id})
            return None
        entries = [e for e in entries if str(e.get("issueSecurityLevelId") or level_id) == level_id]
        return self._resolved(project, holders_of(entries, lead=project.lead, permission=None))

    def _resolved(self, project: Project, holders: Holders) -> tuple[Holders, Grant] | None:
        """The holders as people and group tokens (the per-issue ones are added per issue)."""
        if holders.ignored:
            self.ignored += len(holders.ignored)
            log.info("permission holders that grant nothing here", extra={"source": self.name,
                                                                          "project": project.key,
                                                                          "holders": list(holders.ignored)})
        accounts, group_ids, names = set(holders.accounts), set(holders.group_ids), set(holders.group_names)
        for role in holders.roles:
            try:
                body = self.http.get_json(f"{API}/project/{quote(project.key)}/role/{quote(role)}")
            except NotFound:
                log.warning("project role unreadable; the issues it governs stay hidden",
                            extra={"source": self.name, "project": project.key, "role": role})
                return None
            a, g, n = role_members(body.get("actors") or [])
            accounts |= a
            group_ids |= g
            names |= n
        for name in names:
            gid = self._group_id(name)
            if gid:
                group_ids.add(gid)
        emails = self.accounts.emails(accounts)
        grant = Grant.of(users=[e for e in emails.values() if e],
                         groups=[group_token(self.host, g) for g in group_ids],
                         public=holders.everyone and self.config.anyone_public)
        return holders, grant

    def _with_issue(self, holders: Holders, grant: Grant, fields: dict) -> Grant:
        if not holders.per_issue:
            return grant
        people = [str((fields.get(role) or {}).get("accountId") or "") for role in holders.per_issue]
        emails = self.accounts.emails([p for p in people if p])
        return Grant.of(users=set(grant.users) | {e for e in emails.values() if e}, groups=grant.groups,
                        public=grant.public)

    def _group_id(self, name: str) -> str | None:
        if name not in self._group_ids:
            body = self.http.get_json(f"{API}/group/bulk", {"groupName": name, "maxResults": 1})
            values = body.get("values") or []
            self._group_ids[name] = str(values[0]["groupId"]) if values and values[0].get("groupId") else None
            if self._group_ids[name] is None:
                log.warning("a group named in a scheme is unknown; it grants nothing",
                            extra={"source": self.name, "group": name})
        return self._group_ids[name]

    def findings(self) -> dict[str, int]:
        return {"Atlassian accounts without a visible email": len(self.accounts.unmapped),
                "permission holders that grant nothing here": self.ignored,
                "comments limited to a role or group, not indexed": len(self.restricted_comments)}

    # -- the site's groups --------------------------------------------------------------------

    def _start_pass(self) -> None:
        self._group_ids, self.ignored = {}, 0

    def _site_group_ids(self) -> Iterator[str]:
        for g in self.http.pages_by_start(f"{API}/group/bulk", {}, key="values", limit=50):
            if g.get("groupId"):
                yield str(g["groupId"])

    def _member_accounts(self, group_id: str) -> Iterator[tuple[str, str | None]]:
        for m in self.http.pages_by_start(f"{API}/group/member", {"groupId": group_id}, key="values", limit=50):
            yield str(m.get("accountId") or ""), m.get("emailAddress")



def _overview(key: str, fields: dict) -> str:
    def name(value) -> str:
        return str((value or {}).get("displayName") or (value or {}).get("name") or "") if isinstance(value, dict) \
            else str(value or "")
    parts = [f"{key}: {fields.get('summary') or ''}".strip()]
    facts = [("Status", name(fields.get("status"))), ("Type", name(fields.get("issuetype"))),
             ("Assignee", name(fields.get("assignee")) or "unassigned"), ("Reporter", name(fields.get("reporter"))),
             ("Created", str(fields.get("created") or "")[:10]), ("Updated", str(fields.get("updated") or "")[:10])]
    parts.append(". ".join(f"{label}: {value}" for label, value in facts if value) + ".")
    return "\n".join(parts)


def _links(links: list[dict]) -> str:
    lines = []
    for link in links:
        kind = link.get("type") or {}
        if link.get("outwardIssue"):
            other, verb = link["outwardIssue"], kind.get("outward") or "relates to"
        elif link.get("inwardIssue"):
            other, verb = link["inwardIssue"], kind.get("inward") or "relates to"
        else:
            continue
        summary = ((other.get("fields") or {}).get("summary") or "").strip()
        lines.append(f"{verb} {other.get('key')}" + (f" ({summary})" if summary else ""))
    return "\n".join(lines)
