"""Venue profiles (issue 12): selecting them, the errors, and each procedure worked by hand.

Every case runs on both engines; the expected numbers are computed in the comments from the
formulas of VENUES.md (its worked examples where it has one), never read from the code.
Bars are 1-minute (open, high, low, close); bar 0 is flat at the entry price.  A bar that
closes down is visited open -> high -> low -> close (the ``ohlc`` model), so its low is
point 2 and a level crossed on the way down is executed at the level.
"""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from riskcore import Book, BookTable, Brackets, simulate
from riskcore.table import BookFormatError
from riskcore.venues import VenueError, load
from riskcore.venues import profiles as vp

ENGINES = ("reference", "numba")


def bars(*rows):
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], dtype=float)
    frame.insert(0, "timestamp", pd.date_range("2024-01-01", periods=len(rows), freq="1min"))
    return frame


def one_account(table, venue, qty=1.0, leverage=10, mode="isolated", taker_fee=0.0, wallet=None):
    """One account long ``qty`` BTC at 100,000; its cross wallet holds only ``wallet`` after the
    open (default: nothing beyond the isolated margin; under cross, the margin itself)."""
    book = Book()
    book.add_contract("BTCUSDT", table, maker_fee=0.0, taker_fee=taker_fee, mark_price=100_000.0, venue=venue)
    book.add_account("a", wallet=10_000_000.0)
    book.set_margin_mode("a", "BTCUSDT", mode)
    book.set_leverage("a", "BTCUSDT", leverage)
    book.market_order("a", "BTCUSDT", "buy", qty, price=100_000.0)
    book.accounts["a"].wallet = qty * 100_000.0 / leverage if (wallet is None and mode == "cross") else (wallet or 0.0)
    return book


def run(book, *rows, engine, fee=0.0, **kw):
    return simulate(book, {"BTCUSDT": bars((100_000,) * 4, *rows)}, liquidation_fee_rate=fee, engine=engine, **kw)


def liquidations(result):
    return result.events[result.events["kind"] == "liquidation"].reset_index(drop=True)


ONE_TIER = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.004, "max_leverage": 40}],
                                 symbol="BTCUSDT")
# Bybit/OKX-style tiers: 1% up to 50,000, 2% above (cum 50,000 x 1% = 500)
TWO_TIERS = Brackets.from_records([{"notional_floor": 0, "notional_cap": 50_000, "mmr": 0.01, "max_leverage": 50},
                                   {"notional_floor": 50_000, "notional_cap": 1e9, "mmr": 0.02, "max_leverage": 25}],
                                  symbol="BTCUSDT")


# ------------------------------------------------------------------ selecting a profile
def test_the_shipped_profiles_and_their_switches():
    assert vp.VENUE_NAMES == ("binance", "bybit", "okx", "hyperliquid", "dydx")
    assert vp.profile(" OKX ").name == "okx"
    hl = vp.profile("hyperliquid")
    assert (hl.mm_rule, hl.liquidation, hl.slice_above, hl.slice_fraction) == ("half_im", "slices", 100_000.0, 0.2)
    assert hl.backstop == pytest.approx(2 / 3)
    assert vp.profile("dydx").adl_policy == "random" and vp.profile("dydx").liquidation_fee == 0.015
    binance = vp.profile("binance")
    assert binance.maintenance_brackets(TWO_TIERS, 0.0005) is TWO_TIERS  # Binance's rules: the table itself


def test_unknown_venues_are_refused_naming_where():
    with pytest.raises(VenueError, match=r"contract 'BTCUSDT': unknown venue 'kraken'; venue profiles: \['binance'"):
        Book().add_contract("BTCUSDT", ONE_TIER, venue="kraken")
    frames = one_account(ONE_TIER, "okx").to_table().frames()
    frames["contracts"]["venue"] = ["ftx"]
    with pytest.raises(BookFormatError, match=r"table 'contracts' row 0, column 'venue': unknown venue 'ftx'"):
        BookTable.from_frames(frames)
    with pytest.raises(VenueError, match="exists already"):
        vp.register(vp.Profile("okx", "x"))
    with pytest.raises(VenueError, match="liquidation must be one of"):
        vp.Profile("mine", "x", liquidation="half")


def test_a_profiles_table_must_be_valid():
    # a rate of 99.8% plus a 0.5% fee to close is 100.3%, not below 1/max leverage = 100%:
    # refused when the contract is added, not when a run starts
    steep = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.998, "max_leverage": 1}],
                                  symbol="X")
    with pytest.raises(VenueError, match="'X' under venue profile 'okx'"):
        Book().add_contract("X", steep, taker_fee=0.005, venue="okx")


def test_the_venue_travels_with_the_book(tmp_path):
    book = one_account(ONE_TIER, "Hyperliquid")
    assert book.contracts["BTCUSDT"].venue == "hyperliquid"
    table = book.to_table()
    assert table.contracts["venue"].tolist() == ["hyperliquid"]
    table.write_parquet(tmp_path / "book")
    back = BookTable.read_parquet(tmp_path / "book")
    assert back.contracts["venue"].tolist() == ["hyperliquid"]
    assert Book.from_table(back).contracts["BTCUSDT"].venue == "hyperliquid"
    frames = table.frames()  # a table written before the column existed: Binance's rules
    frames["contracts"] = frames["contracts"].drop(columns="venue")
    assert BookTable.from_frames(frames).contracts["venue"].tolist() == ["binance"]


def test_binance_is_the_default_and_changes_nothing():
    book = one_account(ONE_TIER, "binance")
    plain = Book()
    plain.add_contract("BTCUSDT", ONE_TIER, maker_fee=0.0, taker_fee=0.0, mark_price=100_000.0)
    assert plain.contracts["BTCUSDT"].venue == "binance"
    # isolated 10x long at 100,000 with mmr 0.4%: LP = (10,000 - 100,000) / (0.004 - 1) = 90,361.45
    assert book.liquidation_price("a", "BTCUSDT") == pytest.approx(90_361.45, abs=0.01)


SCENARIO = """\
name = "venue"
[market]
liquidation_fee_rate = 0.01
venue = "{market}"
[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }}
start_price = 60000.0
venue = "{contract}"
[path]
kind = "gbm"
n_steps = 5
[population]
accounts = 5
"""


def test_scenario_files_select_a_venue(tmp_path):
    from riskcore.scenarios import ScenarioError, build_paths, build_table, load_scenario

    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(market="bybit", contract="okx"))
    scenario = load_scenario(path)
    name, cfg = scenario.variants[0]
    paths, _ = build_paths(scenario, cfg)
    assert build_table(scenario, cfg, paths).contracts["venue"].tolist() == ["okx"]
    path.write_text(SCENARIO.format(market="bybit", contract="kraken"))
    with pytest.raises(ScenarioError, match=r"market\.contracts\.BTCUSDT\.venue: unknown venue 'kraken'"):
        load_scenario(path)
    path.write_text(SCENARIO.format(market="nowhere", contract="okx"))
    with pytest.raises(ScenarioError, match=r"market\.venue: unknown venue 'nowhere'"):
        load_scenario(path)
    path.write_text(textwrap.dedent(SCENARIO.format(market="okx", contract="okx")).replace(
        '[population]', '[grid]\n"market.venue" = ["binance", "hyperliquid"]\n[population]'))
    grid = load_scenario(path)
    assert [cfg["market"]["venue"] for _, cfg in grid.variants] == ["binance", "hyperliquid"]


def test_impact_with_partial_liquidation_is_refused():
    from riskcore.inputs import InputError

    book = one_account(TWO_TIERS, "bybit")
    with pytest.raises(InputError, match=r"partial liquidation is not supported: contract\(s\) \['BTCUSDT'\]"):
        run(book, (100_000, 100_000, 95_000, 95_000), engine="reference",
            impact={"BTCUSDT": {"sigma": 0.04, "daily_volume": 1e9}})


# --------------------------------------------------------- maintenance margin variants
@pytest.mark.parametrize("engine", ENGINES)
def test_okx_fee_to_close_and_takeover(engine):
    """VENUES.md 3.3: 1 BTC long at 100,000, 10x (M = 10,000), MMR 0.4%, taker 0.05% liquidates
    at (100,000 - 10,000) / (1 - 0.0045) = 90,406.83.  OKX takes a full liquidation over at the
    bankruptcy price: the fund keeps the equity at the LP, 10,000 + (90,406.83 - 100,000) =
    406.83 (= 90,406.83 x 0.45%, the maintenance margin with the fee), the trader gets nothing."""
    book = one_account(ONE_TIER, "okx", taker_fee=0.0005)
    assert book.liquidation_price("a", "BTCUSDT") == pytest.approx(90_406.83, abs=0.005)
    result = run(book, (100_000, 100_000, 90_000, 90_000), engine=engine, fee=0.01)
    liq = liquidations(result)
    assert len(liq) == 1 and liq.loc[0, "qty"] == 1.0
    assert liq.loc[0, "price"] == pytest.approx(90_406.83, abs=0.005)
    assert liq.loc[0, "fee"] == pytest.approx(406.83, abs=0.005)
    assert result.steps["insurance_fund"].iloc[-1] == pytest.approx(406.83, abs=0.005)
    assert result.book.accounts["a"].wallet == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_hyperliquid_mm_is_half_the_im_at_max_leverage(engine):
    """VENUES.md 5: at 40x max leverage the maintenance rate is 1/(2 x 40) = 1.25%, whatever the
    table's own 0.4%: 1 BTC long at 100,000, 10x isolated, liquidates at (10,000 - 100,000) /
    (0.0125 - 1) = 91,139.24 (VENUES.md's example).  A gap to 91,000 leaves equity 1,000 above
    2/3 of MM (2/3 x 91,000 x 1.25% = 758.33): no backstop, no fee, the trader keeps 1,000."""
    book = one_account(ONE_TIER, "hyperliquid")
    assert book.liquidation_price("a", "BTCUSDT") == pytest.approx(91_139.24, abs=0.005)
    result = run(book, (91_000, 91_000, 91_000, 91_000), engine=engine, fee=0.01)
    liq = liquidations(result)
    assert len(liq) == 1 and liq.loc[0, "price"] == 91_000 and liq.loc[0, "fee"] == 0.0
    assert result.book.accounts["a"].wallet == pytest.approx(1_000.0, abs=1e-6)
    assert result.steps["insurance_fund"].iloc[-1] == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_hyperliquid_backstop(engine):
    """A gap to 90,500: equity 10,000 - 9,500 = 500, below 2/3 of MM (2/3 x 90,500 x 1.25% =
    754.17): the backstop liquidator takes the position and all of its margin, so the fund
    gets 500 and the trader nothing (without it the trader would have kept 500)."""
    result = run(one_account(ONE_TIER, "hyperliquid"), (90_500,) * 4, engine=engine)
    liq = liquidations(result)
    assert len(liq) == 1 and liq.loc[0, "fee"] == pytest.approx(500.0, abs=1e-6)
    assert result.steps["insurance_fund"].iloc[-1] == pytest.approx(500.0, abs=1e-6)
    assert result.book.accounts["a"].wallet == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------- partial liquidation
@pytest.mark.parametrize("engine", ENGINES)
def test_hyperliquid_slices(engine):
    """2 BTC long at 100,000, 10x isolated (margin 20,000), MMR 1.25%: LP = (20,000 - 200,000) /
    (2 x 0.0125 - 2) = 91,139.24, where the notional (182,278) is above 100,000: a 20% slice.

    Bar 1 falls to 91,000 and closes at 95,000: 0.4 BTC are sold at 91,139.24, realizing
    0.4 x (91,139.24 - 100,000) = -3,544.30; the isolated wallet keeps 16,455.70 and the 1.6
    BTC left liquidate at (16,455.70 - 160,000) / (1.6 x 0.0125 - 1.6) = 90,850.83, below
    91,000: safe, the slice stands.

    Bar 2 falls to 90,000: at 90,850.83 the notional is 145,361, another slice would keep 1.28
    BTC with 16,455.70 + 0.32 x (90,850.83 - 100,000) = 13,527.96, liquidating at
    (13,527.96 - 128,000) / (1.28 x 0.0125 - 1.28) = 90,563.32, which 90,000 is beyond: not
    safe, so the whole 1.6 BTC goes at 90,850.83: -14,638.68, equity 1,817.02 back to the
    trader (Hyperliquid charges no fee)."""
    book = one_account(ONE_TIER, "hyperliquid", qty=2.0)
    result = run(book, (100_000, 100_000, 91_000, 95_000), (95_000, 95_000, 90_000, 90_000), engine=engine)
    liq = liquidations(result)
    assert liq["step"].tolist() == [1, 2]
    assert liq["qty"].tolist() == pytest.approx([0.4, 1.6])
    assert liq["price"].tolist() == pytest.approx([91_139.24, 90_850.83], abs=0.005)
    assert liq["amount"].tolist() == pytest.approx([-3_544.30, -14_638.68], abs=0.005)
    assert liq["wallet_iso"].tolist() == pytest.approx([16_455.70, 0.0], abs=0.005)
    assert result.book.accounts["a"].wallet == pytest.approx(1_817.02, abs=0.005)
    assert not result.book.accounts["a"].positions
    # after bar 1 alone, 1.6 BTC are still open with the wallet the slice left
    first = run(one_account(ONE_TIER, "hyperliquid", qty=2.0), (100_000, 100_000, 91_000, 95_000), engine=engine)
    pos = first.book.accounts["a"].positions[("BTCUSDT", 0)]
    assert (pos.qty, pos.wallet_iso) == (pytest.approx(1.6), pytest.approx(16_455.70, abs=0.005))
    assert first.book.liquidation_price("a", "BTCUSDT") == pytest.approx(90_850.83, abs=0.005)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_bybit_steps_down_a_tier(engine, mode):
    """Bybit (VENUES.md 2.5): a position above the lowest tier is reduced to a lower tier where
    it is safe again.  Tiers 1% to 50,000, 2% above (cum 500); no taker fee, so the fee to
    close adds nothing.  1 BTC long at 100,000, 10x, margin 10,000 (isolated wallet, or the
    whole cross wallet): MM is charged at 2% at the LP, (10,000 + 500 - 100,000) / (0.02 - 1) =
    91,326.53 (the cross trigger is the same: 10,000 + (P - 100,000) = 0.02 P - 500).

    The bar falls to 91,000.  One tier down, the position may keep 50,000 / 91,326.53 = 0.547486
    BTC; the other 0.452514 are sold at 91,326.53, realizing -3,924.87, which leaves 6,075.13 of
    margin.  At 91,000 the rest is safe: isolated, its LP is (6,075.13 - 54,748.60) /
    (0.547486 x 0.01 - 0.547486) = 89,801.60; cross, the excess is 6,075.13 + 0.547486 x
    (91,000 - 100,000) - 0.547486 x 91,000 x 1% = 649.55 > 0."""
    book = one_account(TWO_TIERS, "bybit", mode=mode)
    result = run(book, (100_000, 100_000, 91_000, 95_000), engine=engine, fee=0.01)
    liq = liquidations(result)
    assert len(liq) == 1
    assert liq.loc[0, "qty"] == pytest.approx(0.452514, abs=1e-6)
    assert liq.loc[0, "price"] == pytest.approx(91_326.53, abs=0.005)
    assert liq.loc[0, "amount"] == pytest.approx(-3_924.87, abs=0.005)
    assert liq.loc[0, "fee"] == 0.0  # the taker fee, 0 here; no takeover on a partial close
    pos = result.book.accounts["a"].positions[("BTCUSDT", 0)]
    assert pos.qty == pytest.approx(0.547486, abs=1e-6)
    if mode == "isolated":
        assert pos.wallet_iso == pytest.approx(6_075.13, abs=0.005)
        assert result.book.liquidation_price("a", "BTCUSDT") == pytest.approx(89_801.60, abs=0.005)
    else:
        assert result.book.accounts["a"].wallet == pytest.approx(6_075.13, abs=0.005)
    assert result.steps["insurance_fund"].iloc[-1] == 0.0


THREE_TIERS = Brackets.from_records([  # 1% to 50,000; 2% to 200,000 (cum 500); 5% above (cum 6,500)
    {"notional_floor": 0, "notional_cap": 50_000, "mmr": 0.01, "max_leverage": 50},
    {"notional_floor": 50_000, "notional_cap": 200_000, "mmr": 0.02, "max_leverage": 25},
    {"notional_floor": 200_000, "notional_cap": 1e9, "mmr": 0.05, "max_leverage": 10}], symbol="BTCUSDT")


@pytest.mark.parametrize("engine", ENGINES)
def test_okx_closes_the_excess_over_tier_one_and_bybit_one_tier(engine):
    """3 BTC long at 100,000, 10x isolated (margin 30,000): MM is charged at 5% at the LP,
    (30,000 + 6,500 - 300,000) / (3 x 0.05 - 3) = 92,456.14 (notional 277,368: tier 3).  The
    bar falls to 91,000 (no taker fee: the fee to close adds nothing).

    OKX (VENUES.md 3.4, from tier 3) closes the excess over tier 1: it keeps 50,000 / 92,456.14 =
    0.540797 BTC and sells 2.459203, realizing 2.459203 x (92,456.14 - 100,000) = -18,551.88;
    the 11,448.12 left liquidate the rest at (11,448.12 - 54,079.70) / (0.540797 x 0.01 -
    0.540797) = 79,627.30: safe.  Bybit steps down one tier: it keeps 200,000 / 92,456.14 =
    2.163188 BTC and sells 0.836812 (-6,312.79); with 23,687.21 the rest liquidates at
    (23,687.21 + 500 - 216,318.79) / (2.163188 x 0.02 - 2.163188) = 90,631.35 (notional
    196,053: tier 2), below 91,000: safe."""
    expected = {"okx": (2.459203, -18_551.88, 11_448.12, 79_627.30),
                "bybit": (0.836812, -6_312.79, 23_687.21, 90_631.35)}
    for venue, (closed, realized, wallet, lp) in expected.items():
        result = run(one_account(THREE_TIERS, venue, qty=3.0), (100_000, 100_000, 91_000, 95_000), engine=engine)
        liq = liquidations(result)
        assert len(liq) == 1, venue
        assert liq.loc[0, "price"] == pytest.approx(92_456.14, abs=0.005)
        assert liq.loc[0, "qty"] == pytest.approx(closed, abs=1e-6), venue
        assert liq.loc[0, "amount"] == pytest.approx(realized, abs=0.005), venue
        assert liq.loc[0, "wallet_iso"] == pytest.approx(wallet, abs=0.005), venue
        assert result.book.liquidation_price("a", "BTCUSDT") == pytest.approx(lp, abs=0.005), venue


@pytest.mark.parametrize("engine", ENGINES)
def test_okx_liquidates_tier_two_whole(engine):
    """OKX liquidates tiers 1-2 whole, taken over at the bankruptcy price: 1 BTC at 100,000, 10x,
    liquidates at (10,000 + 500 - 100,000) / (0.02 - 1) = 91,326.53 in tier 2 and the fund keeps
    the equity there, 10,000 + (91,326.53 - 100,000) = 1,326.53 (Bybit would step it down)."""
    result = run(one_account(THREE_TIERS, "okx"), (100_000, 100_000, 91_000, 95_000), engine=engine, fee=0.01)
    liq = liquidations(result)
    assert len(liq) == 1 and liq.loc[0, "qty"] == 1.0
    assert liq.loc[0, "fee"] == pytest.approx(1_326.53, abs=0.005)
    assert not result.book.accounts["a"].positions


@pytest.mark.parametrize("engine", ENGINES)
def test_bybit_lowest_tier_is_taken_over(engine):
    """In the lowest tier there is nothing to step down to: the whole position goes, taken over
    at the bankruptcy price.  0.4 BTC long at 100,000, 10x (margin 4,000): LP = (4,000 -
    40,000) / (0.4 x 0.01 - 0.4) = 90,909.09; the fund keeps the equity there, 4,000 + 0.4 x
    (90,909.09 - 100,000) = 363.64 (= 0.4 x 90,909.09 x 1%)."""
    result = run(one_account(TWO_TIERS, "bybit", qty=0.4), (100_000, 100_000, 90_000, 90_000), engine=engine,
                 fee=0.01)
    liq = liquidations(result)
    assert len(liq) == 1 and liq.loc[0, "qty"] == 0.4
    assert liq.loc[0, "price"] == pytest.approx(90_909.09, abs=0.005)
    assert liq.loc[0, "fee"] == pytest.approx(363.64, abs=0.005)
    assert result.book.accounts["a"].wallet == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_dydx_penalty(engine):
    """dYdX's penalty of at most 1.5% (VENUES.md 6), whatever the run's fee rate: 1 BTC long at
    100,000, 10x, MMF 3%: LP = (10,000 - 100,000) / (0.03 - 1) = 92,783.51, where the equity is
    2,783.51; the penalty is 1.5% x 92,783.51 = 1,391.75 and the trader keeps 1,391.75."""
    table = load("dydx", "BTC-USD").to_brackets()
    table = Brackets(table.notional_floor, [1e9], table.mmr, table.max_leverage, symbol="BTCUSDT")
    result = run(one_account(table, "dydx"), (100_000, 100_000, 90_000, 90_000), engine=engine, fee=0.05)
    liq = liquidations(result)
    assert liq.loc[0, "price"] == pytest.approx(92_783.51, abs=0.005)
    assert liq.loc[0, "fee"] == pytest.approx(1_391.75, abs=0.005)
    assert result.book.accounts["a"].wallet == pytest.approx(1_391.75, abs=0.005)


def _adl_book(venue):
    """docs/simulation.md's ADL example: an isolated long of 10 at 100 gaps to 80 against four
    cross shorts, with an empty fund."""
    tier = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", tier, maker_fee=0.0, taker_fee=0.0, mark_price=100.0, venue=venue)
    for name, qty, entry, leverage, wallet in (("a", 2, 100, 10, 60.0), ("b", 5, 95, 10, 925.0),
                                               ("c", 1, 120, 20, 0.0), ("d", 4, 85, 10, 100.0)):
        book.add_account(name, wallet=10_000.0)
        book.set_leverage(name, "BTCUSDT", leverage)
        book.market_order(name, "BTCUSDT", "sell", qty, price=entry)
        book.accounts[name].wallet = wallet
    book.add_account("z", wallet=1_000.0)
    book.set_margin_mode("z", "BTCUSDT", "isolated")
    book.set_leverage("z", "BTCUSDT", 10)
    book.market_order("z", "BTCUSDT", "buy", 10, price=100)
    return book


@pytest.mark.parametrize("engine", ENGINES)
def test_dydx_deleverages_at_random(engine):
    """dYdX deleverages randomly chosen offsetting accounts (VENUES.md 6): the profile's
    ``random`` policy, seeded by the run's adl_seed, whatever the run's adl_policy.  With seed
    0 the draw is docs/simulation.md's: d 4 at 85, b 5 at 90, a 1 at 90 (Binance's ranking
    would close c first)."""
    two = bars((100.0,) * 4, (80.0,) * 4)
    result = simulate(_adl_book("dydx"), {"BTCUSDT": two}, liquidation_fee_rate=0.0, engine=engine,
                      adl_policy="binance")
    hit = result.events[result.events["reason_code"] == "adl_counterparty"]
    assert list(zip(hit["account"], hit["qty"], hit["price"])) == [("d", 4, 85), ("b", 5, 90), ("a", 1, 90)]
    binance = simulate(_adl_book("binance"), {"BTCUSDT": two}, liquidation_fee_rate=0.0, engine=engine)
    assert binance.events[binance.events["reason_code"] == "adl_counterparty"]["account"].iloc[0] == "c"


def test_scenario_with_impact_and_partial_liquidation_is_refused(tmp_path):
    from riskcore.scenarios import ScenarioError, check_variants, load_scenario

    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(market="binance", contract="bybit")
                    + "[market.contracts.BTCUSDT.impact]\nsigma = 0.04\ndaily_volume = 1e9\n")
    with pytest.raises(ScenarioError, match=r"market\.contracts\.BTCUSDT: the venue profile 'bybit' liquidates in "
                                            r"parts, which market impact does not support"):
        check_variants(load_scenario(path))
