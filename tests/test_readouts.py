"""Tests of riskcore.readouts: the book's read-outs over its columnar tables.

Expected numbers come from the rule book worked by hand (MARGIN_RULES.md sections 3-5,
README.md) or from the Book's own scalar read-outs (``positions_frame``,
``accounts_frame``, ``cross_liquidation_price``, ``liquidation_price``), never from
riskcore.readouts.  The readouts repeat the Book's float operations in its order, so
the differential tests ask for exact equality (NaN equal to NaN).

``python tests/test_readouts.py [n_accounts]`` times the read-outs on a population of
1,000,000 accounts x 3 positions with resting orders (the same generator the
population test below checks against the Book at 300 accounts).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import CONTRACTS, START, base_book, book_specs, build_book

from riskcore import Book, Brackets, Refused
from riskcore.examples import PUBLISHED, binance_cross_example
from riskcore.populations import generate_population_frames
from riskcore.readouts import (ACCOUNT_COLUMNS, CROSS_PRICE_COLUMNS, POSITION_COLUMNS, account_facts,
                               account_readouts, cross_liquidation_prices, position_readouts, readouts)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONE_TIER = [{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.01, "max_leverage": 50}]


# ----------------------------------------------------------------------- helpers
def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, same values: floats bit for bit (NaN equal to NaN), labels equal."""
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected)
    for col in expected.columns:
        a = actual[col].to_numpy()
        e = expected[col].to_numpy()
        if len(e) and isinstance(e[0], (float, np.floating)) or a.dtype.kind == "f":
            a, e = a.astype(np.float64), e.astype(np.float64)
            same = (a == e) | (np.isnan(a) & np.isnan(e))
            assert same.all(), (col, a[~same][:3], e[~same][:3])
        else:
            assert list(a) == list(e), col


def expected_cross_prices(book: Book, marks=None) -> pd.DataFrame:
    """The Book's cross prices per (account, contract) with cross positions, in positions order:
    liquidation from Book.cross_liquidation_price, bankruptcy from positions_frame."""
    frame = book.positions_frame(marks)
    rows = []
    seen = set()
    for r in frame[frame["margin_mode"] == "cross"].itertuples():
        if (r.account, r.contract) in seen:
            continue
        seen.add((r.account, r.contract))
        rows.append({"account": r.account, "contract": r.contract,
                     "liquidation_price": book.cross_liquidation_price(r.account, r.contract, marks),
                     "bankruptcy_price": r.bankruptcy_price})
    return pd.DataFrame(rows, columns=CROSS_PRICE_COLUMNS)


def expected_effective_leverage(book: Book, marks=None) -> np.ndarray:
    """notional / (wallet_iso + uPnL) for isolated, notional / the account's margin balance for
    cross; NaN where that is <= 0.  From the Book's frames."""
    positions = book.positions_frame(marks)
    balance = book.accounts_frame(marks).set_index("account")["margin_balance"]
    out = []
    for r in positions.itertuples():
        backing = r.wallet_iso + r.unrealized_pnl if r.margin_mode == "isolated" else balance[r.account]
        out.append(r.notional / backing if backing > 0 else math.nan)
    return np.array(out, dtype=np.float64)


def expected_account_facts(book: Book, marks=None) -> pd.DataFrame:
    """account_facts from the Book's frames, account by account, position by position."""
    positions = book.positions_frame(marks)
    rows = []
    for acc in book.accounts_frame(marks).itertuples():
        mine = positions[positions["account"] == acc.account]
        modes = set(mine["margin_mode"])
        distance = math.nan
        for r in mine.itertuples():
            d = math.inf if math.isnan(r.liquidation_price) else r.side * (r.mark_price - r.liquidation_price) / r.mark_price
            distance = d if math.isnan(distance) else min(distance, d)
        rows.append({"account": acc.account, "equity": acc.equity,
                     "margin_modes": "+".join(m for m in ("cross", "isolated") if m in modes),
                     "auto_add": bool((mine["auto_add_margin"] & (mine["margin_mode"] == "isolated")).any()),
                     "leverage": float(mine["leverage"].max()) if len(mine) else math.nan,
                     "positions": len(mine), "liquidation_distance": distance})
    return pd.DataFrame(rows, columns=["account", "equity", "margin_modes", "auto_add", "leverage", "positions",
                                       "liquidation_distance"])


def check_against_book(book: Book, frames: dict, marks=None) -> None:
    """Every column of the three read-outs against the Book's scalar read-outs."""
    positions = position_readouts(frames, marks)
    assert list(positions.columns) == POSITION_COLUMNS
    expected = book.positions_frame(marks)
    assert_same(positions[list(expected.columns)], expected)
    assert_same(positions[["effective_leverage"]],
                pd.DataFrame({"effective_leverage": expected_effective_leverage(book, marks)}))
    accounts = account_readouts(frames, marks)
    assert list(accounts.columns) == ACCOUNT_COLUMNS
    assert_same(accounts, book.accounts_frame(marks))
    assert_same(cross_liquidation_prices(frames, marks), expected_cross_prices(book, marks))
    together = readouts(frames, marks)  # one pass: the same three frames
    assert_same(together["positions"], positions)
    assert_same(together["accounts"], accounts)
    assert_same(together["cross_prices"], cross_liquidation_prices(frames, marks))
    facts = account_facts(frames, marks)
    assert_same(facts.astype({"margin_modes": object}), expected_account_facts(book, marks))


def recode(frames: dict, how: str) -> dict:
    """The same tables with the label columns as Categorical, str or object, and int account
    ids as int64 (object: as Python ints in an object column)."""
    out = {name: frame.copy() for name, frame in frames.items()}
    labels = {"contracts": ["contract"], "brackets": ["contract"], "accounts": ["position_mode"],
              "settings": ["contract", "margin_mode"], "positions": ["contract", "leg"],
              "orders": ["contract", "leg"]}
    for table, cols in labels.items():
        for col in cols:
            out[table][col] = out[table][col].astype({"category": "category", "str": "str"}.get(how, object))
    for table in ("accounts", "settings", "positions", "orders"):
        ids = out[table]["account"]
        ints = len(ids) and all(isinstance(v, (int, np.integer)) for v in ids)
        if how == "object":
            out[table]["account"] = pd.Series([int(v) if ints else v for v in ids], dtype=object, index=ids.index)
        elif ints:
            out[table]["account"] = ids.astype(np.int64)
        elif how == "category":
            out[table]["account"] = ids.astype("category")
    return out


def one_tier_book(**kw) -> Book:
    book = Book()
    book.add_contract("BTCUSDT", Brackets.from_records(ONE_TIER, symbol="BTCUSDT"), maker_fee=0.0, taker_fee=0.0,
                      mark_price=100.0, **kw)
    return book


# ------------------------------------------------------------ worked examples
def test_binance_cross_example():
    """MARGIN_RULES.md section 4: WB 1,535,443.01; BTC long 109.488 @ 32,481.98 (mark 31,967.27,
    mmr 2.5%, cum 16,300), ETH long 3,683.979 @ 1,456.84 (mark 1,335.18, mmr 10%, cum 135,365)."""
    book, _ = binance_cross_example()
    frames = book.to_frames()
    wb = 1_535_443.01
    btc_q, btc_ep, btc_mp, btc_mmr, btc_cum = 109.488, 32_481.98, 31_967.27, 0.025, 16_300.0
    eth_q, eth_ep, eth_mp, eth_mmr = 3_683.979, 1_456.84, 1_335.18, 0.10
    eth_cum = 1_424_894.74 * (0.10 - 0.005)  # the example's ETH table: 135,365.0003
    btc_mm = btc_q * btc_mp * btc_mmr - btc_cum  # 71,200.81
    eth_mm = eth_q * eth_mp * eth_mmr - eth_cum  # 356,512.51
    btc_upnl = btc_q * (btc_mp - btc_ep)  # -56,354.57
    eth_upnl = eth_q * (eth_mp - eth_ep)  # -448,192.89
    # LP = (WB - TMM + UPNL + cum - Q*EP) / (Q*mmr - Q), the other contract at mark
    eth_lp = (wb - btc_mm + btc_upnl + eth_cum - eth_q * eth_ep) / (eth_q * eth_mmr - eth_q)  # 1,153.2565
    btc_lp = (wb - eth_mm + eth_upnl + btc_cum - btc_q * btc_ep) / (btc_q * btc_mmr - btc_q)  # 26,316.8933
    # BP (MB = 0, the other at mark) = (Q*EP - WB - UPNL_other) / Q
    eth_bp = (eth_q * eth_ep - wb - btc_upnl) / eth_q
    btc_bp = (btc_q * btc_ep - wb - eth_upnl) / btc_q

    prices = cross_liquidation_prices(frames).set_index("contract")
    assert list(prices["account"]) == ["cross", "cross"]
    assert prices.loc["ETHUSDT", "liquidation_price"] == pytest.approx(eth_lp, rel=1e-9)
    assert prices.loc["BTCUSDT", "liquidation_price"] == pytest.approx(btc_lp, rel=1e-9)
    assert round(prices.loc["ETHUSDT", "liquidation_price"], 2) == PUBLISHED["ETHUSDT"][0] == 1_153.26
    assert round(prices.loc["BTCUSDT", "liquidation_price"], 2) == PUBLISHED["BTCUSDT"][0] == 26_316.89
    assert prices.loc["ETHUSDT", "bankruptcy_price"] == pytest.approx(eth_bp, rel=1e-9)
    assert prices.loc["BTCUSDT", "bankruptcy_price"] == pytest.approx(btc_bp, rel=1e-9)

    positions = position_readouts(frames)
    cross = positions[positions["account"] == "cross"].set_index("contract")
    assert cross.loc["BTCUSDT", "maintenance_margin"] == pytest.approx(btc_mm, rel=1e-12)
    assert cross.loc["ETHUSDT", "maintenance_margin"] == pytest.approx(eth_mm, rel=1e-12)
    assert cross.loc["ETHUSDT", "liquidation_price"] == prices.loc["ETHUSDT", "liquidation_price"]
    # the same positions isolated, each with the whole wallet as margin: 18,778.73 and 1,114.78
    iso = positions[positions["margin_mode"] == "isolated"].set_index("contract")
    assert round(iso.loc["BTCUSDT", "liquidation_price"], 2) == PUBLISHED["BTCUSDT"][1]
    assert round(iso.loc["ETHUSDT", "liquidation_price"], 2) == PUBLISHED["ETHUSDT"][1]
    assert iso.loc["BTCUSDT", "liquidation_price"] == pytest.approx(
        (wb + btc_cum - btc_q * btc_ep) / (btc_q * btc_mmr - btc_q), rel=1e-9)

    accounts = account_readouts(frames).set_index("account")
    a = accounts.loc["cross"]
    assert a["margin_balance"] == pytest.approx(wb + btc_upnl + eth_upnl, rel=1e-12)
    assert a["maintenance_margin"] == pytest.approx(btc_mm + eth_mm, rel=1e-12)
    assert a["mmr"] == pytest.approx((btc_mm + eth_mm) / (wb + btc_upnl + eth_upnl), rel=1e-12)
    # cross effective leverage: notional / margin balance
    assert cross.loc["BTCUSDT", "effective_leverage"] == pytest.approx(
        btc_q * btc_mp / (wb + btc_upnl + eth_upnl), rel=1e-12)
    check_against_book(book, frames)


def test_readme_isolated_case_both_bases():
    """README.md: wallet 10,000; isolated long 5 @ 8,000 at 10x (WB_iso 4,000); mmr 0.5%."""
    btc = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", btc, maker_fee=0.0, taker_fee=0.0)
    book.add_account("alice", wallet=10_000)
    book.set_margin_mode("alice", "BTCUSDT", "isolated")
    book.set_leverage("alice", "BTCUSDT", 10)
    book.market_order("alice", "BTCUSDT", "buy", 5, price=8_000)
    frames = book.to_frames()
    row = position_readouts(frames).iloc[0]
    # mark basis: LP = (4,000 + 0 - 5 * 8,000) / (5 * 0.005 - 5) = 36,000 / 4.975 = 7,236.18
    assert row["liquidation_price"] == pytest.approx(36_000 / 4.975, rel=1e-12)
    assert round(row["liquidation_price"], 2) == 7_236.18
    # BP = 8,000 - 4,000 / 5 = 7,200; effective leverage 40,000 / 4,000 = 10
    assert row["bankruptcy_price"] == pytest.approx(7_200.0, rel=1e-12)
    assert row["effective_leverage"] == pytest.approx(10.0, rel=1e-12)
    assert (row["margin_mode"], row["leverage"], row["wallet_iso"]) == ("isolated", 10.0, 4_000.0)
    # entry basis (Bybit): LP = 8,000 - (4,000 - 5 * 8,000 * 0.005) / 5 = 7,240
    entry = position_readouts(frames, mm_basis="entry").iloc[0]
    assert entry["liquidation_price"] == pytest.approx(7_240.0, rel=1e-12)
    assert entry["liquidation_price"] == book.liquidation_price("alice", "BTCUSDT", mm_basis="entry")
    # the account: 6,000 left in the cross wallet, all free; equity 6,000 + 4,000
    acct = account_readouts(frames).iloc[0]
    assert (acct["wallet"], acct["isolated_wallet"], acct["free_balance"], acct["equity"]) == \
        (6_000.0, 4_000.0, 6_000.0, 10_000.0)
    assert (acct["mmr"], acct["imr"], acct["n_positions"], acct["n_orders"]) == (0.0, 0.0, 1, 0)
    # the top-ups of the worked case: WB_iso 8,000 then 10,000 -> 6,432.16 then 6,030.15
    for wallet, lp in ((8_000.0, 6_432.16), (10_000.0, 6_030.15)):
        topped = {k: v.copy() for k, v in frames.items()}
        topped["positions"]["wallet_iso"] = wallet
        assert round(position_readouts(topped).iloc[0]["liquidation_price"], 2) == lp
    check_against_book(book, frames)


def test_cross_hedge_legs_by_hand():
    """Hedge, cross, 10x, mmr 1%: wallet 50, long leg 2 @ 100, short leg 1 @ 110, mark 105."""
    book = one_tier_book()
    book.add_account("h", wallet=50, position_mode="hedge")
    book.set_leverage("h", "BTCUSDT", 10)
    book.market_order("h", "BTCUSDT", "buy", 2, price=100, leg="long")
    book.market_order("h", "BTCUSDT", "sell", 1, price=110, leg="short")
    book.set_marks(BTCUSDT=105)
    frames = book.to_frames()
    # LP = (WB + cumL + cumS - QL*EPL + QS*EPS) / (QL*mmr + QS*mmr - QL + QS)
    #    = (50 - 200 + 110) / (0.02 + 0.01 - 2 + 1) = -40 / -0.97 = 41.2371...
    # BP = (QL*EPL - QS*EPS - WB) / (QL - QS) = (200 - 110 - 50) / 1 = 40
    prices = cross_liquidation_prices(frames)
    assert len(prices) == 1
    assert prices.loc[0, "liquidation_price"] == pytest.approx(40 / 0.97, rel=1e-12)
    assert prices.loc[0, "bankruptcy_price"] == pytest.approx(40.0, rel=1e-12)
    positions = position_readouts(frames)
    assert list(positions["leg"]) == ["long", "short"]
    assert (positions["liquidation_price"] == prices.loc[0, "liquidation_price"]).all()
    # MB = 50 + 2 * 5 + (-1) * (105 - 110) = 65; both legs charged: MM = (210 + 105) * 1% = 3.15
    acct = account_readouts(frames).iloc[0]
    assert acct["margin_balance"] == pytest.approx(65.0, rel=1e-12)
    assert acct["maintenance_margin"] == pytest.approx(3.15, rel=1e-12)
    assert acct["initial_margin"] == pytest.approx(31.5, rel=1e-12)
    assert list(positions["effective_leverage"]) == pytest.approx([210 / 65, 105 / 65], rel=1e-12)
    check_against_book(book, frames)


def test_order_margin_walks_orders_by_id():
    """One-way long 2 @ 100 at 10x.  Orders by id: #1 sell 1 @ 120 (uses 1 of the position,
    opens 0); #2 sell 3 @ 110 (uses the last 1, opens 2: 22); #3 buy 1 @ 90 (same side as the
    position, opens 1: 9); #4 reduce-only sell 5 @ 130 (opens nothing).  Total 31.
    Walked in the reverse order it would be 12 + 11 + 9 = 32."""
    book = one_tier_book()
    book.add_account(7, wallet=10_000)
    book.set_leverage(7, "BTCUSDT", 10)
    book.market_order(7, "BTCUSDT", "buy", 2, price=100)
    book.limit_order(7, "BTCUSDT", "sell", 1, price=120)
    book.limit_order(7, "BTCUSDT", "sell", 3, price=110)
    book.limit_order(7, "BTCUSDT", "buy", 1, price=90)
    book.limit_order(7, "BTCUSDT", "sell", 5, price=130, reduce_only=True)
    # hedge account: long leg 2 @ 100; sell 1 on the long leg (closes: 0); sell 2 @ 95 on the
    # short leg (opens: 19); buy 1 @ 90 on the long leg (opens: 9).  Total 28.
    book.add_account(8, wallet=10_000, position_mode="hedge")
    book.set_leverage(8, "BTCUSDT", 10)
    book.market_order(8, "BTCUSDT", "buy", 2, price=100, leg="long")
    book.limit_order(8, "BTCUSDT", "sell", 1, price=105, leg="long")
    book.limit_order(8, "BTCUSDT", "sell", 2, price=95, leg="short")
    book.limit_order(8, "BTCUSDT", "buy", 1, price=90, leg="long")
    frames = book.to_frames()
    frames["orders"] = frames["orders"].iloc[::-1].reset_index(drop=True)  # rows not in id order
    accounts = account_readouts(frames).set_index("account")
    assert accounts.loc[7, "order_margin"] == pytest.approx(31.0, rel=1e-12)
    assert accounts.loc[8, "order_margin"] == pytest.approx(28.0, rel=1e-12)
    assert list(accounts["n_orders"]) == [4, 3]
    # free = MB - IM - order margin = 10,000 - 20 - 31 (marks at entry, no fees)
    assert accounts.loc[7, "free_balance"] == pytest.approx(10_000 - 20 - 31, rel=1e-12)
    check_against_book(book, frames)


def test_tp_sl_auto_add_and_flags():
    book = one_tier_book()
    book.add_account("x", wallet=1_000)
    book.set_margin_mode("x", "BTCUSDT", "isolated")
    book.set_leverage("x", "BTCUSDT", 5)
    book.set_auto_add_margin("x", "BTCUSDT", True)
    book.market_order("x", "BTCUSDT", "sell", 3, price=100)
    book.set_tp_sl("x", "BTCUSDT", take_profit=80, stop_loss=120)
    frames = book.to_frames()
    row = position_readouts(frames).iloc[0]
    assert (row["side"], row["take_profit"], row["stop_loss"], bool(row["auto_add_margin"])) == (-1, 80.0, 120.0, True)
    # short, WB_iso 60: LP = (60 + 300) / (3 * 0.01 + 3) = 118.8118..., BP = 100 + 60 / 3 = 120
    assert row["liquidation_price"] == pytest.approx(360 / 3.03, rel=1e-12)
    assert row["bankruptcy_price"] == pytest.approx(120.0, rel=1e-12)
    check_against_book(book, frames)


# ------------------------------------------------------------- robustness
@pytest.mark.parametrize("how", ["category", "str", "object"])
def test_label_and_id_dtypes(how):
    book, _ = binance_cross_example()
    extra = one_tier_book()  # int ids, resting orders, hedge
    extra.add_account(1, wallet=500, position_mode="hedge")
    extra.market_order(1, "BTCUSDT", "buy", 2, price=100, leg="long")
    extra.limit_order(1, "BTCUSDT", "sell", 1, price=95, leg="short")
    extra.add_account(2, wallet=500)
    extra.limit_order(2, "BTCUSDT", "sell", 1, price=105)
    for b in (book, extra):
        plain = b.to_frames()
        coded = recode(plain, how)
        if b is extra:
            assert coded["positions"]["account"].dtype == (object if how == "object" else np.int64)
        assert_same(position_readouts(coded), position_readouts(plain))
        assert_same(account_readouts(coded), account_readouts(plain))
        assert_same(cross_liquidation_prices(coded), cross_liquidation_prices(plain))
        check_against_book(b, coded)


def test_book_table_frames():
    """The typed tables of riskcore.table.BookTable (Categorical labels, int64 ids) as input."""
    book = build_book([("hedge", "isolated", "cross", 5, True, 2_000.0,
                        [("BTCUSDT", "buy", 5.0, 100.0), ("BTCUSDT", "sell", 3.0, 101.0),
                         ("ETHUSDT", "sell", 4.0, 99.0)], [("ETHUSDT", "buy", 2.0, 95.0)]),
                       ("one-way", "cross", "cross", 10, False, 900.0, [("ETHUSDT", "buy", 6.0, 100.0)],
                        [("ETHUSDT", "sell", 8.0, 110.0)])])
    frames = book.to_table().frames()
    check_against_book(book, frames)
    check_against_book(book, frames, {"BTCUSDT": 93.0, "ETHUSDT": 104.0})


def test_empty_book_and_account_without_positions():
    book = one_tier_book()
    frames = book.to_frames()
    assert list(position_readouts(frames).columns) == POSITION_COLUMNS
    assert len(position_readouts(frames)) == 0 and len(account_readouts(frames)) == 0
    assert len(cross_liquidation_prices(frames)) == 0
    book.add_account("idle", wallet=500)
    frames = book.to_frames()
    acct = account_readouts(frames).iloc[0]
    assert (acct["margin_balance"], acct["free_balance"], acct["mmr"], acct["equity"]) == (500.0, 500.0, 0.0, 500.0)
    check_against_book(book, frames)


def test_missing_mark_names_the_contract():
    book = base_book()
    book.add_account(1, wallet=1_000)
    book.market_order(1, "ETHUSDT", "buy", 1, price=100)
    frames = book.to_frames()
    frames["contracts"].loc[frames["contracts"]["contract"] == "ETHUSDT", "mark_price"] = np.nan
    for read in (position_readouts, account_readouts, cross_liquidation_prices):
        with pytest.raises(ValueError, match="no mark price for contract ETHUSDT"):
            read(frames)
        with pytest.raises(ValueError, match="ETHUSDT"):
            read(book.to_frames(), marks={"ETHUSDT": float("nan")})
    # a mark given in marks= is enough (any mapping, e.g. a Series)
    assert position_readouts(frames, marks={"ETHUSDT": 101.0})["mark_price"].tolist() == [101.0]
    assert position_readouts(frames, marks=pd.Series({"ETHUSDT": 102.0}))["mark_price"].tolist() == [102.0]
    # a contract without positions needs no mark
    frames["contracts"].loc[frames["contracts"]["contract"] == "ETHUSDT", "mark_price"] = 100.0
    frames["contracts"].loc[frames["contracts"]["contract"] == "BTCUSDT", "mark_price"] = np.nan
    assert_same(position_readouts(frames), position_readouts(book.to_frames()))


@pytest.mark.parametrize("marks, match", [({"XRPUSDT": 1.0}, "unknown contract 'XRPUSDT'"),
                                          ({"BTCUSDT": -5.0}, "BTCUSDT"), ({"BTCUSDT": "x"}, "BTCUSDT")])
def test_bad_marks(marks, match):
    frames = base_book().to_frames()
    with pytest.raises(ValueError, match=match):
        position_readouts(frames, marks)


def test_bad_tables():
    book = base_book()
    book.add_account(1, wallet=1_000)
    book.market_order(1, "BTCUSDT", "buy", 1, price=100)
    frames = book.to_frames()
    with pytest.raises(ValueError, match="mm_basis"):
        position_readouts(frames, mm_basis="exit")
    with pytest.raises(ValueError, match="no 'orders' table"):
        account_readouts({k: v for k, v in frames.items() if k != "orders"})
    bad = {k: v.copy() for k, v in frames.items()}
    bad["positions"]["contract"] = "DOGEUSDT"
    with pytest.raises(ValueError, match="unknown contract 'DOGEUSDT'"):
        position_readouts(bad)
    bad = {k: v.copy() for k, v in frames.items()}
    bad["positions"]["account"] = 99
    with pytest.raises(ValueError, match="unknown account 99"):
        position_readouts(bad)
    bad = {k: v.copy() for k, v in frames.items()}
    bad["positions"] = pd.concat([bad["positions"]] * 2, ignore_index=True)
    with pytest.raises(ValueError, match="second position"):
        position_readouts(bad)
    bad = {k: v.copy() for k, v in frames.items()}
    bad["positions"]["leg"] = "sideways"
    with pytest.raises(ValueError, match="'leg'"):
        position_readouts(bad)


def test_does_not_import_the_book_or_the_reference():
    import ast
    import riskcore.readouts as ro
    tree = ast.parse(open(ro.__file__, encoding="utf-8").read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add((node.module or "") + ":" + ",".join(a.name for a in node.names))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not [m for m in imported if "book" in m.split(":")[0] or "reference" in m], imported


# --------------------------------------------------------- property tests
extras = st.lists(st.one_of(
    st.tuples(st.just("tp_sl"), st.integers(1, 5), st.sampled_from(CONTRACTS), st.sampled_from([None, "long", "short"]),
              st.one_of(st.none(), st.floats(0.5, 1.5)), st.one_of(st.none(), st.floats(0.5, 1.5))),
    st.tuples(st.just("add_margin"), st.integers(1, 5), st.sampled_from(CONTRACTS),
              st.sampled_from([None, "long", "short"]), st.floats(1.0, 300.0)),
    st.tuples(st.just("limit"), st.integers(1, 5), st.sampled_from(CONTRACTS), st.sampled_from(["buy", "sell"]),
              st.floats(0.5, 20.0), st.floats(80.0, 120.0), st.sampled_from([None, "long", "short"]), st.booleans()),
), max_size=8)
mark_moves = st.fixed_dictionaries({c: st.floats(60.0, 140.0) for c in CONTRACTS})


def apply_extras(book: Book, entries) -> None:
    """TP/SL, margin additions and more resting orders (reduce-only, closing legs); refusals skipped."""
    for entry in entries:
        kind, acct, symbol = entry[0], entry[1], entry[2]
        if acct not in book.accounts:
            continue
        hedge = book.accounts[acct].position_mode == 1
        try:
            if kind == "tp_sl":
                _, _, _, leg, tp, sl = entry
                leg = (leg or "long") if hedge else None
                pos = book.position(acct, symbol, leg)
                if pos is None:
                    continue
                tp = None if tp is None else START * (1 + pos.side * tp / 2)
                sl = None if sl is None else START * (1 - pos.side * sl / 2)
                book.set_tp_sl(acct, symbol, take_profit=tp, stop_loss=sl, leg=leg)
            elif kind == "add_margin":
                _, _, _, leg, amount = entry
                book.add_margin(acct, symbol, amount, leg=(leg or "long") if hedge else None)
            else:
                _, _, _, side, qty, price, leg, reduce_only = entry
                book.limit_order(acct, symbol, side, qty, price, leg=(leg or "short") if hedge else None,
                                 reduce_only=reduce_only)
        except (Refused, ValueError):
            pass


venue_maps = st.fixed_dictionaries({c: st.sampled_from(["binance", "binance", "okx", "bybit", "hyperliquid", "dydx"])
                                    for c in CONTRACTS})


@SETTINGS
@given(book_specs, extras, mark_moves, st.sampled_from(["object", "object", "category", "str"]), venue_maps)
def test_random_books_match_the_book(specs, entries, marks, how, venues):
    """Every venue profile's maintenance table too (MM with the fee to close, half the IM)."""
    book = build_book(specs, venues=venues)
    apply_extras(book, entries)
    frames = book.to_frames()
    if how != "object":
        frames = recode(frames, how)
    check_against_book(book, frames)  # at the marks the book holds (the entry level)
    check_against_book(book, frames, marks)  # and at moved marks (some accounts under water)
    # entry-basis isolated liquidation prices against Book.liquidation_price
    positions = position_readouts(frames, marks, mm_basis="entry")
    for r in positions.itertuples():
        leg = None if r.leg == "both" else r.leg
        expected = book.liquidation_price(r.account, r.contract, leg=leg, marks=marks, mm_basis="entry")
        assert r.liquidation_price == expected or (math.isnan(r.liquidation_price) and math.isnan(expected))


def test_random_books_reach_every_state():
    """Guard against a vacuous generator: the strategies do produce what the property test claims."""
    specs = [("hedge", "isolated", "cross", 10, True, 2_000.0,
              [("BTCUSDT", "buy", 5.0, 100.0), ("BTCUSDT", "sell", 3.0, 101.0), ("ETHUSDT", "sell", 4.0, 99.0)],
              [("ETHUSDT", "buy", 2.0, 95.0)]),
             ("one-way", "cross", "cross", 5, False, 1_000.0, [("ETHUSDT", "buy", 6.0, 100.0)],
              [("ETHUSDT", "sell", 8.0, 110.0)])]
    book = build_book(specs)
    apply_extras(book, [("tp_sl", 1, "BTCUSDT", "long", 0.2, 0.3), ("add_margin", 1, "BTCUSDT", "short", 50.0),
                        ("limit", 2, "ETHUSDT", "sell", 1.0, 105.0, None, True)])
    frames = book.to_frames()
    positions = position_readouts(frames)
    assert set(positions["margin_mode"]) == {"cross", "isolated"}
    assert set(positions["leg"]) == {"both", "long", "short"}
    assert positions["auto_add_margin"].any() and positions["take_profit"].notna().any()
    assert frames["orders"]["reduce_only"].any() and len(frames["orders"]) == 3
    check_against_book(book, frames, {"BTCUSDT": 90.0, "ETHUSDT": 120.0})


# ------------------------------------------------------ population (bench data)
def population_frames(n_accounts: int, seed: int = 7, order_share: float = 0.4) -> dict:
    """A population of ``n_accounts`` x 3 positions (3 contracts; one-way and hedge, cross and
    isolated, auto-add, TP/SL on some) with 1-2 resting orders on 40% of the (account,
    contract) pairs: opening, reduce-only and hedge-closing ones, ids not in row order."""
    eth = Brackets.load("ETHUSDT")
    contracts = {"BTCUSDT": Brackets.load("BTCUSDT"), "ETHUSDT": eth,
                 "SOLUSDT": Brackets(*(getattr(eth, c) for c in ("notional_floor", "notional_cap", "mmr",
                                                                  "max_leverage", "cum")), symbol="SOLUSDT")}
    prices = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}
    frames = generate_population_frames(n_accounts, contracts, prices, seed=seed,
                                        spec={"positions_per_account": 3, "hedge_share": 0.3,
                                              "isolated_share": 0.4, "auto_add_share": 0.3})
    rng = np.random.default_rng(seed)
    pos = frames["positions"]
    n_pos = len(pos)
    tp_sl = rng.random(n_pos) < 0.2
    side = pos["side"].to_numpy(np.float64)
    mark = pos["contract"].map(prices).to_numpy(np.float64)
    pos["take_profit"] = np.where(tp_sl, mark * (1 + 0.1 * side), np.nan)
    pos["stop_loss"] = np.where(tp_sl, mark * (1 - 0.05 * side), np.nan)

    st_rows = frames["settings"]
    hedge = frames["accounts"].set_index("account")["position_mode"].eq("hedge")
    chosen = np.flatnonzero(rng.random(len(st_rows)) < order_share)
    chosen = np.repeat(chosen, rng.integers(1, 3, chosen.size))
    n_ord = chosen.size
    acct = st_rows["account"].to_numpy(object)[chosen]
    symbol = st_rows["contract"].to_numpy(object)[chosen]
    is_hedge = hedge.reindex(acct).to_numpy(bool)
    leg = np.where(is_hedge, np.where(rng.random(n_ord) < 0.5, "long", "short"), "both").astype(object)
    order_side = np.where(rng.random(n_ord) < 0.5, 1, -1).astype(np.int8)
    px = pd.Series(symbol).map(prices).to_numpy(np.float64) * (1 + rng.uniform(-0.05, 0.05, n_ord))
    frames["orders"] = pd.DataFrame({
        "order_id": rng.permutation(n_ord).astype(np.int64) + 1, "account": acct, "contract": symbol, "leg": leg,
        "side": order_side, "qty": np.exp(rng.uniform(np.log(1_000), np.log(20_000), n_ord)) / px, "price": px,
        "reduce_only": rng.random(n_ord) < 0.2})
    frames["meta"].loc[0, "next_order_id"] = n_ord + 1
    return frames


def test_population_with_orders_matches_the_book():
    frames = population_frames(300, seed=3)
    book = Book.from_frames(frames)
    assert len(frames["orders"]) > 100 and set(frames["positions"]["leg"]) == {"both", "long", "short"}
    check_against_book(book, frames)
    check_against_book(book, frames, {"BTCUSDT": 55_000.0, "ETHUSDT": 3_300.0, "SOLUSDT": 140.0})


def bench(n_accounts: int = 1_000_000) -> None:
    """Time the read-outs on a population; wall and CPU seconds (best of 3 each), the first
    call (compiling the kernels, or loading them from numba's cache) separately."""
    t0 = time.perf_counter()
    frames = population_frames(n_accounts)
    print(f"population: {n_accounts:,} accounts, {len(frames['positions']):,} positions, "
          f"{len(frames['orders']):,} orders, built in {time.perf_counter() - t0:.1f} s")
    marks = {"BTCUSDT": 57_000.0, "ETHUSDT": 3_150.0, "SOLUSDT": 140.0}
    t0 = time.perf_counter()
    readouts(population_frames(10, seed=1), marks)
    print(f"first call on 10 accounts (compile or cache load): {time.perf_counter() - t0:.2f} s")
    variants = (("object ids and labels (Book.to_frames)", recode(frames, "object")),
                ("int64 ids, Categorical labels", recode(frames, "category")))
    for name, frame_set in variants:
        for fn in (position_readouts, account_readouts, cross_liquidation_prices, readouts):
            wall = cpu = math.inf
            for _ in range(3):
                w, c = time.perf_counter(), time.process_time()
                out = fn(frame_set, marks)
                wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
            rows = sum(len(f) for f in out.values()) if isinstance(out, dict) else len(out)
            print(f"{name:40s} {fn.__name__:26s} wall {wall:5.2f} s  cpu {cpu:5.2f} s  ({rows:,} rows)")


if __name__ == "__main__":
    bench(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
