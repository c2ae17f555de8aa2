"""Logs at DEBUG, text or JSON, never show a secret (RELIABILITY.md item 23)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from urllib.parse import quote

import pytest

from bot.ops import redact
from bot.ops.logs import secret_variants, settings_secrets, setup_logging
from tests.helpers.cli import REPO, clean_env
from tests.helpers.logstate import preserved_logging

TOKEN = "123456789:AAHfake-telegram-token_0123456789abcdef"
WEBHOOK = "https://discord.com/api/webhooks/112233445566778899/fakeWebhookSecret-0123456789abcd"
API_KEY = "cg-fake-api-key-0123456789"
SECRETS = (TOKEN, WEBHOOK, API_KEY)


@pytest.fixture
def capture():
    """setup_logging into a buffer with a fresh redactor; logging is restored after."""
    def make(json_lines: bool) -> io.StringIO:
        buf = io.StringIO()
        setup_logging("DEBUG", json=json_lines, secrets=SECRETS, stream=buf,
                      redactor=redact.Redactor())
        return buf

    with preserved_logging():
        yield make


def emit_everything() -> None:
    """Every way a secret reaches a log line in practice."""
    log = logging.getLogger("bot.telegram.service")
    log.debug("Set Bot API URL: https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info("token in the message itself " + TOKEN)
    log.debug("args %s %r", {"token": TOKEN}, (WEBHOOK,))
    log.debug("percent-encoded %s", quote(TOKEN, safe=""))
    log.debug("webhook token alone: %s", WEBHOOK.rsplit("/", 1)[1])
    log.debug("extra field", extra={"url": f"https://x.test/?key={API_KEY}"})
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/send",
                                       TOKEN)
    log.debug("bad format %s %s", TOKEN)  # a malformed call must neither raise nor leak
    try:
        try:
            raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getUpdates")
        except ConnectionError as inner:
            raise RuntimeError(f"webhook {WEBHOOK} failed") from inner
    except RuntimeError:
        log.exception("delivery failed for key %s", API_KEY)
    log.debug("with stack %s", TOKEN, stack_info=True)


@pytest.mark.parametrize("json_lines", [False, True])
def test_no_secret_in_debug_logs(capture, caplog, json_lines):
    buf = capture(json_lines)
    caplog.set_level(logging.DEBUG)
    emit_everything()
    out = buf.getvalue()
    seen_by_others = "\n".join(caplog.messages)  # a handler someone else added (pytest's)
    for secret in SECRETS:
        for variant in secret_variants([secret]):
            assert variant not in out, f"leaked {variant[:12]}..."
            assert variant not in seen_by_others, f"leaked {variant[:12]}... to caplog"
    assert out.count("***") >= 10
    assert "Traceback" in out and "ConnectionError" in out  # tracebacks kept, only masked
    if json_lines:
        records = [json.loads(line) for line in out.splitlines()]
        assert {"ts", "level", "logger", "msg"} <= records[0].keys()
        assert records[0]["ts"].endswith("Z") and records[0]["level"] == "DEBUG"
        assert any("exc" in r and "RuntimeError" in r["exc"] for r in records)
        assert any(r.get("url") == "https://x.test/?key=***" for r in records)
    else:
        assert out.splitlines()[0].split(" ")[1:3] == ["DEBUG", "bot.telegram.service:"]


def test_uncaught_exception_is_logged_masked(tmp_path):
    """A crash's traceback goes through the masked handler, not raw to stderr."""
    code = (
        "from bot.ops.logs import setup_logging\n"
        f"setup_logging('DEBUG', json=True, secrets=[{TOKEN!r}])\n"
        f"raise SystemError('bad token {TOKEN}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=clean_env())
    assert proc.returncode == 1
    assert TOKEN not in proc.stderr and TOKEN.split(":")[1] not in proc.stderr
    record = json.loads(proc.stderr.strip().splitlines()[-1])
    assert record["level"] == "CRITICAL" and "SystemError: bad token ***" in record["exc"]


def test_setup_logging_twice_keeps_one_handler(capture):
    capture(False)
    capture(True)
    mine = [h for h in logging.getLogger().handlers if getattr(h, "_liqbot_handler", False)]
    assert len(mine) == 1


def test_secret_variants_cover_url_forms():
    found = secret_variants([TOKEN, WEBHOOK, None, "short"])
    assert TOKEN in found and quote(TOKEN, safe="") in found
    assert WEBHOOK.rsplit("/", 1)[1] in found and TOKEN.split(":", 1)[1] in found
    assert "short" not in found  # too short to mask safely


def test_settings_secrets_match_what_sanitize_hides():
    from bot.config import load_settings

    env = {"LIQBOT_TELEGRAM_TOKEN": TOKEN, "LIQBOT_DISCORD_WEBHOOK_URLS": WEBHOOK,
           "LIQBOT_COINGLASS_API_KEY": API_KEY, "LIQBOT_DISCORD_TOKEN": "discord-fake-token-1"}
    settings = load_settings(None, environ=env)
    hidden = [v for v in settings_secrets(settings) if v]
    assert sorted(hidden) == sorted([TOKEN, WEBHOOK, API_KEY, "discord-fake-token-1"])
    # Every secret field is there, so a new one cannot be masked in sanitize() but not in logs.
    from bot.config import SECRET_FIELDS

    masked = {k for k, v in settings.sanitize().items() if v in ("***", ["***"])}
    assert masked == set(SECRET_FIELDS)
    assert not any(s in json.dumps(settings.sanitize()) for s in hidden)
