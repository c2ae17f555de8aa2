"""The whole bot at DEBUG, with delivery faults: no secret in logs, output, the DB or a backup.

RELIABILITY.md item 23, through the real console script: a replay that posts to the fake
Bot API (a flood wait, a server error, a blocked chat on the way), then `liqbot backup`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ops.logs import secret_variants
from tests.bot.telegram.test_cli import TWO_EPISODES
from tests.helpers.cli import liqbot_async, write_coinglass_csv
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, fail

API_KEY = "cg-fake-api-key-0123456789abcdef"


def leaks(secrets: list[str], texts: dict[str, str], files: list[Path]) -> list[str]:
    """Where any form of any secret shows up: the name of each text or file."""
    found = []
    variants = secret_variants(secrets)
    for name, text in texts.items():
        found += [name for v in variants if v in text]
    for f in files:
        data = f.read_bytes() if f.exists() else b""
        found += [str(f) for v in variants if v.encode() in data]
    return found


@pytest.mark.parametrize("log_json", [False, True], ids=["text", "json"])
async def test_no_secret_in_debug_logs_db_or_backup(tmp_path, log_json):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db, backups = tmp_path / "s.db", tmp_path / "backups"
    flags = ["-v", "--db", str(db)] + (["--log-json"] if log_json else [])
    async with FakeBotApi(TOKEN) as fake:
        fake.next_reply["555"] = [fail(429, "Too Many Requests: retry after 1", retry_after=1),
                                  fail(500, "Internal Server Error")]
        fake.next_reply["556"] = [fail(403, "Forbidden: bot was blocked by the user")]
        env = {"LIQBOT_TELEGRAM_TOKEN": TOKEN, "LIQBOT_TELEGRAM_API_URL": fake.base_url,
               "LIQBOT_TELEGRAM_CHAT_IDS": "555,556", "LIQBOT_COINGLASS_API_KEY": API_KEY}
        code, out, err = await liqbot_async("run", "--replay", str(csv), "--symbol", "BTC",
                                      "--speed", "0", *flags, **env)
    assert code == 0, err[-3000:]
    assert len(fake.sent_to("555")) == 2 and "Set Bot API URL" in err  # DEBUG really was on
    assert "flood control" in err and "556 disabled" in out + err
    code, bout, berr = await liqbot_async("backup", *flags, str(backups) + "/", **env)
    assert code == 0, berr
    (copy,) = backups.glob("liqbot-*.db")
    found = leaks([TOKEN, API_KEY], {"run stdout": out, "run stderr": err,
                                     "backup stdout": bout, "backup stderr": berr},
                  [db, Path(f"{db}-wal"), copy])
    assert not found, f"secret found in {sorted(set(found))}"
    assert "***" in err  # the token was there to mask: PTB's DEBUG line names the URL
