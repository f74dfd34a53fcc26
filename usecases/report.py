"""Quality, latency and cost over a period, from the audit store: ``chatops report`` and the
operator console read the same numbers.

Outcomes: *answered* (llm, extractive, cached), *no-evidence*, *refused* (and failed), and
greetings, which are counted but are not questions about documents. Rates are over all
questions but greetings. Percentiles are nearest-rank over the answers that have the stage.
Live tool calls are counted per tool and outcome from their own records (``tool_calls``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from chatops.store.answers import Answers
from chatops.store.tools import OUTCOMES as TOOL_OUTCOMES, ToolRecords
from usecases.answer_cache import normalise

ANSWERED = ("llm", "extractive", "cached")
STAGES = ("queue_wait", "identity", "audience", "cache", "retrieval", "rerank", "generation", "slack_post")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Report:
    since: str
    until: str
    questions: int = 0
    greetings: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    answered_rate: float | None = None
    no_evidence_rate: float | None = None
    refused_rate: float | None = None
    helpful: int = 0
    not_helpful: int = 0
    feedback_rate: float | None = None               # answers with at least one vote / answers
    not_helpful_by_route: dict[str, dict[str, int]] = field(default_factory=dict)
    escalations: int = 0
    escalations_open: int = 0
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)   # stage -> p50, p95
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_per_answer: float | None = None
    cost: float = 0.0
    cost_per_answer: float | None = None
    unpriced_answers: int = 0
    cache_hit_ratio: float | None = None
    per_day: list[dict[str, Any]] = field(default_factory=list)     # date, outcomes, votes, cost by model
    top_unanswered: list[dict[str, Any]] = field(default_factory=list)
    most_disliked: list[dict[str, Any]] = field(default_factory=list)
    most_liked: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: dict[str, dict[str, int]] = field(default_factory=dict)   # tool -> outcome -> calls

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Unanswered:
    """Questions that found no evidence, grouped by their wording (``normalise``): each group's
    latest wording, how many times it was asked and when last."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        entry = self._groups.setdefault(normalise(row["question"]),
                                        {"question": row["question"], "count": 0, "last_asked": None})
        entry["count"] += 1
        entry["last_asked"] = row["at"].isoformat()
        entry["question"] = row["question"]

    def top(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` most asked, ties by wording."""
        return sorted(self._groups.values(), key=lambda e: (-e["count"], e["question"]))[:n]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _outcome(mode: str) -> str:
    if mode in ANSWERED:
        return "answered"
    if mode in ("refused", "failed"):
        return "refused"
    return mode


def report(answers: Answers, since: datetime, until: datetime | None = None, *, top: int = 10) -> Report:
    """The report of the questions asked since ``since``."""
    until = until or datetime.now(timezone.utc)
    return build(answers.questions(since, until), answers.feedback(since, until), since=since, until=until, top=top,
                 tool_counts=ToolRecords(answers.store).call_counts(since, until))


def build(rows: Iterable[dict[str, Any]], votes: Iterable[dict[str, Any]], *, since: datetime,
          until: datetime, top: int = 10, tool_counts: Mapping[tuple[str, str], int] | None = None) -> Report:
    """The report over question rows and their votes (``chatops.store.answers.Answers``), and the
    tool calls' ``{(tool, outcome): calls}`` (``chatops.store.tools.ToolRecords.call_counts``)."""
    report = Report(since=since.isoformat(), until=until.isoformat())
    report.tool_calls = tool_calls(tool_counts or {})
    modes: Counter[str] = Counter()
    stage_values: dict[str, list[float]] = defaultdict(list)
    days: dict[str, dict[str, Any]] = {}
    unanswered = Unanswered()
    answers = 0
    for row in rows:
        mode = row["mode"]
        modes[mode] += 1
        day = row["at"].date().isoformat()
        d = days.setdefault(day, {"date": day, "answered": 0, "no-evidence": 0, "refused": 0, "greeting": 0,
                                  "helpful": 0, "not_helpful": 0, "cost": defaultdict(float), "questions": 0,
                                  "tokens": 0})
        d[_outcome(mode)] = d.get(_outcome(mode), 0) + 1
        if mode != "greeting":
            d["questions"] += 1
        for stage, ms in (row.get("stages") or {}).items():
            if isinstance(ms, (int, float)) and (ms or stage in ("identity", "audience", "retrieval")):
                stage_values[stage].append(float(ms))
        if row.get("latency_ms") is not None:
            stage_values["total"].append(float(row["latency_ms"]))
        if mode in ANSWERED:
            answers += 1
            report.input_tokens += row.get("prompt_tokens") or 0
            report.output_tokens += row.get("completion_tokens") or 0
            d["tokens"] += (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0)
            if row.get("cost") is not None:
                report.cost += row["cost"]
                d["cost"][row.get("route") or "none"] += row["cost"]
            elif row.get("prompt_tokens"):
                report.unpriced_answers += 1
        if mode == "no-evidence":
            unanswered.add(row)
        if row.get("escalated_at") is not None:
            report.escalations += 1
            if row.get("resolved_at") is None:
                report.escalations_open += 1

    report.greetings = modes.pop("greeting", 0)
    report.by_mode = dict(sorted(modes.items()))
    report.questions = sum(modes.values())
    report.answered_rate = _rate(sum(modes[m] for m in ANSWERED), report.questions)
    report.no_evidence_rate = _rate(modes["no-evidence"], report.questions)
    report.refused_rate = _rate(modes["refused"] + modes["failed"], report.questions)
    report.cache_hit_ratio = _rate(modes["cached"], answers)
    total_tokens = report.input_tokens + report.output_tokens
    report.tokens_per_answer = round(total_tokens / answers, 1) if answers else None
    report.cost = round(report.cost, 6)
    report.cost_per_answer = round(report.cost / answers, 6) if answers else None
    report.latency_ms = {stage: {"p50": _round(percentile(v, 50)), "p95": _round(percentile(v, 95))}
                         for stage in (*STAGES, "total") if (v := stage_values.get(stage))}

    voted_answers: set[str] = set()
    by_route: dict[str, Counter[str]] = defaultdict(Counter)
    disliked: Counter[tuple[str, str]] = Counter()
    liked: Counter[tuple[str, str]] = Counter()
    for vote in votes:
        voted_answers.add(vote["answer_id"])
        kind = vote["vote"]
        if kind == "helpful":
            report.helpful += 1
        else:
            report.not_helpful += 1
        by_route[vote.get("route") or "none"][kind] += 1
        day = vote["answered_at"].date().isoformat()
        if day in days:
            days[day][kind] += 1
        if not vote.get("in_audience"):
            continue        # counted, but says nothing about the documents
        for cited in vote.get("cited") or []:
            key = (cited.get("source") or "", cited.get("title") or "")   # a citation's source is its doc id
            (liked if kind == "helpful" else disliked)[key] += 1
    report.feedback_rate = _rate(len(voted_answers), answers)
    report.not_helpful_by_route = {route: dict(c) for route, c in sorted(by_route.items())}
    report.per_day = [{**d, "cost": {m: round(c, 6) for m, c in d["cost"].items()}}
                      for _, d in sorted(days.items())]
    report.top_unanswered = unanswered.top(top)
    report.most_disliked = [{"title": title, "doc_id": doc, "not_helpful": n}
                            for (doc, title), n in disliked.most_common(top)]
    report.most_liked = [{"title": title, "doc_id": doc, "helpful": n} for (doc, title), n in liked.most_common(top)]
    return report


def tool_calls(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """``{(tool, outcome): calls}`` as ``{tool: {outcome: calls}}``: tools by name, outcomes in
    ``chatops.store.tools.OUTCOMES``' order (ok first), none with no call."""
    order = {o: i for i, o in enumerate(TOOL_OUTCOMES)}
    nested: dict[str, dict[str, int]] = {}
    for (tool, outcome), calls in sorted(counts.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99), kv[0][1])):
        if calls:
            nested.setdefault(tool, {})[outcome] = calls
    return nested


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def as_text(r: Report) -> str:
    """The report for a terminal."""
    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%"

    lines = [f"chatops report: {r.since[:16]} → {r.until[:16]} (UTC)", "",
             f"Questions        {r.questions}  (and {r.greetings} greetings)",
             f"  answered       {pct(r.answered_rate)}   no evidence {pct(r.no_evidence_rate)}   "
             f"refused {pct(r.refused_rate)}",
             "  by mode        " + ", ".join(f"{m} {n}" for m, n in r.by_mode.items()),
             f"Feedback         👍 {r.helpful}  👎 {r.not_helpful}  on {pct(r.feedback_rate)} of answers",
             f"Escalations      {r.escalations} ({r.escalations_open} open)",
             f"Cache hit ratio  {pct(r.cache_hit_ratio)}",
             f"Tokens           {r.input_tokens} in, {r.output_tokens} out; "
             f"{r.tokens_per_answer if r.tokens_per_answer is not None else '—'} per answer",
             f"Cost             {r.cost:.4f} total; "
             f"{'—' if r.cost_per_answer is None else f'{r.cost_per_answer:.5f}'} per answer"
             + (f" ({r.unpriced_answers} answers used models without a price)" if r.unpriced_answers else ""),
             "", "Latency (ms)     p50      p95"]
    for stage, v in r.latency_ms.items():
        lines.append(f"  {stage:<14} {v['p50'] if v['p50'] is not None else '—':>7}  {v['p95'] if v['p95'] is not None else '—':>7}")
    if r.tool_calls:
        lines += ["", f"Live tool calls  {sum(sum(per.values()) for per in r.tool_calls.values())} in all, by tool and outcome"]
        lines += [f"  {tool:<14} {', '.join(f'{o} {n}' for o, n in per.items())}" for tool, per in r.tool_calls.items()]
    if r.not_helpful_by_route:
        lines += ["", "Votes by route"]
        lines += [f"  {route:<20} 👍 {c.get('helpful', 0)}  👎 {c.get('not_helpful', 0)}"
                  for route, c in r.not_helpful_by_route.items()]
    if r.per_day:
        lines += ["", "Per day          questions answered no-evidence refused   tokens    cost"]
        for d in r.per_day:
            lines.append(f"  {d['date']}     {d['questions']:>9} {d['answered']:>8} {d['no-evidence']:>11} "
                         f"{d['refused']:>7} {d['tokens']:>8}  {sum(d['cost'].values()):.4f}")
    if r.top_unanswered:
        lines += ["", "Top unanswered questions"]
        lines += [f"  {e['count']:>3} × {e['question'][:100]}" for e in r.top_unanswered]
    if r.most_disliked:
        lines += ["", "Most disliked documents"]
        lines += [f"  {e['not_helpful']:>3} × {e['title']} ({e['doc_id']})" for e in r.most_disliked]
    return "\n".join(lines)
