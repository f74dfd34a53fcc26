"""bot/home/blocks.py: the App Home tab and the suggested prompts, on their output."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot import limits
from bot.home.blocks import home_view, suggested_prompts, unresolved_view
from bot.tool_connections.blocks import DISCONNECT_ACTION
from usecases.home import Approval, Asked, ConnectedTool, HomeView, Prompt, SourceSeen

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def source(name: str = "handbook", **kw) -> SourceSeen:
    return SourceSeen(**{"name": name, "kind": "filesystem", "last_sync": NOW - timedelta(minutes=5),
                         "permissions_at": NOW - timedelta(hours=2), "stale": False, "running": False, **kw})


def asked(question: str = "how do I rotate the VPN certificate?", **kw) -> Asked:
    return Asked(**{"at": NOW - timedelta(hours=3), "question": question, "outcome": "answered", "where": "channel",
                    "channel": "CPUB", "helpful": 1, "not_helpful": 0, "escalated": False, "resolved": False, **kw})


def texts(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_the_home_tab_shows_sources_with_freshness_questions_approvals_and_tools():
    view = home_view(HomeView(
        sources=[source(), source("sre-wiki", kind="confluence", stale=True, running=True)],
        asked=[asked(), asked("who approves my expenses?", where="dm", channel="DANA", outcome="no_evidence",
                              helpful=0, escalated=True)],
        approvals=[Approval(proposal_id="p1", action="restart_service", description="Restart a service.",
                            requested_by="UBEN", channel="COPS", expires_at=NOW + timedelta(hours=5))],
        tools=[ConnectedTool(name="mydesk", label="My Desk")]), NOW)
    assert view["type"] == "home"
    shown = texts(view)
    assert "*handbook* · filesystem\\nUpdated 5 min ago · permissions checked 2 h ago" in shown
    assert "*sre-wiki* · confluence" in shown and "syncing now" in shown and "only its public documents" in shown
    assert "> how do I rotate the VPN certificate?" in shown and "in <#CPUB>" in shown and "3 h ago" in shown
    assert ":+1: 1 · :-1: 0" in shown
    assert "in a direct message" in shown and "Nothing found to answer from" in shown
    assert "waiting for a person" in shown
    assert "*restart_service* — Restart a service." in shown and "Requested by <@UBEN> · in <#COPS> · expires in 5 h" in shown
    button = next(b["accessory"] for b in view["blocks"] if "accessory" in b)
    assert (button["action_id"], button["value"], button["text"]["text"]) == (DISCONNECT_ACTION, "mydesk",
                                                                             "Disconnect My Desk")


def test_a_question_cannot_mention_anyone_nor_link_anywhere():
    shown = texts(home_view(HomeView(asked=[asked("<!channel> see https://evil.example/x <@U999>")]), NOW))
    assert "<!channel>" not in shown and "<@U999>" not in shown and "https://evil.example" not in shown
    assert "&lt;!channel&gt;" in shown and "[link removed: " in shown


def test_empty_sections_say_so_and_optional_ones_are_left_out():
    view = home_view(HomeView(), NOW)
    shown = texts(view)
    assert "No source has documents you may read yet." in shown
    assert "You have not asked anything lately." in shown
    assert "Waiting for your approval" not in shown and "Your connected tools" not in shown


def test_the_view_stays_within_slacks_limits_however_much_there_is():
    many = HomeView(sources=[source(f"s{i}") for i in range(80)], asked=[asked("x" * 5000) for _ in range(40)],
                    approvals=[Approval(proposal_id=f"p{i}", action="a" * 300, description="d" * 4000,
                                        requested_by="UBEN", channel="C1", expires_at=NOW + timedelta(days=2))
                               for i in range(40)],
                    tools=[ConnectedTool(name=f"t{i}" * 1000, label="L" * 200) for i in range(40)])
    view = home_view(many, NOW)
    assert len(view["blocks"]) <= limits.BLOCKS_PER_VIEW
    assert "…and 55 more." in texts(view) and "…and 30 more." in texts(view)
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= limits.SECTION_TEXT_MAX
            if "accessory" in block:
                assert len(block["accessory"]["text"]["text"]) <= limits.BUTTON_TEXT_MAX
                assert len(block["accessory"]["value"]) <= limits.BUTTON_VALUE_MAX
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


def test_an_unresolved_person_is_told_and_shown_nothing_of_theirs():
    view = unresolved_view("I couldn't reach the company directory.")
    assert view["type"] == "home" and len(view["blocks"]) == 2
    assert "couldn't reach the company directory" in texts(view)


def test_suggested_prompts_are_at_most_four_with_a_title():
    args = suggested_prompts([Prompt(f"t{i}", f"m{i}") for i in range(6)])
    assert args["title"] == "Try asking"
    assert args["prompts"] == [{"title": f"t{i}", "message": f"m{i}"} for i in range(4)]


def approval(pid: str = "p1", **kw) -> Approval:
    return Approval(**{"proposal_id": pid, "action": "restart_service", "description": "Restart a service.",
                       "requested_by": "UBEN", "channel": "COPS", "expires_at": NOW + timedelta(hours=1),
                       "arguments": {"service": "billing", "env": "staging"}, **kw})


def test_a_pending_proposal_has_the_same_approve_and_reject_buttons_as_its_message():
    from bot.decisions.blocks import APPROVE_ACTION, REJECT_ACTION, proposal_blocks

    view = home_view(HomeView(approvals=[approval("p1"), approval("p2")]), NOW)
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [b["block_id"] for b in actions] == ["proposal:p1", "proposal:p2"]        # unique in the view
    approve, reject = actions[0]["elements"]
    assert (approve["action_id"], approve["value"], reject["action_id"], reject["value"]) == (
        APPROVE_ACTION, "p1", REJECT_ACTION, "p1")
    assert approve["confirm"]["text"]["text"] == "*restart_service* will run with the arguments shown."
    message = proposal_blocks(proposal_id="p1", action="restart_service", description="Restart a service.",
                              arguments={}, requested_by_slack="UBEN", requested_by_email=None, approvers="sre",
                              expires_at=NOW + timedelta(hours=1))
    assert actions[0] == next(b for b in message["blocks"] if b["type"] == "actions")   # one builder
    shown = texts(view)
    assert "*service*: `billing`" in shown and "*env*: `staging`" in shown          # what Approve would run
    assert "from its message in the conversation" not in shown


def test_arguments_from_the_model_cannot_mention_anyone_and_are_cut_to_fit():
    view = home_view(HomeView(approvals=[approval(arguments={"service": "<!channel> <@U999>", "note": "n" * 5000})]),
                     NOW)
    section = next(b for b in view["blocks"] if b["type"] == "section" and "restart_service" in b["text"]["text"])
    assert "<!channel>" not in section["text"]["text"] and "<@U999>" not in section["text"]["text"]
    assert len(section["text"]["text"]) <= limits.SECTION_TEXT_MAX


def test_a_notice_comes_first_and_the_fullest_view_still_fits():
    many = HomeView(sources=[source(f"s{i}") for i in range(80)], asked=[asked() for _ in range(40)],
                    approvals=[approval(f"p{i}") for i in range(40)],
                    tools=[ConnectedTool(name=f"t{i}", label="L") for i in range(40)])
    view = home_view(many, NOW, notice=":white_check_mark: *restart_service*: Approved by <@UANA> — done: ok")
    assert view["blocks"][0]["text"]["text"].startswith(":white_check_mark: *restart_service*")
    assert view["blocks"][1] == {"type": "divider"}
    assert len(view["blocks"]) <= limits.BLOCKS_PER_VIEW
    assert sum(b["type"] == "actions" for b in view["blocks"]) == 10 and "…and 30 more." in texts(view)
    assert texts(view).count("…and") == 3           # sources, approvals, tools each say how many more
    assert view["blocks"][-1]["elements"][0]["text"].startswith("Disconnecting")   # nothing cut by the cap
