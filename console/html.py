"""HTML built from Python with escaping by default.

``html(template, **values)`` fills ``{name}`` fields with the values escaped, unless a value is
already ``Markup`` (built here). Everything that comes from a person or a document goes through
it; nothing is inserted into a page any other way.
"""

from __future__ import annotations

import html as _html
from typing import Any, Iterable


class Markup(str):
    """A string that is HTML already (escaped where it had to be)."""

    __slots__ = ()


def escape(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape("" if value is None else str(value), quote=True))


def html(template: str, /, **values: Any) -> Markup:
    """``template`` (trusted: a literal in this package) with every value escaped."""
    return Markup(template.format(**{k: escape(v) for k, v in values.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(sep.join(escape(p) for p in parts))
