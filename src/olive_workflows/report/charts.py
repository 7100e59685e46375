"""Inline SVG charts drawn in Python: bars, a pass timeline, candidates with a Pareto front."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
ROW = 24
LABEL_W = 190
STATUS_CLASS = {"done": "ran", "running": "ran", "cached": "cached"}


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, CSS class (colour) and an optional second segment."""

    label: str
    value: float
    css: str = "ran"
    extra: float = 0.0  # stacked after value (an adapter after the weights)
    extra_css: str = "adapter"
    marked: bool = False  # the winner of a search


def human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"  # pragma: no cover


def seconds(value: float) -> str:
    if value == 0:
        return "0 s"
    if abs(value) < 0.01:
        return f"{value * 1000:.1f} ms"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if abs(value) < 10 else f"{value:,.1f} s"


def number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Tick labels with as many decimals as the step needs (2,599,015 .. 2,599,025)."""
    if all(float(t).is_integer() for t in ticks) and all(abs(t) < 1e15 for t in ticks):
        return [f"{int(t):,}" for t in ticks]
    step = min((abs(b - a) for a, b in itertools.pairwise(ticks) if b != a), default=1)
    decimals = max(0, min(12, -math.floor(math.log10(step)) + 1))
    if max(abs(t) for t in ticks) >= 1e6 and decimals == 0:
        return [f"{t:.3e}" for t in ticks]
    texts = [f"{t:.{decimals}f}" for t in ticks]
    return [t.rstrip("0").rstrip(".") if "." in t else t for t in texts]


def _fit(label: str, chars: int = 30) -> str:
    """Row labels stay inside their column (the whole label is in the bar's tooltip)."""
    return label if len(label) <= chars else label[: chars - 1] + "\u2026"


def _text(x: float, y: float, text: str, css: str = "", anchor: str = "start") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{cls}>{escape(text)}</text>'


def _svg(kind: str, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(kind)}" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude * 10
    for multiple in (1, 2, 2.5, 5, 10):
        if (high - low) / (multiple * magnitude) <= count:
            step = multiple * magnitude
            break
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _byte_ticks(high: float) -> list[float]:
    """Ticks at round numbers of the largest binary unit below `high` (1 MiB, not 976.6 KiB)."""
    unit = 1024 ** max(0, min(3, int(math.log(high, 1024)) if high >= 1 else 0))
    return [t * unit for t in _ticks(0.0, high / unit)]


def bar_chart(
    kind: str, title: str, bars: Sequence[Bar], fmt: Callable[[float], str] = number
) -> str:
    """Horizontal bars from zero, one per row, the value written after each bar."""
    top, bottom = 8, 26
    height = top + ROW * len(bars) + bottom
    high = max([b.value + b.extra for b in bars] + [0.0])
    ticks = _byte_ticks(high) if fmt is human_bytes else _ticks(0.0, high)
    span = ticks[-1] or 1.0
    plot = WIDTH - LABEL_W - 110
    scale = plot / span
    body = []
    for tick in ticks:
        x = LABEL_W + tick * scale
        body.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom + 4}"/>'
        )
        body.append(_text(x, height - 8, fmt(tick), "tick", "middle"))
    for index, bar in enumerate(bars):
        y = top + index * ROW
        width = max(bar.value * scale, 1.5)
        tip = f"{bar.label}: {fmt(bar.value)}" + (f" + {fmt(bar.extra)}" if bar.extra else "")
        body.append(_text(LABEL_W - 8, y + ROW * 0.65, _fit(bar.label), "label", "end"))
        marked = " winner" if bar.marked else ""
        body.append(
            f'<rect class="bar {bar.css}{marked}" x="{LABEL_W}" y="{y + 4}" '
            f'width="{width:.1f}" height="{ROW - 8}"><title>{escape(tip)}</title></rect>'
        )
        end = LABEL_W + width
        if bar.extra:
            extra = max(bar.extra * scale, 1.5)
            body.append(
                f'<rect class="bar {bar.extra_css}" x="{end:.1f}" y="{y + 4}" '
                f'width="{extra:.1f}" height="{ROW - 8}"><title>{escape(tip)}</title></rect>'
            )
            end += extra
        value = fmt(bar.value + bar.extra) + (" \u2605 winner" if bar.marked else "")
        body.append(_text(end + 6, y + ROW * 0.65, value, "value"))
    return _svg(kind, height, title, body)


def timeline(title: str, passes: Sequence[tuple[str, str, float]]) -> str:
    """The passes one after another on a seconds axis: (name, status, seconds) each."""
    top, bottom = 8, 26
    height = top + ROW * len(passes) + bottom
    total = sum(max(s, 0.0) for _, _, s in passes)
    ticks = _ticks(0.0, total or 1.0)
    plot = WIDTH - LABEL_W - 110
    scale = plot / (ticks[-1] or 1.0)
    body = []
    for tick in ticks:
        x = LABEL_W + tick * scale
        body.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom + 4}"/>'
        )
        body.append(_text(x, height - 8, seconds(tick), "tick", "middle"))
    start = 0.0
    for index, (name, status, secs) in enumerate(passes):
        y = top + index * ROW
        x = LABEL_W + start * scale
        width = max(secs * scale, 2.0)
        css = STATUS_CLASS.get(status, status)
        shown = "ran" if css == "ran" else status
        body.append(_text(LABEL_W - 8, y + ROW * 0.65, _fit(name), "label", "end"))
        body.append(
            f'<rect class="bar {escape(css)}" x="{x:.1f}" y="{y + 4}" width="{width:.1f}" '
            f'height="{ROW - 8}"><title>{escape(f"{name}: {shown}, {seconds(secs)}")}'
            "</title></rect>"
        )
        body.append(_text(x + width + 6, y + ROW * 0.65, f"{seconds(secs)} {shown}", "value"))
        start += max(secs, 0.0)
    return _svg("timeline", height, title, body)


@dataclass(frozen=True)
class Point:
    """One search candidate on two metrics."""

    label: str
    x: float
    y: float
    winner: bool = False


def pareto_front(points: Sequence[Point], x_higher: bool, y_higher: bool) -> list[Point]:
    """The points no other point beats on both metrics (ties on both are kept), by x."""

    def better_or_equal(a: float, b: float, higher: bool) -> bool:
        return a >= b if higher else a <= b

    front = []
    for p in points:
        dominated = any(
            better_or_equal(q.x, p.x, x_higher)
            and better_or_equal(q.y, p.y, y_higher)
            and (q.x, q.y) != (p.x, p.y)
            for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: p.x)


def scatter(
    title: str,
    points: Sequence[Point],
    x_name: str,
    y_name: str,
    *,
    x_higher: bool,
    y_higher: bool,
) -> str:
    """Candidates on two metrics: the Pareto front joined by a line, the winner ringed."""
    left, right, top, bottom = 104, 30, 14, 46
    height = 340
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    pad_x = (max(xs) - min(xs)) * 0.08 or abs(xs[0]) * 0.05 or 1.0
    pad_y = (max(ys) - min(ys)) * 0.08 or abs(ys[0]) * 0.05 or 1.0
    x_ticks = _ticks(min(xs) - pad_x, max(xs) + pad_x)
    y_ticks = _ticks(min(ys) - pad_y, max(ys) + pad_y)
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def px(value: float) -> float:
        return left + (value - x_ticks[0]) / ((x_ticks[-1] - x_ticks[0]) or 1.0) * plot_w

    def py(value: float) -> float:
        return top + plot_h - (value - y_ticks[0]) / ((y_ticks[-1] - y_ticks[0]) or 1.0) * plot_h

    body = [
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for tick, text in zip(x_ticks, tick_labels(x_ticks), strict=True):
        body.append(
            f'<line class="grid" x1="{px(tick):.1f}" y1="{top}" x2="{px(tick):.1f}" '
            f'y2="{top + plot_h}"/>'
        )
        body.append(_text(px(tick), top + plot_h + 16, text, "tick", "middle"))
    for tick, text in zip(y_ticks, tick_labels(y_ticks), strict=True):
        body.append(
            f'<line class="grid" x1="{left}" y1="{py(tick):.1f}" x2="{left + plot_w}" '
            f'y2="{py(tick):.1f}"/>'
        )
        body.append(_text(left - 6, py(tick) + 4, text, "tick", "end"))
    arrow_x = "higher is better" if x_higher else "lower is better"
    arrow_y = "higher is better" if y_higher else "lower is better"
    body.append(_text(left + plot_w / 2, height - 8, f"{x_name} ({arrow_x})", "axis", "middle"))
    body.append(
        f'<text class="axis" text-anchor="middle" transform="translate(14 {top + plot_h / 2:.1f}) '
        f'rotate(-90)">{escape(f"{y_name} ({arrow_y})")}</text>'
    )
    front = pareto_front(points, x_higher, y_higher)
    if len(front) > 1:
        path = " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in front)
        body.append(f'<polyline class="pareto" points="{path}"/>')
    on_front = {id(p) for p in front}
    for p in points:
        css = "point front" if id(p) in on_front else "point"
        tip = f"{p.label}: {x_name}={number(p.x)}, {y_name}={number(p.y)}"
        if p.winner:
            body.append(
                f'<circle class="winner" cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="10">'
                f"<title>winner</title></circle>"
            )
        body.append(
            f'<circle class="{css}" cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="5">'
            f"<title>{escape(tip)}</title></circle>"
        )
        label = p.label + (" \u2605 winner" if p.winner else "")
        body.append(_text(px(p.x) + 12, py(p.y) - 8, label, "point-label"))
    return _svg("candidates", height, title, body)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A row of coloured swatches: (CSS class, text) each."""
    spans = "".join(
        f'<span class="key"><svg width="12" height="12" aria-hidden="true">'
        f'<rect class="bar {escape(css)}" width="12" height="12"/></svg> {escape(text)}</span>'
        for css, text in items
    )
    return f'<div class="legend">{spans}</div>'
