"""ADL policies (riskcore.adl, docs/simulation.md "ADL policies") and riskcore.studies.adl_outcomes.

A hand-worked book per policy (expected counterparties, quantities and money derived in the
comments); both engines against each other for every policy on random books with an empty
fund (hypothesis, bounded) and on seeded books with market impact; the section 6 bounds as
properties; ``"binance"`` giving the default run exactly; the random policy's hash against
a published splitmix64 value and its kernel twin; scenario keys; bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from strategies import book_specs, build_book, build_funding, build_paths
from test_guarantees import check_guarantees, isolated_flows_are_bounded, paths_with_crashes
from test_kernel_differential import SETTINGS, assert_same, seeded_book

from riskcore import Book, Brackets, simulate
from riskcore.adl import POLICIES, adl_hash, random_key, splitmix64
from riskcore.inputs import InputError, PricePaths, funding_by_step
from riskcore.kernels import run_numba
from riskcore.kernels.enums import AdlPolicy
from riskcore.studies import ADL_OUTCOME_COLUMNS, adl_outcomes

ENGINES = ["reference", "numba"]


# ------------------------------------------------------------------ a hand-worked book
def four_shorts(c_long: float = 0.0) -> Book:
    """One contract at a 0.5% maintenance rate, no fees, mark 100.  Four cross shorts
    (wallet set after the order) and ``z``, an isolated 10x long of 10 @ 100 with 100 of
    margin.  Bar 1 gaps to 80 (flat): ``z`` is liquidated at 80, realising -200: a deficit
    of 100 and, with an empty fund, a shortfall of 100.  Its bankruptcy price is
    80 + 100 / 10 = 90: each unit closed there recovers 10.

    At 80 (uPnL = qty * (entry - 80), notional = 80 qty, equity = wallet + uPnL, margin =
    notional / leverage), with Binance's score ``uPnL * leverage / equity`` in profit:

    ======= ===== ===== === ====== ==== ====== ======= ============ ======== ===============
    account qty   entry lev wallet uPnL equity score   eff. lev.    ADL at   per unit
    ======= ===== ===== === ====== ==== ====== ======= ============ ======== ===============
    a       2     100   10  60     40   100    4       160/100=1.6  90       10
    b       5     95    10  925    75   1000   0.75    400/1000=0.4 90       10
    c       1     120   20  0      40   40     20      80/40=2      90       10
    d       4     85    10  100    20   120    1.667   320/120=2.67 85 (its  5
                                                                    entry)
    ======= ===== ===== === ====== ==== ====== ======= ============ ======== ===============

    ``d``'s entry (85) is better for it than 90: it closes at its entry, realising 0 (it
    never realises a loss), and each of its units recovers only 85 - 80 = 5.  Every cross excess
    is far above what the closes cost (``c``: 40 - 0.4 = 39.6 >= 1 * 10).

    ``c_long``: ``c`` trades in hedge mode and also holds a cross long of this size @ 100."""
    tier = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", tier, maker_fee=0.0, taker_fee=0.0, mark_price=100.0)
    for name, qty, entry, lev, wallet in (("a", 2, 100, 10, 60.0), ("b", 5, 95, 10, 925.0), ("c", 1, 120, 20, 0.0),
                                          ("d", 4, 85, 10, 100.0)):
        hedge = name == "c" and c_long > 0
        book.add_account(name, wallet=10_000.0, position_mode="hedge" if hedge else "one-way")
        book.set_leverage(name, "BTCUSDT", lev)
        book.market_order(name, "BTCUSDT", "sell", qty, price=entry, leg="short" if hedge else None)
        if hedge:
            book.market_order(name, "BTCUSDT", "buy", c_long, price=100, leg="long")
        book.accounts[name].wallet = wallet
    book.add_account("z", wallet=1_000.0)
    book.set_margin_mode("z", "BTCUSDT", "isolated")
    book.set_leverage("z", "BTCUSDT", 10)
    book.market_order("z", "BTCUSDT", "buy", 10, price=100)
    return book


def gap_to_80():
    bars = pd.DataFrame([(100.0,) * 4, (80.0,) * 4], columns=["open", "high", "low", "close"])
    bars.insert(0, "timestamp", pd.date_range("2024-01-01", periods=2, freq="1min"))
    return {"BTCUSDT": bars}


def run_hand(policy, engine, **kw):
    return simulate(four_shorts(), gap_to_80(), liquidation_fee_rate=0.0, adl_policy=policy, engine=engine, **kw)


def flat(rows) -> list[float]:
    return [float(v) for row in rows for v in row]


def same_closes(got, want) -> None:
    """(account, qty, ...) rows: the same accounts in the same order, numbers within 1e-12."""
    assert [row[0] for row in got] == [row[0] for row in want]
    n = len(want[0]) if want else 0
    assert flat([row[1:n] for row in got]) == pytest.approx(flat([row[1:] for row in want]), rel=1e-12, abs=1e-12)


def closes(result):
    """(account, qty, price, realized) of the counterparty closes, and the bankrupt side's
    (qty, price, recovered)."""
    adl = result.events_of("adl")
    cp = adl[adl["reason_code"] == "adl_counterparty"]
    bk = adl[adl["reason_code"] == "adl_bankrupt"]
    assert len(bk) == 1 and bk["account"].iloc[0] == "z"
    return (list(zip(cp["account"], cp["qty"], cp["price"], cp["amount"])),
            (bk["qty"].iloc[0], bk["price"].iloc[0], bk["amount"].iloc[0]))


# Expected closes, by hand, walking the order and closing each counterparty up to what is
# left to recover (at 10 or 5 per unit) and to the 10 units z held:
HAND = {
    # Binance: c (20) > a (4) > d (1.67) > b (0.75).  c 1 -> 10, a 2 -> 20, d 4 @ 85 -> 20,
    # b only 10 - 7 = 3 units -> 30: recovered 80, socialised 20.
    "binance": ([("c", 1, 90, 30), ("a", 2, 90, 20), ("d", 4, 85, 0), ("b", 3, 90, 15)], 80.0),
    # effective leverage: d (2.67) > c (2) > a (1.6) > b (0.4): the same closes, another order.
    "leverage": ([("d", 4, 85, 0), ("c", 1, 90, 30), ("a", 2, 90, 20), ("b", 3, 90, 15)], 80.0),
    # uPnL: b (75) > a (40) = c (40, after a: ties keep the order of ids) > d (20).
    # b 5 -> 50, a 2 -> 20, c 1 -> 10, d the last 2 units @ 85 -> 10: recovered 90.
    "pnl": ([("b", 5, 90, 25), ("a", 2, 90, 20), ("c", 1, 90, 30), ("d", 2, 85, 0)], 90.0),
    # pro rata: all four are eligible (each recovers something); U = 12 units would recover
    # M = 10 * 8 + 5 * 4 = 100; f = min(1, 10 / 12, 100 / 100) = 5/6 of every position:
    # a 5/3, b 25/6, c 5/6, d 10/3 (10 units in all), recovering 10 * 20/3 + 5 * 10/3 = 250/3.
    "pro-rata": ([("a", 5 / 3, 90, 50 / 3), ("b", 25 / 6, 90, 125 / 6), ("c", 5 / 6, 90, 25), ("d", 10 / 3, 85, 0)],
                 250 / 3),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", sorted(HAND))
def test_hand_worked_order_and_quantities(policy, engine):
    result = run_hand(policy, engine)
    got, (matched, price, recovered) = closes(result)
    want, want_recovered = HAND[policy]
    assert [a for a, *_ in got] == [a for a, *_ in want]
    assert flat([x[1:] for x in got]) == pytest.approx(flat([x[1:] for x in want]), rel=1e-12, abs=1e-12)
    assert matched == pytest.approx(10.0, rel=1e-12)
    assert recovered == pytest.approx(want_recovered, rel=1e-12)
    assert price == pytest.approx(80 + want_recovered / 10, rel=1e-12)  # the fill plus what each unit recovered
    assert result.ledger["socialised_loss"] == pytest.approx(100 - want_recovered, rel=1e-12)
    assert abs(result.money_check()) < 1e-9


@pytest.mark.parametrize("engine", ENGINES)
def test_pro_rata_when_the_money_binds(engine):
    # With a fund of 50 the shortfall is 50: f = min(1, 10/12, 50/100) = 1/2 of every
    # position: a 1, b 2.5, c 0.5, d 2, recovering 10 * 4 + 5 * 2 = 50: nothing socialised.
    result = run_hand("pro-rata", engine, insurance_fund=50.0)
    got, (matched, _, recovered) = closes(result)
    same_closes(got, [("a", 1.0), ("b", 2.5), ("c", 0.5), ("d", 2.0)])
    assert (matched, recovered) == pytest.approx((6.0, 50.0), rel=1e-12)
    assert result.ledger["socialised_loss"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_pro_rata_socialises_what_the_cross_bound_keeps(engine):
    # c in hedge mode also holds a cross long of 2 @ 100, and its wallet is 2.8.  At 100 its
    # excess is 2.8 + 20 - 1.5 = 21.3; at 80 it is 2.8 + (40 - 40) - (0.4 + 0.8) = 1.6, and each
    # unit of its short closed at 90 costs it 10 against the mark: it may close at most 0.16
    # units instead of its share 5/6.  The others close their shares as before (the fraction
    # is not raised for them): recovered 250/3 - 10 * (5/6 - 0.16), the rest socialised.
    book = four_shorts(c_long=2.0)
    book.accounts["c"].wallet = 2.8
    result = simulate(book, gap_to_80(), liquidation_fee_rate=0.0, adl_policy="pro-rata", engine=engine)
    got, (matched, _, recovered) = closes(result)
    same_closes(got, [("a", 5 / 3), ("b", 25 / 6), ("c", 0.16), ("d", 10 / 3)])
    assert recovered == pytest.approx(250 / 3 - 10 * (5 / 6 - 0.16), rel=1e-12)
    assert result.ledger["socialised_loss"] == pytest.approx(100 - recovered, rel=1e-12)
    assert matched < 10.0


@pytest.mark.parametrize("engine", ENGINES)
def test_random_order_is_the_hash_order(engine):
    # The key of each short is random_key(seed, step 1, point 0, account index, contract 0,
    # leg 0); the closes follow the keys, smallest first, as far as the 10 units go.
    for seed in (0, 1, 12345):
        keys = {name: random_key(seed, 1, 0, i, 0, 0) for i, name in enumerate("abcd")}
        order = sorted(keys, key=keys.get)
        qty = {"a": 2, "b": 5, "c": 1, "d": 4}
        want, left = [], 10.0
        for name in order:
            if left <= 0:
                break
            want.append((name, min(qty[name], left)))
            left -= want[-1][1]
        result = run_hand("random", engine, adl_seed=seed)
        got, _ = closes(result)
        same_closes(got, want)
        again, _ = closes(run_hand("random", engine, adl_seed=seed))
        assert again == got  # a seed repeats


def test_random_seeds_give_different_orders():
    orders = {tuple(a for a, *_ in closes(run_hand("random", "reference", adl_seed=seed))[0]) for seed in range(8)}
    assert len(orders) > 1


def test_the_hash_is_splitmix64_and_the_kernels_twin_is_bit_identical():
    # splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF (Vigna's reference code)
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    from riskcore.kernels.adl_nb import adl_hash_nb

    rng = np.random.default_rng(0)
    cases = [(0, 0, 0, 0, 0, 0), (2 ** 63 - 1, 2 ** 40, 3, 10 ** 7, 5, 2)]
    cases += [(int(rng.integers(0, 2 ** 63 - 1)), int(rng.integers(0, 10 ** 6)), int(rng.integers(0, 4)),
               int(rng.integers(0, 10 ** 6)), int(rng.integers(0, 8)), int(rng.integers(0, 3))) for _ in range(200)]
    for case in cases:
        assert int(adl_hash_nb(*case)) == adl_hash(*case), case
        assert 0 <= random_key(*case) < 2.0 ** 53


def test_policy_codes_are_the_names_order():
    assert list(AdlPolicy._fields) == [p.upper().replace("-", "_") for p in POLICIES]
    assert list(AdlPolicy) == list(range(len(POLICIES)))


# -------------------------------------------------------- binance is today's ranking
@pytest.mark.parametrize("seed", range(3))
def test_binance_is_the_default_exactly(seed):
    book, paths, funding = seeded_book(seed, 40)
    kw = dict(liquidation_fee_rate=0.01, liquidation_slippage=0.002, funding=funding,
              impact=dict(sigma=0.1, daily_volume=2e4))
    for engine in ENGINES:
        default = simulate(book, paths, engine=engine, **kw)
        binance = simulate(book, paths, engine=engine, adl_policy="binance", **kw)
        assert (default.events["kind"] == "adl").any()
        pd.testing.assert_frame_equal(default.events, binance.events, check_exact=True)
        pd.testing.assert_frame_equal(default.steps, binance.steps, check_exact=True)
        assert default.ledger == binance.ledger
        assert binance.params["adl_policy"] == "binance" and binance.params["adl_seed"] == 0


# ------------------------------------------------------ both engines, every policy
def check_matches(result) -> None:
    """Every match closes at most the bankrupt position's quantity: its counterparties'
    closes (the ``adl_counterparty`` events just before its ``adl_bankrupt`` event) add up
    to the matched quantity, which is at most what was liquidated."""
    ev = result.events
    adl = ev[ev["kind"] == "adl"]
    bankrupt = (adl["reason_code"] == "adl_bankrupt").to_numpy()
    group = np.cumsum(bankrupt) - bankrupt
    cp_qty = pd.Series(adl["qty"].to_numpy()[~bankrupt]).groupby(group[~bankrupt]).sum()
    liq = ev[ev["kind"] == "liquidation"]
    for j, row in enumerate(adl[bankrupt].itertuples()):
        assert cp_qty[j] == pytest.approx(row.qty, rel=1e-9)
        mine = liq[(liq["step"] == row.step) & (liq["point"] == row.point) & (liq["round"] == row.round)
                   & (liq["account"] == row.account) & (liq["contract"] == row.contract) & (liq["leg"] == row.leg)]
        assert len(mine) == 1 and row.qty <= mine["qty"].iloc[0] * (1 + 1e-12), (row, mine)


def both(book, paths, funding, model, policy, seed, fund=0.0, impact=None, **kw):
    ref = simulate(book, paths, liquidation_fee_rate=0.01, insurance_fund=fund, liquidation_slippage=0.002,
                   funding=funding, intrabar=model, engine="reference", impact=impact, adl_policy=policy,
                   adl_seed=seed)
    pp = PricePaths.from_frames(paths)
    from riskcore.simulate import impact_specs

    got = run_numba(book, pp, funding_by_step(funding, pp), None, liquidation_fee_rate=0.01, insurance_fund=fund,
                    liquidation_slippage=0.002, intrabar=model, impact=impact_specs(impact, pp.contracts),
                    adl_policy=policy, adl_seed=seed, event_capacity=200_000, on_overflow="raise", **kw)
    return ref, got


@pytest.mark.parametrize("policy", POLICIES)
@settings(SETTINGS, max_examples=60)
@given(specs=book_specs, path_spec=paths_with_crashes, model=st.sampled_from(["close", "ohlc", "worst"]),
       seed=st.integers(0, 2 ** 63 - 1), block=st.integers(1, 3))
def test_random_books_match_and_keep_the_bounds(policy, specs, path_spec, model, seed, block):
    """An empty fund, so that every deficit goes to ADL: the engines agree, money is
    conserved, no counterparty realises a loss, no match closes more than the bankrupt
    quantity (and every guarantee of docs/simulation.md holds)."""
    book = build_book(specs)
    ref, got = both(book, build_paths(path_spec), None, model, policy, seed, block=block)
    assert_same(ref, got)
    check_guarantees(ref, "mark")
    isolated_flows_are_bounded(ref, book)
    check_matches(ref)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("seed", range(4))
def test_seeded_books_with_impact_match(policy, seed):
    """40 accounts, every mode, market impact (bad debt and ADL in every seed): both engines
    agree under every policy, and the bounds hold."""
    book, paths, funding = seeded_book(seed, 40)
    model = ["close", "ohlc", "worst"][seed % 3]
    ref, got = both(book, paths, funding, model, policy, seed, fund=[0.0, 50.0][seed % 2],
                    impact=dict(sigma=0.1, daily_volume=2e4), block=7)
    assert (ref.events["kind"] == "adl").any()
    assert_same(ref, got)
    check_guarantees(ref, "mark")
    isolated_flows_are_bounded(ref, book)
    check_matches(ref)


def test_policies_differ_on_the_seeded_books():
    """Not a vacuous parameter: the policies pick different counterparties."""
    book, paths, funding = seeded_book(1, 40)
    hit = {}
    for policy in POLICIES:
        r = simulate(book, paths, liquidation_fee_rate=0.01, funding=funding, adl_policy=policy,
                     impact=dict(sigma=0.1, daily_volume=2e4))
        cp = r.events[(r.events["kind"] == "adl") & (r.events["reason_code"] == "adl_counterparty")]
        hit[policy] = tuple(zip(cp["account"], cp["qty"].round(9)))
    assert len(set(hit.values())) == len(POLICIES)


# ------------------------------------------------------------------- adl_outcomes
def test_adl_outcomes_by_hand():
    # Binance on the hand-worked book: closes c 1 @ 90, a 2 @ 90, d 4 @ 85, b 3 @ 90.
    # notional: c 90, a 180, d 340, b 270 (880); recovered 80 of a shortfall of 100;
    # counterparties realised 30 + 20 + 0 + 15 = 65.  Overshoot: the fill is 80 (the
    # bankrupt event: 10 @ 88 recovering 80, 88 - 80 / 10); the best close recovers 10 a
    # unit, so 8 units were needed and 2 more were closed (d's four at 5 a unit): 2 units,
    # 176 at the match's average price 88.  Concentration over 4 accounts: the top 1% and
    # 10% are both the top account, d: 340 / 880; Herfindahl (90² + 180² + 340² + 270²) /
    # 880² = 229,000 / 774,400.
    out = adl_outcomes(run_hand("binance", "numba"))
    assert list(out.columns) == ADL_OUTCOME_COLUMNS and out.index.tolist() == [0]
    row = out.iloc[0]
    assert row["positions_hit"] == 4 and row["accounts_hit"] == 4
    want = {"adl_qty": 10, "adl_notional": 880, "deficits": 100, "insurance_paid": 0, "shortfall": 100,
            "recovered": 80, "socialised": 20, "haircut_share": 0.8, "counterparty_pnl": 65, "overshoot_qty": 2,
            "overshoot_notional": 176, "top1_share": 340 / 880, "top10_share": 340 / 880,
            "herfindahl": 229_000 / 774_400}
    for key, value in want.items():
        assert row[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_adl_outcomes_of_several_runs_and_of_none():
    # pnl: b 5 @ 90, a 2 @ 90, c 1 @ 90, d 2 @ 85: notional 450 + 180 + 90 + 170 = 890,
    # recovered 90 (9 units needed at 10 a unit, 10 closed: overshoot 1 at 89).
    # pro rata with a fund of 50: paid 50, shortfall 50, all of it recovered by a 1, b 2.5,
    # c 0.5 at 90 (40) and d 2 at 85 (10): 6 units, where 50 / 10 = 5 at the best price
    # would have done: overshoot 1 unit at the average price 80 + 50 / 6.
    runs = {"pnl": run_hand("pnl", "reference"), "pro-rata": run_hand("pro-rata", "reference", insurance_fund=50.0)}
    out = adl_outcomes(runs)
    assert out.index.tolist() == ["pnl", "pro-rata"]
    assert out.loc["pnl", "adl_notional"] == pytest.approx(890.0)
    assert out.loc["pnl", "recovered"] == pytest.approx(90.0)
    assert out.loc["pnl", "overshoot_qty"] == pytest.approx(1.0)
    assert out.loc["pnl", "overshoot_notional"] == pytest.approx(89.0)
    assert out.loc["pro-rata", "insurance_paid"] == pytest.approx(50.0)
    assert out.loc["pro-rata", "shortfall"] == pytest.approx(50.0)
    assert out.loc["pro-rata", "haircut_share"] == pytest.approx(1.0)
    assert out.loc["pro-rata", "socialised"] == pytest.approx(0.0, abs=1e-9)
    assert out.loc["pro-rata", "overshoot_qty"] == pytest.approx(1.0)
    assert out.loc["pro-rata", "overshoot_notional"] == pytest.approx(80 + 50 / 6)
    # shares of 90, 225, 45, 170 (530): top 225 / 530
    assert out.loc["pro-rata", "top10_share"] == pytest.approx(225 / 530)
    # a run without ADL: zeros and NaN
    calm = simulate(four_shorts(), {"BTCUSDT": gap_to_80()["BTCUSDT"].head(1)}, liquidation_fee_rate=0.0)
    row = adl_outcomes([calm]).iloc[0]
    assert row["positions_hit"] == 0 and row["adl_notional"] == 0 and row["overshoot_qty"] == 0
    assert math.isnan(row["haircut_share"]) and math.isnan(row["herfindahl"])
    with pytest.raises(TypeError, match="riskcore.Result"):
        adl_outcomes({"x": 1})


def test_concentration_with_many_accounts():
    from riskcore.studies import _concentration

    # 200 accounts: one bore 100, 199 bore 1 each (299): the top 1% are 2 accounts
    # (101 / 299), the top 10% 20 accounts (119 / 299)
    out = _concentration(np.array([100.0] + [1.0] * 199))
    assert out["top1_share"] == pytest.approx(101 / 299)
    assert out["top10_share"] == pytest.approx(119 / 299)
    assert out["herfindahl"] == pytest.approx((100 ** 2 + 199) / 299 ** 2)


# ------------------------------------------------------------------- scenarios, inputs
def test_scenario_keys_make_variants_and_reach_simulate(tmp_path, monkeypatch):
    from test_scenarios import SMALL, write

    import sys

    from riskcore.scenarios import _simulate, load_scenario

    text = SMALL.replace("insurance_fund = 1000.0\n", "insurance_fund = 1000.0\nadl_seed = 7\n")
    text += '\n[grid]\n"market.adl_policy" = ["binance", "pro-rata"]\n'
    scenario = load_scenario(write(tmp_path, text))
    names = [n for n, _ in scenario.variants]
    assert names == ["cross [adl_policy=binance]", "cross [adl_policy=pro-rata]", "isolated [adl_policy=binance]",
                     "isolated [adl_policy=pro-rata]"]
    seen = []
    monkeypatch.setattr(sys.modules["riskcore.simulate"], "simulate", lambda *a, **kw: seen.append((kw["adl_policy"], kw["adl_seed"])))
    for _, cfg in scenario.variants:
        _simulate(scenario, cfg, None, {}, None, None)
    assert seen == [("binance", 7), ("pro-rata", 7)] * 2


@pytest.mark.parametrize("line, message", [
    ('adl_policy = "fifo"', "market.adl_policy: must be one of 'binance', 'leverage', 'pnl', 'random', 'pro-rata'"),
    ("adl_seed = -1", "market.adl_seed: must be a whole number from 0 to 2"),
])
def test_bad_scenario_keys(tmp_path, line, message):
    from test_scenarios import SMALL, write

    from riskcore.scenarios import ScenarioError, load_scenario

    text = SMALL.replace("insurance_fund = 1000.0\n", f"insurance_fund = 1000.0\n{line}\n")
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("kw, message", [
    (dict(adl_policy="fifo"), "adl_policy must be one of 'binance', 'leverage', 'pnl', 'random', 'pro-rata'"),
    (dict(adl_policy=None), "adl_policy must be one of"),
    (dict(adl_seed=-1), "adl_seed must be a whole number"),
    (dict(adl_seed=1.5), "adl_seed must be a whole number"),
    (dict(adl_seed=2 ** 63), "adl_seed must be a whole number"),
])
def test_bad_policy_or_seed_is_refused(kw, message):
    with pytest.raises(InputError, match=message):
        simulate(four_shorts(), gap_to_80(), liquidation_fee_rate=0.0, **kw)
    with pytest.raises(InputError, match=message):
        run_numba(four_shorts(), PricePaths.from_frames(gap_to_80()), liquidation_fee_rate=0.0, **kw)
