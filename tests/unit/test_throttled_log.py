"""The log line for events anyone can cause: the first at once, then one per interval with the
count of what happened since."""

from __future__ import annotations

import logging

from chatops.throttled_log import ThrottledLog


def test_one_line_per_interval_counting_the_events_in_between(caplog):
    now = [1000.0]
    quiet = ThrottledLog(logging.getLogger("tests.throttled"), "refused", every=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tests.throttled"):
        assert quiet.note(reason="a") is True
        assert [quiet.note(reason="b") for _ in range(9)] == [False] * 9
        now[0] += 59.9
        assert quiet.note(2) is False
        now[0] += 0.1
        assert quiet.note(reason="c") is True
    assert [(r.getMessage(), r.events, r.reason) for r in caplog.records] == [("refused", 1, "a"), ("refused", 12, "c")]
