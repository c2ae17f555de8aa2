# Two entry points for a fresh machine: `make run` and `make test`.
# Each bootstraps .venv from pyproject.toml pinned by constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test faults bench soak lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/liqbot run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fault suite (issue 15, about a minute): kill -9 during a replay with delivery, crash
# loops during a 60-chat fan-out, a full disk and a read-only database in a live run, every
# bad setting and input. Each case prints a `FAULT name: lost=... duplicated=...
# tracebacks=...` line and fails on any loss. `make test` runs the same tests.
FAULT_TESTS := tests/bot/run/test_crash_loop.py tests/bot/run/test_kill_replay.py \
	tests/bot/run/test_write_faults.py tests/bot/cli/test_bad_input.py \
	tests/bot/run/test_replay_cli.py::test_kill_between_send_and_ack_resends_only_that_alert \
	tests/bot/telegram/test_commands.py

faults: $(STAMP)
	$(BIN)/python -m pytest -q -s -p no:cacheprovider $(FAULT_TESTS)

# ruff over code and tests, then mypy (strict on the data and signal packages, default on the service).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict feeds signals backtests
	$(BIN)/mypy bot

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The soak (issue 16, 10 minutes; not part of `make test`): `liqbot run` against all seven
# venues' local fake servers at 10x the busiest hour's event rate; prints the RSS curve,
# event-loop lag and backlog, and fails on RSS growth > 5 %, lag p99 >= 50 ms or a backlog.
# `make soak MINUTES=1` for a short run.
MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache
