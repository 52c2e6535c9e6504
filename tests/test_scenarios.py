"""Scenario files and `riskcore run`, end to end on small scenarios."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from riskcore.cli import main
from riskcore.scenarios import ScenarioError, load_scenario, scenarios_dir

SMALL = textwrap.dedent("""
    name = "small"
    seed = 3
    notes = ["synthetic test scenario"]

    [market]
    liquidation_fee_rate = 0.01
    insurance_fund = 1000.0

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }
    start_price = 60000.0

    [path]
    kind = "gbm"
    n_steps = 40
    vol = 0.5

    [[path.wicks]]
    contract = "BTCUSDT"
    at = 20
    depth = -0.2

    [population]
    accounts = 40
    positions_per_account = 1
    leverage = [10, 20, 50]

    [[variants]]
    name = "cross"
    population = { isolated_share = 0.0 }

    [[variants]]
    name = "isolated"
    population = { isolated_share = 1.0 }
""")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_small_scenario_runs_end_to_end(tmp_path):
    scenario = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--no-progress"]) == 0
    for name in ("events.parquet", "steps.parquet", "final_positions.parquet", "final_accounts.parquet",
                 "summary.parquet", "report.html", "scenario.toml", "run.json"):
        assert (out / name).stat().st_size > 0, name
    events = pd.read_parquet(out / "events.parquet")
    steps = pd.read_parquet(out / "steps.parquet")
    assert set(steps["variant"]) == {"cross", "isolated"}
    assert (steps.groupby("variant").size() == 40).all()
    # a 20% wick at bar 20 liquidates 20x and 50x longs: there are liquidations in both variants
    liq = events[events["kind"] == "liquidation"]
    assert set(liq["variant"]) == {"cross", "isolated"}
    html = (out / "report.html").read_text()
    for png in sorted(set(__import__("re").findall(r'src="([^"]+\.png)"', html))):
        assert (out / png).stat().st_size > 0


def test_same_accounts_in_every_variant(tmp_path):
    from riskcore.scenarios import build_book, build_paths

    scenario = load_scenario(write(tmp_path, SMALL))
    paths, _ = build_paths(scenario, scenario.variants[0][1])
    cross = build_book(scenario, scenario.variants[0][1], paths).positions_frame()
    iso = build_book(scenario, scenario.variants[1][1], paths).positions_frame()
    cols = ["account", "contract", "side", "qty", "entry_price", "leverage"]
    pd.testing.assert_frame_equal(cross[cols], iso[cols])
    assert set(cross["margin_mode"]) == {"cross"} and set(iso["margin_mode"]) == {"isolated"}


@pytest.mark.parametrize("edit, key", [
    (("liquidation_fee_rate = 0.01\n", ""), "market.liquidation_fee_rate"),
    (("vol = 0.5", "vol = 'high'"), "path.vol"),
    (("n_steps = 40", "n_steps = 40\nsteps = 3"), "path.steps"),
    (('kind = "gbm"', 'kind = "random"'), "path.kind"),
    (("accounts = 40", "accounts = 40\nisolated_sharee = 0.5"), "population.isolated_sharee"),
    (('[[variants]]\nname = "isolated"', '[[variants]]\nname = "cross"'), "variants"),
])
def test_bad_scenarios_name_the_key(tmp_path, edit, key):
    text = SMALL.replace(*edit)
    assert text != SMALL
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        load_scenario(write(tmp_path, text))


def test_bad_scenario_exit_code_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SMALL.replace("vol = 0.5", "vol = -"))), "--out", str(out)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert not out.exists()


def test_missing_data_exit_code(tmp_path, capsys):
    text = SMALL.replace('kind = "gbm"\nn_steps = 40\nvol = 0.5',
                         'kind = "file"\n[path.files]\nBTCUSDT = "nowhere/BTC.csv.gz"')
    text = text.replace("[[path.wicks]]\ncontract = \"BTCUSDT\"\nat = 20\ndepth = -0.2\n", "")
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 3
    assert "nowhere/BTC.csv.gz" in capsys.readouterr().err
    assert not out.exists()


def test_a_failed_run_leaves_the_previous_output_untouched(tmp_path, monkeypatch):
    scenario = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import riskcore.report

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the report")

    monkeypatch.setattr(riskcore.report, "write_report", broken)
    with pytest.raises(RuntimeError, match="a bug in the report"):
        main(["run", str(scenario), "--out", str(out), "--no-progress"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_shipped_scenarios_are_valid():
    files = sorted(scenarios_dir().glob("*.toml"))
    assert any(f.name == "default.toml" for f in files)
    for f in files:
        assert load_scenario(f).variants


def test_real_crash_scenario_needs_shared_data(tmp_path):
    path = scenarios_dir() / "crash-2024-08-05.toml"
    scenario = load_scenario(path)
    from riskcore.scenarios import MissingDataError, build_paths

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not data.exists():
        with pytest.raises(MissingDataError, match="shared/data"):
            build_paths(scenario, scenario.variants[0][1])
        return
    paths, source = build_paths(scenario, scenario.variants[0][1])
    btc = paths["BTCUSDT"]
    assert len(btc) == 134 and btc["low"].min() == 48888.0  # PROVENANCE.md: 134 rows, low 48,888.00
    assert "BTCUSDT_PERP_1m_20240805" in source


def test_population_file_written_by_the_table_runs_and_matches_the_drawn_one(tmp_path):
    """population.file reads a Parquet folder written by BookTable.write_parquet (the
    scenario's market supplies the brackets), and gives the same run as the drawn population."""
    from riskcore.scenarios import build_paths, build_table, run_to_folder

    scenario = load_scenario(write(tmp_path, SMALL))
    cfg = scenario.variants[0][1]
    paths, _ = build_paths(scenario, cfg)
    drawn = build_table(scenario, cfg, paths)
    drawn.write_parquet(tmp_path / "pop")
    text = SMALL.replace("accounts = 40\n    positions_per_account = 1\n    leverage = [10, 20, 50]\n",
                         'file = "pop"\n').replace("population = { isolated_share = 1.0 }",
                                                   'market = { liquidation_fee_rate = 0.02 }')
    from_file = load_scenario(write(tmp_path, text, "f.toml"))
    assert build_table(from_file, from_file.variants[0][1], paths) == drawn
    out, summary, times, _ = run_to_folder(from_file, tmp_path / "out")
    first, _, _, _ = run_to_folder(scenario, tmp_path / "out-drawn")
    a = pd.read_parquet(out / "events.parquet")
    b = pd.read_parquet(first / "events.parquet")
    cross = lambda f: f[f["variant"] == "cross"].drop(columns="variant").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(cross(a), cross(b))
    assert summary.loc["cross", "accounts"] == 40
    assert set(times.phases) == {"build", "simulate", "read-outs", "write", "report"}
    assert 0 < times.kernel <= times.phases["simulate"]


def test_run_prints_its_phases_and_an_honest_total(tmp_path, capsys):
    scenario = write(tmp_path, SMALL)
    assert main(["run", str(scenario), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("time:")][0]
    for phase in ("build", "simulate", "read-outs", "write", "report", "the kernels' own time"):
        assert phase in line, line
    import json
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert set(run["phases"]) == {"build", "simulate", "read-outs", "write", "report"}


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize("name", sorted(p.name for p in scenarios_dir().glob("*.toml")))
def test_every_shipped_scenario_runs(tmp_path, name):
    """Each shipped scenario runs end to end (with 300 accounts instead of its own count, to
    keep the suite quick); a real-crash one needs ../shared/data and is skipped without it."""
    from riskcore.scenarios import run_to_folder

    scenario = load_scenario(scenarios_dir() / name)
    if "shared/data" in (scenarios_dir() / name).read_text() and not SHARED_DATA.exists():
        pytest.skip("../shared/data is not beside the project")
    for _, cfg in scenario.variants:
        cfg["population"]["accounts"] = 300
    out, summary, _, _ = run_to_folder(scenario, tmp_path / "out")
    assert list(summary.index) == [v for v, _ in scenario.variants]
    assert (summary["accounts"] == 300).all()
    html = (out / "report.html").read_text()
    for note in scenario.config.get("notes", []):  # stand-ins (older bracket tables) are said in the report
        assert note.replace("'", "&#x27;").replace('"', "&quot;") in html
