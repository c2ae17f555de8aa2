"""README keeps up with the code: every command, every variable, the Deploy section."""

from __future__ import annotations

import argparse
import re

import bot.config as config
from bot.cli.main import _parser
from tests.helpers.cli import REPO

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The text of one `## title` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(title)}\b.*?(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(0)


def commands() -> list[str]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, parser in sub.choices.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        out += [f"{name} {action}" for a in nested for action in a.choices] or [name]
    return out


def test_usage_shows_every_command():
    usage = section("Usage")
    missing = [c for c in commands() if f"liqbot {c}" not in usage]
    assert not missing, f"README Usage lacks {missing}"
    assert "--log-json" in usage and "--ops" in usage and "/healthz" in usage


def test_configuration_names_every_variable_and_the_ops_settings():
    conf = section("Configuration")
    missing = sorted(v for v in {*config._ENV_KEYS, "LIQBOT_CONFIG"} if v not in conf)
    assert not missing, f"README Configuration lacks {missing}"
    assert "[ops]" in conf and "listen =" in conf and "log_json =" in conf


def test_deploy_covers_what_an_operator_needs():
    deploy = section("Deploy")
    for sub in ("Docker Compose", "systemd", "Health, metrics and logs", "What to monitor",
                "Backups and retention", "Browsing the database", "Upgrading"):
        assert re.search(rf"^### {re.escape(sub)}$", deploy, re.M), sub
    for path in re.findall(r"`(deploy/[\w.-]+)`", deploy):
        assert (REPO / path).exists(), f"README Deploy names {path}, which does not exist"
    assert not (REPO / "README-deploy.md").exists(), "merged into README.md"
