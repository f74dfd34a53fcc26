"""Block Kit for the daily report posted by the scheduler (``CHATOPS_REPORT_CHANNEL``). Pure."""

from __future__ import annotations

from bot import limits
from bot.mrkdwn import escape


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def report_message(report, *, console_url: str | None = None) -> dict:
    """The day in numbers: questions and outcomes, feedback, escalations, latency, cost, the top
    unanswered questions (their text is what operators need to fix the documents)."""
    p95 = (report.latency_ms.get("total") or {}).get("p95")
    lines = [
        f"*Questions:* {report.questions}  ·  answered {_pct(report.answered_rate)}  ·  "
        f"no evidence {_pct(report.no_evidence_rate)}  ·  refused {_pct(report.refused_rate)}",
        f"*Feedback:* 👍 {report.helpful}  👎 {report.not_helpful}  ·  escalations {report.escalations} "
        f"({report.escalations_open} open)",
        f"*Latency p95:* {'—' if p95 is None else f'{p95 / 1000:.1f} s'}  ·  *cache hits:* {_pct(report.cache_hit_ratio)}",
        f"*Cost:* {report.cost:.2f}  ·  tokens {report.input_tokens + report.output_tokens:,}",
    ]
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "chatops: the last 24 hours"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if report.top_unanswered:
        unanswered = "\n".join(f"• {escape(e['question'][:150])} ({e['count']}×)" for e in report.top_unanswered[:5])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": limits.truncate(
            "*Not found in the documents:*\n" + unanswered, limits.SECTION_TEXT_MAX)}})
    if console_url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{console_url}|Open the console>"}]})
    text = f"chatops daily report: {report.questions} questions, {_pct(report.answered_rate)} answered"
    return {"text": text, "blocks": blocks}
