"""Slack's limits, in one place (https://api.slack.com/reference/block-kit)."""

SECTION_TEXT_MAX = 3000        # characters in a section block's text
CONTEXT_TEXT_MAX = 2000        # characters in one context element
BLOCKS_PER_MESSAGE = 50        # blocks in one message
BLOCKS_PER_VIEW = 100          # blocks in one view (a modal or the Home tab)
MESSAGE_TEXT_MAX = 4000        # the fallback ``text``; Slack truncates long ones
BUTTON_VALUE_MAX = 2000        # characters in a button's value
BUTTON_TEXT_MAX = 75           # characters in a button's label
ACK_DEADLINE_S = 3             # Slack wants an HTTP answer within this


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries; never exceed ``limit``."""
    if len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for unit in _units(text, limit):
        sep = "" if not current else ("\n\n" if not unit.startswith("\n") else "")
        if len(current) + len(sep) + len(unit) <= limit:
            current = current + sep + unit
        else:
            if current:
                parts.append(current)
            current = unit
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()]  # Slack rejects blank section text


def _units(text: str, limit: int) -> list[str]:
    units: list[str] = []
    for para in text.split("\n\n"):
        if len(para) <= limit:
            units.append(para)
            continue
        line_buf = ""
        for line in para.split("\n"):
            while len(line) > limit:
                cut = line.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                if line_buf:
                    units.append(line_buf)
                    line_buf = ""
                units.append(line[:cut])
                line = line[cut:].lstrip()
            if len(line_buf) + 1 + len(line) <= limit:
                line_buf = f"{line_buf}\n{line}" if line_buf else line
            else:
                units.append(line_buf)
                line_buf = line
        if line_buf:
            units.append(line_buf)
    return units


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
STATUS_TEXT_MAX = 50           # assistant.threads.setStatus: characters of a loading message
TASK_TITLE_MAX = 80            # a task_update chunk's title: ours, kept to one line of the task card
STREAM_TEXT_MAX = 12000        # markdown_text in one chat.startStream / appendStream / stopStream call
