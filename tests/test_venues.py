"""The worked examples of docs/venues.md, reproduced to the cent.

Every expected number is copied from the venue's example as VENUES.md quotes it (section and
trust mark in each test's docstring), never computed by riskcore.  Where VENUES.md marks a
number [derived] rather than the venue's own, the test says so.
"""
from __future__ import annotations

import pytest

from riskcore import margin, venues
from riskcore.venues import bybit, dydx, hyperliquid, okx


def cents(x: float) -> float:
    return round(x, 2)


# ------------------------------------------------------------------------------- Bybit
def test_bybit_isolated_long_20000_50x():
    """Section 2.2 [official]: 1 BTC long @ 20,000, 50x, MMR 0.5%: IM 400, MM 100, LP 19,700."""
    assert cents(bybit.initial_margin(1, 20_000, 50)) == 400.00
    assert cents(bybit.maintenance_margin(1, 20_000, 0.005)) == 100.00
    assert cents(bybit.isolated_liquidation_price("long", 1, 20_000, 50, 0.005)) == 19_700.00


def test_bybit_isolated_older_page():
    """Section 2.2 [official, older page]: 1 BTC long @ 10,000, 50x: LP 9,850;
    1 BTC short @ 8,000, 40x: LP 8,160 (MMR 0.5% in both)."""
    assert cents(bybit.isolated_liquidation_price(1, 1, 10_000, 50, 0.005)) == 9_850.00
    assert cents(bybit.isolated_liquidation_price(-1, 1, 8_000, 40, 0.005)) == 8_160.00


def test_bybit_isolated_with_the_shipped_btcusdt_tier():
    """Section 2.1 [official snippet]: BTCUSDT up to 2,000,000 has MMR 0.5%, so the shipped
    table gives the 19,700 of section 2.2 too."""
    table = venues.load("bybit", "BTCUSDT")
    assert cents(bybit.isolated_liquidation_price("long", 1, 20_000, 50, table)) == 19_700.00


def test_bybit_bankruptcy_price():
    """Section 2.3 [official]: 1 BTC long @ 10,000, 50x: BP 9,800."""
    assert cents(bybit.bankruptcy_price("long", 10_000, 50)) == 9_800.00


def test_bybit_auto_margin_replenishment():
    """Section 2.6 [official, first step]: long 5 BTC @ 8,000, 10x, IM 4,000, MMR 0.5%: LP 7,240.
    Then [derived]: +4,000 -> 6,440; +2,000 more -> 6,040."""
    assert cents(bybit.initial_margin(5, 8_000, 10)) == 4_000.00
    assert cents(bybit.isolated_liquidation_price("long", 5, 8_000, 10, 0.005)) == 7_240.00
    assert cents(bybit.isolated_liquidation_price("long", 5, 8_000, 10, 0.005, extra_margin=4_000)) == 6_440.00
    assert cents(bybit.isolated_liquidation_price("long", 5, 8_000, 10, 0.005, extra_margin=6_000)) == 6_040.00


def test_bybit_auto_margin_matches_riskcore_entry_basis():
    """The same 7,240 through riskcore's own entry-basis formula (MARGIN_RULES.md section 3)."""
    table = venues.load("bybit", "BTCUSDT")
    assert cents(margin.isolated_liquidation_price(1, 5, 8_000, 4_000, table, mm_basis="entry")) == 7_240.00


def test_bybit_classic_cross():
    """Section 2.4: 1 BTC @ 20,000, available 2,000, IM 200, MM 100: LP 17,900 [mirror];
    2 BTC @ 10,000, available 2,000, IM 200, MM 100: sustainable loss 2,100, LP 8,950 [derived]."""
    assert cents(bybit.cross_liquidation_price_classic("long", 1, 20_000, 2_000, 200, 100)) == 17_900.00
    assert cents(bybit.cross_liquidation_price_classic("long", 2, 10_000, 2_000, 200, 100)) == 8_950.00


# --------------------------------------------------------------------------------- OKX
def test_okx_isolated_liquidation_price():
    """Section 3.3 [derived in VENUES.md, matching freqtrade's OKX code]: 1 BTC @ 100,000, 10x
    (M = 10,000), MMR 0.4%, taker 0.05%: long LP 90,406.83, short LP 109,507.22."""
    assert cents(okx.isolated_liquidation_price("long", 1, 100_000, 10_000, 0.004, taker_fee=0.0005)) == 90_406.83
    assert cents(okx.isolated_liquidation_price("short", 1, 100_000, 10_000, 0.004, taker_fee=0.0005)) == 109_507.22


def test_okx_margin_ratio_is_one_at_the_liquidation_price():
    """Section 3.2: liquidation begins at margin ratio 100%; at the section 3.3 prices it is 1."""
    for side, lp in ((1, 90_406.83), (-1, 109_507.22)):
        ratio = okx.margin_ratio_isolated(side, 1, 100_000, 10_000, lp, 0.004, taker_fee=0.0005)
        assert ratio == pytest.approx(1.0, abs=1e-5)   # the prices are rounded to the cent


def test_okx_partial_liquidation_size():
    """Section 3.4 [official, older wording]: 15,000 swaps, tier 1 max 2,000: 13,000 are closed.
    Only tier 1's max is quoted; the other tiers here are placeholders the answer does not use."""
    tiers = venues.from_okx([
        {"tier": "1", "minSz": "0", "maxSz": "2000", "mmr": "0.004", "imr": "0.008", "maxLever": "125"},
        {"tier": "2", "minSz": "2001", "maxSz": "100000", "mmr": "0.1", "imr": "0.2", "maxLever": "5"},
    ], "DEMO-USDT")
    assert tiers.excess_over_tier(15_000, tier=1) == 13_000


# ------------------------------------------------------------------------- Hyperliquid
def test_hyperliquid_maintenance_rate():
    """Section 5 [official]: MM rate is half the IM rate at max leverage: 1.25% at 40x, 16.7% at 3x."""
    assert round(hyperliquid.maintenance_rate(40) * 100, 2) == 1.25
    assert round(hyperliquid.maintenance_rate(3) * 100, 1) == 16.7


def test_hyperliquid_isolated_liquidation_price():
    """Section 5 [derived in VENUES.md; equity = MM at the LP checked]: 1 BTC @ 100,000, 10x
    isolated, MMR 1.25%: long LP 91,139.24, short LP 108,641.98."""
    btc = venues.load("hyperliquid", "BTC")
    assert btc.mmr[0] == 0.0125
    assert cents(hyperliquid.isolated_liquidation_price("long", 1, 100_000, 10_000, btc)) == 91_139.24
    assert cents(hyperliquid.isolated_liquidation_price("short", 1, 100_000, 10_000, btc)) == 108_641.98


def test_hyperliquid_published_formula_as_it_stands():
    """The same two prices from the formula of section 5 with margin_available = 10,000 - 1,250."""
    assert cents(hyperliquid.liquidation_price(1, 1, 100_000, 10_000 - 1_250, 0.0125)) == 91_139.24
    assert cents(hyperliquid.liquidation_price(-1, 1, 100_000, 10_000 - 1_250, 0.0125)) == 108_641.98


# ------------------------------------------------------------------------------- dYdX
def test_dydx_isolated_liquidation_price():
    """Section 6 [official]: e = 1,000; short 3 ETH @ 3,000; MMF 5%: p' = 3,174.60, and the
    equity there is 476.2 = 3 x 3,174.6 x 5%."""
    p = dydx.isolated_liquidation_price(-3, 3_000, 1_000, 0.05)
    assert cents(p) == 3_174.60
    assert round(dydx.account_value(1_000 + 3 * 3_000, [-3], [p]), 1) == 476.2
    assert round(dydx.maintenance_margin(-3, p, 0.05), 1) == 476.2


def test_dydx_cross_liquidation_price():
    """Section 6 [official]: e = 1,000; short 1.5 ETH @ 3,000 (MMF 5%); long 1,000 STRK @ 1.75
    (MMF 10%), so MMR_o = 175: p' = 3,380.95."""
    other = dydx.maintenance_margin(1_000, 1.75, 0.10)
    assert cents(other) == 175.00
    assert cents(dydx.cross_liquidation_price(-1.5, 3_000, 1_000, 0.05, other)) == 3_380.95


def test_dydx_liquidation_and_insurance_fund():
    """Section 6 [official]: long 500 @ 1, MMF 3%, MMR 15; at 0.801 equity is 0.50 (liquidated);
    the fill at 0.77 loses 115 against 100 of equity, so the fund pays 15."""
    quote = 100 - 500 * 1.0                                    # 100 USDC of equity at entry, 500 bought
    assert cents(dydx.maintenance_margin(500, 1.0, 0.03)) == 15.00
    equity = dydx.account_value(quote, [500], [0.801])
    assert cents(equity) == 0.50
    assert equity < dydx.maintenance_margin(500, 0.801, 0.03)
    assert cents(500 * (0.77 - 1.0)) == -115.00
    assert cents(-dydx.account_value(quote, [500], [0.77])) == 15.00


def test_dydx_deleveraging_at_the_bankruptcy_price():
    """Section 6 [official]: A long 500 @ 1 and B short 500 @ 1, 100 collateral each; at 2 B's
    equity is -400, B's BP is 1.2, A is closed at 1.2 and earns +100."""
    assert cents(dydx.account_value(100 + 500 * 1.0, [-500], [2.0])) == -400.00
    bp = dydx.bankruptcy_price(-500, 1.0, 100)
    assert cents(bp) == 1.20
    assert cents(500 * (bp - 1.0)) == 100.00


def test_dydx_funding_cap():
    """Section 6 [official]: the 8h cap is 600% x (IMF - MMF); for BTC that is 12%."""
    btc = venues.load("dydx", "BTC-USD")
    assert round(dydx.funding_cap_8h(btc, btc) * 100, 2) == 12.00
