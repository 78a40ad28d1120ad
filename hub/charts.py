"""Charts drawn on the server as SVG: no JavaScript library, no CDN, readable when printed.

Each function returns ``Markup`` built only from numbers and escaped text, so labels that came from
visitors (channel names, campaign tags) cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from flask_babel import gettext as _
from markupsafe import Markup

PALETTE = ("#2f6fde", "#e07b39", "#3aa35b", "#a855c7", "#d64545", "#1fa5a5", "#8a8f2a", "#6b7280")
WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T = 720, 220, 36, 28, 10


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'


def _compact(value: float) -> str:
    """An axis label that fits the left margin: 950, 12k, 1.5M (in Russian: 12 тыс., 1,5 млн)."""
    for size, pattern in ((1e6, _("%(n)sM")), (1e3, _("%(n)sk"))):
        if value >= size:
            number = f"{value / size:.1f}".removesuffix(".0")
            return pattern % {"n": number}
    return f"{value:g}"


def _frame(cls: str, height: float, title: str, top_label: str) -> list[str]:
    """The opening of a chart: the svg element with its title, the top and zero labels, the baseline."""
    base = HEIGHT - PAD_B
    return [
        f'<svg class="chart {cls}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        _text(PAD_L - 4, PAD_T + 8, top_label, "end", "axis"),
        _text(PAD_L - 4, base, "0", "end", "axis"),
        f'<line x1="{PAD_L}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>',
    ]


def stacked_bars(days: Sequence[str], series: Mapping[str, Sequence[int]], title: str) -> Markup:
    """One bar per day, stacked by series (e.g. calls per day by channel), with a legend."""
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(days))]
    top = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_L - 8, HEIGHT - PAD_B - PAD_T
    step = plot_w / max(len(days), 1)
    bar_w = max(step * 0.75, 1.0)
    parts = _frame("bars", HEIGHT + 18 * ((len(names) + 3) // 4), title, str(top))
    for i, day in enumerate(days):
        x = PAD_L + i * step + (step - bar_w) / 2
        y: float = PAD_T + plot_h
        for k, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" data-value="{value}" '
                f'x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(day)} · {escape(name)}: {value}</title></rect>"
            )
        if len(days) <= 12 or i % max(len(days) // 6, 1) == 0:
            parts.append(_text(x + bar_w / 2, HEIGHT - 10, day[5:] if len(day) == 10 else day, cls="axis"))
    for k, name in enumerate(names):
        lx, ly = PAD_L + (k % 4) * 170, HEIGHT + 6 + 18 * (k // 4)
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(_text(lx + 14, ly + 9, name[:24], "start", "legend"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece above is a number or escaped)


def line(points: Sequence[tuple[str, float]], title: str, *, percent: bool = True) -> Markup:
    """A line over time (e.g. pool utilisation per hour), 0–100 % when ``percent``."""
    plot_w, plot_h = WIDTH - PAD_L - 8, HEIGHT - PAD_B - PAD_T
    top = 1.0 if percent else (max((v for _, v in points), default=0) or 1)
    n = len(points)
    coords = []
    for i, (_label, v) in enumerate(points):
        x = PAD_L + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        y = PAD_T + plot_h - plot_h * min(max(v, 0), top) / top
        coords.append((x, y))
    label_top = "100%" if percent else f"{top:g}"
    parts = _frame("line", HEIGHT, title, label_top)
    if coords:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
        for (x, y), (label, v) in zip(coords, points, strict=True):
            shown = f"{v * 100:.0f}%" if percent else f"{v:g}"
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{PALETTE[0]}">'
                f"<title>{escape(label)}: {shown}</title></circle>"
            )
        parts.append(_text(PAD_L, HEIGHT - 10, points[0][0], "start", "axis"))
        parts.append(_text(WIDTH - 8, HEIGHT - 10, points[-1][0], "end", "axis"))
    else:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, _("No data yet"), cls="axis"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece above is a number or escaped)


def sparkline(values: Sequence[float], title: str) -> Markup:
    """A small line without axes for a table cell (e.g. calls per day of one client)."""
    w, h, pad = 120, 28, 2
    top = max(values, default=0) or 1
    n = len(values)
    coords = [
        (
            pad + ((w - 2 * pad) * i / (n - 1) if n > 1 else (w - 2 * pad) / 2),
            h - pad - (h - 2 * pad) * v / top,
        )
        for i, v in enumerate(values)
    ]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    return Markup(  # noqa: S704  (numbers and escaped text only)
        f'<svg class="spark" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<path d="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/></svg>'
    )


def spend_vs_revenue(
    labels: Sequence[str], spend: Sequence[float], revenue: Sequence[float], title: str
) -> Markup:
    """Spend and revenue side by side per period (day or week), two bars each, with a legend."""
    top = max([*spend, *revenue], default=0) or 1
    names = (_("Spend"), _("Revenue"))
    plot_w, plot_h = WIDTH - PAD_L - 8, HEIGHT - PAD_B - PAD_T
    step = plot_w / max(len(labels), 1)
    bar_w = max(step * 0.38, 1.0)
    parts = _frame("spend-revenue", HEIGHT + 18, title, _compact(top))
    for i, label in enumerate(labels):
        x0 = PAD_L + i * step + step * 0.12
        for k, (cls, value) in enumerate((("spend", spend[i]), ("revenue", revenue[i]))):
            bh = plot_h * value / top
            amount = f"{value:,.0f}".replace(",", "\u00a0")
            parts.append(
                f'<rect class="bar {cls}" data-value="{value:.2f}" x="{x0 + k * bar_w:.1f}" '
                f'y="{PAD_T + plot_h - bh:.1f}" width="{bar_w:.1f}" height="{bh:.1f}" '
                f'fill="{PALETTE[1] if k == 0 else PALETTE[2]}">'
                f"<title>{escape(label)} · {escape(names[k])}: {amount}</title></rect>"
            )
        if len(labels) <= 12 or i % max(len(labels) // 6, 1) == 0:
            parts.append(_text(x0 + bar_w, HEIGHT - 10, label[5:] if len(label) == 10 else label, cls="axis"))
    for k, name in enumerate(names):
        lx = PAD_L + k * 120
        parts.append(
            f'<rect x="{lx}" y="{HEIGHT + 4}" width="10" height="10" fill="{PALETTE[1 if k == 0 else 2]}"/>'
        )
        parts.append(_text(lx + 14, HEIGHT + 13, name, "start", "legend"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece above is a number or escaped)
