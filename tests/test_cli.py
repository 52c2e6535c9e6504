"""The riskcore command: the README's main job, the bracket listing, warm-up and benchmarks."""
import json
import re

import pytest

from riskcore.cli import main


def test_example_prints_binance_figures_and_succeeds(capsys):
    assert main(["example"]) == 0
    out = capsys.readouterr().out
    # Binance's published liquidation prices (MARGIN_RULES.md section 4) appear twice per row:
    # riskcore's figure and the published one, equal to the cent.
    for published in ("26,316.89", "1,153.26", "18,778.73", "1,114.78"):
        assert len(re.findall(re.escape(published), out)) == 2, published


def test_brackets_lists_and_prints_tables(capsys):
    assert main(["brackets"]) == 0
    listing = capsys.readouterr().out
    assert "BTCUSDT" in listing and "ETHUSDT" in listing
    assert main(["brackets", "BTCUSDT", "--date", "2024-10-31"]) == 0
    table = capsys.readouterr().out
    assert "2024-05-30" in table  # the table in effect on that date
    assert "600,000" in table and "0.0065" in table  # tier 3 of the Oct-2024 BTCUSDT table


def test_brackets_unknown_symbol_is_a_clear_error(capsys):
    assert main(["brackets", "NOPEUSDT"]) == 2
    err = capsys.readouterr().err
    assert "NOPEUSDT" in err and "BTCUSDT" in err


def test_warmup_compiles_or_loads_the_kernels(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"kernels ready in \d+\.\d s", out), out


def test_bench_outside_a_clone_is_a_clear_error(capsys, monkeypatch, tmp_path):
    import riskcore.cli as cli

    monkeypatch.setattr(cli, "__file__", str(tmp_path / "riskcore" / "cli.py"))  # an install without benchmarks/
    assert main(["bench", "--quick"]) == 2
    assert "benchmarks/run.py" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_quick_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert {"main_20k_x_360", "scale_accounts_5k", "scale_steps_90", "run_20k_x1"} <= set(results["cases"])
    main_case = results["cases"]["main_20k_x_360"]
    assert main_case["position_steps_per_s"] > 0 and main_case["dense_same_book"]
    assert results["compile"]["cold_compile"]["warmup_seconds"] > 0


def test_version(capsys):
    import riskcore

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"riskcore {riskcore.__version__}"
