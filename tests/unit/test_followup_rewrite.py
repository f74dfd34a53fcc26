"""Thread follow-ups become standalone search questions (through the model when there is one)."""

from datetime import datetime, timezone

from connectors.llm.base import Completion, LLMUnavailable
from usecases.ask import Pipeline
from usecases.budgets import OverBudget

HISTORY = [("how do I restart the billing service?", "Drain the queue, then restart [1].")]


class ScriptedLLM:
    model = "scripted"

    def __init__(self, reply=None, fail=False):
        self.reply, self.fail, self.calls = reply, fail, []

    def complete(self, messages, *, max_tokens=None, tools=None):
        self.calls.append(messages)
        if self.fail:
            raise LLMUnavailable("down")
        return Completion(text=self.reply, model=self.model)


def pipeline(llm):
    return Pipeline(identity=None, index=None, embedder=None, llm=llm)


def test_a_question_without_history_is_searched_as_asked():
    llm = ScriptedLLM("unused")
    assert pipeline(llm)._standalone("what is the VPN address?", [])[0] == "what is the VPN address?"
    assert llm.calls == []


def test_a_follow_up_is_rewritten_by_the_model_with_the_thread_as_context():
    llm = ScriptedLLM("  Which cluster runs the billing\nservice restart?  ")
    text = pipeline(llm)._standalone("and which cluster?", HISTORY)[0]
    assert text == "Which cluster runs the billing service restart?"
    prompt = llm.calls[0][-1]["content"]
    assert "how do I restart the billing service?" in prompt and prompt.endswith("User: and which cluster?")


def test_without_a_model_or_when_it_fails_the_previous_question_is_prepended():
    expected = "how do I restart the billing service?\nand which cluster?"
    assert pipeline(None)._standalone("and which cluster?", HISTORY)[0] == expected
    assert pipeline(ScriptedLLM(fail=True))._standalone("and which cluster?", HISTORY)[0] == expected
    assert pipeline(ScriptedLLM(""))._standalone("and which cluster?", HISTORY)[0] == expected
    assert pipeline(ScriptedLLM("x" * 600))._standalone("and which cluster?", HISTORY)[0] == expected


def test_over_budget_the_model_is_not_asked_to_rewrite():
    llm = ScriptedLLM("unused")
    over = OverBudget("person", datetime(2030, 1, 1, tzinfo=timezone.utc))
    text, usage = pipeline(llm)._standalone("and which cluster?", HISTORY, lambda: over)
    assert text == "how do I restart the billing service?\nand which cluster?" and usage is None
    assert llm.calls == []
