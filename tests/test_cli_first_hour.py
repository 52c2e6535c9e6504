"""A new user's first hour (issue 14): what `riskcore` shows and how it fails.

The terminal summary, the scenario's description, honest times, help without markup, an
exit code per kind of failure, data paths resolved as documented, the keys' reference in
sync with the schema, and `riskcore bench --compare` on hand-made JSON files (no timing
is asserted)."""
from __future__ import annotations

import json
import re
import shutil
import textwrap
import urllib.error
from pathlib import Path

import pandas as pd
import pytest

from riskcore import exit_codes
from riskcore.cli import main, summary_text

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_BARS = ROOT / "tests" / "fixtures" / "io" / "binance_klines_header.csv"


# ------------------------------------------------------------------------ help and exit codes
def test_help_is_plain_text_and_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out and ":mod:" not in out
    assert "risk simulator" in out
    codes = out[out.index("exit codes:"):]
    for code in exit_codes.EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+\S", codes, flags=re.M), code
    assert len(set(exit_codes.EXIT_CODES)) == 7  # 0 1 2 3 4 5 130: one per kind of outcome


def test_docs_list_the_same_exit_codes():
    from riskcore.scenario_keys import DOC, EXIT_BEGIN, EXIT_END, documented

    assert documented(DOC.read_text(), EXIT_BEGIN, EXIT_END) == exit_codes.markdown()


def test_network_failure_has_its_own_exit_code(monkeypatch, tmp_path, capsys):
    import riskcore.io.fetch as fetch_mod

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", offline)
    monkeypatch.setattr(fetch_mod.time, "sleep", lambda s: None)
    code = main(["data", "fetch", "BTCUSDT", "--start", "2024-03-01", "--cache-dir", str(tmp_path)])
    assert code == exit_codes.NETWORK == 4
    err = capsys.readouterr().err
    assert err.startswith("riskcore: network error:") and "name resolution" in err and "2024-03-01" in err
    # a malformed request is still bad input, not a network failure
    assert main(["data", "fetch", "BTCUSDT", "--start", "2024-13-01", "--cache-dir", str(tmp_path)]) == 2


def test_server_errors_that_outlast_the_retries_are_network_failures(monkeypatch, tmp_path):
    import riskcore.io.fetch as fetch_mod

    def failing(request, timeout=None):
        raise urllib.error.HTTPError(request.full_url, 503, "Service Unavailable", {}, None)

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", failing)
    monkeypatch.setattr(fetch_mod.time, "sleep", lambda s: None)
    assert main(["data", "fetch", "BTCUSDT", "--start", "2024-03-01", "--cache-dir", str(tmp_path)]) == 4


# ------------------------------------------------------------------------- the run's summary
def summary_frame(names, scale=1.0):
    rows = []
    for i, _ in enumerate(names):
        rows.append({"accounts": 20_000, "positions": 31_615, "accounts_liquidated": 5_123 + i,
                     "liquidation_rate": (5_123 + i) / 20_000, "liquidations": 7_001, "liquidated_notional":
                     31_607_836.4 * scale, "bad_debt": 1234.5, "insurance_paid": 1000.0, "adl_recovered": 234.5,
                     "socialised_loss": 0.0, "adl_events": 3, "topups": 5_449, "topup_amount": 2_287_164.2,
                     "mean_loss_per_account": 481.7712, "insurance_fund_start": 20_000.0,
                     "final_insurance_fund": 31_610_000.0, "accounts_saved_by_auto_add": 1_331})
    return pd.DataFrame(rows, index=pd.Index(names, name="variant"))


def test_summary_is_narrow_readable_and_rounded():
    text = summary_text(summary_frame(["cross", "isolated", "isolated + auto-add"]))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert not re.search(r"\de[+-]\d", text)  # no scientific notation
    assert "31,607,836" in text and "31,610,000" in text and "20,000" in text  # money: whole, with separators
    assert "5,123 (25.6%)" in text  # accounts liquidated with the rate as a percentage
    assert "481.77" in text
    assert lines[0].split()[-3:] == ["isolated", "+", "auto-add"] and "cross" in lines[0]
    assert len(lines) == 17  # a header and one line per metric


def test_many_variants_are_split_into_blocks_that_fit():
    names = [f"cross [mmr_factor={f}, max_leverage_cap={c}]" for f in (1.0, 1.5, 2.0) for c in (20, 50)]
    text = summary_text(summary_frame(names, scale=1e6))
    assert max(len(line) for line in text.splitlines()) <= 100
    for name in names:
        assert text.count(name) == 1
    assert text.count("accounts liquidated") >= 3  # several blocks, each with its labels


def test_a_sweep_of_many_variants_shows_the_first_and_says_where_the_rest_are():
    from riskcore.cli import variant_names

    names = [f"{m} [path.seed={k}]" for k in range(1, 101) for m in ("cross", "isolated", "isolated + auto-add")]
    text = summary_text(summary_frame(names))
    assert all(text.count(n) == 1 for n in names[:12]) and not any(n in text for n in names[12:])
    assert text.rstrip().endswith("... and 288 more variants: every variant is in summary.parquet and report.html "
                                  "(and spread.parquet for a sweep over paths)")
    assert variant_names(names) == ", ".join(names[:6]) + " and 294 more"
    assert variant_names(names[:7]) == ", ".join(names[:7])  # one more name is shorter than the count
    assert summary_text(summary_frame(names[:12])) == summary_text(summary_frame(names[:12]), most=100)


def test_a_sweeps_spread_on_the_terminal():
    from riskcore.cli import spread_text

    spread = pd.DataFrame({
        "variant": ["cross", "isolated"], "paths": [8, 8],
        "liquidation_rate_mean": [0.27555, 0.48065], "liquidation_rate_median": [0.28105, 0.48225],
        "liquidation_rate_worst": [0.322, 0.5434], "liquidation_rate_worst_path": ["path.seed=5", "path.seed=2"],
        "bad_debt_mean": [0.0, 1234.5], "bad_debt_worst": [0.0, 9876.4],
        "bad_debt_worst_path": ["path.seed=1", "path.seed=7"],
        "mean_loss_per_account_mean": [209.086, 347.4505], "mean_loss_per_account_median": [185.668, 274.3607],
        "mean_loss_per_account_worst": [373.4132, 613.0412],
        "mean_loss_per_account_worst_path": ["path.seed=2", "path.seed=4"]})
    lines = spread_text(spread).splitlines()
    assert max(len(line) for line in lines) <= 100
    row = {line[:33].strip(): line[33:].split("   ") for line in lines}
    cells = {label: [c.strip() for c in parts if c.strip()] for label, parts in row.items()}
    assert cells["(over the paths; quote currency)"] == ["cross", "isolated"]
    assert cells["paths"] == ["8", "8"]
    assert cells["liquidation rate: mean"] == ["27.6%", "48.1%"]
    worst = [re.split(r"\s{2,}", line.strip()) for line in lines if line.startswith("  worst (path)")]
    assert worst == [["worst (path)", "32.2% (path.seed=5)", "54.3% (path.seed=2)"],
                     ["worst (path)", "0", "9,876 (path.seed=7)"],  # a worst of 0 names no path
                     ["worst (path)", "373.41 (path.seed=2)", "613.04 (path.seed=4)"]]
    assert all(len(line) == len(lines[0]) for line in lines)  # right-aligned columns


SMALL = textwrap.dedent("""
    name = "small"
    description = "A tiny study for the CLI tests"
    seed = 3

    [market]
    liquidation_fee_rate = 0.01
    insurance_fund = 1000.0

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }
    start_price = 60000.0

    [path]
    kind = "gbm"
    n_steps = 30

    [population]
    accounts = 20
    positions_per_account = 1

    [[variants]]
    name = "cross"
    population = { isolated_share = 0.0 }
""")


def test_run_shows_the_description_the_summary_and_honest_times(tmp_path, capsys):
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("riskcore: running small") and lines[1].strip() == "A tiny study for the CLI tests"
    assert max(len(line) for line in lines if not line.startswith(("riskcore: running", "wrote", "time:"))) <= 100
    assert not re.search(r"\de[+-]\d", out)
    found = re.search(r"time: ([\d.]+) s in all \((.*); the kernels' own time ([\d.]+) s\)", out)
    assert found, out
    parts = [float(x) for x in re.findall(r"([\d.]+) s", found.group(2))]
    assert "other" in found.group(2) and "simulate" in found.group(2)
    assert abs(sum(parts) - float(found.group(1))) <= 0.05 * len(parts) + 0.05  # the parts add up to the total


# ------------------------------------------------------------------------------- data paths
FILE_SCENARIO = textwrap.dedent("""
    name = "from-file"

    [market]
    liquidation_fee_rate = 0.01

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }

    [path]
    kind = "file"
    [path.files]
    BTCUSDT = "{file}"

    [population]
    accounts = 10
    positions_per_account = 1
""")


def test_a_data_file_is_found_by_name_in_the_data_search_path(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE_BARS, data / "bars.csv")
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    scenario = elsewhere / "s.toml"
    scenario.write_text(FILE_SCENARIO.replace("{file}", "../../shared/data/bars.csv"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RISKCORE_DATA_PATH", str(data))
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "prices: bars.csv" in capsys.readouterr().out


def test_a_data_file_found_from_the_current_folder(tmp_path, monkeypatch):
    from riskcore.scenarios import build_paths, load_scenario

    shutil.copy(FIXTURE_BARS, tmp_path / "bars.csv")
    (tmp_path / "sub").mkdir()
    scenario = tmp_path / "sub" / "s.toml"
    scenario.write_text(FILE_SCENARIO.replace("{file}", "bars.csv"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RISKCORE_DATA_PATH", raising=False)
    s = load_scenario(scenario)
    paths, source = build_paths(s, s.variants[0][1])
    assert len(paths["BTCUSDT"]) == 6 and source == "bars.csv"


def test_a_missing_data_file_names_every_place_looked(tmp_path, monkeypatch, capsys):
    search = tmp_path / "search"
    search.mkdir()
    (tmp_path / "elsewhere").mkdir()
    scenario = tmp_path / "elsewhere" / "s.toml"
    scenario.write_text(FILE_SCENARIO.replace("{file}", "../../shared/data/nowhere-bars.csv"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RISKCORE_DATA_PATH", str(search))
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "path.files.BTCUSDT" in err and "nowhere-bars.csv" in err
    assert str((tmp_path / "elsewhere" / "../../shared/data/nowhere-bars.csv").resolve()) in err  # from the file
    assert str((tmp_path / "../shared/data/nowhere-bars.csv").resolve()) in err  # from the current folder
    assert str(search / "nowhere-bars.csv") in err  # RISKCORE_DATA_PATH
    # the shared data, as its real path (../shared may be a link, as in CI)
    assert str((ROOT.parent / "shared" / "data").resolve() / "nowhere-bars.csv") in err
    shared = (ROOT.parent / "shared" / "data").is_dir()
    assert ("holds no file of that name" if shared else "is not on this machine") in err
    assert "not present on this machine" not in err


def test_the_docs_minimal_scenario_runs_wherever_it_is_saved(tmp_path, monkeypatch):
    from riskcore.scenarios import MissingDataError, build_paths, load_scenario

    text = (ROOT / "docs" / "scenarios.md").read_text()
    block = re.search(r"A minimal one:\s*```toml\n(.*?)```", text, flags=re.S).group(1)
    scenario = tmp_path / "mine" / "oct10.toml"
    scenario.parent.mkdir()
    scenario.write_text(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RISKCORE_DATA_PATH", raising=False)
    s = load_scenario(scenario)
    if not (ROOT.parent / "shared" / "data").is_dir():
        with pytest.raises(MissingDataError, match="is not on this machine"):
            build_paths(s, s.variants[0][1])
        return
    paths, _ = build_paths(s, s.variants[0][1])
    assert len(paths["BTCUSDT"]) > 100


# ------------------------------------------------------------------------ the keys' reference
def test_the_keys_reference_in_the_docs_is_generated_from_the_schema():
    from riskcore.scenario_keys import DOC, KEY_DOCS, documented, markdown, schema_keys

    assert set(KEY_DOCS) == schema_keys(), "every key of the schema has one entry, and no other key"
    assert documented(DOC.read_text()) == markdown(), \
        "docs/scenarios.md is out of date: run python -m riskcore.scenario_keys --write"


def test_the_reference_names_every_key_range_and_choice():
    from riskcore import scenarios as sc
    from riskcore.scenario_keys import markdown

    text = markdown()
    for table in (sc.TOP_KEYS, sc.MARKET_KEYS, sc.PATH_KEYS, sc.POPULATION_KEYS, sc.ENGINE_KEYS, sc.FUNDING_KEYS):
        for key in table:
            assert f"| `{key}` |" in text, key
    for key in sc.GRID_KEYS:
        assert f"`{key}`" in text
    for words in sc.CHOICES.values():
        assert ", ".join(f'"{w}"' for w in words) in text
    assert "a fraction from 0 to below 0.5 (e.g. 0.0125)" in text  # a range of RANGES
    assert "| 0.55 |" in text  # long_share's default, read from PopulationSpec


def test_keys_command_prints_the_reference(capsys):
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    assert "liquidation_fee_rate" in out and "population.isolated_share" in out


# ---------------------------------------------------------------------- bench --compare
def bench_json(path: Path, **overrides) -> Path:
    data = {
        "schema": 1,
        "machine": {"cpu_model": "Test CPU", "cpus": 2, "memory_bytes": 24 * 2**30, "os": "Linux",
                    "python": "3.11.7", "numba": "0.61.0", "numpy": "2.2.0", "threads": 2},
        "compile": {"cold_compile": {"warmup_seconds": 60.0}, "cached_start": {"warmup_seconds": 0.8}},
        "cases": {
            "main_20k_x_360": {"kind": "simulate", "accounts": 20_000, "positions": 31_615, "steps": 360,
                               "contracts": 4, "simulate_seconds": 1.0, "kernel_seconds": 0.8,
                               "simulate_peak_over_inputs": 3.0},
            "run_20k_x1": {"kind": "run", "accounts": 20_000, "variants": 1, "wall_seconds": 5.0,
                           "kernel_seconds": 1.0, "peak_rss_bytes": 1_000_000_000},
        },
    }
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(json.dumps(data))
    return path


def test_bench_compare_passes_within_the_tolerance(tmp_path, capsys):
    base = bench_json(tmp_path / "base.json")
    new = bench_json(tmp_path / "new.json", cases__main_20k_x_360__simulate_seconds=1.08)
    assert main(["bench", "--compare", str(base), "--results", str(new)]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "+8.0%" in out
    assert max(len(line) for line in out.splitlines()[1:]) <= 100


def test_bench_compare_names_the_case_and_metric_of_a_regression(tmp_path, capsys):
    base = bench_json(tmp_path / "base.json")
    new = bench_json(tmp_path / "new.json", cases__main_20k_x_360__kernel_seconds=1.2,
                     cases__run_20k_x1__peak_rss_bytes=1_500_000_000)
    assert main(["bench", "--compare", str(base), "--results", str(new)]) == exit_codes.REGRESSION == 5
    out = capsys.readouterr().out
    regressions = [line for line in out.splitlines() if line.startswith("REGRESSION:")]
    assert len(regressions) == 2
    assert "main_20k_x_360: kernel_seconds 0.80 s -> 1.20 s (+50.0%" in regressions[0]
    assert "run_20k_x1: peak_rss_bytes" in regressions[1]
    # a wider tolerance lets both through
    assert main(["bench", "--compare", str(base), "--results", str(new), "--tolerance", "60%"]) == 0
    assert main(["bench", "--compare", str(base), "--results", str(new), "--tolerance", "0.6"]) == 0


def test_bench_compare_ignores_noise_below_min_seconds_and_faster_runs(tmp_path, capsys):
    base = bench_json(tmp_path / "base.json", compile__cached_start__warmup_seconds=0.02)
    new = bench_json(tmp_path / "new.json", compile__cached_start__warmup_seconds=0.04,  # +100%, but 0.02 s
                     cases__main_20k_x_360__simulate_seconds=0.5)
    assert main(["bench", "--compare", str(base), "--results", str(new)]) == 0
    assert "-50.0%" in capsys.readouterr().out


def test_bench_compare_a_case_of_another_size_is_not_compared(tmp_path, capsys):
    base = bench_json(tmp_path / "base.json")
    new = bench_json(tmp_path / "new.json", cases__main_20k_x_360__accounts=40_000,
                     cases__main_20k_x_360__simulate_seconds=9.0, machine__cpu_model="Other CPU",
                     cases__run_20k_x1__other_cpus=1.0)
    assert main(["bench", "--compare", str(base), "--results", str(new)]) == 0
    out = capsys.readouterr().out
    assert "in the new results, other processes kept the machine busy during run_20k_x1" in out
    assert "not compared: main_20k_x_360: not the same case (accounts 20000 -> 40000)" in out
    assert "the machines differ (cpu_model: Test CPU -> Other CPU)" in out


@pytest.mark.parametrize("argv, names", [
    (["--results", "{new}"], ["--results", "--compare"]),
    (["--compare", "{dir}/missing.json", "--results", "{new}"], ["missing.json", "no such benchmark file"]),
    (["--compare", "{bad}", "--results", "{new}"], ["bad.json", "not a benchmark JSON"]),
    (["--compare", "{new}", "--results", "{new}", "--tolerance", "lots"], ["--tolerance", "lots"]),
])
def test_bench_compare_bad_input(tmp_path, capsys, argv, names):
    new = bench_json(tmp_path / "new.json")
    (tmp_path / "bad.json").write_text("{not json")
    argv = [a.format(new=new, dir=tmp_path, bad=tmp_path / "bad.json") for a in argv]
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err


def test_the_bench_json_layout_is_documented():
    from riskcore.bench_compare import METRICS, machine_info

    text = (ROOT / "docs" / "kernel.md").read_text()
    section = text[text.index("## The benchmark JSON"):]
    for key in machine_info():
        assert f"`{key}`" in section, key
    for metrics in METRICS.values():
        for metric, _ in metrics:
            assert f"`{metric}`" in section, metric
