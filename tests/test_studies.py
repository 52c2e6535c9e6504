"""riskcore.studies: the insurance fund each path needs, from one run with an ample fund,
checked against the engine run with that fund and a hair less."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskcore import Book, Brackets, simulate, studies
from riskcore.populations import PopulationSpec, generate_population_table
from riskcore.synthetic import gbm_paths

PARAMS = dict(liquidation_fee_rate=0.0125, liquidation_slippage=0.002)


def crash(seed: int):
    """A population at 20x to 100x through 30 volatile bars (small moves: liquidations that
    pay fees into the fund), then a gap: bar 30 opens 25% below bar 29's close, past the
    bankruptcy prices (deficits)."""
    brackets = {"BTCUSDT": Brackets.load("BTCUSDT", "2024-10-31")}
    prices = {"BTCUSDT": 60_000.0}
    paths = gbm_paths(prices, 40, vol=3.0, seed=seed)
    bars = paths["BTCUSDT"].copy()
    bars.loc[30:, ["open", "high", "low", "close"]] *= 0.75
    paths = {"BTCUSDT": bars}
    spec = PopulationSpec(leverage=((20, 0.4), (50, 0.3), (100, 0.3)), isolated_share=0.5, headroom_median=0.1)
    return generate_population_table(1500, brackets, prices, seed=seed, spec=spec), paths


def short_of(result) -> float:
    return float(result.steps["adl_recovered"].sum() + result.steps["socialised_loss"].sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fund_needed_is_the_edge_of_adl(seed):
    table, paths = crash(seed)
    ample = simulate(table, paths, insurance_fund=studies.AMPLE_FUND, **PARAMS)
    flows = studies.fund_flows(ample)
    need = studies.fund_needed(ample)
    needed = float(need["fund_needed"].iloc[0])
    assert needed > 0 and flows["fees"].sum() > 0  # the case has fees before it has deficits
    at = flows[flows["need"] == flows["need"].max()].iloc[0]
    assert at["before"] > 0  # the fees received before the binding point count
    assert (int(need["step"].iloc[0]), int(need["point"].iloc[0])) == (int(at["step"]), int(at["point"]))
    # fees in, deficits out: the fund's own change in the ample run (a fund of 1e15 rounds
    # each addition to 1/8 of a unit)
    touches = int(ample.events["kind"].isin(["liquidation", "bad_debt"]).sum())
    assert flows["fees"].sum() - flows["deficits"].sum() == pytest.approx(
        ample.ledger["insurance_fund"] - studies.AMPLE_FUND, abs=0.0625 * touches + 0.125)
    enough = simulate(table, paths, insurance_fund=needed * (1 + 1e-9) + 1e-6, **PARAMS)
    assert short_of(enough) == 0.0
    pd.testing.assert_frame_equal(enough.events.drop(columns=["reason"]), ample.events.drop(columns=["reason"]))
    less = simulate(table, paths, insurance_fund=needed * (1 - 1e-6), **PARAMS)
    assert short_of(less) > 0
    started = less.steps.index[(less.steps["adl_recovered"] + less.steps["socialised_loss"]) > 0][0]
    assert int(less.steps.loc[started, "step"]) == int(need["step"].iloc[0])


def test_the_rule_books_example_needs_the_whole_deficit():
    """docs/simulation.md example 4: a 1,000 deficit with no fee (the margin is gone)."""
    brackets = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005,
                                       "max_leverage": 100}], symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", brackets, maker_fee=0.0, taker_fee=0.0, mark_price=20_000.0)
    book.add_account("bea", wallet=10_000)
    book.set_margin_mode("bea", "BTCUSDT", "isolated")
    book.set_leverage("bea", "BTCUSDT", 10)
    book.market_order("bea", "BTCUSDT", "buy", 1, price=20_000)
    for name, wallet in (("sam", 10_000), ("sue", 2_000)):
        book.add_account(name, wallet=wallet)
        book.market_order(name, "BTCUSDT", "sell", 0.5, price=20_000)
    t0 = pd.Timestamp("2024-01-01")
    gap = pd.DataFrame({"timestamp": [t0, t0 + pd.Timedelta(minutes=1)], "open": [20_000.0, 17_000.0],
                        "high": [20_000.0, 17_000.0], "low": [20_000.0, 17_000.0], "close": [20_000.0, 17_000.0]})
    ample = simulate(book, {"BTCUSDT": gap}, liquidation_fee_rate=0.002, insurance_fund=studies.AMPLE_FUND)
    need = studies.fund_needed({"gap": ample})
    assert need.loc["gap", "fund_needed"] == pytest.approx(1_000.0)
    assert (need.loc["gap", "step"], need.loc["gap", "point"]) == (1, 0)
    with pytest.raises(ValueError, match="ran short"):
        studies.fund_needed(simulate(book, {"BTCUSDT": gap}, liquidation_fee_rate=0.002, insurance_fund=400))


def test_adl_curve_by_hand():
    curve = studies.adl_curve(np.array([0.0, 5.0, 10.0, 10.0]), [0, 5, 7, 10, 11])
    assert curve["runs_with_adl"].tolist() == [3, 2, 2, 0, 0]  # a fund of exactly the need is enough
    assert curve["p_adl"].tolist() == [0.75, 0.5, 0.5, 0.0, 0.0]
    assert (curve["runs"] == 4).all() and curve["insurance_fund"].tolist() == [0, 5, 7, 10, 11]
    frame = pd.DataFrame({"fund_needed": [1.0, 2.0]})
    assert studies.adl_curve(frame, [1.5])["p_adl"].tolist() == [0.5]
    for bad in ([], [-1.0], [np.nan]):
        with pytest.raises(ValueError):
            studies.adl_curve(bad, [1.0])
    with pytest.raises(ValueError, match="sizes"):
        studies.adl_curve([1.0], [])


def test_no_deficit_needs_no_fund():
    table, paths = crash(1)
    calm = {"BTCUSDT": gbm_paths({"BTCUSDT": 60_000.0}, 20, vol=0.05, seed=1)["BTCUSDT"]}
    result = simulate(table, calm, insurance_fund=studies.AMPLE_FUND, **PARAMS)
    need = studies.fund_needed([result])
    assert need.loc[0, "fund_needed"] == 0.0 and need.loc[0, "step"] == -1
    with pytest.raises(TypeError):
        studies.fund_needed(["not a result"])


def test_fund_sizing_benchmark_small(tmp_path, capsys):
    """benchmarks/fund_sizing.py on a tiny case: the curve of ten sizes, never rising."""
    import json

    from benchmarks import fund_sizing

    out = tmp_path / "fs.json"
    assert fund_sizing.main(["--paths", "3", "--accounts", "400", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    p = [row["p_adl"] for row in data["curve"]]
    assert len(p) == 10 and all(a >= b for a, b in zip(p, p[1:])) and set(p) <= {0.0, 1 / 3, 2 / 3, 1.0}
    assert data["paths"] == 3 and data["accounts"] == 400 and data["liquidation_slippage"] == 0.01
    assert "fund sizing: 3 paths x 400 accounts" in capsys.readouterr().out
    # the public path (a [study] scenario through run_to_folder) gives the same P(ADL)
    assert data["public"]["same_p_adl_as_direct"] is True
    assert [row["p_adl"] for row in data["public"]["curve"]] == p
