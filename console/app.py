"""``/admin``: the operator console, a Starlette app mounted on the web process.

``console_routes(deps)`` returns the routes to add to the web app; everything the console reads
comes in ``ConsoleDeps`` (the composition root builds them): the audit store and its ``Answers``,
Redis (sessions, links, the privacy setting, worker liveness and queue depths), the sources'
statuses, and the Entra sign-in (None: sign-in links instead). Nothing is read at import.

Pages are GET and change nothing; the two forms (the privacy setting, signing out) POST with the
session's CSRF token. A sign-in link's GET only shows a confirm button: its POST, with that page's
CSRF token, uses the link up. Sign-ins and privacy changes are audit events naming the person.
Proposals are shown, never decided: decisions stay in Slack.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import parse_qs

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from chatops.errors import GroupsUnavailable, SignInFailed
from chatops.store.tools import CallRow, ToolRecords
from console import pages
from console.auth import (CONFIRM_COOKIE, FLOW_COOKIE, FLOW_TTL, LINK_TTL, SESSION_COOKIE, LinkRefused, Links,
                          SecurityHeaders, Sessions, console_secret, cookie_args)
from console.pages import PREFIX, Ctx, QuestionFilter
from console.privacy import MODES, PrivacySetting
from console.style import CSS
from usecases.operations import recent_failures, worker_overview
from usecases.report import report

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_FORM_BYTES = 16_384


@dataclass(frozen=True)
class ConsoleConfig:
    base_url: str                            # CHATOPS_PUBLIC_URL, or http://127.0.0.1:3000
    key_prefix: str
    session_ttl: int = 8 * 3600
    privacy: str = "anonymized"              # the privacy mode until an admin changes it
    admin_groups: frozenset[str] = frozenset()
    admin_secret: str | None = None          # None: generated and kept in Redis
    queues: tuple[str, ...] = ()
    worker_stale_after: float = 120.0


@dataclass
class ConsoleDeps:
    config: ConsoleConfig
    redis: Any                               # redis.Redis
    store: Callable[[], Any]                 # chatops.store.Store, opened on first use
    answers: Callable[[], Any]               # chatops.store.answers.Answers, opened on first use
    source_statuses: Callable[[], list] = list
    sign_in: Any | None = None               # connectors.identity.oidc.EntraSignIn; None: links
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


class _Console:
    def __init__(self, deps: ConsoleDeps):
        self.deps = deps
        self.config = deps.config
        self.sessions = Sessions(deps.redis, deps.config.key_prefix, deps.config.session_ttl)
        self._secret: bytes | None = None

    # -- shared -----------------------------------------------------------------------------

    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = console_secret(self.deps.redis, self.config.key_prefix, self.config.admin_secret)
        return self._secret

    def links(self) -> Links:
        return Links(self.secret(), self.deps.redis, self.config.key_prefix)

    def privacy(self) -> PrivacySetting:
        return PrivacySetting(self.deps.redis, self.config.key_prefix, self.config.privacy, self.secret())

    def _cookie(self, response: Response, name: str, value: str, max_age: int, path: str = PREFIX) -> None:
        response.set_cookie(name, value, max_age=max_age, **{**cookie_args(self.config.base_url), "path": path})

    def _signed_in(self, response: Response, user: str, via: str, *, email: str | None = None) -> Response:
        """A session for ``user``, recorded in the audit trail first: no record, no session (503)."""
        if not self._record("console_sign_in", user, via, email=email):
            return HTMLResponse(pages.refused("Unavailable", "The sign-in could not be recorded in the audit trail.",
                                              detail="Try again shortly; if it persists, check the database."),
                                status_code=503)
        session = self.sessions.create(user, via)
        self._cookie(response, SESSION_COOKIE, session.id, self.config.session_ttl)
        log.info("console sign-in", extra={"via": via, "person": user})
        return response

    def _record(self, kind: str, person: str, via: str, *, email: str | None = None, **detail: str) -> bool:
        """An audit event naming who did it in the console; False (logged) when it cannot be written."""
        try:
            self.deps.store().audit(kind, actor_email=email, detail={"via": via, "person": person, **detail})
        except Exception as exc:  # noqa: BLE001 - the database driver's own errors, whatever their kind
            log.error("console: could not write to the audit trail", extra={"kind": kind, "error": type(exc).__name__})
            return False
        return True

    async def _fields(self, request: Request) -> dict[str, str] | Response:
        """A posted form's fields (the last of each name); 413 past ``MAX_FORM_BYTES``."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return HTMLResponse(pages.refused("Refused", "That form is too large."), status_code=413)
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def page(self, render: Callable[[Request, Ctx], Any]) -> Callable[[Request], Response]:
        """A signed-in page: without a session, the sign-in page instead."""
        def endpoint(request: Request) -> Response:
            try:
                session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
                if session is None:
                    return RedirectResponse(f"{PREFIX}/login", status_code=303)
                ctx = Ctx(user=session.user, via=session.via, csrf=session.csrf, privacy=self.privacy().current(),
                          now=self.deps.now())
                result = render(request, ctx)
            except redis.RedisError as exc:
                log.warning("console: Redis unavailable", extra={"error": type(exc).__name__})
                return HTMLResponse(pages.refused("Unavailable", "Redis cannot be reached; the console needs it."),
                                    status_code=503)
            return result if isinstance(result, Response) else HTMLResponse(result)
        return endpoint

    def form(self, act: Callable[[Request, Any, dict[str, str]], Response]):
        """A signed-in POST with the session's CSRF token (403 without either)."""
        async def endpoint(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
            if session is None:
                return HTMLResponse(pages.refused("Signed out", "Your session has ended; sign in again."),
                                    status_code=403)
            fields = await self._fields(request)
            if isinstance(fields, Response):
                return fields
            if not session.csrf_ok(fields.get("csrf")):
                log.warning("console: a form without its CSRF token was refused")
                return HTMLResponse(pages.refused("Refused", "This form was missing its security token.",
                                                  detail="Reload the page and try again."), status_code=403)
            return act(request, session, fields)
        return endpoint

    def period(self, request: Request) -> tuple[int, datetime, datetime]:
        try:
            days = int(request.query_params.get("days", "30"))
        except ValueError:
            days = 30
        days = days if days in pages.PERIODS else 30
        until = self.deps.now()
        return days, until - timedelta(days=days), until

    # -- signing in -------------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        messages = {"out": "You are signed out.", "expired": "Your session has ended; sign in again."}
        return HTMLResponse(pages.login(entra=self.deps.sign_in is not None,
                                        message=messages.get(request.query_params.get("m", ""), ""),
                                        groups_configured=bool(self.config.admin_groups)))

    def _links_off(self) -> Response | None:
        if self.deps.sign_in is None:
            return None
        return HTMLResponse(pages.refused("Sign-in links are off", "This console signs people in with Microsoft; "
                                          "sign-in links do not work here."), status_code=403)

    @staticmethod
    def _link_refused(refused: LinkRefused) -> Response:
        log.warning("console: a sign-in link was refused", extra={"why": refused.reason})
        return HTMLResponse(pages.refused("Link refused", refused.reason), status_code=403)

    def link(self, request: Request) -> Response:
        """GET: what the link grants, and a button to use it. Fetching it (a link unfurler, a mail
        scanner) spends nothing."""
        off = self._links_off()
        if off is not None:
            return off
        token = request.query_params.get("t", "")
        try:
            grant = self.links().check(token)
        except LinkRefused as refused:
            return self._link_refused(refused)
        csrf = secrets.token_urlsafe(32)
        response = HTMLResponse(pages.confirm_link(token=token, csrf=csrf, person=grant.person))
        self._cookie(response, CONFIRM_COOKIE, csrf, LINK_TTL, path=f"{PREFIX}/auth")
        return response

    async def use_link(self, request: Request) -> Response:
        """POST from the confirm page, with its CSRF token: the link is used up and a session made."""
        off = self._links_off()
        if off is not None:
            return off
        fields = await self._fields(request)
        if isinstance(fields, Response):
            return fields
        expected, submitted = request.cookies.get(CONFIRM_COOKIE, ""), fields.get("csrf", "")
        if not (expected and submitted and hmac.compare_digest(expected.encode(), submitted.encode())):
            log.warning("console: a sign-in confirmation without its CSRF token was refused")
            return HTMLResponse(pages.refused("Refused", "This form was missing its security token.",
                                              detail="Open the sign-in link again and confirm there."), status_code=403)
        try:
            grant = self.links().consume(fields.get("t", ""))
        except LinkRefused as refused:
            return self._link_refused(refused)
        response = self._signed_in(RedirectResponse(f"{PREFIX}/", status_code=303), grant.person, "link")
        response.delete_cookie(CONFIRM_COOKIE, path=f"{PREFIX}/auth")
        return response

    def start(self, request: Request) -> Response:
        if self.deps.sign_in is None:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        try:
            flow = self.deps.sign_in.start(f"{self.config.base_url}{PREFIX}/auth/callback")
        except SignInFailed as exc:
            return HTMLResponse(pages.refused("Sign-in unavailable", str(exc)), status_code=502)
        response = RedirectResponse(flow["auth_uri"], status_code=302)
        self._cookie(response, FLOW_COOKIE, self.sessions.keep_flow(flow), FLOW_TTL, path=f"{PREFIX}/auth")
        return response

    def callback(self, request: Request) -> Response:
        if self.deps.sign_in is None:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        flow = self.sessions.take_flow(request.cookies.get(FLOW_COOKIE))
        if flow is None:
            return HTMLResponse(pages.refused("Sign-in expired", "This sign-in was not started here, took too long, "
                                              "or was completed already.", detail="Start again."), status_code=400)
        try:
            who = self.deps.sign_in.finish(flow, dict(request.query_params))
        except SignInFailed as exc:
            log.warning("console: an Entra sign-in failed", extra={"why": str(exc)})
            return HTMLResponse(pages.refused("Sign-in failed", str(exc)), status_code=403)
        except GroupsUnavailable:
            return HTMLResponse(pages.refused("Not admitted", "Your group memberships could not be read from "
                                              "Microsoft Graph, so the console cannot tell whether you are an operator.",
                                              detail="Try again later, or ask an administrator."), status_code=403)
        if not (who.groups & self.config.admin_groups):
            log.warning("console: a signed-in person is not in the admin groups", extra={"oid": who.oid})
            return HTMLResponse(pages.refused(
                "Not an operator", f"You are signed in as {who.username}, but you are not a member of the groups "
                "allowed to use this console.", detail="Ask an administrator to add you to one of the groups in "
                "CHATOPS_ADMIN_GROUPS."), status_code=403)
        response = self._signed_in(RedirectResponse(f"{PREFIX}/", status_code=303), who.username, "entra",
                                   email=who.username)
        response.delete_cookie(FLOW_COOKIE, path=f"{PREFIX}/auth")
        return response

    def logout(self, request: Request, session, fields: dict[str, str]) -> Response:
        self.sessions.end(session.id)
        response = RedirectResponse(f"{PREFIX}/login?m=out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    def set_privacy(self, request: Request, session, fields: dict[str, str]) -> Response:
        mode = fields.get("privacy", "")
        if mode not in MODES:
            return HTMLResponse(pages.refused("Refused", f"Unknown privacy setting; one of {', '.join(MODES)}."),
                                status_code=400)
        if not self._record("console_privacy", session.user, session.via, privacy=mode):
            return HTMLResponse(pages.refused("Unavailable", "The change could not be recorded in the audit trail, "
                                              "so it was not made.", detail="Try again shortly."), status_code=503)
        self.privacy().set(mode)
        log.info("console: privacy setting changed", extra={"privacy": mode, "via": session.via, "person": session.user})
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    # -- pages ------------------------------------------------------------------------------

    def overview(self, request: Request, ctx: Ctx):
        days, since, until = self.period(request)
        return pages.overview(ctx, report(self.deps.answers(), since, until), days=days, since=since, until=until)

    def _filter(self, request: Request) -> QuestionFilter:
        q = request.query_params
        today = self.deps.now().date()

        def day(name: str, default: date) -> date:
            try:
                return date.fromisoformat(q.get(name, ""))
            except ValueError:
                return default
        try:
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            page = 1
        feedback = q.get("feedback", "")
        outcome = q.get("outcome", "")
        if outcome not in pages.OUTCOME_MODES and outcome[5:] not in pages.MODE_OUTCOME:
            outcome = ""
        return QuestionFilter(since=day("since", today - timedelta(days=29)), until=day("until", today),
                              channel=q.get("channel", "")[:64], outcome=outcome,
                              feedback=feedback if feedback in ("helpful", "not_helpful", "none") else "", page=page)

    def questions(self, request: Request, ctx: Ctx):
        f = self._filter(request)
        since = datetime.combine(f.since, datetime.min.time(), timezone.utc)
        until = datetime.combine(f.until + timedelta(days=1), datetime.min.time(), timezone.utc)
        rows, total = self.deps.answers().history(since, until, channel=f.channel or None, modes=f.modes(),
                                                feedback=f.feedback or None, limit=PER_PAGE,
                                                offset=(f.page - 1) * PER_PAGE)
        return pages.questions(ctx, rows, total, f, channels=self.deps.answers().channels(since, until), per_page=PER_PAGE)

    def question(self, request: Request, ctx: Ctx):
        qid = request.path_params["qid"]
        row = self.deps.answers().question_row(qid) if qid < 2 ** 62 else None
        if row is None:
            return HTMLResponse(pages.layout("Not found", pages.html('<p class="empty">No such question.</p>'), ctx=ctx,
                                             active="questions"), status_code=404)
        votes = self.deps.answers().votes(row["answer_id"]) if row.get("answer_id") else []
        return pages.question_detail(ctx, row, votes, tool_calls=self._tool_calls(row))

    def _tool_calls(self, row: dict) -> list[CallRow]:
        """The live tool calls made for one answer: those linked to its answer id, and those of its
        correlation id not linked to any answer (an answer without an id, as a failed one; a link
        that could not be written). Oldest first."""
        answer_id, correlation_id = row.get("answer_id"), row.get("correlation_id")
        records = ToolRecords(self.deps.store())
        found = {c.id: c for c in records.calls(answer_id=answer_id)} if answer_id else {}
        if correlation_id:
            found.update((c.id, c) for c in records.calls(correlation_id=correlation_id)
                         if c.answer_id is None or c.answer_id == answer_id)
        return sorted(found.values(), key=lambda c: c.id)

    def unanswered(self, request: Request, ctx: Ctx):
        days, since, until = self.period(request)
        return pages.unanswered(ctx, report(self.deps.answers(), since, until, top=200), days=days, since=since, until=until)

    def unanswered_csv(self, request: Request, ctx: Ctx):
        days, since, until = self.period(request)
        found = report(self.deps.answers(), since, until, top=10_000).top_unanswered
        out = io.StringIO()
        writer = csv.writer(out)
        if ctx.privacy.shows_text:
            writer.writerow(["question", "times_asked", "last_asked"])
            writer.writerows([_cell(e["question"]), e["count"], e["last_asked"]] for e in found)
        else:
            writer.writerow(["times_asked", "last_asked"])
            writer.writerows([e["count"], e["last_asked"]] for e in found)
        name = f"unanswered-{until.date().isoformat()}-{days}d.csv"
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def feedback(self, request: Request, ctx: Ctx):
        days, since, until = self.period(request)
        return pages.feedback(ctx, report(self.deps.answers(), since, until), self.deps.answers().feedback(since, until),
                              days=days, since=since, until=until)

    def proposals(self, request: Request, ctx: Ctx):
        return pages.proposals(ctx, self.deps.store().list_proposals(limit=500))

    def sources(self, request: Request, ctx: Ctx):
        days, since, until = self.period(request)
        docs: dict[str, set[str]] = {}
        hits: dict[str, int] = {}
        for row in self.deps.answers().questions(since, until):
            for r in row.get("retrieved") or []:
                source = str(r.get("source") or "unknown")
                docs.setdefault(source, set()).add(str(r.get("doc_id")))
                hits[source] = hits.get(source, 0) + 1
        retrieved = {s: (len(d), hits[s]) for s, d in docs.items()}
        return pages.sources(ctx, self.deps.source_statuses(), retrieved, days=days)

    def workers(self, request: Request, ctx: Ctx):
        c = self.config
        overview = worker_overview(self.deps.redis, c.key_prefix, c.queues, stale_after=c.worker_stale_after)
        failures = recent_failures(self.deps.answers(), self.deps.store(), now=self.deps.now())
        return pages.workers(ctx, overview, failures, stale_after=c.worker_stale_after)

    def evaluations(self, request: Request, ctx: Ctx):
        return pages.evaluations(ctx, self.deps.store().latest_of_kind("evaluation"))


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def console_routes(deps: ConsoleDeps) -> tuple[BaseRoute, ...]:
    """The console's routes for the web app: ``/admin`` and everything under it."""
    c = _Console(deps)

    def css(request: Request) -> Response:
        return Response(CSS, media_type="text/css; charset=utf-8")

    app = Starlette(routes=[
        Route("/", c.page(c.overview)),
        Route("/questions", c.page(c.questions)),
        Route("/questions/{qid:int}", c.page(c.question)),
        Route("/unanswered", c.page(c.unanswered)),
        Route("/unanswered.csv", c.page(c.unanswered_csv)),
        Route("/feedback", c.page(c.feedback)),
        Route("/proposals", c.page(c.proposals)),
        Route("/sources", c.page(c.sources)),
        Route("/workers", c.page(c.workers)),
        Route("/evaluations", c.page(c.evaluations)),
        Route("/settings/privacy", c.form(c.set_privacy), methods=["POST"]),
        Route("/logout", c.form(c.logout), methods=["POST"]),
        Route("/login", c.login),
        Route("/auth/link", c.link),
        Route("/auth/link", c.use_link, methods=["POST"]),
        Route("/auth/start", c.start),
        Route("/auth/callback", c.callback),
        Route("/console.css", css),
    ])
    return Route(PREFIX, SecurityHeaders(_to_slash)), Mount(PREFIX, app=SecurityHeaders(app))


async def _to_slash(scope, receive, send) -> None:
    """``/admin`` -> ``/admin/`` (with the console's headers, like every /admin response)."""
    await RedirectResponse(f"{PREFIX}/", status_code=307)(scope, receive, send)


def console_alone(routes: tuple[BaseRoute, ...]) -> Starlette:
    """The console without the Slack endpoint (``chatops admin serve``): its routes and ``GET /livez``."""
    async def livez(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(routes=[Route("/livez", livez), *routes])
