"""Hand-worked scenarios for the simulation engines (``riskcore.simulate``).

Each test builds a small book and a few 1-minute bars, runs it on the reference engine and again
on the numba kernels (the ``_engine`` fixture), and checks the
events, the per-step series, the final book and the money ledger against numbers worked out by
hand in the comments (never taken from the code under test).  Unless a test says otherwise:

* BTCUSDT: one tier, mmr 0.5 %, max leverage 100x, cum 0; ETHUSDT: one tier, mmr 1 %, 50x, cum 0;
* zero trading fees, no slippage, intrabar="ohlc", mm_basis="mark";
* bar 0 is flat at the entry price, so nothing happens in it.

Formulas used by hand (MARGIN_RULES.md):

* isolated LP (mark basis, one tier, cum 0): ``LP = (W - side*Q*EP) / (Q*mmr - side*Q)``; for a
  long with mmr 0.5 %: ``LP = (Q*EP - W) / (0.995*Q)``; for a short: ``LP = (Q*EP + W) / (1.005*Q)``;
* isolated LP (entry basis): ``LP = EP - side*(W - Q*EP*mmr)/Q``;  BP = ``EP - side*W/Q``;
* cross: liquidated when ``wallet + sum uPnL <= sum MM``;
* the ohlc path is open, low, high, close for a bar with close >= open and open, high, low, close
  for one that closed down: points 0, 1, 2, 3.
"""
from __future__ import annotations

import pandas as pd
import pytest

import riskcore
from riskcore import Book, Brackets, InputError

ENGINE = {"name": "reference"}


@pytest.fixture(autouse=True, params=["reference", "numba"])
def _engine(request):
    """Every test of this module runs on both engines."""
    ENGINE["name"] = request.param
    yield request.param
    ENGINE["name"] = "reference"


def simulate(book, paths, **kw):
    return riskcore.simulate(book, paths, **{"engine": ENGINE["name"], **kw})

T0 = pd.Timestamp("2024-01-01 00:00:00")
MINUTE = pd.Timedelta(minutes=1)


def approx(x, rel=1e-9, abs=1e-6):
    return pytest.approx(x, rel=rel, abs=abs)


# ----------------------------------------------------------------------------- helpers
def btc_brackets() -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")


def eth_brackets() -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.01, "max_leverage": 50}],
                                 symbol="ETHUSDT")


def make_book(eth: bool = False, taker_fee: float = 0.0) -> Book:
    book = Book()
    book.add_contract("BTCUSDT", btc_brackets(), maker_fee=0.0, taker_fee=taker_fee)
    if eth:
        book.add_contract("ETHUSDT", eth_brackets(), maker_fee=0.0, taker_fee=taker_fee)
    return book


def open_position(book: Book, account, symbol: str, side: str, qty: float, price: float, *, wallet=None,
                  mode: str = "cross", leverage: float | None = None, auto_add: bool = False, leg=None,
                  position_mode: str = "one-way") -> None:
    """Add the account (when ``wallet`` is given), set its mode and leverage, and fill at ``price``."""
    if wallet is not None:
        book.add_account(account, wallet=wallet, position_mode=position_mode)
    if mode == "isolated":
        book.set_margin_mode(account, symbol, "isolated")
    if leverage is not None:
        book.set_leverage(account, symbol, leverage, leg=leg)
    if auto_add:
        book.set_auto_add_margin(account, symbol, True, leg=leg)
    book.market_order(account, symbol, side, qty, price, leg=leg)


def bars(rows, start: pd.Timestamp = T0) -> pd.DataFrame:
    """1-minute bars from (open, high, low, close) tuples."""
    return pd.DataFrame({
        "timestamp": [start + i * MINUTE for i in range(len(rows))],
        "open": [float(r[0]) for r in rows], "high": [float(r[1]) for r in rows],
        "low": [float(r[2]) for r in rows], "close": [float(r[3]) for r in rows],
    })


def flat(price: float) -> tuple:
    return (price, price, price, price)


def check_event(row, **expected) -> None:
    for key, value in expected.items():
        got = row[key]
        if isinstance(value, float):
            assert got == approx(value), f"{row['kind']} event: {key} is {got!r}, expected {value!r}"
        else:
            assert got == value, f"{row['kind']} event: {key} is {got!r}, expected {value!r}"


def kinds(result) -> list:
    return list(result.events["kind"])


def money_ok(result) -> None:
    assert result.money_check() == approx(0.0, abs=1e-6)


# =========================================================================== 1. auto-add
# MARGIN_RULES.md section 3, worked case: wallet 10,000; long 5 @ 8,000 isolated at 10x
# (IM = 5*8,000/10 = 4,000 moves to wallet_iso, 6,000 stays in the cross wallet); mmr 0.5 %.
# Bar 1 is the wick: open 8,000, high 8,050, low 6,000, close 7,000 (closed down, so the path is
# 8,000 -> 8,050 -> 6,000 -> 7,000; the low is point 2).

WICK = [flat(8_000), (8_000, 8_050, 6_000, 7_000)]


def auto_add_book(auto_add: bool = True, mode: str = "isolated") -> Book:
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 5, 8_000, wallet=10_000, mode=mode, leverage=10,
                  auto_add=auto_add)
    return book


def test_auto_add_mark_basis_two_topups_then_liquidation():
    # LP = (5*8000 - W) / (0.995*5) = (40000 - W) / 4.975
    #   W = 4,000:  36,000 / 4.975 = 7,236.1809  (touched on the way 8,050 -> 6,000)
    #     top-up min(Q*EP/L = 4,000, free 6,000, Q*touch - W = 36,180.9 - 4,000) = 4,000 -> W 8,000
    #   W = 8,000:  32,000 / 4.975 = 6,432.1608  (6,000 is still below it)
    #     top-up min(4,000, free 2,000, ...) = 2,000 -> W 10,000, cross wallet 0
    #   W = 10,000: 30,000 / 4.975 = 6,030.1508  (still below) -> no free balance: liquidated there.
    # Close 5 @ 30,000/4.975: realized = 5*(30,000/4.975 - 8,000) = 150,000/4.975 - 40,000 = -9,849.2462
    # equity = 10,000 - 9,849.2462 = 150.7538 (= MM = 0.005*5*6,030.15 = 750/4.975)
    # fee = min(0.002 * 150,000/4.975 = 300/4.975 = 60.3015, 150.7538) = 60.3015 -> insurance fund
    # remainder 150.7538 - 60.3015 = 450/4.975 = 90.4523 -> back to the cross wallet.
    result = simulate(auto_add_book(), {"BTCUSDT": bars(WICK)}, liquidation_fee_rate=0.002)
    assert kinds(result) == ["topup", "topup", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=2, account="a", contract="BTCUSDT", qty=5.0, price=36_000 / 4.975,
                amount=4_000.0, wallet=2_000.0, wallet_iso=8_000.0)
    check_event(ev.iloc[1], step=1, point=2, account="a", contract="BTCUSDT", qty=5.0, price=32_000 / 4.975,
                amount=2_000.0, wallet=0.0, wallet_iso=10_000.0)
    check_event(ev.iloc[2], step=1, point=2, account="a", contract="BTCUSDT", side=1, qty=5.0,
                price=30_000 / 4.975, amount=150_000 / 4.975 - 40_000, fee=300 / 4.975, wallet=450 / 4.975,
                wallet_iso=0.0)
    assert ev.iloc[0]["price"] == approx(7_236.18, abs=0.005)
    assert ev.iloc[1]["price"] == approx(6_432.16, abs=0.005)
    assert ev.iloc[2]["price"] == approx(6_030.15, abs=0.005)
    # final book: flat, the remainder in the cross wallet
    acct = result.book.accounts["a"]
    assert acct.positions == {}
    assert acct.wallet == approx(450 / 4.975)
    # per-step series: bar 0 quiet (open interest 5*8,000); bar 1 holds everything
    s = result.steps
    assert list(s["step"]) == [0, 1]
    assert list(s["topups"]) == [0, 2]
    assert list(s["topup_amount"]) == [0.0, approx(6_000.0)]
    assert list(s["liquidations"]) == [0, 1]
    assert list(s["accounts_liquidated"]) == [0, 1]
    assert list(s["liquidated_notional"]) == [0.0, approx(150_000 / 4.975)]
    assert list(s["insurance_fund"]) == [0.0, approx(300 / 4.975)]
    assert list(s["open_interest"]) == [approx(40_000.0), 0.0]
    assert list(s["bad_debt"]) == [0.0, 0.0]
    # ledger: start 6,000 + 4,000 = 10,000; end 450/4.975 + 300/4.975 = 150.7538 = 10,000 - 9,849.2462
    assert result.ledger["money_start"] == approx(10_000.0)
    assert result.ledger["money_end"] == approx(750 / 4.975)
    money_ok(result)


def test_auto_add_entry_basis_7240_6440_6040():
    # Bybit's basis: MM on the entry value, MM_entry = 0.005*40,000 = 200; LP = 8,000 - (W - 200)/5
    #   W 4,000: 8,000 - 760 = 7,240 -> +4,000;  W 8,000: 8,000 - 1,560 = 6,440 -> +2,000;
    #   W 10,000: 8,000 - 1,960 = 6,040 -> liquidated.
    # realized 5*(6,040 - 8,000) = -9,800; equity 200; fee min(0.002*30,200 = 60.4, 200) = 60.4;
    # remainder 139.6 to the cross wallet.
    result = simulate(auto_add_book(), {"BTCUSDT": bars(WICK)}, liquidation_fee_rate=0.002, mm_basis="entry")
    assert kinds(result) == ["topup", "topup", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=2, price=7_240.0, amount=4_000.0, wallet_iso=8_000.0)
    check_event(ev.iloc[1], step=1, point=2, price=6_440.0, amount=2_000.0, wallet_iso=10_000.0)
    check_event(ev.iloc[2], step=1, point=2, qty=5.0, price=6_040.0, amount=-9_800.0, fee=60.4, wallet=139.6)
    assert result.book.accounts["a"].wallet == approx(139.6)
    assert list(result.steps["insurance_fund"]) == [0.0, approx(60.4)]
    money_ok(result)


def test_auto_add_fee_capped_at_what_is_left():
    # Same run with a 1 % fee: 0.01 * 150,000/4.975 = 301.51 > equity 150.7538, so the fee is the
    # equity 750/4.975 and nothing comes back to the cross wallet (0).
    result = simulate(auto_add_book(), {"BTCUSDT": bars(WICK)}, liquidation_fee_rate=0.01)
    liq = result.events_of("liquidation").iloc[0]
    check_event(liq, price=30_000 / 4.975, fee=750 / 4.975, wallet=0.0)
    assert result.book.accounts["a"].wallet == approx(0.0)
    assert result.steps["insurance_fund"].iloc[-1] == approx(750 / 4.975)
    money_ok(result)


def test_auto_add_top_ups_stop_at_order_margin_and_the_order_is_cancelled_first():
    # As the worked case, plus a resting buy 1 @ 5,000 (never reached: the low is 6,000) holding
    # order margin 1*5,000/10 = 500, so the free balance is 6,000 - 500 = 5,500.
    #   1st top-up at 36,000/4.975: min(4,000, 5,500) = 4,000 -> W 8,000, free 1,500
    #   2nd top-up at 32,000/4.975: min(4,000, 1,500) = 1,500 -> W 9,500, cross wallet 500, free 0
    #   LP = (40,000 - 9,500)/4.975 = 30,500/4.975 = 6,130.6533 > 6,000: liquidated there.
    # The order is in the liquidated scope (same contract and leg): cancelled before the close.
    # realized 5*30,500/4.975 - 40,000 = 152,500/4.975 - 40,000; equity = MM = 762.5/4.975 = 153.2663
    # fee 0.002*152,500/4.975 = 305/4.975 = 61.3065; remainder 457.5/4.975 = 91.9598 -> wallet 591.9598
    book = auto_add_book()
    book.limit_order("a", "BTCUSDT", "buy", 1, 5_000)
    result = simulate(book, {"BTCUSDT": bars(WICK)}, liquidation_fee_rate=0.002)
    assert kinds(result) == ["topup", "topup", "cancel", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=2, price=36_000 / 4.975, amount=4_000.0, wallet_iso=8_000.0)
    check_event(ev.iloc[1], step=1, point=2, price=32_000 / 4.975, amount=1_500.0, wallet_iso=9_500.0,
                wallet=500.0)
    check_event(ev.iloc[2], step=1, point=2, side=1, qty=1.0, price=5_000.0)
    check_event(ev.iloc[3], step=1, point=2, price=30_500 / 4.975, amount=152_500 / 4.975 - 40_000,
                fee=305 / 4.975, wallet=500 + 457.5 / 4.975)
    assert result.book.accounts["a"].orders == {}
    assert result.book.accounts["a"].wallet == approx(500 + 457.5 / 4.975)
    money_ok(result)


# ================================================================ 2. cross / auto-add off
def test_same_wick_under_cross_liquidates_the_whole_account_at_6030():
    # Cross, 10x, wallet 10,000 stays in the cross wallet.  Margin balance - MM at price P:
    #   10,000 + 5*(P - 8,000) - 0.005*5*P = 4.975*P - 30,000 -> 0 at P = 30,000/4.975 = 6,030.15,
    # the same price as the isolated position after both top-ups (it had all 10,000 behind it too).
    # The crossing lies on the segment 8,050 -> 6,000 of point 2; the engine finds it exactly.
    # Same money: realized -9,849.2462, fee 300/4.975, wallet 450/4.975; no top-up (cross has none).
    result = simulate(auto_add_book(auto_add=False, mode="cross"), {"BTCUSDT": bars(WICK)},
                      liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=2, account="a", contract="BTCUSDT", leg="both", side=1,
                qty=5.0, price=30_000 / 4.975, amount=150_000 / 4.975 - 40_000, fee=300 / 4.975,
                wallet=450 / 4.975)
    acct = result.book.accounts["a"]
    assert acct.positions == {}
    assert acct.wallet == approx(450 / 4.975)
    assert list(result.steps["accounts_liquidated"]) == [0, 1]
    assert list(result.steps["topups"]) == [0, 0]
    money_ok(result)


def test_same_wick_with_auto_add_off_liquidates_at_first_touch_7236():
    # Isolated without auto-add: liquidated at the first LP, 36,000/4.975 = 7,236.18.
    # realized 5*(36,000/4.975 - 8,000) = 180,000/4.975 - 40,000 = -3,819.0955
    # equity 4,000 - 3,819.0955 = 180.9045 (= MM = 900/4.975)
    # fee 0.002 * 180,000/4.975 = 360/4.975 = 72.3618; remainder 540/4.975 = 108.5427
    # the cross wallet keeps its 6,000 and receives the remainder: 6,108.5427.
    result = simulate(auto_add_book(auto_add=False), {"BTCUSDT": bars(WICK)}, liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=2, qty=5.0, price=36_000 / 4.975,
                amount=180_000 / 4.975 - 40_000, fee=360 / 4.975, wallet=6_000 + 540 / 4.975, wallet_iso=0.0)
    assert result.events.iloc[0]["price"] == approx(7_236.18, abs=0.005)
    assert result.book.accounts["a"].wallet == approx(6_000 + 540 / 4.975)
    assert result.steps["insurance_fund"].iloc[-1] == approx(360 / 4.975)
    money_ok(result)


# ============================================================ 3. cross profit keeps a loser alive
# Two accounts, same positions: long 1 BTC @ 20,000 (10x) and long 10 ETH @ 1,500 (10x), wallet 4,000.
# Bar 1: BTC 20,000 -> 16,000 (closed down: 20,000, 20,000, 16,000, 16,000), ETH 1,500 -> 1,800
# (closed up: 1,500, 1,500, 1,800, 1,800).  Both move at point 2.

def two_contract_book() -> Book:
    book = make_book(eth=True)
    open_position(book, "cross", "BTCUSDT", "buy", 1, 20_000, wallet=4_000, leverage=10)
    open_position(book, "cross", "ETHUSDT", "buy", 10, 1_500, leverage=10)
    open_position(book, "iso", "BTCUSDT", "buy", 1, 20_000, wallet=4_000, mode="isolated", leverage=10)
    open_position(book, "iso", "ETHUSDT", "buy", 10, 1_500, mode="isolated", leverage=10)
    return book


def test_cross_profit_keeps_loser_alive_isolated_loser_liquidated():
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 20_000, 16_000, 16_000)]),
             "ETHUSDT": bars([flat(1_500), (1_500, 1_800, 1_500, 1_800)])}
    result = simulate(two_contract_book(), paths, liquidation_fee_rate=0.002)
    # Cross at point 2: 4,000 + (16,000 - 20,000) + 10*(1,800 - 1,500) = 3,000 margin balance
    #   MM = 0.005*16,000 + 0.01*18,000 = 80 + 180 = 260 < 3,000: survives (ETH's +3,000 pays BTC's -4,000).
    # Isolated: BTC W = 2,000 (cross wallet 4,000 - 2,000 - 1,500 = 500), LP = (20,000 - 2,000)/0.995
    #   = 18,090.4523 < 20,000 and > 16,000: liquidated there.  equity = MM = 90/0.995 = 90.4523,
    #   fee 0.002*18,000/0.995 = 36/0.995 = 36.1809, remainder 54/0.995 = 54.2714 -> cross wallet 554.2714.
    #   ETH W = 1,500: LP = (15,000 - 1,500)/(10*0.99) = 1,363.64, never reached.
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=2, account="iso", contract="BTCUSDT", side=1, qty=1.0,
                price=18_000 / 0.995, amount=18_000 / 0.995 - 20_000, fee=36 / 0.995,
                wallet=500 + 54 / 0.995)
    cross = result.book.accounts["cross"]
    assert cross.wallet == approx(4_000.0)
    assert {k: (p.qty, p.entry_price) for k, p in cross.positions.items()} == {
        ("BTCUSDT", 0): (1.0, 20_000.0), ("ETHUSDT", 0): (10.0, 1_500.0)}
    iso = result.book.accounts["iso"]
    assert list(iso.positions) == [("ETHUSDT", 0)]
    assert iso.positions[("ETHUSDT", 0)].wallet_iso == approx(1_500.0)
    assert iso.wallet == approx(500 + 54 / 0.995)
    # open interest at the end: cross BTC 16,000 + ETH 18,000 + iso ETH 18,000 = 52,000
    assert result.steps["open_interest"].iloc[-1] == approx(52_000.0)
    assert list(result.steps["accounts_liquidated"]) == [0, 1]
    money_ok(result)


def test_cross_without_the_profit_the_whole_cross_book_goes():
    # Control: ETH stays at 1,500.  Cross excess on the segment 20,000 -> 16,000 (ETH fixed):
    #   4,000 + (P - 20,000) - 0.005*P - 0.01*15,000 = 0.995*P - 16,150 -> 0 at P = 16,150/0.995
    #   = 16,231.1558.  Both cross positions close: BTC at 16,150/0.995, ETH at 1,500 (no PnL).
    #   realized = 16,150/0.995 - 20,000 = -3,768.8442; equity 231.1558 (= MM 81.1558 + 150)
    #   fee = 0.002*(16,150/0.995 + 15,000) = 32.3/0.995 + 30 = 62.4623; wallet 231.1558 - 62.4623 = 168.6935
    #   fee split by notional: BTC 32.3/0.995, ETH 30.
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 20_000, 16_000, 16_000)]),
             "ETHUSDT": bars([flat(1_500), flat(1_500)])}
    result = simulate(two_contract_book(), paths, liquidation_fee_rate=0.002)
    cross_ev = result.events[result.events["account"] == "cross"].reset_index(drop=True)
    assert list(cross_ev["kind"]) == ["liquidation", "liquidation"]
    wallet_after = 4_000 + 16_150 / 0.995 - 20_000 - (32.3 / 0.995 + 30)
    check_event(cross_ev.iloc[0], step=1, point=2, contract="BTCUSDT", qty=1.0, price=16_150 / 0.995,
                amount=16_150 / 0.995 - 20_000, fee=32.3 / 0.995, wallet=wallet_after)
    check_event(cross_ev.iloc[1], step=1, point=2, contract="ETHUSDT", qty=10.0, price=1_500.0, amount=0.0,
                fee=30.0, wallet=wallet_after)
    assert result.book.accounts["cross"].positions == {}
    assert result.book.accounts["cross"].wallet == approx(wallet_after)  # 168.6935
    # the isolated account loses only its BTC margin, as above
    assert list(result.book.accounts["iso"].positions) == [("ETHUSDT", 0)]
    assert list(result.steps["accounts_liquidated"]) == [0, 2]
    assert list(result.steps["liquidations"]) == [0, 3]
    money_ok(result)


# ================================================================================ 4. hedge mode
def hedge_book() -> Book:
    # Hedge mode, BTC isolated, long leg 10x and short leg 5x, both 1 @ 20,000.
    # long W = 20,000/10 = 2,000; short W = 20,000/5 = 4,000; cross wallet 10,000 - 6,000 = 4,000.
    # long LP = (20,000 - 2,000)/0.995 = 18,090.4523; short LP = (20,000 + 4,000)/1.005 = 23,880.597
    book = make_book()
    book.add_account("h", wallet=10_000, position_mode="hedge")
    book.set_margin_mode("h", "BTCUSDT", "isolated")
    book.set_leverage("h", "BTCUSDT", 10, leg="long")
    book.set_leverage("h", "BTCUSDT", 5, leg="short")
    book.market_order("h", "BTCUSDT", "buy", 1, 20_000, leg="long")
    book.market_order("h", "BTCUSDT", "sell", 1, 20_000, leg="short")
    return book


def test_hedge_long_leg_liquidated_short_leg_untouched():
    # Bar 1 closed down: 20,000, 20,050, 18,000, 18,500 -> the long leg's LP is crossed at point 2.
    # long: closed at 18,000/0.995; realized 18,000/0.995 - 20,000 = -1,909.5477; equity 90/0.995
    #   fee 0.002*18,000/0.995 = 36/0.995; remainder 54/0.995 -> cross wallet 4,000 + 54.2714.
    # short: its LP 23,880.6 is never reached; it keeps W 4,000, 1 @ 20,000.
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 20_050, 18_000, 18_500)])}
    result = simulate(hedge_book(), paths, liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=2, account="h", leg="long", side=1, qty=1.0,
                price=18_000 / 0.995, amount=18_000 / 0.995 - 20_000, fee=36 / 0.995, wallet=4_000 + 54 / 0.995)
    acct = result.book.accounts["h"]
    assert list(acct.positions) == [("BTCUSDT", 2)]
    short = acct.positions[("BTCUSDT", 2)]
    assert (short.side, short.qty, short.entry_price) == (-1, 1.0, 20_000.0)
    assert short.wallet_iso == approx(4_000.0)
    assert acct.wallet == approx(4_000 + 54 / 0.995)
    money_ok(result)


def test_hedge_short_leg_liquidated_long_leg_untouched():
    # Bar 1 closed up: 20,000, 19,950, 24,500, 24,000 -> the short leg's LP 24,000/1.005 is crossed
    # at point 2 (the high).  realized = -(24,000/1.005 - 20,000) = -3,880.597; equity = 4,000 - 3,880.597
    # = 119.403 (= MM 0.005*23,880.597 = 120/1.005); fee 0.002*24,000/1.005 = 48/1.005 = 47.761;
    # remainder 72/1.005 = 71.642.  The long (LP 18,090) saw 19,950 at worst: untouched.
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 24_500, 19_950, 24_000)])}
    result = simulate(hedge_book(), paths, liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=2, leg="short", side=-1, qty=1.0, price=24_000 / 1.005,
                amount=20_000 - 24_000 / 1.005, fee=48 / 1.005, wallet=4_000 + 72 / 1.005)
    acct = result.book.accounts["h"]
    assert list(acct.positions) == [("BTCUSDT", 1)]
    assert acct.positions[("BTCUSDT", 1)].wallet_iso == approx(2_000.0)
    money_ok(result)


# =================================================================================== 5. the flip
def test_tape_market_order_flips_long_to_short_at_bar_open():
    # One-way cross, wallet 10,000, long 1 @ 20,000.  The tape sells 1.5 half a minute into bar 0, so
    # it runs at the first point of bar 1 (the first bar opening at or after it), at bar 1's open
    # 21,000: close 1 (realized +1,000, wallet 11,000), open 0.5 short @ 21,000.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=10_000)
    tape = [{"timestamp": T0 + pd.Timedelta(seconds=30), "action": "market", "account": "a",
             "contract": "BTCUSDT", "side": "sell", "qty": 1.5}]
    paths = {"BTCUSDT": bars([flat(20_000), (21_000, 21_500, 20_800, 21_200)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, tape=tape)
    assert kinds(result) == ["fill"]
    check_event(result.events.iloc[0], step=1, point=0, account="a", contract="BTCUSDT", side=-1, qty=1.5,
                price=21_000.0, amount=1_000.0, fee=0.0, wallet=11_000.0)
    pos = result.book.accounts["a"].positions[("BTCUSDT", 0)]
    assert (pos.side, pos.qty, pos.entry_price) == (-1, 0.5, 21_000.0)
    assert result.book.accounts["a"].wallet == approx(11_000.0)
    # open interest: bar 0 1*20,000; bar 1 0.5*21,200 (the close) = 10,600
    assert list(result.steps["open_interest"]) == [approx(20_000.0), approx(10_600.0)]
    money_ok(result)


def test_tape_flip_of_an_isolated_position_moves_margin():
    # Isolated 10x: W 2,000, cross wallet 8,000.  Sell 1.5 @ 21,000: the close releases W 2,000 and
    # realizes +1,000 -> wallet 11,000; the new 0.5 short takes IM 0.5*21,000/10 = 1,050 -> wallet 9,950.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    tape = pd.DataFrame([{"timestamp": T0 + MINUTE, "action": "market", "account": "a", "contract": "BTCUSDT",
                          "side": "sell", "qty": 1.5}])
    paths = {"BTCUSDT": bars([flat(20_000), (21_000, 21_500, 20_800, 21_200)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0, tape=tape)
    check_event(result.events.iloc[0], kind="fill", step=1, point=0, qty=1.5, price=21_000.0, amount=1_000.0,
                wallet=9_950.0, wallet_iso=1_050.0)
    pos = result.book.accounts["a"].positions[("BTCUSDT", 0)]
    assert (pos.side, pos.qty, pos.entry_price, pos.wallet_iso) == (-1, 0.5, 21_000.0, approx(1_050.0))
    money_ok(result)


def test_tape_market_order_pays_the_taker_fee():
    # Taker fee 0.05 %: buy 1 @ 20,000 at bar 1's open costs 0.0005*20,000 = 10; wallet 10,000 - 10.
    book = make_book(taker_fee=0.0005)
    book.add_account("a", wallet=10_000)
    tape = [{"timestamp": T0 + MINUTE, "action": "market", "account": "a", "contract": "BTCUSDT", "side": "buy",
             "qty": 1}]
    result = simulate(book, {"BTCUSDT": bars([flat(20_000), flat(20_000)])}, liquidation_fee_rate=0.0, tape=tape)
    check_event(result.events.iloc[0], kind="fill", step=1, point=0, qty=1.0, price=20_000.0, amount=0.0,
                fee=10.0, wallet=9_990.0)
    assert result.book.fees_collected == approx(10.0)
    assert result.ledger["trading_fees"] == approx(10.0)
    money_ok(result)


# ================================================================================= 6. TP and SL
def tp_sl_book(side: str = "buy", tp=22_000.0, sl=19_000.0) -> Book:
    book = make_book()
    open_position(book, "a", "BTCUSDT", side, 1, 20_000, wallet=10_000)
    book.set_tp_sl("a", "BTCUSDT", take_profit=tp, stop_loss=sl)
    return book


@pytest.mark.parametrize("bar, kind, point, price, pnl", [
    # closed up: 20,000 -> 19,900 -> 22,500 -> 22,200: TP 22,000 crossed at point 2, closed at 22,000
    ((20_000, 22_500, 19_900, 22_200), "tp", 2, 22_000.0, 2_000.0),
    # closed down: 20,000 -> 20,100 -> 18,500 -> 18,800: SL 19,000 crossed at point 2, closed at 19,000
    ((20_000, 20_100, 18_500, 18_800), "sl", 2, 19_000.0, -1_000.0),
    # gap down through the SL: the bar opens at 18,000 -> closed at the open (point 0), -2,000
    ((18_000, 18_200, 17_900, 18_100), "sl", 0, 18_000.0, -2_000.0),
    # gap up through the TP: opens at 23,000 -> closed at the open, +3,000
    ((23_000, 23_100, 22_900, 23_050), "tp", 0, 23_000.0, 3_000.0),
], ids=["tp-inside", "sl-inside", "sl-gap", "tp-gap"])
def test_long_tp_sl(bar, kind, point, price, pnl):
    # Long 1 @ 20,000 cross, wallet 10,000, TP 22,000, SL 19,000; realized = price - 20,000.
    result = simulate(tp_sl_book(), {"BTCUSDT": bars([flat(20_000), bar])}, liquidation_fee_rate=0.002)
    assert kinds(result) == [kind]
    check_event(result.events.iloc[0], step=1, point=point, account="a", side=-1, qty=1.0, price=price,
                amount=pnl, fee=0.0, wallet=10_000 + pnl)
    assert result.book.accounts["a"].positions == {}
    assert result.book.accounts["a"].wallet == approx(10_000 + pnl)
    money_ok(result)


def test_short_stop_loss_set_on_the_tape():
    # Short 1 @ 20,000, the tape sets SL 21,000 at bar 1 (before the checks of that point).
    # Bar 1 closed up: 20,000 -> 19,800 -> 21,500 -> 21,200: the SL is crossed at point 2 and the short
    # is bought back at 21,000: realized -(21,000 - 20,000) = -1,000.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "sell", 1, 20_000, wallet=10_000)
    tape = [{"timestamp": T0 + MINUTE, "action": "set_tp_sl", "account": "a", "contract": "BTCUSDT",
             "stop_loss": 21_000}]
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 21_500, 19_800, 21_200)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, tape=tape)
    assert kinds(result) == ["action", "sl"]
    check_event(result.events.iloc[0], step=1, point=0, reason="set_tp_sl")
    check_event(result.events.iloc[1], step=1, point=2, side=1, qty=1.0, price=21_000.0, amount=-1_000.0,
                wallet=9_000.0)
    assert result.book.accounts["a"].positions == {}
    money_ok(result)


# ================================================================ 7. gap through BP, fund pays
def test_gap_through_bankruptcy_price_fund_covers_bad_debt():
    # Isolated long 1 @ 20,000 at 10x: W 2,000, cross wallet 8,000; LP 18,090.45, BP 20,000 - 2,000 = 18,000.
    # Bar 1 opens at 17,000, beyond BP: liquidated at point 0 at the open, 1 % worse:
    #   17,000*(1 - 0.01) = 16,830; realized 16,830 - 20,000 = -3,170; equity 2,000 - 3,170 = -1,170;
    #   fee min(0.002*16,830, max(0, -1,170)) = 0; deficit 1,170, paid by the fund: 5,000 -> 3,830.
    # The cross wallet is untouched (8,000): an isolated loss is bounded by its margin.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    paths = {"BTCUSDT": bars([flat(20_000), (17_000, 17_200, 16_900, 17_100)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, insurance_fund=5_000, liquidation_slippage=0.01)
    assert kinds(result) == ["liquidation", "bad_debt"]
    check_event(result.events.iloc[0], step=1, point=0, account="a", qty=1.0, price=16_830.0, amount=-3_170.0,
                fee=0.0, wallet=8_000.0)
    check_event(result.events.iloc[1], step=1, point=0, account="a", amount=1_170.0, wallet=8_000.0)
    assert "1170" in result.events.iloc[1]["reason"]
    s = result.steps
    assert list(s["insurance_fund"]) == [approx(5_000.0), approx(3_830.0)]
    assert list(s["bad_debt"]) == [0.0, approx(1_170.0)]
    assert list(s["insurance_paid"]) == [0.0, approx(1_170.0)]
    assert list(s["socialised_loss"]) == [0.0, 0.0]
    assert list(s["adl_recovered"]) == [0.0, 0.0]
    assert list(s["liquidated_notional"]) == [0.0, approx(16_830.0)]
    assert result.book.accounts["a"].wallet == approx(8_000.0)
    assert result.ledger["insurance_fund"] == approx(3_830.0)
    # money: start 8,000 + 2,000 + 5,000 = 15,000; end 8,000 + 3,830 = 11,830 = 15,000 - 3,170
    assert result.ledger["money_end"] == approx(11_830.0)
    money_ok(result)


def test_cross_gap_bad_debt_leaves_wallet_at_zero():
    # Cross long 1 @ 20,000 (20x default), wallet 1,500: margin balance 0 at 18,500.  Bar 1 opens at
    # 18,000: liquidated at the open, realized -2,000, equity -500; fee 0; the fund pays 500
    # (1,000 -> 500) and the cross wallet is set to 0, not left negative.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=1_500)
    paths = {"BTCUSDT": bars([flat(20_000), (18_000, 18_100, 17_900, 18_050)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, insurance_fund=1_000)
    assert kinds(result) == ["liquidation", "bad_debt"]
    check_event(result.events.iloc[0], step=1, point=0, price=18_000.0, amount=-2_000.0, fee=0.0)
    check_event(result.events.iloc[1], step=1, point=0, amount=500.0)
    assert result.book.accounts["a"].wallet == 0.0
    assert list(result.steps["insurance_fund"]) == [approx(1_000.0), approx(500.0)]
    money_ok(result)


def test_isolated_stop_loss_gapping_through_bp_does_not_touch_the_cross_wallet():
    # Isolated long 1 @ 20,000 at 10x: W 2,000, cross wallet 8,000, BP 18,000; SL 19,000.
    # Bar 1 opens at 17,000: the SL fires first (TP/SL precede the isolated checks) at the open.
    # The position can lose its 2,000 and nothing more (section 3: "Loss is bounded by it: nothing
    # else in the account is touched"), so the cross wallet must stay at 8,000; the other 1,000 of
    # the loss (17,000 is 1,000 below BP) is bad debt, not the account's.
    # The engine closes at 17,000 with realized -3,000 and leaves the cross wallet at 7,000.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    book.set_tp_sl("a", "BTCUSDT", stop_loss=19_000)
    paths = {"BTCUSDT": bars([flat(20_000), (17_000, 17_100, 16_900, 17_050)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, insurance_fund=5_000)
    assert result.book.accounts["a"].positions == {}
    assert result.book.accounts["a"].wallet == approx(8_000.0)
    # the 1,000 beyond the margin is bad debt, paid by the fund: 5,000 -> 4,000
    assert result.steps["insurance_fund"].iloc[-1] == approx(4_000.0)
    money_ok(result)


def test_cross_stop_loss_gapping_through_bp_is_bad_debt_not_a_negative_wallet():
    # Cross long 1 @ 20,000, wallet 1,500 (BP 18,500), SL 19,000.  Bar 1 opens at 18,000: the SL
    # closes at the open, realized -2,000, so the account is 500 below zero.  That 500 is bad debt:
    # the fund pays it (1,000 -> 500) and the wallet ends at 0, as for a liquidation
    # (test_cross_gap_bad_debt_leaves_wallet_at_zero).  The engine leaves the wallet at -500.
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=1_500)
    book.set_tp_sl("a", "BTCUSDT", stop_loss=19_000)
    paths = {"BTCUSDT": bars([flat(20_000), (18_000, 18_100, 17_900, 18_050)])}
    result = simulate(book, paths, liquidation_fee_rate=0.002, insurance_fund=1_000)
    assert result.book.accounts["a"].positions == {}
    assert result.book.accounts["a"].wallet == approx(0.0)
    bad = result.events_of("bad_debt")
    assert list(bad["amount"]) == [approx(500.0)]
    assert list(result.steps["insurance_fund"]) == [approx(1_000.0), approx(500.0)]
    money_ok(result)


@pytest.mark.parametrize("cross_wallet, final_wallet, bad_debt", [(1_600, 100.0, []), (1_300, 0.0, [200.0])],
                         ids=["remainder-covers-it", "remainder-short-of-it"])
def test_isolated_remainder_at_the_same_point_offsets_a_cross_stop_loss_deficit(cross_wallet, final_wallet,
                                                                                 bad_debt):
    # Cross long BTC 1 @ 20,000 with SL 19,000; isolated long ETH 100 @ 1,000 at 2x (W 50,000,
    # LP = (100,000 - 50,000) / (0.99 * 100) = 505.05).  Bar 1 opens with both gapped: the SL closes
    # BTC at 18,000 (realized -2,000: the cross wallet goes 2,000 down, below zero) and ETH at 505 is
    # liquidated at the open (realized -49,500, equity 500, fee rate 0: 500 goes back to the wallet).
    # Both happen at the same point, so the account's deficit is what is left after the remainder:
    # 1,600 - 2,000 + 500 = +100 is no deficit at all; 1,300 - 2,000 + 500 = -200 is 200 of bad debt,
    # paid by the fund (1,000 -> 800), the wallet ending at 0.
    book = make_book(eth=True)
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=50_000 + cross_wallet)
    book.set_tp_sl("a", "BTCUSDT", stop_loss=19_000)
    open_position(book, "a", "ETHUSDT", "buy", 100, 1_000, mode="isolated", leverage=2)
    assert book.accounts["a"].wallet == approx(cross_wallet)
    paths = {"BTCUSDT": bars([flat(20_000), (18_000, 18_100, 17_900, 18_050)]),
             "ETHUSDT": bars([flat(1_000), (505, 506, 504, 505)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0, insurance_fund=1_000)
    assert kinds(result)[:2] == ["sl", "liquidation"]
    check_event(result.events.iloc[1], step=1, point=0, contract="ETHUSDT", price=505.0, amount=-49_500.0, fee=0.0)
    assert list(result.events_of("bad_debt")["amount"]) == [approx(x) for x in bad_debt]
    assert result.book.accounts["a"].wallet == approx(final_wallet)
    assert result.steps["insurance_fund"].iloc[-1] == approx(1_000.0 - sum(bad_debt))
    assert result.steps["bad_debt"].iloc[-1] == approx(sum(bad_debt))
    money_ok(result)


def test_cross_liquidation_cancels_every_resting_order_of_the_cross_book():
    # Cross wallet 2,000, long 1 BTC @ 20,000 (20x), plus resting buys: 0.01 BTC @ 10,000 and 1 ETH @
    # 1,000 (ETH is cross too, flat).  BTC falls to 17,000: the cross book liquidates at
    # 18,000/0.995 = 18,090.45.  Both orders belong to the liquidated cross book (they hold margin
    # from the cross wallet) and must be cancelled before the close; the engine cancels the BTC one only.
    book = make_book(eth=True)
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=2_000)
    book.set_marks(ETHUSDT=1_500)
    book.limit_order("a", "BTCUSDT", "buy", 0.01, 10_000)
    book.limit_order("a", "ETHUSDT", "buy", 1, 1_000)
    paths = {"BTCUSDT": bars([flat(20_000), (20_000, 20_000, 17_000, 17_500)]),
             "ETHUSDT": bars([flat(1_500), flat(1_500)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0)
    assert kinds(result) == ["cancel", "cancel", "liquidation"]
    assert result.book.accounts["a"].orders == {}


# ============================================================================ 8. ADL
def bankrupt_long_book(counterparties) -> Book:
    # "b": isolated long 1 @ 20,000 at 10x (W 2,000, cross wallet 8,000; BP 18,000).
    book = make_book()
    open_position(book, "b", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    for name, wallet, side, qty, price in counterparties:
        open_position(book, name, "BTCUSDT", side, qty, price, wallet=wallet)
    return book


GAP_TO_17000 = {"BTCUSDT": bars([flat(20_000), (17_000, 17_100, 16_900, 17_050)])}


def test_adl_when_the_fund_is_too_small_ranked_counterparties_closed_at_bp():
    # b is liquidated at the open 17,000: realized -3,000, equity -1,000: deficit 1,000.
    # The fund (400) pays 400; the shortfall 600 is 0.6 of the deficit, so 0.6 of b's 1 BTC is
    # deleveraged at b's bankruptcy price bp = 17,000 + 1 * 1,000 / 1 = 18,000 (= EP - W/Q).
    # Ranking of the shorts at 17,000 (cross, 20x default): upnl 0.5*3,000 = 1,500, margin
    # 0.5*17,000/20 = 425, pnl% = 3.53 for both; effective leverage = notional / equity:
    #   s1: 8,500 / (10,000 + 1,500) = 0.74;  s2: 8,500 / (2,000 + 1,500) = 2.43 -> s2 first.
    # s2 closes all 0.5 @ 18,000: realized -1*0.5*(18,000 - 20,000) = +1,000 -> wallet 3,000
    # s1 closes the other 0.1 @ 18,000: realized +200 -> wallet 10,200, 0.4 short left
    # b's side: 0.6 BTC re-priced from 17,000 to 18,000: +600 recovered; b's cross wallet stays 8,000
    #   (an isolated deficit never touched it).  socialised = 1,000 - 400 - 600 = 0.
    book = bankrupt_long_book([("s1", 10_000, "sell", 0.5, 20_000), ("s2", 2_000, "sell", 0.5, 20_000)])
    result = simulate(book, GAP_TO_17000, liquidation_fee_rate=0.002, insurance_fund=400)
    assert kinds(result) == ["liquidation", "bad_debt", "adl", "adl", "adl"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=0, account="b", price=17_000.0, amount=-3_000.0, fee=0.0)
    check_event(ev.iloc[1], step=1, point=0, account="b", amount=1_000.0)
    check_event(ev.iloc[2], step=1, point=0, account="s2", side=-1, qty=0.5, price=18_000.0, amount=1_000.0,
                wallet=3_000.0, reason="counterparty")
    check_event(ev.iloc[3], step=1, point=0, account="s1", side=-1, qty=0.1, price=18_000.0, amount=200.0,
                wallet=10_200.0, reason="counterparty")
    check_event(ev.iloc[4], step=1, point=0, account="b", side=1, qty=0.6, price=18_000.0, amount=600.0,
                reason="bankrupt side")
    accts = result.book.accounts
    assert accts["s2"].positions == {}
    s1 = accts["s1"].positions[("BTCUSDT", 0)]
    assert (s1.side, s1.qty, s1.entry_price) == (-1, approx(0.4), 20_000.0)
    assert accts["b"].wallet == approx(8_000.0)
    s = result.steps.iloc[1]
    assert s["insurance_fund"] == approx(0.0)
    assert s["bad_debt"] == approx(1_000.0)
    assert s["insurance_paid"] == approx(400.0)
    assert s["adl_recovered"] == approx(600.0)
    assert s["socialised_loss"] == approx(0.0)
    # money: start 8,000 + 2,000 + 10,000 + 2,000 + 400 = 22,400; realized -3,000 + 1,000 + 200 + 600
    # = -1,200; end 8,000 + 10,200 + 3,000 + 0 = 21,200.
    assert result.ledger["money_end"] == approx(21_200.0)
    money_ok(result)


def test_adl_with_empty_fund_and_too_few_counterparties_socialises_the_rest():
    # Fund 0: the whole deficit 1,000 is to be deleveraged (1 BTC at bp 18,000), but the only short
    # holds 0.5: it is closed at 18,000 (+1,000 for it), 500 is recovered and 500 socialised.
    # The profitable long "l" (same side as the bankrupt) is not a counterparty: untouched.
    book = bankrupt_long_book([("l", 10_000, "buy", 0.2, 15_000), ("s", 10_000, "sell", 0.5, 20_000)])
    result = simulate(book, GAP_TO_17000, liquidation_fee_rate=0.002, insurance_fund=0)
    assert kinds(result) == ["liquidation", "bad_debt", "adl", "adl"]
    ev = result.events
    check_event(ev.iloc[2], account="s", qty=0.5, price=18_000.0, amount=1_000.0, wallet=11_000.0)
    check_event(ev.iloc[3], account="b", qty=0.5, price=18_000.0, amount=500.0)
    accts = result.book.accounts
    assert accts["s"].positions == {}
    assert accts["l"].positions[("BTCUSDT", 0)].qty == 0.2
    assert accts["l"].wallet == 10_000.0
    s = result.steps.iloc[1]
    assert (s["insurance_paid"], s["adl_recovered"], s["socialised_loss"]) == (0.0, approx(500.0), approx(500.0))
    assert result.ledger["socialised_loss"] == approx(500.0)
    money_ok(result)


# A cross shortfall is attributed to the contracts whose losses made it (section 6, issue 10).
# "cara" (cross, 20x default): wallet 2,000, BTC long 1 @ 20,000 and ETH long 10 @ 1,500
# (IM 1,000 + 750).  "bob": isolated BTC short 1 @ 20,000 at 20x, wallet_iso 1,000 (cross 2,000).
# Bar 1: BTC stays at 20,000, ETH gaps to 500.  At point 0 (a gap) cara's excess is
# 2,000 + 0 - 10,000 - (100 + 50) < 0: both close at the point's prices, BTC realizing 0 and ETH
# -10,000; equity -8,000, so no fee and a deficit of 8,000; the fund is empty.
# Before: the deficit was spread by notional, 20,000 / 25,000 * 8,000 = 6,400 on BTC, whose
# bankruptcy price became 20,000 + 6,400 = 26,400: bob's isolated short was closed there,
# realizing -6,400 against its 1,000 of margin, and his cross wallet went to -3,400.
# Now: weights are the losses at the fill, BTC max(0, -1*1*(20,000 - 20,000)) = 0 and ETH
# max(0, -10*(500 - 1,500)) = 10,000: all 8,000 is ETH's, bp = 500 + 8,000 / 10 = 1,300.
def adl_attribution_book(eth_shorts: bool) -> Book:
    book = make_book(eth=True)
    book.add_account("cara", wallet=2_000)
    book.market_order("cara", "BTCUSDT", "buy", 1, 20_000, marks={"BTCUSDT": 20_000, "ETHUSDT": 1_500})
    book.market_order("cara", "ETHUSDT", "buy", 10, 1_500, marks={"BTCUSDT": 20_000, "ETHUSDT": 1_500})
    open_position(book, "bob", "BTCUSDT", "sell", 1, 20_000, wallet=3_000, mode="isolated", leverage=20)
    if eth_shorts:
        book.set_marks(BTCUSDT=20_000, ETHUSDT=1_500)
        # "cruz": cross ETH short 5 @ 1,400 at 10x, wallet 10,000
        book.add_account("cruz", wallet=10_000)
        book.set_leverage("cruz", "ETHUSDT", 10)
        book.market_order("cruz", "ETHUSDT", "sell", 5, 1_400)
        # "ivy": isolated ETH short 4 @ 1,250 at 2x: wallet_iso 2,500, cross 500;
        # LP (2,500 + 5,000) / (4 * 1.01) = 1,856 > 1,500: alive in bar 0
        book.add_account("ivy", wallet=3_000)
        book.set_margin_mode("ivy", "ETHUSDT", "isolated")
        book.set_leverage("ivy", "ETHUSDT", 2)
        book.market_order("ivy", "ETHUSDT", "sell", 4, 1_250)
    book.set_marks(BTCUSDT=20_000, ETHUSDT=1_500)
    return book


ETH_GAP = {"BTCUSDT": bars([flat(20_000), flat(20_000)]), "ETHUSDT": bars([flat(1_500), flat(500)])}


def test_a_cross_shortfall_is_not_moved_onto_a_contract_that_did_not_lose():
    result = simulate(adl_attribution_book(False), ETH_GAP, liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation", "liquidation", "bad_debt"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=0, account="cara", contract="BTCUSDT", price=20_000.0, amount=0.0)
    check_event(ev.iloc[1], step=1, point=0, account="cara", contract="ETHUSDT", price=500.0, amount=-10_000.0)
    check_event(ev.iloc[2], account="cara", amount=8_000.0)
    # nobody is short ETH: the whole 8,000 is socialised; bob is untouched
    assert result.ledger["socialised_loss"] == approx(8_000.0)
    bob = result.book.accounts["bob"]
    assert bob.wallet == approx(2_000.0)
    assert bob.positions[("BTCUSDT", 0)].qty == 1.0
    assert bob.positions[("BTCUSDT", 0)].wallet_iso == approx(1_000.0)
    assert result.book.accounts["cara"].wallet == 0.0
    money_ok(result)


def test_adl_never_makes_a_counterparty_realise_a_loss_the_rest_moves_down_then_is_socialised():
    # ETH shorts at 500 (bp 1,300), ranked by pnl% x effective leverage:
    #   cruz: uPnL 5*900 = 4,500, margin 5*500/10 = 250, pnl% 18; equity 10,000 + 4,500,
    #         eff. lev. 2,500 / 14,500 = 0.1724: score 3.10
    #   ivy:  uPnL 4*750 = 3,000, margin 2,500, pnl% 1.2; equity 5,500, eff. lev. 2,000 / 5,500:
    #         score 0.436                                                       -> cruz first
    # cruz closes at 1,300 (better than his entry 1,400): 5 units, +800 each for cara = 4,000;
    #   he realizes 5*(1,400 - 1,300) = +500 (gives up 4,000 of his 4,500 profit), wallet 10,500.
    # ivy: 1,300 is worse than her entry 1,250, so she closes at 1,250 and realizes 0: 4 units,
    #   +750 each = 3,000; her 2,500 margin returns: cross wallet 3,000, what she put in.
    # Matched 9 of cara's 10 ETH, recovered 7,000 (average price 500 + 7,000/9 = 1,277.78);
    # the remaining 1,000 is socialised.
    result = simulate(adl_attribution_book(True), ETH_GAP, liquidation_fee_rate=0.002)
    assert kinds(result) == ["liquidation", "liquidation", "bad_debt", "adl", "adl", "adl"]
    ev = result.events
    check_event(ev.iloc[3], account="cruz", contract="ETHUSDT", side=-1, qty=5.0, price=1_300.0, amount=500.0,
                wallet=10_500.0, reason="counterparty")
    check_event(ev.iloc[4], account="ivy", contract="ETHUSDT", side=-1, qty=4.0, price=1_250.0, amount=0.0,
                wallet=3_000.0, reason="counterparty")
    check_event(ev.iloc[5], account="cara", contract="ETHUSDT", side=1, qty=9.0, price=500 + 7_000 / 9,
                amount=7_000.0, reason="bankrupt side")
    s = result.steps.iloc[1]
    assert (s["bad_debt"], s["adl_recovered"], s["socialised_loss"]) == (approx(8_000.0), approx(7_000.0),
                                                                        approx(1_000.0))
    accts = result.book.accounts
    assert accts["cruz"].positions == {} and accts["ivy"].positions == {}
    assert accts["bob"].wallet == approx(2_000.0) and accts["cara"].wallet == 0.0
    money_ok(result)


# ============================================================================= 9. funding
def funding_book() -> Book:
    # "i": isolated long 1 @ 20,000 10x (W 2,000, wallet 8,000; LP 18,000/0.995 = 18,090.45)
    # "c": cross long 1 @ 20,000 (wallet 10,000); "s": cross short 2 @ 20,000 (wallet 10,000)
    book = make_book()
    open_position(book, "i", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    open_position(book, "c", "BTCUSDT", "buy", 1, 20_000, wallet=10_000)
    open_position(book, "s", "BTCUSDT", "sell", 2, 20_000, wallet=10_000)
    return book


# Bar 2 dips to 18,100: above the LP before funding (18,090.45), below it after (18,110.55).
FUNDING_PATHS = {"BTCUSDT": bars([flat(20_000), flat(20_000), (20_000, 20_000, 18_100, 18_200)])}
FUNDING = {"BTCUSDT": pd.DataFrame({"timestamp": [T0 + MINUTE], "rate": [0.001]})}


def test_funding_isolated_vs_cross():
    # Rate +0.1 % at bar 1 (mark 20,000): payment = side*Q*MP*rate: longs pay 1*20,000*0.001 = 20,
    # the short receives 2*20,000*0.001 = 40.  i: W 2,000 -> 1,980; c: wallet 10,000 -> 9,980;
    # s: 10,000 -> 10,040.  Accounts visited in sorted order c, i, s.
    # i's LP moves to (20,000 - 1,980)/0.995 = 18,020/0.995 = 18,110.5528, so bar 2's low 18,100
    # liquidates it at 18,110.5528: realized 18,020/0.995 - 20,000 = -1,889.4472, equity 90.1/0.995
    # (no fee), back to the cross wallet: 8,000 + 90.5528.
    result = simulate(funding_book(), FUNDING_PATHS, liquidation_fee_rate=0.0, funding=FUNDING)
    assert kinds(result) == ["funding", "funding", "funding", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=0, account="c", side=1, qty=1.0, price=20_000.0, amount=-20.0,
                wallet=9_980.0)
    check_event(ev.iloc[1], step=1, point=0, account="i", side=1, amount=-20.0, wallet=8_000.0,
                wallet_iso=1_980.0)
    check_event(ev.iloc[2], step=1, point=0, account="s", side=-1, qty=2.0, amount=40.0, wallet=10_040.0)
    check_event(ev.iloc[3], step=2, point=2, account="i", price=18_020 / 0.995, amount=18_020 / 0.995 - 20_000,
                fee=0.0, wallet=8_000 + 90.1 / 0.995)
    accts = result.book.accounts
    assert accts["c"].wallet == approx(9_980.0)
    assert accts["s"].wallet == approx(10_040.0)
    assert accts["i"].wallet == approx(8_000 + 90.1 / 0.995)
    # funding paid net over the book: 20 + 20 - 40 = 0 (balanced open interest)
    assert list(result.steps["funding_paid"]) == [0.0, approx(0.0), 0.0]
    assert result.ledger["funding"] == approx(0.0)
    money_ok(result)


def test_funding_may_take_an_isolated_wallet_below_zero_equity_decides_liquidation():
    # Section 7.  "sal": isolated short 1 @ 20,000 at 20x: wallet_iso 1,000, cross wallet 9,000.
    # Bar 1 gaps to 15,000 (uPnL +5,000) and a funding rate of -8% is due there: shorts pay
    # 1 * 15,000 * 0.08 = 1,200 from the isolated wallet, which goes to 1,000 - 1,200 = -200.
    # Equity -200 + 5,000 = 4,800 is far above MM 0.005 * 15,000 = 75: not liquidated.
    # LP = (W + Q*EP) / (Q*(1 + mmr)) = (-200 + 20,000) / 1.005 = 19,701.49.
    # Bar 2 (15,000 -> low 15,000 -> high 20,000 -> close 19,000) crosses it on the way up:
    # liquidated at 19,701.49, realizing 20,000 - 19,701.49 = 298.51; equity -200 + 298.51 =
    # 98.51 = MM (0.005 * 19,701.49); no fee: 98.51 returns to the cross wallet, 9,098.51.
    # The rest of the account gave 1,000 and got 98.51 back: never more than the margin.
    book = make_book()
    open_position(book, "sal", "BTCUSDT", "sell", 1, 20_000, wallet=10_000, mode="isolated", leverage=20)
    paths = {"BTCUSDT": bars([flat(20_000), flat(15_000), (15_000, 20_000, 15_000, 19_000)])}
    funding = {"BTCUSDT": pd.DataFrame({"timestamp": [T0 + MINUTE], "rate": [-0.08]})}
    result = simulate(book, paths, liquidation_fee_rate=0.0, funding=funding)
    assert kinds(result) == ["funding", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=0, account="sal", amount=-1_200.0, wallet_iso=-200.0, wallet=9_000.0)
    lp = 19_800 / 1.005
    check_event(ev.iloc[1], step=2, point=2, account="sal", price=lp, amount=20_000 - lp,
                wallet=9_000 + (-200 + 20_000 - lp))
    assert -200 + 20_000 - lp == approx(0.005 * lp)
    assert result.book.accounts["sal"].wallet == approx(9_098.507462686567)
    money_ok(result)



def test_without_funding_the_isolated_long_survives_the_dip():
    # Control: LP stays 18,090.45 < 18,100: no event at all.
    result = simulate(funding_book(), FUNDING_PATHS, liquidation_fee_rate=0.0)
    assert kinds(result) == []
    assert result.book.accounts["i"].positions[("BTCUSDT", 0)].wallet_iso == approx(2_000.0)
    money_ok(result)


def test_funding_one_sided_book_shows_in_funding_paid():
    # Only the isolated long: it pays 20 at bar 1, so funding_paid is [0, 20, 0] and the ledger's
    # funding received is -20; money is still accounted for.
    book = make_book()
    open_position(book, "i", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    paths = {"BTCUSDT": bars([flat(20_000), flat(20_000), flat(20_000)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0, funding=FUNDING)
    assert list(result.steps["funding_paid"]) == [0.0, approx(20.0), 0.0]
    assert result.ledger["funding"] == approx(-20.0)
    assert result.book.accounts["i"].positions[("BTCUSDT", 0)].wallet_iso == approx(1_980.0)
    money_ok(result)


# ===================================================================== intrabar models
RECOVERING_WICK = {"BTCUSDT": bars([flat(20_000), (20_000, 20_500, 18_000, 20_200)])}


def isolated_long_book() -> Book:
    # isolated long 1 @ 20,000 10x: W 2,000, LP 18,000/0.995 = 18,090.45
    book = make_book()
    open_position(book, "a", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    return book


def test_intrabar_close_sees_only_the_close():
    # Bar 1 dips to 18,000 and closes at 20,200: "close" sees 20,000 then 20,200 only.
    result = simulate(isolated_long_book(), RECOVERING_WICK, liquidation_fee_rate=0.0, intrabar="close")
    assert kinds(result) == []
    assert ("BTCUSDT", 0) in result.book.accounts["a"].positions
    money_ok(result)


@pytest.mark.parametrize("model", ["ohlc", "worst"])
def test_intrabar_ohlc_and_worst_catch_the_wick(model):
    # Bar 1 closed up: ohlc walks 20,000 -> 18,000 (point 1) -> 20,500 -> 20,200; worst tests the long
    # at the low at point 1.  Either way the LP 18,090.45 is crossed at point 1: liquidated there,
    # realized 18,000/0.995 - 20,000 = -1,909.5477, equity 90/0.995 back to the wallet (no fee).
    result = simulate(isolated_long_book(), RECOVERING_WICK, liquidation_fee_rate=0.0, intrabar=model)
    assert kinds(result) == ["liquidation"]
    check_event(result.events.iloc[0], step=1, point=1, price=18_000 / 0.995, amount=18_000 / 0.995 - 20_000,
                wallet=8_000 + 90 / 0.995)
    money_ok(result)


def cross_pair_book() -> Book:
    # Cross, wallet 3,000: long 1 BTC @ 20,000 and short 10 ETH @ 1,500 (20x default leverage).
    book = make_book(eth=True)
    open_position(book, "x", "BTCUSDT", "buy", 1, 20_000, wallet=3_000)
    open_position(book, "x", "ETHUSDT", "sell", 10, 1_500)
    return book


# BTC dips to 18,000 and ETH spikes to 1,700 in the same bar, both closing where they opened
# (close >= open: ohlc path open, low, high, close).
PAIR_PATHS = {"BTCUSDT": bars([flat(20_000), (20_000, 20_000, 18_000, 20_000)]),
              "ETHUSDT": bars([flat(1_500), (1_500, 1_700, 1_500, 1_500)])}


def test_intrabar_ohlc_pairs_the_lows_so_the_cross_pair_survives():
    # ohlc point 1: BTC 18,000, ETH 1,500 (its low): 3,000 - 2,000 + 0 = 1,000 vs MM 90 + 150 = 240.
    # point 2: BTC 20,000, ETH 1,700: 3,000 + 0 - 2,000 = 1,000 vs MM 100 + 170 = 270.  Survives.
    result = simulate(cross_pair_book(), PAIR_PATHS, liquidation_fee_rate=0.0, intrabar="ohlc")
    assert kinds(result) == []
    assert len(result.book.accounts["x"].positions) == 2


def test_intrabar_worst_tests_all_adverse_extremes_at_once():
    # worst point 1: BTC at its low 18,000 and the ETH short at its high 1,700 together:
    # 3,000 - 2,000 - 2,000 = -1,000 < MM: liquidated.  On the segment from the open (20,000; 1,500)
    # to (18,000; 1,700) with fraction f: excess = 3,000 - 2,000 f - 10*200 f - 0.005*(20,000 - 2,000 f)
    #   - 0.01*10*(1,500 + 200 f) = 2,750 - 4,010 f -> f = 2,750/4,010 = 0.6857855
    # BTC at 20,000 - 2,000 f = 18,628.4289, ETH at 1,500 + 200 f = 1,637.1571;
    # realized BTC -2,000 f = -1,371.5711, ETH -10*200 f = -1,371.5711; wallet 3,000 - 4,000 f = 256.8579
    # (= MM 0.005*18,628.43 + 0.01*16,371.57 = 93.1421 + 163.7157).
    f = 2_750 / 4_010
    result = simulate(cross_pair_book(), PAIR_PATHS, liquidation_fee_rate=0.0, intrabar="worst")
    assert kinds(result) == ["liquidation", "liquidation"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=1, contract="BTCUSDT", side=1, qty=1.0, price=20_000 - 2_000 * f,
                amount=-2_000 * f, wallet=3_000 - 4_000 * f)
    check_event(ev.iloc[1], step=1, point=1, contract="ETHUSDT", side=-1, qty=10.0, price=1_500 + 200 * f,
                amount=-2_000 * f, wallet=3_000 - 4_000 * f)
    assert result.book.accounts["x"].wallet == approx(3_000 - 4_000 * f)  # 256.8579
    money_ok(result)


def test_intrabar_close_model_liquidates_at_lp_between_closes():
    # "close" treats the closes as a continuous path after bar 0: bar 1 closes at 17,000, beyond the
    # isolated LP 18,090.45 and even BP 18,000, yet the liquidation is at the LP (no bad debt),
    # whereas ohlc (the bar opens at 17,000, a gap) executes at 17,000 with a deficit of 1,000.
    paths = {"BTCUSDT": bars([flat(20_000), flat(17_000)])}
    close = simulate(isolated_long_book(), paths, liquidation_fee_rate=0.0, intrabar="close", insurance_fund=5_000)
    check_event(close.events.iloc[0], kind="liquidation", step=1, point=0, price=18_000 / 0.995)
    assert kinds(close) == ["liquidation"]
    ohlc = simulate(isolated_long_book(), paths, liquidation_fee_rate=0.0, intrabar="ohlc", insurance_fund=5_000)
    assert kinds(ohlc) == ["liquidation", "bad_debt"]
    check_event(ohlc.events.iloc[0], step=1, point=0, price=17_000.0, amount=-3_000.0)
    check_event(ohlc.events.iloc[1], amount=1_000.0)


def test_close_model_funding_liquidation_executes_at_the_current_close():
    # intrabar="close", closes 20,000, 18,500, 18,400; funding +3 % due at bar 2.
    # "c": cross long 1 @ 20,000, wallet 2,000.  "i": isolated long 1 @ 20,000 at 10x (W 2,000).
    # Bar 2's only point is its close 18,400: funding 1*18,400*0.03 = 552 -> c's wallet 1,448, i's W 1,448.
    # c at 18,400: 1,448 - 1,600 = -152 <= MM: liquidated.  Before the funding it was safe both at
    # 18,500 (2,000 - 1,500 - 92.5 = 407.5 > 0) and at 18,400 (2,000 - 1,600 - 92 = 308 > 0), so the
    # trigger is the point where funding was paid: 18,400 -> realized -1,600, deficit 152, exactly
    # like i (closed at 18,400, deficit 1,448 - 1,600 = -152).  The engine closes c at 18,500
    # (realized -1,500, deficit 52).
    book = make_book()
    open_position(book, "c", "BTCUSDT", "buy", 1, 20_000, wallet=2_000)
    open_position(book, "i", "BTCUSDT", "buy", 1, 20_000, wallet=10_000, mode="isolated", leverage=10)
    funding = {"BTCUSDT": pd.DataFrame({"timestamp": [T0 + 2 * MINUTE], "rate": [0.03]})}
    paths = {"BTCUSDT": bars([flat(20_000), flat(18_500), flat(18_400)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0, funding=funding, intrabar="close",
                      insurance_fund=1_000)
    liq = result.events_of("liquidation").set_index("account")
    assert liq.loc["i", "price"] == approx(18_400.0)
    assert liq.loc["c", "price"] == approx(18_400.0)
    assert liq.loc["c", "amount"] == approx(-1_600.0)
    bad = result.events_of("bad_debt").set_index("account")
    assert bad.loc["c", "amount"] == approx(152.0)


# ========================================================================= the tape: refusals
def test_refused_tape_action_is_an_event_and_the_run_goes_on():
    # Wallet 1,000, flat.  Row 0 withdraws 5,000 (free balance 1,000): refused.  Row 1 buys 0.5 @ the
    # open 20,000 (IM 0.5*20,000/20 = 500 <= 1,000): filled.  Row 2 names an unknown account: refused.
    # Row 3 deposits 100 at bar 2: done.
    book = make_book()
    book.add_account("a", wallet=1_000)
    tape = [
        {"timestamp": T0 + MINUTE, "action": "withdraw", "account": "a", "amount": 5_000},
        {"timestamp": T0 + MINUTE, "action": "market", "account": "a", "contract": "BTCUSDT", "side": "buy",
         "qty": 0.5},
        {"timestamp": T0 + MINUTE, "action": "market", "account": "zz", "contract": "BTCUSDT", "side": "buy",
         "qty": 0.5},
        {"timestamp": T0 + 2 * MINUTE, "action": "deposit", "account": "a", "amount": 100},
    ]
    paths = {"BTCUSDT": bars([flat(20_000), flat(20_000), flat(20_000)])}
    result = simulate(book, paths, liquidation_fee_rate=0.0, tape=tape)
    assert kinds(result) == ["refused", "fill", "refused", "action"]
    ev = result.events
    check_event(ev.iloc[0], step=1, point=0, account="a")
    assert ev.iloc[0]["reason"].startswith("withdraw: insufficient_free_balance")
    check_event(ev.iloc[1], step=1, point=0, qty=0.5, price=20_000.0)
    check_event(ev.iloc[2], step=1, point=0, account="zz")
    assert "unknown account" in ev.iloc[2]["reason"]
    check_event(ev.iloc[3], step=2, point=0, account="a", amount=100.0, reason="deposit", wallet=1_100.0)
    assert result.book.accounts["a"].wallet == approx(1_100.0)
    assert result.book.accounts["a"].positions[("BTCUSDT", 0)].qty == 0.5
    assert result.ledger["deposits"] == approx(100.0)
    money_ok(result)


def test_simulate_leaves_the_input_book_alone():
    book = isolated_long_book()
    before = book.copy()
    simulate(book, RECOVERING_WICK, liquidation_fee_rate=0.0)
    assert book == before


# ========================================================================= input validation
def test_unsorted_timestamps_name_contract_and_row():
    frame = bars([flat(20_000), flat(20_000)])
    frame["timestamp"] = [T0 + MINUTE, T0]
    with pytest.raises(InputError, match=r"path of BTCUSDT: row 1: timestamp .* out of order"):
        simulate(isolated_long_book(), {"BTCUSDT": frame}, liquidation_fee_rate=0.0)


def test_high_below_open_names_contract_row_and_column():
    frame = bars([flat(20_000), (20_000, 19_999, 19_000, 19_500)])
    with pytest.raises(InputError, match=r"path of BTCUSDT: row 1, column 'high'"):
        simulate(isolated_long_book(), {"BTCUSDT": frame}, liquidation_fee_rate=0.0)


def test_contract_without_a_path_names_account_and_contract():
    book = make_book(eth=True)
    open_position(book, "a", "ETHUSDT", "buy", 1, 1_500, wallet=10_000)
    with pytest.raises(InputError, match=r"account 'a' holds \['ETHUSDT'\] but the paths have no bars"):
        simulate(book, {"BTCUSDT": bars([flat(20_000)])}, liquidation_fee_rate=0.0)


def test_missing_liquidation_fee_rate_is_an_error():
    with pytest.raises(TypeError, match="liquidation_fee_rate"):
        simulate(isolated_long_book(), RECOVERING_WICK)  # no silent default


def test_bad_liquidation_fee_rate_is_named():
    with pytest.raises(InputError, match="liquidation_fee_rate"):
        simulate(isolated_long_book(), RECOVERING_WICK, liquidation_fee_rate=float("nan"))


def test_tape_row_with_a_contract_without_path_is_named():
    tape = [{"timestamp": T0, "action": "market", "account": "a", "contract": "ETHUSDT", "side": "buy", "qty": 1}]
    book = isolated_long_book()
    book.add_contract("ETHUSDT", eth_brackets(), maker_fee=0.0, taker_fee=0.0)
    with pytest.raises(InputError, match=r"tape row 0: contract 'ETHUSDT' has no price path"):
        simulate(book, RECOVERING_WICK, liquidation_fee_rate=0.0, tape=tape)


def test_tape_missing_column_is_named():
    tape = [{"timestamp": T0, "action": "market", "account": "a", "contract": "BTCUSDT", "side": "buy"}]
    with pytest.raises(InputError, match=r"tape row 0 \(market\): column 'qty' is required"):
        simulate(isolated_long_book(), RECOVERING_WICK, liquidation_fee_rate=0.0, tape=tape)


def test_funding_bad_rate_is_named():
    funding = {"BTCUSDT": pd.DataFrame({"timestamp": [T0], "rate": [float("nan")]})}
    with pytest.raises(InputError, match=r"funding of BTCUSDT: row 0, column 'rate'"):
        simulate(isolated_long_book(), RECOVERING_WICK, liquidation_fee_rate=0.0, funding=funding)
