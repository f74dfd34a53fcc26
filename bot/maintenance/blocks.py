"""Block Kit for the daily report posted by the scheduler (``CHATOPS_REPORT_CHANNEL``). Pure."""

from __future__ import annotations

from bot import limits
from bot.mrkdwn import escape


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def report_message(report, *, quotes=None, console_url: str | None = None) -> dict:
    """The day in numbers: questions and outcomes, feedback, escalations, latency, cost, live tool
    calls (when there were any), and the unanswered questions ``quotes``
    (usecases.report_quotes.Quotes) allows: the text of those asked in public channels (what
    operators need to fix the documents), a count of the others. Without ``quotes`` no question
    is quoted."""
    p95 = (report.latency_ms.get("total") or {}).get("p95")
    lines = [
        f"*Questions:* {report.questions}  ·  answered {_pct(report.answered_rate)}  ·  "
        f"no evidence {_pct(report.no_evidence_rate)}  ·  refused {_pct(report.refused_rate)}",
        f"*Feedback:* 👍 {report.helpful}  👎 {report.not_helpful}  ·  escalations {report.escalations} "
        f"({report.escalations_open} open)",
        f"*Latency p95:* {'—' if p95 is None else f'{p95 / 1000:.1f} s'}  ·  *cache hits:* {_pct(report.cache_hit_ratio)}",
        f"*Cost:* {report.cost:.2f}  ·  tokens {report.input_tokens + report.output_tokens:,}",
    ]
    if report.tool_calls:
        lines.append(_tool_calls(report.tool_calls))
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "chatops: the last 24 hours"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    unanswered = _unanswered(quotes)
    if unanswered:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": limits.truncate(
            "*Not found in the documents:*\n" + unanswered, limits.SECTION_TEXT_MAX)}})
    if console_url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{console_url}|Open the console>"}]})
    text = f"chatops daily report: {report.questions} questions, {_pct(report.answered_rate)} answered"
    return {"text": text, "blocks": blocks}


def _tool_calls(per_tool: dict[str, dict[str, int]]) -> str:
    """Each tool's calls, and those that did not end ok by outcome, as
    ``*Live tools:* 14 calls  ·  pagerduty 10 (1 error, 1 timeout)  ·  health 4``. Tool names are
    the operators' configuration; arguments are not shown."""
    def calls(per_outcome: dict[str, int]) -> str:
        others = [f"{n} {outcome.replace('_', ' ')}" for outcome, n in per_outcome.items() if outcome != "ok"]
        return f"{sum(per_outcome.values())}" + (f" ({', '.join(others)})" if others else "")

    total = sum(sum(per.values()) for per in per_tool.values())
    return "  ·  ".join([f"*Live tools:* {total} call{'' if total == 1 else 's'}",
                         *(f"{escape(tool)} {calls(per)}" for tool, per in per_tool.items())])


def _unanswered(quotes) -> str:
    """The unanswered questions' section: quotes, and a count of those not quoted."""
    if quotes is None:
        return ""
    if not quotes.text_shown:
        return f"{_questions(quotes.withheld)}, not quoted (privacy: off)." if quotes.withheld else ""
    lines = [f"• {escape(e['question'][:150])} ({e['count']}×)" for e in quotes.questions]
    if quotes.withheld:
        others = f"{quotes.withheld} more" if lines else _questions(quotes.withheld)
        lines.append(f"_{others} asked in direct messages or private channels: not shown here._")
    return "\n".join(lines)


def _questions(count: int) -> str:
    return f"{count} question" if count == 1 else f"{count} questions"
