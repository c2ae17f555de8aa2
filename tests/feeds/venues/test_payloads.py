"""The conformance corpus: each frame in tests/payloads decodes to what its manifest lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation, ParseError
from feeds.venues.decode import decoder_for
from feeds.venues.reference import REFERENCE
from tests.helpers.shared import PAYLOADS

MANIFEST = json.loads((PAYLOADS / "manifest.json").read_text())["frames"]
RECV_MS = 1_800_000_000_000


@pytest.fixture(autouse=True)
def _no_reference() -> Iterator[None]:
    REFERENCE.clear()  # a coin-quoted frame is unpriced unless its own case says otherwise
    yield
    REFERENCE.clear()


def frames(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [line for line in text.splitlines() if line.strip()]
    return [text]


def decode(case: dict[str, Any]) -> tuple[list[Liquidation], int]:
    """The events of every frame, and how many frames were refused whole."""
    instruments = case.get("instruments")
    decoder = decoder_for(case["venue"], str(PAYLOADS / instruments) if instruments else None)
    events: list[Liquidation] = []
    rejected = 0
    for frame in frames(PAYLOADS / case["file"]):
        try:
            events += decoder(frame)
        except ParseError:
            rejected += 1  # the live feed counts it and goes on; so does a session here
    return events, rejected


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_frame_normalizes_to_its_manifest_entry(case: dict[str, Any]) -> None:
    events, rejected = decode(case)
    assert rejected == case.get("rejected", 0)
    assert len(events) == len(case["events"])
    for e, want in zip(events, case["events"], strict=True):
        got = e.as_short_dict()
        assert (got["exchange"], got["coin"], got["side"]) == (
            case["venue"], want["coin"], want["side"])
        assert float(e.qty_base) == pytest.approx(want["qty"], rel=1e-9)
        assert float(e.notional_usd) == pytest.approx(want["usd"], rel=1e-9)
        assert e.ts_exchange_ms == want["ts"]
        assert got.get("id") == want.get("id")
        assert got.get("unpriced", False) == want.get("unpriced", False)


def test_every_liquidation_frame_in_the_corpus_is_in_the_manifest() -> None:
    listed = {c["file"] for c in MANIFEST}
    on_disk = {str(p.relative_to(PAYLOADS)) for p in PAYLOADS.glob("*/*")
               if "liquidation" in p.name or "forceorder" in p.name or p.name.startswith(
                   ("issue12_", "pong", "recorded_"))}
    assert on_disk <= listed
