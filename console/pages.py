"""The console's pages, as HTML. Data in, ``Markup`` out; nothing here reads a store.

Every value that comes from a person, a document or a connector is escaped (``console.html``);
what is shown of people and questions follows the privacy mode (``console.privacy``). Numbers
are right-aligned; outcomes have one colour each, everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence
from urllib.parse import urlencode

from chatops.store.tools import OUTCOMES as TOOL_OUTCOMES
from console import charts
from console.charts import Series
from console.html import Markup, html, join
from console.privacy import MODES, Privacy

PREFIX = "/admin"

# One colour per outcome (report.py's outcomes; "failed" apart from "refused" where modes show).
OUTCOME_COLOURS = {"answered": "#2f9e63", "no-evidence": "#e3a21a", "refused": "#d64545", "greeting": "#8a97a8",
                   "failed": "#8f1d1d"}
MODE_OUTCOME = {"llm": "answered", "extractive": "answered", "cached": "answered", "no-evidence": "no-evidence",
                "refused": "refused", "failed": "failed", "greeting": "greeting"}
# The outcome filter of the Questions page: an outcome, or one mode.
OUTCOME_MODES = {"answered": ("llm", "extractive", "cached"), "no-evidence": ("no-evidence",),
                 "refused": ("refused", "failed"), "greeting": ("greeting",)}
# A live tool call's outcome (chatops.store.tools.OUTCOMES), coloured like a proposal's state.
TOOL_OUTCOME_STATES = {"ok": "succeeded", "error": "failed", "timeout": "failed", "refused": "rejected",
                       "not_connected": "expired", "skipped": "expired"}
PALETTE = ("#3b6fd8", "#8e5bd6", "#1b9aaa", "#e07a2f", "#c2407a", "#5c8a2e", "#6b7a90")
HELPFUL, NOT_HELPFUL = "#2f9e63", "#d64545"

NAV = (("overview", "Overview", "/"), ("questions", "Questions", "/questions"),
       ("unanswered", "Unanswered", "/unanswered"), ("feedback", "Feedback", "/feedback"),
       ("proposals", "Proposals", "/proposals"), ("sources", "Sources", "/sources"),
       ("workers", "Workers", "/workers"), ("evaluations", "Evaluations", "/evaluations"))
PERIODS = (1, 7, 30, 90)


@dataclass(frozen=True)
class Ctx:
    """Who is looking, and how: for the frame of every page."""

    user: str
    via: str
    csrf: str
    privacy: Privacy
    now: datetime


# -- small pieces ------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def n(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return charts.number(round(value, 4))
    return charts.number(value) if isinstance(value, int) else str(value)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def cost(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def ms(value: float | None) -> str:
    return "—" if value is None else charts.milliseconds(value)


def outcome_of(mode: str) -> str:
    return MODE_OUTCOME.get(mode, "refused")


def badge(mode: str) -> Markup:
    return html('<span class="badge o-{o}">{m}</span>', o=outcome_of(mode), m=mode)


def state_badge(state: str) -> Markup:
    return html('<span class="badge s-{s}">{s}</span>', s=state)


def tool_outcome(outcome: str) -> Markup:
    return html('<span class="badge s-{s}" data-outcome="{o}">{l}</span>', s=TOOL_OUTCOME_STATES.get(outcome, "failed"),
                o=outcome, l=outcome.replace("_", " "))


def hidden(what: str = "hidden") -> Markup:
    return html('<span class="muted" title="not shown: privacy setting">{w}</span>', w=what)


def person(ctx: Ctx, slack_id: str | None = None, email: str | None = None) -> Markup:
    if not (slack_id or email):
        return html('<span class="muted">—</span>')
    shown = ctx.privacy.person(slack_id, email)
    return hidden() if shown is None else html('<span class="person">{p}</span>', p=shown)


def num_td(value: Any, **data: Any) -> Markup:
    attrs = join(html(' data-{k}="{v}"', k=k.replace("_", "-"), v=v) for k, v in data.items())
    return html('<td class="num"{a}>{v}</td>', a=attrs, v=value)


def table(headers: Sequence[str | tuple[str, bool]], rows: Iterable[Sequence[Any]], *, empty: str = "Nothing here.",
          cls: str = "", id: str = "") -> Markup:
    """A table; a header given as (label, True) is a numeric column (right-aligned). A cell that is
    ``Markup`` starting with ``<td`` is used as it is."""
    heads = [(h, False) if isinstance(h, str) else h for h in headers]
    numeric = [is_num for _, is_num in heads]
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if isinstance(cell, Markup) and cell.startswith("<td"):
                cells.append(cell)
            else:
                cells.append(html('<td class="num">{c}</td>', c=cell) if numeric[i] else html("<td>{c}</td>", c=cell))
        body.append(html("<tr>{c}</tr>", c=join(cells)))
    if not body:
        return html('<p class="empty">{e}</p>', e=empty)
    head = join(html('<th class="num">{h}</th>', h=h) if is_num else html("<th>{h}</th>", h=h) for h, is_num in heads)
    return html('<div class="table-wrap"><table class="{cls}"{id}><thead><tr>{h}</tr></thead><tbody>{b}</tbody>'
                "</table></div>", cls=cls, id=html(' id="{i}"', i=id) if id else Markup(""), h=head, b=join(body))


def card(title: str, body: Any, *, wide: bool = False, note: str = "") -> Markup:
    return html('<section class="card{w}"><h2>{t}</h2>{n}{b}</section>', w=" wide" if wide else "", t=title,
                n=html('<p class="note">{x}</p>', x=note) if note else Markup(""), b=body)


def kpi(label: str, value: str, sub: str = "", *, key: str, tone: str = "") -> Markup:
    return html('<div class="kpi {tone}"><div class="kpi-label">{l}</div><div class="kpi-value" data-kpi="{k}">{v}</div>'
                '<div class="kpi-sub">{s}</div></div>', tone=tone, l=label, k=key, v=value, s=sub)


def period_picker(path: str, days: int, extra: dict[str, str] | None = None) -> Markup:
    links = []
    for d in PERIODS:
        query = urlencode({**(extra or {}), "days": d})
        label = "24 h" if d == 1 else f"{d} days"
        links.append(html('<a class="{c}" href="{h}">{l}</a>', c="on" if d == days else "",
                          h=f"{PREFIX}{path}?{query}", l=label))
    return html('<nav class="periods" aria-label="period">{l}</nav>', l=join(links))


def day_labels(since: datetime, until: datetime) -> list[str]:
    """Every day from ``since`` to ``until`` (UTC dates), so charts have no holes."""
    first, last = since.astimezone(timezone.utc).date(), (until - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    days, day = [], first
    while day <= last and len(days) < 400:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def per_day(report, labels: list[str]) -> dict[str, dict[str, Any]]:
    known = {d["date"]: d for d in report.per_day}
    empty = {"answered": 0, "no-evidence": 0, "refused": 0, "greeting": 0, "helpful": 0, "not_helpful": 0,
             "cost": {}, "questions": 0}
    return {day: {**empty, "date": day, **known.get(day, {})} for day in labels}


# -- the frame ---------------------------------------------------------------------------------


def layout(title: str, body: Any, *, ctx: Ctx | None, active: str = "", status_line: str = "") -> Markup:
    if ctx is not None:
        nav = join(html('<a href="{h}" class="{c}">{l}</a>', h=PREFIX + path, c="on" if key == active else "", l=label)
                   for key, label, path in NAV)
        who = html('<div class="who"><span class="user" title="signed in {v}">{u}</span>'
                   '<span class="badge p-{p}" title="privacy setting">privacy: {p}</span>'
                   '<form method="post" action="{a}/logout"><input type="hidden" name="csrf" value="{c}">'
                   '<button type="submit" class="link">Sign out</button></form></div>',
                   v="with a sign-in link" if ctx.via == "link" else "with Microsoft", u=ctx.user,
                   p=ctx.privacy.mode, a=PREFIX, c=ctx.csrf)
        top = html('<header class="top"><a class="brand" href="{a}/">chatops<span>console</span></a>'
                   '<nav class="main">{n}</nav>{w}</header>', a=PREFIX, n=nav, w=who)
    else:
        top = html('<header class="top"><a class="brand" href="{a}/">chatops<span>console</span></a></header>', a=PREFIX)
    return html('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                '<meta name="referrer" content="no-referrer">'
                '<title>{t} · chatops console</title><link rel="stylesheet" href="{a}/console.css"></head>'
                '<body>{top}<main class="{m}"><div class="title-row"><h1>{t}</h1>{s}</div>{b}</main>{f}</body></html>',
                t=title, a=PREFIX, top=top, s=status_line, b=body, m="" if ctx else "narrow",
                f=html('<footer>Times are UTC. The numbers come from the audit trail, the same as '
                       '<code>chatops report</code>.</footer>') if ctx else Markup(""))


# -- sign-in -----------------------------------------------------------------------------------


def login(*, entra: bool, message: str = "", groups_configured: bool = True) -> Markup:
    if entra:
        how = html('<p>Operators sign in with their Microsoft work account; members of the groups in '
                   '<code>CHATOPS_ADMIN_GROUPS</code> get in.</p>'
                   '<p><a class="button primary" href="{a}/auth/start">Sign in with Microsoft</a></p>{w}',
                   a=PREFIX, w=Markup("") if groups_configured else html(
                       '<p class="warn">No admin group is configured (<code>CHATOPS_ADMIN_GROUPS</code>): nobody '
                       "can get in until one is.</p>"))
    else:
        how = html('<p>This console has no Microsoft sign-in configured. On a machine with the '
                   "deployment's settings, run</p><pre>chatops admin link --as YOUR-NAME</pre><p>and open the link it "
                   "prints. A link works once, for 15 minutes (<code>--ttl</code> to change), and signs you in under "
                   "that name.</p>")
    msg = html('<p class="alert">{m}</p>', m=message) if message else Markup("")
    return layout("Sign in", html('<div class="signin card">{m}{h}</div>', m=msg, h=how), ctx=None)


def confirm_link(*, token: str, csrf: str, person: str) -> Markup:
    """A sign-in link's page: opening it uses nothing up; the button does."""
    body = html('<div class="signin card"><p>This one-time link signs <strong>{p}</strong> in to the '
                "console. It works once: confirm to use it.</p>"
                '<form method="post" action="{a}/auth/link"><input type="hidden" name="t" value="{t}">'
                '<input type="hidden" name="csrf" value="{c}">'
                '<p><button type="submit" class="button primary">Sign in as {p}</button></p></form>'
                '<p class="muted">Not {p}, or did not ask for a link? Close this page: nothing happens.</p></div>',
                p=person, a=PREFIX, t=token, c=csrf)
    return layout("Sign in", body, ctx=None)


def refused(title: str, message: str, *, detail: str = "") -> Markup:
    body = html('<div class="signin card"><p class="alert">{m}</p>{d}<p><a href="{a}/login">Back to sign-in</a></p></div>',
                m=message, d=html("<p>{d}</p>", d=detail) if detail else Markup(""), a=PREFIX)
    return layout(title, body, ctx=None)


# -- Overview ----------------------------------------------------------------------------------


def outcome_series(days: dict[str, dict]) -> list[Series]:
    return [Series(name, [d[name] for d in days.values()], OUTCOME_COLOURS[name])
            for name in ("answered", "no-evidence", "refused", "greeting")]


def cost_series(days: dict[str, dict]) -> list[Series]:
    models = sorted({m for d in days.values() for m in d["cost"]})
    return [Series(m, [d["cost"].get(m, 0.0) for d in days.values()], PALETTE[i % len(PALETTE)])
            for i, m in enumerate(models)]


def latency_rows(report) -> list[tuple[str, float | None, float | None]]:
    return [(stage, v.get("p50"), v.get("p95")) for stage, v in report.latency_ms.items()]


def overview(ctx: Ctx, report, *, days: int, since: datetime, until: datetime) -> Markup:
    labels = day_labels(since, until)
    daily = per_day(report, labels)
    total_latency = report.latency_ms.get("total", {})
    kpis = join([
        kpi("Questions", n(report.questions), f"and {n(report.greetings)} greetings", key="questions"),
        kpi("Answered", pct(report.answered_rate), "of questions", key="answered_rate", tone="t-answered"),
        kpi("No evidence", pct(report.no_evidence_rate), "nothing the asker may see", key="no_evidence_rate",
            tone="t-no-evidence"),
        kpi("Refused", pct(report.refused_rate), "identity, failures", key="refused_rate", tone="t-refused"),
        kpi("Feedback", f"{report.helpful} / {report.not_helpful}", f"helpful / not, on {pct(report.feedback_rate)} of answers",
            key="feedback"),
        kpi("Cost", cost(report.cost), f"{cost(report.cost_per_answer)} per answer", key="cost"),
        kpi("Latency p95", ms(total_latency.get("p95")), f"p50 {ms(total_latency.get('p50'))}", key="latency_p95"),
        kpi("Cache hits", pct(report.cache_hit_ratio), f"{n(report.escalations_open)} escalations open", key="cache"),
    ])
    unanswered_line = [Series("no evidence", [d["no-evidence"] for d in daily.values()], OUTCOME_COLOURS["no-evidence"])]
    grid = join([
        card("Questions per day, by outcome", charts.stacked_bars(labels, outcome_series(daily),
                                                                    title="Questions per day by outcome", whole=True)),
        card("Helpful and not helpful, per day", charts.diverging_bars(labels, Series("helpful", [d["helpful"] for d in daily.values()], HELPFUL),
                                                     Series("not helpful", [d["not_helpful"] for d in daily.values()], NOT_HELPFUL),
                                                     title="Feedback per day")),
        card("Latency per stage", charts.range_bars(latency_rows(report), title="Latency per stage, p50 and p95"),
             note="p50 and p95 over the answers that went through each stage"),
        card("Cost per day, by model", charts.stacked_bars(labels, cost_series(daily), title="Cost per day by model",
                                                           fmt=charts.money)),
        card("Unanswered questions per day", charts.lines(labels, unanswered_line, title="No-evidence questions per day", whole=True),
             note="questions nothing the asker may see answers: what the documents are missing"),
        card("By mode", table([("Mode"), ("Questions", True), ("Share", True)],
                              [[badge(mode), num_td(count, mode=mode), pct(count / report.questions if report.questions else None)]
                               for mode, count in report.by_mode.items()]
                              + ([[badge("greeting"), num_td(report.greetings, mode="greeting"), ""]] if report.greetings else []),
                              empty="No questions in this period.", id="by-mode")),
        card("Live tool calls", tool_calls_table(report.tool_calls),
             note="calls the model made to live tools, by tool and outcome"),
    ])
    rows = [[d["date"], num_td(d["questions"]), num_td(d["answered"]), num_td(d["no-evidence"]), num_td(d["refused"]),
             num_td(d["greeting"]), num_td(d["helpful"]), num_td(d["not_helpful"]), num_td(cost(sum(d["cost"].values())))]
            for d in reversed(list(daily.values())) if d["questions"] or d["greeting"]]
    day_table = card("Per day", table(["Day", ("Questions", True), ("Answered", True), ("No evidence", True),
                                       ("Refused", True), ("Greetings", True), ("Helpful", True), ("Not helpful", True), ("Cost", True)],
                                      rows, empty="No questions in this period.", id="per-day"), wide=True)
    options = join(html('<option value="{m}"{s}>{m}</option>', m=m, s=Markup(" selected") if m == ctx.privacy.mode else Markup(""))
                   for m in MODES)
    settings = card("Console settings", html(
        '<form method="post" action="{a}/settings/privacy" class="inline"><input type="hidden" name="csrf" value="{c}">'
        '<label>Privacy <select name="privacy">{o}</select></label><button type="submit">Save</button></form>'
        '<ul class="help"><li><b>full</b>: question text, Slack user ids and emails.</li>'
        '<li><b>anonymized</b>: question text; people as stable pseudonyms.</li>'
        '<li><b>off</b>: counts and metadata only (no question, answer or reason text, no people).</li></ul>',
        a=PREFIX, c=ctx.csrf, o=options), wide=True)
    return layout("Overview", html('<div class="kpis">{k}</div><div class="grid">{g}{t}{s}</div>',
                                   k=kpis, g=grid, t=day_table, s=settings),
                  ctx=ctx, active="overview", status_line=period_picker("/", days))


def tool_calls_table(per_tool: dict[str, dict[str, int]]) -> Markup:
    """Calls per tool, and per outcome: ok, and each other outcome that happened in the period."""
    outcomes = [o for o in TOOL_OUTCOMES if o == "ok" or any(o in per for per in per_tool.values())]
    return table(["Tool", ("Calls", True), *((o.replace("_", " "), True) for o in outcomes)],
                 [[html('<code class="id">{t}</code>', t=tool), num_td(sum(per.values()), tool=tool),
                   *(num_td(per.get(o, 0), tool=tool, outcome=o) for o in outcomes)]
                  for tool, per in per_tool.items()],
                 empty="No live tool was called in this period.", id="tool-calls")


# -- Questions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionFilter:
    since: date
    until: date              # inclusive
    channel: str = ""
    outcome: str = ""        # an OUTCOME_MODES key, or "mode:<mode>"
    feedback: str = ""       # "", helpful, not_helpful, none
    page: int = 1

    def modes(self) -> tuple[str, ...] | None:
        if self.outcome.startswith("mode:"):
            return (self.outcome[5:],)
        return OUTCOME_MODES.get(self.outcome)

    def query(self, **changes: Any) -> str:
        values = {"since": self.since.isoformat(), "until": self.until.isoformat(), "channel": self.channel,
                  "outcome": self.outcome, "feedback": self.feedback, "page": self.page, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _select(name: str, options: Sequence[tuple[str, str]], chosen: str, label: str) -> Markup:
    opts = join(html('<option value="{v}"{s}>{l}</option>', v=v, l=lab, s=Markup(" selected") if v == chosen else Markup(""))
                for v, lab in options)
    return html('<label>{l}<select name="{n}">{o}</select></label>', l=label, n=name, o=opts)


def questions(ctx: Ctx, rows: list[dict], total: int, f: QuestionFilter, *, channels: list[str], per_page: int) -> Markup:
    outcome_options = [("", "any outcome"), *((k, k) for k in OUTCOME_MODES),
                       *((f"mode:{m}", f"mode: {m}") for m in MODE_OUTCOME)]
    # Direct messages are listed only under "full": their ids stand for people.
    channels = [c for c in channels if ctx.privacy.channel(c) == c]
    channel_options = [("", "any channel"), *((c, c) for c in channels)]
    if f.channel and f.channel not in channels:
        channel_options.append((f.channel, f.channel))
    form = html('<form method="get" action="{a}/questions" class="filters">'
                '<label>From<input type="date" name="since" value="{s}"></label>'
                '<label>To<input type="date" name="until" value="{u}"></label>{c}{o}{fb}'
                '<button type="submit">Filter</button><a class="reset" href="{a}/questions">Reset</a></form>',
                a=PREFIX, s=f.since.isoformat(), u=f.until.isoformat(),
                c=_select("channel", channel_options, f.channel, "Channel"),
                o=_select("outcome", outcome_options, f.outcome, "Outcome"),
                fb=_select("feedback", [("", "any feedback"), ("helpful", "helpful"), ("not_helpful", "not helpful"),
                                        ("none", "no feedback")], f.feedback, "Feedback"))
    body_rows = []
    for r in rows:
        text = ctx.privacy.text(r["question"])
        link = html('<a href="{a}/questions/{i}">{t}</a>', a=PREFIX, i=r["id"],
                    t=_clip(text, 110) if text is not None else f"question #{r['id']}")
        body_rows.append([when(r["at"]), _channel(ctx, r), person(ctx, r["asker_slack_id"], r["asker_email"]), link,
                          badge(r["mode"]), num_td(ms(r["latency_ms"])), num_td(cost(r["cost"])),
                          num_td(r["helpful"]), num_td(r["not_helpful"])])
    pages = max(1, -(-total // per_page))
    pager = html('<div class="pager"><span>{t} questions · page {p} of {ps}</span>{prev}{next}</div>',
                 t=n(total), p=f.page, ps=pages,
                 prev=html('<a href="{a}/questions?{q}">← newer</a>', a=PREFIX, q=f.query(page=f.page - 1)) if f.page > 1 else Markup(""),
                 next=html('<a href="{a}/questions?{q}">older →</a>', a=PREFIX, q=f.query(page=f.page + 1)) if f.page < pages else Markup(""))
    listing = table(["Asked (UTC)", "Channel", "Asker", "Question", "Outcome", ("Latency", True), ("Cost", True),
                     ("Helpful", True), ("Not helpful", True)], body_rows, empty="No question matches these filters.", id="questions")
    return layout("Questions", html('{f}<section class="card wide">{l}{p}</section>', f=form, l=listing, p=pager),
                  ctx=ctx, active="questions")


def _channel(ctx: Ctx, row: dict) -> str:
    return ctx.privacy.channel(row.get("channel"), row.get("channel_type")) or "—"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def question_detail(ctx: Ctx, q: dict, votes: list[dict], tool_calls: Sequence[Any] = ()) -> Markup:
    p = ctx.privacy
    members = q.get("audience_members")
    if members is None:
        members_shown: Any = "—"
    elif not p.shows_people:
        members_shown = f"{len(members)} people"
    else:
        members_shown = join((html('<span class="chip">{m}</span>', m=p.person(m)) for m in members), " ")
    where = p.channel(q["channel"], q["channel_type"])
    facts = [
        ("Asked", when(q["at"])), ("Channel", f"{q['channel'] or '—'} ({q['channel_type'] or 'no channel'})"
                                   if where == q["channel"] else where),
        ("Asker", person(ctx, q["asker_slack_id"], q["asker_email"])), ("Outcome", badge(q["mode"])),
        ("Model", q.get("route") or "—"), ("Audience", q.get("audience") or "—"),
        ("Audience members", members_shown), ("Documents hidden from this audience", n(q.get("hidden_documents"))),
        ("Best similarity", "—" if q.get("top_similarity") is None else f"{q['top_similarity']:.3f}"),
        ("Documents given to the model", n(q.get("sources_count"))),
        ("Citations kept / dropped", f"{n(q.get('citations_kept'))} / {n(q.get('citations_dropped'))}"),
        ("Answer id", q.get("answer_id") or "—"), ("Correlation id", q.get("correlation_id") or "—"),
    ]
    if q.get("escalated_at"):
        facts.append(("Escalated", f"{when(q['escalated_at'])} by {p.person(q.get('escalated_by')) or 'hidden'}"
                                   + (f"; resolved {when(q['resolved_at'])}" if q.get("resolved_at") else "; open")))
    dl = join(html("<dt>{k}</dt><dd>{v}</dd>", k=k, v=v) for k, v in facts)
    text, answer = p.text(q["question"]), p.text(q.get("answer"))
    qa = html('<section class="card wide"><h2>Question</h2>{q}<h2>Answer</h2>{a}</section>',
              q=html('<blockquote class="question" id="question-text">{t}</blockquote>', t=text) if text is not None else hidden(
                  "The question is not shown (privacy: off)."),
              a=html('<div class="answer" id="answer-text">{t}</div>', t=answer) if answer else (
                  hidden("The answer is not shown (privacy: off).") if answer is None and q.get("answer") else
                  html('<p class="muted">No answer text was recorded.</p>')))
    retrieved, cited = _documents(ctx, q)
    stages = q.get("stages") or {}
    timing_rows = [[stage, num_td(ms(value), stage=stage)] for stage, value in stages.items() if isinstance(value, (int, float))]
    timing_rows.append([html("<b>total</b>"), num_td(ms(q.get("latency_ms")), stage="total")])
    timing_chart = charts.range_bars([(s, v, None) for s, v in stages.items() if isinstance(v, (int, float))],
                                     title="Time per stage", names=("time", ""), legend=False) if stages else Markup("")
    money = table(["", ("Value", True)], [
        ["Prompt tokens", num_td(n(q.get("prompt_tokens")), fact="prompt_tokens")],
        ["Completion tokens", num_td(n(q.get("completion_tokens")), fact="completion_tokens")],
        ["Cost", num_td(cost(q.get("cost")), fact="cost")]], id="usage")
    vote_rows = [[when(v["at"]), person(ctx, v["voter"]), html('<span class="vote up">helpful</span>') if v["vote"] == "helpful" else html('<span class="vote down">not helpful</span>'),
                  "yes" if v["in_audience"] else "no (counted only)",
                  (p.text(v.get("reason")) if p.text(v.get("reason")) is not None else hidden()) if v.get("reason") else "—"]
                 for v in votes]
    body = join([
        html('<p class="crumbs"><a href="{a}/questions">← all questions</a></p>', a=PREFIX),
        html('<div class="grid">{qa}<section class="card"><h2>Facts</h2><dl class="facts">{dl}</dl></section>'
             '<section class="card"><h2>Timings</h2>{tt}{tc}<h2>Tokens and cost</h2>{m}</section>{r}{c}{t}{v}</div>',
             qa=qa, dl=dl, tt=table(["Stage", ("Time", True)], timing_rows, id="timings"), tc=timing_chart, m=money,
             r=card("Retrieved documents", retrieved, wide=True,
                    note="what retrieval found for this audience, best first; scores as ranked"),
             c=card("Cited in the answer", cited, wide=True),
             t=card("Live tool calls", _tool_calls(ctx, tool_calls), wide=True,
                    note="what the model looked up in live tools for this answer, under the asker's identity, "
                         "in the order it was called"),
             v=card("Feedback", table(["When", "Who", "Vote", "In the audience", "Reason"], vote_rows,
                                      empty="No feedback on this answer."), wide=True)),
    ])
    return layout(f"Question #{q['id']}", body, ctx=ctx, active="questions")


def _tool_calls(ctx: Ctx, calls: Sequence[Any]) -> Markup:
    """One answer's tool calls (``chatops.store.tools.CallRow``). Their arguments are what the model
    filled in from the question, and an error's detail can repeat them: both are shown only where
    the question text is."""
    p = ctx.privacy
    rows = []
    for c in calls:
        arguments = (html("<code>{j}</code>", j=json.dumps(c.arguments, ensure_ascii=False, sort_keys=True))
                     if p.shows_text else hidden())
        detail: Any = "—" if not c.detail else (_clip(c.detail, 300) if p.shows_text else hidden())
        rows.append([c.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), html('<code class="id">{t}</code>', t=c.tool),
                     html('<code class="id">{f}</code>', f=c.function), arguments, num_td(ms(c.duration_ms), call=c.id),
                     tool_outcome(c.outcome), num_td(n(c.result_chars)), detail])
    return table(["When (UTC)", "Tool", "Function", "Arguments", ("Duration", True), "Outcome", ("Result (characters)", True),
                  "Detail"], rows, empty="No live tool was called for this answer.", id="tool-calls")


def _documents(ctx: Ctx, q: dict) -> tuple[Markup, Markup]:
    """What one question retrieved and cited: tables, or under privacy "off" counts (titles and ids
    tell what it was about)."""
    found, cited = q.get("retrieved") or [], q.get("cited") or []
    if not ctx.privacy.shows_documents:
        return (hidden(f"{len(found)} documents retrieved; titles not shown (privacy: off)."),
                hidden(f"{len(cited)} cited; titles not shown (privacy: off)."))
    cited_ids = {c.get("source") for c in cited}
    retrieved = table(["Document", "Source", "Title", ("Score", True), "Cited"],
                      [[html("<code>{d}</code>", d=r.get("doc_id")), r.get("source") or "—", r.get("title") or "—",
                        num_td(f"{r['score']:.3f}" if isinstance(r.get("score"), (int, float)) else "—",
                               doc=r.get("doc_id") or ""),
                        "✓ cited" if r.get("doc_id") in cited_ids else ""] for r in found],
                      empty="Nothing was retrieved (or retrieval was not recorded).", id="retrieved")
    listed = table([("#", True), "Title", "Document", "Link"],
                   [[c.get("n", ""), c.get("title") or "—", html("<code>{s}</code>", s=c.get("source") or "—"), _link(c.get("url"))]
                    for c in cited], empty="No citations.", id="cited")
    return retrieved, listed


def _link(url: Any) -> Markup:
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return html('<a href="{u}" rel="noreferrer noopener" target="_blank">open</a>', u=url)
    return Markup("—")


# -- Unanswered --------------------------------------------------------------------------------


def unanswered(ctx: Ctx, report, *, days: int, since: datetime, until: datetime) -> Markup:
    labels = day_labels(since, until)
    daily = per_day(report, labels)
    counts = [d["no-evidence"] for d in daily.values()]
    rates = [(d["no-evidence"] / d["questions"]) if d["questions"] else None for d in daily.values()]
    total = sum(counts)
    charts_row = join([
        card("No-evidence questions per day", charts.lines(labels, [Series("no evidence", counts, OUTCOME_COLOURS["no-evidence"])],
                                                           title="No-evidence questions per day", whole=True)),
        card("Share of questions without evidence", charts.lines(labels, [Series("share", rates, "#b7791f")],
                                                                 title="No-evidence share per day", fmt=charts.percent, top=1.0)),
    ])
    if ctx.privacy.shows_text:
        rows = [[html('<span class="qtext">{q}</span>', q=e["question"]), num_td(e["count"]), when(datetime.fromisoformat(e["last_asked"]))]
                for e in report.top_unanswered]
        listing = table(["Question", ("Times asked", True), "Last asked (UTC)"], rows,
                        empty="Every question found evidence in this period.", id="unanswered")
    else:
        rows = [[num_td(i), num_td(e["count"]), when(datetime.fromisoformat(e["last_asked"]))]
                for i, e in enumerate(report.top_unanswered, 1)]
        listing = html('{p}{t}', p=hidden("Question text is not shown (privacy: off); each row is one question, "
                                          "asked the same way each time."),
                       t=table([("#", True), ("Times asked", True), "Last asked (UTC)"], rows,
                               empty="Every question found evidence in this period.", id="unanswered"))
    export = html('<a class="button" href="{a}/unanswered.csv?days={d}" download>Export CSV</a>', a=PREFIX, d=days)
    summary = html('<p class="lead"><b data-kpi="no_evidence_total">{t}</b> questions found no document the asker may '
                   'see ({r} of questions) — grouped by their wording below, most asked first.</p>',
                   t=n(total), r=pct(report.no_evidence_rate))
    return layout("Unanswered", html('{s}<div class="grid">{c}{l}</div>', s=summary, c=charts_row,
                                     l=card("What the documents are missing", html("{e}{l}", e=export, l=listing), wide=True)),
                  ctx=ctx, active="unanswered", status_line=period_picker("/unanswered", days))


# -- Feedback ----------------------------------------------------------------------------------


def feedback(ctx: Ctx, report, votes: list[dict], *, days: int, since: datetime, until: datetime) -> Markup:
    labels = day_labels(since, until)
    daily = per_day(report, labels)
    kpis = join([kpi("Helpful", n(report.helpful), "votes", key="helpful", tone="t-answered"),
                 kpi("Not helpful", n(report.not_helpful), "votes", key="not_helpful", tone="t-refused"),
                 kpi("Answers with feedback", pct(report.feedback_rate), "of answers", key="feedback_rate")])
    liked = table(["Document", "Title", ("Helpful votes", True)],
                  [[html("<code>{d}</code>", d=e["doc_id"]), e["title"] or "—", num_td(e["helpful"], doc=e["doc_id"])]
                   for e in report.most_liked], empty="No helpful votes on cited documents yet.", id="most-liked")
    disliked = table(["Document", "Title", ("Not helpful votes", True)],
                     [[html("<code>{d}</code>", d=e["doc_id"]), e["title"] or "—", num_td(e["not_helpful"], doc=e["doc_id"])]
                      for e in report.most_disliked], empty="No unhelpful votes on cited documents.", id="most-disliked")
    routes = table(["Model", ("Helpful", True), ("Not helpful", True)],
                   [[route, num_td(c.get("helpful", 0)), num_td(c.get("not_helpful", 0))]
                    for route, c in report.not_helpful_by_route.items()], empty="No votes.")
    with_reason = [v for v in votes if v.get("reason")][-20:][::-1]
    reasons = table(["When", "Who", "Vote", "Reason"],
                    [[when(v["at"]), person(ctx, v["voter"]), html('<span class="vote up">helpful</span>') if v["vote"] == "helpful" else html('<span class="vote down">not helpful</span>'),
                      ctx.privacy.text(v["reason"]) if ctx.privacy.shows_text else hidden()] for v in with_reason],
                    empty="No vote came with a reason.")
    body = html('<div class="kpis">{k}</div><div class="grid">{c}{r}{l}{d}{rs}</div>', k=kpis,
                c=card("Helpful and not helpful, per day", charts.diverging_bars(labels, Series("helpful", [d["helpful"] for d in daily.values()], HELPFUL),
                                                               Series("not helpful", [d["not_helpful"] for d in daily.values()], NOT_HELPFUL),
                                                               title="Feedback per day")),
                r=card("Votes by model", routes),
                l=card("Most liked documents", liked, note="cited in answers people in the audience found helpful"),
                d=card("Most disliked documents", disliked, note="cited in answers people in the audience found unhelpful"),
                rs=card("Latest reasons", reasons, wide=True))
    return layout("Feedback", body, ctx=ctx, active="feedback", status_line=period_picker("/feedback", days))


# -- Proposals ---------------------------------------------------------------------------------

PENDING, DECIDED, EXECUTED = ("proposed", "approved", "executing"), ("rejected", "expired"), ("succeeded", "failed")


def _arguments(ctx: Ctx, arguments: dict) -> Any:
    if not ctx.privacy.shows_text:
        return html('<span class="muted">{k}</span>', k=", ".join(sorted(arguments)) or "none")
    return html("<code>{j}</code>", j=json.dumps(arguments, ensure_ascii=False, sort_keys=True))


def proposals(ctx: Ctx, items: list) -> Markup:
    def rows(states: tuple[str, ...], decided: bool) -> list[list[Any]]:
        out = []
        for p in items:
            if p.state not in states:
                continue
            row = [html('<code class="id" title="{i}">{s}</code>', i=p.id, s=p.id[:8]), p.action, _arguments(ctx, p.arguments),
                   state_badge(p.state), person(ctx, p.requested_by_slack, p.requested_by_email), when(p.created_at)]
            if decided:
                outcome = p.reason if p.reason else (json.dumps(p.result, ensure_ascii=False)[:200] if p.result else "—")
                row += [person(ctx, p.decided_by_slack, p.decided_by_email) if (p.decided_by_slack or p.decided_by_email)
                        else ("the expiry sweep" if p.state == "expired" else "—"), when(p.decided_at),
                        outcome if ctx.privacy.shows_text else hidden()]
            else:
                row += [when(p.expires_at), ago(p.expires_at, ctx.now)]
            out.append(html('<tr data-proposal="{i}">{c}</tr>', i=p.id, c=join(
                c if isinstance(c, Markup) and c.startswith("<td") else html("<td>{c}</td>", c=c) for c in row)))
        return out

    def section(title: str, states: tuple[str, ...], decided: bool, key: str) -> Markup:
        heads = ["Id", "Action", "Arguments", "State", "Requested by", "Created (UTC)"]
        heads += ["Decided by", "Decided (UTC)", "Reason or result"] if decided else ["Expires (UTC)", ""]
        found = rows(states, decided)
        inner = (html('<div class="table-wrap"><table id="{k}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table></div>',
                      k=key, h=join(html("<th>{h}</th>", h=h) for h in heads), b=join(found))
                 if found else html('<p class="empty">None.</p>'))
        return card(f"{title} ({len(found)})", inner, wide=True)

    note = html('<p class="lead">Decisions stay in Slack, where the approvers are: this page only shows them.</p>')
    body = html('{n}<div class="grid">{a}{b}{c}</div>', n=note,
                a=section("Pending", PENDING, False, "pending"), b=section("Decided", DECIDED, True, "decided"),
                c=section("Executed", EXECUTED, True, "executed"))
    return layout("Proposals", body, ctx=ctx, active="proposals")


# -- Sources -----------------------------------------------------------------------------------


def sources(ctx: Ctx, statuses: list, retrieved: dict[str, tuple[int, int]], *, days: int) -> Markup:
    rows = []
    for s in statuses:
        if not s.synced:
            fresh = html('<span class="badge s-expired">never synced</span>')
        elif s.stale:
            fresh = html('<span class="badge s-failed">permissions stale</span>')
        elif s.running:
            fresh = html('<span class="badge s-executing">syncing</span>')
        else:
            fresh = html('<span class="badge s-succeeded">fresh</span>')
        rows.append([html("<b>{n}</b>", n=s.name), s.kind, num_td(s.documents, source=s.name), num_td(s.hidden),
                     num_td(s.skipped), num_td(s.pending), ago(s.last_incremental_at, ctx.now), ago(s.last_full_at, ctx.now),
                     ago(s.acl_watermark, ctx.now), fresh,
                     html('<span class="error">{e}</span>', e=_clip(s.last_error, 160)) if s.last_error else "—"])
    configured = table(["Source", "Kind", ("Documents", True), ("Hidden", True), ("Skipped", True), ("Pending", True),
                        "Content synced", "Full sync", "Permissions read", "Freshness", "Last error"], rows,
                       empty="No sources are configured in CHATOPS_CONFIG (documents ingested with `chatops ingest` "
                             "are listed below as answers retrieve them).", id="sources")
    used = table(["Index source", ("Documents retrieved", True), ("Retrievals", True)],
                 [[html("<code>{s}</code>", s=src), num_td(docs), num_td(hits)] for src, (docs, hits) in
                  sorted(retrieved.items(), key=lambda kv: -kv[1][1])],
                 empty="No retrieval recorded in this period.", id="retrieved-sources")
    body = html('<div class="grid">{a}{b}</div>',
                a=card("Configured sources", configured, wide=True,
                       note="documents, and how fresh each source's content and permissions are; restricted documents "
                            "of a source whose permissions are stale are withheld from answers"),
                b=card(f"Documents answers drew on (last {days} days)", used, wide=True))
    return layout("Sources", body, ctx=ctx, active="sources", status_line=period_picker("/sources", days))


# -- Workers -----------------------------------------------------------------------------------


def workers(ctx: Ctx, overview, failures, *, stale_after: float) -> Markup:
    kpis = join([kpi("Workers alive", n(overview.alive), f"seen in the last {stale_after:.0f} s", key="workers_alive",
                     tone="t-answered" if overview.alive else "t-refused"),
                 *(kpi(f"Queue {q}", n(depth), "tasks waiting", key=f"queue:{q}") for q, depth in overview.queues.items()),
                 kpi("Last task taken", ago(overview.last_taken, ctx.now), when(overview.last_taken), key="last_taken"),
                 kpi("Failures (24 h)", n(failures.questions_total + len(failures.proposals)), "questions and actions",
                     key="failures", tone="t-refused" if failures.questions_total or failures.proposals else "")])
    seen = table(["Worker", "Last seen", "State"],
                 [[w.name, f"{when(w.last_seen)} ({ago(w.last_seen, ctx.now)})",
                   html('<span class="badge s-succeeded">alive</span>') if w.alive else html('<span class="badge s-expired">gone</span>')]
                  for w in overview.workers], empty="No worker has reported in the last day.", id="workers")
    failed_q = table(["When", "Channel", "Question", "Correlation id"],
                     [[when(r["at"]), _channel(ctx, r),
                       html('<a href="{a}/questions/{i}">{t}</a>', a=PREFIX, i=r["id"],
                            t=_clip(ctx.privacy.text(r["question"]) or f"question #{r['id']}", 90)),
                       html("<code>{c}</code>", c=r.get("correlation_id") or "—")] for r in failures.questions],
                     empty="No question failed.", id="failed-questions")
    failed_p = table(["When", "Action", "Proposal", "Detail"],
                     [[e["at"].replace("T", " ")[:16], (e.get("proposal") or {}).get("action", "—"),
                       html("<code>{p}</code>", p=(e.get("proposal_id") or "")[:8]),
                       json.dumps(e.get("detail") or {}, ensure_ascii=False)[:200] if ctx.privacy.shows_text else hidden()]
                      for e in failures.proposals], empty="No action failed.", id="failed-proposals")
    body = html('<div class="kpis">{k}</div><div class="grid">{a}{b}{c}</div>', k=kpis,
                a=card("Workers", seen, wide=True),
                b=card(f"Failed questions in the last 24 h ({failures.questions_total})", failed_q, wide=True),
                c=card(f"Failed actions in the last 24 h ({len(failures.proposals)})", failed_p, wide=True))
    return layout("Workers", body, ctx=ctx, active="workers")


# -- Evaluations -------------------------------------------------------------------------------


def evaluations(ctx: Ctx, events: list[dict]) -> Markup:
    """The last ``chatops eval answers`` run of each set per configuration (embedder, reranker, rule,
    model): the events are newest first, so the first of each key is the last run."""
    latest: dict[tuple, dict] = {}
    for e in events:
        d = e.get("detail") or {}
        config = d.get("config") or {}
        key = (str(d.get("set")), *(str(config.get(k)) for k in ("embedder", "reranker", "rule", "model")))
        latest.setdefault(key, e)
    rows = []
    for e in sorted(latest.values(), key=lambda e: (str((e["detail"] or {}).get("set")), -e["at"].timestamp())):
        d, s = e["detail"], (e["detail"] or {}).get("summary") or {}
        config = d.get("config") or {}
        k = d.get("k", 5)
        leaks = int(s.get("leaks") or 0)
        rows.append([html("<code>{s}</code>", s=str(d.get("set"))),
                     html("{e}<br><small>reranker {r} · rule {u} · {m}</small>", e=str(config.get("embedder")),
                          r=str(config.get("reranker") or "none"), u=str(config.get("rule")),
                          m=str(config.get("model") or "no model (extractive)")),
                     num_td(s.get("cases")), pct(s.get(f"hit@{k}")), pct(s.get(f"mrr@{k}")),
                     pct(s.get("citation_precision")), pct(s.get("no_evidence_rate")),
                     pct(s.get("false_no_evidence_rate")),
                     html('<span class="badge {c}">{n}</span>', c="s-failed" if leaks else "s-succeeded", n=str(leaks)),
                     ms(((s.get("latency_ms") or {}).get("total") or {}).get("p50")),
                     ms(((s.get("latency_ms") or {}).get("total") or {}).get("p95")),
                     ago(e["at"], ctx.now)])
    body = card("Answer quality, last run per configuration", table(
        ["Set", "Configuration", ("Cases", True), "hit@k", "MRR@k", "Citation precision", "“Couldn’t find” when unanswerable",
         "False “couldn’t find”", "Leaks", "p50", "p95", "Run"], rows,
        empty="No evaluation recorded yet: run `chatops eval answers --set FILE` (docs/retrieval.md).",
        id="evaluations"), wide=True,
        note="from `chatops eval answers`; leaks must be 0")
    return layout("Evaluations", body, ctx=ctx, active="evaluations")
