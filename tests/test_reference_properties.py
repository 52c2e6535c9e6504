"""Properties of the reference engine on random books, paths, tapes and funding (hypothesis, bounded)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import (book_specs, build_book, build_funding, build_paths, build_tape, event_key, funding_specs,
                        path_specs, tape_specs)

from riskcore import simulate

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
models = st.sampled_from(["close", "ohlc", "worst"])
funds = st.sampled_from([0.0, 0.0, 5.0, 1e6])


def run(book, paths, tape=None, funding=None, model="ohlc", fund=0.0, **kw):
    return simulate(book, paths, liquidation_fee_rate=0.01, insurance_fund=fund, liquidation_slippage=0.002,
                    tape=tape, funding=funding, intrabar=model, **kw)


@SETTINGS
@given(book_specs, path_specs, tape_specs, funding_specs, models, funds, st.sampled_from(["mark", "entry"]))
def test_money_is_conserved(specs, path_spec, tape_spec, funding_spec, model, fund, basis):
    book = build_book(specs)
    result = run(book, build_paths(path_spec), build_tape(tape_spec, book), build_funding(funding_spec),
                 model, fund, mm_basis=basis)
    scale = 1.0 + result.ledger["money_start"] + abs(result.ledger["realized_pnl"])
    assert abs(result.money_check()) <= 1e-9 * scale
    # and nothing is left below zero: no fund, no cross wallet without a cross position behind it,
    # no isolated position's equity (its wallet may be below zero through funding, section 7:
    # tests/test_guarantees.py checks every guarantee on both engines)
    final = result.book
    assert result.ledger["insurance_fund"] >= 0.0
    for acct in final.accounts.values():
        cross = [p for p in acct.positions.values() if acct.settings[p.contract].margin_mode == 0]
        if not cross:  # a negative cross wallet with nothing behind it would be uncovered bad debt
            assert acct.wallet >= -1e-9 * scale
        for pos in acct.positions.values():
            mark = final.contracts[pos.contract].mark_price
            assert pos.qty > 0
            if acct.settings[pos.contract].margin_mode == 1:
                assert pos.wallet_iso + pos.side * pos.qty * (mark - pos.entry_price) > -1e-9 * scale


@SETTINGS
@given(book_specs, path_specs, tape_specs, funding_specs, models, funds, st.data())
def test_prefix_causality(specs, path_spec, tape_spec, funding_spec, model, fund, data):
    book = build_book(specs)
    paths = build_paths(path_spec)
    tape, funding = build_tape(tape_spec, book), build_funding(funding_spec)
    k = data.draw(st.integers(1, len(path_spec)))
    full = run(book, paths, tape, funding, model, fund)
    short = run(book, {c: f.head(k) for c, f in paths.items()}, tape, funding, model, fund)
    assert event_key(short.events) == event_key(full.events[full.events["step"] < k])
    pd.testing.assert_frame_equal(short.steps, full.steps.head(k))


@SETTINGS
@given(book_specs, path_specs, funding_specs, models, funds, st.randoms(use_true_random=False))
def test_account_permutation_invariance(specs, path_spec, funding_spec, model, fund, rnd):
    order = list(range(len(specs)))
    rnd.shuffle(order)
    paths, funding = build_paths(path_spec), build_funding(funding_spec)
    a = run(build_book(specs), paths, None, funding, model, fund)
    b = run(build_book(specs, order), paths, None, funding, model, fund)
    assert event_key(a.events) == event_key(b.events)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    assert a.book == b.book or a.book.to_frames()["positions"].sort_values(["account", "contract", "leg"]) \
        .reset_index(drop=True).equals(b.book.to_frames()["positions"].sort_values(["account", "contract", "leg"])
                                       .reset_index(drop=True))


def isolated_trail(result, account, contract) -> list[tuple]:
    ev = result.events
    mine = ev[(ev["account"] == account) & (ev["contract"] == contract)
              & ev["kind"].isin(["liquidation", "topup", "funding", "bad_debt"])]
    return [(r.step, r.point, r.kind, round(r.qty, 9), round(r.price, 6), round(r.amount, 6))
            for r in mine.itertuples()]


@SETTINGS
@given(st.sampled_from(["buy", "sell"]), st.floats(1.0, 30.0), st.sampled_from([2, 5, 10, 20]),
       st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.floats(0.5, 30.0)), max_size=3),
       st.floats(0.0, 5_000.0), path_specs, funding_specs, models)
def test_isolated_fate_ignores_the_rest_of_the_account(side, qty, lev, others, extra_wallet, path_spec,
                                                       funding_spec, model):
    """Without auto-add, an isolated BTCUSDT position's top-ups, funding and liquidation are the
    same whether its account holds nothing else or a cross ETHUSDT book and more money."""
    from strategies import base_book
    paths, funding = build_paths(path_spec), build_funding(funding_spec)

    def make(with_others: bool):
        book = base_book()
        book.add_account(1, wallet=10_000 + (extra_wallet if with_others else 0.0))
        book.set_margin_mode(1, "BTCUSDT", "isolated")
        book.set_leverage(1, "BTCUSDT", lev)
        book.market_order(1, "BTCUSDT", side, qty, 100.0)
        if with_others:
            book.set_leverage(1, "ETHUSDT", 10)
            for s, q in others:
                book.market_order(1, "ETHUSDT", s, q, 100.0)
        return book

    alone = run(make(False), paths, None, funding, model, 0.0)
    crowded = run(make(True), paths, None, funding, model, 0.0)
    assert isolated_trail(alone, 1, "BTCUSDT") == isolated_trail(crowded, 1, "BTCUSDT")


def test_generators_reach_liquidations_topups_bad_debt_and_adl():
    """Guard against vacuous strategies: a fixed draw exercises the rare paths."""
    specs = [("one-way", "isolated", "cross", 20, True, 200.0, [("BTCUSDT", "buy", 30.0, 100.0)], []),
             ("one-way", "cross", "cross", 20, False, 150.0, [("BTCUSDT", "buy", 25.0, 100.0)], []),
             ("one-way", "cross", "cross", 10, False, 3_000.0, [("BTCUSDT", "sell", 40.0, 100.0)], [])]
    crash = [((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),  # a calm bar, then a 30% gap down
             ((-0.02, 0.05, 0.0, -0.30), (0.0, 0.0, 0.0, 0.0))]
    result = run(build_book(specs), build_paths(crash), fund=0.0)
    kinds = set(result.events["kind"])
    assert {"topup", "liquidation", "bad_debt", "adl"} <= kinds
    assert math.isclose(result.money_check(), 0.0, abs_tol=1e-6)
    assert np.isfinite(result.steps["insurance_fund"]).all()
