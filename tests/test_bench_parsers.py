"""The parser benchmark runs for every venue at a tiny scale (speed is bench/'s job)."""

import pytest

from tests.helpers.cli import REPO

bench = pytest.importorskip("bench.parsers")


def test_parser_bench_covers_every_venue(capsys):
    if not (REPO.parent / "shared" / "fixtures").exists():
        pytest.skip("shared fixtures absent")
    assert bench.main(["--frames", "200"]) == 0
    out = capsys.readouterr().out
    from feeds.venues import VENUES

    for venue in VENUES:
        assert f"\n{venue} " in out
