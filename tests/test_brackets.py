"""Tests of riskcore.brackets: building, validating and looking up maintenance-margin tiers.

Every expected number is taken from MARGIN_RULES.md or worked out by hand in a comment;
none is produced by the code under test.
"""
from __future__ import annotations

import copy
import gzip
import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from riskcore import Brackets, BracketError

# ---------------------------------------------------------------------------------------------
# The BTCUSDT table of MARGIN_RULES.md section 2 (Binance, Oct 2024), typed from the rule book.
BTC24_CAPS = [50e3, 600e3, 3e6, 12e6, 70e6, 100e6, 230e6, 480e6, 600e6, 800e6, 1.2e9, 1.8e9]
BTC24_FLOORS = [0.0] + BTC24_CAPS[:-1]
BTC24_MMR = [0.004, 0.005, 0.0065, 0.01, 0.02, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
BTC24_LEV = [125, 100, 75, 50, 25, 20, 10, 5, 4, 3, 2, 1]
# cum_n = cum_(n-1) + floor_n * (mmr_n - mmr_(n-1)), by hand:
#  1: 0
#  2: 0          +        50,000 * (0.005  - 0.004 ) = 0          +          50 =          50
#  3: 50         +       600,000 * (0.0065 - 0.005 ) = 50         +         900 =         950
#  4: 950        +     3,000,000 * (0.01   - 0.0065) = 950        +      10,500 =      11,450
#  5: 11,450     +    12,000,000 * (0.02   - 0.01  ) = 11,450     +     120,000 =     131,450
#  6: 131,450    +    70,000,000 * (0.025  - 0.02  ) = 131,450    +     350,000 =     481,450
#  7: 481,450    +   100,000,000 * (0.05   - 0.025 ) = 481,450    +   2,500,000 =   2,981,450
#  8: 2,981,450  +   230,000,000 * (0.10   - 0.05  ) = 2,981,450  +  11,500,000 =  14,481,450
#  9: 14,481,450 +   480,000,000 * (0.125  - 0.10  ) = 14,481,450 +  12,000,000 =  26,481,450
# 10: 26,481,450 +   600,000,000 * (0.15   - 0.125 ) = 26,481,450 +  15,000,000 =  41,481,450
# 11: 41,481,450 +   800,000,000 * (0.25   - 0.15  ) = 41,481,450 +  80,000,000 = 121,481,450
# 12: 121,481,450 + 1,200,000,000 * (0.50  - 0.25  ) = 121,481,450 + 300,000,000 = 421,481,450
BTC24_CUM = [0.0, 50.0, 950.0, 11_450.0, 131_450.0, 481_450.0, 2_981_450.0, 14_481_450.0,
             26_481_450.0, 41_481_450.0, 121_481_450.0, 421_481_450.0]


def btc24_binance_strings():
    """The same table as Binance's endpoint returns it: every value a string."""
    return [{"bracket": str(i + 1), "initialLeverage": str(BTC24_LEV[i]), "notionalCap": f"{BTC24_CAPS[i]:.0f}",
             "notionalFloor": f"{BTC24_FLOORS[i]:.0f}", "maintMarginRatio": repr(BTC24_MMR[i]),
             "cum": repr(BTC24_CUM[i])} for i in range(12)]


# A small valid table for the validation tests, cum by hand:
#  tier 1: 0 -     10,000, mmr 1%,  lev 50, cum 0
#  tier 2: 10,000 -  50,000, mmr 2%,  lev 25, cum 0   +  10,000 * (0.02 - 0.01) = 100
#  tier 3: 50,000 - 200,000, mmr 5%,  lev 10, cum 100 +  50,000 * (0.05 - 0.02) = 1,600
#  tier 4: 200,000 - 1,000,000, mmr 10%, lev 5, cum 1,600 + 200,000 * (0.10 - 0.05) = 11,600
def small_records(with_cum=True):
    rows = [
        dict(notional_floor=0.0, notional_cap=10_000.0, mmr=0.01, max_leverage=50.0, cum=0.0),
        dict(notional_floor=10_000.0, notional_cap=50_000.0, mmr=0.02, max_leverage=25.0, cum=100.0),
        dict(notional_floor=50_000.0, notional_cap=200_000.0, mmr=0.05, max_leverage=10.0, cum=1_600.0),
        dict(notional_floor=200_000.0, notional_cap=1_000_000.0, mmr=0.10, max_leverage=5.0, cum=11_600.0),
    ]
    if not with_cum:
        for r in rows:
            del r["cum"]
    return rows


# ------------------------------------------------------------------------------ the shipped table
def test_load_oct_2024_table_is_the_rule_book_table(btc_2024):
    b = btc_2024
    assert b.symbol == "BTCUSDT"
    assert b.effective_date == "2024-05-30"  # the newest shipped table on or before 2024-10-31
    assert b.n_tiers == len(b) == 12
    np.testing.assert_array_equal(b.notional_floor, BTC24_FLOORS)
    np.testing.assert_array_equal(b.notional_cap, BTC24_CAPS)
    np.testing.assert_array_equal(b.mmr, BTC24_MMR)
    np.testing.assert_array_equal(b.max_leverage, BTC24_LEV)
    np.testing.assert_allclose(b.cum, BTC24_CUM, rtol=0, atol=1e-6)
    for name in ("notional_floor", "notional_cap", "mmr", "max_leverage", "cum"):
        assert getattr(b, name).dtype == np.float64


def test_load_2021_table_of_the_cross_example(btc_2021):
    b = btc_2021
    assert b.effective_date == "2022-05-21" and b.n_tiers == 10
    # MARGIN_RULES.md section 4: caps 50k/250k/1M/10M/20M/50M/100M/200M/300M/500M (last one open-ended,
    # written as 500M), mmr 0.4/0.5/1/2.5/5/10/12.5/15/25/50 %.
    np.testing.assert_array_equal(b.notional_cap, [50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6, 500e6])
    np.testing.assert_array_equal(b.mmr, [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50])
    # the 1M-10M tier: mmr 2.5%, cum = 0 + 50,000*0.001 + 250,000*0.005 + 1,000,000*0.015
    #                                 = 50 + 1,250 + 15,000 = 16,300
    assert b.tier_index(5e6) == 3
    assert b.mmr_cum(5e6) == (pytest.approx(0.025), pytest.approx(16_300.0, abs=1e-6))


def test_load_picks_newest_table_on_or_before_date():
    assert Brackets.load("BTCUSDT", "2022-05-21").effective_date == "2022-05-21"  # the day itself counts
    assert Brackets.load("BTCUSDT", "2022-11-24").effective_date == "2022-05-21"
    assert Brackets.load("BTCUSDT", pd.Timestamp("2022-11-25")).effective_date == "2022-11-25"
    assert Brackets.load("BTCUSDT").effective_date == "2025-06-19"  # no date: the newest
    assert Brackets.load("ETHUSDT", "2024-10-31").effective_date == "2024-05-30"


def test_load_before_oldest_table_raises():
    with pytest.raises(BracketError, match=r"BTCUSDT.*2022-05-20.*oldest is from 2022-05-21"):
        Brackets.load("BTCUSDT", "2022-05-20")


def test_load_unknown_symbol_raises():
    with pytest.raises(BracketError, match=r"no shipped binance bracket table for 'NOPEUSDT'"):
        Brackets.load("NOPEUSDT")
    with pytest.raises(BracketError, match=r"BTCUSDT"):
        Brackets.load("BTCUSDT", venue="nowhere")


# ------------------------------------------------------------------------------------ look-ups
def _tier_cases():
    """(notional, 0-based tier) at both sides of every edge, inside every tier and beyond the last cap."""
    cases = [(0.0, 0), (1.0, 0)]
    for k, cap in enumerate(BTC24_CAPS):
        cases.append((cap, k))  # the band is (floor, cap]: the cap itself belongs to tier k
        cases.append(((BTC24_FLOORS[k] + cap) / 2, k))  # mid-tier
        cases.append((math.nextafter(cap, math.inf), min(k + 1, 11)))  # just above: next tier
        cases.append((cap + 1.0, min(k + 1, 11)))
    cases += [(5e9, 11), (1e15, 11)]  # above the last cap: the last tier applies
    return cases


@pytest.mark.parametrize(("notional", "k"), _tier_cases())
def test_tier_lookup_btc_2024(btc_2024, notional, k):
    assert btc_2024.tier_index(notional) == k
    rate, cum = btc_2024.mmr_cum(notional)
    assert rate == BTC24_MMR[k]
    assert cum == pytest.approx(BTC24_CUM[k], abs=1e-6)
    assert btc_2024.max_leverage_for(notional) == BTC24_LEV[k]


def test_tier_lookup_vectorised(btc_2024):
    notionals = np.array([[0.0, 50_000.0, 50_000.01], [600_000.0, 600_001.0, 2e9]])
    np.testing.assert_array_equal(btc_2024.tier_index(notionals), [[0, 0, 1], [1, 2, 11]])
    rate, cum = btc_2024.mmr_cum(notionals)
    np.testing.assert_array_equal(rate, [[0.004, 0.004, 0.005], [0.005, 0.0065, 0.5]])
    np.testing.assert_allclose(cum, [[0, 0, 50], [50, 950, 421_481_450]], atol=1e-6)
    assert isinstance(btc_2024.tier_index(10.0), int)


@pytest.mark.parametrize(("notional", "expected"), [
    (0.0, 0.0),
    (10_000.0, 40.0),                   # 10,000 * 0.004 - 0
    (50_000.0, 200.0),                  # 50,000 * 0.004 - 0
    (100_000.0, 450.0),                 # 100,000 * 0.005 - 50
    (1_000_000.0, 5_550.0),             # 1,000,000 * 0.0065 - 950
    (5_000_000.0, 38_550.0),            # 5,000,000 * 0.01 - 11,450
    (2e9, 578_518_550.0),               # above the last cap: 2e9 * 0.5 - 421,481,450
])
def test_maintenance_margin_values(btc_2024, notional, expected):
    assert btc_2024.maintenance_margin(notional) == pytest.approx(expected, rel=1e-12, abs=1e-6)


@pytest.mark.parametrize("k", range(11))
def test_maintenance_margin_continuous_at_every_cap(btc_2024, k):
    cap = BTC24_CAPS[k]
    left = btc_2024.maintenance_margin(cap)  # tier k
    right = btc_2024.maintenance_margin(math.nextafter(cap, math.inf))  # tier k + 1
    assert btc_2024.tier_index(cap) == k and btc_2024.tier_index(math.nextafter(cap, math.inf)) == k + 1
    assert left == pytest.approx(right, rel=0, abs=1e-6)
    # and both equal the hand value cap * mmr_k - cum_k
    assert left == pytest.approx(cap * BTC24_MMR[k] - BTC24_CUM[k], rel=0, abs=1e-6)


def test_negative_notional_refused(btc_2024):
    with pytest.raises(ValueError, match="notional must be >= 0"):
        btc_2024.tier_index(-1.0)
    with pytest.raises(ValueError, match="notional must be >= 0"):
        btc_2024.maintenance_margin(np.array([1.0, -5.0]))


@pytest.mark.parametrize(("leverage", "expected"), [
    (125, 50_000.0),      # only tier 1 allows 125x
    (126, 0.0),           # no tier allows more than 125x
    (101, 50_000.0),      # tier 2 allows 100x only
    (100, 600_000.0),
    (75.5, 600_000.0),
    (75, 3_000_000.0),
    (50, 12_000_000.0),
    (20, 100_000_000.0),
    (2.5, 800_000_000.0),  # tiers down to 3x (tier 10, cap 800M)
    (1, 1.8e9),           # every tier allows 1x
    (0.5, 1.8e9),
])
def test_max_notional(btc_2024, leverage, expected):
    got = btc_2024.max_notional(leverage)
    assert isinstance(got, float)
    assert got == expected


def test_max_notional_vectorised(btc_2024):
    np.testing.assert_array_equal(btc_2024.max_notional(np.array([126, 125, 100, 1])), [0, 50e3, 600e3, 1.8e9])


# ---------------------------------------------------------------------------------- validation
def _replace(rows, tier, **changes):
    rows = copy.deepcopy(rows)
    rows[tier - 1].update(changes)
    return rows


def test_small_table_valid_with_and_without_cum():
    given = Brackets.from_records(small_records(with_cum=True))
    derived = Brackets.from_records(small_records(with_cum=False))
    np.testing.assert_allclose(derived.cum, [0, 100, 1_600, 11_600], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(given.cum, [0, 100, 1_600, 11_600])
    # all cums None counts as "not given"
    rows = small_records()
    for r in rows:
        r["cum"] = None
    np.testing.assert_allclose(Brackets.from_records(rows).cum, [0, 100, 1_600, 11_600], atol=1e-9)


@pytest.mark.parametrize(("rows", "pattern"), [
    (_replace(small_records(), 1, notional_floor=1.0), r"tier 1\b.*first floor must be 0"),
    (_replace(small_records(), 3, notional_floor=60_000.0), r"tier 3\b.*floor must equal the previous tier's cap"),
    (_replace(small_records(), 3, notional_floor=40_000.0), r"tier 3\b.*floor must equal the previous tier's cap"),
    (_replace(small_records(), 2, notional_cap=5_000.0), r"tier 2\b.*cap must be above floor"),
    (_replace(small_records(with_cum=False), 3, mmr=0.015), r"tier 3\b.*mmr 0\.015 is below the previous"),
    # tier 2 at 15x (allowed: 2% < 1/15), tier 3 at 18x > 15x (5% < 1/18 = 5.56%, so only the order is wrong)
    (_replace(_replace(small_records(with_cum=False), 2, max_leverage=15.0), 3, max_leverage=18.0),
     r"tier 3\b.*max leverage 18 is above the previous tier's 15"),
    (_replace(small_records(), 3, cum=1_601.0), r"tier 3\b.*cum .*continuity rule"),
    (_replace(small_records(), 2, cum=99.0), r"tier 2\b.*cum .*continuity rule"),
    # mmr == 1/max_leverage (4% at 25x) and mmr > 1/max_leverage (3% at 50x)
    (_replace(small_records(with_cum=False), 2, mmr=0.04), r"tier 2\b.*not below 1/max_leverage"),
    (_replace(small_records(with_cum=False), 1, mmr=0.03), r"tier 1\b.*not below 1/max_leverage"),
    (_replace(small_records(with_cum=False), 4, mmr=0.0), r"tier 4\b.*strictly between 0 and 1"),
    (_replace(small_records(with_cum=False), 4, max_leverage=0.5), r"tier 4\b.*at least 1"),
    (_replace(small_records(), 2, mmr=float("nan")), r"tier 2\b.*mmr is .*nan.*not a finite number"),
    (_replace(small_records(), 4, notional_cap=float("nan")), r"tier 4\b.*notional_cap is .*nan"),
    (_replace(small_records(), 3, max_leverage=float("inf")), r"tier 3\b.*max_leverage is .*inf"),
    (_replace(small_records(), 2, cum=float("nan")), r"tier 2\b.*cum"),
    (_replace(small_records(), 3, mmr="abc"), r"'mmr' is not numeric"),
], ids=["first-floor", "gap", "overlap", "cap<=floor", "mmr-decreasing", "leverage-increasing",
        "cum-off-tier3", "cum-off-tier2", "mmr=1/lev", "mmr>1/lev", "mmr=0", "lev<1", "nan-mmr",
        "nan-cap", "inf-lev", "nan-cum", "non-numeric"])
def test_validation_errors_name_the_tier(rows, pattern):
    with pytest.raises(BracketError, match=pattern):
        Brackets.from_records(rows)


def test_real_table_with_cum_off_by_one_in_tier_3_refused():
    # BTCUSDT Oct 2024 with tier 3's cum 950 -> 951: the rule gives 950, so tier 3 is named.
    cum = list(BTC24_CUM)
    cum[2] += 1.0
    with pytest.raises(BracketError, match=r"tier 3 \(notional 600,000 to 3,000,000\).*cum\b.*951.*continuity rule"):
        Brackets(BTC24_FLOORS, BTC24_CAPS, BTC24_MMR, BTC24_LEV, cum, symbol="BTCUSDT")
    # the exact values pass
    Brackets(BTC24_FLOORS, BTC24_CAPS, BTC24_MMR, BTC24_LEV, BTC24_CUM, symbol="BTCUSDT")


def test_error_names_the_symbol():
    with pytest.raises(BracketError, match=r"for XYZUSDT: tier 1"):
        Brackets.from_records(_replace(small_records(), 1, notional_floor=5.0), symbol="XYZUSDT")


def test_missing_keys():
    rows = small_records()
    del rows[1]["mmr"]
    with pytest.raises(BracketError, match=r"tier 2 has no 'mmr'"):
        Brackets.from_records(rows)
    rows = small_records()
    del rows[2]["cum"]  # cum given for some tiers only
    with pytest.raises(BracketError, match=r"tier 3 has no cum while others do"):
        Brackets.from_records(rows)
    data = btc24_binance_strings()
    del data[1]["maintMarginRatio"]
    with pytest.raises(BracketError, match=r"tier 2 has no 'maintMarginRatio'"):
        Brackets.from_binance(data)
    frame = pd.DataFrame(small_records()).drop(columns=["max_leverage"])
    with pytest.raises(BracketError, match=r"lacks column.*max_leverage"):
        Brackets.from_frame(frame)


def test_mismatched_column_lengths():
    with pytest.raises(BracketError, match=r"'notional_cap' has 1 values, expected 2"):
        Brackets([0, 10], [10], [0.01, 0.02], [50, 25])
    with pytest.raises(BracketError, match=r"'cum' has 1 values, expected 2"):
        Brackets([0, 10], [10, 20], [0.01, 0.02], [50, 25], [0])


def test_empty_tables():
    with pytest.raises(BracketError, match="no records"):
        Brackets.from_records([])
    with pytest.raises(BracketError, match="no tiers"):
        Brackets([], [], [], [])
    with pytest.raises(BracketError, match="no tiers"):
        Brackets.from_frame(pd.DataFrame(columns=["notional_floor", "notional_cap", "mmr", "max_leverage"]))
    with pytest.raises(BracketError, match="non-empty list"):
        Brackets.from_binance([])
    with pytest.raises(BracketError, match="non-empty list"):
        Brackets.from_binance({"symbol": "BTCUSDT", "brackets": []})


# -------------------------------------------------------------------------------- constructors
def test_from_frame_matches_from_records():
    frame = pd.DataFrame(small_records())
    a = Brackets.from_frame(frame, symbol="T")
    b = Brackets.from_records(small_records(), symbol="T")
    assert a == b
    c = Brackets.from_frame(frame.drop(columns=["cum"]), symbol="T")  # cum derived
    np.testing.assert_allclose(c.cum, [0, 100, 1_600, 11_600], atol=1e-9)


def test_from_binance_string_values_any_order(btc_2024):
    data = btc24_binance_strings()
    shuffled = [data[i] for i in (5, 0, 11, 3, 1, 10, 2, 9, 4, 8, 7, 6)]  # sorted back by "bracket"
    b = Brackets.from_binance(shuffled, symbol="BTCUSDT", effective_date="2024-05-30")
    assert b == btc_2024
    np.testing.assert_array_equal(b.notional_cap, BTC24_CAPS)


def test_from_binance_shapes(btc_2024):
    data = btc24_binance_strings()
    # a dict with 'brackets' (its symbol is taken)
    b = Brackets.from_binance({"symbol": "BTCUSDT", "brackets": data}, effective_date="2024-05-30")
    assert b.symbol == "BTCUSDT" and b == btc_2024
    # the endpoint's list of {symbol, brackets}: symbol= picks one
    other = [{"bracket": "1", "initialLeverage": "20", "notionalCap": "5000", "notionalFloor": "0",
              "maintMarginRatio": "0.025", "cum": "0"}]
    listing = [{"symbol": "XYZUSDT", "brackets": other}, {"symbol": "BTCUSDT", "brackets": data}]
    assert Brackets.from_binance(listing, symbol="BTCUSDT", effective_date="2024-05-30") == btc_2024
    xyz = Brackets.from_binance(listing, symbol="XYZUSDT")
    assert xyz.n_tiers == 1 and xyz.mmr[0] == 0.025 and xyz.max_leverage[0] == 20
    with pytest.raises(BracketError, match="name one with symbol="):
        Brackets.from_binance(listing)
    with pytest.raises(BracketError, match="'NOPE' is not in the data"):
        Brackets.from_binance(listing, symbol="NOPE")
    # older spelling minNotional/maxNotional, numbers rather than strings, no cum (derived)
    old = [{"bracket": i + 1, "initialLeverage": BTC24_LEV[i], "maxNotional": BTC24_CAPS[i],
            "minNotional": BTC24_FLOORS[i], "maintMarginRatio": BTC24_MMR[i]} for i in range(12)]
    c = Brackets.from_binance(old)
    np.testing.assert_allclose(c.cum, BTC24_CUM, rtol=1e-12, atol=1e-6)
    with pytest.raises(BracketError, match="tier 1 is a str"):
        Brackets.from_binance(["not a dict"])


def test_from_binance_file_raw_freqtrade(shared_data):
    path = shared_data / "binance_leverageBracket_raw_freqtrade-2026.9.json.gz"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    btc = Brackets.from_binance_file(path, "BTCUSDT")
    assert btc.symbol == "BTCUSDT" and btc.source == path.name and btc.n_tiers == 12
    # file values: tier 1 0-300k 0.4% 150x; tier 2 300k-800k 0.5% 100x, cum 300,000*0.001 = 300;
    # tier 3 800k-3M 0.65% 75x, cum 300 + 800,000*0.0015 = 1,500
    np.testing.assert_array_equal(btc.notional_cap[:3], [300e3, 800e3, 3e6])
    np.testing.assert_array_equal(btc.mmr[:3], [0.004, 0.005, 0.0065])
    np.testing.assert_array_equal(btc.max_leverage[:3], [150, 100, 75])
    np.testing.assert_allclose(btc.cum[:3], [0, 300, 1_500], atol=1e-9)
    eth = Brackets.from_binance_file(path, "ETHUSDT")
    assert eth.symbol == "ETHUSDT" and eth.n_tiers == 12
    assert eth.notional_cap[4] == 50e6 and eth.mmr[4] == 0.02
    with pytest.raises(BracketError, match="'NOPEUSDT' is not in the data"):
        Brackets.from_binance_file(path, "NOPEUSDT")


def test_from_binance_file_ccxt_tiers(shared_data):
    path = shared_data / "binance_leverage_tiers_freqtrade-2026.9.json.gz"
    raw = shared_data / "binance_leverageBracket_raw_freqtrade-2026.9.json.gz"
    if not (path.exists() and raw.exists()):
        pytest.skip("freqtrade 2026.9 bracket files not present")
    a = Brackets.from_binance_file(path, "BTC/USDT:USDT")
    b = Brackets.from_binance_file(raw, "BTCUSDT")
    for name in ("notional_floor", "notional_cap", "mmr", "max_leverage", "cum"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_every_table_of_the_raw_freqtrade_file_validates(shared_data):
    path = shared_data / "binance_leverageBracket_raw_freqtrade-2026.9.json.gz"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        listing = json.load(fh)
    assert len(listing) == 907
    failures = []
    for entry in listing:
        try:
            b = Brackets.from_binance(entry["brackets"], symbol=entry["symbol"])
            assert b.n_tiers == len(entry["brackets"])
        except (BracketError, AssertionError) as exc:
            failures.append(f"{entry['symbol']}: {exc}")
    assert not failures, failures[:10]


HISTORY = "binance_leverageBracket_history_2022-2025_selected.jsonl.gz"


def _history(shared_data):
    path = shared_data / HISTORY
    if not path.exists():
        pytest.skip(f"{HISTORY} not present")
    return path


def test_history_picks_the_snapshot_in_effect(shared_data, btc_2021):
    path = _history(shared_data)
    b = Brackets.from_binance_file(path, "BTCUSDT", date="2022-06-13")
    # PROVENANCE.md D: the nearest snapshot to 2022-06-13 is 2022-05-21, 10 tiers, the 2021 table
    assert b.effective_date == "2022-05-21" and b.n_tiers == 10
    assert b.source.startswith(HISTORY)
    assert (b.notional_floor[3], b.notional_cap[3], b.mmr[3], b.max_leverage[3]) == (1e6, 10e6, 0.025, 20)
    assert b.cum[3] == pytest.approx(16_300.0, abs=1e-6)
    # same tiers as the shipped copy, but the open-ended last cap is 2**63 - 1 in the raw data
    for name in ("notional_floor", "mmr", "max_leverage", "cum"):
        np.testing.assert_array_equal(getattr(b, name), getattr(btc_2021, name))
    np.testing.assert_array_equal(b.notional_cap[:-1], btc_2021.notional_cap[:-1])
    assert b.notional_cap[-1] == float(9223372036854775807)


def test_history_older_key_spelling_and_numeric_values(shared_data):
    path = _history(shared_data)
    # the 2022-04-16 version (maxNotional/minNotional keys): tier 4 is 1M-7.5M there
    b = Brackets.from_binance_file(path, "BTCUSDT", date="2022-05-01")
    assert b.n_tiers == 10 and b.notional_cap[3] == 7.5e6 and b.notional_floor[4] == 7.5e6
    # the 2025-04-30 version (numbers, not strings): the Oct-2024 BTCUSDT table
    c = Brackets.from_binance_file(path, "BTCUSDT", date="2025-04-30 12:00")
    assert c.effective_date == "2025-04-30"
    np.testing.assert_array_equal(c.notional_cap, BTC24_CAPS)
    np.testing.assert_allclose(c.cum, BTC24_CUM, atol=1e-6)
    # no date: the newest entry
    assert Brackets.from_binance_file(path, "ETHUSDT").n_tiers >= 1


def test_history_errors(shared_data):
    path = _history(shared_data)
    with pytest.raises(BracketError, match="no BTCUSDT table on or before 2022-01-01"):
        Brackets.from_binance_file(path, "BTCUSDT", date="2022-01-01")
    with pytest.raises(BracketError, match="no NOPEUSDT table"):
        Brackets.from_binance_file(path, "NOPEUSDT")


def test_history_date_is_inclusive_of_the_snapshot_day(shared_data):
    path = _history(shared_data)
    newest = Brackets.from_binance_file(path, "BTCUSDT", date="2022-05-22")
    assert newest.effective_date == "2022-05-21"
    # asking for the snapshot's own effective date must return that snapshot
    assert Brackets.from_binance_file(path, "BTCUSDT", date="2022-05-21").effective_date == "2022-05-21"


# ---------------------------------------------------------------------- immutability, equality
def test_immutable(btc_2024):
    with pytest.raises(AttributeError, match="immutable"):
        btc_2024.mmr = np.zeros(12)
    with pytest.raises(AttributeError, match="immutable"):
        btc_2024.symbol = "ETHUSDT"
    with pytest.raises(ValueError):  # read-only arrays
        btc_2024.mmr[0] = 0.5
    with pytest.raises(ValueError):
        btc_2024.cum[:] = 0.0
    assert btc_2024.mmr[0] == 0.004


def test_inputs_are_copied():
    mmr = np.array([0.01, 0.02, 0.05, 0.10])
    b = Brackets([0, 10e3, 50e3, 200e3], [10e3, 50e3, 200e3, 1e6], mmr, [50, 25, 10, 5])
    mmr[0] = 0.5
    assert b.mmr[0] == 0.01


def test_attributes_cannot_be_deleted():
    b = Brackets.from_records(small_records(), symbol="T")
    with pytest.raises(AttributeError):
        del b.symbol


def test_pickle_round_trip(btc_2024):
    again = pickle.loads(pickle.dumps(btc_2024))
    assert again == btc_2024
    assert hash(again) == hash(btc_2024)
    assert again.source == btc_2024.source and again.effective_date == "2024-05-30"
    assert not again.mmr.flags.writeable
    with pytest.raises(AttributeError):
        again.symbol = "X"


def test_equality_and_hash():
    a = Brackets.from_records(small_records(), symbol="T", effective_date="2024-01-01", source="one")
    b = Brackets.from_records(small_records(with_cum=False), symbol="T", effective_date="2024-01-01",
                              source="two")
    np.testing.assert_allclose(b.cum, [0, 100, 1_600, 11_600], atol=1e-9)  # derived, hand values above
    c = Brackets.from_records(small_records(), symbol="T", effective_date="2024-01-01", source="three")
    assert a == c and hash(a) == hash(c)  # source is not part of equality
    assert len({a, c}) == 1
    assert a != Brackets.from_records(small_records(), symbol="T", effective_date="2024-02-01")
    assert a != Brackets.from_records(small_records(), symbol="U", effective_date="2024-01-01")
    assert a != Brackets.from_records(_replace(small_records(with_cum=False), 4, mmr=0.11),
                                      symbol="T", effective_date="2024-01-01")
    assert a != "not a table"


def test_to_frame_and_records_round_trip(btc_2024):
    frame = btc_2024.to_frame()
    assert list(frame["tier"]) == list(range(1, 13))
    assert Brackets.from_frame(frame, symbol="BTCUSDT", effective_date="2024-05-30") == btc_2024
    recs = btc_2024.to_records()
    assert recs[2] == pytest.approx(dict(notional_floor=600e3, notional_cap=3e6, mmr=0.0065, max_leverage=75,
                                         cum=950.0))
    assert Brackets.from_records(recs, symbol="BTCUSDT", effective_date="2024-05-30") == btc_2024
    assert "BTCUSDT" in repr(btc_2024) and "12 tiers" in repr(btc_2024)


def test_scaled_rederives_cum(btc_2024):
    s = btc_2024.scaled(mmr_factor=1.5)
    np.testing.assert_allclose(s.mmr, np.array(BTC24_MMR) * 1.5, rtol=1e-15)
    # mmr x1.5: tier 1 0.6%, tier 2 0.75%, tier 3 0.975%
    # cum_2 = 0 + 50,000 * (0.0075 - 0.006) = 75
    # cum_3 = 75 + 600,000 * (0.00975 - 0.0075) = 75 + 1,350 = 1,425
    # cum_4 (mmr 1.5%) = 1,425 + 3,000,000 * (0.015 - 0.00975) = 1,425 + 15,750 = 17,175
    assert s.cum[1] == pytest.approx(75.0, abs=1e-9)
    assert s.cum[2] == pytest.approx(1_425.0, abs=1e-9)
    assert s.cum[3] == pytest.approx(17_175.0, abs=1e-8)
    np.testing.assert_array_equal(s.notional_cap, BTC24_CAPS)
    np.testing.assert_array_equal(s.max_leverage, BTC24_LEV)
    assert s.symbol == "BTCUSDT" and "x mmr 1.5" in s.source
    assert btc_2024.mmr[0] == 0.004  # the original is untouched
    capped = btc_2024.scaled(max_leverage_cap=20)
    np.testing.assert_array_equal(capped.max_leverage, [20] * 6 + [10, 5, 4, 3, 2, 1])
    # 2.5x makes tier 1's mmr 1% = 1/100 > 1/125: a position at 125x would be liquidated at once
    with pytest.raises(BracketError, match=r"tier 1\b.*1/max_leverage"):
        btc_2024.scaled(mmr_factor=2.5)
