"""The child process that parses files for ``connectors.sources.isolation``.

It reads requests on stdin and answers on stdout, one file at a time, until stdin closes. Each
request is a frame of JSON (``name``, ``cpu_seconds``, ``memory_mb``, and ``file``: the parser's
``FileLimits``) and a frame of the file's bytes; each answer a frame of JSON: ``{"ok": true, "title", "sections": [[heading, text]]}``, or
``{"ok": false, "kind": "unsupported" | "error", "error"}``. A frame is its length (8 bytes, big
endian) and its bytes. JSON, not pickle, on the way back: the parent never unpickles what a
child that read a hostile file wrote.

Before a file is read, the limits are set on this process: ``RLIMIT_CPU`` to the CPU time spent
so far plus the file's allowance (past it the kernel ends the process with SIGXCPU), and
``RLIMIT_AS`` to the memory allowed (the file's own bytes count). Out of memory, the process
exits with ``MEMORY_EXIT`` rather than go on with a heap in an unknown state. No core files.
"""

from __future__ import annotations

import json
import math
import os
import resource
import struct
import sys
from typing import BinaryIO

from connectors.sources.limits import FileLimits
from connectors.sources.parsing import Unsupported, parse_bytes

_LENGTH = struct.Struct(">Q")
MEMORY_EXIT = 3


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame, or None when the stream ends first."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def limit(cpu_seconds: float, memory_mb: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = usage.ru_utime + usage.ru_stime
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(spent + cpu_seconds), resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, resource.RLIM_INFINITY))


def answer(name: str, data: bytes, limits: FileLimits) -> dict:
    try:
        title, sections = parse_bytes(name, data, limits)
    except Unsupported as exc:
        return {"ok": False, "kind": "unsupported", "error": str(exc)}
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a parser raises on a bad file is its reason
        return {"ok": False, "kind": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "title": title, "sections": [[s.heading, s.text] for s in sections]}


def main() -> None:
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                  # whatever a parser prints goes to stderr, not into the answers
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        head = read_frame(requests)
        if head is None:
            return
        request = json.loads(head)
        try:
            limit(float(request["cpu_seconds"]), int(request["memory_mb"]))
            data = read_frame(requests)
            if data is None:
                return
            reply = json.dumps(answer(str(request["name"]), data, FileLimits(**request["file"]))).encode()
            del data
            replies.write(frame(reply))
            replies.flush()
        except MemoryError:
            os._exit(MEMORY_EXIT)


if __name__ == "__main__":
    main()
