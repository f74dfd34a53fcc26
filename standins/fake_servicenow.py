"""A loopback ServiceNow instance: Table API ``POST /api/now/table/incident`` (basic auth).

Answers ``201 {"result": {..., "sys_id", "number": "INC0010001"}}`` with
incrementing numbers, keeps the records as received in ``incidents``, and
answers like ServiceNow on errors (``{"error": {"message", "detail"},
"status": "failure"}``). ``fail_next``/``hang_next`` script outages.
"""

from __future__ import annotations

import base64
import itertools
import uuid

from standins._loopback import LoopbackServer, Reply, Request


def _failure(message: str, detail: str | None = None) -> dict:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


class FakeServiceNow(LoopbackServer):
    def __init__(self, *, username: str = "chatops.integration", password: str = "snow-password-1",
                 hang_seconds: float = 30.0):
        super().__init__()
        self.username = username
        self.password = password
        self.hang_seconds = hang_seconds
        self.incidents: list[dict] = []
        self.requests: list[Request] = []
        self._script: list[tuple] = []
        self._numbers = itertools.count(10001)

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
            return Reply(status, body if body is not None else _failure(f"scripted {status}"), headers)
        if request.path != "/api/now/table/incident":
            return Reply(400, _failure("Invalid table", request.path))
        if request.method == "GET":   # the Table API's read: the newest records, up to sysparm_limit
            if not self._authenticated(request.headers.get("authorization", "")):
                return Reply(401, _failure("User Not Authenticated", "Required to provide Auth information"))
            limit = int(request.query.get("sysparm_limit") or 10000)
            fields = [f for f in (request.query.get("sysparm_fields") or "").split(",") if f]
            with self.lock:
                rows = [dict(r) for r in self.incidents[-limit:]] if limit > 0 else []
            return Reply(200, {"result": [{k: str(v) for k, v in r.items() if not fields or k in fields}
                                          for r in rows]})
        if request.method != "POST":
            return Reply(405, _failure("Method not Supported", request.method))
        if not self._authenticated(request.headers.get("authorization", "")):
            return Reply(401, _failure("User Not Authenticated", "Required to provide Auth information"))
        if "application/json" not in request.headers.get("content-type", ""):
            return Reply(415, _failure("Unsupported Media Type", request.headers.get("content-type")))
        try:
            record = request.json()
        except ValueError:
            return Reply(400, _failure("Exception while reading request", "The payload is not valid JSON."))
        if not isinstance(record, dict):
            return Reply(400, _failure("Exception while reading request", "Expected a JSON object."))
        with self.lock:
            number = f"INC{next(self._numbers):07d}"
            self.incidents.append(record)
        sys_id = uuid.uuid4().hex
        result = {"state": "1", "urgency": "3", "impact": "3", **{k: str(v) for k, v in record.items()},
                  "sys_id": sys_id, "number": number}
        return Reply(201, {"result": result},
                     {"Location": f"{self.origin}/api/now/table/incident/{sys_id}"})

    def _authenticated(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return False
        return user == self.username and password == self.password
