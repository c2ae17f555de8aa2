"""Telegram rendering: escaped HTML that Telegram's parser accepts, split under 4096 on lines."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render import render_text
from bot.telegram.render import (
    TEXT_LIMIT,
    render_html,
    render_plain,
    reply_chunks,
    split_lines,
    tg_len,
)
from tests.helpers.factories import make_alert
from tests.helpers.telegram_html import parse_html

NASTY = ["BTC-USD-SWAP", "BTC_USDT", "<b>x</b>", "a & b", "1 < 2 > 0", "&amp;", "😀" * 3, ""]


def test_every_dynamic_string_is_escaped():
    alert = make_alert(scope="A<B>&C", track_record="after 3 similar: <median> & more")
    (text,) = render_html(alert)
    assert "A&lt;B&gt;&amp;C" in text and "&lt;median&gt; &amp; more" in text
    assert parse_html(text) == render_text(alert)


def test_title_and_headline_are_bold_and_alone_on_their_lines():
    lines = render_html(make_alert())[0].splitlines()
    assert lines[0] == "<b>🚨 SHORT SQUEEZE — market-wide · extreme</b>"
    assert lines[1] == "<b>$458M liquidated in 1h, 91% shorts</b>"


def test_length_counts_utf16_units_like_telegram():
    assert tg_len("abc") == 3 and tg_len("🚨") == 2 and tg_len("—") == 1


def test_long_text_splits_on_line_boundaries_under_the_limit():
    lines = [f"line {i}: " + "x" * 90 for i in range(200)]
    chunks = split_lines(lines)
    assert len(chunks) > 1 and all(tg_len(c) <= TEXT_LIMIT for c in chunks)
    assert "\n".join(chunks).splitlines() == lines  # nothing lost, no line cut


def test_overlong_line_is_cut_and_escaping_is_counted():
    chunks = render_html(make_alert(track_record="&" * 5000))  # 5 characters each once escaped
    assert all(tg_len(c) <= TEXT_LIMIT for c in chunks)
    assert "".join(parse_html(c) for c in chunks).count("&") == 5000


def test_unrenderable_amounts_still_give_a_message():
    (text,) = render_html(make_alert(long_usd=math.nan))
    assert "SHORT SQUEEZE" in text and parse_html(text)


def test_reply_chunks_never_send_an_empty_message():
    assert reply_chunks("") == ["(empty)"]
    assert reply_chunks("a\n\n\nb") == ["a\n\n\nb"]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
amount = st.one_of(st.floats(min_value=0, max_value=1e15, allow_nan=False), st.just(1e-12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scope=st.one_of(st.sampled_from(NASTY), text), note=st.one_of(st.none(), text),
       long_usd=amount, short_usd=amount, repeat=st.integers(1, 60))
def test_any_alert_renders_to_valid_html_that_fits(scope, note, long_usd, short_usd, repeat):
    alert = make_alert(scope=scope, long_usd=long_usd, short_usd=short_usd,
                       track_record=None if note is None else note * repeat)
    html_chunks, plain_chunks = render_html(alert), render_plain(alert)
    for chunk in html_chunks:
        assert tg_len(chunk) <= TEXT_LIMIT and parse_html(chunk).strip()
    assert all(tg_len(c) <= TEXT_LIMIT for c in plain_chunks)
    if len(html_chunks) == 1:
        assert parse_html(html_chunks[0]) == render_text(alert).strip("\n")


def test_a_date_past_the_calendar_still_gives_a_message():
    (text,) = render_html(make_alert(end_ms=10**20))  # datetime raises OSError/ValueError
    assert "could not be rendered" in text
