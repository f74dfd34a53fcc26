"""A loopback Jira Cloud: ``POST /rest/api/3/issue`` (REST API v3, basic auth).

Validates like Jira does (answers ``400 {"errorMessages": [...], "errors":
{field: message}}``): the project must exist, the summary must be there and not
blank, the issue type must be known, labels may not contain spaces and the
description must be an Atlassian Document Format doc. Created issues get
incrementing keys per project (``OPS-1``, ``OPS-2``, ...) and are kept in
``issues`` (the ``fields`` as received). ``fail_next``/``hang_next`` script
outages.
"""

from __future__ import annotations

import base64
import itertools

from tests.standins._loopback import LoopbackServer, Reply, Request

ISSUE_TYPES = ("Task", "Bug", "Story", "Incident")


class FakeJira(LoopbackServer):
    def __init__(self, *, email: str = "chatops-bot@example.com", token: str = "jira-api-token-1",
                 projects=("OPS",), hang_seconds: float = 30.0):
        super().__init__()
        self.email = email
        self.token = token
        self.projects = set(projects)
        self.hang_seconds = hang_seconds
        self.issues: list[dict] = []       # fields of created issues
        self.requests: list[Request] = []  # everything that arrived
        self._script: list[tuple] = []
        self._ids = itertools.count(10001)
        self._numbers: dict[str, itertools.count] = {}

    def fail_next(self, status: int, count: int = 1, body=None, headers: dict | None = None) -> None:
        with self.lock:
            self._script.extend([(status, body, headers or {})] * count)

    def hang_next(self, count: int = 1) -> None:
        with self.lock:
            self._script.extend([("hang", None, {})] * count)

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            step = self._script.pop(0) if self._script else None
        if step:
            status, body, headers = step
            if status == "hang":
                self.stopping.wait(self.hang_seconds)
                return Reply(504, "too late")
            return Reply(status, body if body is not None else {"errorMessages": [f"scripted {status}"],
                                                                 "errors": {}}, headers)
        if request.path != "/rest/api/3/issue":
            return Reply(404, {"errorMessages": ["Not found"], "errors": {}})
        if request.method != "POST":
            return Reply(405, {"errorMessages": ["Method not allowed"], "errors": {}})
        if not self._authenticated(request.headers.get("authorization", "")):
            return Reply(401, "Client must be authenticated to access this resource.")
        try:
            body = request.json()
        except ValueError:
            return Reply(400, {"errorMessages": ["Unexpected character in the JSON body"], "errors": {}})
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return Reply(400, {"errorMessages": ["Issue must have 'fields' set."], "errors": {}})
        errors = self._validate(fields)
        if errors:
            return Reply(400, {"errorMessages": [], "errors": errors})
        project = fields["project"]["key"]
        with self.lock:
            number = next(self._numbers.setdefault(project, itertools.count(1)))
            issue_id = str(next(self._ids))
            self.issues.append(fields)
        return Reply(201, {"id": issue_id, "key": f"{project}-{number}",
                           "self": f"{self.origin}/rest/api/3/issue/{issue_id}"})

    def _authenticated(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return False
        return user == self.email and password == self.token

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
