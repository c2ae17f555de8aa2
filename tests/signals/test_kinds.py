"""One KindInfo per SignalKind: the words, titles and directions every renderer reads."""

import pytest

from feeds.model import Side
from signals import SignalKind
from signals.kinds import KIND_WORDS, KINDS, find_kind, kind_info


def test_every_kind_has_its_info_in_enum_order():
    assert list(KINDS) == list(SignalKind)
    assert all(info.kind is kind for kind, info in KINDS.items())


def test_titles_and_plurals_read_as_before():
    squeeze, cascade = KINDS[SignalKind.SHORT_SQUEEZE], KINDS[SignalKind.LONG_CASCADE]
    assert (squeeze.title, squeeze.plural) == ("SHORT SQUEEZE", "Short squeezes")
    assert (cascade.title, cascade.plural) == ("LONG CASCADE", "Long cascades")


def test_side_and_direction_agree():
    for info in KINDS.values():
        assert (info.dominant is Side.SHORT) == (info.direction > 0)
        assert info.way == ("up" if info.direction > 0 else "down")


def test_words_name_one_kind_each_and_include_the_value():
    assert KIND_WORDS["squeezes"] == "short_squeeze" and KIND_WORDS["cascade"] == "long_cascade"
    for kind in SignalKind:
        assert KIND_WORDS[kind.value] == kind.value


def test_lookup_by_value():
    assert kind_info("long_cascade") is KINDS[SignalKind.LONG_CASCADE]
    assert find_kind("funding_spike") is None
    with pytest.raises(KeyError):
        kind_info("funding_spike")
