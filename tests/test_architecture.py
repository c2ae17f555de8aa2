"""The rules that keep the house simple, checked on the source (DESIGN.md "Layout").

SQL lives only in feeds/store (market data) and bot/state (chats); `signals` imports only
`feeds.model`; `feeds` imports nothing of bot, signals or backtests.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("feeds", "bot", "signals", "backtests")
SQL_HOMES = ("feeds/store/", "bot/state/")
SQL_CALLS = {"execute", "executemany", "executescript"}
SQL_MODULES = {"sqlite3", "sqlite_utils"}



def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            out.append((rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)))
    return out


MODULES = _modules()


def _imported(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) for every absolute import; `from a import b` gives both `a` and `a.b`.

    The project uses no relative imports, so `node.level` is always 0 here.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            # `from feeds import store` names a package too
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def sql_use(tree: ast.Module) -> list[str]:
    """Where a module touches a database connection: SQL calls, `.conn`, SQLite imports."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == "conn":
                hits.append(f"line {node.lineno}: .conn")
            elif node.attr in SQL_CALLS and isinstance(getattr(node, "ctx", None), ast.Load):
                hits.append(f"line {node.lineno}: .{node.attr}(")
    for line, top in sorted({(line, m.split(".")[0]) for line, m in _imported(tree)}):
        if top in SQL_MODULES:
            hits.append(f"line {line}: import {top}")
    return hits


def test_the_checks_see_what_they_look_for():
    tree = ast.parse("import sqlite3\nfrom sqlite_utils import Database\n"
                     "x.conn.execute('SELECT 1')\ny.executemany('', [])\nz.executescript('')\n")
    assert len(sql_use(tree)) == 6
    assert sql_use(ast.parse("import json\nrun(task)\n")) == []


def test_sql_runs_only_in_the_two_store_packages():
    offenders = {}
    for rel, tree in MODULES:
        if rel.startswith(SQL_HOMES):
            continue
        hits = sql_use(tree)
        if hits:
            offenders[rel] = hits
    assert offenders == {}, "SQL outside feeds/store and bot/state: move it there"


def _project_imports(prefix: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rel, tree in MODULES:
        if not rel.startswith(prefix):
            continue
        for _, module in _imported(tree):
            if module.split(".")[0] in PACKAGES:
                out.setdefault(rel, set()).add(module)
    return out


def test_signals_imports_only_feeds_model():
    bad = {rel: sorted(m for m in mods if not m.startswith(("signals", "feeds.model")))
           for rel, mods in _project_imports("signals/").items()}
    # `from feeds import model` appears as both `feeds` and `feeds.model`: the bare
    # package name alone says nothing, so only dotted names outside the rule count.
    bad = {rel: [m for m in mods if m != "feeds"] for rel, mods in bad.items()}
    assert {rel: mods for rel, mods in bad.items() if mods} == {}


def test_feeds_imports_nothing_of_bot_signals_or_backtests():
    bad = {rel: sorted(m for m in mods if m.split(".")[0] in ("bot", "signals", "backtests"))
           for rel, mods in _project_imports("feeds/").items()}
    assert {rel: mods for rel, mods in bad.items() if mods} == {}
