"""Where ../shared lives: beside the checkout, or else at /work/shared (a clone elsewhere)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = next((p for p in (REPO_ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()),
              REPO_ROOT.parent / "shared")
FIXTURES = SHARED / "fixtures" / "exchanges"  # sample frames per venue (shared/fixtures)
SHARED_DATA = SHARED / "data"  # real datasets: tests using them are marked realdata
