"""The venue loaders: accepted shapes, what they build, and the errors bad input raises.

Tier numbers beyond those VENUES.md quotes are made up here to exercise the loaders (several
tiers, deductions); they are test inputs, never shipped data.  Expected values are worked by
hand in the comments.
"""
from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from riskcore import BracketError, Brackets, margin, venues
from riskcore.venues import VenueError, bybit, dydx, hyperliquid, okx


# ------------------------------------------------------------------------------- Bybit
def bybit_response(*tiers, symbol="BTCUSDT"):
    rows = [{"id": i + 1, "symbol": symbol, "riskLimitValue": cap, "maintenanceMargin": mmr, "initialMargin": imr,
             "isLowestRisk": int(i == 0), "maxLeverage": lev, "mmDeduction": ded}
            for i, (cap, mmr, imr, lev, ded) in enumerate(tiers)]
    return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows}, "time": 1}


TWO_TIERS = (("2000000", "0.005", "0.01", "100.00", ""), ("2600000", "0.0056", "0.0112", "89.28", ""))


def test_bybit_derives_empty_deductions():
    # tier 2: deduction = 2,000,000 * (0.0056 - 0.005) = 1,200
    table = venues.from_bybit(bybit_response(*TWO_TIERS))
    assert isinstance(table, Brackets) and table.symbol == "BTCUSDT"
    assert table.notional_floor.tolist() == [0, 2_000_000]
    assert table.notional_cap.tolist() == [2_000_000, 2_600_000]
    assert table.cum[1] == pytest.approx(1_200.0)
    # continuous at the edge: 2,000,000 * 0.5% = 10,000 on both sides
    assert table.maintenance_margin(2_000_000) == pytest.approx(10_000)
    assert table.maintenance_margin(2_000_000.01) == pytest.approx(10_000, abs=0.01)


def test_bybit_accepts_result_list_and_given_deduction_in_any_order():
    tiers = [dict(r) for r in bybit_response(*TWO_TIERS)["result"]["list"]]
    tiers[1]["mmDeduction"] = "1200"
    a = venues.from_bybit(tiers[::-1])
    b = venues.from_bybit({"list": tiers})
    assert a == b and a.cum.tolist() == pytest.approx([0, 1_200])


def test_bybit_wrong_deduction_names_row_and_field():
    bad = (TWO_TIERS[0], TWO_TIERS[1][:4] + ("1000",))
    with pytest.raises(VenueError, match=r"bybit risk-limit for BTCUSDT: row 2 \(id 2\): field 'mmDeduction' is 1000.0 but .* gives 1,200"):
        venues.from_bybit(bybit_response(*bad))


@pytest.mark.parametrize("row, message", [
    ({"riskLimitValue": "abc"}, r"row 1 \(id 1\): field 'riskLimitValue' is 'abc', not a number"),
    ({"maintenanceMargin": "0.5"}, r"row 1 .*'maintenanceMargin' 0.5 is not below 1/maxLeverage = 0.01.*a percent"),
    ({"maintenanceMargin": ""}, r"row 1 .*field 'maintenanceMargin' is empty"),
    ({"initialMargin": "0.004"}, r"row 1 .*'initialMargin' is '0.004'.*above the maintenance rate"),
    ({"maxLeverage": "250"}, r"row 1 .*'maintenanceMargin' 0.005 is not below 1/maxLeverage = 0.004"),
])
def test_bybit_bad_fields(row, message):
    data = bybit_response(TWO_TIERS[0])
    data["result"]["list"][0].update(row)
    with pytest.raises(VenueError, match=message):
        venues.from_bybit(data)


def test_bybit_missing_field_and_other_shapes():
    data = bybit_response(TWO_TIERS[0])
    del data["result"]["list"][0]["maxLeverage"]
    with pytest.raises(VenueError, match=r"row 1 \(id 1\): has no field 'maxLeverage'"):
        venues.from_bybit(data)
    with pytest.raises(VenueError, match="retCode 10001"):
        venues.from_bybit({"retCode": 10001, "retMsg": "params error"})
    with pytest.raises(VenueError, match="non-empty list"):
        venues.from_bybit({"result": {"list": []}})
    both = bybit_response(TWO_TIERS[0])
    both["result"]["list"] += bybit_response(TWO_TIERS[0], symbol="ETHUSDT")["result"]["list"]
    with pytest.raises(VenueError, match="2 symbols"):
        venues.from_bybit(both)
    assert venues.from_bybit(both, "ETHUSDT").symbol == "ETHUSDT"
    with pytest.raises(VenueError, match="'SOLUSDT' is not in the data"):
        venues.from_bybit(both, "SOLUSDT")
    rising = bybit_response(TWO_TIERS[0], TWO_TIERS[1][:3] + ("100.00", ""))
    rising["result"]["list"][1]["maintenanceMargin"] = rising["result"]["list"][1]["initialMargin"] = "0.0056"
    rising["result"]["list"][1]["initialMargin"] = "0.0112"
    rising["result"]["list"][1]["maxLeverage"] = "120"
    with pytest.raises(VenueError, match=r"bybit risk-limit: .*tier 2 .*max leverage 120 is above the previous tier's 100"):
        venues.from_bybit(rising)
    dup = bybit_response(TWO_TIERS[0], TWO_TIERS[0])
    with pytest.raises(VenueError, match="row 2 .*riskLimitValue.*repeats"):
        venues.from_bybit(dup)


def test_bybit_from_files(tmp_path):
    data = bybit_response(*TWO_TIERS)
    (tmp_path / "r.json").write_text(json.dumps(data))
    with gzip.open(tmp_path / "r.json.gz", "wt") as fh:
        json.dump(data, fh)
    assert venues.from_bybit(tmp_path / "r.json") == venues.from_bybit(str(tmp_path / "r.json.gz"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(VenueError, match="bad.json is not JSON"):
        venues.from_bybit(tmp_path / "bad.json")
    with pytest.raises(VenueError, match="does not exist"):
        venues.from_bybit(tmp_path / "missing.json")


def test_bybit_uta_fee_to_close():
    # 1 long @ 20,000, 50x: BP 19,600; taker 0.055% -> fee 19,600 * 0.00055 = 10.78
    fee = bybit.fee_to_close("long", 1, 20_000, 50, 0.00055)
    assert fee == pytest.approx(10.78)
    assert bybit.initial_margin(1, 20_000, 50, fee=fee) == pytest.approx(410.78)
    assert bybit.maintenance_margin(1, 20_000, 0.005, fee=fee) == pytest.approx(110.78)
    # short: BP 20,400 -> 11.22
    assert bybit.fee_to_close("short", 1, 20_000, 50, 0.00055) == pytest.approx(11.22)


def test_bybit_formula_inputs_are_checked():
    with pytest.raises(ValueError, match="qty must be a finite number above 0"):
        bybit.isolated_liquidation_price(1, 0, 20_000, 50, 0.005)
    with pytest.raises(ValueError, match="leverage"):
        bybit.bankruptcy_price(1, 20_000, 0)
    with pytest.raises(ValueError, match="side"):
        bybit.bankruptcy_price("up", 20_000, 10)
    with pytest.raises(ValueError, match=r"mmr must lie in \[0, 1\).*0.005 for 0.5%"):
        bybit.maintenance_margin(1, 20_000, 0.5 * 100)
    assert math.isnan(bybit.bankruptcy_price("long", 20_000, 1))   # 1x long never goes bankrupt


# --------------------------------------------------------------------------------- OKX
def okx_response(*tiers, family="BTC-USDT"):
    rows = [{"uly": family, "instFamily": family, "instId": "", "tier": str(i + 1), "minSz": lo, "maxSz": hi,
             "mmr": mmr, "imr": imr, "maxLever": lev} for i, (lo, hi, mmr, imr, lev) in enumerate(tiers)]
    return {"code": "0", "msg": "", "data": rows}


OKX_TIERS = (("0", "2000", "0.004", "0.008", "125"), ("2001", "4000", "0.006", "0.01", "100"),
             ("4000", "10000", "0.01", "0.02", "50"))


def test_okx_tiers_by_contracts_without_deduction():
    tiers = venues.from_okx(okx_response(*OKX_TIERS), contract_value=0.01)   # 0.01 BTC per contract
    assert tiers.inst_family == "BTC-USDT" and tiers.n_tiers == 3
    assert tiers.tier_index(2000) == 0 and tiers.tier_index(2000.5) == 1 and tiers.tier_index(1e9) == 2
    # 20 BTC = 2,000 contracts: tier 1 at 0.4%; 20.01 BTC = 2,001 contracts: tier 2 at 0.6%, no deduction,
    # so MM jumps from 20 * 50,000 * 0.004 = 4,000 to 20.01 * 50,000 * 0.006 = 6,003
    assert okx.maintenance_margin(20, 50_000, tiers) == pytest.approx(4_000)
    assert okx.maintenance_margin(20.01, 50_000, tiers) == pytest.approx(6_003)
    # with the taker fee: 20 * 50,000 * (0.004 + 0.0005) = 4,500
    assert okx.maintenance_margin(20, 50_000, tiers, taker_fee=0.0005) == pytest.approx(4_500)
    # the tier does not move with the price
    assert tiers.rates(20, 1_000_000)[0] == 0.004


def test_okx_tiers_need_contract_value():
    tiers = venues.from_okx(okx_response(*OKX_TIERS))
    with pytest.raises(VenueError, match="give contract_value"):
        okx.maintenance_margin(1, 50_000, tiers)


@pytest.mark.parametrize("change, message", [
    ((0, "minSz", "1"), r"row 1 \(tier 1\): field 'minSz' is 1; the first tier must start at 0"),
    ((1, "minSz", "2500"), r"row 2 \(tier 2\): field 'minSz' 2500 does not follow the previous tier's maxSz 2000"),
    ((1, "mmr", "0.003"), r"row 2 .*field 'mmr' 0.003 is below the previous tier's 0.004"),
    ((1, "imr", "0.005"), r"row 2 .*field 'imr' is '0.005'; it must lie above mmr 0.006"),
    ((2, "maxLever", "150"), r"row 3 .*field 'maxLever' 150 is above the previous tier's 100"),
    ((2, "maxSz", "x"), r"row 3 \(tier 3\): field 'maxSz' is 'x', not a number"),
])
def test_okx_bad_tiers(change, message):
    data = okx_response(*OKX_TIERS)
    row, key, value = change
    data["data"][row][key] = value
    with pytest.raises(VenueError, match=r"okx position-tiers for BTC-USDT: " + message):
        venues.from_okx(data)


def test_okx_families_and_errors():
    data = okx_response(*OKX_TIERS)
    data["data"] += okx_response(OKX_TIERS[0], family="ETH-USDT")["data"]
    with pytest.raises(VenueError, match="2 instrument families"):
        venues.from_okx(data)
    assert venues.from_okx(data, "ETH-USDT").n_tiers == 1
    with pytest.raises(VenueError, match="code 51000"):
        venues.from_okx({"code": "51000", "msg": "bad", "data": []})


def test_okx_bankruptcy_price():
    # 1 BTC @ 100,000 with 10,000 margin: equity 0 at 90,000 (long) and 110,000 (short)
    assert okx.bankruptcy_price("long", 1, 100_000, 10_000) == 90_000
    assert okx.bankruptcy_price("short", 1, 100_000, 10_000) == 110_000


# ------------------------------------------------------------------------- Hyperliquid
META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
                     {"name": "ATOM", "szDecimals": 2, "maxLeverage": 5, "marginTableId": 5}],
        "marginTables": [[56, {"description": "tiered 40x", "marginTiers": [
            {"lowerBound": "0.0", "maxLeverage": 40}, {"lowerBound": "150000000.0", "maxLeverage": 20}]}]]}


def test_hyperliquid_meta_to_brackets():
    btc = venues.from_hyperliquid(META, "BTC")
    assert btc == venues.from_hyperliquid([META, []], "BTC")          # metaAndAssetCtxs
    assert btc.mmr.tolist() == [0.0125, 0.025] and btc.max_leverage.tolist() == [40, 20]
    # deduction = 150,000,000 * (2.5% - 1.25%) = 1,875,000
    assert btc.cum.tolist() == [0, 1_875_000]
    assert btc.notional_cap[-1] == venues.OPEN_CAP
    assert "margin table 56" in btc.source
    shipped = venues.load("hyperliquid", "BTC")
    assert np.array_equal(shipped.mmr, btc.mmr) and np.array_equal(shipped.notional_cap, btc.notional_cap)


def test_hyperliquid_unlisted_table_is_one_tier_at_universe_leverage():
    atom = venues.from_hyperliquid(META, "ATOM")
    assert atom.n_tiers == 1 and atom.max_leverage[0] == 5 and atom.mmr[0] == 0.1
    assert "not listed" in atom.source


@pytest.mark.parametrize("tiers, message", [
    ([{"lowerBound": "10", "maxLeverage": 40}], r"row 1: field 'lowerBound' is '10'; the first tier must start at 0"),
    ([{"lowerBound": "0", "maxLeverage": 12.5}], r"row 1: field 'maxLeverage' is 12.5; it must be a whole number"),
    ([{"lowerBound": "0", "maxLeverage": 10}, {"lowerBound": "0", "maxLeverage": 5}],
     r"row 2: field 'lowerBound' 0 is not above the previous tier's 0"),
    ([{"lowerBound": "0", "maxLeverage": 10}, {"lowerBound": "5", "maxLeverage": 20}],
     r"row 2: field 'maxLeverage' 20 is above the previous tier's 10"),
    ([{"lowerBound": "0"}], r"row 1: has no field 'maxLeverage'"),
])
def test_hyperliquid_bad_tiers(tiers, message):
    with pytest.raises(VenueError, match=r"hyperliquid margin table for X: " + message):
        venues.from_hyperliquid({"marginTiers": tiers}, "X")


def test_hyperliquid_meta_errors():
    with pytest.raises(VenueError, match="name the asset with coin="):
        venues.from_hyperliquid(META)
    with pytest.raises(VenueError, match="coin 'DOGE' is not in the universe"):
        venues.from_hyperliquid(META, "DOGE")


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("qty, margin_iso", [(1, 10_000), (3_000, 30_000_000), (2_000, 200_000_000)])
def test_hyperliquid_lp_agrees_with_riskcore_mark_basis(side, qty, margin_iso):
    """Hyperliquid's formula with the tier at the LP is riskcore's mark-basis LP: both solve
    equity = notional * MMR - deduction at the LP (the middle cases cross the 150M edge)."""
    btc = venues.load("hyperliquid", "BTC")
    ours = hyperliquid.isolated_liquidation_price(side, qty, 100_000, margin_iso, btc)
    generic = margin.isolated_liquidation_price(side, qty, 100_000, margin_iso, btc)
    if math.isnan(generic):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(generic, rel=1e-12)
        equity = margin_iso + side * qty * (ours - 100_000)
        assert equity == pytest.approx(btc.maintenance_margin(qty * ours), rel=1e-9)


def test_hyperliquid_lp_from_a_later_mark_and_backstop():
    btc = venues.load("hyperliquid", "BTC")
    # same position seen at a mark of 95,000: the LP does not depend on where it is seen from
    at_entry = hyperliquid.isolated_liquidation_price(1, 1, 100_000, 10_000, btc)
    at_mark = hyperliquid.isolated_liquidation_price(1, 1, 100_000, 10_000, btc, mark_price=95_000)
    assert at_mark == pytest.approx(at_entry, rel=1e-12)
    assert hyperliquid.backstop(equity=66, maintenance_margin=100) is True       # 66 < 66.67
    assert hyperliquid.backstop(equity=67, maintenance_margin=100) is False
    with pytest.raises(ValueError, match="whole number"):
        hyperliquid.initial_margin(1, 100_000, 2.5)


# ------------------------------------------------------------------------------- dYdX
CHAIN = {"liquidity_tiers": [
    {"id": 0, "name": "Large-Cap", "initial_margin_ppm": 50000, "maintenance_fraction_ppm": 600000,
     "impact_notional": 10000000000, "open_interest_lower_cap": 0, "open_interest_upper_cap": 0},
    {"id": 2, "name": "Long-Tail", "initial_margin_ppm": 200000, "maintenance_fraction_ppm": 500000,
     "impact_notional": 2500000000, "open_interest_lower_cap": "5000000000000",
     "open_interest_upper_cap": "10000000000000"}],
    "perpetuals": [{"params": {"ticker": "BTC-USD", "liquidity_tier": 0}},
                   {"params": {"ticker": "DOGE-USD", "liquidity_tier": 2}}]}


def test_dydx_chain_tiers_in_ppm():
    btc = venues.from_dydx(CHAIN, "BTC-USD")
    # 50,000 ppm = 5%; MMF = 5% x 60% = 3%
    assert btc.initial_margin_fraction == 0.05 and btc.maintenance_margin_fraction == pytest.approx(0.03)
    assert btc.imf(1e12) == 0.05                                      # upper cap 0: no scaling
    doge = venues.from_dydx(CHAIN, tier="Long-Tail")
    assert (doge.open_interest_lower_cap, doge.open_interest_upper_cap) == (5e6, 10e6)   # quantums -> USDC
    # 7.5M open notional: scaling 0.5, IMF = 0.2 + 0.5 * 0.8 = 0.6; above the upper cap 100%
    assert doge.imf(4e6) == 0.2 and doge.imf(7.5e6) == pytest.approx(0.6) and doge.imf(2e7) == 1.0
    assert doge.maintenance_margin_fraction == pytest.approx(0.1)     # MMF fixed


def test_dydx_indexer_markets():
    data = {"markets": {"BTC-USD": {"ticker": "BTC-USD", "initialMarginFraction": "0.05",
                                    "maintenanceMarginFraction": "0.03", "openInterestLowerCap": "0",
                                    "openInterestUpperCap": "0"}}}
    btc = venues.from_dydx(data)
    assert (btc.market, btc.initial_margin_fraction, btc.maintenance_margin_fraction) == ("BTC-USD", 0.05, 0.03)
    table = btc.to_brackets()
    assert table.mmr.tolist() == [0.03] and table.max_leverage.tolist() == [20.0] and table.cum.tolist() == [0]


@pytest.mark.parametrize("data, kwargs, message", [
    ({"markets": {"BTC-USD": {"initialMarginFraction": "0.05", "maintenanceMarginFraction": "0.08"}}}, {},
     r"market 'BTC-USD': .*maintenance margin fraction 0.08 must lie in \(0, IMF 0.05\]"),
    ({"markets": {"BTC-USD": {"initialMarginFraction": "five"}}}, {},
     r"market 'BTC-USD': field 'initialMarginFraction' is 'five', not a number"),
    ({"markets": {"A": {}, "B": {}}}, {}, "2 markets; name one with market="),
    (CHAIN, {"market": "ETH-USD"}, "market 'ETH-USD' is not among the perpetuals"),
    (CHAIN, {"tier": 7}, "no tier 7"),
    ({"liquidity_tiers": [{"id": 0, "name": "X", "initial_margin_ppm": 50000}]}, {},
     r"row 1 \(id 0, 'X'\): has no field 'maintenance_fraction_ppm'"),
    ({"liquidity_tiers": [{"id": 0, "name": "X", "initial_margin_ppm": 50000, "maintenance_fraction_ppm": 0}]}, {},
     r"row 1 \(id 0, 'X'\): field 'maintenance_fraction_ppm' is 0"),
])
def test_dydx_bad_input(data, kwargs, message):
    with pytest.raises(VenueError, match=message):
        venues.from_dydx(data, **kwargs)


def test_dydx_unknown_caps_refuse_scaling():
    btc = venues.load("dydx", "BTC-USD")
    assert btc.imf() == 0.05
    with pytest.raises(VenueError, match="open-interest caps are not known"):
        btc.imf(1e9)


def test_dydx_fillable_price_moves_toward_the_close():
    # TAV 50, TMMR 100: Q = 0.5; SMMR 1.5, MMF 3%, BA 1: adj = 1.5 * 0.03 * 0.5 = 0.0225
    kw = dict(account_value=50, total_maintenance=100, spread_to_mm_ratio=1.5)
    assert dydx.fillable_price(10, 100.0, 0.03, **kw) == pytest.approx(97.75)
    assert dydx.fillable_price(-10, 100.0, 0.03, **kw) == pytest.approx(102.25)
    with pytest.raises(ValueError, match="bankruptcy_adjustment must be >= 1"):
        dydx.fillable_price(10, 100.0, 0.03, bankruptcy_adjustment=0.5, **kw)
    with pytest.raises(ValueError, match="non-zero signed number"):
        dydx.maintenance_margin(0, 100.0, 0.03)


# ---------------------------------------------------------------------- shipped tables
def test_load_by_venue_symbol_and_date():
    assert venues.load("Bybit", "BTCUSDT", "2026-12-31").effective_date == "2026-12-03"
    with pytest.raises(VenueError, match=r"no shipped table for 'BTCUSDT' in effect on 2025-10-10; the oldest is from 2026-12-03"):
        venues.load("bybit", "BTCUSDT", "2025-10-10")
    with pytest.raises(VenueError, match=r"no shipped table for 'DOGE'; shipped: \['BTC', 'ETH', 'SOL', 'XRP'\]"):
        venues.load("hyperliquid", "DOGE")
    with pytest.raises(VenueError, match="unknown venue 'binance'.*Brackets.load"):
        venues.load("binance", "BTCUSDT")
    with pytest.raises(VenueError, match="no OKX tables are shipped"):
        venues.load("okx", "BTC-USDT")
    with pytest.raises(VenueError, match="not a date"):
        venues.load("dydx", "BTC-USD", "yesterday-ish")
    assert isinstance(venues.load("dydx", "long-tail"), venues.DydxLiquidityTier)


@pytest.mark.parametrize("venue", venues.VENUES)
def test_every_shipped_row_is_dated_and_sourced(venue):
    frame = venues.shipped(venue)
    for column in ("symbol", "effective_date", "tier", "trust", "source"):
        assert column in frame.columns
    assert frame["source"].notna().all() and frame["trust"].notna().all()
    assert frame["effective_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    for symbol in sorted(set(frame["symbol"])):
        venues.load(venue, symbol)                                   # every shipped table validates


def test_venue_error_is_a_bracket_error():
    assert issubclass(VenueError, BracketError) and issubclass(VenueError, ValueError)


def test_okx_lp_with_tiers_in_contracts_and_refusal_by_notional():
    tiers = venues.from_okx(okx_response(*OKX_TIERS), contract_value=0.01)
    # 1 BTC = 100 contracts: tier 1 (0.4%), so the section 3.3 example's long price
    assert round(okx.isolated_liquidation_price(1, 1, 100_000, 10_000, tiers, taker_fee=0.0005), 2) == 90_406.83
    by_notional = venues.from_okx(okx_response(*OKX_TIERS), size_unit="quote")
    with pytest.raises(VenueError, match="tiers by notional"):
        okx.isolated_liquidation_price(1, 1, 100_000, 10_000, by_notional, taker_fee=0.0005)
    with pytest.raises(VenueError, match="size_unit must be 'contracts' or 'quote'"):
        venues.from_okx(okx_response(*OKX_TIERS), size_unit="base")
