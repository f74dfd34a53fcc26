"""``chatops`` commands started as the deployments start them: a real process each, its output in
a log file, waited for until it is up, stopped with SIGTERM as an orchestrator stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import requests

from tests.settings_env import settings_env_names

CHATOPS = str(Path(sys.executable).parent / "chatops")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any setting chatops reads, and ``settings`` on top."""
    names = settings_env_names()
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("OTEL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(settings)
    return env


class Process:
    """``chatops ARGS`` running in the background."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args, self.log = args, log
        self._out = open(log, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([CHATOPS, *args], env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def wait_until(self, check: Callable[[], object], *, timeout: float, what: str):
        """The first truthy ``check()``; fails with the process's output if it exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chatops {' '.join(self.args)} exited with {self.proc.returncode} "
                                     f"before {what}:\n{self.output()[-4000:]}")
            try:
                value = check()
            except (requests.RequestException, OSError):
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"chatops {' '.join(self.args)}: not {what} within {timeout:g} s:\n"
                             f"{self.output()[-4000:]}")

    def wait_http(self, url: str, *, status: int = 200, timeout: float = 60.0) -> requests.Response:
        return self.wait_until(lambda: _answers(url, status), timeout=timeout, what=f"answering {url} with {status}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM to the process group (as Kubernetes and compose stop a container), then the exit
        code: 0 for a clean stop. uvicorn shuts down gracefully and then raises the signal again
        (exit status -15); that is counted as clean too, unless it printed a traceback."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        code = self.proc.returncode
        if code == -signal.SIGTERM and "Traceback" not in self.output():
            return 0
        return code


def _answers(url: str, status: int) -> requests.Response | None:
    resp = requests.get(url, timeout=2)
    return resp if resp.status_code == status else None
