"""The numba kernel engine against the reference engine (differential tests).

Random books, paths, tapes and funding from ``strategies.py`` (hypothesis, bounded),
every position and margin mode, all three intrabar models and both MM bases mixed.
Events must agree exactly in kind, account, contract, leg, side, step, point, reason
and order; money (event amounts, wallets, per-step series, ledger, final book) within
1e-9 relative to the money in play.  Speed is never asserted here (see benchmarks/).

Run under ``NUMBA_DISABLE_JIT=1`` for line coverage of the kernels; one test here does
that in a subprocess so the pure-Python path stays working.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import (CONTRACTS, base_book, book_specs, build_book, build_funding, build_paths, build_tape,
                        funding_specs, path_specs, tape_specs)

from riskcore import Book, Brackets, simulate
from riskcore.inputs import PricePaths, funding_by_step, schedule_tape
from riskcore.kernels import EventBufferOverflow, run_numba



RTOL = 1e-9
MONEY_COLUMNS = ["qty", "price", "amount", "fee", "wallet", "wallet_iso"]
EXACT_COLUMNS = ["step", "point", "account", "contract", "leg", "kind", "side", "reason"]
models = st.sampled_from(["close", "ohlc", "worst"])
funds = st.sampled_from([0.0, 0.0, 5.0, 1e6])
bases = st.sampled_from(["mark", "entry"])


def both(book, paths, tape=None, funding=None, model="ohlc", fund=0.0, basis="mark", fee=0.01, slip=0.002, **kw):
    """Run both engines on the same inputs."""
    ref = simulate(book, paths, liquidation_fee_rate=fee, insurance_fund=fund, liquidation_slippage=slip,
                   tape=tape, funding=funding, intrabar=model, mm_basis=basis)
    pp = PricePaths.from_frames(paths)
    kw.setdefault("event_capacity", 200_000)
    kw.setdefault("on_overflow", "raise")
    got = run_numba(book, pp, funding_by_step(funding, pp), schedule_tape(tape, pp), liquidation_fee_rate=fee,
                    insurance_fund=fund, liquidation_slippage=slip, intrabar=model, mm_basis=basis, **kw)
    return ref, got


def _close(a: float, b: float, scale: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= RTOL * max(abs(a), abs(b), scale)


def _plain(values: list) -> list:
    """Missing values (None/NaN) as None, so that they compare equal."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def assert_same(ref, got) -> None:
    """Identical events, series, ledger and final book; money within RTOL of the money in play."""
    scale = 1.0 + abs(ref.ledger["money_start"]) + abs(ref.ledger["realized_pnl"])
    re, ge = ref.events, got.events
    assert len(re) == len(ge), (re["kind"].value_counts().to_dict(), ge["kind"].value_counts().to_dict())
    for col in EXACT_COLUMNS:
        a, b = _plain(re[col].tolist()), _plain(ge[col].tolist())
        if a != b:
            i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
            raise AssertionError(f"events differ in {col!r} at row {i}:\nreference {re.iloc[i].to_dict()}\n"
                                 f"numba     {ge.iloc[i].to_dict()}")
    assert (re["timestamp"] == ge["timestamp"]).all()
    for col in MONEY_COLUMNS:
        for i, (a, b) in enumerate(zip(re[col].tolist(), ge[col].tolist())):
            assert _close(float(a), float(b), scale), (col, i, a, b, re.iloc[i].to_dict())
    rs, gs = ref.steps, got.steps
    assert list(rs.columns) == list(gs.columns) and len(rs) == len(gs)
    for col in rs.columns:
        if col == "timestamp":
            assert (rs[col] == gs[col]).all()
        elif rs[col].dtype.kind == "i":
            assert rs[col].tolist() == gs[col].tolist(), col
            assert gs[col].dtype == rs[col].dtype
        else:
            for a, b in zip(rs[col].tolist(), gs[col].tolist()):
                assert _close(a, b, scale), (col, a, b)
    assert list(ref.ledger) == list(got.ledger)
    for key, value in ref.ledger.items():
        assert _close(float(value), float(got.ledger[key]), scale), (key, value, got.ledger[key])
    assert abs(got.money_check()) <= RTOL * scale
    assert_same_book(ref.book, got.book, scale)


def assert_same_book(a, b, scale) -> None:
    assert a.fees_collected == pytest.approx(b.fees_collected, rel=RTOL, abs=RTOL * scale)
    assert a.next_order_id == b.next_order_id
    assert {s: c.mark_price for s, c in a.contracts.items()} == {s: c.mark_price for s, c in b.contracts.items()}
    assert set(a.accounts) == set(b.accounts)
    for acct_id, x in a.accounts.items():
        y = b.accounts[acct_id]
        assert _close(x.wallet, y.wallet, scale), (acct_id, x.wallet, y.wallet)
        assert x.position_mode == y.position_mode and x.settings == y.settings
        assert set(x.positions) == set(y.positions), acct_id
        for key, p in x.positions.items():
            q = y.positions[key]
            assert (p.side, p.leg, p.take_profit, p.stop_loss) == (q.side, q.leg, q.take_profit, q.stop_loss)
            for f in ("qty", "entry_price", "wallet_iso"):
                assert _close(getattr(p, f), getattr(q, f), scale), (acct_id, key, f)
        assert x.orders == y.orders


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(SETTINGS, max_examples=400)
@given(book_specs, path_specs, tape_specs, funding_specs, models, funds, bases)
def test_random_books_match_the_reference(specs, path_spec, tape_spec, funding_spec, model, fund, basis):
    book = build_book(specs)
    ref, got = both(book, build_paths(path_spec), build_tape(tape_spec, book), build_funding(funding_spec),
                    model, fund, basis)
    assert_same(ref, got)


@SETTINGS
@given(book_specs, path_specs, funding_specs, models, funds, bases, st.integers(1, 3))
def test_block_size_does_not_matter(specs, path_spec, funding_spec, model, fund, basis, block):
    """Blocks of 1-3 accounts spread a small book over the workers."""
    book = build_book(specs)
    ref, got = both(book, build_paths(path_spec), None, build_funding(funding_spec), model, fund, basis, block=block)
    assert_same(ref, got)


# ------------------------------------------------------------- bigger seeded books
def seeded_book(seed: int, n_accounts: int):
    """A larger random book (numpy seeds): every mode mixed, TP/SL, auto-add, resting orders."""
    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(n_accounts):
        positions = [(str(rng.choice(CONTRACTS)), str(rng.choice(["buy", "sell"])), float(rng.uniform(0.5, 40)),
                      float(rng.uniform(85, 115))) for _ in range(rng.integers(0, 4))]
        orders = [(str(rng.choice(CONTRACTS)), str(rng.choice(["buy", "sell"])), float(rng.uniform(0.5, 10)),
                   float(rng.uniform(80, 120))) for _ in range(rng.integers(0, 3))]
        specs.append((str(rng.choice(["one-way", "hedge"])), str(rng.choice(["cross", "isolated"])),
                      str(rng.choice(["cross", "isolated"])), int(rng.choice([2, 5, 10, 20])), bool(rng.random() < 0.5),
                      float(rng.uniform(50, 3000)), positions, orders))
    book = build_book(specs)
    for acct in book.accounts.values():  # TP/SL on some positions
        for (symbol, leg), pos in list(acct.positions.items()):
            if rng.random() < 0.3:
                pos.take_profit = pos.entry_price * (1 + pos.side * rng.uniform(0.02, 0.2))
            if rng.random() < 0.3:
                pos.stop_loss = pos.entry_price * (1 - pos.side * rng.uniform(0.02, 0.2))
    n_steps = int(rng.integers(5, 30))
    spec = [tuple((float(rng.uniform(-0.12, 0.12)), float(rng.uniform(0, 0.25)), float(rng.uniform(0, 0.25)),
                   float(rng.uniform(-0.15, 0.15))) for _ in CONTRACTS) for _ in range(n_steps)]
    funding = [(int(rng.integers(0, n_steps)), float(rng.uniform(-0.003, 0.003))) for _ in range(3)]
    return book, build_paths(spec), build_funding(funding)


@pytest.mark.parametrize("seed", range(12))
def test_seeded_books_match_the_reference(seed):
    book, paths, funding = seeded_book(seed, 40)
    model = ["close", "ohlc", "worst"][seed % 3]
    ref, got = both(book, paths, None, funding, model, [0.0, 50.0, 1e6][seed % 3 - 1], ["mark", "entry"][seed % 2],
                    block=7)
    assert_same(ref, got)


def test_topup_loop_ends_at_the_1x_cap():
    """Seed 8 drives an auto-add position to the 1x cap with a sub-ulp top-up left; both
    engines end the loop there (a top-up too small to move the price) and agree."""
    book, paths, funding = seeded_book(8, 40)
    ref, got = both(book, paths, None, funding, "worst", 50.0, "mark", block=7)
    assert (got.events["kind"] == "topup").sum() < 100
    assert_same(ref, got)


def crash_book():
    specs = [("one-way", "isolated", "cross", 20, True, 200.0, [("BTCUSDT", "buy", 30.0, 100.0)], []),
             ("one-way", "cross", "cross", 20, False, 150.0, [("BTCUSDT", "buy", 25.0, 100.0)], []),
             ("one-way", "cross", "cross", 10, False, 3_000.0, [("BTCUSDT", "sell", 40.0, 100.0)], []),
             ("hedge", "isolated", "isolated", 10, False, 3_000.0, [("BTCUSDT", "sell", 10.0, 100.0)], [])]
    crash = [((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)), ((-0.02, 0.05, 0.0, -0.30), (0.0, 0.0, 0.0, 0.0))]
    return build_book(specs), build_paths(crash)


@pytest.mark.parametrize("model", ["close", "ohlc", "worst"])
def test_crash_reaches_topups_liquidations_bad_debt_and_adl(model):
    book, paths = crash_book()
    ref, got = both(book, paths, model=model)
    wanted = {"topup", "liquidation"} | (set() if model == "close" else {"bad_debt", "adl"})
    assert wanted <= set(got.events["kind"])
    assert_same(ref, got)


def test_tape_actions_of_every_kind():
    """Limit orders with tags, cancels, margin moves, leverage, modes, TP/SL, deposits and
    refusals, applied between kernel segments."""
    book = base_book()
    book.add_account(1, wallet=5_000.0)
    book.add_account(2, wallet=800.0, position_mode="hedge")
    book.set_margin_mode(2, "ETHUSDT", "isolated")
    book.market_order(2, "ETHUSDT", "buy", 5.0, 100.0, leg="long")
    stamps = pd.date_range("2025-01-01", periods=6, freq="1min")
    tape = [
        {"timestamp": stamps[0], "action": "limit", "account": 1, "contract": "BTCUSDT", "side": "buy", "qty": 3.0,
         "price": 97.0, "tag": "a"},
        {"timestamp": stamps[0], "action": "limit", "account": 1, "contract": "BTCUSDT", "side": "sell",
         "qty": 1.0, "price": 130.0, "tag": "b"},
        {"timestamp": stamps[1], "action": "cancel", "tag": "b"},
        {"timestamp": stamps[1], "action": "cancel", "tag": "nope"},
        {"timestamp": stamps[1], "action": "set_auto_add_margin", "account": 2, "contract": "ETHUSDT",
         "enabled": True, "leg": "long"},
        {"timestamp": stamps[2], "action": "add_margin", "account": 2, "contract": "ETHUSDT", "amount": 20.0,
         "leg": "long"},
        {"timestamp": stamps[2], "action": "set_tp_sl", "account": 2, "contract": "ETHUSDT", "leg": "long",
         "take_profit": 140.0, "stop_loss": 70.0},
        {"timestamp": stamps[3], "action": "set_leverage", "account": 1, "contract": "ETHUSDT", "leverage": 5},
        {"timestamp": stamps[3], "action": "market", "account": 1, "contract": "ETHUSDT", "side": "sell",
         "qty": 4.0},
        {"timestamp": stamps[3], "action": "withdraw", "account": 1, "amount": 1e9},
        {"timestamp": stamps[4], "action": "remove_margin", "account": 2, "contract": "ETHUSDT", "amount": 5.0,
         "leg": "long"},
        {"timestamp": stamps[4], "action": "deposit", "account": 2, "amount": 100.0},
        {"timestamp": stamps[5], "action": "set_margin_mode", "account": 1, "contract": "BTCUSDT",
         "mode": "isolated"},
    ]
    spec = [((0.01, 0.05, 0.02, 0.0), (0.0, 0.01, 0.01, 0.0))] * 6
    funding = build_funding([(2, 0.001), (4, -0.002)])
    for model in ("close", "ohlc", "worst"):
        ref, got = both(book, build_paths(spec), tape, funding, model)
        assert {"order", "cancel", "action", "refused", "funding"} <= set(got.events["kind"])
        assert_same(ref, got)


def test_event_buffer_overflow_raises_or_grows():
    book, paths = crash_book()
    pp = PricePaths.from_frames(paths)
    with pytest.raises(EventBufferOverflow, match="event_capacity="):
        run_numba(book, pp, liquidation_fee_rate=0.01, event_capacity=1, on_overflow="raise")
    grown = run_numba(book, pp, liquidation_fee_rate=0.01, event_capacity=1)
    ref = simulate(book, paths, liquidation_fee_rate=0.01)
    assert len(grown.events) == len(ref.events)


def test_small_buffers_stop_at_bar_ends(monkeypatch):
    """Event buffers far smaller than a run's events: the kernel stops at the end of a bar
    that left a row more than half full, the buffers are emptied, and the run goes on from
    the next bar, with the reference's result (``on_overflow="raise"``: no bar overflowed)."""
    from riskcore.kernels import engine

    calls = []
    real = engine.run_steps_nb

    def spy(*args):
        done = real(*args)
        calls.append((args[-2], int(done)))  # (the bar it was asked to stop before, where it stopped)
        return done

    monkeypatch.setattr(engine, "run_steps_nb", spy)
    book, _ = crash_book()
    calm = ((0.001, 0.002, 0.002, 0.0), (0.0, 0.001, 0.001, 0.0))
    crash = ((-0.02, 0.05, 0.0, -0.30), (0.0, 0.0, 0.0, 0.0))
    paths = build_paths([calm] * 40 + [crash] + [calm] * 10)
    funding = build_funding([(m, 0.0001) for m in range(0, 51, 3)])  # an event per position, every third bar
    ref, got = both(book, paths, funding=funding, event_capacity=16)
    assert_same(ref, got)
    assert len(got.events) > 3 * 16
    assert any(done < end for end, done in calls)  # stopped early, more than once
    assert len(calls) > 51 // engine.CHUNK + 2


def test_the_book_is_not_modified():
    book, paths = crash_book()
    before = book.to_frames()
    run_numba(book, PricePaths.from_frames(paths), liquidation_fee_rate=0.01)
    after = book.to_frames()
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without the JIT")
def test_runs_without_the_jit():
    """The kernels as plain Python (``NUMBA_DISABLE_JIT=1``, used for coverage) agree too."""
    code = ("import sys; sys.path.insert(0, 'tests'); import test_kernel_differential as t;"
            "t.test_crash_reaches_topups_liquidations_bad_debt_and_adl('worst');"
            "t.test_seeded_books_match_the_reference(1); t.test_tape_actions_of_every_kind(); print('ok')")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


# ------------------------------------------------------------------ sleeping accounts
def long_walk(seed: int, n_steps: int):
    """Calm one-minute random walks (0.3% a bar) with a 25% crash and rebound in the middle:
    accounts sleep through long calm stretches and must wake in time for every trigger."""
    rng = np.random.default_rng(seed)
    spec = []
    for t in range(n_steps):
        bar = []
        for c in range(len(CONTRACTS)):
            shock = -0.05 if (n_steps // 2 <= t < n_steps // 2 + 5 and c == seed % 2) else 0.0
            shock = 0.04 if (n_steps // 2 + 20 <= t < n_steps // 2 + 25 and c == seed % 2) else shock
            bar.append((float(rng.normal(shock, 0.003)), float(abs(rng.normal(0, 0.002))),
                        float(abs(rng.normal(0, 0.002))), float(rng.normal(0, 0.0005))))
        spec.append(tuple(bar))
    return build_paths(spec)


@pytest.mark.parametrize("seed", range(6))
def test_long_calm_paths_with_a_crash_match_the_reference(seed):
    """400 bars: funding every 100 bars and tape actions wake everyone; sleeping (the default)
    and looking at every account at every point both agree with the reference exactly."""
    book, _, _ = seeded_book(100 + seed, 30)
    paths = long_walk(seed, 400)
    funding = build_funding([(t, 0.0004 * (-1) ** t) for t in (100, 200, 300)])
    stamps = paths["BTCUSDT"]["timestamp"]
    first = next(iter(book.accounts))
    tape = [{"timestamp": stamps[150], "action": "deposit", "account": first, "amount": 250.0},
            {"timestamp": stamps[250], "action": "market", "account": first, "contract": "ETHUSDT", "side": "buy",
             "qty": 2.0}]
    model = ["close", "ohlc", "worst"][seed % 3]
    ref, got = both(book, paths, tape, funding, model, [0.0, 50.0, 1e6][seed % 3], ["mark", "entry"][seed % 2],
                    block=4)
    assert len(ref.events_of("liquidation")) > 0
    assert_same(ref, got)
    _, awake = both(book, paths, tape, funding, model, [0.0, 50.0, 1e6][seed % 3], ["mark", "entry"][seed % 2],
                    block=4, sleep=False)
    assert_same(ref, awake)


def wake_of(book, rows, intrabar="ohlc"):
    """The wake bar kernel account 0 gets at the close of bar 0 (``sleep_nb.wake_bar_nb``)."""
    from riskcore.kernels.engine import INTRABAR_CODES, _Run
    from riskcore.kernels.sleep_nb import wake_bar_nb
    from riskcore.kernels.state import Params

    stamps = pd.date_range("2025-01-01", periods=len(rows), freq="1min")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"]).assign(timestamp=stamps)
    paths = PricePaths.from_frames({s: frame for s in book.contracts})
    params = Params(INTRABAR_CODES[intrabar], False, 0.0, 0.0, 16)
    run = _Run(book, paths, np.zeros((len(rows), paths.n_contracts)), [], params, intrabar, "mark", 1024, 0.0)
    cur = np.full((paths.n_contracts, 2), float(rows[0][3]))  # the kernels' price grid is float64
    return wake_bar_nb(run.bk, run.ct, run.lv, run.sc.blk_band[0], 0, 0, cur, run.im.env)


def one_tier_book():
    book = Book()
    table = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e12, "mmr": 0.005, "max_leverage": 100}],
                                  symbol="BTCUSDT")
    book.add_contract("BTCUSDT", table, maker_fee=0.0, taker_fee=0.0, mark_price=100.0)
    book.add_account(1, wallet=100.0)
    book.market_order(1, "BTCUSDT", "buy", 10.0, 100.0)
    return book


def test_cross_account_sleeps_until_its_excess_could_be_gone():
    # Cross long 10 @ 100, wallet 100, no fees, mmr 0.5%: at the close of bar 0 (100) the excess is
    # 100 - 10 * 100 * 0.005 = 95; the excess falls by at most 10 * (1 + 0.005) = 10.05 per unit
    # of price, so the account is sure to be quiet while prices stay above 100 - 95 / 10.05 =
    # 90.547.  (It is liquidated at 100 + 10 (p - 100) = 0.05 p: p = 90.452.)
    rows = [(100, 100, 100, 100)] + [(100, 101, 95, 99)] * 100 + [(99, 99, 90.6, 91), (91, 91, 90.5, 91)]
    assert wake_of(one_tier_book(), rows) == 102
    # under the close model only the closes count: a close at 90.5 is the first out of the band
    rows = [(100, 100, 100, 100), (100, 100, 80, 95), (95, 95, 90.55, 90.55), (91, 91, 90.5, 90.5)]
    assert wake_of(one_tier_book(), rows, "close") == 3
    assert wake_of(one_tier_book(), rows, "ohlc") == 1


def test_thresholds_wake_the_account_on_touch():
    # A stop-loss at 97 on the same long wakes it at the first bar reaching 97 (a touch
    # counts: the stop fires at <= 97); a resting sell limit at 104, at the first bar
    # reaching 104.
    book = one_tier_book()
    book.set_tp_sl(1, "BTCUSDT", stop_loss=97.0)
    rows = [(100, 100, 100, 100)] * 5000 + [(100, 100, 97, 99)]
    assert wake_of(book, rows) == 5000
    book = one_tier_book()
    book.limit_order(1, "BTCUSDT", "sell", 1.0, 104.0)
    rows = [(100, 100, 100, 100)] * 70 + [(100, 103.9, 99, 100), (100, 104, 99, 100)]
    assert wake_of(book, rows) == 71
    # nothing can happen to an account without positions or orders: it sleeps to the end
    book.cancel_order(next(iter(book.accounts[1].orders)))
    book.market_order(1, "BTCUSDT", "sell", 10.0, 100.0)
    assert wake_of(book, rows) == len(rows)


def test_cache_stamp_keeps_kernels_of_the_same_sources(tmp_path):
    """The first compile into a new cache folder must survive the next process: the folder is
    stamped with the sources' digest even before it exists; a different digest drops it."""
    from riskcore.kernels.cache import sync_cache

    folder = tmp_path / "fresh" / "__pycache__"
    sync_cache([folder])  # a fresh install: no folder yet
    stamp = folder / "riskcore-kernels.digest"
    assert stamp.exists()
    kernel = folder / "step_nb.run_steps_nb-1.py311.nbi"
    kernel.write_text("compiled")
    sync_cache([folder])  # the next process, same sources: kept
    assert kernel.exists()
    stamp.write_text("sources of another version")
    sync_cache([folder])  # edited sources: dropped, and the folder stamped anew
    assert not kernel.exists() and stamp.read_text() != "sources of another version"


# ----------------------------------------------------- orders of a liquidated scope (issue 10)
def one_tier(symbol: str, mmr: float = 0.01) -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e12, "mmr": mmr, "max_leverage": 50}],
                                 symbol=symbol)


def test_orders_of_a_position_marked_for_liquidation_hold_no_margin_for_a_top_up():
    # Account "a" (no fees, one tier of mmr 1 % on both contracts, marks 100), isolated at 10x:
    #   BTC long 10 @ 100, wallet_iso 100, no auto-add: LP = (10*100 - 100) / (0.99*10) = 90.909
    #   ETH long 8 @ 100, wallet_iso 80, auto-add:     LP = (8*100 - 80) / (0.99*8) = 90.909
    #   a resting sell of 6 BTC @ 120; cross wallet 260 - 100 - 80 = 80.
    # While the BTC long is there the sell only reduces it: it holds no margin.  Without the long
    # it would open 6 short, holding 6 * 120 / 10 = 72.
    # Bar 1 opens at 89 on both (a gap): BTC is marked for liquidation at 89.  Its scope's orders
    # are cancelled first (section 6), so the sell holds no margin when ETH is checked next:
    # free balance 80; top-up min(8*100/10 = 80, 80, 8*89 - 80 = 632) = 80 -> ETH wallet_iso 160,
    # LP = (800 - 160) / 7.92 = 80.81 < 89: ETH survives.  (Counting the 72 gave a top-up of 8,
    # LP (800 - 88) / 7.92 = 89.9 >= 89, and ETH was liquidated too.)
    # BTC closes at 89: realized 10 * (89 - 100) = -110, equity 100 - 110 = -10: bad debt 10, the
    # fund is empty and nobody is short: socialised 10.
    book = Book()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        book.add_contract(symbol, one_tier(symbol), maker_fee=0.0, taker_fee=0.0, mark_price=100.0)
    book.add_account("a", wallet=260.0)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        book.set_margin_mode("a", symbol, "isolated")
        book.set_leverage("a", symbol, 10)
    book.set_auto_add_margin("a", "ETHUSDT", True)
    book.market_order("a", "BTCUSDT", "buy", 10.0, 100.0)
    book.market_order("a", "ETHUSDT", "buy", 8.0, 100.0)
    book.limit_order("a", "BTCUSDT", "sell", 6.0, 120.0)
    stamps = pd.date_range("2025-01-01", periods=2, freq="1min")
    frame = pd.DataFrame({"timestamp": stamps, "open": [100.0, 89.0], "high": [100.0, 89.0], "low": [100.0, 89.0],
                          "close": [100.0, 89.0]})
    paths = {"BTCUSDT": frame, "ETHUSDT": frame.copy()}
    ref, got = both(book, paths, fee=0.0, slip=0.0)
    for result in (ref, got):
        ev = result.events
        assert ev["kind"].tolist() == ["topup", "cancel", "liquidation", "bad_debt"]
        assert ev["amount"].iloc[0] == pytest.approx(80.0)
        assert ev["amount"].iloc[3] == pytest.approx(10.0)
        eth = result.book.accounts["a"].positions[("ETHUSDT", 0)]
        assert eth.wallet_iso == pytest.approx(160.0)
        assert result.book.accounts["a"].wallet == pytest.approx(0.0)
        assert result.ledger["socialised_loss"] == pytest.approx(10.0)
    assert_same(ref, got)
