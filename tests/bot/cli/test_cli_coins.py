"""`liqbot totals --symbol BTC` after a replay counts every BTC instrument of all seven venues."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from feeds.venues.decode import decoder_for
from tests.feeds.venues.coin_frames import FRAMES, TS, instruments_file
from tests.helpers.cli import run_liqbot


def test_totals_per_coin_count_every_venue_after_a_replay_of_decode_output(tmp_path: Path) -> None:
    lines, counts = [], {"BTC": 0, "ETH": 0}
    for venue, frames in FRAMES.items():
        decode = decoder_for(venue, instruments_file(venue, tmp_path))
        for coin in counts:
            for frame in frames(coin):
                for e in decode(json.dumps(frame)):
                    if e.ts_exchange_ms is None:  # BitMEX: receive time; keep it in the hour
                        e = dataclasses.replace(e, ts_recv_ms=TS + 30_000)
                    lines.append(json.dumps(e.as_short_dict()))
                    counts[coin] += 1
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    db = str(tmp_path / "c.db")
    r = run_liqbot("run", "--replay", str(events), "--speed", "0", "--db", db)
    assert r.returncode == 0, r.stderr
    for coin, n in counts.items():
        r = run_liqbot("totals", "--window", "1h", "--symbol", coin, "--at", "latest",
                       "--db", db, "--json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["count"] == n and round(data["long_usd"] + data["short_usd"]) == 900 * n
    assert counts["BTC"] >= 14
