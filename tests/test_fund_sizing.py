"""Insurance-fund sizing as a scenario kind (issue 13): riskcore.studies.fund_sizing, the
``[study]`` keys, `riskcore run`'s fund_sizing.parquet and report section, and the exact parts
of the curve checked against direct runs of simulate() with each fund size."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from test_scenarios import SHARED_DATA, SMALL, write

from riskcore import Book, Brackets, simulate, studies
from riskcore.cli import main
from riskcore.scenarios import (MissingDataError, ScenarioError, _study_cfg, build_paths, build_table,
                                impact_models, load_scenario, run_to_folder, scenarios_dir)

FEE = dict(liquidation_fee_rate=0.002)


def book_of_example_4() -> Book:
    """docs/simulation.md example 4: bea long 1 BTC isolated at 10x from 20,000 (margin 2,000),
    sam and sue short 0.5 each in cross (wallets 10,000 and 2,000)."""
    tier = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")
    book = Book()
    book.add_contract("BTCUSDT", tier, maker_fee=0.0, taker_fee=0.0)
    book.add_account("bea", wallet=10_000)
    book.set_margin_mode("bea", "BTCUSDT", "isolated")
    book.set_leverage("bea", "BTCUSDT", 10)
    book.market_order("bea", "BTCUSDT", "buy", 1, price=20_000)
    for name, wallet in (("sam", 10_000), ("sue", 2_000)):
        book.add_account(name, wallet=wallet)
        book.market_order(name, "BTCUSDT", "sell", 0.5, price=20_000)
    return book


def bars(*prices):
    """Bar 0 flat at 20,000, then one flat bar per price."""
    rows = [(20_000.0,) * 4] + [(float(p),) * 4 for p in prices]
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "timestamp", pd.date_range("2024-01-01", periods=len(rows), freq="1min"))
    return {"BTCUSDT": frame}


def shortfall(result) -> float:
    """What the fund did not pay in a run: ADL recovered plus socialised."""
    return float(result.steps["adl_recovered"].sum() + result.steps["socialised_loss"].sum())


def shortfall_steps(result) -> np.ndarray:
    s = result.steps
    return s.loc[(s["adl_recovered"] + s["socialised_loss"]) > 0, "step"].to_numpy()


# ------------------------------------------------------------------ the curve by hand
def test_the_curve_by_hand_and_by_direct_runs():
    """Three paths that gap at bar 1 to 18,500, 17,000 and 16,000.  By hand: bea's long (margin
    2,000, liquidation price about 18,090) is untouched at 18,500; at 17,000 it loses 3,000
    against its 2,000 of margin, a deficit of 1,000 (no fee: the margin is gone); at 16,000,
    2,000.  So with a fund F the paths leave max(0, 1,000 - F) and max(0, 2,000 - F)
    unpaid."""
    book = book_of_example_4()
    gaps = (18_500, 17_000, 16_000)
    runs = {p: simulate(book, bars(p), insurance_fund=studies.AMPLE_FUND, **FEE) for p in gaps}
    curve = studies.fund_sizing(runs, [0, 500, 1_000, 2_000], tail=0.5)
    assert curve["paths"].tolist() == [3, 3, 3, 3]
    assert curve["paths_with_adl"].tolist() == [2, 2, 1, 0]
    assert curve["p_adl"].tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3, 0])
    # losses per path: F=0: 0, 1000, 2000; F=500: 0, 500, 1500; F=1000: 0, 0, 1000; F=2000: none
    assert curve["socialised_mean"].tolist() == pytest.approx([1_000, 2_000 / 3, 1_000 / 3, 0])
    # tail 0.5 of 3 paths: the mean of the worst ceil(1.5) = 2
    assert curve["socialised_tail"].tolist() == pytest.approx([1_500, 1_000, 500, 0])
    assert curve["socialised_max"].tolist() == pytest.approx([2_000, 1_500, 1_000, 0])
    # one deficit per path: the first point is all there is
    assert curve["first_point_mean"].tolist() == pytest.approx(curve["socialised_mean"].tolist())
    # the engine with each fund: the same shortfall, path by path
    for F, expected in ((0, [0, 1_000, 2_000]), (500, [0, 500, 1_500]), (1_000, [0, 0, 1_000]), (2_000, [0, 0, 0])):
        got = [shortfall(simulate(book, bars(p), insurance_fund=F, **FEE)) for p in gaps]
        assert got == pytest.approx(expected, abs=1e-6), F


def test_after_the_first_shortfall_the_loss_is_an_approximation():
    """One path, two gaps: to 17,000 (bea's deficit, 1,000) then to 30,000 (sue's short of 0.5
    from 20,000 loses 5,000 against her 2,000: a deficit of 3,000).  The ample run needs
    1,000 + 3,000 = 4,000.  With no fund, ADL at bar 1 closes shorts against bea's deficit,
    which changes what happens at bar 2: the direct run leaves 1,000 unpaid, the
    approximation 4,000.  The first point (1,000) is exact, and a lower bound."""
    book = book_of_example_4()
    path = bars(17_000, 30_000)
    ample = simulate(book, path, insurance_fund=studies.AMPLE_FUND, **FEE)
    assert studies.fund_needed(ample)["fund_needed"].iloc[0] == pytest.approx(4_000)
    sizes = [0, 500, 1_000, 3_000, 4_000]
    curve = studies.fund_sizing({0: ample}, sizes).set_index("insurance_fund")
    direct = {F: simulate(book, path, insurance_fund=F, **FEE) for F in sizes}
    for F, run in direct.items():
        row = curve.loc[F]
        assert bool(row["paths_with_adl"]) == (shortfall(run) > 0), F  # exact
        first = shortfall_steps(run)
        if len(first):  # the first shortfall, at the point the study names, of the size it gives
            s = run.steps.set_index("step")
            at = int(first[0])
            assert float(s.loc[at, "adl_recovered"] + s.loc[at, "socialised_loss"]) == pytest.approx(
                row["first_point_mean"])
        assert shortfall(run) >= row["first_point_mean"] - 1e-9
    # by hand: F = 0: bar 1 leaves 1,000 (exact), the direct run nothing more; the estimate 4,000
    assert curve.loc[0, "first_point_mean"] == pytest.approx(1_000)
    assert shortfall(direct[0]) == pytest.approx(1_000)
    assert curve.loc[0, "socialised_mean"] == pytest.approx(4_000)
    # F = 1,000 pays bar 1 in full: no ADL before bar 2, whose 3,000 the direct run leaves unpaid (exact)
    assert shortfall(direct[1_000]) == pytest.approx(3_000) == curve.loc[1_000, "socialised_mean"]
    assert shortfall(direct[3_000]) == pytest.approx(1_000) == curve.loc[3_000, "socialised_mean"]
    assert shortfall(direct[4_000]) == 0 and curve.loc[4_000, "paths_with_adl"] == 0


def crash(seed: int):
    """test_studies' crash book: fees from small moves, then a 25% gap at bar 30."""
    from test_studies import crash as make

    return make(seed)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_exact_parts_against_direct_runs(seed):
    """On books with many liquidations and fees before the deficits: for funds around the one
    needed, whether ADL happens and the step it starts at are the direct run's, and the
    direct run's shortfall is at least the exact first point's."""
    table, paths = crash(seed)
    params = dict(liquidation_fee_rate=0.0125, liquidation_slippage=0.002)
    ample = simulate(table, paths, insurance_fund=studies.AMPLE_FUND, **params)
    needed = float(studies.fund_needed(ample)["fund_needed"].iloc[0])
    assert needed > 0
    sizes = [0.0, 0.3 * needed, 0.9 * needed, needed * (1 + 1e-9) + 1e-6]
    curve = studies.fund_sizing(ample, sizes)
    flows = studies.fund_flows(ample)
    for F, (_, row) in zip(sizes, curve.iterrows()):
        run = simulate(table, paths, insurance_fund=F, **params)
        assert bool(row["paths_with_adl"]) == (shortfall(run) > 0), F
        if row["paths_with_adl"]:
            first = flows[flows["need"] > F].iloc[0]
            assert int(shortfall_steps(run)[0]) == int(first["step"])
            assert shortfall(run) >= row["first_point_mean"] * (1 - 1e-9)
            assert row["first_point_mean"] > 0


def test_fund_sizing_refuses_bad_input():
    with pytest.raises(ValueError, match="tail"):
        studies.fund_sizing([], [0], tail=1.0)
    with pytest.raises(ValueError, match="sizes"):
        studies.fund_sizing([], [-1])
    with pytest.raises(ValueError, match="runs is empty"):
        studies.fund_sizing([], [0])


# ------------------------------------------------------------------ the scenario kind
STUDY = (SMALL.replace("insurance_fund = 1000.0\n", "liquidation_slippage = 0.03\n")
         .replace("accounts = 40", "accounts = 300").replace("leverage = [10, 20, 50]", "leverage = [20, 50, 100]")
         + '\n[study]\nkind = "fund-sizing"\npaths = 4\nfund_sizes = [0, 1000, 10000, 100000]\ntail = 0.5\n')


def test_study_keys_are_read():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        scenario = load_scenario(write(Path(d), STUDY))
        ranged = load_scenario(write(Path(d), STUDY.replace(
            "paths = 4\nfund_sizes = [0, 1000, 10000, 100000]",
            'paths = { from = 7, count = 2 }\nfund_sizes = { from = 1e3, to = 1e6, count = 4 }'), "r.toml"))
        linear = load_scenario(write(Path(d), STUDY.replace(
            "fund_sizes = [0, 1000, 10000, 100000]",
            'fund_sizes = { from = 0, to = 300, count = 4, spacing = "linear" }'), "l.toml"))
    study = scenario.study
    assert study.seeds == (3, 4, 5, 6)  # from the top-level seed, 3
    assert study.sizes == (0.0, 1_000.0, 10_000.0, 100_000.0)
    assert (study.tail, study.adl_target) == (0.5, 0.05)
    assert ranged.study.seeds == (7, 8)
    assert ranged.study.sizes == pytest.approx((1e3, 1e4, 1e5, 1e6))
    assert linear.study.sizes == pytest.approx((0, 100, 200, 300))
    assert [n for n, _ in scenario.variants] == ["cross", "isolated"]  # the paths are not variants


@pytest.mark.parametrize("change, key", [
    (('kind = "fund-sizing"', 'kind = "fund"'), "study.kind: must be one of 'fund-sizing'"),
    (('kind = "fund-sizing"\n', ''), "study.kind: required"),
    (("fund_sizes = [0, 1000, 10000, 100000]\n", ""), "study.fund_sizes: required"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = []"), "study.fund_sizes: expected a non-empty list"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = [0, -5]"), r"study.fund_sizes\[1\]: must be an amount"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = [10, 10]"), "study.fund_sizes: 10 is listed more"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = { from = 0, to = 10, count = 3 }"),
     "study.fund_sizes.from: must be above 0 with spacing = 'log'"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = { from = 10, to = 1, count = 3 }"),
     r"study.fund_sizes.to: must be above study.fund_sizes.from"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = { from = 1, to = 10, count = 1 }"),
     "study.fund_sizes.count: must be from 2"),
    (("fund_sizes = [0, 1000, 10000, 100000]", 'fund_sizes = { from = 1, to = 10, count = 3, spacing = "x" }'),
     "study.fund_sizes.spacing: must be 'log' or 'linear'"),
    (("fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = { from = 1, to = 10 }"),
     "study.fund_sizes.count: required"),
    (("tail = 0.5", "tail = 1.5"), "study.tail: must be a level between 0 and 1"),
    (("tail = 0.5", "adl_target = 1"), "study.adl_target: must be a probability"),
    (("tail = 0.5", "size = 1"), "study.size: unknown key"),
    (("paths = 4", "paths = 0"), "study.paths: expected a number of paths from 1"),
    (("paths = 4", "paths = { from = 1 }"), "study.paths.count: required"),
    (("liquidation_slippage = 0.03\n", "liquidation_slippage = 0.03\ninsurance_fund = 5.0\n"),
     "market.insurance_fund: a fund-sizing study runs every path with an ample insurance fund"),
    (('population = { isolated_share = 0.0 }',
      'population = { isolated_share = 0.0 }\nmarket = { insurance_fund = 1.0 }'),
     r"variants\[0\].market.insurance_fund: a fund-sizing study"),
    (("tail = 0.5\n", 'tail = 0.5\n[grid]\n"path.seed" = [1, 2]\n'),
     'grid."path.seed": a fund-sizing study draws its paths'),
    (("tail = 0.5\n", 'tail = 0.5\n[grid]\n"market.insurance_fund" = [1.0, 2.0]\n'), 'grid."market.insurance_fund"'),
])
def test_bad_study_keys_name_the_key(tmp_path, change, key):
    text = STUDY.replace(*change)
    assert text != STUDY
    with pytest.raises(ScenarioError, match=key):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("flag", [["--checkpoint", "ckpt"], ["--cluster", "local:2"]])
def test_a_study_refuses_checkpoints_and_clusters(tmp_path, capsys, flag):
    flag = [flag[0], str(tmp_path / flag[1])] if flag[0] == "--checkpoint" else flag
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, STUDY)), "--out", str(out), "--no-progress", *flag]) == 2
    assert "study" in capsys.readouterr().err
    assert not out.exists()


def test_several_paths_need_a_path_that_varies(tmp_path):
    text = STUDY.replace('kind = "gbm"\nn_steps = 40\nvol = 0.5\n', 'kind = "file"\nfiles = { BTCUSDT = "x.csv" }\n')
    text = text[:text.index("[[path.wicks]]")] + text[text.index("[population]"):]
    with pytest.raises(ScenarioError, match=r"study.paths: a path read from files"):
        load_scenario(write(tmp_path, text))
    assert load_scenario(write(tmp_path, text.replace("paths = 4", "paths = 1"), "one.toml")).study.seeds == (3,)


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("study")
    scenario = write(folder, STUDY)
    out = folder / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", str(scenario), "--out", str(out), "--no-progress"]) == 0
    return load_scenario(scenario), out, printed.getvalue()


def test_riskcore_run_writes_the_curve_and_the_section(study_run):
    scenario, out, _ = study_run
    curve = pd.read_parquet(out / "fund_sizing.parquet")
    per_path = pd.read_parquet(out / "fund_paths.parquet")
    assert list(curve.columns) == ["variant", *studies.FUND_SIZING_COLUMNS]
    assert curve["variant"].tolist() == ["cross"] * 4 + ["isolated"] * 4
    assert (curve["paths"] == 4).all()
    assert sorted(per_path["seed"].unique()) == [3, 4, 5, 6]
    # the curve's P(ADL) is the share of the paths whose fund_needed is above the size
    for name, c in curve.groupby("variant"):
        need = per_path.loc[per_path["variant"] == name, "fund_needed"].to_numpy()
        assert c["p_adl"].tolist() == [float((need > F).mean()) for F in c["insurance_fund"]]
    assert (per_path["fund_needed"] > 0).any()  # the case has deficits: the curve is not flat
    html = (out / "report.html").read_text()
    assert 'id="fund-sizing"' in html and 'id="fund-sizing-table"' in html and 'href="#fund-sizing"' in html
    assert 'src="fund_sizing.png"' in html and (out / "fund_sizing.png").stat().st_size > 0
    assert "approximation" in html and "exact" in html
    findings = html[html.index('id="findings"'):html.index("</section>", html.index('id="findings"'))]
    assert "Insurance fund (cross, 4 paths)" in findings and "Insurance fund (isolated, 4 paths)" in findings
    # the detail: the first path's variants, with the full outputs
    summary = pd.read_parquet(out / "summary.parquet")
    assert summary["variant"].tolist() == ["cross", "isolated"]
    events = pd.read_parquet(out / "events.parquet")
    assert set(events["variant"]) <= {"cross", "isolated"}
    for png in sorted(set(re.findall(r'src="([^"]+\.png)"', html))):
        assert (out / png).stat().st_size > 0


def test_the_scenario_curve_against_direct_runs(study_run):
    """Each path of the study run directly with each fund size (the scenario's own accounts
    and bars, through simulate()): ADL happens exactly on the paths the curve counts, and the
    shortfall is at least the curve's exact part."""
    scenario, out, _ = study_run
    curve = pd.read_parquet(out / "fund_sizing.parquet")
    name, cfg = scenario.variants[0]
    c = curve[curve["variant"] == name].reset_index(drop=True)
    per_size = {F: [] for F in scenario.study.sizes}
    firsts = {F: [] for F in scenario.study.sizes}
    for seed in scenario.study.seeds:
        run_cfg = _study_cfg(cfg, seed)
        paths, _ = build_paths(scenario, run_cfg)
        table = build_table(scenario, run_cfg, paths)
        market = run_cfg["market"]
        assert not impact_models(run_cfg)
        for F in scenario.study.sizes:
            run = simulate(table, paths, liquidation_fee_rate=market["liquidation_fee_rate"], insurance_fund=F,
                           liquidation_slippage=market["liquidation_slippage"])
            per_size[F].append(shortfall(run) > 0)
            firsts[F].append(shortfall(run))
    assert c["paths_with_adl"].tolist() == [sum(per_size[F]) for F in scenario.study.sizes]
    assert any(any(v) for v in per_size.values())
    for F, (_, row) in zip(scenario.study.sizes, c.iterrows()):
        assert np.mean(firsts[F]) >= row["first_point_mean"] * (1 - 1e-9) - 1e-9


IMPACT_STUDY = STUDY.replace("liquidation_slippage = 0.03\n", "liquidation_slippage = 0.002\n").replace(
    'start_price = 60000.0\n', 'start_price = 60000.0\n[market.contracts.BTCUSDT.impact]\nsigma = 0.05\n'
    'daily_volume = 1e6\npermanent = 0.5\nhalf_life = 3\n').replace(
    "fund_sizes = [0, 1000, 10000, 100000]", "fund_sizes = [0, 3000, 10000, 30000, 100000]").replace(
    "paths = 4", "paths = 3")


def test_with_impact_and_feedback_p_adl_is_the_direct_runs(tmp_path):
    """Market impact with feedback on the mark: the fund is still not in the loop (ADL is
    off-market), so the runs with each fund deleverage exactly on the paths the curve counts,
    starting at the step it names."""
    from riskcore.impact import DEFAULT_ROUNDS

    scenario = load_scenario(write(tmp_path, IMPACT_STUDY))
    out, _, _, _ = run_to_folder(scenario, tmp_path / "out")
    curve = pd.read_parquet(out / "fund_sizing.parquet")
    name, cfg = scenario.variants[1]  # isolated
    c = curve[curve["variant"] == name].reset_index(drop=True)
    counted = []
    for seed in scenario.study.seeds:
        run_cfg = _study_cfg(cfg, seed)
        paths, _ = build_paths(scenario, run_cfg)
        table = build_table(scenario, run_cfg, paths)
        impact = impact_models(run_cfg)
        assert impact and impact["BTCUSDT"].feedback
        kwargs = dict(liquidation_fee_rate=0.01, liquidation_slippage=0.002, impact=impact,
                      cascade_rounds=DEFAULT_ROUNDS)
        ample = simulate(table, paths, insurance_fund=studies.AMPLE_FUND, **kwargs)
        flows = studies.fund_flows(ample)
        row = []
        for F in scenario.study.sizes:
            run = simulate(table, paths, insurance_fund=F, **kwargs)
            row.append(shortfall(run) > 0)
            if row[-1]:
                assert int(shortfall_steps(run)[0]) == int(flows.loc[flows["need"] > F, "step"].iloc[0])
        counted.append(row)
    assert c["paths_with_adl"].tolist() == np.sum(counted, axis=0).tolist()
    assert 0 < c["paths_with_adl"].iloc[0]  # the case deleverages with no fund


def test_the_cli_prints_the_curve(study_run):
    _, out, text = study_run
    curve = pd.read_parquet(out / "fund_sizing.parquet")
    assert "insurance fund sizing over 4 paths" in text and "P(ADL)" in text
    assert "fund_sizing/fund_paths .parquet" in text
    row = curve.iloc[1]  # cross, a fund of 1,000: its line as printed
    assert f"{row['insurance_fund']:>18,.0f} {100 * row['p_adl']:>7.1f}%" in text


# ------------------------------------------------------------------ the shipped scenario
def test_the_shipped_scenario_needs_the_shared_data(tmp_path, monkeypatch):
    """Copied away from the project, with RISKCORE_DATA_PATH empty, its bars are not found:
    the project's missing-data error, naming the key."""
    import riskcore.scenarios as sc

    src = scenarios_dir() / "fund-sizing-2025-10-10.toml"
    copy = tmp_path / "fund.toml"
    shutil.copyfile(src, copy)
    monkeypatch.setenv("RISKCORE_DATA_PATH", "")
    monkeypatch.setattr(sc, "data_search_path", lambda: [tmp_path / "nowhere"])
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(copy)
    assert scenario.study is not None and len(scenario.study.seeds) == 50 and len(scenario.study.sizes) == 10
    with pytest.raises(MissingDataError, match="path.source.BTCUSDT"):
        run_to_folder(scenario, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_shipped_scenario_runs_small(tmp_path):
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not beside the project")
    scenario = load_scenario(scenarios_dir() / "fund-sizing-2025-10-10.toml")
    for _, cfg in scenario.variants:
        for c in cfg["market"]["contracts"].values():  # the same depth per account
            c["impact"]["daily_volume"] *= 500 / cfg["population"]["accounts"]
        cfg["population"]["accounts"] = 500
    import dataclasses

    scenario.study = dataclasses.replace(scenario.study, seeds=scenario.study.seeds[:6])
    out, summary, times, source = run_to_folder(scenario, tmp_path / "out")
    curve = pd.read_parquet(out / "fund_sizing.parquet")
    assert len(curve) == 2 * 10 and (curve["paths"] == 6).all()
    assert "6 paths (path.seed 1 to 6)" in source and "bootstrap of BTCUSDT_PERP_1m_20251010" in source
    assert list(summary.index) == ["impact, no feedback", "impact + feedback"]
    assert times.phases["study"] >= 0


# ------------------------------------------------------------------ charts of the other sections
def test_the_cascade_and_adl_sections_have_charts(tmp_path):
    from test_cascades import CASCADE

    text = CASCADE.replace("insurance_fund = 1000.0", "insurance_fund = 0.0")
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    html = (out / "report.html").read_text()
    cascades = html[html.index('id="cascades"'):html.index("</section>", html.index('id="cascades"'))]
    assert 'src="cascades.png"' in cascades and (out / "cascades.png").stat().st_size > 0
    summary = pd.read_parquet(out / "summary.parquet")
    if (summary["adl_events"] > 0).any():
        adl = html[html.index('id="adl"'):html.index("</section>", html.index('id="adl"'))]
        assert 'src="adl.png"' in adl and (out / "adl.png").stat().st_size > 0
    else:
        assert not (out / "adl.png").exists()


def test_a_plain_report_has_no_section_charts(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SMALL)), "--out", str(out), "--no-progress"]) == 0
    for png in ("cascades.png", "adl.png", "fund_sizing.png"):
        assert not (out / png).exists()
    assert not (out / "fund_sizing.parquet").exists()


def test_findings_name_the_smallest_fund_that_meets_the_target():
    """Four paths needing 0, 500, 1,500 and 3,000: sizes 0, 1,000, 2,000, 4,000 give P(ADL) 3/4,
    2/4, 1/4, 0; the target 30% is first met at 2,000, 10% only at 4,000."""
    from riskcore.report import FundSizingReport, fund_sizing_findings

    need = [0.0, 500.0, 1_500.0, 3_000.0]
    flows = {seed: pd.DataFrame({"step": [1], "point": [0], "round": [0], "fees": [0.0], "deficits": [n],
                                 "before": [0.0], "need": [n]}) for seed, n in enumerate(need)}
    curve = studies.fund_sizing(flows, [0, 1_000, 2_000, 4_000])
    assert curve["p_adl"].tolist() == [0.75, 0.5, 0.25, 0.0]
    curve.insert(0, "variant", "v")
    paths = pd.DataFrame({"variant": "v", "seed": range(4), "fund_needed": need})
    text = fund_sizing_findings(FundSizingReport(curve, paths, adl_target=0.3), "USDT")[0]
    assert "keeps P(ADL) at or below 30% is 2k USDT (P(ADL) 25.0%" in text
    assert "the next size down, 1k USDT, gives 50.0%" in text
    assert "median 1k USDT, largest 3k USDT (path.seed 3); 1 of 4 paths need none." in text
    text = fund_sizing_findings(FundSizingReport(curve[curve["insurance_fund"] < 4_000], paths, adl_target=0.1),
                                "USDT")[0]
    assert "no fund tested keeps P(ADL) at or below 10%: with the largest, 2k USDT, P(ADL) is 25.0%" in text
