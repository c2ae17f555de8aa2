"""The parser benchmark runs for every venue at a tiny scale (speed is bench/'s job)."""

import pytest

from tests.helpers.shared import FIXTURES

bench = pytest.importorskip("bench.parsers")


def test_parser_bench_covers_every_venue(capsys):
    assert bench.main(["--frames", "200", "--fixtures", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    from feeds.venues.registry import VENUES

    for venue in VENUES:
        assert f"\n{venue} " in out
