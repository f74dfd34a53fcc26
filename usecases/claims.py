"""Model text that claims a state change is not the model's to make.

Only chatops' own status messages announce that an action was approved, ran or
changed someone's permissions. A model (or a planted document speaking through
it) might write "Your access request was already approved and has been
granted" — so sentences that claim an approval, an execution or a permission
change are taken out of a generated answer, and the answer says that it was.

This is a filter for obvious claims, not a proof: the structural guarantees
are elsewhere (a proposal runs only after an allowed person's click; answers
are labelled as generated). It leaves procedures alone ("after the service has
been restarted, check the logs"): a sentence that is conditional or temporal
("after", "once", "if", "when", ...) is not a claim.
"""

from __future__ import annotations

import re

import regex

_Q = r"(?:now\s+|already\s+|just\s+|successfully\s+|been\s+)*"   # qualifiers between the verbs

_PATTERNS = (
    # "... was approved", "has already been authorised", "is now approved"
    rf"\b(?:has|have|had|was|were|is|are)\s+{_Q}(?:approved|authori[sz]ed|signed\s+off)\b",
    r"\bapproval\s+(?:has\s+been|was|is)\s+(?:now\s+)?(?:granted|given|received|obtained)\b",
    # a status line in the bot's own style: "Approved by @ana", ":white_check_mark: Done by ..."
    r"^\W*(?::[a-z_]+:\s*)?(?:approved|rejected|executed|done|completed|succeeded)\s+by\b",
    # "has been restarted / executed / deployed", "was successfully run"
    r"\b(?:has|have|had)\s+" + _Q + r"(?:executed|restarted|deployed|rolled\s+back|provisioned|carried\s+out)\b",
    rf"\b(?:was|were)\s+(?:already|just|successfully)\s+{_Q}(?:executed|restarted|deployed|rolled\s+back|run|"
    r"provisioned|carried\s+out|created|opened|filed|submitted)\b",
    # a request, ticket or action reported as done
    rf"\b(?:ticket|incident|issue|request|change|proposal|action)\b[^.!?\n]{{0,60}}\b(?:has|have|was|were|is)\s+"
    rf"{_Q}(?:created|opened|filed|submitted|executed|completed|run|done|granted)\b",
    # the model speaking of its own deeds: "I have restarted", "I've gone ahead and granted"
    r"\bI(?:'ve|\s+have|\s+just|\s+already)?\s+(?:already\s+|now\s+|successfully\s+|gone\s+ahead\s+and\s+)*"
    r"(?:approved|executed|ran|run|restarted|deployed|granted|added\s+you|removed\s+you|revoked|created|opened|"
    r"filed|submitted|reset|rolled\s+back)\b",
    # permission changes
    rf"\b(?:access|permissions?|membership|role|rights)\s+(?:(?:has|have|was|were)\s+{_Q}|(?:is|are)\s+"
    r"(?:now|already)\s+)(?:granted|given|changed|updated|revoked|removed|added|elevated|approved)\b",
    r"\byou(?:'ve|\s+have)?\s+(?:now\s+|already\s+)*been\s+(?:granted|given|added|approved|removed)\b",
    r"\byou\s+(?:now|already)\s+have\s+(?:access|permission|admin|the\s+\S+\s+role)\b",
)
_CLAIMS = [re.compile(p, re.IGNORECASE) for p in _PATTERNS]
# the same patterns, for matches the text so far could still become (``regex``'s partial matching)
_PREFIXES = [regex.compile(p, regex.IGNORECASE | regex.VERSION0) for p in _PATTERNS]

_CONDITIONAL = re.compile(r"\b(?:after|once|when|whenever|if|until|before|unless|as\s+soon\s+as|only)\b",
                          re.IGNORECASE)
_GONE = "\x01"
_BETWEEN_SENTENCES = re.compile(r"((?<=[.!?])[ \t]+|\n)")

NOTE = ("I left out a statement that claimed an action was approved, carried out or changed someone's "
        "access: only chatops' own status messages report those.")


def is_state_claim(sentence: str) -> bool:
    for pattern in _CLAIMS:
        m = pattern.search(sentence)
        if m and not _CONDITIONAL.search(sentence[:m.start()]):
            return True
    return False


def claim_free_prefix(sentence: str) -> int:
    """How much of the start of ``sentence`` (a sentence still being written, outside code) no
    claim can include, whatever text follows: the leftmost place where a pattern matches, or
    could match once more text comes, with no conditional word before it. A streamed answer
    shows that much of a sentence before the sentence ends (``usecases/streaming.py``): if the
    sentence turns out to be a claim, the claim lies wholly in the part not shown yet."""
    limit = len(sentence)
    for pattern in _PREFIXES:
        m = pattern.search(sentence, partial=True)
        if m is not None and m.start() < limit and not _CONDITIONAL.search(sentence[:m.start()]):
            limit = m.start()
    return limit


def strip_state_claims_after(shown: str, text: str) -> tuple[str, int]:
    """:func:`strip_state_claims` for ``text``, a piece of a streamed answer that continues a
    sentence whose start (``shown``, empty when it starts one) was already shown: that sentence is
    judged whole, and if it is a claim, the rest of it goes (``shown`` held none of the claim:
    :func:`claim_free_prefix`)."""
    if not shown.strip():
        return _strip_keeping_lead(text)
    m = re.search(r"(?<=[.!?])[ \t]+|\n|`", shown[-1:] + text)
    end = len(text) if m is None else max(0, m.start() - 1)
    head, rest = text[:end], text[end:]
    cleaned, removed = _strip_keeping_lead(rest)
    if is_state_claim(shown + head):
        return cleaned, removed + 1
    return head + cleaned, removed


def _strip_keeping_lead(text: str) -> tuple[str, int]:
    """:func:`strip_state_claims` for a piece of a longer text: the whitespace it starts with (what
    separates it from the piece before) stays, unless nothing is left of it."""
    if not text.strip():
        return text, 0
    cleaned, removed = strip_state_claims(text)
    if removed:
        lead = text[:len(text) - len(text.lstrip())]
        cleaned = lead + cleaned if cleaned else ""
    return cleaned, removed


def strip_state_claims(text: str) -> tuple[str, int]:
    """The text without the sentences that claim a state change, and how many were removed.

    Code (inline or fenced) is left as it is."""
    pieces = re.split(r"(```.*?```|`[^`\n]*`)", text, flags=re.DOTALL)
    removed = 0
    for i in range(0, len(pieces), 2):   # even pieces are prose
        parts = _BETWEEN_SENTENCES.split(pieces[i])
        for j in range(0, len(parts), 2):   # even parts are sentences, odd ones what separates them
            if parts[j].strip() and is_state_claim(parts[j]):
                parts[j] = _GONE
                removed += 1
        pieces[i] = "".join(parts)
    if not removed:
        return text, 0
    cleaned = re.sub(rf"(?m)^[ \t]*{_GONE}[ \t]*(?:\n|$)", "", "".join(pieces))   # a line that was one claim
    cleaned = re.sub(r"[ \t]+\n", "\n", cleaned.replace(_GONE, ""))
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), removed
