"""The DM offer: "Send me the full answer", and what a click on it is told."""

from __future__ import annotations

from bot.blocks import context, message, section
from bot.mrkdwn import escape

ANSWER_IN_DM_ACTION = "answer_in_dm"


def dm_offer(hidden_documents: int, offer_id: str) -> dict:
    noun = "document" if hidden_documents == 1 else "documents"
    text = (f"You can see {hidden_documents} more relevant {noun} that not everyone here may see, "
            "so I left them out of this answer. Want the full answer in a direct message?")
    return message(text, [
        section(f":lock: {text}"),
        {"type": "actions", "elements": [{
            "type": "button", "action_id": ANSWER_IN_DM_ACTION, "style": "primary",
            "text": {"type": "plain_text", "text": "Send me the full answer"},
            "value": offer_id,
        }]},
    ])


def dm_offer_done(text: str) -> dict:
    return message(text, [context(escape(text))])
