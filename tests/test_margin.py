"""Tests of riskcore.margin: the formulas of MARGIN_RULES.md sections 3 and 4.

Every expected number is taken from MARGIN_RULES.md's worked examples or worked out by hand
in a comment; none is produced by the code under test.  Property tests only check relations
(equity = maintenance margin at the liquidation price; cross = isolated for a lone position).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from riskcore import Brackets
from riskcore import margin as m

# BTCUSDT Oct 2024 (MARGIN_RULES.md section 2); cum hand-derived in test_brackets.py:
# 0, 50, 950, 11,450, 131,450, 481,450, 2,981,450, 14,481,450, 26,481,450, 41,481,450, 121,481,450, 421,481,450
BTC24_CAPS = [50e3, 600e3, 3e6, 12e6, 70e6, 100e6, 230e6, 480e6, 600e6, 800e6, 1.2e9, 1.8e9]
BTC24_MMR = [0.004, 0.005, 0.0065, 0.01, 0.02, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
BTC24_CUM = [0.0, 50.0, 950.0, 11_450.0, 131_450.0, 481_450.0, 2_981_450.0, 14_481_450.0,
             26_481_450.0, 41_481_450.0, 121_481_450.0, 421_481_450.0]


def mm_reference(notional: float) -> float:
    """MM of the BTCUSDT Oct-2024 table, written from the rule book (band (floor, cap], last tier beyond)."""
    for cap, rate, cum in zip(BTC24_CAPS, BTC24_MMR, BTC24_CUM):
        if notional <= cap:
            return notional * rate - cum
    return notional * BTC24_MMR[-1] - BTC24_CUM[-1]


def one_tier(mmr: float, max_leverage: float) -> Brackets:
    return Brackets.from_records([dict(notional_floor=0.0, notional_cap=1e12, mmr=mmr, max_leverage=max_leverage)])


@pytest.fixture(scope="module")
def half_pct():
    """One tier, mmr 0.5%, cum 0 (the auto-add-margin case of section 3)."""
    return one_tier(0.005, 100)


@pytest.fixture(scope="module")
def one_pct():
    """One tier, mmr 1%, cum 0 (hedge hand cases)."""
    return one_tier(0.01, 50)


@pytest.fixture(scope="module")
def eth_example():
    """ETH table of section 4: 0.5% up to 1,424,894.74, 10% above; cum_2 = 1,424,894.74 * (0.10 - 0.005)
    = 1,424,894.74 * 0.095 = 135,365.0003 (the rule book's 135,365)."""
    return Brackets.from_records([
        dict(notional_floor=0.0, notional_cap=1_424_894.74, mmr=0.005, max_leverage=100),
        dict(notional_floor=1_424_894.74, notional_cap=1e9, mmr=0.10, max_leverage=5),
    ], symbol="ETHUSDT")


# ------------------------------------------------------------------------ Binance cross example
WB = 1_535_443.01
BTC_Q, BTC_EP, BTC_MP = 109.488, 32_481.98, 31_967.27
ETH_Q, ETH_EP, ETH_MP = 3_683.979, 1_456.84, 1_335.18


def test_binance_example_inputs(btc_2021, eth_example):
    # Table look-ups of the two positions at mark (hand values):
    # BTC notional 109.488 * 31,967.27 = 3,500,032.45776 -> 1M-10M tier (2.5%, 16,300)
    # MM_BTC = 3,500,032.45776 * 0.025 - 16,300 = 87,500.811444 - 16,300 = 71,200.811444
    assert eth_example.cum[1] == pytest.approx(135_365.0003, abs=1e-6)
    assert m.maintenance_margin(BTC_Q * BTC_MP, btc_2021) == pytest.approx(71_200.811444, abs=1e-5)
    # uPnL_BTC = 109.488 * (31,967.27 - 32,481.98) = 109.488 * -514.71 = -56,354.56848
    assert m.unrealized_pnl("long", BTC_Q, BTC_EP, BTC_MP) == pytest.approx(-56_354.56848, abs=1e-5)
    # ETH notional 3,683.979 * 1,335.18 = 4,918,775.08122 -> 10% tier
    # MM_ETH = 491,877.508122 - 135,365.0003 = 356,512.507822
    assert m.maintenance_margin(ETH_Q * ETH_MP, eth_example) == pytest.approx(356_512.507822, abs=1e-5)
    # uPnL_ETH = 3,683.979 * (1,335.18 - 1,456.84) = 3,683.979 * -121.66 = -448,192.88514
    assert m.unrealized_pnl(1, ETH_Q, ETH_EP, ETH_MP) == pytest.approx(-448_192.88514, abs=1e-5)


def test_binance_cross_example_eth(btc_2021, eth_example):
    # LP_ETH = (WB - TMM + UPNL + cum - Q*EP) / (Q*mmr - Q), other contract = BTC at its mark:
    #   numerator   = 1,535,443.01 - 71,200.811444 - 56,354.56848 + 135,365 - 3,683.979*1,456.84
    #               = 1,535,443.01 - 71,200.811444 - 56,354.56848 + 135,365 - 5,366,967.96636
    #               = -3,823,715.336284
    #   denominator = 3,683.979 * (0.10 - 1) = -3,315.5811
    #   LP          = 1,153.2565 -> 1,153.26 (rule book), notional 4.25M: in the 10% tier
    tmm = m.maintenance_margin(BTC_Q * BTC_MP, btc_2021)
    upnl = m.unrealized_pnl(1, BTC_Q, BTC_EP, BTC_MP)
    lp = m.cross_liquidation_price(WB, eth_example, side="long", qty=ETH_Q, entry_price=ETH_EP,
                                   other_maintenance=tmm, other_unrealized_pnl=upnl)
    assert isinstance(lp, float)
    assert lp == pytest.approx(1_153.26, abs=0.01)


def test_binance_cross_example_btc(btc_2021, eth_example):
    # LP_BTC = (WB - TMM + UPNL + cum - Q*EP) / (Q*mmr - Q), other contract = ETH at its mark:
    #   numerator   = 1,535,443.01 - 356,512.507822 - 448,192.88514 + 16,300 - 109.488*32,481.98
    #               = 1,535,443.01 - 356,512.507822 - 448,192.88514 + 16,300 - 3,556,387.02624
    #               = -2,809,349.409202
    #   denominator = 109.488 * (0.025 - 1) = -106.7508
    #   LP          = 26,316.893 -> 26,316.89 (rule book), notional 2.88M: in the 1M-10M tier
    tmm = m.maintenance_margin(ETH_Q * ETH_MP, eth_example)
    upnl = m.unrealized_pnl("long", ETH_Q, ETH_EP, ETH_MP)
    lp = m.cross_liquidation_price(WB, btc_2021, side=1, qty=BTC_Q, entry_price=BTC_EP,
                                   other_maintenance=tmm, other_unrealized_pnl=upnl)
    assert lp == pytest.approx(26_316.89, abs=0.01)
    # the same position given as a hedge-mode long leg
    leg = m.cross_liquidation_price(WB, btc_2021, long_qty=BTC_Q, long_entry_price=BTC_EP,
                                    other_maintenance=tmm, other_unrealized_pnl=upnl)
    assert leg == pytest.approx(26_316.89, abs=0.01)


def test_binance_example_isolated_with_same_wallet(btc_2021, eth_example):
    # ETH: (1,535,443.01 + 135,365 - 5,366,967.96636) / (-3,315.5811) = -3,696,159.95636 / -3,315.5811
    #      = 1,114.785 -> 1,114.78; notional 4.11M, 10% tier
    assert m.isolated_liquidation_price("long", ETH_Q, ETH_EP, WB, eth_example) == pytest.approx(1_114.78, abs=0.01)
    # BTC: (1,535,443.01 + 16,300 - 3,556,387.02624) / (-106.7508) = -2,004,644.01624 / -106.7508
    #      = 18,778.726 -> 18,778.73; notional 2.06M, 1M-10M tier
    assert m.isolated_liquidation_price(1, BTC_Q, BTC_EP, WB, btc_2021) == pytest.approx(18_778.73, abs=0.01)


# ------------------------------------------------------------------- isolated: auto-add sequence
# Wallet 10,000; long 5 @ 8,000 at 10x -> IM 4,000. Mark basis:
#   LP = (WB + 0 - 5*8,000) / (5*0.005 - 5) = (WB - 40,000) / -4.975
#   WB  4,000: -36,000 / -4.975 = 7,236.1809 ; WB 8,000: -32,000 / -4.975 = 6,432.1608
#   WB 10,000: -30,000 / -4.975 = 6,030.1508
# Entry basis: MM_entry = 40,000 * 0.005 = 200 ; LP = 8,000 - (WB - 200) / 5
#   4,000 -> 8,000 - 760 = 7,240 ; 8,000 -> 8,000 - 1,560 = 6,440 ; 10,000 -> 8,000 - 1,960 = 6,040
# Mirror short 5 @ 8,000 (same wallets): mark LP = (WB + 40,000) / (0.025 + 5) = (WB + 40,000) / 5.025
#   44,000/5.025 = 8,756.2189 ; 48,000/5.025 = 9,552.2388 ; 50,000/5.025 = 9,950.2488
#   entry LP = 8,000 + (WB - 200)/5 = 8,760 ; 9,560 ; 9,960
AUTO_WALLETS = [4_000.0, 8_000.0, 10_000.0]


@pytest.mark.parametrize(("side", "basis", "expected"), [
    ("long", "mark", [7_236.18, 6_432.16, 6_030.15]),
    ("long", "entry", [7_240.00, 6_440.00, 6_040.00]),
    ("short", "mark", [8_756.22, 9_552.24, 9_950.25]),
    ("short", "entry", [8_760.00, 9_560.00, 9_960.00]),
])
def test_auto_add_margin_sequence(half_pct, side, basis, expected):
    got = [m.isolated_liquidation_price(side, 5, 8_000, w, half_pct, mm_basis=basis) for w in AUTO_WALLETS]
    assert got == pytest.approx(expected, abs=0.01)
    # vectorised over the wallets
    arr = m.isolated_liquidation_price(side, 5, 8_000, np.array(AUTO_WALLETS), half_pct, mm_basis=basis)
    np.testing.assert_allclose(arr, expected, atol=0.01)


def test_auto_add_moves_lp_by_added_over_q(half_pct):
    # mark basis: a top-up of A moves LP by A / (Q*(1 - side*mmr)): 4,000/4.975 = 804.0201, 2,000/4.975 = 402.0101
    lp = [m.isolated_liquidation_price(1, 5, 8_000, w, half_pct) for w in AUTO_WALLETS]
    assert lp[0] - lp[1] == pytest.approx(4_000 / 4.975, rel=1e-12)
    assert lp[1] - lp[2] == pytest.approx(2_000 / 4.975, rel=1e-12)
    # entry basis: exactly A / Q: 800, 400
    lp = [m.isolated_liquidation_price(1, 5, 8_000, w, half_pct, mm_basis="entry") for w in AUTO_WALLETS]
    assert lp[0] - lp[1] == pytest.approx(800.0, rel=1e-12)
    assert lp[1] - lp[2] == pytest.approx(400.0, rel=1e-12)


def test_bad_mm_basis(half_pct):
    with pytest.raises(ValueError, match="mm_basis"):
        m.isolated_liquidation_price(1, 5, 8_000, 4_000, half_pct, mm_basis="last")


# ------------------------------------------------------------------- isolated on the real table
def test_isolated_lp_multi_tier_hand_cases(btc_2024):
    # long 100 @ 50,000 (5M notional) at 20x: WB 250,000; try tier 4 (1%, 11,450):
    #   (250,000 + 11,450 - 5,000,000) / (100*0.01 - 100) = -4,738,550 / -99 = 47,864.1414
    #   notional 4.79M lies in (3M, 12M]: tier 4 holds it
    assert m.isolated_liquidation_price(1, 100, 50_000, 250_000, btc_2024) == pytest.approx(47_864.1414, abs=1e-3)
    # short 100 @ 50,000, WB 250,000: (250,000 + 11,450 + 5,000,000) / (1 + 100) = 5,261,450 / 101 = 52,093.5644
    assert m.isolated_liquidation_price(-1, 100, 50_000, 250_000, btc_2024) == pytest.approx(52_093.5644, abs=1e-3)
    # long 13 @ 50,000 (650k notional, tier 3 at entry) at 10x, WB 65,000. The LP's notional is in tier 2:
    #   tier 2: (65,000 + 50 - 650,000) / (13*0.005 - 13) = -584,950 / -12.935 = 45,222.2652
    #           notional 13 * 45,222.27 = 587,889 <= 600,000: tier 2 holds it -> this one
    #   (tier 3 would give -584,050 / -12.9155 = 45,220.89, notional 587,871: not in tier 3's band)
    assert m.isolated_liquidation_price("buy", 13, 50_000, 65_000, btc_2024) == pytest.approx(45_222.2652, abs=1e-3)
    # entry basis: MM(650,000) = 650,000 * 0.0065 - 950 = 3,275 ; LP = 50,000 - (65,000 - 3,275)/13
    #   = 50,000 - 4,748.0769 = 45,251.9231
    assert m.isolated_liquidation_price(1, 13, 50_000, 65_000, btc_2024, mm_basis="entry") == pytest.approx(
        45_251.9231, abs=1e-3)


@pytest.mark.parametrize("basis", ["mark", "entry"])
def test_isolated_lp_nan_for_empty_position(btc_2024, basis):
    assert math.isnan(m.isolated_liquidation_price(1, 0, 8_000, 4_000, btc_2024, mm_basis=basis))
    assert math.isnan(m.isolated_liquidation_price(-1, 0, 8_000, 4_000, btc_2024, mm_basis=basis))
    out = m.isolated_liquidation_price(1, np.array([0.0, 5.0]), 8_000, 4_000, btc_2024, mm_basis=basis)
    assert math.isnan(out[0]) and out[1] > 0


@pytest.mark.parametrize("wallet", [40_000.0, 40_000.01, 80_000.0, 1e9])
def test_isolated_long_backed_by_its_entry_notional_cannot_be_liquidated(btc_2024, half_pct, wallet):
    # long 5 @ 8,000: entry notional 40,000; WB >= 40,000 -> the root is <= 0 -> NaN (mark basis)
    assert math.isnan(m.isolated_liquidation_price("long", 5, 8_000, wallet, btc_2024))
    assert math.isnan(m.isolated_liquidation_price("long", 5, 8_000, wallet, half_pct))
    assert math.isnan(m.bankruptcy_price("long", 5, 8_000, wallet))


@pytest.mark.parametrize("wallet", [0.0, 1.0, 40_000.0, 1e9, 1e12])
def test_isolated_short_lp_always_finite(btc_2024, wallet):
    lp = m.isolated_liquidation_price("short", 5, 8_000, wallet, btc_2024)
    assert math.isfinite(lp) and lp > 0


def test_isolated_short_with_empty_wallet(btc_2024):
    # (0 + 0 + 5*8,000) / (5*0.004 + 5) = 40,000 / 5.02 = 7,968.1275 (below the entry: liquidated at once)
    assert m.isolated_liquidation_price(-1, 5, 8_000, 0.0, btc_2024) == pytest.approx(7_968.1275, abs=1e-4)


# ------------------------------------------------------------------------------------ bankruptcy
def test_bankruptcy_price():
    # BP = EP - side * WB / Q: long 5 @ 8,000 WB 4,000 -> 8,000 - 800 = 7,200 ; short -> 8,800
    assert m.bankruptcy_price(1, 5, 8_000, 4_000) == pytest.approx(7_200.0)
    assert m.bankruptcy_price("short", 5, 8_000, 4_000) == pytest.approx(8_800.0)
    assert isinstance(m.bankruptcy_price(1, 5, 8_000, 4_000), float)
    # long fully backed: 8,000 - 40,000/5 = 0 -> NaN ; more -> negative -> NaN ; empty -> NaN
    assert math.isnan(m.bankruptcy_price(1, 5, 8_000, 40_000))
    assert math.isnan(m.bankruptcy_price(1, 5, 8_000, 50_000))
    assert math.isnan(m.bankruptcy_price(1, 0, 8_000, 4_000))
    np.testing.assert_allclose(m.bankruptcy_price(np.array([1, -1]), 5, 8_000, np.array([[1_000.0], [2_000.0]])),
                               [[7_800.0, 8_200.0], [7_600.0, 8_400.0]])


# -------------------------------------------------------------------------- scalars and arrays
def test_scalar_inputs_return_python_floats(btc_2024, half_pct):
    outs = {
        "unrealized_pnl": m.unrealized_pnl(1, 2, 100, 110),                       # 2*(110-100) = 20
        "isolated_equity": m.isolated_equity(1, 2, 100, 50, 110),                # 50 + 20 = 70
        "maintenance_margin": m.maintenance_margin(1_000_000, btc_2024),          # 6,500 - 950 = 5,550
        "initial_margin": m.initial_margin(1_000, 10),                            # 100
        "margin_balance": m.margin_balance(1_000, -250),                          # 750
        "account_mmr": m.account_mmr(75, 750),                                    # 0.1
        "account_imr": m.account_imr(150, 750),                                   # 0.2
        "free_balance": m.free_balance(1_000, 200, 500, 100),                     # 600
        "max_addable_margin": m.max_addable_margin(600),                          # 600
        "max_removable_margin": m.max_removable_margin(1, 5, 8_000, 6_000, 8_000, 10),  # 2,000
        "bankruptcy_price": m.bankruptcy_price(1, 5, 8_000, 4_000),               # 7,200
        "isolated_liquidation_price": m.isolated_liquidation_price(1, 5, 8_000, 4_000, half_pct),  # 7,236.18
        "cross_liquidation_price": m.cross_liquidation_price(4_000, half_pct, side=1, qty=5, entry_price=8_000),
    }
    expected = {"unrealized_pnl": 20, "isolated_equity": 70, "maintenance_margin": 5_550, "initial_margin": 100,
                "margin_balance": 750, "account_mmr": 0.1, "account_imr": 0.2, "free_balance": 600,
                "max_addable_margin": 600, "max_removable_margin": 2_000, "bankruptcy_price": 7_200,
                "isolated_liquidation_price": 7_236.18, "cross_liquidation_price": 7_236.18}
    for name, value in outs.items():
        assert type(value) is float, name
        assert value == pytest.approx(expected[name], abs=0.01), name


def test_arrays_broadcast(btc_2024):
    sides = np.array([1, -1])
    marks = np.array([[110.0], [90.0]])
    # long/short 2 @ 100 at marks 110 and 90: [[+20, -20], [-20, +20]]
    pnl = m.unrealized_pnl(sides, 2, 100, marks)
    assert isinstance(pnl, np.ndarray) and pnl.shape == (2, 2)
    np.testing.assert_allclose(pnl, [[20, -20], [-20, 20]])
    np.testing.assert_allclose(m.isolated_equity(sides, 2, 100, 50, marks), [[70, 30], [30, 70]])
    np.testing.assert_allclose(m.initial_margin([1_000, 2_000], [10, 20]), [100, 100])
    np.testing.assert_allclose(m.margin_balance(1_000, np.array([-100, 50])), [900, 1_050])
    # MM at 50,000 / 600,000 / 2e9: 200 ; 3,000 - 50 = 2,950 ; 1e9 - 421,481,450 = 578,518,550
    np.testing.assert_allclose(m.maintenance_margin(np.array([50e3, 600e3, 2e9]), btc_2024),
                               [200, 2_950, 578_518_550])
    lp = m.isolated_liquidation_price(["long", "short"], 5, 8_000, [[4_000.0], [8_000.0]], one_tier(0.005, 100))
    np.testing.assert_allclose(lp, [[7_236.18, 8_756.22], [6_432.16, 9_552.24]], atol=0.01)
    cross = m.cross_liquidation_price(np.array([4_000.0, 8_000.0]), one_tier(0.005, 100), side=["long", "short"],
                                      qty=5, entry_price=8_000)
    np.testing.assert_allclose(cross, [7_236.18, 9_552.24], atol=0.01)


# --------------------------------------------------------------------------------- side parsing
@pytest.mark.parametrize(("side", "sign"), [
    (1, 1), (-1, -1), (np.int64(1), 1), (np.int8(-1), -1), (1.0, 1), (-1.0, -1),
    ("long", 1), ("short", -1), ("buy", 1), ("sell", -1), ("LONG", 1), (" Sell ", -1),
])
def test_side_spellings(side, sign):
    # 2 @ 100, mark 110: long +20, short -20
    assert m.unrealized_pnl(side, 2, 100, 110) == pytest.approx(20.0 * sign)
    assert m.bankruptcy_price(side, 2, 100, 50) == pytest.approx(100 - sign * 25)


def test_side_arrays_of_strings():
    np.testing.assert_allclose(m.unrealized_pnl(["long", "short", "buy", "sell"], 2, 100, 110), [20, -20, 20, -20])
    np.testing.assert_allclose(m.unrealized_pnl(np.array(["buy", "sell"]), 2, 100, 110), [20, -20])
    np.testing.assert_allclose(m.unrealized_pnl(np.array(["long", -1], dtype=object), 2, 100, 110), [20, -20])


@pytest.mark.parametrize("side", [0, 2, -2, 0.5, "up", "flat", "", None, float("nan"), [1, 0], ["long", "hold"],
                                  np.array([1.0, 0.0])])
def test_bad_side_raises(side):
    with pytest.raises(ValueError, match="side"):
        m.unrealized_pnl(side, 2, 100, 110)


def test_bool_side_raises():
    with pytest.raises(ValueError, match="side"):
        m.unrealized_pnl(True, 2, 100, 110)


# ----------------------------------------------------------------------------------- negative qty
@pytest.mark.parametrize("call", [
    lambda b: m.isolated_liquidation_price(1, -1, 100, 10, b),
    lambda b: m.isolated_liquidation_price(-1, np.array([1.0, -2.0]), 100, 10, b, mm_basis="entry"),
    lambda b: m.bankruptcy_price(1, -1, 100, 10),
    lambda b: m.cross_liquidation_price(10, b, side=1, qty=-1, entry_price=100),
    lambda b: m.cross_liquidation_price(10, b, long_qty=-1, long_entry_price=100),
    lambda b: m.cross_liquidation_price(10, b, short_qty=-1, short_entry_price=100),
], ids=["iso-lp", "iso-lp-entry-array", "bankruptcy", "cross-qty", "cross-long-leg", "cross-short-leg"])
def test_negative_qty_raises(btc_2024, call):
    with pytest.raises(ValueError, match="qty must be >= 0"):
        call(btc_2024)


@pytest.mark.parametrize("call", [
    lambda: m.unrealized_pnl(1, -1, 100, 110),
    lambda: m.isolated_equity(1, -1, 100, 10, 110),
    lambda: m.max_removable_margin(1, -1, 100, 10, 110, 10),
], ids=["unrealized_pnl", "isolated_equity", "max_removable_margin"])
def test_negative_qty_raises_everywhere(call):
    with pytest.raises(ValueError, match="qty"):
        call()


# ------------------------------------------------------------------------------- account ratios
def test_account_ratios():
    assert m.account_mmr(100, 1_000) == pytest.approx(0.1)
    assert m.account_imr(250, 1_000) == pytest.approx(0.25)
    assert m.account_mmr(1_000, 1_000) == pytest.approx(1.0)  # the cross book liquidates at 100%
    for mb in (0.0, -5.0):  # infinite when MB <= 0
        assert m.account_mmr(100, mb) == math.inf
        assert m.account_imr(100, mb) == math.inf
        assert m.account_mmr(0, mb) == 0.0  # no maintenance margin at all: nothing can breach
    out = m.account_mmr(np.array([100.0, 100.0, 50.0]), np.array([1_000.0, 0.0, -1.0]))
    np.testing.assert_array_equal(out, [0.1, math.inf, math.inf])
    assert m.account_mmr(0, 1_000) == 0.0


def test_free_balance_and_addable():
    # 1,000 + 200 - 500 - 100 = 600
    assert m.free_balance(1_000, 200, 500, 100) == pytest.approx(600.0)
    # 1,000 - 800 - 500 - 0 = -300 -> floored at 0
    assert m.free_balance(1_000, -800, 500, 0) == 0.0
    np.testing.assert_allclose(m.free_balance(np.array([1_000.0, 100.0]), 0, 200, 0), [800.0, 0.0])
    assert m.max_addable_margin(-5.0) == 0.0
    assert m.max_addable_margin(600.0) == 600.0


@pytest.mark.parametrize(("side", "wallet", "mark", "expected"), [
    # max(0, min(WB, WB + side*Q*(MP - EP) - Q*MP/L)), Q = 5, EP = 8,000, L = 10
    (1, 4_000, 8_000, 0.0),       # min(4,000, 4,000 + 0 - 4,000) = 0
    (1, 6_000, 8_000, 2_000.0),   # min(6,000, 6,000 - 4,000) = 2,000
    (1, 4_000, 8_800, 3_600.0),   # min(4,000, 4,000 + 4,000 - 4,400) = 3,600
    (1, 4_000, 10_000, 4_000.0),  # min(4,000, 4,000 + 10,000 - 5,000 = 9,000) = 4,000
    (1, 4_000, 7_000, 0.0),       # 4,000 - 5,000 - 3,500 < 0 -> 0
    (-1, 4_000, 7_600, 2_200.0),  # min(4,000, 4,000 + 2,000 - 3,800) = 2,200
    (-1, 4_000, 7_000, 4_000.0),  # min(4,000, 4,000 + 5,000 - 3,500 = 5,500) = 4,000
    (-1, 4_000, 8_400, 0.0),      # 4,000 - 2,000 - 4,200 < 0 -> 0
])
def test_max_removable_margin(side, wallet, mark, expected):
    assert m.max_removable_margin(side, 5, 8_000, wallet, mark, 10) == pytest.approx(expected, abs=1e-9)


def test_initial_margin():
    assert m.initial_margin(40_000, 10) == pytest.approx(4_000.0)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="leverage must be > 0"):
            m.initial_margin(1_000, bad)
    with pytest.raises(ValueError, match="leverage must be > 0"):
        m.initial_margin([1_000, 1_000], [10, 0])


# ------------------------------------------------------------------------------- cross, by hand
@pytest.mark.parametrize(("legs", "wallet", "expected"), [
    # one tier, mmr 1%, cum 0. MB = W + sum s*Q*(P - EP); MM = 0.01 * P * (QL + QS).
    # long 2 @ 100, short 1 @ 100: W + 2(P-100) - (P-100) - 0.03P = W - 100 + 0.97P = 0
    #   W = 50 -> P = 50/0.97 = 51.546392
    (dict(long_qty=2, long_entry_price=100, short_qty=1, short_entry_price=100), 50.0, 50 / 0.97),
    #   W = 100 -> P = 0 ; W = 200 -> P < 0: no liquidation -> NaN
    (dict(long_qty=2, long_entry_price=100, short_qty=1, short_entry_price=100), 100.0, math.nan),
    (dict(long_qty=2, long_entry_price=100, short_qty=1, short_entry_price=100), 200.0, math.nan),
    # long 2 @ 110, short 1 @ 90, W 50: 50 + 2(P-110) - (P-90) - 0.03P = -80 + 0.97P -> P = 80/0.97 = 82.474227
    (dict(long_qty=2, long_entry_price=110, short_qty=1, short_entry_price=90), 50.0, 80 / 0.97),
    # long 1 @ 100, short 2 @ 100, W 50: 50 + (P-100) - 2(P-100) - 0.03P = 150 - 1.03P -> P = 150/1.03 = 145.631068
    (dict(long_qty=1, long_entry_price=100, short_qty=2, short_entry_price=100), 50.0, 150 / 1.03),
    # long 1, short 1 @ 100 (flat), W 10: 10 - 0.02P = 0 -> P = 500 (MM grows with price)
    (dict(long_qty=1, long_entry_price=100, short_qty=1, short_entry_price=100), 10.0, 500.0),
    # one-way long 2 @ 100 and a short leg 1 @ 100 (same algebra as the first case)
    (dict(side=1, qty=2, entry_price=100, short_qty=1, short_entry_price=100), 50.0, 50 / 0.97),
    # one-way short 3 @ 100, W 30: 30 - 3(P-100) - 0.03P = 330 - 3.03P -> P = 108.910891
    (dict(side="sell", qty=3, entry_price=100), 30.0, 330 / 3.03),
])
def test_cross_lp_hedge_hand_cases(one_pct, legs, wallet, expected):
    lp = m.cross_liquidation_price(wallet, one_pct, **legs)
    if math.isnan(expected):
        assert math.isnan(lp)
    else:
        assert lp == pytest.approx(expected, rel=1e-12)


def test_cross_lp_others_shift_the_wallet(one_pct):
    # W 80, TMM 40, UPNL +10: W - TMM + UPNL = 50, as in the first hand case: 50/0.97
    lp = m.cross_liquidation_price(80.0, one_pct, long_qty=2, long_entry_price=100, short_qty=1,
                                   short_entry_price=100, other_maintenance=40.0, other_unrealized_pnl=10.0)
    assert lp == pytest.approx(50 / 0.97, rel=1e-12)


def test_cross_lp_no_position_is_nan(btc_2024):
    assert math.isnan(m.cross_liquidation_price(1_000.0, btc_2024))
    assert math.isnan(m.cross_liquidation_price(1_000.0, btc_2024, side=1, qty=0.0, entry_price=100.0))


def test_cross_lp_lone_position_equals_isolated_auto_add_case(half_pct):
    # section 3's case read as cross: W 4,000, long 5 @ 8,000 -> 7,236.18 (same algebra as isolated)
    assert m.cross_liquidation_price(4_000, half_pct, side=1, qty=5, entry_price=8_000) == pytest.approx(
        7_236.18, abs=0.01)


# Regression: a position's tier at a candidate price used to be probed at the piece's upper edge
# q * (cap / q), which rounds above the cap for some q (0.3 * (50,000 / 0.3) = 50,000.00000000001),
# so the band below that edge was solved with the NEXT tier's (mmr, cum) (fixed in 34383d8).
# Hand values (BTCUSDT Oct 2024, tier 1 = 0.4%, cum 0):
#   long 0.3 @ 100,000, W 3,000:  (3,000 - 30,000) / (0.3*0.004 - 0.3) = -27,000 / -0.2988 = 90,361.4458
#                                 notional 27,108 <= 50,000 (tier 1). The tier-2 line would give
#                                 (3,000 + 50 - 30,000) / (0.0015 - 0.3) = -26,950 / -0.2985 = 90,284.76.
#   short 0.3 @ 100,000, W 3,000: (3,000 + 30,000) / (0.3*0.004 + 0.3) = 33,000 / 0.3012 = 109,561.7530
#                                 notional 32,869 (tier 1); the tier-2 line would give 109,618.57.
@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(side=1, qty=0.3, entry_price=100_000), 27_000 / 0.2988),
    (dict(side=-1, qty=0.3, entry_price=100_000), 33_000 / 0.3012),
    (dict(long_qty=0.3, long_entry_price=100_000), 27_000 / 0.2988),
], ids=["one-way-long", "one-way-short", "hedge-long-leg"])
def test_cross_lp_tier_at_band_edge(btc_2024, kwargs, expected):
    assert m.cross_liquidation_price(3_000.0, btc_2024, **kwargs) == pytest.approx(expected, rel=1e-9)


def test_isolated_lp_band_edge_cases(btc_2024):
    # the isolated solver on the same cases (hand values in the comment above)
    assert m.isolated_liquidation_price(1, 0.3, 100_000, 3_000, btc_2024) == pytest.approx(27_000 / 0.2988, rel=1e-12)
    assert m.isolated_liquidation_price(-1, 0.3, 100_000, 3_000, btc_2024) == pytest.approx(33_000 / 0.3012,
                                                                                            rel=1e-12)


# ------------------------------------------------------------------------------------ properties
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
sides = st.sampled_from([1, -1])
qtys = st.floats(min_value=0.001, max_value=1_000.0, allow_nan=False, allow_infinity=False)
prices = st.floats(min_value=1.0, max_value=1e5, allow_nan=False, allow_infinity=False)
wallet_fracs = st.floats(min_value=0.0, max_value=2.0, allow_nan=False, allow_infinity=False)  # of Q*EP


@SETTINGS
@given(side=sides, qty=qtys, price=prices, frac=wallet_fracs)
def test_property_equity_equals_mm_at_isolated_lp(btc_2024, side, qty, price, frac):
    wallet = frac * qty * price
    lp = m.isolated_liquidation_price(side, qty, price, wallet, btc_2024)
    entry_notional = qty * price
    if side == 1 and wallet >= entry_notional:
        assert math.isnan(lp)  # fully backed long: cannot be liquidated
        return
    if side == -1 or wallet <= entry_notional * (1 - 1e-9):
        assert math.isfinite(lp) and lp > 0
    if math.isnan(lp):  # a long backed to within rounding of its entry notional
        return
    equity = wallet + side * qty * (lp - price)  # section 3, by hand
    mm = mm_reference(qty * lp)  # the rule book's table, not the code's
    # relative to the size of the terms that were added (cancellation in W - Q*EP)
    scale = abs(mm) + 1e-9 * (wallet + entry_notional + qty * lp)
    assert abs(equity - mm) <= 1e-6 * scale
    # and the code's own equity agrees
    assert m.isolated_equity(side, qty, price, wallet, lp) == pytest.approx(equity, rel=1e-12, abs=1e-9)


def _assert_same_lp(a: float, b: float) -> None:
    if math.isnan(a) or math.isnan(b):
        assert math.isnan(a) and math.isnan(b), (a, b)
    else:
        assert a == pytest.approx(b, rel=1e-9)


@SETTINGS
@given(side=sides, qty=qtys, price=prices, frac=wallet_fracs,
       mmr=st.sampled_from([0.004, 0.005, 0.01, 0.05]))
def test_property_cross_equals_isolated_one_tier(side, qty, price, frac, mmr):
    table = one_tier(mmr, 10)
    wallet = frac * qty * price
    _assert_same_lp(m.cross_liquidation_price(wallet, table, side=side, qty=qty, entry_price=price),
                    m.isolated_liquidation_price(side, qty, price, wallet, table))


@SETTINGS
@given(side=sides, qty=qtys, price=prices, frac=wallet_fracs)
@example(side=1, qty=0.3, price=100_000.0, frac=0.1)  # the band-edge regression case above: W 3,000
@example(side=-1, qty=0.3, price=100_000.0, frac=0.1)
def test_property_cross_equals_isolated_btc_table(btc_2024, side, qty, price, frac):
    wallet = frac * qty * price
    _assert_same_lp(m.cross_liquidation_price(wallet, btc_2024, side=side, qty=qty, entry_price=price),
                    m.isolated_liquidation_price(side, qty, price, wallet, btc_2024))


@SETTINGS
@given(ql=qtys, el=prices, qs=qtys, es=prices, frac=wallet_fracs)
def test_property_cross_hedge_root_is_at_maintenance(btc_2024, ql, el, qs, es, frac):
    # hedge legs on the real table: where a price is returned, MB = MM there (rule book MM, both legs charged)
    wallet = frac * (ql * el + qs * es)
    lp = m.cross_liquidation_price(wallet, btc_2024, long_qty=ql, long_entry_price=el, short_qty=qs,
                                   short_entry_price=es)
    if math.isnan(lp):
        return
    assert lp > 0
    balance = wallet + ql * (lp - el) - qs * (lp - es)
    mm = mm_reference(ql * lp) + mm_reference(qs * lp)
    scale = abs(mm) + 1e-9 * (wallet + ql * el + qs * es + (ql + qs) * lp)
    assert abs(balance - mm) <= 1e-6 * scale
