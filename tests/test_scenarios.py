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


# ------------------------------------------------------------------ price paths as a sweep dimension
PATHS = SMALL + '\n[grid]\n"path.seed" = [4, 9, 2]\n'


def test_a_grid_over_path_seed_makes_a_variant_per_path(tmp_path):
    scenario = load_scenario(write(tmp_path, PATHS))
    names = [n for n, _ in scenario.variants]
    assert names == ["cross [path.seed=4]", "cross [path.seed=9]", "cross [path.seed=2]",
                     "isolated [path.seed=4]", "isolated [path.seed=9]", "isolated [path.seed=2]"]
    assert [cfg["path"]["seed"] for _, cfg in scenario.variants] == [4, 9, 2, 4, 9, 2]
    assert scenario.path_labels["isolated [path.seed=9]"] == "path.seed=9"
    assert scenario.base_names["isolated [path.seed=9]"] == "isolated"
    # with another grid key, the path's label comes last and the margin variant keeps the rest
    mixed = load_scenario(write(tmp_path, PATHS.replace('"path.seed" = [4, 9, 2]',
                                                        '"path.seed" = [4, 9]\n"market.mmr_factor" = [1.0, 2.0]'),
                                "m.toml"))
    assert [n for n, _ in mixed.variants][:2] == ["cross [mmr_factor=1.0, path.seed=4]",
                                                  "cross [mmr_factor=2.0, path.seed=4]"]
    assert mixed.base_names["cross [mmr_factor=2.0, path.seed=4]"] == "cross [mmr_factor=2.0]"
    # the compact form is the list written out
    compact = load_scenario(write(tmp_path, SMALL + '\n[grid]\n"path.seed" = { from = 7, count = 3 }\n', "c.toml"))
    assert [n for n, _ in compact.variants][:3] == ["cross [path.seed=7]", "cross [path.seed=8]",
                                                    "cross [path.seed=9]"]
    # no grid over the path: no labels (a scenario as before)
    assert load_scenario(write(tmp_path, SMALL, "plain.toml")).path_labels == {}


FILE_PATH = SMALL.replace('kind = "gbm"\nn_steps = 40\nvol = 0.5',
                          'kind = "file"\n[path.files]\nBTCUSDT = "btc.csv"').replace(
    '[[path.wicks]]\ncontract = "BTCUSDT"\nat = 20\ndepth = -0.2\n', "")


@pytest.mark.parametrize("text, key, why", [
    (FILE_PATH + '\n[grid]\n"path.seed" = [1, 2]\n', 'grid."path.seed"', "nothing to vary"),
    (SMALL + '\n[grid]\n"path.vol" = [0.5, 0.9]\n', 'grid."path.vol"', "only path.seed"),
    (SMALL + '\n[grid]\n"path.kind" = ["gbm"]\n', 'grid."path.kind"', "only path.seed"),
    (SMALL + '\n[grid]\n"path.seed" = [1, 2, 1]\n', 'grid."path.seed"', "more than once"),
    (SMALL + '\n[grid]\n"path.seed" = [1, -2]\n', r'grid."path.seed"\[1\]', ">= 0"),
    (SMALL + '\n[grid]\n"path.seed" = [1.5]\n', r'grid."path.seed"\[0\]', "whole number"),
    (SMALL + '\n[grid]\n"path.seed" = { from = 1, count = 0 }\n', 'grid."path.seed".count', "from 1 to"),
    (SMALL + '\n[grid]\n"path.seed" = { count = 5 }\n', 'grid."path.seed".from', "required"),
    (SMALL + '\n[grid]\n"path.seed" = { from = 1, count = 5, step = 2 }\n', 'grid."path.seed".step',
     "unknown key"),
    (SMALL + '\n[grid]\n"path.seed" = []\n', 'grid."path.seed"', "non-empty list"),
])
def test_a_bad_path_grid_names_the_file_and_key(tmp_path, text, key, why):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and why in message, message
    assert __import__("re").search(key.replace(".", r"\.").replace(r"\\.", "."), message), message


def test_each_variant_runs_through_its_own_path(tmp_path, monkeypatch):
    """A variant of the sweep gives what a scenario with that seed written in [path] gives;
    the paths of the three seeds are built once each, not once per variant."""
    import json

    import riskcore.scenarios as sc
    from riskcore.scenarios import run_to_folder

    built = []
    real_build = sc.build_paths

    def counting(scenario, cfg, **kw):
        built.append(cfg["path"].get("seed"))
        return real_build(scenario, cfg, **kw)

    monkeypatch.setattr(sc, "build_paths", counting)
    out, summary, _, source = run_to_folder(write(tmp_path, PATHS), tmp_path / "sweep")
    assert sorted(built) == [2, 4, 9]
    assert source == "synthetic GBM, 3 paths (path.seed 4, 9, 2)"
    events = pd.read_parquet(out / "events.parquet")
    steps = pd.read_parquet(out / "steps.parquet")
    one = SMALL.replace("vol = 0.5", "vol = 0.5\nseed = 9")
    alone, alone_summary, _, _ = run_to_folder(write(tmp_path, one, "one.toml"), tmp_path / "alone")
    for table, ours in (("events", events), ("steps", steps)):
        theirs = pd.read_parquet(alone / f"{table}.parquet")
        for variant in ("cross", "isolated"):
            got = ours[ours["variant"] == f"{variant} [path.seed=9]"].drop(columns="variant")
            want = theirs[theirs["variant"] == variant].drop(columns="variant")
            for frame in (got, want):
                for col in frame.columns:
                    if isinstance(frame[col].dtype, pd.CategoricalDtype):
                        frame[col] = frame[col].astype(object)
            assert len(want) > 0
            pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), obj=table)
    # the paths differ, so the variants do: the closes of the three seeds are not the same
    closes = steps[steps["variant"].str.startswith("cross")].groupby("variant")["liquidated_notional"].sum()
    assert closes.nunique() > 1 or summary["mean_loss_per_account"].nunique() > 2
    run = json.loads((out / "run.json").read_text())
    assert run["paths"]["isolated [path.seed=2]"] == "path.seed=2"


def test_the_spread_over_paths_is_written(tmp_path):
    """spread.parquet: per margin variant, the mean, median and worst over its paths of the
    summary's rates and amounts, as pandas computes them from summary.parquet."""
    from riskcore.scenarios import run_to_folder

    out, _, _, _ = run_to_folder(write(tmp_path, PATHS), tmp_path / "sweep")
    summary = pd.read_parquet(out / "summary.parquet")
    spread = pd.read_parquet(out / "spread.parquet").set_index("variant")
    assert list(spread.index) == ["cross", "isolated"]
    for base in ("cross", "isolated"):
        rows = summary[summary["variant"].str.startswith(base + " [")]
        assert len(rows) == 3 and spread.loc[base, "paths"] == 3
        for col in ("liquidation_rate", "bad_debt", "mean_loss_per_account"):
            assert spread.loc[base, f"{col}_mean"] == pytest.approx(rows[col].mean(), rel=1e-12)
            assert spread.loc[base, f"{col}_median"] == pytest.approx(rows[col].median(), rel=1e-12)
            assert spread.loc[base, f"{col}_worst"] == rows[col].max()
            worst = rows.loc[rows[col].idxmax(), "variant"]
            assert worst.endswith(f"[{spread.loc[base, f'{col}_worst_path']}]")
    page = (out / "report.html").read_text()
    assert "Spread over paths" in page and (out / "spread.png").stat().st_size > 0
    assert "synthetic GBM, 3 paths" in page


def test_a_bad_path_is_found_before_anything_runs(tmp_path):
    """Every path is built before the run: a wick beyond the bars fails naming the key and the
    first path, and no folder is written."""
    from riskcore.scenarios import run_to_folder

    text = PATHS.replace("at = 20", "at = 400")
    out = tmp_path / "out"
    with pytest.raises(ScenarioError) as err:
        run_to_folder(write(tmp_path, text), out)
    assert "path" in str(err.value) and "path.seed=4" in str(err.value), str(err.value)
    assert not out.exists()
