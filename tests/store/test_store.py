"""chatops.store: questions, proposals (compare-and-set transitions) and the audit trail.

Every test runs on SQLite (a file in tmp_path) and on PostgreSQL (a fresh
database on 127.0.0.1:5432; skipped when the server is not reachable).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from chatops.store import TRANSITIONS, Proposal, Store
from chatops.store.models import Base

UTC = timezone.utc


def _now() -> datetime:
    return datetime.now(UTC)


def _propose(store: Store, **overrides) -> Proposal:
    fields = dict(
        action="restart_service",
        arguments={"service": "billing-api", "env": "prod"},
        requested_by_slack="UANA",
        requested_by_email="ana@example.com",
        approvers={"groups": ["sre"], "users": ["UBEN"]},
        allow_self_approval=False,
        channel="COPS",
        thread_ts="1700000000.000100",
        expires_at=_now() + timedelta(minutes=15),
        correlation_id="cid-1",
    )
    fields.update(overrides)
    return store.create_proposal(**fields)


def _kinds(store: Store, proposal_id: str) -> list[str]:
    return [e["kind"] for e in store.events(proposal_id)]


# -- schema -------------------------------------------------------------------


def test_migrate_creates_tables_and_rerun_is_noop(db_url):
    store = Store.for_url(db_url)
    try:
        insp = inspect(store.engine)
        tables = set(insp.get_table_names())
        assert {"questions", "proposals", "audit_events", "chatops_alembic_version"} <= tables
        assert {ix["name"] for ix in insp.get_indexes("proposals")} >= {
            "ix_proposals_state", "ix_proposals_created_at"}
        assert "ix_audit_events_at" in {ix["name"] for ix in insp.get_indexes("audit_events")}

        qid = store.record_question(question="q?", mode="llm", channel="C1", asker_slack_id="U1")
        store.migrate()  # again: nothing happens, data stays
        with Store.for_url(db_url) as again:
            with again.engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM chatops_alembic_version")).scalars().all()
                assert versions == ["0006"]
                assert conn.execute(text("SELECT count(*) FROM questions")).scalar_one() == 1
        assert qid == 1

        # The models and the migrations describe the same schema.
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    Base.metadata)
        diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "chatops_alembic_version")]
        assert diff == []
    finally:
        store.close()


def test_concurrent_migrations_on_a_fresh_database(db_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            Store.for_url(db_url).close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store(db_url) as store:
        assert store.list_proposals() == []


def test_sqlite_parent_folder_is_created_and_wal_is_on(tmp_path):
    path = tmp_path / "a" / "b" / "chatops.db"
    with Store.for_url(f"sqlite:///{path}") as store:
        assert path.exists()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0


# -- questions ----------------------------------------------------------------


def test_record_question_writes_row_and_event(store):
    cited = [{"n": 1, "title": "Runbook", "source": "confluence", "url": "https://wiki/x"}]
    qid = store.record_question(
        correlation_id="cid-q", team="T1", channel="C1", channel_type="channel",
        asker_slack_id="UANA", asker_email="ana@example.com", question="How do I deploy?",
        mode="llm", cited=cited, audience="channel members", hidden_documents=2, latency_ms=123.5,
    )
    assert isinstance(qid, int)
    events = list(store.export(_now() - timedelta(minutes=1)))
    assert len(events) == 1
    ev = events[0]
    assert ev["kind"] == "question" and ev["question_id"] == qid
    assert ev["actor_slack_id"] == "UANA" and ev["correlation_id"] == "cid-q"
    q = ev["question"]
    assert q["question"] == "How do I deploy?" and q["mode"] == "llm" and q["cited"] == cited
    assert q["hidden_documents"] == 2 and q["latency_ms"] == 123.5 and q["audience"] == "channel members"
    assert q["team"] == "T1" and q["channel_type"] == "channel" and q["asker_email"] == "ana@example.com"
    with pytest.raises(ValueError):
        store.record_question(question="x", mode="bogus")


# -- proposals ----------------------------------------------------------------


def test_create_get_list_and_set_message(store):
    first = _propose(store, action="a1")
    second = _propose(store, action="a2")
    assert isinstance(first, Proposal) and len(first.id) == 32 and int(first.id, 16) >= 0
    assert first.state == "proposed" and first.version == 1
    assert first.approvers == {"groups": ["sre"], "users": ["UBEN"], "requester_alone": False}
    assert first.allow_self_approval is False and first.message_ts is None
    assert first.decided_at is None and first.result is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.state = "approved"  # type: ignore[misc]

    assert store.get_proposal(first.id) == first
    assert store.get_proposal("0" * 32) is None
    assert [p.id for p in store.list_proposals()] == [second.id, first.id]
    assert [p.id for p in store.list_proposals(limit=1)] == [second.id]
    assert store.list_proposals(state="approved") == []
    store.transition(first.id, "approved", from_states=["proposed"], actor_slack_id="UBEN")
    assert [p.id for p in store.list_proposals(state="approved")] == [first.id]
    assert [p.id for p in store.list_proposals(state="proposed")] == [second.id]

    assert store.set_message(second.id, "1700000000.000200") is True
    assert store.set_message("f" * 32, "1.2") is False
    got = store.get_proposal(second.id)
    assert got.message_ts == "1700000000.000200" and got.version == 1
    assert _kinds(store, first.id) == ["proposal_created", "approved"]


def test_legal_chain_versions_and_events(store):
    p = _propose(store)
    assert p.version == 1
    approved = store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN",
                                actor_email="ben@example.com", require_unexpired_at=_now())
    assert approved.state == "approved" and approved.version == 2
    assert approved.decided_by_slack == "UBEN" and approved.decided_by_email == "ben@example.com"
    assert approved.decided_at is not None and approved.decided_at >= p.created_at

    executing = store.transition(p.id, "executing", from_states=["approved"], actor_slack_id="UWORKER")
    assert executing.state == "executing" and executing.version == 3
    assert executing.decided_by_slack == "UBEN"  # only decisions record the decider

    done = store.transition(p.id, "succeeded", from_states=["executing"],
                            result={"status": "restarted", "pods": 3}, detail={"took_ms": 812})
    assert done.state == "succeeded" and done.version == 4 and done.result == {"status": "restarted", "pods": 3}
    assert store.get_proposal(p.id) == done

    events = store.events(p.id)
    assert [e["kind"] for e in events] == ["proposal_created", "approved", "executing", "succeeded"]
    assert [e["detail"].get("version") for e in events[1:]] == [2, 3, 4]
    assert events[1]["actor_slack_id"] == "UBEN" and events[1]["actor_email"] == "ben@example.com"
    assert events[3]["detail"]["took_ms"] == 812
    assert all(e["correlation_id"] == "cid-1" for e in events)  # falls back to the proposal's


def test_reject_records_reason_and_decider(store):
    p = _propose(store)
    rejected = store.transition(p.id, "rejected", from_states=["proposed"], actor_slack_id="UBEN",
                                reason="not during the freeze", correlation_id="cid-click")
    assert rejected.state == "rejected" and rejected.reason == "not during the freeze"
    assert rejected.decided_by_slack == "UBEN" and rejected.version == 2
    ev = store.events(p.id)[-1]
    assert ev["kind"] == "rejected" and ev["detail"]["reason"] == "not during the freeze"
    assert ev["correlation_id"] == "cid-click"


def test_cas_second_approve_returns_none_and_writes_no_event(store):
    p = _propose(store)
    assert store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN") is not None
    assert store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UCAROL") is None
    assert store.transition(p.id, "rejected", from_states=["proposed"], actor_slack_id="UCAROL") is None
    assert store.transition("0" * 32, "approved", from_states=["proposed"]) is None
    current = store.get_proposal(p.id)
    assert current.state == "approved" and current.version == 2 and current.decided_by_slack == "UBEN"
    assert _kinds(store, p.id) == ["proposal_created", "approved"]


@pytest.mark.parametrize("shared", [False, True], ids=["store-per-thread", "shared-store"])
def test_concurrent_approvals_exactly_one_wins(store, db_url, shared):
    p = _propose(store)
    n = 8
    barrier = threading.Barrier(n)
    results: list[Proposal | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def approve(i: int) -> None:
        own = None if shared else Store(db_url)
        try:
            s = store if shared else own
            s.get_proposal(p.id)  # open a connection before the race
            barrier.wait()
            r = s.transition(p.id, "approved", from_states=["proposed"], actor_slack_id=f"U{i}",
                             require_unexpired_at=_now())
            with lock:
                results.append(r)
        except BaseException as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)
        finally:
            if own is not None:
                own.close()

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    winners = [r for r in results if r is not None]
    assert len(results) == n and len(winners) == 1
    final = store.get_proposal(p.id)
    assert final.state == "approved" and final.version == 2
    assert final.decided_by_slack == winners[0].decided_by_slack
    assert _kinds(store, p.id) == ["proposal_created", "approved"]


def test_expiry(store):
    p = _propose(store, expires_at=_now() + timedelta(minutes=10))
    late = p.expires_at + timedelta(seconds=1)
    assert store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN",
                            require_unexpired_at=late) is None
    assert store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN",
                            require_unexpired_at=p.expires_at) is None  # expires_at itself is too late
    assert store.get_proposal(p.id).state == "proposed"
    assert _kinds(store, p.id) == ["proposal_created"]

    # The sweeper expires it; a later click finds it gone.
    expired = store.transition(p.id, "expired", from_states=["proposed"])
    assert expired.state == "expired" and expired.decided_at is not None and expired.decided_by_slack is None
    assert store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN") is None
    assert _kinds(store, p.id) == ["proposal_created", "expired"]

    q = _propose(store, expires_at=_now() + timedelta(minutes=10))
    ok = store.transition(q.id, "approved", from_states=["proposed"], actor_slack_id="UBEN",
                          require_unexpired_at=q.expires_at - timedelta(seconds=1))
    assert ok is not None and ok.state == "approved"


@pytest.mark.parametrize("from_states,to_state", [
    (["proposed"], "executing"),
    (["proposed"], "succeeded"),
    (["approved"], "succeeded"),
    (["approved"], "rejected"),
    (["executing"], "approved"),
    (["succeeded"], "failed"),
    (["expired"], "approved"),
    (["proposed", "approved"], "approved"),  # legal from one, not from the other
    (["proposed"], "bogus"),
    (["bogus"], "approved"),
    ([], "approved"),
])
def test_illegal_transition_raises(store, from_states, to_state):
    p = _propose(store)
    with pytest.raises(ValueError):
        store.transition(p.id, to_state, from_states=from_states)
    assert store.get_proposal(p.id).version == 1
    assert _kinds(store, p.id) == ["proposal_created"]


def test_transition_table_is_the_documented_one():
    assert TRANSITIONS["proposed"] == {"approved", "rejected", "expired"}
    assert TRANSITIONS["approved"] == {"executing"}
    assert TRANSITIONS["executing"] == {"succeeded", "failed"}
    assert all(not TRANSITIONS[s] for s in ("succeeded", "failed", "rejected", "expired"))


# -- audit and export ---------------------------------------------------------


def test_audit_without_state_change(store):
    p = _propose(store)
    store.audit("click_refused", proposal_id=p.id, actor_slack_id="UANA",
                detail={"why": "self-approval not allowed"})
    store.audit("proposal_invalid", actor_slack_id="UANA", correlation_id="cid-x",
                detail={"action": "drop_db", "error": "unknown action"})
    events = store.events(p.id)
    assert [e["kind"] for e in events] == ["proposal_created", "click_refused"]
    assert events[1]["detail"] == {"why": "self-approval not allowed"}
    assert store.get_proposal(p.id).version == 1
    with pytest.raises(ValueError):
        store.audit("made_up_kind")


def test_export_since_until_in_order_with_iso_timestamps(store):
    base = _now()
    old_q = store.record_question(question="old question", mode="extractive", channel="C1",
                                  asker_slack_id="UANA", at=base - timedelta(hours=2))
    cut = base - timedelta(hours=1)
    new_q = store.record_question(question="new question", mode="no-evidence", channel="C1",
                                  asker_slack_id="UANA", at=base)
    p = _propose(store)
    store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN")
    store.audit("click_refused", proposal_id=p.id, actor_slack_id="UANA")

    events = list(store.export(since=cut))
    assert [e["kind"] for e in events] == ["question", "proposal_created", "approved", "click_refused"]
    assert events[0]["question_id"] == new_q and events[0]["question"]["question"] == "new question"
    ats = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in events]
    assert all(e["at"].endswith("Z") for e in events)
    assert all(a.utcoffset() == timedelta(0) for a in ats) and ats == sorted(ats)
    assert ats[0] >= cut
    assert events[0]["question"]["at"].endswith("Z")
    for e in events[1:]:
        assert e["proposal"] == {"action": "restart_service",
                                 "arguments": {"service": "billing-api", "env": "prod"},
                                 "state": "approved"}
        assert e["question"] is None
    assert events[0]["proposal"] is None
    # One line each of the jsonl export.
    lines = [json.dumps(e) for e in events]
    assert [json.loads(line)["kind"] for line in lines][0] == "question"

    older = list(store.export(since=base - timedelta(hours=3), until=cut))
    assert [(e["kind"], e["question_id"]) for e in older] == [("question", old_q)]
    assert list(store.export(since=_now() + timedelta(hours=1))) == []
    with pytest.raises(ValueError):
        store.export(since=datetime(2024, 1, 1))  # naive


# -- no secrets ---------------------------------------------------------------


def test_token_like_values_are_refused(store):
    with pytest.raises(ValueError, match="token") as info:
        _propose(store, arguments={"service": "x", "note": "use xoxb-123-abc"})
    assert "xoxb" not in str(info.value)  # the refusal does not echo the secret
    assert store.list_proposals() == []
    assert list(store.export(_now() - timedelta(minutes=5))) == []

    p = _propose(store)
    with pytest.raises(ValueError):
        store.audit("click_refused", proposal_id=p.id, detail={"header": "Bearer abc.def"})
    store.transition(p.id, "approved", from_states=["proposed"], actor_slack_id="UBEN")
    store.transition(p.id, "executing", from_states=["approved"])
    with pytest.raises(ValueError):
        store.transition(p.id, "succeeded", from_states=["executing"],
                         result={"output": "api_key=sk-abcdefghijkl"})
    assert store.get_proposal(p.id).state == "executing"  # nothing changed
    assert _kinds(store, p.id) == ["proposal_created", "approved", "executing"]

    # Free text from people is kept, with the token masked.
    store.record_question(question="why does xoxb-123-abc fail?", mode="refused", channel="C1",
                          asker_slack_id="UANA")
    q = [e for e in store.export(_now() - timedelta(minutes=5)) if e["kind"] == "question"][0]
    assert "xoxb-123-abc" not in q["question"]["question"] and "[REDACTED]" in q["question"]["question"]


# -- time zones ---------------------------------------------------------------


def test_datetimes_are_aware_utc(store, db_url, backend):
    ist = timezone(timedelta(hours=5, minutes=30))
    expires = datetime(2031, 6, 1, 17, 30, tzinfo=ist)
    p = _propose(store, expires_at=expires)
    assert p.expires_at == expires and p.expires_at.tzinfo == UTC
    assert p.expires_at.hour == 12 and p.created_at.tzinfo == UTC
    got = store.get_proposal(p.id)
    assert got.expires_at.tzinfo == UTC and got.created_at.tzinfo == UTC
    assert all(e["at"].tzinfo == UTC for e in store.events(p.id))

    # PostgreSQL: a session in another time zone still reads back UTC.
    url = db_url
    if backend == "postgresql":
        url = make_url(db_url).update_query_dict({"options": "-c timezone=Asia/Tokyo"}).render_as_string(
            hide_password=False)
    with Store(url) as other:
        seen = other.get_proposal(p.id)
        assert seen.expires_at == expires and seen.expires_at.tzinfo == UTC
        assert seen.created_at == p.created_at

    with pytest.raises(ValueError):
        _propose(store, expires_at=datetime(2031, 6, 1, 12, 0))  # naive


def test_switching_to_wal_retries_while_another_connection_switches():
    """SQLite refuses the journal-mode switch at once ("database is locked", no busy handler) while
    another connection switches the same new file; four migrators on a fresh file hit it."""
    import sqlite3

    from chatops.store.store import _enable_wal

    class Cursor:
        def __init__(self, refusals: int, message: str = "database is locked"):
            self.refusals, self.message, self.calls = refusals, message, 0

        def execute(self, sql):
            self.calls += 1
            if self.calls <= self.refusals:
                raise sqlite3.OperationalError(self.message)

    cur = Cursor(refusals=3)
    _enable_wal(cur)
    assert cur.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _enable_wal(Cursor(refusals=1, message="disk I/O error"))  # anything else is not retried
