"""Every guarantee docs/simulation.md lists ("Guarantees"), on random books, on both engines.

Random books, paths (with crashes, so that bad debt and ADL come up), tapes and funding (rates
up to 8%, so that isolated wallets can go below zero) from ``strategies.py``; hypothesis,
bounded to run in a couple of minutes.  Each guarantee is checked on the final state of the
run and of a prefix of it (a run cut after bar ``k`` settles every point up to there).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import bar_spec, book_specs, build_book, build_funding, build_paths, build_tape, tape_specs

from riskcore import simulate
from riskcore.enums import MarginMode

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
CRASH = ((-0.02, 0.05, 0.0, -0.35), (0.0, 0.02, 0.02, 0.0))  # BTC gaps down 35%
SPIKE = ((0.0, 0.02, 0.02, 0.0), (0.02, 0.0, 0.05, 0.40))  # ETH gaps up 40%
paths_with_crashes = st.lists(st.one_of(st.tuples(bar_spec, bar_spec), st.just(CRASH), st.just(SPIKE)),
                              min_size=2, max_size=6)
heavy_funding = st.lists(st.tuples(st.integers(0, 5), st.floats(-0.08, 0.08)), max_size=3)


def run(engine, book, paths, tape, funding, model, fund, basis):
    return simulate(book, paths, liquidation_fee_rate=0.01, insurance_fund=fund, liquidation_slippage=0.002,
                    tape=tape, funding=funding, intrabar=model, mm_basis=basis, engine=engine)


def mm(book, symbol, notional):
    return float(book.contracts[symbol].brackets.maintenance_margin(notional))


def check_guarantees(result, basis) -> None:
    scale = 1.0 + result.ledger["money_start"] + abs(result.ledger["realized_pnl"])
    tol = 1e-9 * scale
    # money is conserved; the fund never goes below zero
    assert abs(result.money_check()) <= tol
    assert (result.steps["insurance_fund"] >= -tol).all()
    # each point's deficits are paid by the fund, recovered by ADL or socialised, nothing else
    s = result.steps
    assert ((s["bad_debt"] - s["insurance_paid"] - s["adl_recovered"] - s["socialised_loss"]).abs() <= tol).all()
    assert (s["socialised_loss"] >= -tol).all() and (s["adl_recovered"] >= -tol).all()
    ev = result.events
    adl = ev[ev["kind"] == "adl"]
    # an ADL fill never costs a counterparty more than its unrealized profit at the mark: it
    # realises no loss (and an isolated one returns its margin share, never less than nothing)
    counter = adl[adl["reason"] == "counterparty"]
    assert (counter["amount"] >= -tol).all(), counter
    # a shortfall is never moved onto a contract that did not lose: a bankrupt side's contract
    # lost at its liquidation fill, unless no position of that scope lost
    liq = ev[ev["kind"] == "liquidation"]
    for row in adl[adl["reason"] == "bankrupt side"].itertuples():
        here = liq[(liq["step"] == row.step) & (liq["point"] == row.point) & (liq["account"] == row.account)]
        if (here["amount"] < 0).any():
            mine = here[(here["contract"] == row.contract) & (here["leg"] == row.leg)]
            assert (mine["amount"] < 0).any(), (row, here)
    book = result.book
    marks = {symbol: c.mark_price for symbol, c in book.contracts.items()}
    for acct in book.accounts.values():
        cross = [p for p in acct.positions.values() if acct.settings[p.contract].margin_mode == MarginMode.CROSS]
        if not cross:  # no account without a cross position has a negative cross wallet
            assert acct.wallet >= -tol, (acct.account_id, acct.wallet)
        else:  # no cross book is left at or below its maintenance margin
            excess = acct.wallet + sum(p.side * p.qty * (marks[p.contract] - p.entry_price)
                                       - mm(book, p.contract, p.qty * marks[p.contract]) for p in cross)
            assert excess > -tol, (acct.account_id, excess)
        for pos in acct.positions.values():
            assert pos.qty > 0
            if acct.settings[pos.contract].margin_mode != MarginMode.ISOLATED:
                continue
            # an isolated position still open has equity above its maintenance margin (its wallet
            # may be below zero through funding, carried by unrealized profit)
            equity = pos.wallet_iso + pos.side * pos.qty * (marks[pos.contract] - pos.entry_price)
            basis_px = marks[pos.contract] if basis == "mark" else pos.entry_price
            assert equity > mm(book, pos.contract, pos.qty * basis_px) - tol, (acct.account_id, pos, equity)


def isolated_flows_are_bounded(result, book) -> None:
    """An ADL close never lowers the counterparty's cross wallet: a cross one realises no loss,
    an isolated one returns its margin share plus a profit, never less than nothing (so the
    rest of the account never pays for it).  Every change of a wallet is an event showing the
    wallet after it."""
    last_wallet = {a.account_id: a.wallet for a in book.accounts.values()}
    for row in result.events.itertuples():
        before = last_wallet.get(row.account)
        if before is not None and row.kind == "adl" and row.reason == "counterparty":
            assert row.wallet >= before - 1e-9 * (1 + abs(before)), (row, before)
        if row.account in last_wallet and not pd.isna(row.wallet):
            last_wallet[row.account] = row.wallet


@SETTINGS
@given(book_specs, paths_with_crashes, tape_specs, heavy_funding, st.sampled_from(["close", "ohlc", "worst"]),
       st.sampled_from([0.0, 0.0, 5.0]), st.sampled_from(["mark", "entry"]), st.data())
def test_guarantees_hold_on_both_engines(specs, path_spec, tape_spec, funding_spec, model, fund, basis, data):
    book = build_book(specs)
    paths, tape, funding = build_paths(path_spec), build_tape(tape_spec, book), build_funding(funding_spec)
    k = data.draw(st.integers(1, len(path_spec)))
    prefix = {c: f.head(k) for c, f in paths.items()}
    for engine in ("reference", "numba"):
        for p in (paths, prefix):
            result = run(engine, book, p, tape, funding, model, fund, basis)
            check_guarantees(result, basis)
            isolated_flows_are_bounded(result, book)


def test_the_strategies_reach_adl_and_negative_isolated_wallets():
    """Guard against a vacuous suite: a fixed draw reaches ADL with a capped counterparty and an
    isolated wallet below zero through funding, and the guarantees hold there too.

    Account 1 (cross, wallet 200) is long 25 BTC and 5 ETH @ 100; bar 1 opens BTC at 65: its
    loss (875) makes a deficit, all of it BTC's (ETH did not move).  Account 2's isolated short
    10 BTC @ 100 (20x, wallet_iso 50) pays 10 * 65 * 8% = 52 of funding there: wallet_iso -2,
    equity -2 + 350 far above MM.  Account 3's cross short 10 @ 85 is capped (its bankruptcy price is about 85.3) at its entry."""
    specs = [("one-way", "cross", "cross", 20, False, 200.0, [("BTCUSDT", "buy", 25.0, 100.0),
                                                              ("ETHUSDT", "buy", 5.0, 100.0)], []),
             ("one-way", "isolated", "cross", 20, False, 3_000.0, [("BTCUSDT", "sell", 10.0, 100.0)], []),
             ("one-way", "cross", "cross", 10, False, 3_000.0, [("BTCUSDT", "sell", 10.0, 85.0)], [])]
    book = build_book(specs)
    paths = build_paths([((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)), CRASH])
    funding = build_funding([(1, -0.08)])
    for engine in ("reference", "numba"):
        result = run(engine, book, paths, None, funding, "ohlc", 0.0, "mark")
        ev = result.events
        assert {"bad_debt", "adl"} <= set(ev["kind"])
        assert (ev[(ev["kind"] == "funding") & (ev["account"] == 2)]["wallet_iso"] < 0).all()
        capped = ev[(ev["kind"] == "adl") & (ev["account"] == 3)]
        assert len(capped) == 1 and capped["price"].iloc[0] == 85.0 and capped["amount"].iloc[0] == 0.0
        check_guarantees(result, "mark")
        isolated_flows_are_bounded(result, book)
