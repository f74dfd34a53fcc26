"""Finding 5 of the security review: a planted file can cost the child process that parses it,
never the worker. Each file is parsed in a child (connectors/sources/isolation.py) under a CPU-time
and a memory limit, with a wall-clock deadline on top; a child that passes a limit, crashes or
hangs fails that one file with a reason, and the next file gets a working child. The child is
started with none of the worker's secrets in its environment."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from connectors.sources.base import Section, Unfetchable
from connectors.sources.isolation import POOL, ParseFailed, ParseLimits, ParserPool
from connectors.sources.parsing import Unsupported
from tests.planted_files import slow_pdf, text_pdf

GOOD = ("notes.md", b"# Notes\n\nStill parsed.\n")


@pytest.fixture
def pool():
    POOL.close()       # the process's own children (earlier tests): only this pool's are left
    pool = ParserPool()
    try:
        yield pool
    finally:
        pool.close()


def _children() -> list[int]:
    """This process's parse children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"parse_child" in cmdline:
            found.append(int(entry.name))
    return found


def _parse_in_thread(pool, name, data, limits):
    out: dict = {}

    def run():
        try:
            out["result"] = pool.parse(name, data, limits)
        except Exception as exc:  # noqa: BLE001 - what the test looks at
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _busy_child(pool) -> int:
    deadline = time.monotonic() + 20
    while not (pids := _children()):
        assert time.monotonic() < deadline, "no parse child started"
        time.sleep(0.02)
    time.sleep(0.3)      # it is parsing by now (the file is 2 kB)
    return pids[0]


def test_a_file_past_the_cpu_limit_fails_alone(pool):
    started = time.monotonic()
    with pytest.raises(ParseFailed) as failed:
        pool.parse("bomb.pdf", slow_pdf(pages=20), ParseLimits(cpu_seconds=1))
    assert failed.value.kind == "cpu" and "more than 1 s of CPU" in str(failed.value)
    assert isinstance(failed.value, Unfetchable) and failed.value.again
    assert time.monotonic() - started < 15        # not the 25 s of CPU the file would cost
    assert pool.parse(*GOOD, ParseLimits()) == ("Notes", [Section("", "Still parsed.")])


def test_a_file_past_the_memory_limit_fails_alone(pool):
    with pytest.raises(ParseFailed) as failed:
        pool.parse("big.txt", b"a" * 80_000_000, ParseLimits(memory_mb=64))
    assert failed.value.kind == "memory" and "more than 64 MB" in str(failed.value)
    assert pool.parse(*GOOD, ParseLimits()) == ("Notes", [Section("", "Still parsed.")])


def test_a_parse_child_killed_mid_file_fails_that_file_only(pool):
    thread, out = _parse_in_thread(pool, "bomb.pdf", slow_pdf(pages=20), ParseLimits(cpu_seconds=60))
    os.kill(_busy_child(pool), signal.SIGKILL)      # as the kernel's OOM killer would
    thread.join(20)
    assert isinstance(out.get("error"), ParseFailed) and out["error"].kind == "crashed", out
    assert pool.parse(*GOOD, ParseLimits()) == ("Notes", [Section("", "Still parsed.")])


def test_a_hung_parse_child_is_given_up_at_the_deadline(pool):
    thread, out = _parse_in_thread(pool, "bomb.pdf", slow_pdf(pages=20), ParseLimits(cpu_seconds=1))
    os.kill(_busy_child(pool), signal.SIGSTOP)      # it spends no CPU: only the clock can stop it
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), ParseFailed) and out["error"].kind == "timeout", out
    assert not _children() or pool.parse(*GOOD, ParseLimits())[0] == "Notes"


def test_children_are_reused_and_errors_are_reasons(pool):
    assert pool.parse("a.pdf", text_pdf("One"), ParseLimits())[1] == [Section("page 1", "One")]
    first = _children()
    assert pool.parse("b.pdf", text_pdf("Two"), ParseLimits())[1] == [Section("page 1", "Two")]
    assert _children() == first and len(first) == 1           # one child, kept for the next file
    with pytest.raises(ParseFailed) as failed:
        pool.parse("broken.pdf", b"%PDF-1.4 not really", ParseLimits())
    assert failed.value.kind == "error" and str(failed.value).startswith("could not be parsed: ")
    with pytest.raises(Unsupported):
        pool.parse("tools.zip", b"PK", ParseLimits())


def test_the_parse_child_gets_none_of_the_workers_secrets(pool, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-of-the-worker")
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "entra-secret")
    pool.parse(*GOOD, ParseLimits())
    [child] = _children()
    environ = Path(f"/proc/{child}/environ").read_bytes()
    assert b"xoxb-secret-of-the-worker" not in environ and b"entra-secret" not in environ
