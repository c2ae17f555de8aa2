"""Discord rendering: one embed within every limit, escaped markdown, a plain fallback < 2000."""

from __future__ import annotations

import math

import discord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.discord.render import (
    CONTENT_LIMIT,
    EMBED_TOTAL_LIMIT,
    dlen,
    embed_size,
    render_content,
    render_embed,
    reply_chunks,
)
from bot.render import render_text
from signals.kinds import kind_info
from tests.helpers.discord_payloads import embed_problems, payload_problems
from tests.helpers.factories import make_alert

NASTY = ["BTC-USD-SWAP", "BTC_USDT", "*bold*", "__u__", "`code`", "> quote", "# head",
         "@everyone", "<@&123>", "<@1>", "||spoiler||", "a\\*b", "😀" * 3, ""]
COINS = [("BTC", 1e6, 200e6), ("ETH", 2e6, 100e6), ("SOL", 0.5e6, 50e6)]
VENUES = [("binance", 1e6, 150e6), ("bybit", 1e6, 120e6), ("okx", 1e6, 60e6)]


def fields(embed):
    return {f["name"]: f["value"] for f in embed["fields"]}


def test_embed_carries_title_headline_split_and_context():
    alert = make_alert(top_coins=COINS, top_exchanges=VENUES, price_change=0.021,
                       funding_8h=-0.0001, lower_bound=True,
                       track_record="after 37 similar: BTC median +1.8 % at 4h")
    embed = render_embed(alert)
    assert embed["title"] == "🚨 SHORT SQUEEZE — market-wide · extreme"
    assert embed["description"] == "**$458M liquidated in 1h, 91% shorts**"
    assert embed["color"] == kind_info("short_squeeze").colour == 0x2ECC71
    assert fields(embed) == {
        "Split": "Shorts $419.03M · Longs $39.04M",
        "Window": "2026-01-13 21:00–22:00 UTC (1h) · 12.0× the trailing average",
        "Top symbols": "BTC $201M · ETH $102M · SOL $50.5M",
        "Venues": "binance $151M · bybit $121M · okx $61M",
        "Price": "+2.1%",
        "Funding": "\\-0.0100%/8h",  # a leading "-" would start a list: escaped
        "Track record": "after 37 similar: BTC median +1.8 % at 4h",
        "Note": "Lower bound: sampled venue feeds (Binance/OKX) omit some liquidations.",
    }
    assert embed["timestamp"] == "2026-01-13T22:00:00+00:00"
    assert discord.Embed.from_dict(embed).to_dict()["fields"] == embed["fields"]


def test_the_same_words_as_the_console_and_telegram():
    alert = make_alert(top_coins=COINS, price_change=0.021)
    text = render_text(alert).splitlines()
    embed = render_embed(alert)
    assert embed["title"] == text[0] and embed["description"] == f"**{text[1]}**"
    assert fields(embed)["Split"] == text[2] and "Top: " + fields(embed)["Top symbols"] in text
    assert fields(embed)["Window"].startswith(text[3].split(" · ")[0])


def test_a_day_long_window_names_both_dates_as_on_the_console():
    day = make_alert(window_ms=86_400_000, end_ms=make_alert().start_ms + 86_400_000)
    assert fields(render_embed(day))["Window"].startswith(
        "2026-01-13 21:00 – 2026-01-14 21:00 UTC (24h)")


def test_colour_by_kind():
    assert render_embed(make_alert(kind="long_cascade"))["color"] == 0xE74C3C
    assert render_embed(make_alert(kind="something_new"))["color"] == 0x95A5A6


def test_markdown_in_dynamic_strings_is_escaped():
    embed = render_embed(make_alert(scope="BTC_USDT*", track_record="**bold** `x`"))
    assert embed["title"].endswith("BTC\\_USDT\\* · extreme")
    assert fields(embed)["Track record"] == "\\*\\*bold\\*\\* \\`x\\`"


def test_a_blank_track_record_is_left_out_rather_than_refusing_the_embed():
    embed = render_embed(make_alert(track_record=" \n "))
    assert "Track record" not in fields(embed) and not embed_problems(embed)


def test_unrenderable_amounts_still_give_a_valid_embed_and_content():
    alert = make_alert(long_usd=math.nan)
    embed = render_embed(alert)
    assert "SHORT SQUEEZE" in embed["title"] and not embed_problems(embed)
    assert "could not be rendered" in render_content(alert)


def test_content_fallback_keeps_the_headline_on_its_own_line():
    alert = make_alert(scope="X" * 3000, track_record="y" * 5000, top_exchanges=VENUES)
    content = render_content(alert)
    assert dlen(content) <= CONTENT_LIMIT
    assert content.splitlines()[1] == "$458M liquidated in 1h, 91% shorts"


def test_reply_chunks_split_on_lines_under_2000_and_never_empty():
    lines = [f"line {i}: " + "x_" * 45 for i in range(100)]
    chunks = reply_chunks("\n".join(lines))
    assert len(chunks) > 1 and all(dlen(c) <= CONTENT_LIMIT for c in chunks)
    assert "\n".join(chunks).replace("\\_", "_").splitlines() == lines
    assert reply_chunks("") == ["(empty)"]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)
amount = st.one_of(st.floats(min_value=0, max_value=1e15, allow_nan=False), st.just(1e-12),
                   st.just(math.inf), st.just(-5e6))
named = st.lists(st.tuples(st.one_of(st.sampled_from(NASTY), text), amount, amount),
                 max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scope=st.one_of(st.sampled_from(NASTY), text),
       note=st.one_of(st.none(), st.sampled_from([" ", "\n", "\u3000", "\t "]), text),
       long_usd=amount, short_usd=amount, repeat=st.integers(1, 40), coins=named,
       venues=named, kind=st.sampled_from(["short_squeeze", "long_cascade", "x"]),
       funding=st.one_of(st.none(), st.floats(allow_nan=True)))
def test_any_alert_gives_an_embed_within_every_limit(scope, note, long_usd, short_usd, repeat,
                                                     coins, venues, kind, funding):
    alert = make_alert(scope=scope, long_usd=long_usd, short_usd=short_usd, kind=kind,
                       track_record=None if note is None else note * repeat,
                       top_coins=coins, top_exchanges=venues, funding_8h=funding)
    embed = render_embed(alert)
    assert not payload_problems({"embeds": [embed]}), embed
    assert len(discord.Embed.from_dict(embed)) <= embed_size(embed) <= EMBED_TOTAL_LIMIT
    content = render_content(alert)
    assert 0 < dlen(content) <= CONTENT_LIMIT and "\n" in content
