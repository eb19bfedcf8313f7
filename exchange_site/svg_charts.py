"""Bar charts drawn on the server as inline SVG for the operator console: no JavaScript, no
library, readable in any browser and in a screenshot. This module only computes geometry;
``templates/admin/reports/bar_chart.html`` draws it. Values stay Decimal; the pixel
coordinates are rounded to a tenth of a pixel."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from exchange_site.decimals import decimal_to_str

# Colours that stay apart for the colour-blind (Okabe & Ito), on light and dark admin themes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
TENTH = Decimal("0.1")

WIDTH = 640
HEIGHT = 220
LEFT = 56  # room for the axis labels
RIGHT = 8
TOP = 10
BOTTOM = 26  # room for the x labels


@dataclass(frozen=True)
class Bar:
    x: Decimal
    y: Decimal
    width: Decimal
    height: Decimal
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: Decimal
    label: str


@dataclass(frozen=True)
class LegendItem:
    color: str
    label: str


@dataclass
class BarChart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)
    empty: bool = True
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


def _px(value: Decimal) -> Decimal:
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


def nice_step(top: Decimal, ticks: int = 4) -> Decimal:
    """The round step (1, 2 or 5 × 10^k) that splits 0..top into at most ``ticks`` parts."""
    raw = top / ticks
    exponent = raw.adjusted()
    for mantissa in (1, 2, 5, 10):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= raw:
            return step
    return Decimal(10).scaleb(exponent)  # unreachable: 10 × 10^k ≥ raw always


def short_number(value: Decimal) -> str:
    """An axis label: 1500 → "1.5k", 2000000 → "2M", 0.0005 → "0.0005"."""
    for size, suffix in ((Decimal(10) ** 9, "G"), (Decimal(10) ** 6, "M"), (Decimal(1000), "k")):
        if abs(value) >= size:
            return decimal_to_str((value / size).quantize(Decimal("0.01"))) + suffix
    return decimal_to_str(value)


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | int]]],
    stacked: bool = True,
    unit: str = "",
    label_every: int = 1,
    titles: Sequence[str] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> BarChart:
    """Bars for each label: the series stacked on one another, or side by side.

    ``series`` is ``[(name, values)]`` with one non-negative value per label; ``titles``
    (one per label) names each group in the hover text; ``label_every`` thins the x-axis
    labels of long series (every 5th day, every 3rd hour).
    """
    chart = BarChart(
        title=title,
        unit=unit,
        width=width,
        height=height,
        plot_right=width - RIGHT,
        plot_bottom=height - BOTTOM,
    )
    titles = titles or labels
    values = [[Decimal(v or 0) for v in vals] for _, vals in series]
    if stacked:
        top = max((sum(column) for column in zip(*values, strict=True)), default=Decimal(0))
    else:
        top = max((v for vals in values for v in vals), default=Decimal(0))
    chart.legend = [
        LegendItem(PALETTE[n % len(PALETTE)], name) for n, (name, _) in enumerate(series)
    ]
    chart.empty = top <= 0
    step = nice_step(top) if top > 0 else Decimal(1)
    # Decimal's // truncates toward zero, so round the quotient up explicitly.
    scale_top = step * (top / step).to_integral_value(ROUND_CEILING) if top > 0 else step * 4
    plot_height = Decimal(chart.plot_bottom - chart.plot_top)
    plot_width = Decimal(chart.plot_right - chart.plot_left)

    def y_of(value: Decimal) -> Decimal:
        return Decimal(chart.plot_bottom) - plot_height * value / scale_top

    tick = Decimal(0)
    while tick <= scale_top:
        chart.y_ticks.append(Tick(_px(y_of(tick)), short_number(tick)))
        tick += step

    slot = plot_width / max(len(labels), 1)
    group = slot * Decimal("0.8")
    bar_width = group if stacked else group / max(len(series), 1)
    for index, label in enumerate(labels):
        left = Decimal(chart.plot_left) + slot * index + (slot - group) / 2
        if index % label_every == 0:
            chart.x_ticks.append(Tick(_px(left + group / 2), label))
        base = Decimal(0)
        for n, (name, _) in enumerate(series):
            value = values[n][index]
            if value <= 0:
                continue
            x = left if stacked else left + bar_width * n
            bottom = base if stacked else Decimal(0)
            y_top = y_of(bottom + value)
            chart.bars.append(
                Bar(
                    x=_px(x),
                    y=_px(y_top),
                    width=_px(max(bar_width - Decimal("0.5"), Decimal("0.5"))),
                    height=_px(max(y_of(bottom) - y_top, TENTH)),
                    color=PALETTE[n % len(PALETTE)],
                    title=f"{titles[index]} · {name}: {decimal_to_str(value)}"
                    + (f" {unit}" if unit else ""),
                )
            )
            if stacked:
                base += value
    return chart
