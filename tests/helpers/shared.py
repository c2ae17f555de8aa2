"""Where test data lives: the conformance corpus in the repo, and ../shared for real datasets.

../shared sits beside the checkout, or else at /work/shared (a clone elsewhere).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = next((p for p in (REPO_ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()),
              REPO_ROOT.parent / "shared")
SHARED_DATA = SHARED / "data"  # real datasets: tests using them are marked realdata
PAYLOADS = REPO_ROOT / "tests" / "payloads"  # venue frames, one folder per venue (its README)


class _Payloads:
    """`FIXTURES / "okx_liquidation_orders.json"`: a venue frame by its file name, wherever
    its venue folder is, so tests name a frame without knowing the folder layout."""

    def __truediv__(self, name: str) -> Path:
        found = sorted(PAYLOADS.glob(f"*/{name}"))
        if len(found) != 1:
            raise FileNotFoundError(f"{name}: {len(found)} matches under {PAYLOADS}")
        return found[0]

    def __str__(self) -> str:
        return str(PAYLOADS)


FIXTURES = _Payloads()  # sample frames per venue, committed in tests/payloads
