"""The server-drawn bar charts: round axis steps, a scale that holds the tallest bar, and
stacked bars that add up."""

from decimal import Decimal

import pytest

from exchange_site.svg_charts import bar_chart, nice_step, short_number


@pytest.mark.parametrize(
    ("top", "step"),
    [("4", "1"), ("7", "2"), ("0.0102", "0.005"), ("950", "500"), ("38", "10")],
)
def test_nice_step_is_one_two_or_five_times_a_power_of_ten(top, step):
    assert nice_step(Decimal(top)) == Decimal(step)


def test_the_axis_reaches_above_the_tallest_bar():
    chart = bar_chart(title="t", labels=["a", "b"], series=[("s", [Decimal("0.0102"), 0])])

    assert [tick.label for tick in chart.y_ticks] == ["0", "0.005", "0.01", "0.015"]
    (bar,) = chart.bars
    assert bar.y > chart.y_ticks[-1].position  # below the top line, inside the plot


def test_stacked_bars_sit_on_one_another_and_zero_draws_nothing():
    chart = bar_chart(title="t", labels=["a", "b"], series=[("x", [1, 0]), ("y", [3, 0])])

    lower, upper = chart.bars
    assert len(chart.bars) == 2
    assert upper.y + upper.height == lower.y
    assert upper.height == 3 * lower.height
    assert not chart.empty


def test_an_empty_series_is_marked_empty():
    assert bar_chart(title="t", labels=["a"], series=[("x", [0])]).empty


def test_short_numbers_for_the_axis():
    assert [short_number(Decimal(v)) for v in ("1500", "2000000", "0.0005")] == [
        "1.5k",
        "2M",
        "0.0005",
    ]
