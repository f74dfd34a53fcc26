"""The files below a root folder, listed and read without following a symbolic link.

A link is never followed, wherever it points: one out of the root would publish whatever it
names (``/proc/self/environ``, another folder), and one inside it would give the file it names
the permissions of the link's path instead of its own. Links are listed as such, so the source
can count them as skipped; the file a link names, when it is in the root, is listed in its own
place.

Reading opens the root, then each component of the relative path in the one before it
(``openat``) with ``O_NOFOLLOW``, so a link swapped in anywhere on the path after the listing
fails the read (``ELOOP``) instead of leading elsewhere. Only regular files are read: a FIFO
opens without blocking (``O_NONBLOCK``) and is refused, as is a device.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

LINK = "a symbolic link: links are not followed (the file it names is indexed in its own place)"
NOT_A_FILE = "not a regular file"

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRead(Exception):
    """The path names a link, or something that is not a regular file: the message says which."""


@dataclass(frozen=True)
class Entry:
    rel: str                  # the path below the root, with "/"
    skip: str | None = None   # why it is not read (a link, not a regular file); None: a file to read


def walk(root: Path, wanted: Callable[[str], bool]) -> Iterator[Entry]:
    """Every entry below ``root`` whose name ``wanted`` accepts, in path order, through no
    hidden folder and no link: regular files to read, links (to files or folders) and other
    kinds of file with the reason they are skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        folders = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            if os.path.islink(here / name):        # os.walk would not enter it either
                yield Entry((here / name).relative_to(root).as_posix(), LINK)
            else:
                folders.append(name)
        dirnames[:] = folders
        for name in sorted(n for n in filenames if wanted(n)):
            rel = (here / name).relative_to(root).as_posix()
            try:
                mode = os.lstat(here / name).st_mode
            except FileNotFoundError:
                continue                            # gone since the folder was listed
            yield Entry(rel, LINK if stat.S_ISLNK(mode) else None if stat.S_ISREG(mode) else NOT_A_FILE)


def read_below(root: Path, rel: str) -> bytes:
    """The bytes of the regular file ``rel`` (a relative path with "/") below ``root``, opened
    without following any link. Raises :class:`NotRead` for a link or a file that is not a
    regular one, ``OSError`` for anything else (gone, no permission)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise NotRead(f"not a path below the folder: {rel!r}")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = _open(part, _FOLDER, folder)
            os.close(folder)
            folder = inner
        _refuse_unless_file(os.stat(parts[-1], dir_fd=folder, follow_symlinks=False).st_mode)
        fd = _open(parts[-1], _FILE, folder)
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as file:
        _refuse_unless_file(os.fstat(fd).st_mode)       # swapped between the look and the open
        return file.read()


def _refuse_unless_file(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRead(LINK if stat.S_ISLNK(mode) else NOT_A_FILE)


def _open(name: str, flags: int, folder: int) -> int:
    """``name`` in the open folder ``folder``; a link there (ELOOP, or ENOTDIR when a folder was
    asked for) raises :class:`NotRead`."""
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            _refuse_unless_file(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
        raise
