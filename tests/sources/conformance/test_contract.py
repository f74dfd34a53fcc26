"""The contract every source kind meets, run over every kind in ``SOURCES`` with its stand-in
(the index engines have theirs in ``tests/index/``).

Each test is one case: the stand-in changes the way the real service would, the harness syncs
as the workers do (chains of small windows), and the assertions are about what the index holds
and for whom, what the sync cost (downloads, fetches, embeddings) and what its report says. A
kind that cannot have a case says why in its adapter, and the case is skipped with that reason.
"""

from __future__ import annotations

import json

import pytest

from connectors.sources.registry import SOURCES, SourceContext, SourceSpecError, open_sync_source
from tests.sources.conformance.conftest import ADAPTERS
from tests.sources.conformance.harness import (FINDINGS, INSIDER, INTERRUPTION, OUTSIDER, PAGING, READER,
                                               THROTTLING, UNREADABLE)

HANDBOOK = ("handbook", "how the team works together")
PLAN = ("launch-plan", "the launch is on monday")


def test_every_registered_kind_has_an_adapter():
    syncing = {name for name, kind in SOURCES.items() if kind.syncs}
    assert syncing == set(ADAPTERS), "each source kind that syncs needs an adapter in tests/sources/conformance/"


@pytest.mark.parametrize("kind", sorted(k for k, v in SOURCES.items() if not v.syncs))
def test_a_kind_that_cannot_sync_is_refused_by_name(kind):
    with pytest.raises(SourceSpecError, match=f"{kind} sources cannot be synced"):
        open_sync_source("x", {"kind": kind, "path": "/nonexistent"}, SourceContext())


# -- content: new, edited, renamed, moved, deleted ----------------------------------------------


def test_a_new_item_is_indexed_for_those_who_may_read_it(h):
    h.start(HANDBOOK)
    plan = h.adapter.create(*PLAN)
    report = h.catch_up("new")
    assert report.added == 1 and report.deleted == 0, report.summary()
    assert "1 added" in report.summary()
    seen = h.seen(READER)[plan.doc_id]
    assert seen.title == plan.title and seen.url == plan.url and "launch is on monday" in seen.text
    assert plan.doc_id not in h.seen(OUTSIDER) and h.seen(None) == {}
    assert h.source.fetched[plan.doc_id] == 1
    again = h.chain("changes")                     # nothing new: nothing read, nothing written
    assert (again.added, again.updated, again.deleted, again.renamed, again.permissions_changed) == (0, 0, 0, 0, 0)
    assert h.source.fetched[plan.doc_id] == 1


def test_an_edit_replaces_the_text(h):
    (plan,) = h.start(PLAN)
    h.adapter.edit(plan, "the launch moved to friday")
    report = h.catch_up("edit")
    assert report.updated == 1 and report.added == 0, report.summary()
    assert "1 updated" in report.summary()
    text = h.seen(READER)[plan.doc_id].text
    assert "friday" in text and "monday" not in text


def test_a_rename_changes_the_title_and_link(h):
    handbook, plan = h.start(HANDBOOK, PLAN)
    indexed = h.indexed()
    downloads, fetched, embedded = h.costs()
    new = h.adapter.rename(plan, "launch-runbook")
    report = h.catch_up("rename")
    seen = h.seen(READER)
    assert {s.title for s in seen.values()} == {handbook.title, new.title}
    assert seen[new.doc_id].url == new.url and "launch is on monday" in seen[new.doc_id].text
    assert h.indexed() == indexed - {plan.doc_id} | {new.doc_id}
    if h.adapter.renames_in_place:
        assert new.doc_id == plan.doc_id and report.renamed == 1, report.summary()
        assert "1 renamed or moved" in report.summary()
        assert h.costs() == (downloads, fetched, embedded)          # in place: nothing read or embedded
    else:
        assert report.updated + report.added == 1, report.summary()


def test_a_move_takes_the_new_place_s_link_and_permissions(h):
    _, plan = h.start(HANDBOOK, PLAN)
    assert plan.doc_id in h.seen(READER)
    indexed = h.indexed()
    downloads, fetched, embedded = h.costs()
    new = h.adapter.move(plan)
    report = h.catch_up("move")
    assert new.doc_id in h.seen(INSIDER) and new.doc_id not in h.seen(READER), report.summary()
    assert h.seen(INSIDER)[new.doc_id].url == new.url
    assert h.indexed() == indexed - {plan.doc_id} | {new.doc_id}            # moved, not copied
    if h.adapter.moves_in_place:
        assert new.doc_id == plan.doc_id
        assert h.costs() == (downloads, fetched, embedded), report.summary()


def test_a_deleted_item_leaves_the_index(h):
    handbook, plan = h.start(HANDBOOK, PLAN)
    h.adapter.delete(plan)
    report = h.catch_up("delete")
    assert report.deleted == 1, report.summary()
    assert "1 deleted" in report.summary()
    assert plan.doc_id not in h.indexed() and set(h.seen(READER)) == {handbook.doc_id}


# -- permissions ------------------------------------------------------------------------------


def test_a_permissions_only_change_is_written_in_place(h):
    """No download, no fetch, no embedding: only the ACL changes."""
    _, plan = h.start(HANDBOOK, PLAN)
    assert plan.doc_id in h.seen(READER)
    costs = h.costs()
    h.adapter.share_only_with_insider(plan)
    report = h.catch_up("permissions only")
    assert plan.doc_id in h.seen(INSIDER) and plan.doc_id not in h.seen(READER)
    assert report.permissions_changed >= 1 and report.added == report.updated == 0, report.summary()
    assert f"{report.permissions_changed} permissions changed" in report.summary()
    assert h.costs() == costs


def test_unreadable_permissions_hide_the_item_from_everyone_and_are_counted(h):
    h.needs(UNREADABLE)
    h.start(HANDBOOK)
    vault = h.adapter.create("vault-notes", "the vault combination")
    h.adapter.hide_permissions(vault)
    report = h.catch_up("new")
    assert report.unreadable == 1, report.summary()
    assert "1 with unreadable permissions (hidden from everyone)" in report.summary()
    assert vault.doc_id in h.indexed()                       # indexed, visible to nobody
    for who in (READER, INSIDER, OUTSIDER, None):
        assert vault.doc_id not in h.seen(who)
    assert h.states.counts(h.name).get("unreadable") == 1    # what `sources status` shows
    # readable again: the permission pass writes the ACL in place
    costs = h.costs()
    h.adapter.reveal_permissions(vault)
    h.catch_up("reveal")
    assert vault.doc_id in h.seen(READER)
    assert h.states.counts(h.name).get("unreadable", 0) == 0
    assert h.costs() == costs


# -- paging, throttling, interruptions --------------------------------------------------------


def test_every_page_of_a_listing_is_read(h):
    h.needs(PAGING)
    h.adapter.small_pages()
    refs = h.start(*[(f"note-{n}", f"note {n} version one") for n in range(7)])
    assert {r.doc_id for r in refs} <= set(h.seen(READER))
    assert h.adapter.continued_listings() >= 3
    listed = h.adapter.continued_listings()
    for n, ref in enumerate(refs):
        h.adapter.edit(ref, f"note {n} version two")
    report = h.catch_up("edit")
    assert report.updated == 7, report.summary()
    assert h.adapter.continued_listings() > listed          # the changes come in pages too
    assert all("version two" in h.seen(READER)[r.doc_id].text for r in refs)


def test_throttling_is_waited_out_as_asked(h):
    h.needs(THROTTLING)
    h.start(HANDBOOK)
    plan = h.adapter.create(*PLAN)
    h.adapter.sleeps.clear()
    h.adapter.throttle(2, retry_after=3)
    report = h.chain("changes")
    assert report.done and report.error is None and report.added == 1, report.summary()
    assert plan.doc_id in h.seen(READER)
    assert max(h.adapter.sleeps) >= 2.5                     # Retry-After honoured
    assert 5.5 <= sum(h.adapter.sleeps) <= 6.5              # what was asked, no more


def test_throttling_past_the_bound_stops_the_window_and_the_source_is_left_alone(h):
    h.needs(THROTTLING)
    h.start(HANDBOOK)
    plan = h.adapter.create(*PLAN)
    h.adapter.sleeps.clear()
    h.adapter.throttle(1, retry_after=600)
    stopped = h.chain("changes")
    assert stopped.error and "throttled" in stopped.error and not stopped.done, stopped.summary()
    assert "(the next sync resumes from here)" in stopped.summary()
    assert sum(h.adapter.sleeps) <= h.max_wait                # bounded: it did not wait 600 s
    until = h.states.get(h.name).throttled_until
    assert until is not None and (until - h.now()).total_seconds() > 590
    requests = h.adapter.requests()
    held = h.chain("changes")                                 # before then: the source is not asked
    assert held.error and held.error.startswith("the source asked us to wait until")
    assert h.adapter.requests() == requests
    h.later(601)
    resumed = h.chain("changes")
    assert resumed.done and resumed.error is None and resumed.added == 1, resumed.summary()
    assert plan.doc_id in h.seen(READER) and h.states.get(h.name).last_error is None


def test_an_interrupted_pass_resumes_from_its_cursor(h):
    """The service fails in the middle of a scope's listing: the window stops, and the next pass
    goes on from that scope's stored page, without listing the finished scopes again or reading
    any document twice."""
    h.needs(INTERRUPTION)
    h.adapter.small_pages()
    h.adapter.build()
    refs = [h.adapter.create(f"team-{n}", f"team note {n}") for n in range(3)]
    refs += [h.adapter.create(f"other-{n}", f"other note {n}", where="other") for n in range(5)]
    last = "other" if h.source.scopes()[-1] == h.adapter.scope("other") else "team"
    first = {"team": "other", "other": "team"}[last]
    h.adapter.break_listing(last)
    stopped = h.chain("changes")
    assert stopped.error and not stopped.done, stopped.summary()
    assert "(the next sync resumes from here)" in stopped.summary()
    scopes = h.states.scopes(h.name)
    assert scopes[h.adapter.scope(first)].cursor is not None and scopes[h.adapter.scope(first)].run_mode is None
    assert scopes[h.adapter.scope(last)].run_cursor is not None         # where the listing stopped
    h.adapter.heal()
    h.later(3600)
    resumed = h.chain("changes")
    assert resumed.done and resumed.error is None, resumed.summary()
    assert {r.doc_id for r in refs} <= set(h.seen(READER))
    assert all(h.source.fetched[r.doc_id] == 1 for r in refs), dict(h.source.fetched)
    assert (h.adapter.listings_started(first), h.adapter.listings_started(last)) == (1, 1)


# -- findings ---------------------------------------------------------------------------------


def test_the_permission_pass_records_the_source_s_findings(h):
    h.start(HANDBOOK)
    report = h.chain("permissions")
    assert report.done and report.error is None, report.summary()
    recorded = json.loads(h.states.get(h.name).findings)
    assert recorded == h.source.findings() and all(isinstance(n, int) for n in recorded.values())


def test_what_grants_nothing_is_counted_in_the_findings(h):
    h.needs(FINDINGS)
    h.adapter.build()
    plan = h.adapter.create(*PLAN)
    key = h.adapter.provoke_finding(plan)
    first = h.chain("changes")                      # the first sync (full) ends with a permission pass
    assert first.done and first.error is None, first.summary()
    assert json.loads(h.states.get(h.name).findings)[key] == 1
    h.chain("permissions")                          # counted again by each pass, not added up
    assert json.loads(h.states.get(h.name).findings)[key] == 1
    assert plan.doc_id in h.seen(READER)            # the rest of the permission still counts

