"""A model's answer shown as it is written, never showing what the whole answer would not.

What runs on a whole answer (the claims filter, the citation check, the link policy) works on
sentences and on links and citations that are closed. So the text streamed by the model is held
until a *safe boundary*: the whitespace after a sentence (``.``, ``!``, ``?``) or a line break,
outside code and outside any open ``[`` or ``(``. Everything before the boundary is one piece,
cleaned by the same functions as a whole answer and then written; a citation split across
chunks (``[1`` + ``2]``), a URL or a Markdown link split across chunks, half a sentence, are never
written until they are whole. The whitespace at a boundary goes with the next piece, so what is
written, joined, is the answer's text (stripped), the one recorded.
"""

from __future__ import annotations

from typing import Callable


class StreamStopped(Exception):
    """The reader stopped the answer while it was written (Slack: ``stopped_by_user``)."""


class SafeStreamer:
    """Deltas in (:meth:`feed`), cleaned safe pieces out (``write``); :meth:`finish` at the end.

    ``clean``: what a whole answer goes through, applied to one piece (it may keep state across
    pieces, e.g. the citations' renumbering). ``write`` may raise (:class:`StreamStopped`): it
    propagates to whoever feeds the deltas, so generation ends."""

    def __init__(self, write: Callable[[str], None], clean: Callable[[str], str]) -> None:
        self._write = write
        self._clean = clean
        self._buffer = ""
        self._scanned = 0          # how far the buffer was scanned, with the state below
        self._fence = False        # inside ``` … ```
        self._inline = False       # inside ` … `
        self._depth = 0            # open [ and ( on this line, outside code
        self._cut = 0              # the last safe boundary found in the buffer
        self.text = ""             # what was written, joined

    def feed(self, delta: str) -> None:
        if not delta:
            return
        self._buffer += delta
        self._scan()
        if self._cut:
            piece, self._buffer = self._buffer[:self._cut], self._buffer[self._cut:]
            self._scanned -= self._cut
            self._cut = 0
            self._emit(piece)

    def finish(self) -> str:
        """Write what is left (the answer is complete: nothing more can close it) and return the
        whole text written."""
        rest, self._buffer = self._buffer, ""
        self._scanned = self._cut = 0
        self._emit(rest, last=True)
        return self.text

    def _scan(self) -> None:
        buf = self._buffer
        i = self._scanned
        while i < len(buf):
            ch = buf[i]
            if buf.startswith("```", i):
                self._fence = not self._fence
                i += 3
                continue
            if ch == "`" and not self._fence:
                if i + 1 >= len(buf) or i + 2 >= len(buf) and buf[i + 1] == "`":
                    break              # might be the start of a fence: wait for more
                self._inline = not self._inline
            elif not (self._fence or self._inline):
                if ch in "[(":
                    self._depth += 1
                elif ch in ")]":
                    self._depth = max(0, self._depth - 1)
                elif ch == "\n":
                    self._depth = 0    # a link or a citation never spans lines
                    if i > 0:
                        self._cut = i
                elif ch in " \t" and self._depth == 0 and i > 0 and buf[i - 1] in ".!?":
                    self._cut = i
            elif ch == "\n" and self._inline:
                self._inline = False   # inline code ends at the line
            i += 1
        self._scanned = i

    def _emit(self, piece: str, *, last: bool = False) -> None:
        cleaned = self._clean(piece) if piece.strip() else piece
        if not self.text:
            cleaned = cleaned.lstrip()
        if last:
            cleaned = cleaned.rstrip()
        if not cleaned:
            return
        self._write(cleaned)       # may raise: then the reader never saw it, and neither does the text
        self.text += cleaned
