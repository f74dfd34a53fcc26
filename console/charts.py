"""Charts as inline SVG, drawn here: no JavaScript, nothing fetched.

Pure functions from numbers to ``Markup``: stacked bars (questions per day by outcome, cost per
day by model), diverging bars (👍 up, 👎 down), lines (trends) and range bars (p50 and p95 per
stage). Every bar and point has a ``<title>`` (the browser shows it on hover); labels and titles
are escaped. Colours and sizes are SVG presentation attributes, which the console's
Content-Security-Policy (no inline styles) allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from console.html import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 30, 26
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
INK, MUTED, GRID = "#1f2933", "#637083", "#e4e8ee"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str


def nice_step(span: float, ticks: int = 4, *, whole: bool = False) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten that divides ``span`` into about ``ticks``
    parts (``whole``: at least 1, and a whole number, for counts)."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    if whole and raw <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if whole and m == 2.5 and power < 10:
            continue
        if m * power >= raw:
            return m * power
    return 10 * power   # pragma: no cover - the loop always returns


def scale_top(peak: float, ticks: int = 4, *, whole: bool = False) -> tuple[float, float]:
    """(top of the axis, step between gridlines) for values up to ``peak``."""
    step = nice_step(peak, ticks, whole=whole)
    return step * max(1, math.ceil(peak / step - 1e-9)), step


def number(value: float) -> str:
    """A number for an axis or a tooltip: no trailing zeros, thousands with a thin space."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}".replace(",", "\u202f")
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", "\u202f")
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.4f}".rstrip("0").rstrip(".")


def milliseconds(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def money(value: float) -> str:
    return f"{value:.4f}" if value < 1 else f"{value:,.2f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _short(label: str) -> str:
    """2024-05-17 -> 05-17 (days on an axis); other labels as they are."""
    return label[5:] if len(label) == 10 and label[4] == "-" and label[7] == "-" else label


def _svg(title: str, body: str, height: int = HEIGHT) -> Markup:
    return Markup(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
                  f'role="img" aria-label="{escape(title)}" font-family="{FONT}" font-size="11">'
                  f"<title>{escape(title)}</title>{body}</svg>")


def empty(title: str, message: str = "No data in this period", height: int = HEIGHT) -> Markup:
    return _svg(title, f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" rx="8" fill="#f7f9fb" '
                       f'stroke="{GRID}"/><text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" '
                       f'fill="{MUTED}" font-size="13">{escape(message)}</text>', height)


def _legend(series: Sequence[Series]) -> str:
    out, x = [], LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="8" width="10" height="10" rx="2" fill="{escape(s.colour)}"/>'
                   f'<text x="{x + 14}" y="17" fill="{INK}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return "".join(out)


def _y_axis(top: float, step: float, fmt: Callable[[float], str], *, y0: float, plot_h: float) -> str:
    out, value = [], 0.0
    while value <= top + 1e-9:
        y = y0 - value / top * plot_h
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{escape(fmt(value))}</text>')
        value += step
    return "".join(out)


def _x_labels(labels: Sequence[str], centre: Callable[[int], float], y: float) -> str:
    every = max(1, math.ceil(len(labels) / 10))
    return "".join(f'<text x="{centre(i):.1f}" y="{y}" text-anchor="middle" fill="{MUTED}">{escape(_short(lab))}</text>'
                   for i, lab in enumerate(labels) if i % every == 0)


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str,
                 fmt: Callable[[float], str] = number, whole: bool = False) -> Markup:
    """One bar per label, the series stacked bottom to top in the order given."""
    totals = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    if not labels or max(totals, default=0) <= 0:
        return empty(title)
    top, step = scale_top(max(totals), whole=whole)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y0 = TOP + plot_h
    slot = plot_w / len(labels)
    bar = max(1.0, min(36.0, slot * 0.72))
    body = [_legend(series), _y_axis(top, step, fmt, y0=y0, plot_h=plot_h)]
    for i, label in enumerate(labels):
        x, base = LEFT + i * slot + (slot - bar) / 2, y0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = value / top * plot_h
            base -= h
            body.append(f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{escape(s.colour)}" data-series="{escape(s.name)}" data-value="{value:g}">'
                        f"<title>{escape(label)} · {escape(s.name)}: {escape(fmt(value))}</title></rect>")
    body.append(_x_labels(labels, lambda i: LEFT + (i + 0.5) * slot, HEIGHT - 8))
    return _svg(title, "".join(body))


def diverging_bars(labels: Sequence[str], up: Series, down: Series, *, title: str) -> Markup:
    """``up`` above a zero line and ``down`` below it, one pair per label (👍 and 👎 per day)."""
    peak = max([v or 0 for v in (*up.values, *down.values)], default=0)
    if not labels or peak <= 0:
        return empty(title)
    top, step = scale_top(peak, 2, whole=True)
    plot_w, half = WIDTH - LEFT - RIGHT, (HEIGHT - TOP - BOTTOM) / 2
    mid = TOP + half
    slot = plot_w / len(labels)
    bar = max(1.0, min(30.0, slot * 0.6))
    body = [_legend((up, down))]
    value = 0.0
    while value <= top + 1e-9:
        for sign in ((1,) if value == 0 else (1, -1)):
            y = mid - sign * value / top * half
            body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                        f'stroke="{"#c5ccd6" if value == 0 else GRID}"/>'
                        f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{number(value)}</text>')
        value += step
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar) / 2
        for s, sign in ((up, 1), (down, -1)):
            v = s.values[i] or 0
            if v <= 0:
                continue
            h = v / top * half
            y = mid - h if sign > 0 else mid
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" rx="1.5" '
                        f'fill="{escape(s.colour)}" data-series="{escape(s.name)}" data-value="{v:g}">'
                        f"<title>{escape(label)} · {escape(s.name)}: {number(v)}</title></rect>")
    body.append(_x_labels(labels, lambda i: LEFT + (i + 0.5) * slot, HEIGHT - 8))
    return _svg(title, "".join(body))


def lines(labels: Sequence[str], series: Sequence[Series], *, title: str,
          fmt: Callable[[float], str] = number, top: float | None = None, whole: bool = False) -> Markup:
    """One line per series; ``None`` values leave a gap. ``top``: a fixed top of the axis (1 for rates)."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values or (top is None and max(values) <= 0):
        return empty(title)
    if top is None:
        top, step = scale_top(max(values), whole=whole)
    else:
        step = nice_step(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y0 = TOP + plot_h
    n = len(labels)

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if n == 1 else 8 + i * (plot_w - 16) / (n - 1))

    body = [_legend(series), _y_axis(top, step, fmt, y0=y0, plot_h=plot_h)]
    for s in series:
        runs: list[list[tuple[float, float]]] = [[]]
        dots = []
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            point = (x(i), y0 - min(v, top) / top * plot_h)
            runs[-1].append(point)
            dots.append(f'<circle class="point" cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="{3 if n <= 40 else 2}" '
                        f'fill="{escape(s.colour)}" data-series="{escape(s.name)}" data-value="{v:g}">'
                        f"<title>{escape(labels[i])} · {escape(s.name)}: {escape(fmt(v))}</title></circle>")
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                body.append(f'<polyline points="{points}" fill="none" stroke="{escape(s.colour)}" stroke-width="2" '
                            f'stroke-linejoin="round" stroke-linecap="round"/>')
        body.extend(dots)
    body.append(_x_labels(labels, x, HEIGHT - 8))
    return _svg(title, "".join(body))


def range_bars(rows: Sequence[tuple[str, float | None, float | None]], *, title: str,
               fmt: Callable[[float], str] = milliseconds, colours: tuple[str, str] = ("#3b6fd8", "#b8c9f2"),
               names: tuple[str, str] = ("p50", "p95"), legend: bool = True) -> Markup:
    """One row per label: a pale bar to the high value (p95) and a dark one to the low (p50); a row
    with only a low value is one full-height dark bar (``legend=False`` for single values)."""
    rows = [(label, lo, hi) for label, lo, hi in rows if hi is not None or lo is not None]
    row_h, label_w = 26, 96
    height = TOP + BOTTOM + row_h * max(1, len(rows))
    if not rows:
        return empty(title, height=HEIGHT)
    peak = max((hi if hi is not None else lo) or 0 for _, lo, hi in rows)
    top, step = scale_top(peak or 1)
    x0, plot_w = LEFT + label_w, WIDTH - LEFT - label_w - RIGHT - 100
    body = [_legend((Series(names[0], (), colours[0]), Series(names[1], (), colours[1])))] if legend else []
    value = 0.0
    while value <= top + 1e-9:
        gx = x0 + value / top * plot_w
        body.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{TOP - 4}" y2="{height - BOTTOM + 4}" stroke="{GRID}"/>'
                    f'<text x="{gx:.1f}" y="{height - 8}" text-anchor="middle" fill="{MUTED}">{escape(fmt(value))}</text>')
        value += step
    for i, (label, lo, hi) in enumerate(rows):
        y = TOP + i * row_h + 4
        body.append(f'<text x="{x0 - 8}" y="{y + 12}" text-anchor="end" fill="{INK}">{escape(label)}</text>')
        if hi is not None:
            body.append(f'<rect class="bar" x="{x0}" y="{y}" width="{max(1.0, hi / top * plot_w):.1f}" height="16" rx="3" '
                        f'fill="{colours[1]}" data-series="{escape(names[1])}" data-value="{hi:g}">'
                        f"<title>{escape(label)} · {escape(names[1])}: {escape(fmt(hi))}</title></rect>")
        if lo is not None:
            thin = hi is not None
            body.append(f'<rect class="bar" x="{x0}" y="{y + 4 if thin else y}" width="{max(1.0, lo / top * plot_w):.1f}" '
                        f'height="{8 if thin else 16}" rx="2" '
                        f'fill="{colours[0]}" data-series="{escape(names[0])}" data-value="{lo:g}">'
                        f"<title>{escape(label)} · {escape(names[0])}: {escape(fmt(lo))}</title></rect>")
        end = x0 + (max(v for v in (lo, hi) if v is not None) / top) * plot_w
        shown = " / ".join(fmt(v) for v in (lo, hi) if v is not None)
        body.append(f'<text x="{end + 6:.1f}" y="{y + 12}" fill="{MUTED}">{escape(shown)}</text>')
    return _svg(title, "".join(body), height)
