"""The tape's actions in the kernels (riskcore/kernels/actions_nb.py) against the reference engine.

Every action kind of ``riskcore.inputs.ACTIONS`` and every refusal the Book can give it
(its code, or the exception class for the Book's ValueError/KeyError/TypeError) runs on
hand-built books through both engines; events must agree exactly in kind, account,
contract, leg, side, step, point, reason text and order, money within 1e-9 relative
(``test_kernel_differential.assert_same``), and the final books too.  Each case also
asserts that the refusals it was written for do happen.  A hypothesis test draws random
tapes of every kind (bounded), and a 200k-row order stream runs on a 20k-account book.

The reference runs through ``ReferenceEngine`` directly (as ``simulate`` does) so that a
tape may name a contract the book does not have (``simulate`` rejects such a tape up front).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import (CONTRACTS, START, any_tape_specs, base_book, book_specs, build_any_tape, build_book,
                        build_paths, path_specs)
from test_kernel_differential import assert_same

from riskcore.inputs import PricePaths, ScheduledAction, funding_by_step, schedule_tape
from riskcore.kernels import run_numba
from riskcore.kernels.tape import encode_tape
from riskcore.reference import ReferenceEngine

FLAT = ((0.0, 0.002, 0.002, 0.0), (0.0, 0.002, 0.002, 0.0))  # a quiet bar of both contracts


def run_both(book, paths, tape, model="ohlc", basis="mark", fee=0.01, fund=0.0, funding=None, **kw):
    """Reference engine and kernels on the same book, paths, tape and funding."""
    pp = PricePaths.from_frames(paths)
    rates = funding_by_step(funding, pp)
    ref = ReferenceEngine(book.copy(), pp, rates, schedule_tape(tape, pp), liquidation_fee_rate=fee,
                          insurance_fund=fund, liquidation_slippage=0.0, intrabar=model, mm_basis=basis).run()
    kw.setdefault("on_overflow", "raise")
    got = run_numba(book, pp, rates, schedule_tape(tape, pp), liquidation_fee_rate=fee, insurance_fund=fund,
                    intrabar=model, mm_basis=basis, **kw)
    return ref, got


def stamp(step: int) -> pd.Timestamp:
    return pd.Timestamp("2025-01-01") + pd.Timedelta(minutes=step)


def at(step: int, action: str, **fields) -> dict:
    return {"timestamp": stamp(step), "action": action, **fields}


def hand_book():
    """Accounts of every kind (marks 100; first tier 50x up to 2,000 notional, 20x to 10,000).

    1  one-way cross, long 10 BTCUSDT @ 100, wallet 5,000
    2  hedge, ETHUSDT isolated 10x: long leg 5 @ 100; wallet 2,000
    3  one-way, ETHUSDT isolated 20x short 4 @ 100 (BP 105); resting buy 1 BTCUSDT @ 90; wallet 1,000
    4  one-way, flat, wallet 100
    5  hedge, flat, wallet 500
    6  one-way cross, long 30 BTCUSDT @ 100 (3,000 notional), wallet 5,000
    7  one-way cross 20x, long 10 BTCUSDT @ 100, wallet 60
    8  one-way, only a resting sell 2 ETHUSDT @ 120, wallet 800
    9  one-way cross, ETHUSDT long 2 opened before BTCUSDT short 3 (dict order differs from
       (contract, leg) order), wallet 3,000
    """
    book = base_book()
    book.add_account(1, wallet=5_000.0)
    book.market_order(1, "BTCUSDT", "buy", 10.0, 100.0)
    book.add_account(2, wallet=2_000.0, position_mode="hedge")
    book.set_margin_mode(2, "ETHUSDT", "isolated")
    book.set_leverage(2, "ETHUSDT", 10)
    book.market_order(2, "ETHUSDT", "buy", 5.0, 100.0, leg="long")
    book.add_account(3, wallet=1_000.0)
    book.set_margin_mode(3, "ETHUSDT", "isolated")
    book.market_order(3, "ETHUSDT", "sell", 4.0, 100.0)
    book.limit_order(3, "BTCUSDT", "buy", 1.0, 90.0)
    book.add_account(4, wallet=100.0)
    book.add_account(5, wallet=500.0, position_mode="hedge")
    book.add_account(6, wallet=5_000.0)
    book.market_order(6, "BTCUSDT", "buy", 30.0, 100.0)
    book.add_account(7, wallet=60.0)
    book.market_order(7, "BTCUSDT", "buy", 10.0, 100.0)
    book.add_account(8, wallet=800.0)
    book.limit_order(8, "ETHUSDT", "sell", 2.0, 120.0)
    book.add_account(9, wallet=3_000.0)
    book.market_order(9, "ETHUSDT", "buy", 2.0, 100.0)
    book.market_order(9, "BTCUSDT", "sell", 3.0, 100.0)
    book.set_marks({s: START for s in CONTRACTS})
    return book


def quiet_paths(n_steps: int = 3, gap_to: float | None = None):
    """Flat bars at 100; with ``gap_to``, ETHUSDT opens bar 1 at that price and stays there."""
    spec = [FLAT] * n_steps
    paths = build_paths(spec)
    if gap_to is not None:
        frame = paths["ETHUSDT"]
        for col in ("open", "high", "low", "close"):
            frame.loc[1:, col] = gap_to
        frame.loc[1:, "high"] = gap_to * 1.001
        frame.loc[1:, "low"] = gap_to * 0.999
    return paths


def refusal_codes(result) -> list[str]:
    """``code`` of every tape refusal (``"<action>: <code>: <message>"``)."""
    ref = result.events[result.events["kind"] == "refused"]
    return [r.split(": ")[1] for r in ref["reason"]]


def check(tape, wanted: dict, book=None, paths=None, **kw):
    """Both engines agree, and each ``action: code`` of ``wanted`` is refused as often as given."""
    ref, got = run_both(hand_book() if book is None else book, quiet_paths() if paths is None else paths, tape, **kw)
    assert_same(ref, got)
    reasons = [r for r in ref.events.loc[ref.events["kind"] == "refused", "reason"]]
    seen: dict = {}
    for r in reasons:
        action, code = r.split(": ")[:2]
        seen[f"{action}: {code}"] = seen.get(f"{action}: {code}", 0) + 1
    for key, n in wanted.items():
        assert seen.get(key, 0) == n, (key, reasons)
    return ref, got


# ------------------------------------------------------------------ by action kind
def test_market_orders_and_their_refusals():
    tape = [
        at(0, "market", account=4, contract="BTCUSDT", side="buy", qty=1.0),  # opens
        at(0, "market", account=1, contract="BTCUSDT", side="sell", qty=15.0),  # flips to short 5
        at(0, "market", account=6, contract="BTCUSDT", side="sell", qty=50.0, reduce_only=True),  # clipped, closes
        at(0, "market", account=2, contract="ETHUSDT", side="sell", qty=2.0, leg="long"),  # isolated partial close
        at(0, "market", account=5, contract="BTCUSDT", side="sell", qty=1.0, leg="short"),  # opens a hedge leg
        # refused before the run, from the row alone
        at(0, "market", account=99, contract="BTCUSDT", side="buy", qty=1.0),
        at(0, "market", account=4, contract="XRPUSDT", side="buy", qty=1.0),
        at(0, "market", account=4, contract="BTCUSDT", side="up", qty=1.0),
        at(0, "market", account=4, contract="BTCUSDT", side="buy", qty=-1.0),
        at(0, "market", account=4, contract="BTCUSDT", side="buy", qty="many"),
        at(0, "market", account=4, contract="BTCUSDT", side="buy", qty=1.0, leg="middle"),
        # refused on the book's state
        at(1, "market", account=2, contract="ETHUSDT", side="buy", qty=1.0),  # hedge: no leg
        at(1, "market", account=4, contract="ETHUSDT", side="buy", qty=1.0, leg="long"),  # one-way: a leg
        at(1, "market", account=8, contract="ETHUSDT", side="buy", qty=1.0, reduce_only=True),  # nothing to reduce
        at(1, "market", account=1, contract="BTCUSDT", side="sell", qty=1.0, reduce_only=True),  # same side
        at(1, "market", account=5, contract="BTCUSDT", side="sell", qty=1.0, leg="long"),  # no long leg
        at(1, "market", account=2, contract="ETHUSDT", side="sell", qty=10.0, leg="long"),  # beyond the leg
        at(1, "market", account=2, contract="ETHUSDT", side="buy", qty=1.0, leg="long", reduce_only=True),
        at(1, "market", account=3, contract="ETHUSDT", side="buy", qty=4.0),  # beyond bankruptcy (ETH at 130)
        at(1, "market", account=4, contract="BTCUSDT", side="buy", qty=150.0),  # above the 20x cap
        at(1, "market", account=4, contract="BTCUSDT", side="buy", qty=30.0),  # margin not covered
    ]
    check(tape, {"market: KeyError": 2, "market: ValueError": 6, "market: reduce_only_opens": 3,
                 "market: no_position": 1, "market: close_exceeds_position": 1, "market: beyond_bankruptcy": 1,
                 "market: leverage_cap": 1, "market: insufficient_margin": 1},
          paths=quiet_paths(gap_to=130.0))


def test_limit_orders_tags_and_cancels():
    tape = [
        at(0, "limit", account=4, contract="BTCUSDT", side="buy", qty=1.0, price=95.0, tag="a"),
        at(0, "limit", account=1, contract="BTCUSDT", side="sell", qty=2.0, price=120.0, tag="b"),
        at(0, "limit", account=2, contract="ETHUSDT", side="sell", qty=3.0, price=130.0, leg="long"),  # closes part
        at(0, "limit", account=1, contract="BTCUSDT", side="sell", qty=5.0, price=125.0, reduce_only=True),
        at(0, "limit", account=4, contract="BTCUSDT", side="buy", qty=0.5, price=101.0),  # fills at once
        at(0, "cancel", tag="b"),
        at(0, "cancel", tag="b"),  # already gone
        at(0, "cancel", tag="zzz"),  # never placed
        at(0, "cancel", order_id=1),  # account 3's resting order from the book
        at(0, "cancel", order_id=1),
        at(0, "cancel", order_id=10**30),
        at(0, "cancel", order_id="seven"),
        at(0, "limit", account=5, contract="ETHUSDT", side="buy", qty=1.0, price=90.0, leg="long", tag="c"),
        at(1, "cancel", tag="c"),  # a tag set at an earlier bar
        at(1, "cancel", tag="a"),  # account 4's order: resting (95 not reached)
        # refused before the run
        at(1, "limit", account=4, contract="BTCUSDT", side="buy", qty=1.0, price=0.0),
        at(1, "limit", account=4, contract="BTCUSDT", side="buy", qty=1.0, price="cheap"),
        at(1, "limit", account="nobody", contract="BTCUSDT", side="buy", qty=1.0, price=90.0),
        at(1, "limit", account=4, contract="BTCUSDT", side="hold", qty=1.0, price=90.0),
        # refused on the book's state
        at(2, "limit", account=2, contract="ETHUSDT", side="buy", qty=1.0, price=90.0),  # hedge: no leg
        at(2, "limit", account=1, contract="BTCUSDT", side="buy", qty=1.0, price=90.0, leg="short"),
        at(2, "limit", account=2, contract="ETHUSDT", side="buy", qty=1.0, price=90.0, leg="long",
           reduce_only=True),  # reduce-only opening a leg
        at(2, "limit", account=5, contract="BTCUSDT", side="sell", qty=1.0, price=90.0, leg="long"),  # no leg
        at(2, "limit", account=4, contract="BTCUSDT", side="sell", qty=0.5, price=99.0, reduce_only=True),  # ok
        at(2, "limit", account=6, contract="BTCUSDT", side="buy", qty=1.0, price=99.0, reduce_only=True),
        at(2, "limit", account=2, contract="ETHUSDT", side="sell", qty=3.0, price=140.0, leg="long"),  # 3+3 > 5
        at(2, "limit", account=4, contract="BTCUSDT", side="buy", qty=150.0, price=99.0),  # cap
        at(2, "limit", account=4, contract="BTCUSDT", side="buy", qty=30.0, price=99.0),  # margin
    ]
    ref, got = check(tape, {"cancel: KeyError": 4, "cancel: ValueError": 1, "limit: ValueError": 5,
                            "limit: KeyError": 1, "limit: reduce_only_opens": 2, "limit: no_position": 1,
                            "limit: close_exceeds_position": 1, "limit: leverage_cap": 1,
                            "limit: insufficient_margin": 1})
    assert set(got.events["kind"]) >= {"order", "cancel", "fill"}
    assert got.book.next_order_id == ref.book.next_order_id > 5


def test_margin_moves():
    tape = [
        at(0, "add_margin", account=2, contract="ETHUSDT", amount=50.0, leg="long"),
        at(0, "add_margin", account=3, contract="ETHUSDT", amount=10.0),
        at(0, "remove_margin", account=2, contract="ETHUSDT", amount=5.0, leg="long"),
        at(0, "add_margin", account=3, contract="ETHUSDT", amount=-5.0),
        at(0, "add_margin", account=3, contract="ETHUSDT", amount="lots"),
        at(0, "remove_margin", account=3, contract="ETHUSDT", amount=0.0),
        at(0, "add_margin", account=99, contract="ETHUSDT", amount=5.0),
        at(0, "add_margin", account=3, contract="XRPUSDT", amount=5.0),
        at(0, "add_margin", account=3, contract="ETHUSDT", amount=5.0, leg="sideways"),
        at(1, "add_margin", account=2, contract="ETHUSDT", amount=5.0),  # hedge: name the leg
        at(1, "remove_margin", account=3, contract="ETHUSDT", amount=5.0, leg="short"),  # one-way: no leg
        at(1, "add_margin", account=4, contract="BTCUSDT", amount=5.0),  # no position
        at(1, "add_margin", account=2, contract="ETHUSDT", amount=5.0, leg="short"),  # no short leg
        at(1, "add_margin", account=1, contract="BTCUSDT", amount=5.0),  # cross
        at(1, "add_margin", account=3, contract="ETHUSDT", amount=5_000.0),  # above the free balance
        at(1, "remove_margin", account=2, contract="ETHUSDT", amount=500.0, leg="long"),  # too much
        at(2, "remove_margin", account=3, contract="ETHUSDT", amount=1.0),  # the mark moved: less may go
    ]
    check(tape, {"add_margin: ValueError": 4, "remove_margin: ValueError": 2, "add_margin: KeyError": 2,
                 "add_margin: no_position": 2, "add_margin: not_isolated": 1,
                 "add_margin: insufficient_free_balance": 1, "remove_margin: remove_too_much": 2},
          paths=quiet_paths(gap_to=103.0))


def test_leverage():
    tape = [
        at(0, "set_leverage", account=1, contract="BTCUSDT", leverage=10),
        at(0, "set_leverage", account=4, contract="ETHUSDT", leverage=3),  # stores the settings
        at(0, "set_leverage", account=2, contract="ETHUSDT", leverage=5, leg="long"),  # isolated hedge leg
        at(0, "set_leverage", account=1, contract="BTCUSDT", leverage=0.5),
        at(0, "set_leverage", account=1, contract="BTCUSDT", leverage="high"),
        at(0, "set_leverage", account=1, contract="BTCUSDT", leverage=10, leg="up"),
        at(0, "set_leverage", account=12, contract="BTCUSDT", leverage=10),
        at(1, "set_leverage", account=1, contract="BTCUSDT", leverage=10, leg="long"),  # one-way: no legs
        at(1, "set_leverage", account=5, contract="BTCUSDT", leverage=10, leg="long"),  # cross legs differ
        at(1, "set_leverage", account=5, contract="BTCUSDT", leverage=20, leg="long"),  # equal: fine
        at(1, "set_leverage", account=1, contract="BTCUSDT", leverage=100),  # above the table
        at(1, "set_leverage", account=6, contract="BTCUSDT", leverage=50),  # 3,000 above 50x's 2,000
        at(1, "set_leverage", account=7, contract="BTCUSDT", leverage=2),  # IM 500 > wallet 60
        at(1, "set_leverage", account=3, contract="BTCUSDT", leverage=50),  # the resting order counts
        at(2, "set_leverage", account=2, contract="ETHUSDT", leverage=25, leg="long"),  # 600 < 2,000*... ok
    ]
    check(tape, {"set_leverage: ValueError": 4, "set_leverage: KeyError": 1, "set_leverage: leverage_cap": 2,
                 "set_leverage: cross_leverage_mismatch": 1, "set_leverage: insufficient_margin": 1})


def test_margin_and_position_modes():
    tape = [
        at(0, "set_margin_mode", account=4, contract="BTCUSDT", mode="isolated"),
        at(0, "set_margin_mode", account=4, contract="ETHUSDT", mode="cross"),  # already: nothing to do
        at(0, "set_margin_mode", account=4, contract="BTCUSDT", mode="sideways"),
        at(0, "set_margin_mode", account=77, contract="BTCUSDT", mode="isolated"),
        at(0, "set_margin_mode", account=1, contract="BTCUSDT", mode="isolated"),  # open position
        at(0, "set_margin_mode", account=3, contract="BTCUSDT", mode="isolated"),  # resting order
        at(0, "set_margin_mode", account=3, contract="ETHUSDT", mode="cross"),  # open position
        # hedge account 5: isolate BTC, give the legs different leverage, then back to cross
        at(0, "set_margin_mode", account=5, contract="BTCUSDT", mode="isolated"),
        at(0, "set_leverage", account=5, contract="BTCUSDT", leverage=10, leg="long"),
        at(0, "set_margin_mode", account=5, contract="BTCUSDT", mode="cross"),  # legs differ
        at(0, "set_auto_add_margin", account=5, contract="BTCUSDT", enabled=True, leg="short"),
        at(1, "set_position_mode", account=4, mode="hedge"),
        at(1, "set_position_mode", account=4, mode="hedge"),  # already
        at(1, "set_position_mode", account=4, mode="diagonal"),
        at(1, "set_position_mode", account=1, mode="hedge"),  # open position
        at(1, "set_position_mode", account=8, mode="hedge"),  # resting order
        at(1, "set_position_mode", account=3, mode="hedge"),  # position before order
        at(1, "set_position_mode", account=9, mode="hedge"),  # names ETHUSDT: opened first
        at(1, "set_position_mode", account=5, mode="one-way"),  # BTC legs 10x/20x -> 10x, auto off
        at(2, "set_margin_mode", account=5, contract="BTCUSDT", mode="cross"),  # now equal
        at(2, "market", account=4, contract="ETHUSDT", side="buy", qty=1.0, leg="long"),  # hedge now
        at(2, "set_position_mode", account=4, mode="one-way"),
    ]
    ref, got = check(tape, {"set_margin_mode: ValueError": 1, "set_margin_mode: KeyError": 1,
                            "set_margin_mode: margin_mode_blocked": 3, "set_margin_mode: cross_leverage_mismatch": 1,
                            "set_position_mode: ValueError": 1, "set_position_mode: position_mode_blocked": 5})
    blocked = [r for r in got.events["reason"] if "account 9: cannot change the position mode" in r]
    assert blocked and "ETHUSDT" in blocked[0]  # the Book's dict order, not (contract, leg) order


def test_auto_add_and_tp_sl():
    tape = [
        at(0, "set_auto_add_margin", account=3, contract="ETHUSDT", enabled=True),
        at(0, "set_auto_add_margin", account=2, contract="ETHUSDT", enabled=True),  # hedge, both legs
        at(0, "set_auto_add_margin", account=2, contract="ETHUSDT", enabled=False, leg="short"),
        at(0, "set_auto_add_margin", account=1, contract="BTCUSDT", enabled=True),  # cross
        at(0, "set_auto_add_margin", account=3, contract="ETHUSDT", enabled=True, leg="long"),  # one-way
        at(0, "set_auto_add_margin", account=3, contract="ETHUSDT", enabled=True, leg="diagonal"),
        at(0, "set_auto_add_margin", account=3, contract="XRPUSDT", enabled=True),
        at(0, "set_tp_sl", account=1, contract="BTCUSDT", take_profit=120.0, stop_loss=80.0),
        at(0, "set_tp_sl", account=2, contract="ETHUSDT", leg="long", stop_loss=70),
        at(0, "set_tp_sl", account=3, contract="ETHUSDT", take_profit=90.0),
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", take_profit="clear"),
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", take_profit=90.0),  # reached
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", stop_loss=110.0),  # reached
        at(1, "set_tp_sl", account=3, contract="ETHUSDT", stop_loss=95.0),  # short: reached
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", take_profit=-3.0),
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", stop_loss="low"),
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", take_profit=90.0, stop_loss="low"),  # tp first
        at(1, "set_tp_sl", account=2, contract="ETHUSDT", take_profit=150.0),  # hedge: name the leg
        at(1, "set_tp_sl", account=1, contract="BTCUSDT", take_profit=150.0, leg="long"),  # one-way
        at(1, "set_tp_sl", account=4, contract="BTCUSDT", take_profit=150.0),  # no position
        at(1, "set_tp_sl", account=404, contract="BTCUSDT", take_profit=150.0),
    ]
    check(tape, {"set_auto_add_margin: auto_add_cross": 1, "set_auto_add_margin: ValueError": 2,
                 "set_auto_add_margin: KeyError": 1, "set_tp_sl: tp_sl_crossed": 4, "set_tp_sl: ValueError": 4,
                 "set_tp_sl: no_position": 1, "set_tp_sl: KeyError": 1})


def test_deposits_and_withdrawals():
    tape = [
        at(0, "deposit", account=4, amount=250.0),
        at(0, "withdraw", account=1, amount=100.0),
        at(0, "withdraw", account=7, amount=50.0),  # free balance 10
        at(0, "withdraw", account=3, amount=1e9),
        at(0, "deposit", account=4, amount=0.0),
        at(0, "deposit", account=4, amount="some"),
        at(0, "withdraw", account=4, amount=-1.0),
        at(0, "deposit", account=31, amount=10.0),
        at(0, "withdraw", account=31, amount=10.0),
        at(1, "withdraw", account=4, amount=350.0),  # everything
    ]
    ref, got = check(tape, {"withdraw: insufficient_free_balance": 2, "deposit: ValueError": 2,
                            "withdraw: ValueError": 1, "deposit: KeyError": 1, "withdraw: KeyError": 1})
    assert ref.ledger["deposits"] == got.ledger["deposits"] == 250.0 - 100.0 - 350.0


# ------------------------------------------------------------- across the run
@pytest.mark.parametrize("model", ["close", "ohlc", "worst"])
@pytest.mark.parametrize("basis", ["mark", "entry"])
def test_actions_then_the_market_moves(model, basis):
    """Positions, orders, margin and triggers set by the tape drive later fills, TP/SL,
    top-ups and liquidations (sleeping accounts must wake for them)."""
    tape = [
        at(0, "market", account=4, contract="BTCUSDT", side="buy", qty=15.0),
        at(0, "set_margin_mode", account=5, contract="ETHUSDT", mode="isolated"),
        at(0, "set_auto_add_margin", account=5, contract="ETHUSDT", enabled=True, leg="short"),
        at(0, "market", account=5, contract="ETHUSDT", side="sell", qty=20.0, leg="short"),
        at(0, "limit", account=8, contract="BTCUSDT", side="buy", qty=3.0, price=94.0),
        at(1, "set_tp_sl", account=6, contract="BTCUSDT", stop_loss=93.0),
        at(1, "add_margin", account=3, contract="ETHUSDT", amount=30.0),
        at(3, "withdraw", account=1, amount=4_500.0),
    ]
    spec = [FLAT, ((0.0, 0.01, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)), ((-0.05, 0.02, 0.01, 0.0), (0.04, 0.01, 0.02, 0.0)),
            ((-0.03, 0.03, 0.02, -0.01), (0.05, 0.02, 0.08, 0.02)), FLAT, FLAT]
    ref, got = run_both(hand_book(), build_paths(spec), tape, model, basis, block=2)
    assert_same(ref, got)
    _, awake = run_both(hand_book(), build_paths(spec), tape, model, basis, block=2, sleep=False)
    assert_same(ref, awake)


@pytest.mark.parametrize("model", ["close", "ohlc"])
def test_funding_at_a_tape_bar_wakes_the_accounts_it_pays(model):
    """Account 1 (cross long 10 @ 100, wallet 100, excess 90) sleeps through flat bars; at bar 5
    funding of 9.5% takes 95 from it, below its maintenance margin, while the tape deposits
    into another account: account 1 must be looked at in bar 5, as on a bar without actions."""
    book = base_book()
    book.add_account(1, wallet=100.0)
    book.market_order(1, "BTCUSDT", "buy", 10.0, 100.0)
    book.add_account(2, wallet=1_000.0)
    book.set_marks({s: START for s in CONTRACTS})
    tape = [at(5, "deposit", account=2, amount=10.0)]
    funding = {s: pd.DataFrame({"timestamp": [stamp(5)], "rate": [0.095]}) for s in CONTRACTS}
    ref, got = run_both(book, build_paths([FLAT] * 10), tape, model, funding=funding)
    assert (ref.events["kind"] == "liquidation").sum() == 1
    assert_same(ref, got)


def test_a_dataframe_tape_with_float_ids():
    """A tape frame with cancel rows has float account ids (1.0): the Book finds the account,
    and its sentences show the id as given (``account 1.0``) where the reference does."""
    tape = pd.DataFrame([
        at(0, "withdraw", account=1, amount=1e9),
        at(0, "limit", account=4, contract="BTCUSDT", side="buy", qty=1.0, price=95.0, tag="t"),
        at(0, "add_margin", account=3, contract="ETHUSDT", amount=1e6),
        at(1, "cancel", tag="t"),
        at(1, "cancel", order_id=999),
    ])
    ref, got = check(tape, {"withdraw: insufficient_free_balance": 1, "add_margin: insufficient_free_balance": 1,
                            "cancel: KeyError": 1})
    assert any("account 1.0:" in r for r in got.events["reason"])


def test_a_row_on_a_contract_without_a_path_is_an_input_error():
    from riskcore import Brackets
    from riskcore.inputs import InputError
    from strategies import TIERS

    book = hand_book()
    book.add_contract("SOLUSDT", Brackets.from_records(TIERS, symbol="SOLUSDT"))
    pp = PricePaths.from_frames(quiet_paths())
    actions = [ScheduledAction(0, 0, "set_leverage", {"account": 1, "contract": "SOLUSDT", "leverage": 5})]
    with pytest.raises(InputError, match="SOLUSDT"):
        encode_tape(actions, np.array([1], dtype=object), pp.contracts, tuple(book.contracts))
    # a market order prices it at NaN, as the reference does: refused before the run
    actions = [ScheduledAction(0, 0, "market", {"account": 1, "contract": "SOLUSDT", "side": "buy", "qty": 1.0})]
    tape = encode_tape(actions, np.array([1], dtype=object), pp.contracts, tuple(book.contracts))
    assert tape.static_text[0] == "market: ValueError: price must be a positive finite number, not nan"


# ------------------------------------------------------------------- property
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_specs, path_specs, any_tape_specs, st.sampled_from(["close", "ohlc", "worst"]),
       st.sampled_from(["mark", "entry"]))
def test_random_tapes_of_every_kind_match_the_reference(specs, path_spec, tape_spec, model, basis):
    book = build_book(specs)
    ref, got = run_both(book, build_paths(path_spec), build_any_tape(tape_spec, book), model, basis, block=2)
    assert_same(ref, got)


def seeded_tape(book, n_rows: int, n_steps: int, seed: int) -> list[dict]:
    """Mostly valid rows of every kind (legs as the account's mode wants 90% of the time),
    so that orders rest, fill, get cancelled, and the Book's state-dependent refusals come up."""
    rng = np.random.default_rng(seed)
    ids = list(book.accounts)
    kinds = ["market"] * 6 + ["limit"] * 5 + ["cancel"] * 2 + ["add_margin", "remove_margin", "set_leverage",
                                                                  "set_margin_mode", "set_position_mode",
                                                                  "set_auto_add_margin", "set_tp_sl", "deposit",
                                                                  "withdraw"]
    hedge = {a: book.accounts[a].position_mode == 1 for a in ids}
    rows = []
    for _ in range(n_rows):
        kind = str(rng.choice(kinds))
        a = ids[rng.integers(len(ids))]
        side = str(rng.choice(["buy", "sell"]))
        row = at(int(rng.integers(n_steps)), kind, account=a, contract=str(rng.choice(CONTRACTS)))
        if rng.random() < 0.9:
            leg = ("long" if side == "buy" else "short") if hedge[a] else None
            if kind not in ("market", "limit") and hedge[a]:
                leg = str(rng.choice(["long", "short"]))
        else:
            leg = rng.choice([None, "long", "short"])
        if leg is not None:
            row["leg"] = leg
        if kind in ("market", "limit"):
            row.update(side=side, qty=float(rng.uniform(0.2, 25.0)))
            if rng.random() < 0.15:
                row["reduce_only"] = True
            if kind == "limit":
                row["price"] = float(100.0 * (1 + rng.normal(0, 0.05)))
                row["tag"] = f"t{rng.integers(6)}"
        elif kind == "cancel":
            row = at(row["timestamp"].minute, "cancel", **({"tag": f"t{rng.integers(6)}"} if rng.random() < 0.6
                                                           else {"order_id": int(rng.integers(1, 40))}))
        elif kind in ("add_margin", "remove_margin", "deposit", "withdraw"):
            row["amount"] = float(rng.uniform(1.0, 400.0))
        elif kind == "set_leverage":
            row["leverage"] = int(rng.choice([2, 5, 10, 20, 25, 50]))
        elif kind == "set_margin_mode":
            row["mode"] = str(rng.choice(["cross", "isolated"]))
        elif kind == "set_position_mode":
            row["mode"] = str(rng.choice(["one-way", "hedge"]))
        elif kind == "set_auto_add_margin":
            row["enabled"] = bool(rng.random() < 0.7)
        elif kind == "set_tp_sl":
            row["take_profit"] = float(100.0 * (1 + rng.normal(0, 0.1)))
            if rng.random() < 0.7:
                row["stop_loss"] = float(100.0 * (1 + rng.normal(0, 0.1)))
        if kind in ("set_position_mode", "deposit", "withdraw"):
            row.pop("contract", None)
            row.pop("leg", None)
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_seeded_tapes_of_every_kind_match_the_reference(seed):
    from test_kernel_differential import seeded_book

    book, paths, _ = seeded_book(200 + seed, 30)
    n_steps = len(paths["BTCUSDT"])
    tape = seeded_tape(book, 300, n_steps, seed)
    model = ["close", "ohlc", "worst"][seed % 3]
    ref, got = run_both(book, paths, tape, model, ["mark", "entry"][seed % 2], block=4)
    assert_same(ref, got)
    assert {"order", "fill", "action"} <= set(got.events["kind"])


# ---------------------------------------------------------------- a long stream
def stream(n_accounts: int, n_rows: int, n_steps: int, seed: int = 0):
    """A book of one-way accounts (a third with a cross long BTCUSDT) and a tape of market and
    limit orders (with reduce-only ones and refusals) spread over the bars, as
    ``ScheduledAction`` lists (``schedule_tape`` is per-row Python)."""
    rng = np.random.default_rng(seed)
    book = base_book()
    for a in range(n_accounts):
        book.add_account(a, wallet=float(rng.uniform(200, 2_000)))
    for a in range(0, n_accounts, 3):
        book.market_order(a, "BTCUSDT", "buy", float(rng.uniform(0.5, 5.0)), 100.0)
    steps = np.sort(rng.integers(0, n_steps, n_rows))
    accts = rng.integers(0, n_accounts, n_rows)
    contract = rng.integers(0, 2, n_rows)
    side = rng.choice(["buy", "sell"], n_rows)
    qty = rng.uniform(0.1, 8.0, n_rows)
    limit = rng.random(n_rows) < 0.4
    reduce = rng.random(n_rows) < 0.1
    price = 100.0 * (1 + rng.normal(0, 0.01, n_rows))
    actions = []
    for i in range(n_rows):
        f = {"account": int(accts[i]), "contract": CONTRACTS[contract[i]], "side": str(side[i]), "qty": float(qty[i])}
        if reduce[i]:
            f["reduce_only"] = True
        if limit[i]:
            f["price"] = float(price[i])
        actions.append(ScheduledAction(int(steps[i]), i, "limit" if limit[i] else "market", f))
    spec = [((float(rng.normal(0, 0.004)), 0.003, 0.003, 0.0), (float(rng.normal(0, 0.004)), 0.003, 0.003, 0.0))
            for _ in range(n_steps)]
    return book, PricePaths.from_frames(build_paths(spec)), actions


def test_a_200k_row_order_stream_on_a_20k_account_book():
    book, pp, actions = stream(20_000, 200_000, 200)
    rates = np.zeros((pp.n_steps, pp.n_contracts))
    got = run_numba(book, pp, rates, actions, liquidation_fee_rate=0.01, intrabar="close")
    ev = got.events
    n_limit = sum(a.action == "limit" for a in actions)
    refused = ev.loc[ev["kind"] == "refused", "reason"]
    refused_limit = int(refused.str.startswith("limit:").sum())
    refused_market = int(refused.str.startswith("market:").sum())
    assert int((ev["kind"] == "order").sum()) + refused_limit == n_limit  # one event per limit row
    assert int((ev["kind"] == "fill").sum()) >= len(actions) - n_limit - refused_market
    assert 0 < refused_market < len(actions) - n_limit
    assert abs(got.money_check()) <= 1e-9 * (1 + got.ledger["money_start"])
    # the first bars against the reference engine (prefix causality: a run of k bars is the
    # first k bars of a longer run)
    k = 2
    head = pp.head(k)
    first = [a for a in actions if a.step < k]
    ref = ReferenceEngine(book.copy(), head, rates[:k], list(first), liquidation_fee_rate=0.01, insurance_fund=0.0,
                          liquidation_slippage=0.0, intrabar="close", mm_basis="mark").run()
    short = run_numba(book, head, rates[:k], first, liquidation_fee_rate=0.01, intrabar="close")
    assert_same(ref, short)
    n_head = int((got.events["step"] < k).sum())
    assert n_head == len(ref.events)
    cols = ["step", "kind", "account", "contract", "side", "reason"]
    text = {c: object for c in ("kind", "contract", "reason")}  # categoricals whose categories differ
    pd.testing.assert_frame_equal(got.events[cols].iloc[:n_head].reset_index(drop=True).astype(text),
                                  ref.events[cols].reset_index(drop=True).astype(text), check_dtype=False)


# ------------------------------------------------------------- scheduling the tape
@pytest.mark.parametrize("kind", ["ms", "naive", "utc", "other_tz", "datetime64", "mixed", "strings", "floats"])
def test_schedule_tape_converts_all_timestamps_at_once_as_row_by_row(kind, monkeypatch):
    """``schedule_tape`` converts the timestamps of a whole tape at once when they are all
    integers or all datetimes; the bars must be those of the row-by-row conversion."""
    import riskcore.inputs as inputs

    pp = PricePaths.from_frames(quiet_paths(6))
    base = pd.Timestamp("2025-01-01")
    offsets = [pd.Timedelta(seconds=s) for s in (-30, 0, 1, 59, 60, 61, 150, 299, 300, 301, 1_000)]
    stamps = {
        "ms": [int((base + o).value // 1_000_000) for o in offsets],
        "naive": [base + o for o in offsets],
        "utc": [(base + o).tz_localize("UTC") for o in offsets],
        "other_tz": [(base + o).tz_localize("UTC").tz_convert("Asia/Tokyo") for o in offsets],
        "datetime64": [np.datetime64(base + o) for o in offsets],
        "mixed": [(base + o) if i % 2 else (base + o).tz_localize("UTC") for i, o in enumerate(offsets)],
        "strings": [str(base + o) for o in offsets],
        "floats": [float((base + o).value // 1_000_000) for o in offsets],
    }[kind]
    tape = [{"timestamp": ts, "action": "deposit", "account": 1, "amount": 1.0} for ts in stamps]
    fast = [(a.step, a.row) for a in schedule_tape(tape, pp)]
    monkeypatch.setattr(inputs, "_tape_stamps", lambda records: None)
    slow = [(a.step, a.row) for a in schedule_tape(tape, pp)]
    assert fast == slow and len(fast) > 5


def test_schedule_tape_still_names_the_row_at_fault():
    from riskcore.inputs import InputError

    pp = PricePaths.from_frames(quiet_paths(3))
    tape = [{"timestamp": pd.Timestamp("2025-01-01"), "action": "deposit", "account": 1, "amount": 1.0},
            {"timestamp": "not a time", "action": "deposit", "account": 1, "amount": 1.0}]
    with pytest.raises(InputError, match="tape row 1: column 'timestamp' is not a time"):
        schedule_tape(tape, pp)
