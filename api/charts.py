"""Charts as server-side SVG: no JavaScript, nothing fetched, they render offline.

Each function returns markup safe to embed (every label is escaped). Colours
and fonts come from classes styled in ``api/static/console.css``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Sequence

from markupsafe import Markup, escape

Number = Decimal | int | float
Formatter = Callable[[Number], str]

WIDTH = 560
HEIGHT = 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 12, 12, 24, 46
VALUE_CHAR_W = 6.2  # about how wide a character of a value label (10 px) is, in the chart's units
LABEL_CHAR_W = 6.8  # the same for an axis label (11 px)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _open(title: str, width: int, height: int) -> list[str]:
    label = escape(title)
    return [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{label}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>']


def bar_chart(items: Sequence[tuple[str, Number]], title: str, fmt: Formatter = str,
              width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Vertical bars, one per (label, value); the value is written above each bar."""
    return grouped_bar_chart([label for label, _ in items], [("", [v for _, v in items])], title, fmt, width, height)


def grouped_bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]], title: str,
                      fmt: Formatter = str, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Bars grouped by category, one colour per series (with a legend when named)."""
    parts = _open(title, width, height)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    base = PAD_TOP + plot_h
    peak = max([float(v) for _, values in series for v in values] + [0.0])
    scale = plot_h / peak if peak > 0 else 0.0
    slot = plot_w / max(len(categories), 1)
    bar_w = slot * 0.7 / max(len(series), 1)
    # Values written above the bars only when each fits its bar's room ('0,00 $US' under every one
    # of 13 weeks ran together); the bar's tooltip and the table under the chart keep them.
    longest = max((len(fmt(v)) for _, values in series for v in values), default=0)
    write_values = longest * VALUE_CHAR_W <= slot / max(len(series), 1)
    parts.append(f'<line class="axis" x1="{PAD_LEFT}" y1="{_f(base)}" x2="{width - PAD_RIGHT}" y2="{_f(base)}"/>')
    for i, category in enumerate(categories):
        x0 = PAD_LEFT + i * slot + slot * 0.15
        for s, (name, values) in enumerate(series):
            value = values[i]
            h = float(value) * scale
            x = x0 + s * bar_w
            parts.append(f'<rect class="bar s{s}" x="{_f(x)}" y="{_f(base - h)}" width="{_f(bar_w)}" height="{_f(h)}">'
                         f'<title>{escape(category)}{": " + escape(name) if name else ""} {escape(fmt(value))}</title></rect>')
            if write_values:
                parts.append(f'<text class="value" x="{_f(x + bar_w / 2)}" y="{_f(base - h - 4)}" '
                             f'text-anchor="middle">{escape(fmt(value))}</text>')
        parts.append(f'<text class="label" x="{_f(PAD_LEFT + i * slot + slot / 2)}" y="{_f(base + 16)}" '
                     f'text-anchor="middle">{escape(category)}</text>')
    named = [(s, name) for s, (name, _) in enumerate(series) if name]
    for n, (s, name) in enumerate(named):
        x = PAD_LEFT + n * 130
        parts.append(f'<rect class="bar s{s}" x="{x}" y="{height - 16}" width="10" height="10"/>'
                     f'<text class="label" x="{x + 14}" y="{height - 7}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(points: Sequence[tuple[str, Number | None]], title: str, fmt: Formatter = str,
               width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """A line through the points; a None value leaves a gap."""
    parts = _open(title, width, height)
    plot_w = width - PAD_LEFT - PAD_RIGHT - 20
    plot_h = height - PAD_TOP - PAD_BOTTOM
    base = PAD_TOP + plot_h
    values = [float(v) for _, v in points if v is not None]
    peak = max(values + [0.0])
    scale = plot_h / peak if peak > 0 else 0.0
    step = plot_w / max(len(points) - 1, 1)
    # the last label ends at its point (it stood half outside the chart); a label it would overlap is left out
    last_x = PAD_LEFT + 10 + (len(points) - 1) * step
    last_left = last_x - len(points[-1][0]) * LABEL_CHAR_W if points else last_x
    parts.append(f'<line class="axis" x1="{PAD_LEFT}" y1="{_f(base)}" x2="{width - PAD_RIGHT}" y2="{_f(base)}"/>')
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, (label, value) in enumerate(points):
        x = PAD_LEFT + 10 + i * step
        if value is None:
            if segment:
                segments.append(segment)
            segment = []
        else:
            y = base - float(value) * scale
            segment.append(f"{_f(x)},{_f(y)}")
            parts.append(f'<circle class="dot" cx="{_f(x)}" cy="{_f(y)}" r="3"><title>{escape(label)} '
                         f'{escape(fmt(value))}</title></circle>')
            parts.append(f'<text class="value" x="{_f(x)}" y="{_f(y - 7)}" text-anchor="middle">{escape(fmt(value))}</text>')
        if i == len(points) - 1:
            parts.append(f'<text class="label" x="{_f(x)}" y="{_f(base + 16)}" text-anchor="end">{escape(label)}</text>')
        elif i % max(len(points) // 6, 1) == 0 and x + len(label) * LABEL_CHAR_W / 2 + 4 <= last_left:
            anchor = "start" if i == 0 else "middle"  # the first one starts at its point, inside the chart
            parts.append(f'<text class="label" x="{_f(x)}" y="{_f(base + 16)}" text-anchor="{anchor}">{escape(label)}</text>')
    if segment:
        segments.append(segment)
    for seg in segments:
        parts.insert(2, f'<polyline class="line" points="{" ".join(seg)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(items: Sequence[tuple[str, Number]], title: str, fmt: Formatter = str, width: int = WIDTH,
               row: int = 22, label_width: int = 150) -> Markup:
    """Horizontal bars, one row per (label, value): for many categories with long names."""
    height = PAD_TOP + row * max(len(items), 1) + 8
    parts = _open(title, width, height)
    plot_w = width - label_width - PAD_RIGHT - 50
    peak = max([float(v) for _, v in items] + [0.0])
    scale = plot_w / peak if peak > 0 else 0.0
    x0 = label_width
    for i, (label, value) in enumerate(items):
        y = PAD_TOP + i * row
        w = float(value) * scale
        parts.append(f'<text class="label" x="{x0 - 8}" y="{_f(y + row * 0.65)}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="bar s0" x="{x0}" y="{_f(y + 3)}" width="{_f(w)}" height="{_f(row - 6)}">'
                     f'<title>{escape(label)} {escape(fmt(value))}</title></rect>')
        parts.append(f'<text class="value" x="{_f(x0 + w + 5)}" y="{_f(y + row * 0.65)}">{escape(fmt(value))}</text>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{PAD_TOP}" x2="{x0}" y2="{PAD_TOP + row * len(items)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
