"""Chart geometry for server-drawn SVG: no script, no external library, no CDN. Each chart
also renders as a table (for screen readers and for reading exact figures)."""

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, BOTTOM, TOP = 36, 28, 8


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


def _scale(top_value: int) -> tuple[int, list[int]]:
    """A round axis maximum and its ticks."""
    top_value = max(top_value, 1)
    steps = (m * 10**e for e in range(12) for m in (1, 2, 5))
    step = next(s for s in steps if top_value / s <= 5)
    ticks = list(range(0, top_value + step, step))
    if ticks[-1] < top_value:
        ticks.append(ticks[-1] + step)
    return ticks[-1], ticks


def stacked_columns(labels: list[str], series: dict[str, list[int]]) -> dict:
    """Columns per label, stacked by series (e.g. requests per week, by right)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top, ticks = _scale(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(labels), 1)
    rects = []
    for i, label in enumerate(labels):
        y = TOP + plot_h
        for name, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            y -= h
            rects.append(
                Rect(
                    LEFT + i * slot + slot * 0.15,
                    y,
                    slot * 0.7,
                    h,
                    f"s-{name}",
                    f"{label}: {values[i]} {name.replace('_', ' ')}",
                )
            )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "rects": rects,
        "ticks": [(t, TOP + plot_h - plot_h * t / top) for t in ticks],
        "labels": [(LEFT + i * slot + slot / 2, label) for i, label in enumerate(labels)],
        "left": LEFT,
        "base": TOP + plot_h,
    }


def bars(items: list[tuple[str, int]], css: list[str] | None = None) -> dict:
    """Horizontal bars, one per item (e.g. open requests by days left)."""
    top, _ = _scale(max((v for _, v in items), default=0))
    row, label_w = 30, 110
    plot_w = WIDTH - label_w - 50
    rects = []
    for i, (label, value) in enumerate(items):
        rects.append(
            Rect(
                label_w,
                i * row + 4,
                plot_w * value / top,
                row - 10,
                (css or [])[i] if css and i < len(css) else "bar",
                f"{label}: {value}",
            )
        )
    return {
        "width": WIDTH,
        "height": len(items) * row + 4,
        "rects": rects,
        "labels": [
            (label_w - 8, i * row + row / 2 + 3, label, value, label_w + r.w + 6)
            for i, ((label, value), r) in enumerate(zip(items, rects, strict=True))
        ],
    }
