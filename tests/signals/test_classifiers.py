"""Short squeeze and long cascade classifiers: size, imbalance, context, severity."""

import pytest

from signals import Context, SignalKind, SignalParams, cascade, evaluate, squeeze
from signals.windows import sum_buckets, trailing_mean, window_stat
from tests.helpers.factories import T0, make_bucket, make_stat

HOUR = 3_600_000


def test_squeeze_fires_on_large_short_dominated_hour():
    s = squeeze.classify(make_stat(long_usd=1.56e6, short_usd=82.6e6))
    assert s is not None and s.kind is SignalKind.SHORT_SQUEEZE
    assert s.severity == 3 and s.severity_name == "extreme"
    assert s.share == pytest.approx(82.6 / 84.16)


def test_cascade_is_the_mirror():
    s = cascade.classify(make_stat(long_usd=85.7e6, short_usd=1.5e6))
    assert s is not None and s.kind is SignalKind.LONG_CASCADE
    assert squeeze.classify(make_stat(long_usd=85.7e6, short_usd=1.5e6)) is None


def test_balanced_window_is_neither():
    assert evaluate([make_stat(long_usd=40e6, short_usd=40e6)]) == []


def test_share_threshold_is_inclusive():
    stat = make_stat(long_usd=2.5e6, short_usd=7.5e6, baseline_usd=None)
    assert squeeze.classify(stat) is not None  # exactly 75 % and $10M
    assert squeeze.classify(make_stat(long_usd=2.6e6, short_usd=7.5e6, baseline_usd=None)) is None


@pytest.mark.parametrize(
    ("usd", "severity"), [(9.9e6, 0), (10e6, 1), (24.9e6, 1), (25e6, 2), (50e6, 3)]
)
def test_absolute_tiers(usd, severity):
    s = squeeze.classify(make_stat(long_usd=0.0, short_usd=usd, baseline_usd=None))
    assert (s.severity if s else 0) == severity


def test_relative_size_serves_small_coins():
    # $3M of SOL shorts is nothing for BTC but 15x its usual hour.
    stat = make_stat(scope="SOL", long_usd=0.1e6, short_usd=2.9e6, baseline_usd=0.2e6)
    s = squeeze.classify(stat)
    assert s is not None and s.severity == 2 and s.ratio == pytest.approx(15.0)


def test_relative_size_ignores_dust_below_floor():
    stat = make_stat(scope="PEPE", long_usd=0.0, short_usd=0.5e6, baseline_usd=0.01e6)
    assert squeeze.classify(stat) is None


def test_windows_scale_by_sqrt():
    p = SignalParams()
    assert p.tier_usd(4 * HOUR)[0] == pytest.approx(20e6)
    assert p.tier_usd(HOUR // 4)[0] == pytest.approx(5e6)


def test_required_confirmation_blocks_contradicting_context():
    p = SignalParams(require_price_confirmation=True)
    falling = make_stat(short_usd=60e6, long_usd=1e6, context=Context(price_change=-0.01))
    rising = make_stat(short_usd=60e6, long_usd=1e6, context=Context(price_change=0.02))
    unknown = make_stat(short_usd=60e6, long_usd=1e6)
    assert squeeze.classify(falling, p) is None
    assert squeeze.classify(rising, p).reasons == ("price confirms",)
    assert squeeze.classify(unknown, p) is not None  # missing context does not veto


def test_funding_context_for_cascade():
    p = SignalParams(require_funding_confirmation=True)
    crowded_longs = make_stat(long_usd=60e6, short_usd=1e6, context=Context(funding_8h=0.0003))
    crowded_shorts = make_stat(long_usd=60e6, short_usd=1e6, context=Context(funding_8h=-0.0003))
    assert cascade.classify(crowded_longs, p).reasons == ("funding confirms",)
    assert cascade.classify(crowded_shorts, p) is None


def test_params_reject_unknown_and_bad_values():
    with pytest.raises(ValueError, match="unknown signal parameter.*min_shar"):
        SignalParams.from_dict({"min_shar": 0.8})
    with pytest.raises(ValueError, match="min_share"):
        SignalParams.from_dict({"min_share": 1.5})
    with pytest.raises(ValueError, match="tiers_usd_1h"):
        SignalParams.from_dict({"tiers_usd_1h": [3, 2, 1]})


def test_classifiers_are_pure():
    stat = make_stat(long_usd=1e6, short_usd=60e6)
    assert evaluate([stat]) == evaluate([stat])


def test_in_memory_windows_match_definition():
    buckets = [make_bucket(start_ms=T0 + i * HOUR, long_usd=1e6, short_usd=float(i))
               for i in range(30)]
    assert sum_buckets(buckets, T0, T0 + 2 * HOUR) == (2e6, 1.0)
    assert trailing_mean(buckets, T0 + 24 * HOUR, HOUR, 24 * HOUR) == pytest.approx(1e6 + 11.5)
    stat = window_stat(buckets, T0 + 25 * HOUR, HOUR, 24 * HOUR, scope="BTC")
    assert (stat.long_usd, stat.short_usd) == (1e6, 24.0)
