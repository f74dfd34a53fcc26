"""bot/feedback/blocks.py: Slack's 👍 / 👎 element (feedback_buttons in a context_actions block)
and the Needs a human button under an answer, as Slack's reference describes them."""

import pytest
from slack_sdk.models.blocks import Block, ContextActionsBlock, FeedbackButtonsElement

from bot import limits
from bot.feedback import blocks as fb

ANSWER_ID = "0123456789abcdef"


def test_feedback_blocks_are_the_element_in_context_actions_then_an_actions_block():
    vote_block, human_block = fb.feedback_blocks(ANSWER_ID)
    assert vote_block["type"] == "context_actions" and vote_block["block_id"] == fb.FEEDBACK_BLOCK_ID
    (element,) = vote_block["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == fb.FEEDBACK_BUTTONS_ACTION
    positive, negative = element["positive_button"], element["negative_button"]
    assert positive["text"] == {"type": "plain_text", "text": "👍", "emoji": True}
    assert negative["text"]["type"] == "plain_text" and negative["text"]["text"] == "👎"
    assert positive["value"] == f"helpful:{ANSWER_ID}" and negative["value"] == f"not_helpful:{ANSWER_ID}"
    for button in (positive, negative):
        assert 0 < len(button["accessibility_label"]) <= 75
        assert len(button["value"]) <= limits.BUTTON_VALUE_MAX
    # Needs a human is an ordinary button: context_actions takes feedback and icon buttons only
    assert human_block["type"] == "actions" and human_block["block_id"] == fb.ESCALATE_BLOCK_ID
    (human,) = human_block["elements"]
    assert human["type"] == "button" and human["action_id"] == fb.ESCALATE_ACTION and human["value"] == ANSWER_ID
    assert fb.HELPFUL_ACTION not in str(fb.feedback_blocks(ANSWER_ID))   # no old 👍 button any more


def test_the_blocks_are_what_slack_sdks_block_kit_models_accept():
    """slack_sdk's own models for the two blocks parse ours and give them back unchanged."""
    vote_block, human_block = fb.feedback_blocks(ANSWER_ID)
    parsed = Block.parse(vote_block)
    assert isinstance(parsed, ContextActionsBlock)
    assert isinstance(parsed.elements[0], FeedbackButtonsElement)
    again = parsed.to_dict()                    # validates the SDK's limits (text ≤ 75, value ≤ 2000)
    assert again["elements"][0]["positive_button"]["value"] == f"helpful:{ANSWER_ID}"
    assert again["elements"][0]["negative_button"]["accessibility_label"] == \
        vote_block["elements"][0]["negative_button"]["accessibility_label"]
    assert Block.parse(human_block).to_dict()["elements"][0]["action_id"] == fb.ESCALATE_ACTION


@pytest.mark.parametrize("value,expected", [
    (f"helpful:{ANSWER_ID}", ("helpful", ANSWER_ID)),
    (f"not_helpful:{ANSWER_ID}", ("not_helpful", ANSWER_ID)),
    ("helpful:a:b", ("helpful", "a:b")),          # the answer id is checked against the records, later
    (ANSWER_ID, None),                              # an old button's bare answer id is not the element's
    ("approve:" + ANSWER_ID, None),
    ("helpful:", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_vote_from_reads_the_elements_value(value, expected):
    assert fb.vote_from(value) == expected


def test_every_feedback_value_round_trips():
    element = fb.feedback_blocks(ANSWER_ID)[0]["elements"][0]
    assert fb.vote_from(element["positive_button"]["value"]) == (fb.HELPFUL, ANSWER_ID)
    assert fb.vote_from(element["negative_button"]["value"]) == (fb.NOT_HELPFUL, ANSWER_ID)
