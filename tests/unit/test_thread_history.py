"""Which of a thread's earlier exchanges a follow-up may be given (usecases.threads)."""

from __future__ import annotations

from chatops.access import Acl, Audience, Principal
from connectors.index.base import DocumentState
from usecases.threads import Exchange, basis_of, reusable

HR = Principal.of("hr@corp.example", ["hr"], slack_user_id="UHR")
ENG = Principal.of("eng@corp.example", [], slack_user_id="UENG")
DOCS = {"bands": Acl.of(groups=["hr"]), "pay-dates": Acl.of(public=True)}


class Index:
    def __init__(self, docs=DOCS, down=False):
        self.docs, self.down, self.asked = dict(docs), down, []

    def documents(self, source, doc_ids):
        self.asked.append((source, tuple(doc_ids)))
        if self.down:
            raise ConnectionError("the index is down")
        return {d: DocumentState("h", self.docs[d]) for d in doc_ids if d in self.docs}


def exchange(text: str, *docs: str, private_to: str | None = None) -> Exchange:
    return Exchange.of(f"q {text}", f"a {text}", private=private_to is not None, asker=private_to,
                       basis=[["files", d, "h"] for d in docs])


def answers(history, *, asker="UENG", private=False, audience=None, index=None) -> list[str]:
    kept = reusable(history, asker=asker, private=private, audience=audience or Audience.everyone([HR, ENG]),
                    index=index or Index())
    return [e.answer for e in kept]


def test_a_private_reply_is_history_only_for_the_same_persons_private_replies():
    history = [exchange("bands", "bands", private_to="UHR")]
    hr = Audience.of(HR)
    assert answers(history, asker="UHR", private=True, audience=hr) == ["a bands"]
    assert answers(history, asker="UENG", private=True, audience=Audience.of(ENG)) == []
    assert answers(history, asker="UHR", private=False, audience=hr) == []     # the same person, but in the channel


def test_a_channel_answer_is_history_only_for_an_audience_that_may_see_all_its_documents():
    history = [exchange("both", "pay-dates", "bands")]
    assert answers(history, audience=Audience.everyone([HR])) == ["a both"]
    assert answers(history, audience=Audience.everyone([HR, ENG])) == []
    assert answers(history, audience=Audience.public("too many members")) == []
    assert answers([exchange("pay", "pay-dates")], audience=Audience.everyone([HR, ENG])) == ["a pay"]


def test_what_cannot_be_confirmed_is_left_out():
    hr = Audience.everyone([HR])
    assert answers([exchange("gone", "deleted-doc")], audience=hr) == []
    assert answers([exchange("bands", "bands")], audience=hr, index=Index(down=True)) == []
    legacy = Exchange.from_record(["an old question", "an old answer"])
    assert legacy is None and answers([legacy], audience=hr) == []


def test_the_latest_three_usable_exchanges_are_kept_in_order_and_the_rest_not_looked_up():
    index = Index()
    history = [exchange(str(i), "pay-dates") for i in range(6)] + [exchange("hr's", "bands", private_to="UHR")]
    assert answers(history, index=index) == ["a 3", "a 4", "a 5"]
    assert len(index.asked) == 3


def test_an_exchange_round_trips_and_its_basis_carries_into_the_next_answer():
    e = exchange("both", "pay-dates", "bands", private_to="UHR")
    assert Exchange.from_record(e.to_record()) == e
    assert basis_of([e, exchange("pay", "pay-dates")]) == [["files", "bands", "h"], ["files", "pay-dates", "h"]]
    assert len(Exchange.of("q", "x" * 10_000, private=False, asker="UHR", basis=[]).answer) == 4000


def test_a_private_reply_without_a_known_asker_is_nobodys_history():
    nobodys = Exchange.of("q", "a private answer", private=True, asker=None, basis=[])
    assert answers([nobodys], asker=None, private=True, audience=Audience.of(HR)) == []
    assert answers([nobodys], asker="UHR", private=True, audience=Audience.of(HR)) == []
    assert Exchange.from_record({"q": "q", "a": "a", "private": "yes", "for": None, "basis": []}) is None
