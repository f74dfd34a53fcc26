"""A model's answer shown as it is written, never showing what the whole answer would not.

What runs on a whole answer (the claims filter, the citation check, the link policy) works on
sentences and on links and citations that are closed. So the text streamed by the model is held
until a *safe boundary*, of two kinds, both outside code and outside any open ``[`` or ``(``:

* the whitespace after a sentence (``.``, ``!``, ``?``) or a line break: everything before it is
  one piece, cleaned by the same functions as a whole answer, then written;
* the whitespace after a word of a sentence still being written, when no state claim can include
  that word whatever follows (``usecases/claims.py`` ``claim_free_prefix``: the claims' patterns
  matched partially). Most sentences are shown word by word this way; one that could still become
  "… has been approved" is held from the word where that could begin. When the sentence ends, it
  is judged whole: if it is a claim, the part not shown yet (which holds all of the claim) goes.

A citation split across chunks (``[1`` + ``2]``), a URL or a Markdown link split across chunks, are
never written until they are whole. The whitespace at a boundary goes with the next piece, so what
is written, joined, is the answer's text (stripped), the one recorded.
"""

from __future__ import annotations

from typing import Callable, Protocol


class StreamStopped(Exception):
    """The reader stopped the answer while it was written (Slack: ``stopped_by_user``)."""


class PieceClean(Protocol):
    """What a whole answer goes through, applied to one piece. ``shown``: the start of the piece's
    first sentence, already written (the piece continues it); ``partial``: the piece is words of a
    sentence no claim can include (``claim_free_prefix``), its end not written yet."""

    def __call__(self, piece: str, *, shown: str = "", partial: bool = False) -> str: ...


class SafeStreamer:
    """Deltas in (:meth:`feed`), cleaned safe pieces out (``write``); :meth:`finish` at the end.

    ``clean``: see :class:`PieceClean` (it may keep state across pieces, e.g. the citations'
    renumbering); ``claim_free``: how much of an unfinished sentence no claim can include (None:
    sentences are written whole). ``write`` may raise (:class:`StreamStopped`): it propagates to
    whoever feeds the deltas, so generation ends."""

    def __init__(self, write: Callable[[str], None], clean: PieceClean,
                 claim_free: Callable[[str], int] | None = None) -> None:
        self._write = write
        self._clean = clean
        self._claim_free = claim_free
        self._shown = ""           # the start of the sentence being written, already written (raw)
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
        self._words()

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

    def _words(self) -> None:
        """Write the words of the sentence being written that no claim can include (see the
        module), up to the last whitespace outside ``[`` ``(`` before the first word a claim could
        begin with. Not in or near code: code is held until it closes."""
        buf = self._buffer
        if self._claim_free is None or self._fence or self._inline or "`" in buf:
            return
        limit = self._claim_free(self._shown + buf) - len(self._shown)
        depth, cut = 0, 0
        start = len(buf) - len(buf.lstrip())       # the boundary's whitespace, from the last piece
        for i, ch in enumerate(buf[:limit + 1]):
            if i < start:
                continue
            if ch in "[(":
                depth += 1
            elif ch in ")]":
                depth = max(0, depth - 1)
            elif ch == "\n":
                return                 # a line break is a sentence boundary: _scan's
            elif ch in " \t" and depth == 0 and i > 0 and not buf[i - 1].isspace():
                cut = i
        if cut:
            piece, self._buffer = buf[:cut], buf[cut:]
            self._scanned -= cut
            self._emit(piece, partial=True)

    def _emit(self, piece: str, *, last: bool = False, partial: bool = False) -> None:
        shown = self._shown
        self._shown = shown + piece if partial else ""
        cleaned = self._clean(piece, shown=shown, partial=partial) if piece.strip() else piece
        if not self.text:
            cleaned = cleaned.lstrip()
        if last:
            cleaned = cleaned.rstrip()
        if not cleaned:
            return
        self._write(cleaned)       # may raise: then the reader never saw it, and neither does the text
        self.text += cleaned
