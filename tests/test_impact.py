"""Market impact of liquidations and the endogenous mark (riskcore.impact, docs/cascades.md).

Hand-worked fills and cascade rounds; both engines against each other on random books with
impact on (hypothesis, bounded), sleeping accounts exact under a moved mark, impact off
giving today's results exactly, checkpoints, and the errors a user gets."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from strategies import book_specs, build_book, build_funding, build_paths, funding_specs, path_specs
from test_kernel_differential import SETTINGS, assert_same, seeded_book

from riskcore import Book, Brackets, simulate
from riskcore.impact import MAX_IMPACT, Impact, fraction
from riskcore.inputs import InputError, PricePaths, funding_by_step
from riskcore.kernels import run_numba

ENGINES = ["reference", "numba"]


def three_longs() -> Book:
    """Isolated longs of 1 BTC from 20,000 at mmr 0.5%: ``a`` and ``b`` with 2,000 of margin
    (LP = (2,000 - 20,000) / (0.005 - 1) = 18,090.45), ``c`` with W = 20,000 - 0.995 * 16,998
    (LP = 16,998 exactly, by the same formula)."""
    tier = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", tier, maker_fee=0.0, taker_fee=0.0)
    for name, wallet in (("a", 2_000.0), ("b", 2_000.0), ("c", 20_000.0 - 0.995 * 16_998.0)):
        book.add_account(name, wallet=30_000.0)
        book.set_margin_mode(name, "BTCUSDT", "isolated")
        book.set_leverage(name, "BTCUSDT", 10)
        book.market_order(name, "BTCUSDT", "buy", 1, price=20_000)
        pos = book.position(name, "BTCUSDT")
        book.accounts[name].wallet += pos.wallet_iso - wallet
        pos.wallet_iso = wallet
    return book


def gap_path():
    """Bar 0 flat at 20,000; bar 1 opens at 17,000 and stays there."""
    rows = [(20_000.0,) * 4, (17_000.0,) * 4]
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "timestamp", pd.date_range("2024-01-01", periods=2, freq="1min"))
    return {"BTCUSDT": frame}


# sigma * k = 0.02 and V = 3.4e8: two liquidations of 17,000 (Q = 34,000) take
# 0.02 * sqrt(34,000 / 3.4e8) = 0.02 * 0.01 = 0.0002 of impact
IMPACT = dict(sigma=0.02, daily_volume=3.4e8, k=1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_fills_take_the_impact_of_the_points_flow(engine):
    book = three_longs()
    r = simulate(book, gap_path(), liquidation_fee_rate=0.0, engine=engine, impact=dict(IMPACT, feedback=False))
    liq = r.events[r.events["kind"] == "liquidation"]
    # a and b gap through their LPs: they fill at the open, 17,000, less 0.02%: 16,996.6.
    # c's LP (16,998) is below the open: not liquidated, and without feedback the mark stays.
    assert liq["account"].tolist() == ["a", "b"]
    assert liq["price"].tolist() == pytest.approx([16_996.6, 16_996.6], rel=1e-12)
    assert liq["round"].tolist() == [0, 0]
    assert r.book.contracts["BTCUSDT"].mark_price == 17_000.0


@pytest.mark.parametrize("engine", ENGINES)
def test_feedback_moves_the_mark_and_liquidates_more_in_a_second_round(engine):
    book = three_longs()
    r = simulate(book, gap_path(), liquidation_fee_rate=0.0, engine=engine,
                 impact=dict(IMPACT, feedback=True, permanent=1.0))
    liq = r.events[r.events["kind"] == "liquidation"]
    # round 0: a and b sell 34,000: the mark moves down by 0.0002 to 16,996.6, through c's LP
    # round 1: c liquidates at its LP, 16,998, flow 16,998: impact 0.02 * sqrt(16,998 / 3.4e8)
    second = 0.02 * math.sqrt(16_998 / 3.4e8)
    assert liq["account"].tolist() == ["a", "b", "c"]
    assert liq["round"].tolist() == [0, 0, 1]
    assert liq["price"].tolist() == pytest.approx([16_996.6, 16_996.6, 16_998 * (1 - second)], rel=1e-12)
    # permanent: the mark ends at 17,000 * (1 - 0.0002 - second); round 2 liquidates nobody
    assert r.book.contracts["BTCUSDT"].mark_price == pytest.approx(17_000 * (1 - 0.0002 - second), rel=1e-12)
    assert r.steps["liquidations"].tolist() == [0, 3]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_transient_part_decays_by_half_per_half_life(engine):
    book = three_longs()
    frame = gap_path()["BTCUSDT"]
    frame = pd.concat([frame, frame.iloc[[1, 1]]], ignore_index=True)
    frame["timestamp"] = pd.date_range("2024-01-01", periods=4, freq="1min")
    r = simulate(book, {"BTCUSDT": frame}, liquidation_fee_rate=0.0, engine=engine,
                 impact=dict(IMPACT, feedback=True, permanent=0.0, half_life=1.0))
    # round 0 moves the mark by -0.0002, all of it transient; c's LP (16,998) is crossed
    # (17,000 * 0.9998 = 16,996.6), c goes in round 1 with impact x, and the mark's shift is
    # T = -(0.0002 + x); two bars later half and a quarter of it are left
    x = 0.02 * math.sqrt(16_998 / 3.4e8)
    t = -(0.0002 + x)
    assert r.book.contracts["BTCUSDT"].mark_price == pytest.approx(17_000 * (1 + t / 4), rel=1e-12)


def test_the_bound_on_rounds_leaves_the_moved_mark_to_the_next_point():
    book = three_longs()
    kw = dict(liquidation_fee_rate=0.0, impact=dict(IMPACT, permanent=1.0), cascade_rounds=1)
    ref, got = (simulate(book, gap_path(), engine=e, **kw) for e in ENGINES)
    for r in (ref, got):
        liq = r.events[r.events["kind"] == "liquidation"]
        # one round at bar 1's open; c goes at the next point (ohlc: the flat bar's low)
        assert liq["account"].tolist() == ["a", "b", "c"]
        assert liq["round"].tolist() == [0, 0, 0]
        assert liq["point"].tolist() == [0, 0, 1]
    assert_same(ref, got)


def test_the_square_root_law_is_capped():
    assert fraction(0.0, 1.0, 1.0) == 0.0
    assert fraction(4.0, 0.1, 100.0) == pytest.approx(0.02)
    assert fraction(1e30, 1.0, 1.0) == MAX_IMPACT


# ------------------------------------------------------- the engines agree with impact on
impacts = st.builds(lambda sigma, volume, k, feedback, permanent, half_life: dict(
    sigma=sigma, daily_volume=volume, k=k, feedback=feedback, permanent=permanent, half_life=half_life),
    st.sampled_from([0.01, 0.05, 0.2]), st.sampled_from([1e3, 1e5, 1e7]), st.sampled_from([0.5, 1.0, 2.0]),
    st.booleans(), st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 1.0, 5.0]))


@settings(SETTINGS, max_examples=150)
@given(book_specs, path_specs, funding_specs, st.sampled_from(["close", "ohlc", "worst"]),
       st.sampled_from([0.0, 5.0, 1e6]), impacts, st.integers(1, 4))
def test_random_books_with_impact_match_the_reference(specs, path_spec, funding_spec, model, fund, impact, rounds):
    book = build_book(specs)
    ref, got = _ref_and_numba(book, build_paths(path_spec), build_funding(funding_spec), model, fund, impact,
                              rounds)
    assert_same(ref, got)


def test_open_interest_after_adl_in_a_cascade_round_at_the_bars_last_point():
    """Found by hypothesis: an isolated short liquidated with a deficit at the only point of
    a bar, ADL closes the cross long, the mark moves; the bar's open interest is 0."""
    specs = [("one-way", "cross", "cross", 2, False, 50.0, [("BTCUSDT", "buy", 1.0, 85.0)], []),
             ("one-way", "isolated", "cross", 10, False, 50.0, [("BTCUSDT", "sell", 1.0, 85.0)], [])]
    ref, got = _ref_and_numba(build_book(specs), build_paths([((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))]), None,
                              "close", 0.0, dict(sigma=0.01, daily_volume=1000.0, k=0.5, permanent=0.0,
                                                 half_life=0.0), 1)
    assert set(got.events["kind"]) >= {"liquidation", "bad_debt", "adl"}
    assert got.steps["open_interest"].tolist() == [0.0]
    assert_same(ref, got)


def _ref_and_numba(book, paths, funding, model, fund, impact, rounds=20, **kw):
    ref = simulate(book, paths, liquidation_fee_rate=0.01, insurance_fund=fund, liquidation_slippage=0.002,
                   funding=funding, intrabar=model, engine="reference", impact=impact, cascade_rounds=rounds)
    pp = PricePaths.from_frames(paths)
    got = run_numba(book, pp, funding_by_step(funding, pp), None, liquidation_fee_rate=0.01, insurance_fund=fund,
                    liquidation_slippage=0.002, intrabar=model, impact={s: Impact(**impact) for s in pp.contracts},
                    cascade_rounds=rounds, event_capacity=200_000, on_overflow="raise", **kw)
    return ref, got


@pytest.mark.parametrize("volume", [2e4, 2e6])
@pytest.mark.parametrize("seed", range(8))
def test_seeded_books_with_cascades_match_and_sleep_exactly(seed, volume):
    """40 accounts, every mode mixed: the reference, the kernels with sleeping accounts and
    the kernels looking at every account at every point all agree, with cascades.  With
    the larger volume the mark moves by less than the slack of the sleeping accounts'
    bands (kernels/step_nb.py, ENVELOPE), so most moves wake nobody."""
    book, paths, funding = seeded_book(seed, 40)
    model = ["close", "ohlc", "worst"][seed % 3]
    impact = dict(sigma=0.1, daily_volume=volume, k=1.0, permanent=0.5, half_life=3.0)
    ref, got = _ref_and_numba(book, paths, funding, model, [0.0, 50.0][seed % 2], impact, block=7)
    assert_same(ref, got)
    awake = run_numba(book, PricePaths.from_frames(paths), funding_by_step(funding, PricePaths.from_frames(paths)),
                      None, liquidation_fee_rate=0.01, insurance_fund=[0.0, 50.0][seed % 2],
                      liquidation_slippage=0.002, intrabar=model, block=7, sleep=False,
                      impact={s: Impact(**impact) for s in PricePaths.from_frames(paths).contracts})
    pd.testing.assert_frame_equal(got.events, awake.events, check_exact=True)
    pd.testing.assert_frame_equal(got.steps, awake.steps, check_exact=True)


def test_seeded_books_reach_cascade_rounds():
    """The seeded books above do cascade (else the test above would prove little)."""
    rounds = 0
    for seed in range(8):
        book, paths, funding = seeded_book(seed, 40)
        r = simulate(book, paths, liquidation_fee_rate=0.01, liquidation_slippage=0.002, funding=funding,
                     impact=dict(sigma=0.1, daily_volume=2e4, k=1.0, permanent=0.5, half_life=3.0))
        rounds += int((r.events["round"] > 0).sum())
    assert rounds > 10


# ------------------------------------------------------------- impact off: today exactly
def test_zero_impact_is_exactly_no_impact():
    book, paths, funding = seeded_book(3, 40)
    kw = dict(liquidation_fee_rate=0.01, liquidation_slippage=0.002, funding=funding, insurance_fund=20.0)
    plain = simulate(book, paths, **kw)
    zero = simulate(book, paths, impact=dict(sigma=0.0, daily_volume=1e6), **kw)
    assert (plain.events["kind"] == "liquidation").sum() > 0
    assert zero.params["market_impact"] and not plain.params["market_impact"]
    pd.testing.assert_frame_equal(plain.events, zero.events, check_exact=True)
    pd.testing.assert_frame_equal(plain.steps, zero.steps, check_exact=True)
    assert plain.ledger == zero.ledger
    assert (plain.events["round"] == 0).all()


def test_impact_on_some_contracts_only():
    book, paths, funding = seeded_book(5, 40)
    symbol = sorted(paths)[0]
    impact = {symbol: dict(sigma=0.1, daily_volume=2e4)}
    ref = simulate(book, paths, liquidation_fee_rate=0.01, funding=funding, engine="reference", impact=impact)
    got = simulate(book, paths, liquidation_fee_rate=0.01, funding=funding, impact=impact)
    assert_same(ref, got)
    for other in sorted(paths)[1:]:  # the others' marks end at their path's close
        assert got.book.contracts[other].mark_price == float(paths[other]["close"].iloc[-1])


# ------------------------------------------------------------------------ checkpoints
class Killed(Exception):
    pass


def test_a_killed_run_with_cascades_resumes_with_the_same_result(tmp_path):
    book, paths, funding = seeded_book(4, 60)
    kw = dict(liquidation_fee_rate=0.01, funding=funding, impact=dict(sigma=0.1, daily_volume=2e4, half_life=4.0))
    whole = simulate(book, paths, **kw)
    assert (whole.events["round"] > 0).any()
    stop = int(whole.events.loc[whole.events["round"] > 0, "step"].iloc[0]) + 1

    def kill(done):
        if done >= stop:
            raise Killed

    file = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        simulate(book, paths, checkpoint=file, checkpoint_every=0, progress=kill, **kw)
    assert file.exists()
    resumed = simulate(book, paths, checkpoint=file, **kw)
    assert resumed.timings["resumed_from_bar"] > 0
    pd.testing.assert_frame_equal(whole.events, resumed.events, check_exact=True)
    pd.testing.assert_frame_equal(whole.steps, resumed.steps, check_exact=True)
    assert whole.ledger == resumed.ledger


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("impact, message", [
    (dict(sigma=0.02), r"missing \['daily_volume'\]"),
    (dict(sigma=0.02, daily_volume=1e9, depth_table=3), r"unknown field\(s\) \['depth_table'\]"),
    (dict(sigma=0.02, daily_volume=1e9, depth=3), r"either a depth table or sigma and daily_volume"),
    (dict(sigma=-1, daily_volume=1e9), r"impact\.sigma must be"),
    ({"BTCUSDT": dict(sigma=0.02, daily_volume=0)}, r"impact\.BTCUSDT\.daily_volume must be a positive"),
    ({"ETHUSDT": dict(sigma=0.02, daily_volume=1e9)}, r"contract 'ETHUSDT', which has no price path"),
    ({"BTCUSDT": dict(sigma=0.02, daily_volume=1e9, permanent=2)}, r"impact\.BTCUSDT\.permanent must be a share"),
    ({"BTCUSDT": dict(sigma=0.02, daily_volume=1e9, feedback="yes")}, r"feedback must be true or false"),
    ([1, 2], r"impact must be an Impact"),
])
def test_bad_impact_is_refused_naming_the_field(impact, message):
    with pytest.raises(InputError, match=message):
        simulate(three_longs(), gap_path(), liquidation_fee_rate=0.0, impact=impact)


@pytest.mark.parametrize("rounds", [0, -1, 1.5, True, 10_000])
def test_bad_cascade_rounds(rounds):
    with pytest.raises(InputError, match="cascade_rounds must be a whole number"):
        simulate(three_longs(), gap_path(), liquidation_fee_rate=0.0, cascade_rounds=rounds)


def test_impact_dataclass_checks_itself():
    with pytest.raises(ValueError, match="half_life"):
        Impact(sigma=0.02, daily_volume=1e9, half_life=-1)
    assert dataclasses.replace(Impact(sigma=0.02, daily_volume=1e9), half_life=0).decay == 0.0
    assert Impact(sigma=0.02, daily_volume=1e9, half_life=2).decay == pytest.approx(2 ** -0.5)
