"""``chatops doctor``: run the checks of a deployment and say, one line each, what is fine and what
is wrong with what to do about it.

The checks themselves belong to what they check (chatops/checks.py): the composition root picks
those the settings call for. Each runs once, in order, timed; an unexpected exception is a
failure that names it, never a traceback; the secrets a check may touch never reach the text.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Iterable

from chatops import logs
from chatops.checks import CheckFailed, CheckWarning, NotConfigured, Result, Status

Check = tuple[str, Callable[[], str]]

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": " -  "}


def run(checks: Iterable[Check], *, each: Callable[[Result], None] | None = None) -> list[Result]:
    """Every check's result, in order (``each`` sees them as they come)."""
    results = []
    for name, check in checks:
        started = time.perf_counter()
        status: Status
        try:
            status, detail, fix = "ok", check(), ""
        except CheckWarning as exc:
            status, detail, fix = "warn", str(exc), exc.fix
        except CheckFailed as exc:
            status, detail, fix = "fail", str(exc), exc.fix
        except NotConfigured as exc:
            status, detail, fix = "skip", str(exc), ""
        except Exception as exc:  # noqa: BLE001 - a check that breaks is a finding, not a crash
            status, detail, fix = "fail", f"{type(exc).__name__}: {_line(str(exc)) or 'no detail'}", ""
        result = Result(name, status, logs.redact(_line(detail)), logs.redact(_line(fix)),
                        time.perf_counter() - started)
        results.append(result)
        if each is not None:
            each(result)
    return results


def failed(results: Iterable[Result]) -> bool:
    return any(r.status == "fail" for r in results)


def line(result: Result, width: int = 24) -> str:
    text = f"{MARK[result.status]}  {result.name:<{width}} {result.detail}"
    return f"{text}: {result.fix}" if result.fix else text


def summary(results: list[Result]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in ("ok", "warn", "fail", "skip")}
    verdict = "problems found" if counts["fail"] else "no problems found"
    return (f"{verdict}: {counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed, "
            f"{counts['skip']} not configured")


def as_json(results: list[Result]) -> str:
    return json.dumps({"ok": not failed(results), "checks": [r.as_json() for r in results]}, indent=2)


def _line(text: str) -> str:
    return " ".join(str(text).split())
