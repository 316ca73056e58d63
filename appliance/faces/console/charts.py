"""Charts drawn on the server as SVG: bar charts with axes, labels and a text alternative.

No chart library and no script: the figures are small (tens of bars), SVG prints and scales, and the
CSP needs nothing beyond `img-src`/inline markup. Each chart is `role="img"` with an `aria-label` and a
`<title>`, and each bar has its own `<title>` (a tooltip, and what a screen reader reads); the page
shows the same numbers in a table beside it. Every value and label is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 16, 48


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label, its value, and the text of its tooltip."""

    label: str
    value: float
    note: str = ""


def _ticks(top: float) -> list[float]:
    """Four or five round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    step = 10 ** len(str(int(top))) / 10
    for factor in (1, 2, 2.5, 5, 10):
        if top / (step * factor) <= 5:
            step *= factor
            break
    count = int(-(-top // step))
    return [i * step for i in range(count + 1)]


def _number(value: float) -> str:
    return f"{value:g}"


def bar_chart(title: str, bars: list[Bar], *, css_class: str = "chart", max_value: float | None = None) -> str:
    """A vertical bar chart of `bars`, as an inline `<svg>` element."""
    ticks = _ticks(max(max_value or 0, *(b.value for b in bars), 0) if bars else 0)
    top = ticks[-1] or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    every = max(1, int(len(bars) // 12) + (1 if len(bars) % 12 and len(bars) > 12 else 0))
    parts = [
        f'<svg class="{escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>'
    ]
    for tick in ticks:
        y = TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(_number(tick))}</text>'
        )
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = LEFT + i * slot + slot * 0.1
        y = TOP + plot_h - h
        tip = f"{bar.label}: {_number(bar.value)}" + (f" ({bar.note})" if bar.note else "")
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
            f'data-value="{escape(_number(bar.value))}"><title>{escape(tip)}</title></rect>'
        )
        if i % every == 0:
            cx = LEFT + i * slot + slot / 2
            parts.append(
                f'<text class="label" x="{cx:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {HEIGHT - BOTTOM + 14})">{escape(bar.label)}</text>'
            )
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/></svg>')
    return "".join(parts)


def time_buckets(seconds: list[float]) -> list[Bar]:
    """Sessions' total time in minute ranges (0–1, 1–2, 2–5, 5–10, 10–20, 20–40, 40–60, 60+)."""
    edges = [0, 1, 2, 5, 10, 20, 40, 60]
    counts = [0] * len(edges)
    for s in seconds:
        minutes = s / 60
        index = max(i for i, e in enumerate(edges) if minutes >= e)
        counts[index] += 1
    labels = [f"{a}–{b} min" for a, b in zip(edges, edges[1:], strict=False)] + ["60+ min"]
    return [Bar(label, count) for label, count in zip(labels, counts, strict=True)]
