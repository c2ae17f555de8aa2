"""`liqbot backfill --coinglass --since 48h` against a local CoinGlass fake."""

from __future__ import annotations

import asyncio

from feeds.store import Store
from feeds.venues import coinglass_api as cg
from tests.feeds.venues.test_coinglass_api import KEY, bars_handler
from tests.helpers.cli import REPO, clean_env, liqbot_cmd
from tests.helpers.fake_http import FakeHttp, Reply


async def _run(*args: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *liqbot_cmd(*args), cwd=REPO, env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, err.decode()


def _config(tmp_path, url: str) -> str:
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text(f'[feeds.rest_urls]\ncoinglass = "{url}"\n')
    return str(cfg)


async def test_backfill_stores_bars_and_shows_progress(tmp_path):
    db = tmp_path / "b.db"
    async with FakeHttp() as fake:
        fake.handler(cg.AGGREGATED, bars_handler())
        rc, err = await _run("backfill", "--coinglass", "--since", "48h", "--symbols", "BTC,ETH",
                             "--config", _config(tmp_path, fake.url), "--db", str(db),
                             LIQBOT_COINGLASS_API_KEY=KEY)
    assert rc == 0, err
    assert "coinglass backfill BTC: page 1/1" in err and "bars stored" in err
    assert KEY not in err
    store = Store(db)
    n = store.database.conn.execute("SELECT count(*) FROM agg_buckets WHERE source = 'coinglass'")
    assert n.fetchone()[0] in (96, 98)  # 48 or 49 hourly bars per coin, by where "now" falls
    store.close()


async def test_backfill_rejected_key_is_one_clear_line(tmp_path):
    async with FakeHttp() as fake:
        fake.route(cg.AGGREGATED, Reply(status=401, json={"code": "401", "msg": "bad key"}))
        rc, err = await _run("backfill", "--coinglass", "--config", _config(tmp_path, fake.url),
                             "--db", str(tmp_path / "b.db"), LIQBOT_COINGLASS_API_KEY=KEY)
    assert rc == 2
    assert "CoinGlass rejected the API key (401)" in err and KEY not in err
    assert "Traceback" not in err


async def test_backfill_without_key_says_which_variable(tmp_path):
    rc, err = await _run("backfill", "--coinglass", "--db", str(tmp_path / "b.db"))
    assert rc == 2 and "LIQBOT_COINGLASS_API_KEY" in err
