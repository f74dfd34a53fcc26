"""Parsing in a child process under CPU-time and memory limits: a planted file can cost that
child, never the worker that syncs the source.

Every source parses its files here (``parse_isolated``). The pool keeps a few child processes
(``connectors/sources/parse_child.py``, started with ``python -m``), one file at a time each, and
reuses them; a child that passed a limit, crashed, or did not answer by the deadline is killed and
the next file gets a new one. The limits, per file:

* CPU time, ``CHATOPS_PARSE_TIMEOUT`` seconds (``RLIMIT_CPU``: the kernel ends the child);
* memory, ``CHATOPS_PARSE_MEMORY_MB`` (``RLIMIT_AS``: the file's bytes and whatever parsing them
  allocates);
* and a wall-clock deadline of twice the CPU time plus two seconds, for a child that waits
  instead of computing.

A file that fails raises :class:`ParseFailed` (an ``Unfetchable`` the sync tries once more at its
next run), logged and counted in ``chatops_parse_failures_total``. The child gets a minimal
environment (no tokens or secrets of the worker) and no open files but its two pipes.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from chatops import metrics
from connectors.sources.base import Section, Unfetchable
from connectors.sources.limits import DEFAULT_LIMITS as FILE_LIMITS
from connectors.sources.limits import FileLimits
from connectors.sources.parse_child import MEMORY_EXIT, frame
from connectors.sources.parsing import SUPPORTED, Unsupported
from connectors.sources.settings import SourceSettings

log = logging.getLogger(__name__)

_PACKAGES = Path(__file__).resolve().parents[2]       # where ``connectors`` is: the child imports the same code
_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH")
FILES_PER_CHILD = 200      # a child is replaced after this many files (what a parser leaks stays bounded)
MAX_IDLE = 4               # children kept between files


@dataclass(frozen=True)
class ParseLimits:
    cpu_seconds: float = 60.0
    memory_mb: int = 1024
    file: FileLimits = FILE_LIMITS      # what the parser takes from a file (``connectors/sources/limits.py``)

    @property
    def wall_seconds(self) -> float:
        return 2 * self.cpu_seconds + 2

    @classmethod
    def of(cls, settings) -> ParseLimits:
        """The limits the settings give (the defaults without them: an ad-hoc source)."""
        if settings is None:
            return cls()
        limits = settings.of(SourceSettings)
        return cls(cpu_seconds=limits.parse_timeout, memory_mb=limits.parse_memory_mb,
                   file=FileLimits.from_settings(settings))


DEFAULT_LIMITS = ParseLimits()


class ParseFailed(Unfetchable):
    """The file could not be parsed: the child passed a limit (``kind`` cpu, memory, timeout),
    stopped (crashed), or the parser refused the file (error)."""

    again = True

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class _Gone(Exception):
    """The child stopped answering: it ended (``kind`` None: its exit status tells why), the
    deadline passed ("timeout"), or it wrote something that is not an answer ("crashed")."""

    def __init__(self, kind: str | None = None):
        super().__init__(kind or "ended")
        self.kind = kind


class _Child:
    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k in _ENVIRONMENT}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGES), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "connectors.sources.parse_child"], cwd=_PACKAGES,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.files = 0
        os.set_blocking(self.proc.stdin.fileno(), False)

    def ask(self, name: str, data: bytes, limits: ParseLimits) -> dict:
        deadline = time.monotonic() + limits.wall_seconds
        head = json.dumps({"name": name, "cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb,
                           "file": asdict(limits.file)})
        self.files += 1
        self._send(frame(head.encode()), deadline)
        self._send(frame(data), deadline)
        size = int.from_bytes(self._receive(8, deadline), "big")
        if size > 8 * limits.file.max_chars + (1 << 24):             # far more than any answer
            raise _Gone("crashed")
        try:
            reply = json.loads(self._receive(size, deadline))
            if reply.get("ok"):
                reply["sections"] = [Section(str(h), str(t)) for h, t in reply["sections"]]
                reply["title"] = str(reply["title"])
            return reply
        except (ValueError, TypeError, KeyError, AttributeError):     # not the protocol: a child gone wrong
            raise _Gone("crashed") from None

    def _send(self, payload: bytes, deadline: float) -> None:
        fd, view = self.proc.stdin.fileno(), memoryview(payload)
        while view:
            _wait(fd, deadline, write=True)
            try:
                view = view[os.write(fd, view[:1 << 20]):]
            except BlockingIOError:
                continue
            except OSError:          # the child is gone (a broken pipe)
                raise _Gone() from None

    def _receive(self, size: int, deadline: float) -> bytes:
        fd, out = self.proc.stdout.fileno(), bytearray()
        while len(out) < size:
            _wait(fd, deadline, write=False)
            chunk = os.read(fd, min(size - len(out), 1 << 20))
            if not chunk:
                raise _Gone()
            out += chunk
        return bytes(out)

    def ended(self) -> str:
        """How the child ended, once it has: the kind of failure."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return "crashed"
        if code == -signal.SIGXCPU:
            return "cpu"
        return "memory" if code == MEMORY_EXIT else "crashed"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close()

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _wait(fd: int, deadline: float, *, write: bool) -> None:
    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(0.0, left)) if write else select.select([fd], [], [], max(0.0, left))
    if left <= 0 or not any(ready):
        raise _Gone("timeout")


class ParserPool:
    """Children that parse files, each used by one thread at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._pid = os.getpid()

    def parse(self, name: str, data: bytes, limits: ParseLimits) -> tuple[str, list[Section]]:
        """A file's title and sections, parsed in a child. Raises ``Unsupported`` (by its name,
        before any child is asked) and :class:`ParseFailed`."""
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in SUPPORTED:
            raise Unsupported(f"unsupported file type {suffix or '(none)'}")
        child = self._take()
        try:
            reply = child.ask(name, data, limits)
        except _Gone as gone:
            kind = gone.kind or child.ended()
            child.kill()
            raise _failed(name, kind, limits) from None
        except BaseException:
            child.kill()         # stopped mid-exchange (a time limit of the task): its state is unknown
            raise
        self._give_back(child)
        if reply.get("ok"):
            return reply["title"], reply["sections"]
        if reply.get("kind") == "unsupported":
            raise Unsupported(str(reply.get("error")))
        raise _failed(name, "error", limits, str(reply.get("error") or "unknown"))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()        # its input closes: it ends by itself
            child.proc.wait()

    def forget(self) -> None:
        """After a fork: the children belong to the parent process; this one starts its own."""
        self._lock = threading.Lock()
        self._idle = []
        self._pid = os.getpid()

    def _take(self) -> _Child:
        with self._lock:
            if self._pid != os.getpid():
                self.forget()
            while self._idle:
                child = self._idle.pop()
                if child.proc.poll() is None:
                    return child
                child.close()
        return _Child()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if child.files < FILES_PER_CHILD and len(self._idle) < MAX_IDLE and self._pid == os.getpid():
                self._idle.append(child)
                return
        child.close()
        child.proc.wait()


def _failed(name: str, kind: str, limits: ParseLimits, error: str = "") -> ParseFailed:
    reasons = {
        "cpu": f"took more than {limits.cpu_seconds:g} s of CPU to parse (CHATOPS_PARSE_TIMEOUT)",
        "memory": f"needed more than {limits.memory_mb} MB to parse (CHATOPS_PARSE_MEMORY_MB)",
        "timeout": f"was still being parsed after {limits.wall_seconds:g} s",
        "crashed": "its parser stopped without an answer",
        "error": f"could not be parsed: {error}",
    }
    metrics.PARSE_FAILURES.labels(reason=kind).inc()
    log.warning("file not parsed", extra={"file": name, "reason": kind, "error": error[:200] or None})
    return ParseFailed(reasons[kind], kind)


POOL = ParserPool()
os.register_at_fork(after_in_child=POOL.forget)


def parse_isolated(name: str, data: bytes, limits: ParseLimits) -> tuple[str, list[Section]]:
    """``parsing.parse_bytes`` in a child of this process's pool, under ``limits``."""
    return POOL.parse(name, data, limits)
