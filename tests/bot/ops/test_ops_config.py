"""[ops] listen and log_json: from the file or the environment, checked when loaded."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_OPS_LISTEN, ConfigError, load_settings, parse_listen


def write(tmp_path, text: str):
    path = tmp_path / "liqbot.toml"
    path.write_text(text)
    return path


def test_defaults_serve_on_loopback_and_log_text():
    s = load_settings(None, environ={})
    assert s.ops_listen == DEFAULT_OPS_LISTEN == "127.0.0.1:9108" and s.log_json is False
    assert parse_listen(s.ops_listen) == ("127.0.0.1", 9108)


def test_file_sets_both_and_the_environment_wins(tmp_path):
    cfg = write(tmp_path, 'log_json = true\n[ops]\nlisten = "127.0.0.1:9200"\n')
    s = load_settings(cfg, environ={})
    assert (s.ops_listen, s.log_json) == ("127.0.0.1:9200", True)
    s = load_settings(cfg, environ={"LIQBOT_OPS_LISTEN": "off", "LIQBOT_LOG_JSON": "false"})
    assert (s.ops_listen, s.log_json) == ("off", False) and parse_listen(s.ops_listen) is None


@pytest.mark.parametrize("text, expected", [("1", True), ("TRUE", True), ("yes", True),
                                            ("on", True), ("0", False), ("No", False)])
def test_log_json_from_the_environment(text, expected):
    assert load_settings(None, environ={"LIQBOT_LOG_JSON": text}).log_json is expected


def test_bad_values_are_named_at_load_time(tmp_path):
    with pytest.raises(ConfigError, match="LIQBOT_LOG_JSON: expected true or false"):
        load_settings(None, environ={"LIQBOT_LOG_JSON": "ture"})
    with pytest.raises(ConfigError, match="log_json: expected true or false"):
        load_settings(write(tmp_path, 'log_json = "yes"\n'), environ={})
    with pytest.raises(ConfigError, match="ops.listen: expected an IP address and port"):
        load_settings(None, environ={"LIQBOT_OPS_LISTEN": "localhost:9108"})
    with pytest.raises(ConfigError, match="unknown key ops.port"):
        load_settings(write(tmp_path, "[ops]\nport = 9108\n"), environ={})


def test_an_empty_listen_in_the_file_turns_the_page_off(tmp_path):
    s = load_settings(write(tmp_path, '[ops]\nlisten = ""\n'), environ={})
    assert parse_listen(s.ops_listen) is None
