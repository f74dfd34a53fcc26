"""bot.decisions.blocks: the proposal message, its decided states and the reject modal (pure)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from bot import limits
from bot.decisions import blocks as pb

PID = "0123456789abcdef0123456789abcdef"
EXPIRES = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
DECIDED_STATES = ["approved", "executing", "succeeded", "failed", "rejected", "expired"]


def make(**overrides) -> dict:
    kw = dict(proposal_id=PID, action="restart_service", description="Restart one service.",
              arguments={"service": "billing", "env": "staging"}, requested_by_slack="UBEN",
              requested_by_email="ben@corp.example", approvers="group sre", expires_at=EXPIRES)
    kw.update(overrides)
    return pb.proposal_blocks(**kw)


def blocks_of(message: dict, kind: str) -> list[dict]:
    return [b for b in message["blocks"] if b["type"] == kind]


def context_texts(message: dict) -> list[str]:
    return [el["text"] for b in blocks_of(message, "context") for el in b["elements"]]


def section_text(message: dict) -> str:
    (section,) = blocks_of(message, "section")
    assert section["text"]["type"] == "mrkdwn"
    return section["text"]["text"]


def all_texts(node):
    """Every string under a ``text`` key, anywhere in a payload."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from all_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_texts(item)


def assert_within_limits(message: dict) -> None:
    assert isinstance(message["text"], str) and message["text"]
    assert len(message["text"]) <= limits.MESSAGE_TEXT_MAX
    assert len(message["blocks"]) <= limits.BLOCKS_PER_MESSAGE
    for block in message["blocks"]:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert 0 < len(block["text"]["text"]) <= limits.SECTION_TEXT_MAX
        elif kind == "context":
            for el in block["elements"]:
                assert 0 < len(el["text"]) <= limits.CONTEXT_TEXT_MAX
        elif kind == "actions":
            assert len(block["block_id"]) <= 255
            for el in block["elements"]:
                assert 0 < len(el["text"]["text"]) <= limits.BUTTON_TEXT_MAX
                assert 0 < len(el["value"]) <= limits.BUTTON_VALUE_MAX
                confirm = el.get("confirm")
                if confirm:
                    assert len(confirm["title"]["text"]) <= 100
                    assert len(confirm["text"]["text"]) <= 300
                    assert len(confirm["confirm"]["text"]) <= 30
                    assert len(confirm["deny"]["text"]) <= 30
        else:  # pragma: no cover - a new block type needs its limits checked here
            raise AssertionError(f"unexpected block type {kind}")


# -- the proposed state ----------------------------------------------------------------


def test_proposed_message_has_header_body_context_and_buttons():
    msg = make()
    assert [b["type"] for b in msg["blocks"]] == ["header", "section", "context", "actions"]
    assert msg["blocks"][0]["text"] == {"type": "plain_text", "text": "Proposed action: restart_service"}
    assert msg["text"] == "Proposed action restart_service: waiting for approval by group sre"
    assert_within_limits(msg)


def test_approve_and_reject_buttons_carry_only_the_proposal_id():
    (actions,) = blocks_of(make(), "actions")
    assert actions["block_id"] == f"proposal:{PID}"
    approve, reject = actions["elements"]
    assert approve["type"] == reject["type"] == "button"
    assert approve["action_id"] == pb.APPROVE_ACTION == "proposal_approve"
    assert reject["action_id"] == pb.REJECT_ACTION == "proposal_reject"
    assert approve["value"] == reject["value"] == PID
    assert approve["text"] == {"type": "plain_text", "text": "Approve"}
    assert reject["text"] == {"type": "plain_text", "text": "Reject"}
    assert approve["style"] == "primary" and reject["style"] == "danger"


def test_approve_asks_for_confirmation_reject_does_not():
    approve, reject = blocks_of(make(), "actions")[0]["elements"]
    confirm = approve["confirm"]
    assert confirm["title"]["type"] == "plain_text" and confirm["title"]["text"]
    assert confirm["text"]["type"] == "mrkdwn"
    assert "*restart_service*" in confirm["text"]["text"]
    assert confirm["confirm"] == {"type": "plain_text", "text": "Approve"}
    assert confirm["deny"] == {"type": "plain_text", "text": "Cancel"}
    assert "confirm" not in reject  # rejecting opens the reason modal instead


def test_arguments_are_listed_in_the_body():
    body = section_text(make(arguments={"service": "billing", "replicas": 3, "tags": ["a", "b"],
                                        "dry_run": False, "note": None}))
    assert body.startswith("Restart one service.\n\n")
    assert "• *service*: `billing`" in body
    assert "• *replicas*: `3`" in body
    assert '• *tags*: `["a", "b"]`' in body
    assert "• *dry_run*: `false`" in body
    assert "• *note*: `null`" in body
    # in the order given
    assert body.index("*service*") < body.index("*replicas*") < body.index("*note*")


def test_no_arguments_is_said_so():
    assert section_text(make(arguments={})).endswith("_no arguments_")


def test_context_names_requester_approvers_expiry_and_short_id():
    (ctx,) = context_texts(make())
    assert "Requested by <@UBEN>" in ctx
    assert "Approvers: group sre" in ctx
    assert f"ID `{PID[:8]}`" in ctx
    m = re.search(r"Expires <!date\^(\d+)\^([^|>]*)\|([^>]*)>", ctx)
    assert m, ctx
    assert int(m.group(1)) == int(EXPIRES.timestamp())
    assert "{date_short_pretty}" in m.group(2) and "{time}" in m.group(2)
    assert m.group(3) == "2026-11-27 12:00 UTC"


def test_requester_without_slack_id_is_shown_by_email_escaped():
    (ctx,) = context_texts(make(requested_by_slack=None, requested_by_email="<!here>@corp.example"))
    assert "Requested by &lt;!here&gt;@corp.example" in ctx
    (ctx,) = context_texts(make(requested_by_slack=None, requested_by_email=None))
    assert "Requested by someone" in ctx


def test_expiry_fallback_is_in_utc_whatever_the_zone_of_the_datetime():
    paris = EXPIRES.astimezone(timezone(timedelta(hours=1)))  # the same instant, 13:00 +01:00
    (ctx,) = context_texts(make(expires_at=paris))
    assert f"<!date^{int(EXPIRES.timestamp())}^" in ctx
    assert "|2026-11-27 12:00 UTC>" in ctx


# -- decided states --------------------------------------------------------------------


@pytest.mark.parametrize("state", DECIDED_STATES)
def test_decided_states_have_no_buttons(state):
    msg = make(state=state, decided_by_slack="UANA", decided_by_email="ana@corp.example",
               result_summary="done", reason="because")
    assert blocks_of(msg, "actions") == []
    assert not any(el.get("type") == "button" for b in msg["blocks"] for el in b.get("elements", []))
    assert msg["text"] == f"Proposed action restart_service: {state}"
    # the original proposal (arguments, requester, expiry) is still shown
    assert "*service*" in section_text(msg)
    assert_within_limits(msg)


@pytest.mark.parametrize("state", ["approved", "executing", "succeeded", "failed"])
def test_approved_states_show_who_approved(state):
    msg = make(state=state, decided_by_slack="UANA", decided_by_email="ana@corp.example")
    line = context_texts(msg)[-1]
    assert "Approved by <@UANA>" in line


def test_approver_without_slack_id_is_shown_by_email():
    line = context_texts(make(state="approved", decided_by_email="ana@corp.example"))[-1]
    assert "Approved by ana@corp.example" in line


def test_running_states_say_running():
    assert "running" in context_texts(make(state="approved", decided_by_slack="UANA"))[-1]
    assert "running" in context_texts(make(state="executing", decided_by_slack="UANA"))[-1]


def test_succeeded_shows_summary_and_link():
    line = context_texts(make(state="succeeded", decided_by_slack="UANA", result_summary="Created OPS-123",
                              result_url="https://jira.example/browse/OPS-123"))[-1]
    assert "done: Created OPS-123" in line
    assert "<https://jira.example/browse/OPS-123|(open)>" in line


def test_failed_shows_summary_without_link():
    line = context_texts(make(state="failed", decided_by_slack="UANA",
                              result_summary="hooks.example refused it (HTTP 422)"))[-1]
    assert line.startswith(":x:")
    assert "failed: hooks.example refused it (HTTP 422)" in line
    assert "(open)" not in line


def test_missing_summary_says_no_details():
    line = context_texts(make(state="succeeded", decided_by_slack="UANA"))[-1]
    assert "done: no details" in line


def test_rejected_shows_who_and_the_reason():
    line = context_texts(make(state="rejected", decided_by_slack="USAM", reason="change freeze"))[-1]
    assert "Rejected by <@USAM>: change freeze" in line
    line = context_texts(make(state="rejected", decided_by_slack="USAM", reason=None))[-1]
    assert line.endswith("Rejected by <@USAM>")
    line = context_texts(make(state="rejected", decided_by_slack="USAM", reason=""))[-1]
    assert line.endswith("Rejected by <@USAM>")


def test_expired_says_nothing_was_done():
    line = context_texts(make(state="expired"))[-1]
    assert "Expired" in line and "nothing was done" in line


# -- escaping -------------------------------------------------------------------------


def test_arguments_are_escaped():
    body = section_text(make(arguments={"<!channel>": "<!channel> & <@U123> <https://evil|click>"}))
    assert "<!" not in body and "<@" not in body and "<http" not in body
    assert "*&lt;!channel&gt;*" in body
    assert "`&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;https://evil|click&gt;`" in body


def test_nested_argument_values_are_escaped():
    body = section_text(make(arguments={"list": ["<!everyone>"], "obj": {"k": "<!here>"}}))
    assert "<!" not in body
    assert "&lt;!everyone&gt;" in body and "&lt;!here&gt;" in body


def test_description_and_approvers_are_escaped():
    msg = make(description="Restart <!channel> now", approvers="<!here> & co")
    assert "Restart &lt;!channel&gt; now" in section_text(msg)
    (ctx,) = context_texts(msg)
    assert "Approvers: &lt;!here&gt; &amp; co" in ctx


def test_reason_is_escaped():
    line = context_texts(make(state="rejected", decided_by_slack="USAM", reason="<!channel> look & see"))[-1]
    assert "<!channel>" not in line
    assert ": &lt;!channel&gt; look &amp; see" in line


def test_result_summary_is_escaped_and_link_label_safe():
    line = context_texts(make(state="failed", decided_by_slack="UANA", result_summary="<!everyone> & boom",
                              result_url="https://x.example/a>b|c"))[-1]
    assert "<!everyone>" not in line
    assert "&lt;!everyone&gt; &amp; boom" in line
    assert "<https://x.example/a%3Eb%7Cc|(open)>" in line


def test_no_slack_control_sequences_survive_anywhere_in_the_blocks():
    evil = "<!channel>"
    for state in ["proposed", *DECIDED_STATES]:
        msg = make(state=state, description=evil, arguments={evil: evil}, approvers=evil,
                   requested_by_slack=None, requested_by_email=evil, decided_by_slack=None,
                   decided_by_email=evil, reason=evil, result_summary=evil)
        for text in all_texts(msg["blocks"]):
            assert evil not in text, (state, text)


# -- limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["proposed", *DECIDED_STATES])
def test_every_text_fits_with_a_10000_character_argument(state):
    huge = "x" * 10_000
    msg = make(state=state, arguments={"payload": huge, "other": "<" * 10_000}, decided_by_slack="UANA",
               reason=huge, result_summary=huge, result_url="https://x.example/" + "p" * 100)
    assert_within_limits(msg)
    assert section_text(msg).endswith("…")


@pytest.mark.parametrize("state", ["proposed", *DECIDED_STATES])
def test_every_text_fits_when_everything_is_huge(state):
    huge = "<&>" * 4000  # 12,000 characters, 48,000 once escaped
    msg = make(state=state, action="a" * 10_000, description=huge, arguments={huge: huge}, approvers=huge,
               requested_by_slack=None, requested_by_email=huge, decided_by_slack=None,
               decided_by_email=huge, reason=huge, result_summary=huge, result_url="https://x/" + huge)
    assert_within_limits(msg)
    for block in blocks_of(msg, "actions"):
        assert [el["value"] for el in block["elements"]] == [PID, PID]


# -- the reject modal -----------------------------------------------------------------


def test_reject_modal_carries_the_proposal_channel_and_message():
    modal = pb.reject_modal(PID, "C123", "1700000000.000100")
    assert modal["type"] == "modal"
    assert modal["callback_id"] == pb.REJECT_MODAL
    assert json.loads(modal["private_metadata"]) == {"proposal_id": PID, "channel": "C123",
                                                     "message_ts": "1700000000.000100"}
    assert len(modal["private_metadata"]) <= 3000
    for key in ("title", "submit", "close"):
        assert modal[key]["type"] == "plain_text"
        assert 0 < len(modal[key]["text"]) <= 24


def test_reject_modal_without_channel_or_message():
    modal = pb.reject_modal(PID, None, None)
    assert json.loads(modal["private_metadata"]) == {"proposal_id": PID, "channel": None, "message_ts": None}


def test_reject_modal_has_an_optional_multiline_reason():
    (block,) = pb.reject_modal(PID, "C1", "1.2")["blocks"]
    assert block["type"] == "input"
    assert block["block_id"] == pb.REASON_BLOCK == "reason"
    assert block["optional"] is True
    assert block["label"]["type"] == "plain_text" and block["label"]["text"]
    element = block["element"]
    assert element["type"] == "plain_text_input"
    assert element["action_id"] == pb.REASON_INPUT == "reason_input"
    assert element["multiline"] is True
    assert 0 < element["max_length"] <= 3000


# -- the execution result message -----------------------------------------------------


def test_execution_result_message_success_with_link():
    msg = pb.execution_result_message("create_ticket", True, "Created OPS-1", "https://jira.example/OPS-1")
    (section,) = msg["blocks"]
    text = section["text"]["text"]
    assert text.startswith(":white_check_mark: create_ticket succeeded: Created OPS-1")
    assert "<https://jira.example/OPS-1|open>" in text
    assert msg["text"] == "create_ticket succeeded: Created OPS-1"


def test_execution_result_message_failure_escaped_and_within_limits():
    msg = pb.execution_result_message("restart_service", False, "<!channel> " + "y" * 10_000, None)
    text = msg["blocks"][0]["text"]["text"]
    assert text.startswith(":x: restart_service failed: &lt;!channel&gt;")
    assert len(text) <= limits.SECTION_TEXT_MAX
    assert len(msg["text"]) <= limits.MESSAGE_TEXT_MAX
