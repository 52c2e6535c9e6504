"""Tests of the account book (riskcore.book.Book): order paths, hedge mode, resting orders,
margin moves, refusals, read-outs, the Binance cross example and the columnar export.

Every expected number is worked out by hand in a comment next to it (never taken from
the code under test).  Unless a test says otherwise the book has

* BTCUSDT: one tier, mmr 0.5 %, max leverage 100x, cum 0 (default leverage min(20, 100) = 20x)
* ETHUSDT: one tier, mmr 1 %, max leverage 50x, cum 0 (default leverage 20x)
* account "a" with a cross wallet of 10,000, marks BTC 20,000 and ETH 1,500,

and zero fees (``fees=True`` gives maker 0.02 %, taker 0.05 %).
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from riskcore import Book, Brackets, Refused
from riskcore.table import BookFormatError

REL = 1e-12


def approx(x, rel=REL, abs=1e-9):
    return pytest.approx(x, rel=rel, abs=abs)


def btc_brackets() -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")


def eth_brackets() -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.01, "max_leverage": 50}],
                                 symbol="ETHUSDT")


def two_tier_brackets() -> Brackets:
    # tier 1: 0-50k, mmr 0.4 %, 125x; tier 2: 50k-1e9, mmr 1 %, 20x, cum = 50,000 * (0.01 - 0.004) = 300
    return Brackets.from_records([
        {"notional_floor": 0, "notional_cap": 50_000, "mmr": 0.004, "max_leverage": 125},
        {"notional_floor": 50_000, "notional_cap": 1e9, "mmr": 0.01, "max_leverage": 20},
    ], symbol="BTCUSDT")


def make_book(fees: bool = False, wallet: float = 10_000.0, mode: str = "one-way") -> Book:
    maker, taker = (0.0002, 0.0005) if fees else (0.0, 0.0)
    book = Book()
    book.add_contract("BTCUSDT", btc_brackets(), maker_fee=maker, taker_fee=taker)
    book.add_contract("ETHUSDT", eth_brackets(), maker_fee=maker, taker_fee=taker)
    book.add_account("a", wallet=wallet, position_mode=mode)
    book.set_marks(BTCUSDT=20_000, ETHUSDT=1_500)
    return book


def refused(book: Book, action, code: str, *words: str) -> Refused:
    """``action()`` must raise Refused with ``code``, a message holding ``words``, and change nothing."""
    before = book.copy()
    with pytest.raises(Refused) as info:
        action()
    err = info.value
    assert err.code == code, str(err)
    for w in words:
        assert w in str(err), f"{w!r} not in {str(err)!r}"
    assert book == before
    return err


# =============================================================== one-way order paths
def test_open_charges_taker_fee_and_holds_cross_initial_margin():
    book = make_book(fees=True)
    book.set_leverage("a", "BTCUSDT", 10)
    fill = book.market_order("a", "BTCUSDT", "buy", 0.5, price=20_000)
    # fee = 0.0005 * 0.5 * 20,000 = 5
    assert fill.fee == approx(5.0)
    assert (fill.closed_qty, fill.opened_qty, fill.realized_pnl) == (0.0, 0.5, 0.0)
    pos = book.position("a", "BTCUSDT")
    assert (pos.side, pos.qty, pos.entry_price, pos.wallet_iso) == (1, 0.5, 20_000.0, 0.0)
    s = book.account_summary("a")
    assert s["wallet"] == approx(10_000 - 5)  # 9,995
    assert book.fees_collected == approx(5.0)
    # cross IM = Q * MP / L = 0.5 * 20,000 / 10 = 1,000; free = 9,995 + 0 - 1,000 = 8,995
    assert s["initial_margin"] == approx(1_000.0)
    assert s["free_balance"] == approx(8_995.0)


def test_add_gives_size_weighted_entry():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.set_marks(BTCUSDT=20_400)
    book.market_order("a", "BTCUSDT", "buy", 3, price=20_400)
    pos = book.position("a", "BTCUSDT")
    # entry = (1 * 20,000 + 3 * 20,400) / 4 = 81,200 / 4 = 20,300
    assert pos.qty == approx(4.0)
    assert pos.entry_price == approx(20_300.0)
    assert book.account_summary("a")["wallet"] == approx(10_000.0)  # no fees, nothing realized


def test_reduce_keeps_entry_and_realizes_pnl_into_cross_wallet():
    book = make_book(fees=True)
    book.market_order("a", "BTCUSDT", "buy", 2, price=20_000)  # fee 0.0005 * 2 * 20,000 = 20
    fill = book.market_order("a", "BTCUSDT", "sell", 0.5, price=21_000)
    # realized = 0.5 * (21,000 - 20,000) = 500; fee = 0.0005 * 0.5 * 21,000 = 5.25
    assert fill.realized_pnl == approx(500.0)
    assert (fill.closed_qty, fill.opened_qty) == (0.5, 0.0)
    assert fill.fee == approx(5.25)
    pos = book.position("a", "BTCUSDT")
    assert (pos.side, pos.qty, pos.entry_price) == (1, 1.5, 20_000.0)
    # wallet = 10,000 - 20 + 500 - 5.25 = 10,474.75
    assert book.account_summary("a")["wallet"] == approx(10_474.75)
    assert book.fees_collected == approx(25.25)  # 20 + 5.25


def test_isolated_reduce_releases_margin_proportionally_and_pnl_to_cross_wallet():
    book = make_book()
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 2, price=20_000)
    # WB_iso = 2 * 20,000 / 10 = 4,000 taken from the cross wallet: 10,000 - 4,000 = 6,000
    assert book.position("a", "BTCUSDT").wallet_iso == approx(4_000.0)
    assert book.account_summary("a")["wallet"] == approx(6_000.0)
    fill = book.market_order("a", "BTCUSDT", "sell", 0.5, price=19_000)
    # realized = 0.5 * (19,000 - 20,000) = -500; released = 4,000 * 0.5 / 2 = 1,000
    assert fill.realized_pnl == approx(-500.0)
    pos = book.position("a", "BTCUSDT")
    assert pos.qty == approx(1.5) and pos.entry_price == 20_000.0
    assert pos.wallet_iso == approx(3_000.0)  # 4,000 - 1,000 (shrinks by the same 1/4 as the size)
    assert book.account_summary("a")["wallet"] == approx(6_500.0)  # 6,000 + 1,000 - 500


def test_close_to_flat_removes_position():
    book = make_book(fees=True)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # fee 10
    fill = book.market_order("a", "BTCUSDT", "sell", 1, price=20_500)  # fee 0.0005 * 20,500 = 10.25
    assert fill.realized_pnl == approx(500.0)  # 1 * (20,500 - 20,000)
    assert book.position("a", "BTCUSDT") is None
    s = book.account_summary("a")
    assert s["n_positions"] == 0
    assert s["initial_margin"] == 0.0
    # 10,000 - 10 + 500 - 10.25 = 10,479.75
    assert s["wallet"] == approx(10_479.75)
    assert s["free_balance"] == approx(10_479.75)
    assert len(book.positions_frame()) == 0


def test_close_isolated_returns_whole_isolated_wallet():
    book = make_book()
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # WB_iso 2,000, wallet 8,000
    book.market_order("a", "BTCUSDT", "sell", 1, price=21_000)
    assert book.position("a", "BTCUSDT") is None
    # 8,000 + 2,000 released + 1,000 realized = 11,000
    s = book.account_summary("a")
    assert s["wallet"] == approx(11_000.0)
    assert s["isolated_wallet"] == 0.0


def test_flip_example_of_the_page():
    # "hold 1 BTC long, sell 1.5 BTC -> the first 1 BTC closes the long, the remaining 0.5 opens a short"
    book = make_book(fees=True)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # fee 0.0005 * 20,000 = 10
    fill = book.market_order("a", "BTCUSDT", "sell", 1.5, price=21_000)
    assert fill.closed_qty == approx(1.0) and fill.opened_qty == approx(0.5)
    assert fill.realized_pnl == approx(1_000.0)  # 1 * (21,000 - 20,000)
    assert fill.fee == approx(15.75)  # 0.0005 * 1.5 * 21,000
    pos = book.position("a", "BTCUSDT")
    assert (pos.side, pos.qty, pos.entry_price) == (-1, 0.5, 21_000.0)
    # 10,000 - 10 + 1,000 - 15.75 = 10,974.25
    assert book.account_summary("a")["wallet"] == approx(10_974.25)


def test_flip_isolated_releases_old_margin_and_allocates_new():
    book = make_book()
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # WB_iso 2,000; wallet 8,000
    book.market_order("a", "BTCUSDT", "sell", 1.5, price=21_000)
    pos = book.position("a", "BTCUSDT")
    assert (pos.side, pos.qty, pos.entry_price) == (-1, 0.5, 21_000.0)
    # new WB_iso = 0.5 * 21,000 / 10 = 1,050
    assert pos.wallet_iso == approx(1_050.0)
    # wallet = 8,000 + 2,000 (released) + 1,000 (realized) - 1,050 (new margin) = 9,950
    assert book.account_summary("a")["wallet"] == approx(9_950.0)


def test_reduce_only_is_clipped_to_the_position_and_never_flips():
    book = make_book(fees=True)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # fee 10
    fill = book.market_order("a", "BTCUSDT", "sell", 3, price=21_000, reduce_only=True)
    assert fill.qty == approx(1.0)
    assert (fill.closed_qty, fill.opened_qty) == (1.0, 0.0)
    assert fill.fee == approx(10.5)  # on the clipped 1: 0.0005 * 1 * 21,000
    assert book.position("a", "BTCUSDT") is None
    # 10,000 - 10 + 1,000 - 10.5 = 10,979.5
    assert book.account_summary("a")["wallet"] == approx(10_979.5)


def test_reduce_only_without_position_is_refused():
    book = make_book()
    refused(book, lambda: book.market_order("a", "BTCUSDT", "sell", 1, price=20_000, reduce_only=True),
            "reduce_only_opens", "no position")
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "sell", 1, price=21_000, reduce_only=True),
            "reduce_only_opens", "no position")


def test_reduce_only_on_the_same_side_is_refused():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    refused(book, lambda: book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, reduce_only=True),
            "reduce_only_opens", "long")
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "buy", 1, price=19_000, reduce_only=True),
            "reduce_only_opens", "long")


def test_new_position_entry_is_exactly_the_fill_price():
    book = make_book(wallet=100_000)
    book.set_marks(BTCUSDT=60_000)
    book.market_order("a", "BTCUSDT", "buy", 0.7, price=60_000)
    assert book.position("a", "BTCUSDT").entry_price == 60_000.0
    flip = make_book(wallet=100_000)
    flip.set_marks(BTCUSDT=60_000)
    flip.market_order("a", "BTCUSDT", "buy", 0.8, price=60_000)
    flip.market_order("a", "BTCUSDT", "sell", 1, price=60_000)  # closes 0.8, opens 0.2 short at the fill
    assert flip.position("a", "BTCUSDT").entry_price == 60_000.0


def test_refused_flip_leaves_the_position_as_it_was():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    # closes 1, would open 6 short: IM 6 * 20,000 / 10 = 12,000 > 10,000
    refused(book, lambda: book.market_order("a", "BTCUSDT", "sell", 7, price=20_000), "insufficient_margin")
    iso = make_book()
    _isolated_long(iso)  # WB_iso 2,000, wallet 8,000
    # releases 2,000 (wallet 10,000), would allocate 6 * 20,000 / 10 = 12,000
    refused(iso, lambda: iso.market_order("a", "BTCUSDT", "sell", 7, price=20_000), "insufficient_margin")


def test_cross_unrealized_profit_funds_initial_margin_of_other_positions():
    book = make_book(wallet=1_000)
    book.set_leverage("a", "BTCUSDT", 100)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # IM 20,000 / 100 = 200
    book.set_marks(BTCUSDT=21_000)
    # free = 1,000 + 1 * (21,000 - 20,000) - 21,000 / 100 = 1,000 + 1,000 - 210 = 1,790
    assert book.free_balance("a") == approx(1_790.0)
    # ETH at 20x: 24 * 1,500 / 20 = 1,800 > 1,790 refused; 20 * 1,500 / 20 = 1,500 fits
    refused(book, lambda: book.market_order("a", "ETHUSDT", "buy", 24, price=1_500), "insufficient_margin")
    book.market_order("a", "ETHUSDT", "buy", 20, price=1_500)
    assert book.free_balance("a") == approx(290.0)  # 1,790 - 1,500


# ======================================================================= hedge mode
def test_hedge_legs_coexist_with_their_own_entry():
    book = make_book(mode="hedge")
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    book.market_order("a", "BTCUSDT", "sell", 0.5, price=21_000, leg="short")
    lg, sh = book.position("a", "BTCUSDT", "long"), book.position("a", "BTCUSDT", "short")
    assert (lg.side, lg.qty, lg.entry_price) == (1, 1.0, 20_000.0)
    assert (sh.side, sh.qty, sh.entry_price) == (-1, 0.5, 21_000.0)
    assert book.account_summary("a")["n_positions"] == 2


def test_hedge_closing_the_long_does_not_affect_the_short():
    book = make_book(mode="hedge")
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    book.market_order("a", "BTCUSDT", "sell", 0.5, price=21_000, leg="short")
    book.set_tp_sl("a", "BTCUSDT", take_profit=19_000, leg="short")
    short_before = book.copy().position("a", "BTCUSDT", "short")
    fill = book.market_order("a", "BTCUSDT", "sell", 1, price=22_000, leg="long")
    assert fill.realized_pnl == approx(2_000.0)  # 1 * (22,000 - 20,000)
    assert book.position("a", "BTCUSDT", "long") is None
    assert book.position("a", "BTCUSDT", "short") == short_before  # 0.5 @ 21,000, TP 19,000
    assert book.account_summary("a")["wallet"] == approx(12_000.0)  # 10,000 + 2,000


def test_hedge_isolated_legs_have_their_own_leverage_margin_and_liquidation_price():
    book = make_book(mode="hedge")
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10, leg="long")
    book.set_leverage("a", "BTCUSDT", 5, leg="short")
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    book.market_order("a", "BTCUSDT", "sell", 1, price=20_000, leg="short")
    lg, sh = book.position("a", "BTCUSDT", "long"), book.position("a", "BTCUSDT", "short")
    assert lg.wallet_iso == approx(2_000.0)  # 1 * 20,000 / 10
    assert sh.wallet_iso == approx(4_000.0)  # 1 * 20,000 / 5
    assert book.account_summary("a")["wallet"] == approx(4_000.0)  # 10,000 - 2,000 - 4,000
    frame = book.positions_frame().set_index("leg")
    assert frame.loc["long", "leverage"] == 10.0 and frame.loc["short", "leverage"] == 5.0
    # long:  LP = (2,000 + 0 - 20,000) / (0.005 - 1) = 18,000 / 0.995 = 18,090.452261306533
    # short: LP = (4,000 + 0 + 20,000) / (0.005 + 1) = 24,000 / 1.005 = 23,880.597014925374
    assert book.liquidation_price("a", "BTCUSDT", leg="long") == approx(18_000 / 0.995)
    assert book.liquidation_price("a", "BTCUSDT", leg="short") == approx(24_000 / 1.005)
    assert frame.loc["long", "liquidation_price"] == approx(18_000 / 0.995)
    assert frame.loc["short", "liquidation_price"] == approx(24_000 / 1.005)


def test_hedge_orders_must_name_the_leg():
    book = make_book(mode="hedge")
    before = book.copy()
    with pytest.raises(ValueError, match="leg"):
        book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    with pytest.raises(ValueError, match="leg"):
        book.limit_order("a", "BTCUSDT", "buy", 1, price=19_000)
    assert book == before


def test_hedge_closing_more_than_the_leg_is_refused():
    book = make_book(mode="hedge")
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    refused(book, lambda: book.market_order("a", "BTCUSDT", "sell", 1.5, price=20_000, leg="long"),
            "close_exceeds_position", "long leg")
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "sell", 1.5, price=21_000, leg="long"),
            "close_exceeds_position", "long leg")
    book.limit_order("a", "BTCUSDT", "sell", 0.6, price=21_000, leg="long")
    # 0.6 already resting + 0.6 = 1.2 > 1 held
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "sell", 0.6, price=22_000, leg="long"),
            "close_exceeds_position", "long leg")


def test_hedge_cross_legs_both_charged_mm_and_im():
    book = make_book(mode="hedge")
    book.add_account("o", wallet=10_000)  # one-way twin
    for acct, legs in (("a", ("long", "short")), ("o", (None, None))):
        book.market_order(acct, "BTCUSDT", "buy", 1, price=20_000, leg=legs[0])
        book.market_order(acct, "BTCUSDT", "sell", 1, price=20_000, leg=legs[1])
    book.set_marks(BTCUSDT=21_000)
    h = book.account_summary("a")
    # uPnL +1,000 (long) - 1,000 (short) = 0 -> MB 10,000
    assert h["margin_balance"] == approx(10_000.0)
    # MM = 2 * 21,000 * 0.005 = 210; IM = 2 * 21,000 / 20 = 2,100; free = 10,000 - 2,100 = 7,900
    assert h["maintenance_margin"] == approx(210.0)
    assert h["initial_margin"] == approx(2_100.0)
    assert h["free_balance"] == approx(7_900.0)
    assert h["mmr"] == approx(210 / 10_000)
    # the one-way twin is flat: nothing charged
    o = book.account_summary("o")
    assert (o["maintenance_margin"], o["initial_margin"], o["n_positions"]) == (0.0, 0.0, 0)
    assert o["free_balance"] == approx(10_000.0)


def test_hedge_cross_legs_with_different_leverage_are_refused():
    book = make_book(mode="hedge")
    refused(book, lambda: book.set_leverage("a", "BTCUSDT", 10, leg="long"), "cross_leverage_mismatch", "leverage")
    # isolated legs may differ, but then going back to cross is refused until they agree
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10, leg="long")
    book.set_leverage("a", "BTCUSDT", 5, leg="short")
    refused(book, lambda: book.set_margin_mode("a", "BTCUSDT", "cross"), "cross_leverage_mismatch", "BTCUSDT")
    book.set_leverage("a", "BTCUSDT", 10)  # both legs
    book.set_margin_mode("a", "BTCUSDT", "cross")
    st = book.settings("a", "BTCUSDT")
    assert (st.leverage_long, st.leverage_short) == (10.0, 10.0)


def test_hedge_reduce_only_is_clipped_to_the_leg_and_never_opens():
    book = make_book(mode="hedge")
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    fill = book.market_order("a", "BTCUSDT", "sell", 3, price=21_000, leg="long", reduce_only=True)
    assert fill.qty == approx(1.0) and fill.realized_pnl == approx(1_000.0)  # 1 * (21,000 - 20,000)
    assert book.position("a", "BTCUSDT", "long") is None
    assert book.position("a", "BTCUSDT", "short") is None
    refused(book, lambda: book.market_order("a", "BTCUSDT", "sell", 1, price=21_000, leg="short", reduce_only=True),
            "reduce_only_opens", "short leg")


def test_hedge_cross_liquidation_price_with_both_legs():
    book = make_book(wallet=1_000, mode="hedge")
    book.set_leverage("a", "BTCUSDT", 100)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    book.market_order("a", "BTCUSDT", "sell", 0.5, price=21_000, leg="short")
    # LP = (WB + cumL + cumS - QL*EPL + QS*EPS) / (QL*mmr + QS*mmr - QL + QS)
    #    = (1,000 - 20,000 + 10,500) / (0.005 + 0.0025 - 1 + 0.5) = -8,500 / -0.4925 = 17,258.883248730964
    assert book.cross_liquidation_price("a", "BTCUSDT") == approx(8_500 / 0.4925)
    frame = book.positions_frame()
    assert list(frame["liquidation_price"]) == [approx(8_500 / 0.4925)] * 2


# =================================================================== resting orders
def test_limit_order_holds_initial_margin_and_cancel_releases_it():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    oid = book.limit_order("a", "BTCUSDT", "buy", 1, price=19_000)
    s = book.account_summary("a")
    # held = 1 * 19,000 / 10 = 1,900; free = 10,000 - 1,900 = 8,100
    assert s["order_margin"] == approx(1_900.0)
    assert s["free_balance"] == approx(8_100.0)
    assert s["n_orders"] == 1
    order = book.cancel_order(oid)
    assert (order.side, order.qty, order.price) == (1, 1.0, 19_000.0)
    s = book.account_summary("a")
    assert s["order_margin"] == 0.0 and s["free_balance"] == approx(10_000.0)
    assert book.orders("a") == []


def test_opposite_order_in_one_way_first_uses_up_the_position():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # IM 1 * 20,000 / 10 = 2,000
    book.limit_order("a", "BTCUSDT", "sell", 1.5, price=21_000)
    # the first 1 only closes the long; opening part 0.5 holds 0.5 * 21,000 / 10 = 1,050
    s = book.account_summary("a")
    assert s["order_margin"] == approx(1_050.0)
    assert s["free_balance"] == approx(6_950.0)  # 10,000 - 2,000 - 1,050
    book.limit_order("a", "BTCUSDT", "sell", 1, price=22_000)
    # the long is used up by the first order: all of it opens, 1 * 22,000 / 10 = 2,200
    s = book.account_summary("a")
    assert s["order_margin"] == approx(3_250.0)  # 1,050 + 2,200
    assert s["free_balance"] == approx(4_750.0)  # 10,000 - 2,000 - 3,250


def test_fill_order_fills_at_the_limit_with_the_maker_fee():
    book = make_book(fees=True)
    book.set_leverage("a", "BTCUSDT", 10)
    oid = book.limit_order("a", "BTCUSDT", "buy", 1, price=19_000)
    fill = book.fill_order(oid)
    assert fill.price == 19_000.0
    assert fill.fee == approx(3.8)  # maker 0.0002 * 1 * 19,000
    pos = book.position("a", "BTCUSDT")
    assert (pos.side, pos.qty, pos.entry_price) == (1, 1.0, 19_000.0)
    s = book.account_summary("a")
    assert s["wallet"] == approx(9_996.2)  # 10,000 - 3.8
    assert s["order_margin"] == 0.0 and s["n_orders"] == 0
    assert book.fees_collected == approx(3.8)


def test_reduce_only_and_hedge_closing_orders_hold_no_margin():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.limit_order("a", "BTCUSDT", "sell", 1, price=21_000, reduce_only=True)
    s = book.account_summary("a")
    assert s["order_margin"] == 0.0
    assert s["free_balance"] == approx(8_000.0)  # 10,000 - 1 * 20,000 / 10

    hedge = make_book(mode="hedge")
    hedge.market_order("a", "BTCUSDT", "buy", 1, price=20_000, leg="long")  # IM 20,000 / 20 = 1,000
    hedge.limit_order("a", "BTCUSDT", "sell", 1, price=21_000, leg="long")  # closes the leg
    assert hedge.account_summary("a")["order_margin"] == 0.0
    hedge.limit_order("a", "BTCUSDT", "buy", 1, price=19_000, leg="long")  # opens: 19,000 / 20 = 950
    s = hedge.account_summary("a")
    assert s["order_margin"] == approx(950.0)
    assert s["free_balance"] == approx(8_050.0)  # 10,000 - 1,000 - 950


def test_filling_a_reduce_only_order_with_nothing_left_is_refused_and_it_keeps_resting():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    oid = book.limit_order("a", "BTCUSDT", "sell", 1, price=21_000, reduce_only=True)
    book.market_order("a", "BTCUSDT", "sell", 1, price=20_500)  # flat now
    refused(book, lambda: book.fill_order(oid), "reduce_only_opens")
    assert [o.order_id for o in book.orders("a")] == [oid]


# ==================================================================== margin moves
def _isolated_long(book: Book) -> None:
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # WB_iso 2,000; wallet 8,000


def test_add_margin_up_to_the_free_balance():
    book = make_book()
    _isolated_long(book)
    book.add_margin("a", "BTCUSDT", 500)
    assert book.position("a", "BTCUSDT").wallet_iso == approx(2_500.0)  # 2,000 + 500
    s = book.account_summary("a")
    assert s["wallet"] == approx(7_500.0) and s["free_balance"] == approx(7_500.0)  # 8,000 - 500
    err = refused(book, lambda: book.add_margin("a", "BTCUSDT", 7_500.5), "insufficient_free_balance",
                  "long 1 BTCUSDT", "7500")
    assert "long 1 BTCUSDT" in err.blocker
    book.add_margin("a", "BTCUSDT", 7_500)  # exactly the free balance
    assert book.position("a", "BTCUSDT").wallet_iso == approx(10_000.0)
    assert book.free_balance("a") == approx(0.0)


def test_remove_margin_bounded_by_the_rule():
    book = make_book()
    _isolated_long(book)
    book.set_marks(BTCUSDT=21_000)
    # max(0, min(2,000, 2,000 + 1 * (21,000 - 20,000) - 1 * 21,000 / 10)) = min(2,000, 900) = 900
    assert book.max_removable_margin("a", "BTCUSDT") == approx(900.0)
    err = refused(book, lambda: book.remove_margin("a", "BTCUSDT", 900.5), "remove_too_much", "900")
    assert "long 1 BTCUSDT" in err.blocker
    book.remove_margin("a", "BTCUSDT", 900)
    assert book.position("a", "BTCUSDT").wallet_iso == approx(1_100.0)  # 2,000 - 900
    assert book.account_summary("a")["wallet"] == approx(8_900.0)  # 8,000 + 900


def test_remove_margin_zero_when_losing_and_capped_by_the_wallet_when_winning():
    book = make_book()
    _isolated_long(book)
    book.set_marks(BTCUSDT=19_000)
    # 2,000 + (19,000 - 20,000) - 19,000 / 10 = -900 -> max(0, ...) = 0
    assert book.max_removable_margin("a", "BTCUSDT") == 0.0
    refused(book, lambda: book.remove_margin("a", "BTCUSDT", 1), "remove_too_much")
    book.set_marks(BTCUSDT=30_000)
    # min(2,000, 2,000 + 10,000 - 3,000 = 9,000) = 2,000
    assert book.max_removable_margin("a", "BTCUSDT") == approx(2_000.0)


def test_remove_margin_of_an_isolated_short():
    book = make_book()
    book.set_margin_mode("a", "ETHUSDT", "isolated")
    book.set_leverage("a", "ETHUSDT", 10)
    book.market_order("a", "ETHUSDT", "sell", 2, price=1_500)  # WB_iso 2 * 1,500 / 10 = 300
    book.set_marks(ETHUSDT=1_400)
    # min(300, 300 + (-1) * 2 * (1,400 - 1,500) - 2 * 1,400 / 10) = min(300, 300 + 200 - 280) = 220
    assert book.max_removable_margin("a", "ETHUSDT") == approx(220.0)


def test_margin_moves_only_on_isolated_positions():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # cross
    refused(book, lambda: book.add_margin("a", "BTCUSDT", 100), "not_isolated", "cross")
    refused(book, lambda: book.remove_margin("a", "BTCUSDT", 100), "not_isolated", "cross")


# ========================================================================= refusals
def test_margin_mode_switch_refused_with_an_open_position():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    err = refused(book, lambda: book.set_margin_mode("a", "BTCUSDT", "isolated"), "margin_mode_blocked",
                  "long 1 BTCUSDT")
    assert "long 1 BTCUSDT" in err.blocker


def test_margin_mode_switch_refused_with_a_resting_order():
    book = make_book()
    book.limit_order("a", "BTCUSDT", "buy", 1, price=19_000)
    err = refused(book, lambda: book.set_margin_mode("a", "BTCUSDT", "isolated"), "margin_mode_blocked",
                  "order #1")
    assert "#1" in err.blocker


def test_margin_mode_switch_allowed_when_flat_on_that_contract():
    book = make_book()
    book.market_order("a", "ETHUSDT", "buy", 1, price=1_500)
    book.limit_order("a", "ETHUSDT", "buy", 1, price=1_400)
    book.set_margin_mode("a", "BTCUSDT", "isolated")  # other contract busy: allowed
    assert book.settings("a", "BTCUSDT").margin_mode == 1
    # once flat again the contract may switch too
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.market_order("a", "BTCUSDT", "sell", 1, price=20_000)
    book.set_margin_mode("a", "BTCUSDT", "cross")
    assert book.settings("a", "BTCUSDT").margin_mode == 0


def test_position_mode_switch_refused_with_a_position_on_any_contract():
    book = make_book()
    book.market_order("a", "ETHUSDT", "sell", 1, price=1_500)
    refused(book, lambda: book.set_position_mode("a", "hedge"), "position_mode_blocked", "short 1 ETHUSDT")


def test_position_mode_switch_refused_with_a_resting_order_on_any_contract():
    book = make_book()
    book.limit_order("a", "ETHUSDT", "buy", 1, price=1_400)
    refused(book, lambda: book.set_position_mode("a", "hedge"), "position_mode_blocked", "order #1")
    book.cancel_order(1)
    book.set_position_mode("a", "hedge")
    assert book.account_summary("a")["position_mode"] == "hedge"


def test_leverage_above_the_bracket_cap_is_refused():
    book = Book()
    book.add_contract("BTCUSDT", two_tier_brackets(), maker_fee=0, taker_fee=0)
    book.add_account("a", wallet=100_000)
    book.set_marks(BTCUSDT=60_000)
    book.market_order("a", "BTCUSDT", "buy", 1, price=60_000)  # 60k notional at the default 20x: tier 2 allows it
    # 100x is only allowed in tier 1 (max leverage 125 >= 100; tier 2 has 20), i.e. up to 50k < 60k
    refused(book, lambda: book.set_leverage("a", "BTCUSDT", 100), "leverage_cap", "60,000", "100x")


def test_order_above_the_leverage_cap_is_refused():
    book = Book()
    book.add_contract("BTCUSDT", two_tier_brackets(), maker_fee=0, taker_fee=0)
    book.add_account("a", wallet=100_000)
    book.set_marks(BTCUSDT=60_000)
    book.set_leverage("a", "BTCUSDT", 100)  # flat: fine
    refused(book, lambda: book.market_order("a", "BTCUSDT", "buy", 1, price=60_000), "leverage_cap", "100x")
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "buy", 1, price=60_000), "leverage_cap", "100x")
    book.market_order("a", "BTCUSDT", "buy", 0.8, price=60_000)  # 48,000 <= 50,000: allowed


def test_closing_limit_order_is_not_held_to_the_leverage_cap():
    book = Book()
    book.add_contract("BTCUSDT", two_tier_brackets(), maker_fee=0, taker_fee=0)
    book.add_account("a", wallet=100_000)
    book.set_marks(BTCUSDT=60_000)
    book.set_leverage("a", "BTCUSDT", 100)
    book.market_order("a", "BTCUSDT", "buy", 0.8, price=60_000)  # 48,000 <= 50,000 at 100x
    # selling the 0.8 at 62,600 (50,080) only closes the long: no short exposure at all
    book.limit_order("a", "BTCUSDT", "sell", 0.8, price=62_600)
    assert len(book.orders("a")) == 1


def test_leverage_above_the_first_tier_max_is_refused_even_when_flat():
    book = Book()
    book.add_contract("BTCUSDT", two_tier_brackets(), maker_fee=0, taker_fee=0)
    book.add_account("a", wallet=100_000)
    book.set_marks(BTCUSDT=60_000)
    # a notional of 0 lies in tier 1 whose max leverage is 125x: 150x is above the bracket's cap
    refused(book, lambda: book.set_leverage("a", "BTCUSDT", 150), "leverage_cap")


def test_leverage_change_that_uncovers_initial_margin_is_refused():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 4, price=20_000)  # IM 4 * 20,000 / 20 = 4,000
    # at 2x: IM 80,000 / 2 = 40,000 > 10,000
    refused(book, lambda: book.set_leverage("a", "BTCUSDT", 2), "insufficient_margin", "uncovered")


def test_market_order_leaving_initial_margin_uncovered_is_refused():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    # 6 * 20,000 / 10 = 12,000 > 10,000
    refused(book, lambda: book.market_order("a", "BTCUSDT", "buy", 6, price=20_000), "insufficient_margin",
            "uncovered")
    book.market_order("a", "BTCUSDT", "buy", 5, price=20_000)  # exactly 10,000: covered
    assert book.free_balance("a") == approx(0.0)


def test_isolated_market_order_leaving_initial_margin_uncovered_is_refused():
    book = make_book()
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    # WB_iso would be 12,000 > wallet 10,000
    refused(book, lambda: book.market_order("a", "BTCUSDT", "buy", 6, price=20_000), "insufficient_margin")


def test_limit_order_leaving_initial_margin_uncovered_is_refused():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    # 5.5 * 20,000 / 10 = 11,000 > 10,000
    refused(book, lambda: book.limit_order("a", "BTCUSDT", "buy", 5.5, price=20_000), "insufficient_margin",
            "order")
    assert book.next_order_id == 1


def test_withdraw_more_than_the_free_balance_is_refused():
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # free = 10,000 - 2,000 = 8,000
    refused(book, lambda: book.withdraw("a", 8_000.5), "insufficient_free_balance", "8000")
    book.withdraw("a", 8_000)
    assert book.account_summary("a")["wallet"] == approx(2_000.0)


def test_auto_add_margin_on_a_cross_contract_is_refused():
    book = make_book()
    refused(book, lambda: book.set_auto_add_margin("a", "BTCUSDT", True), "auto_add_cross", "cross")
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_auto_add_margin("a", "BTCUSDT", True)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    assert bool(book.positions_frame()["auto_add_margin"].iloc[0]) is True


def test_tp_sl_already_crossed_at_mark_is_refused():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)  # long, mark 20,000
    refused(book, lambda: book.set_tp_sl("a", "BTCUSDT", take_profit=19_900), "tp_sl_crossed", "take profit")
    refused(book, lambda: book.set_tp_sl("a", "BTCUSDT", take_profit=20_000), "tp_sl_crossed", "take profit")
    refused(book, lambda: book.set_tp_sl("a", "BTCUSDT", stop_loss=20_100), "tp_sl_crossed", "stop loss")
    book.market_order("a", "ETHUSDT", "sell", 1, price=1_500)  # short, mark 1,500
    refused(book, lambda: book.set_tp_sl("a", "ETHUSDT", take_profit=1_600), "tp_sl_crossed", "take profit")
    refused(book, lambda: book.set_tp_sl("a", "ETHUSDT", stop_loss=1_400), "tp_sl_crossed", "stop loss")
    book.set_tp_sl("a", "BTCUSDT", take_profit=21_000, stop_loss=19_000)
    pos = book.position("a", "BTCUSDT")
    assert (pos.take_profit, pos.stop_loss) == (21_000.0, 19_000.0)


# ======================================================================== read-outs
def _cross_two_contracts() -> Book:
    """Cross long 1 BTC @ 20,000 (10x) and short 10 ETH @ 1,500 (5x), a resting sell 1 ETH @ 1,700;
    marks then moved to BTC 19,000 and ETH 1,600."""
    book = make_book()
    book.set_leverage("a", "BTCUSDT", 10)
    book.set_leverage("a", "ETHUSDT", 5)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.market_order("a", "ETHUSDT", "sell", 10, price=1_500)
    book.limit_order("a", "ETHUSDT", "sell", 1, price=1_700)  # adds to the short: holds 1,700 / 5 = 340
    book.set_marks(BTCUSDT=19_000, ETHUSDT=1_600)
    return book


def test_account_metrics_at_marks():
    s = _cross_two_contracts().account_summary("a")
    # uPnL: BTC 1 * (19,000 - 20,000) = -1,000; ETH -1 * 10 * (1,600 - 1,500) = -1,000
    assert s["cross_unrealized_pnl"] == approx(-2_000.0)
    assert s["margin_balance"] == approx(8_000.0)  # 10,000 - 2,000
    # MM = 19,000 * 0.005 + 16,000 * 0.01 = 95 + 160 = 255
    assert s["maintenance_margin"] == approx(255.0)
    # IM = 19,000 / 10 + 16,000 / 5 = 1,900 + 3,200 = 5,100
    assert s["initial_margin"] == approx(5_100.0)
    assert s["mmr"] == approx(0.031875)  # 255 / 8,000
    assert s["imr"] == approx(0.6375)  # 5,100 / 8,000
    assert s["order_margin"] == approx(340.0)
    assert s["free_balance"] == approx(2_560.0)  # 8,000 - 5,100 - 340
    assert s["equity"] == approx(8_000.0)
    assert (s["n_positions"], s["n_orders"]) == (2, 1)


def test_free_balance_floors_at_zero():
    book = _cross_two_contracts()
    book.set_marks(BTCUSDT=15_000)
    # MB = 10,000 - 5,000 - 1,000 = 4,000; IM = 1,500 + 3,200 = 4,700; 4,000 - 4,700 - 340 = -1,040 -> 0
    assert book.free_balance("a") == 0.0
    assert book.account_summary("a")["free_balance"] == 0.0
    refused(book, lambda: book.withdraw("a", 0.01), "insufficient_free_balance")


def test_positions_frame_columns_and_values():
    frame = _cross_two_contracts().positions_frame()
    expected_cols = ["account", "contract", "leg", "side", "qty", "entry_price", "margin_mode", "leverage",
                     "mark_price", "notional", "unrealized_pnl", "maintenance_margin", "initial_margin",
                     "wallet_iso", "liquidation_price", "bankruptcy_price", "auto_add_margin", "take_profit",
                     "stop_loss"]
    assert list(frame.columns) == expected_cols
    rows = frame.set_index("contract")
    btc, eth = rows.loc["BTCUSDT"], rows.loc["ETHUSDT"]
    assert (btc["account"], btc["leg"], btc["side"], btc["margin_mode"]) == ("a", "both", 1, "cross")
    assert (eth["side"], eth["qty"], eth["entry_price"], eth["leverage"]) == (-1, 10.0, 1_500.0, 5.0)
    assert btc["mark_price"] == 19_000.0 and btc["notional"] == approx(19_000.0)
    assert eth["notional"] == approx(16_000.0)  # 10 * 1,600
    assert btc["unrealized_pnl"] == approx(-1_000.0) and eth["unrealized_pnl"] == approx(-1_000.0)
    assert btc["maintenance_margin"] == approx(95.0) and eth["maintenance_margin"] == approx(160.0)
    assert btc["initial_margin"] == approx(1_900.0) and eth["initial_margin"] == approx(3_200.0)
    assert btc["wallet_iso"] == 0.0
    # cross LP of BTC, ETH at mark: WB - TMM + UPNL = 10,000 - 160 - 1,000 = 8,840;
    #   LP = (8,840 + 0 - 20,000) / (0.005 - 1) = 11,160 / 0.995 = 11,216.08040201005
    assert btc["liquidation_price"] == approx(11_160 / 0.995)
    # cross LP of ETH, BTC at mark: 10,000 - 95 - 1,000 = 8,905;
    #   LP = (8,905 + 0 + 10 * 1,500) / (10 * 0.01 + 10) = 23,905 / 10.1 = 2,366.8316831683166
    assert eth["liquidation_price"] == approx(23_905 / 10.1)
    # cross bankruptcy (MB = 0, the other at mark): BTC (20,000 - 10,000 + 1,000) / 1 = 11,000;
    #   ETH (-15,000 - 10,000 + 1,000) / -10 = 2,400
    assert btc["bankruptcy_price"] == approx(11_000.0)
    assert eth["bankruptcy_price"] == approx(2_400.0)
    assert bool(btc["auto_add_margin"]) is False
    assert math.isnan(btc["take_profit"]) and math.isnan(btc["stop_loss"])


def test_accounts_frame_columns_and_values():
    book = _cross_two_contracts()
    book.add_account("b", wallet=500)
    frame = book.accounts_frame()
    assert list(frame.columns) == [
        "account", "position_mode", "wallet", "isolated_wallet", "cross_unrealized_pnl", "margin_balance",
        "maintenance_margin", "initial_margin", "order_margin", "mmr", "imr", "free_balance", "equity",
        "n_positions", "n_orders"]
    rows = frame.set_index("account")
    a, b = rows.loc["a"], rows.loc["b"]
    assert a["position_mode"] == "one-way"
    assert a["wallet"] == approx(10_000.0) and a["isolated_wallet"] == 0.0
    assert a["margin_balance"] == approx(8_000.0) and a["maintenance_margin"] == approx(255.0)
    assert a["initial_margin"] == approx(5_100.0) and a["order_margin"] == approx(340.0)
    assert a["mmr"] == approx(255 / 8_000) and a["imr"] == approx(5_100 / 8_000)
    assert a["free_balance"] == approx(2_560.0) and a["equity"] == approx(8_000.0)
    assert (a["n_positions"], a["n_orders"]) == (2, 1)
    # an empty account: MB 500, nothing charged, ratios 0 / 500 = 0
    assert (b["wallet"], b["margin_balance"], b["free_balance"], b["mmr"], b["imr"]) == (500, 500, 500, 0, 0)


def test_unrealized_pnl_per_position():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.market_order("a", "ETHUSDT", "sell", 2, price=1_500)
    book.set_marks(BTCUSDT=21_000, ETHUSDT=1_400)
    upnl = book.positions_frame().set_index("contract")["unrealized_pnl"]
    assert upnl["BTCUSDT"] == approx(1_000.0)  # 1 * (21,000 - 20,000)
    assert upnl["ETHUSDT"] == approx(200.0)  # -1 * 2 * (1,400 - 1,500)


def test_isolated_liquidation_and_bankruptcy_prices():
    book = make_book()
    _isolated_long(book)  # long 1 @ 20,000, WB_iso 2,000
    book.set_margin_mode("a", "ETHUSDT", "isolated")
    book.set_leverage("a", "ETHUSDT", 10)
    book.market_order("a", "ETHUSDT", "sell", 2, price=1_500)  # WB_iso 2 * 1,500 / 10 = 300
    frame = book.positions_frame().set_index("contract")
    # long:  LP = (2,000 + 0 - 1 * 20,000) / (1 * 0.005 - 1) = 18,000 / 0.995 = 18,090.452261306533
    #        BP = 20,000 - 2,000 / 1 = 18,000
    # short: LP = (300 + 0 + 2 * 1,500) / (2 * 0.01 + 2) = 3,300 / 2.02 = 1,633.6633663366336
    #        BP = 1,500 + 300 / 2 = 1,650
    assert frame.loc["BTCUSDT", "wallet_iso"] == approx(2_000.0)
    assert frame.loc["ETHUSDT", "wallet_iso"] == approx(300.0)
    assert frame.loc["BTCUSDT", "liquidation_price"] == approx(18_000 / 0.995)
    assert frame.loc["BTCUSDT", "bankruptcy_price"] == approx(18_000.0)
    assert frame.loc["ETHUSDT", "liquidation_price"] == approx(3_300 / 2.02)
    assert frame.loc["ETHUSDT", "bankruptcy_price"] == approx(1_650.0)
    assert book.liquidation_price("a", "BTCUSDT") == approx(18_000 / 0.995)
    assert book.liquidation_price("a", "ETHUSDT") == approx(3_300 / 2.02)
    s = book.account_summary("a")
    assert s["isolated_wallet"] == approx(2_300.0)  # 2,000 + 300
    assert s["wallet"] == approx(7_700.0)  # 10,000 - 2,300


def test_cross_liquidation_price_of_a_single_position():
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    # LP = (WB + cum - side * Q * EP) / (Q * mmr - side * Q) = (10,000 - 20,000) / (0.005 - 1)
    #    = 10,000 / 0.995 = 10,050.251256281408
    assert book.cross_liquidation_price("a", "BTCUSDT") == approx(10_000 / 0.995)
    assert book.liquidation_price("a", "BTCUSDT") == approx(10_000 / 0.995)
    short = make_book()
    short.market_order("a", "BTCUSDT", "sell", 1, price=20_000)
    # LP = (10,000 + 20,000) / (0.005 + 1) = 30,000 / 1.005 = 29,850.74626865672
    assert short.cross_liquidation_price("a", "BTCUSDT") == approx(30_000 / 1.005)
    assert math.isnan(short.cross_liquidation_price("a", "ETHUSDT"))  # flat


def _cross_with_isolated_eth() -> Book:
    """Cross long 1 BTC @ 20,000 (20x, IM 1,000) and isolated long 10 ETH @ 1,500 at 10x (WB_iso 1,500)."""
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.set_margin_mode("a", "ETHUSDT", "isolated")
    book.set_leverage("a", "ETHUSDT", 10)
    book.market_order("a", "ETHUSDT", "buy", 10, price=1_500)
    return book


def test_isolated_loser_does_not_touch_the_cross_book():
    book = _cross_with_isolated_eth()
    # wallet 10,000 - 1,500 = 8,500; MB 8,500; MM 20,000 * 0.005 = 100; free 8,500 - 1,000 = 7,500
    # cross LP of BTC = (8,500 - 20,000) / (0.005 - 1) = 11,500 / 0.995 = 11,557.788944723618
    for eth_mark in (1_500, 1_400, 500):  # 500: the isolated loss 10,000 is beyond its 1,500 wallet
        book.set_marks(ETHUSDT=eth_mark)
        s = book.account_summary("a")
        assert s["margin_balance"] == approx(8_500.0)
        assert s["maintenance_margin"] == approx(100.0)
        assert s["mmr"] == approx(100 / 8_500)
        assert s["free_balance"] == approx(7_500.0)
        assert book.cross_liquidation_price("a", "BTCUSDT") == approx(11_500 / 0.995)


def test_equity_counts_an_isolated_loss_only_up_to_its_wallet():
    book = _cross_with_isolated_eth()
    book.set_marks(ETHUSDT=500)
    # cross MB 8,500 untouched; the isolated position is worth max(0, 1,500 + 10 * (500 - 1,500)) = 0
    assert book.account_summary("a")["equity"] == approx(8_500.0)


def test_isolated_top_up_lowers_cross_free_balance():
    book = _cross_with_isolated_eth()
    book.add_margin("a", "ETHUSDT", 500)
    s = book.account_summary("a")
    assert book.position("a", "ETHUSDT").wallet_iso == approx(2_000.0)  # 1,500 + 500
    assert s["wallet"] == approx(8_000.0)  # 8,500 - 500
    assert s["margin_balance"] == approx(8_000.0)
    assert s["free_balance"] == approx(7_000.0)  # 8,000 - 1,000
    # and the cross book moves closer to liquidation: (8,000 - 20,000) / (0.005 - 1) = 12,000 / 0.995
    assert book.cross_liquidation_price("a", "BTCUSDT") == approx(12_000 / 0.995)


# ================================================================ Binance's example
# WB 1,535,443.01; BTCUSDT long 109.488 @ 32,481.98, mark 31,967.27, tier (2.5 %, cum 16,300) of the
# 2021 table; ETHUSDT long 3,683.979 @ 1,456.84, mark 1,335.18, tier (10 %, cum 135,365).
WB = 1_535_443.01
BTC_Q, BTC_EP, BTC_MP = 109.488, 32_481.98, 31_967.27
ETH_Q, ETH_EP, ETH_MP = 3_683.979, 1_456.84, 1_335.18


def binance_eth_brackets() -> Brackets:
    # 0.5 % (max 100x) to 1,424,894.74, then 10 % (max 5x; must be < 1 / 0.10):
    # cum_2 = 1,424,894.74 * (0.10 - 0.005) = 135,365.0003
    return Brackets.from_records([
        {"notional_floor": 0, "notional_cap": 1_424_894.74, "mmr": 0.005, "max_leverage": 100},
        {"notional_floor": 1_424_894.74, "notional_cap": 1e9, "mmr": 0.10, "max_leverage": 5},
    ], symbol="ETHUSDT")


def binance_book() -> Book:
    book = Book()
    book.add_contract("BTCUSDT", Brackets.load("BTCUSDT", "2022-05-21"), maker_fee=0, taker_fee=0)
    book.add_contract("ETHUSDT", binance_eth_brackets(), maker_fee=0, taker_fee=0)
    book.set_marks(BTCUSDT=BTC_EP, ETHUSDT=ETH_EP)
    return book


def test_binance_cross_example():
    book = binance_book()
    book.add_account("x", wallet=WB)
    # BTC notional 109.488 * 32,481.98 = 3,556,387.03 lies in the 1M-10M tier (max 20x);
    # ETH notional 3,683.979 * 1,456.84 = 5,366,967.97 in the 10 % tier (max 5x)
    book.set_leverage("x", "BTCUSDT", 20)
    book.set_leverage("x", "ETHUSDT", 5)
    # IM at entry: 3,556,387.03 / 20 + 5,366,967.97 / 5 = 177,819.35 + 1,073,393.59 = 1,251,212.94 <= WB
    book.market_order("x", "BTCUSDT", "buy", BTC_Q, price=BTC_EP)
    book.market_order("x", "ETHUSDT", "buy", ETH_Q, price=ETH_EP)
    book.set_marks(BTCUSDT=BTC_MP, ETHUSDT=ETH_MP)
    assert book.account_summary("x")["wallet"] == WB  # zero fees
    # BTC at mark: MM = 109.488 * 31,967.27 * 0.025 - 16,300 = 3,500,032.46 * 0.025 - 16,300 = 71,200.81
    #              uPnL = 109.488 * (31,967.27 - 32,481.98) = -56,354.57
    # ETH LP = (1,535,443.01 - 71,200.81 - 56,354.57 + 135,365.00 - 3,683.979 * 1,456.84)
    #          / (3,683.979 * 0.10 - 3,683.979)
    #        = (1,543,252.63 - 5,366,967.97) / (-3,315.5811) = 1,153.2565
    assert book.cross_liquidation_price("x", "ETHUSDT") == pytest.approx(1_153.26, abs=0.01)
    # ETH at mark: MM = 3,683.979 * 1,335.18 * 0.10 - 135,365.00 = 491,877.51 - 135,365.00 = 356,512.51
    #              uPnL = 3,683.979 * (1,335.18 - 1,456.84) = -448,192.89
    # BTC LP = (1,535,443.01 - 356,512.51 - 448,192.89 + 16,300 - 109.488 * 32,481.98)
    #          / (109.488 * 0.025 - 109.488)
    #        = (747,037.61 - 3,556,387.03) / (-106.7508) = 26,316.893
    assert book.cross_liquidation_price("x", "BTCUSDT") == pytest.approx(26_316.89, abs=0.01)
    frame = book.positions_frame().set_index("contract")
    assert frame.loc["ETHUSDT", "liquidation_price"] == pytest.approx(1_153.26, abs=0.01)
    assert frame.loc["BTCUSDT", "liquidation_price"] == pytest.approx(26_316.89, abs=0.01)


def test_binance_isolated_example():
    book = binance_book()
    for acct, symbol, qty, price, lev in (("xb", "BTCUSDT", BTC_Q, BTC_EP, 20), ("xe", "ETHUSDT", ETH_Q, ETH_EP, 5)):
        book.add_account(acct, wallet=WB)
        book.set_margin_mode(acct, symbol, "isolated")
        book.set_leverage(acct, symbol, lev)
        book.market_order(acct, symbol, "buy", qty, price=price)
    # top up each isolated wallet to WB:
    #   BTC: IM 3,556,387.02624 / 20 = 177,819.351312 -> add 1,535,443.01 - 177,819.351312 = 1,357,623.658688
    #   ETH: IM 5,366,967.96636 / 5 = 1,073,393.593272 -> add 1,535,443.01 - 1,073,393.593272 = 462,049.416728
    book.add_margin("xb", "BTCUSDT", 1_357_623.658688)
    book.add_margin("xe", "ETHUSDT", 462_049.416728)
    assert book.position("xb", "BTCUSDT").wallet_iso == pytest.approx(WB, abs=1e-6)
    assert book.position("xe", "ETHUSDT").wallet_iso == pytest.approx(WB, abs=1e-6)
    book.set_marks(BTCUSDT=BTC_MP, ETHUSDT=ETH_MP)
    # ETH LP = (1,535,443.01 + 135,365.00 - 5,366,967.97) / (3,683.979 * 0.10 - 3,683.979)
    #        = -3,696,159.96 / -3,315.5811 = 1,114.785   (notional 4.1M: the 10 % tier)
    assert book.liquidation_price("xe", "ETHUSDT") == pytest.approx(1_114.78, abs=0.01)
    # BTC LP = (1,535,443.01 + 16,300 - 3,556,387.03) / (109.488 * 0.025 - 109.488)
    #        = -2,004,644.02 / -106.7508 = 18,778.726   (notional 2.06M: the 1M-10M tier)
    assert book.liquidation_price("xb", "BTCUSDT") == pytest.approx(18_778.73, abs=0.01)


# ================================================================= columnar export
def rich_book() -> Book:
    """Every kind of record: one-way and hedge accounts, cross and isolated, orders (opening,
    reduce-only, hedge closing), TP/SL, auto-add-margin, a contract without a mark, fees."""
    book = make_book(fees=True)
    book.add_contract("SOLUSDT", Brackets.from_records(
        [{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.02, "max_leverage": 25}], symbol="SOLUSDT"))
    # one-way account "a": cross BTC long with TP/SL, isolated ETH short with SL and auto-add
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    book.set_tp_sl("a", "BTCUSDT", take_profit=22_000, stop_loss=18_000)
    book.set_margin_mode("a", "ETHUSDT", "isolated")
    book.set_leverage("a", "ETHUSDT", 10)
    book.set_auto_add_margin("a", "ETHUSDT", True)
    book.market_order("a", "ETHUSDT", "sell", 2, price=1_500)
    book.set_tp_sl("a", "ETHUSDT", stop_loss=1_700)
    book.limit_order("a", "BTCUSDT", "buy", 0.5, price=19_000)
    book.limit_order("a", "BTCUSDT", "sell", 0.5, price=21_000, reduce_only=True)
    # hedge account "h": isolated BTC legs at 10x / 5x, cross ETH legs, orders on legs
    book.add_account("h", wallet=50_000, position_mode="hedge")
    book.set_margin_mode("h", "BTCUSDT", "isolated")
    book.set_leverage("h", "BTCUSDT", 10, leg="long")
    book.set_leverage("h", "BTCUSDT", 5, leg="short")
    book.set_auto_add_margin("h", "BTCUSDT", True, leg="short")
    book.market_order("h", "BTCUSDT", "buy", 1, price=20_000, leg="long")
    book.market_order("h", "BTCUSDT", "sell", 0.5, price=20_000, leg="short")
    book.set_tp_sl("h", "BTCUSDT", take_profit=25_000, leg="long")
    book.market_order("h", "ETHUSDT", "buy", 3, price=1_500, leg="long")
    book.market_order("h", "ETHUSDT", "sell", 1, price=1_500, leg="short")
    book.limit_order("h", "ETHUSDT", "buy", 1, price=1_400, leg="long")
    book.limit_order("h", "BTCUSDT", "buy", 0.5, price=19_500, leg="short")
    # an empty account
    book.add_account("z", wallet=0)
    book.set_marks(BTCUSDT=20_100, ETHUSDT=1_490)
    return book


def test_frames_round_trip_equality():
    book = rich_book()
    frames = book.to_frames()
    assert set(frames) == {"meta", "contracts", "brackets", "accounts", "settings", "positions", "orders"}
    assert len(frames["positions"]) == 6 and len(frames["orders"]) == 4
    assert len(frames["accounts"]) == 3
    assert math.isnan(frames["contracts"].set_index("contract").loc["SOLUSDT", "mark_price"])
    back = Book.from_frames(frames)
    assert back == book
    assert back.marks == book.marks  # SOLUSDT stays None


def test_frames_round_trip_with_int_account_ids():
    book = Book()
    book.add_contract("BTCUSDT", btc_brackets(), maker_fee=0, taker_fee=0)
    book.add_account(7, wallet=1_000)
    book.add_account(8, wallet=1_000, position_mode="hedge")
    book.market_order(7, "BTCUSDT", "buy", 0.1, price=20_000)
    book.limit_order(8, "BTCUSDT", "sell", 0.1, price=21_000, leg="short")
    assert Book.from_frames(book.to_frames()) == book


def test_parquet_round_trip(tmp_path):
    book = rich_book()
    book.write_parquet(tmp_path / "book")
    assert sorted(p.name for p in (tmp_path / "book").iterdir()) == sorted(
        f"{t}.parquet" for t in ("meta", "contracts", "brackets", "accounts", "settings", "positions", "orders"))
    back = Book.read_parquet(tmp_path / "book")
    assert back == book
    # and over an existing folder
    book.deposit("z", 5)
    book.write_parquet(tmp_path / "book")
    assert Book.read_parquet(tmp_path / "book") == book


def _small_frames() -> dict[str, pd.DataFrame]:
    book = make_book()
    book.market_order("a", "BTCUSDT", "buy", 1, price=20_000)
    return book.to_frames()


def test_from_frames_rejects_a_leg_in_a_one_way_account():
    frames = _small_frames()
    frames["positions"].loc[0, "leg"] = "long"
    with pytest.raises(BookFormatError, match=r"table 'positions' row 0, column 'leg'"):
        Book.from_frames(frames)


def test_from_frames_rejects_zero_qty():
    frames = _small_frames()
    frames["positions"].loc[0, "qty"] = 0.0
    with pytest.raises(BookFormatError, match=r"table 'positions' row 0, column 'qty'"):
        Book.from_frames(frames)


def test_from_frames_rejects_an_unknown_contract():
    frames = _small_frames()
    frames["positions"].loc[0, "contract"] = "DOGEUSDT"
    with pytest.raises(BookFormatError, match=r"table 'positions' row 0, column 'contract'.*unknown contract"):
        Book.from_frames(frames)


def test_from_frames_rejects_a_missing_table():
    frames = _small_frames()
    del frames["orders"]
    with pytest.raises(BookFormatError, match=r"'orders' table"):
        Book.from_frames(frames)


def test_from_frames_rejects_leverage_above_the_brackets_max():
    frames = _small_frames()
    frames["settings"].loc[0, ["leverage_long", "leverage_short"]] = 500.0
    with pytest.raises(BookFormatError, match=r"table 'settings' row 0, column 'leverage"):
        Book.from_frames(frames)
