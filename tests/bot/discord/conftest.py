"""The Discord delivery rig as a fixture; `with_limits` parametrizes its limits indirectly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers.discord_rig import QUICK, Rig, discord_rig
from tests.helpers.fake_discord import FakeLimits


@pytest.fixture
async def rig(tmp_path, monkeypatch, request) -> AsyncIterator[Rig]:
    fake_limits, limits = getattr(request, "param", (FakeLimits(), QUICK))
    async with discord_rig(tmp_path, monkeypatch, fake_limits, limits) as r:
        yield r
