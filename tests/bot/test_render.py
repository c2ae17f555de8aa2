"""The headline rule of DESIGN.md, as table tests."""

import math

import pytest

from bot.render import headline, money, money_exact, pct, render_text
from tests.helpers.factories import make_alert


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (458.07e6, "$458M"),
        (118.9e6, "$119M"),
        (39.04e6, "$39M"),
        (2.3456e6, "$2.35M"),
        (1.2345e9, "$1.23B"),
        (950e3, "$950K"),
        (84.18022e6, "$84.2M"),
        (999.6e3, "$1M"),  # rounds up across the unit boundary
        (999.4e3, "$999K"),
        (1000, "$1K"),
        (12.5, "$12.5"),
        (0, "$0"),
        (1.005e6, "$1.01M"),  # half up, not banker's rounding
        (2.5e12, "$2.5T"),
    ],
)
def test_money_rounds_to_three_significant_digits(value, text):
    assert money(value) == text


def test_money_refuses_non_finite():
    with pytest.raises(ValueError, match="non-finite"):
        money(math.nan)


@pytest.mark.parametrize(
    ("value", "text"),
    [(419.03e6, "$419.03M"), (39.04e6, "$39.04M"), (1.5e6, "$1.50M"), (950, "$950.00")],
)
def test_money_exact_keeps_two_decimals_in_unit(value, text):
    assert money_exact(value) == text


@pytest.mark.parametrize(
    ("share", "percent"),
    [(419.03 / 458.07, 91), (0.995, 100), (0.5, 50), (0.755, 76), (0.7549, 75)],
)
def test_pct_rounds_to_nearest_integer(share, percent):
    assert pct(share) == percent


def test_golden_headline():
    assert headline(39.04e6, 419.03e6, 3_600_000) == "$458M liquidated in 1h, 91% shorts"


@pytest.mark.parametrize(
    ("long_usd", "short_usd", "window_ms", "text"),
    [
        (87.2e6 * 0.983, 87.2e6 * 0.017, 3_600_000, "$87.2M liquidated in 1h, 98% longs"),
        (1e6, 3e6, 300_000, "$4M liquidated in 5m, 75% shorts"),
        (2e6, 2e6, 14_400_000, "$4M liquidated in 4h, 50% shorts"),
        (5e9, 0, 86_400_000, "$5B liquidated in 24h, 100% longs"),
        (1e5, 2e5, 900_000, "$300K liquidated in 15m, 67% shorts"),
    ],
)
def test_headline_names_dominant_side_and_window(long_usd, short_usd, window_ms, text):
    assert headline(long_usd, short_usd, window_ms) == text


def test_alert_text_has_headline_alone_on_second_line_and_exact_split():
    alert = make_alert(long_usd=39.04e6, short_usd=419.03e6)
    lines = render_text(alert).splitlines()
    assert lines[0].startswith("🚨 SHORT SQUEEZE")
    assert lines[1] == "$458M liquidated in 1h, 91% shorts"
    assert "Shorts $419.03M · Longs $39.04M" in lines


def test_alert_text_notes_lower_bound_for_sampled_feeds():
    text = render_text(make_alert(lower_bound=True))
    assert "Lower bound" in text


def test_a_day_long_window_names_both_dates():
    from bot.render import span
    from tests.helpers.factories import T0

    assert span(T0, T0 + 3_600_000) == "2026-01-13 21:00–22:00 UTC"
    assert span(T0, T0 + 86_400_000) == "2026-01-13 21:00 – 2026-01-14 21:00 UTC"
