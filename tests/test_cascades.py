"""Cascades in scenarios: impact models in TOML, the variants they make, `riskcore run`'s
Cascades section, and the shipped 2025-10-10 cascade study (docs/cascades.md)."""
from __future__ import annotations


import pandas as pd
import pytest
from test_scenarios import SHARED_DATA, SMALL, write

from riskcore.cli import main
from riskcore.impact import Impact
from riskcore.scenarios import ScenarioError, impact_models, load_scenario, run_to_folder, scenarios_dir

IMPACT = """
[market.contracts.BTCUSDT.impact]
sigma = 0.05
daily_volume = 2e5
permanent = 0.5
half_life = 3
"""
CASCADE = SMALL.replace('start_price = 60000.0\n', 'start_price = 60000.0\n' + IMPACT).replace(
    'name = "isolated"\npopulation = { isolated_share = 1.0 }',
    'name = "isolated"\npopulation = { isolated_share = 1.0 }\n\n[grid]\n"market.feedback" = [false, true]')
assert "[grid]" in CASCADE


def test_impact_tables_and_switches_make_the_variants(tmp_path):
    text = SMALL.replace("start_price = 60000.0\n", "start_price = 60000.0\n" + IMPACT)
    text = text.replace('name = "cross"\npopulation = { isolated_share = 0.0 }',
                        'name = "cross"\npopulation = { isolated_share = 0.0 }\nmarket = { impact = false }')
    assert "impact = false" in text
    scenario = load_scenario(write(tmp_path, text))
    cross, isolated = (cfg for _, cfg in scenario.variants)
    assert impact_models(cross) == {}
    assert impact_models(isolated) == {"BTCUSDT": Impact(sigma=0.05, daily_volume=2e5, permanent=0.5, half_life=3)}
    # the settings in effect are written out, so that the report can tell the variants apart
    assert (cross["market"]["impact"], cross["market"]["feedback"]) == (False, False)
    assert (isolated["market"]["impact"], isolated["market"]["feedback"]) == (True, True)


def test_market_feedback_overrides_every_table(tmp_path):
    scenario = load_scenario(write(tmp_path, CASCADE))
    names = [n for n, _ in scenario.variants]
    assert names == ["cross [feedback=False]", "cross [feedback=True]", "isolated [feedback=False]",
                     "isolated [feedback=True]"]
    assert [impact_models(cfg)["BTCUSDT"].feedback for _, cfg in scenario.variants] == [False, True, False, True]


@pytest.mark.parametrize("table, key, why", [
    ("sigma = 0.05\n", "market.contracts.BTCUSDT.impact", "missing ['daily_volume']"),
    ("sigma = 0.05\ndaily_volume = 1e6\ndepth_table = 2\n", "market.contracts.BTCUSDT.impact.depth_table",
     "unknown key"),
    ("depth = 2\n", "market.contracts.BTCUSDT.impact.depth", "expected a list of [distance, notional] levels"),
    ("depth = [[0.01, 1e6], [0.005, 2e6]]\n", "market.contracts.BTCUSDT.impact", "depth[1] = [0.005, 2000000.0]: "
     "distances and notionals must both increase"),
    ("sigma = 0.05\ndepth = [[0.01, 1e6]]\n", "market.contracts.BTCUSDT.impact", "either a depth table or sigma"),
    ("sigma = 0.05\ndaily_volume = -1\n", "market.contracts.BTCUSDT.impact", "daily_volume must be a positive"),
    ("sigma = 0.05\ndaily_volume = 1e6\npermanent = 1.5\n", "market.contracts.BTCUSDT.impact",
     "permanent must be a share from 0 to 1"),
    ("sigma = 0.05\ndaily_volume = 1e6\nfeedback = 1\n", "market.contracts.BTCUSDT.impact.feedback",
     "expected true or false"),
])
def test_bad_impact_tables_name_the_file_and_key(tmp_path, table, key, why):
    text = SMALL.replace("start_price = 60000.0\n", "start_price = 60000.0\n[market.contracts.BTCUSDT.impact]\n"
                         + table)
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    message = str(err.value)
    assert "s.toml" in message and key in message and why in message, message


@pytest.mark.parametrize("setting", ["feedback = true", "impact = true"])
def test_switches_without_an_impact_table_are_refused(tmp_path, setting):
    text = SMALL.replace("insurance_fund = 1000.0\n", f"insurance_fund = 1000.0\n{setting}\n")
    with pytest.raises(ScenarioError, match=r"market\.(feedback|impact): is true .* no contract has an impact "
                                            r"model"):
        load_scenario(write(tmp_path, text))


def test_bad_cascade_rounds_in_a_scenario(tmp_path):
    text = SMALL.replace("insurance_fund = 1000.0\n", "insurance_fund = 1000.0\ncascade_rounds = 0\n")
    with pytest.raises(ScenarioError, match="market.cascade_rounds: must be a number of rounds from 1 to 1000"):
        load_scenario(write(tmp_path, text))


def test_a_cascade_scenario_runs_with_its_section(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, CASCADE)), "--out", str(out), "--no-progress"]) == 0
    html = (out / "report.html").read_text()
    assert 'id="cascades"' in html and 'id="cascade"' in html and 'href="#cascades"' in html
    events = pd.read_parquet(out / "events.parquet")
    assert "round" in events.columns


def test_a_report_without_impact_has_no_cascade_section(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SMALL)), "--out", str(out), "--no-progress"]) == 0
    html = (out / "report.html").read_text()
    assert 'id="cascades"' not in html and "cascades" not in html.split("<nav")[1].split("</nav>")[0]


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not beside the project")
    scenario = load_scenario(scenarios_dir() / "cascade-2025-10-10.toml")
    out, summary, _, _ = run_to_folder(scenario, tmp_path_factory.mktemp("cascade") / "out")
    return scenario, out, summary


def test_the_2025_10_10_cascade_shows_bad_debt_adl_and_amplification(crash):
    """Issue 13's bar: with the documented parameters the crash shows bad debt and ADL, and
    feedback amplifies the liquidations; without impact there is neither."""
    _, out, summary = crash
    off, fills, feedback = summary.loc["no impact"], summary.loc["impact, no feedback"], summary.loc["impact + feedback"]
    assert off["bad_debt"] == 0 and off["adl_events"] == 0
    for row in (fills, feedback):
        assert row["bad_debt"] > 0 and row["adl_recovered"] > 0 and row["adl_events"] > 0
    assert feedback["liquidated_notional"] > 1.2 * off["liquidated_notional"]
    assert feedback["accounts_liquidated"] > off["accounts_liquidated"]
    events = pd.read_parquet(out / "events.parquet")
    rounds = events.loc[events["variant"] == "impact + feedback", "round"]
    assert rounds.max() > 1
    assert (events.loc[events["variant"] != "impact + feedback", "round"] == 0).all()


def test_the_no_impact_variant_is_the_run_without_impact_tables(crash, tmp_path):
    """Impact off gives the numbers riskcore gave before impact existed: the same scenario
    with the impact tables removed from the file runs the same events."""
    scenario, out, _ = crash
    text = (scenarios_dir() / "cascade-2025-10-10.toml").read_text()
    start = text.index("[market.contracts.BTCUSDT.impact]")
    text = text[:start] + text[text.index("[path]"):]
    text = text[:text.index("[[variants]]")] + '[[variants]]\nname = "no impact"\n'
    text = text.replace('"../../shared/data/', f'"{SHARED_DATA}/')
    plain = load_scenario(write(tmp_path, text))
    got, _, _, _ = run_to_folder(plain, tmp_path / "plain")
    a = pd.read_parquet(out / "events.parquet")
    a = a[a["variant"] == "no impact"].reset_index(drop=True)
    b = pd.read_parquet(got / "events.parquet")
    assert len(a) > 1000
    pd.testing.assert_frame_equal(a, b, check_categorical=False, check_dtype=False)


def test_the_adl_section_compares_the_policies(tmp_path):
    """A grid over market.adl_policy with an empty fund: the report's Auto-deleveraging section
    gives each variant's policy and the numbers of riskcore.studies.adl_outcomes."""
    from riskcore.report import ADL_COLUMNS

    text = CASCADE.replace("insurance_fund = 1000.0", "insurance_fund = 0.0").replace(
        '"market.feedback" = [false, true]', '"market.adl_policy" = ["binance", "pro-rata"]')
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    summary = pd.read_parquet(out / "summary.parquet")
    html = (out / "report.html").read_text()
    if not (summary["adl_events"] > 0).any():
        assert 'id="adl"' not in html
        pytest.skip("this synthetic path deleveraged nobody")
    assert 'id="adl"' in html and 'id="adl-table"' in html and 'href="#adl"' in html
    section = html[html.index('id="adl"'):html.index("</section>", html.index('id="adl"'))]
    for col in ADL_COLUMNS:
        assert f">{col}<" in section, col
    assert ">pro-rata<" in section and ">binance<" in section


def test_a_report_without_adl_has_no_adl_section(tmp_path):
    out = tmp_path / "out"
    text = SMALL.replace("insurance_fund = 1000.0", "insurance_fund = 1e12")
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    assert 'id="adl"' not in (out / "report.html").read_text()
