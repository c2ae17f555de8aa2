"""Config: TOML + LIQBOT_* environment; unknown keys named; secrets referenced, never shown."""

import pytest

from bot.config import ConfigError, Settings, load_settings


def write(tmp_path, text):
    p = tmp_path / "liqbot.toml"
    p.write_text(text)
    return p


def test_defaults_without_file_or_env():
    s = load_settings(None, environ={})
    assert s.db == "./liqbot.db" and s.venues == ("binance", "bybit", "okx")
    assert s.telegram_api_url == "https://api.telegram.org/bot"


def test_environment_wins_over_file(tmp_path):
    p = write(tmp_path, 'db = "file.db"\n[scheduler]\neval_interval_s = 5\n')
    s = load_settings(p, environ={"LIQBOT_DB": "env.db", "LIQBOT_TELEGRAM_CHAT_IDS": "-100, 42"})
    assert s.db == "env.db" and s.eval_interval_s == 5.0
    assert s.telegram_chat_ids == ("-100", "42")


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key scheduler.eval_intervl_s"):
        load_settings(write(tmp_path, "[scheduler]\neval_intervl_s = 5\n"), environ={})
    with pytest.raises(ConfigError, match="unknown section \\[telegarm\\]"):
        load_settings(write(tmp_path, "[telegarm]\ntoken = 'x'\n"), environ={})
    with pytest.raises(ConfigError, match="unknown signal parameter"):
        load_settings(write(tmp_path, "[signals]\nmin_shares = 0.8\n"), environ={})
    with pytest.raises(ConfigError, match="LIQBOT_TELEGRAM_TOKNE"):
        load_settings(None, environ={"LIQBOT_TELEGRAM_TOKNE": "x"})


def test_bad_values_and_broken_toml(tmp_path):
    with pytest.raises(ConfigError, match="eval_interval_s: expected a positive number"):
        load_settings(write(tmp_path, "[scheduler]\neval_interval_s = -1\n"), environ={})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[scheduler\n"), environ={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_secret_references_resolve_and_are_redacted(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("123456:SECRET\n")
    p = write(tmp_path, f'[telegram]\ntoken = "$file:{secret}"\n[coinglass]\napi_key = "$env:CG"\n')
    s = load_settings(p, environ={"CG": "cg-key"})
    assert s.telegram_token == "123456:SECRET" and s.coinglass_api_key == "cg-key"
    for shown in (repr(s), str(s), f"{s}", repr(s.sanitize())):
        assert "SECRET" not in shown and "cg-key" not in shown and "***" in shown
    with pytest.raises(ConfigError, match="environment variable NOPE is not set"):
        load_settings(write(tmp_path, '[coinglass]\napi_key = "$env:NOPE"\n'), environ={})


def test_repr_shows_no_secret():
    from bot.config import SECRET_FIELDS

    s = load_settings(None, environ={
        "LIQBOT_TELEGRAM_TOKEN": "111:TG-SECRET", "LIQBOT_DISCORD_TOKEN": "DC-SECRET",
        "LIQBOT_DISCORD_WEBHOOK_URLS": "https://discord.test/api/webhooks/1/WH-SECRET",
        "LIQBOT_COINGLASS_API_KEY": "CG-SECRET"})
    assert {f for f in SECRET_FIELDS if getattr(s, f)} == set(SECRET_FIELDS)  # all are set
    shown = repr(s)
    assert "SECRET" not in shown and shown.count("***") == len(SECRET_FIELDS)
    assert shown.startswith("Settings(db=") and repr(Settings()).count("***") == 0


def test_signal_params_from_file(tmp_path):
    p = write(tmp_path, "[signals]\nmin_share = 0.8\nwindows = ['1h']\n")
    s = load_settings(p, environ={})
    assert s.signals.min_share == 0.8 and s.signals.windows == ("1h",)
