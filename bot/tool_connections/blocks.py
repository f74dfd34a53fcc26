"""Connect and Disconnect: Block Kit for a person's own credential to a tool. Pure functions."""

from __future__ import annotations

from bot import limits
from bot.blocks import context, message, section
from bot.mrkdwn import escape

CONNECT_ACTION = "tool_connect"          # a link button: Slack opens the URL, and tells us of the click
DISCONNECT_ACTION = "tool_disconnect"


def connect_prompt(label: str, url: str) -> dict:
    """For the asker alone: this tool answers with their own account, which they have not connected."""
    text = (f"To answer with live data from *{escape(label)}*, I need to use your own {escape(label)} "
            "account. Connect it once; only your questions ever use it.")
    return message(f"Connect {label} to use it in answers", [
        section(text),
        {"type": "actions", "elements": [{
            "type": "button", "action_id": CONNECT_ACTION, "style": "primary",
            "text": {"type": "plain_text", "text": f"Connect {label}"[: limits.BUTTON_TEXT_MAX]},
            "url": url, "value": "connect"}]},
        context("The link works once and expires in 10 minutes. Ask your question again once connected."),
    ])


def connected_message(label: str, tool: str) -> dict:
    """After the person connected a tool: it is theirs, and they can take it back."""
    return message(f"{label} is connected", [
        section(f":white_check_mark: *{escape(label)}* is connected. Only your own questions use it."),
        {"type": "actions", "elements": [{
            "type": "button", "action_id": DISCONNECT_ACTION, "style": "danger",
            "text": {"type": "plain_text", "text": f"Disconnect {label}"[: limits.BUTTON_TEXT_MAX]},
            "value": tool[: limits.BUTTON_VALUE_MAX]}]},
    ])


def disconnected_message(label: str, was_connected: bool) -> dict:
    text = (f"*{escape(label)}* is disconnected: your credential is deleted." if was_connected
            else f"*{escape(label)}* was not connected.")
    return message(f"{label} is disconnected", [section(f":wave: {text}")])
