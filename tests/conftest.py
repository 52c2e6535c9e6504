"""Shared fixtures of riskcore's tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from riskcore import Brackets

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder beside the checkout (``../shared/data``); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def btc_2024() -> Brackets:
    """Binance BTCUSDT table of MARGIN_RULES.md section 2 (Oct 2024; shipped as effective 2024-05-30)."""
    return Brackets.load("BTCUSDT", "2024-10-31")


@pytest.fixture(scope="session")
def btc_2021() -> Brackets:
    """The 2021 BTCUSDT table of MARGIN_RULES.md section 4 (shipped as effective 2022-05-21)."""
    return Brackets.load("BTCUSDT", "2022-05-21")
