"""Block Kit for feedback on answers: the buttons, the "what was wrong" modal, escalations.

Pure functions. Every button carries only the answer's id (the 👍/👎 element also says which
of the two it is): whoever clicks, the worker looks the answer up, so a click cannot reveal or
change anything about another answer.

👍/👎 is Slack's own ``feedback_buttons`` element, which may only sit in a ``context_actions``
block (whose elements are feedback buttons and icon buttons); "Needs a human" is an ordinary
button, so it stays in an ``actions`` block of its own. The element toggles in the client and
Slack sends each click (the chosen button's ``value``) with no "unselected" signal: the stored
vote is simply the person's last click. Messages posted before carry the old 👍/👎 buttons;
their action ids are still handled.
"""

from __future__ import annotations

import json

from bot import limits

FEEDBACK_BUTTONS_ACTION = "feedback_vote"      # the feedback_buttons element (👍 / 👎)
HELPFUL_ACTION = "feedback_helpful"             # the old 👍 button, in messages posted before
NOT_HELPFUL_ACTION = "feedback_not_helpful"     # the old 👎 button, likewise
ESCALATE_ACTION = "feedback_needs_human"
RESOLVED_ACTION = "feedback_resolved"
FEEDBACK_MODAL = "feedback_reason_modal"
WHAT_BLOCK = "what_wrong"
WHAT_INPUT = "what_wrong_choice"
DETAIL_BLOCK = "details"
DETAIL_INPUT = "details_input"

FEEDBACK_BLOCK_ID = "chatops_feedback"         # the context_actions block with 👍 / 👎
ESCALATE_BLOCK_ID = "chatops_needs_human"       # the actions block with Needs a human

# The votes, and how the feedback element's two values name them: "<vote>:<answer id>".
HELPFUL, NOT_HELPFUL = "helpful", "not_helpful"
ACCESSIBILITY_LABEL_MAX = 75

# What a 👎 can say, as the modal's choices (value -> label).
REASONS = {
    "wrong": "It is wrong",
    "outdated": "It is out of date",
    "incomplete": "It is incomplete",
    "not_found": "The documents should have had it",
    "unclear": "It is hard to understand",
}


def _button(action_id: str, label: str, value: str, style: str | None = None) -> dict:
    button = {"type": "button", "action_id": action_id, "value": value[:limits.BUTTON_VALUE_MAX],
              "text": {"type": "plain_text", "text": label[:limits.BUTTON_TEXT_MAX], "emoji": True}}
    if style:
        button["style"] = style
    return button


def _feedback_button(label: str, vote: str, answer_id: str, spoken: str) -> dict:
    return {"text": {"type": "plain_text", "text": label[:limits.BUTTON_TEXT_MAX], "emoji": True},
            "value": f"{vote}:{answer_id}"[:limits.BUTTON_VALUE_MAX],
            "accessibility_label": spoken[:ACCESSIBILITY_LABEL_MAX]}


def feedback_blocks(answer_id: str) -> list[dict]:
    """Under an answer: Slack's 👍 / 👎 element, then Needs a human. Two blocks that belong
    together (a message split at Slack's block limit keeps them in one message)."""
    vote = {"type": "feedback_buttons", "action_id": FEEDBACK_BUTTONS_ACTION,
            "positive_button": _feedback_button("👍", HELPFUL, answer_id, "This answer was helpful"),
            "negative_button": _feedback_button("👎", NOT_HELPFUL, answer_id, "This answer was not helpful")}
    return [{"type": "context_actions", "block_id": FEEDBACK_BLOCK_ID, "elements": [vote]},
            {"type": "actions", "block_id": ESCALATE_BLOCK_ID,
             "elements": [_button(ESCALATE_ACTION, "Needs a human", answer_id)]}]


def vote_from(value: object) -> tuple[str, str] | None:
    """The (vote, answer id) a feedback element's click carries; None for anything else."""
    if not isinstance(value, str):
        return None
    vote, sep, answer_id = value.partition(":")
    if not sep or vote not in (HELPFUL, NOT_HELPFUL) or not answer_id:
        return None
    return vote, answer_id


def feedback_modal(answer_id: str) -> dict:
    """The optional "what was wrong" form a 👎 opens (the vote is already counted)."""
    return {
        "type": "modal", "callback_id": FEEDBACK_MODAL,
        "private_metadata": json.dumps({"answer_id": answer_id}),
        "title": {"type": "plain_text", "text": "What was wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                "Your 👎 is counted. Telling us more helps whoever keeps the documents up to date."}]},
            {"type": "input", "block_id": WHAT_BLOCK, "optional": True,
             "label": {"type": "plain_text", "text": "The answer…"},
             "element": {"type": "checkboxes", "action_id": WHAT_INPUT, "options": [
                 {"text": {"type": "plain_text", "text": label}, "value": value}
                 for value, label in REASONS.items()]}},
            {"type": "input", "block_id": DETAIL_BLOCK, "optional": True,
             "label": {"type": "plain_text", "text": "Anything else?"},
             "element": {"type": "plain_text_input", "action_id": DETAIL_INPUT, "multiline": True,
                         "max_length": 2000}},
        ],
    }


def reason_from(values: dict) -> str | None:
    """The modal's answers as one line of text (None when nothing was said)."""
    choices = ((values.get(WHAT_BLOCK) or {}).get(WHAT_INPUT) or {}).get("selected_options") or []
    picked = [REASONS[o.get("value")] for o in choices if isinstance(o, dict) and o.get("value") in REASONS]
    detail = ((values.get(DETAIL_BLOCK) or {}).get(DETAIL_INPUT) or {}).get("value") or ""
    parts = picked + ([detail.strip()] if isinstance(detail, str) and detail.strip() else [])
    return "; ".join(parts) or None


def thanks(vote: str) -> dict:
    text = "Thanks — glad it helped." if vote == "helpful" else "Thanks — noted. It helps us fix the documents."
    return {"text": text, "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}]}


def escalation_message(mentions: str, asker: str | None, clicker: str, answer_id: str) -> dict:
    """Posted in the thread: who should look, who asked, and a Resolved button."""
    who = f"<@{clicker}>"
    ask = f" for <@{asker}>'s question" if asker and asker != clicker else ""
    call = mentions or "Someone from the team"
    text = f"{call}: {who} asked for a human to look at this{ask}."
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":raising_hand: {text}"}},
        {"type": "actions", "block_id": "chatops_escalation",
         "elements": [_button(RESOLVED_ACTION, "Resolved", answer_id, style="primary")]},
    ]}


def private_escalation(asker: str, question: str, answer_id: str) -> dict:
    """Sent to an escalation person when the question was asked in a DM: who asked and their own
    words, never the answer (it was made from documents only the asker may see)."""
    quoted = "\n".join("> " + line for line in question.strip().splitlines()[:10])[:2500]
    text = f"<@{asker}> asked for a human about a question they asked me in a direct message:"
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":raising_hand: {text}\n{quoted}", "verbatim": True}},
        {"type": "actions", "block_id": "chatops_escalation",
         "elements": [_button(RESOLVED_ACTION, "Resolved", answer_id, style="primary")]},
    ]}


def escalated_to(people: list[str]) -> dict:
    text = ("I've asked " + ", ".join(f"<@{u}>" for u in people) + " to help you.") if people else \
        "Nobody is set up to take questions from direct messages yet; please ask in your team's channel."
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def escalation_resolved(resolver: str) -> dict:
    text = f"Resolved by <@{resolver}>."
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":white_check_mark: {text}"}}]}


def not_on_record() -> dict:
    text = "I couldn't find that answer in my records any more, so your vote was not counted."
    return {"text": text, "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}]}


def not_yours_to_resolve() -> dict:
    text = "Only the person who asked or the people called for this question can mark it resolved."
    return {"text": text, "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}]}
