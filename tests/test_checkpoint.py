"""Checkpoints: a run killed between bars resumes from its checkpoint file with the same
Result as an uninterrupted run (riskcore.kernels.checkpoint)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmarks import cases
from riskcore import simulate
from riskcore.inputs import InputError
from riskcore.kernels.checkpoint import CheckpointError


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def inputs():
    """30 accounts on 3 contracts through 120 bars with liquidations, funding every 8 bars
    and a tape of orders, margin moves, setting changes and transfers."""
    case = dataclasses.replace(cases.small(cases.CASES["main_1M_x_1440"]), bars=120)
    table, paths = cases.make_table(case), cases.make_paths(case)
    symbols = list(paths)
    times = paths[symbols[0]]["timestamp"]
    funding = {s: pd.DataFrame({"timestamp": times[::8].to_numpy(), "rate": 0.0001 * (1 + i)})
               for i, s in enumerate(symbols)}
    t = lambda bar: times.iloc[bar]  # noqa: E731
    c0, c1 = symbols[0], symbols[1]
    tape = [
        {"timestamp": t(5), "action": "deposit", "account": 1, "amount": 500.0},
        {"timestamp": t(9), "action": "market", "account": 2, "contract": c0, "side": "buy", "qty": 0.5},
        {"timestamp": t(9), "action": "limit", "account": 3, "contract": c1, "side": "sell", "qty": 0.2,
         "price": float(paths[c1]["close"].iloc[9]) * 1.002, "tag": "x"},
        {"timestamp": t(33), "action": "set_leverage", "account": 4, "contract": c1, "leverage": 5.0},
        {"timestamp": t(33), "action": "withdraw", "account": 1, "amount": 100.0},
        {"timestamp": t(64), "action": "cancel", "tag": "x"},
        {"timestamp": t(64), "action": "add_margin", "account": 5, "contract": c0, "amount": 50.0},
        {"timestamp": t(90), "action": "market", "account": 6, "contract": c0, "side": "sell", "qty": 0.3},
    ]
    params = dict(cases.params(case), funding=funding, tape=tape)
    return table, paths, params


def kill_at(bar: int):
    def progress(done: int) -> None:
        if done >= bar:
            raise Killed(done)
    return progress


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    pd.testing.assert_frame_equal(a.steps, b.steps, check_exact=True)
    for name, frame in a.final.frames().items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), b.final.frames()[name].reset_index(drop=True),
                                      check_exact=True)
    assert a.ledger == b.ledger


@pytest.mark.parametrize("stop", [1, 9, 33, 65, 119])
def test_killed_run_resumes_with_the_same_result(inputs, tmp_path, stop):
    table, paths, params = inputs
    whole = simulate(table, paths, **params)
    assert (whole.events["kind"] == "liquidation").any() and (whole.events["kind"] == "action").any()
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed) as killed:
        simulate(table, paths, checkpoint=ckpt, checkpoint_every=0, progress=kill_at(stop), **params)
    assert ckpt.is_file()
    seen = []
    resumed = simulate(table, paths, checkpoint=ckpt, checkpoint_every=0, progress=seen.append, **params)
    assert resumed.timings["resumed_from_bar"] == seen[0] > 0  # it did not start over
    # it resumed from the last checkpoint up to where it was killed (one after every call of the
    # kernel but the last), and finished
    assert seen[0] <= killed.value.args[0] and killed.value.args[0] >= stop and seen[-1] == 120
    assert_same(resumed, whole)
    assert not ckpt.exists()  # a finished run's checkpoint is removed
    assert list(tmp_path.iterdir()) == []  # and nothing else was left behind


def test_killed_twice(inputs, tmp_path):
    table, paths, params = inputs
    ckpt = tmp_path / "run.ckpt"
    for stop in (20, 70):
        with pytest.raises(Killed):
            simulate(table, paths, checkpoint=ckpt, checkpoint_every=0, progress=kill_at(stop), **params)
    resumed = simulate(table, paths, checkpoint=ckpt, **params)
    assert resumed.timings["resumed_from_bar"] >= 20
    assert_same(resumed, simulate(table, paths, **params))


def test_another_runs_checkpoint_is_refused_and_kept(inputs, tmp_path):
    table, paths, params = inputs
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        simulate(table, paths, checkpoint=ckpt, checkpoint_every=0, progress=kill_at(30), **params)
    before = ckpt.read_bytes()
    other = dict(params, insurance_fund=params["insurance_fund"] + 1.0)
    with pytest.raises(CheckpointError, match="belongs to another run"):
        simulate(table, paths, checkpoint=ckpt, **other)
    assert ckpt.read_bytes() == before


def test_a_file_that_is_not_a_checkpoint_is_refused_and_kept(inputs, tmp_path):
    table, paths, params = inputs
    for content in (b"my notes", np.array([1, 2]).tobytes()):
        path = tmp_path / "notes.txt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a riskcore checkpoint"):
            simulate(table, paths, checkpoint=path, **params)
        assert path.read_bytes() == content
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.arange(3))
    with pytest.raises(CheckpointError, match="not a riskcore checkpoint"):
        simulate(table, paths, checkpoint=npz, **params)
    assert npz.exists()


def test_bad_checkpoint_arguments(inputs, tmp_path):
    table, paths, params = inputs
    with pytest.raises(InputError, match="is a folder"):
        simulate(table, paths, checkpoint=tmp_path, **params)
    with pytest.raises(InputError, match="does not exist"):
        simulate(table, paths, checkpoint=tmp_path / "no" / "run.ckpt", **params)
    with pytest.raises(InputError, match="numba engine"):
        simulate(table, paths, checkpoint=tmp_path / "run.ckpt", engine="reference", **params)
    with pytest.raises(InputError, match="checkpoint_every"):
        simulate(table, paths, checkpoint=tmp_path / "run.ckpt", checkpoint_every=-1, **params)
    with pytest.raises(InputError, match="file path"):
        simulate(table, paths, checkpoint=3, **params)


def test_riskcore_run_resumes_a_killed_variant(tmp_path, monkeypatch, capsys):
    """riskcore run --checkpoint DIR: killed in its second variant, the same command picks
    that variant up from its checkpoint and writes the outputs a run never stopped writes."""
    import riskcore.cli as cli
    import riskcore.scenarios as scenarios

    scenario = tmp_path / "two.toml"
    scenario.write_text(
        'name = "two"\nseed = 4\n[market]\nliquidation_fee_rate = 0.0125\ninsurance_fund = 1000.0\n'
        '[market.contracts.BTCUSDT]\nbrackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }\n'
        'start_price = 60000.0\n[path]\nkind = "gbm"\nn_steps = 150\nvol = 1.5\n'
        '[[path.wicks]]\ncontract = "BTCUSDT"\nat = 100\ndepth = -0.15\n'
        '[population]\naccounts = 300\n[[variants]]\nname = "cross"\npopulation = { isolated_share = 0.0 }\n'
        '[[variants]]\nname = "isolated"\npopulation = { isolated_share = 1.0 }\n')
    assert cli.main(["run", str(scenario), "--out", str(tmp_path / "whole"), "--no-progress"]) == 0
    real, calls = scenarios._simulate, []

    def killing(scenario_, cfg, table, paths, funding, tick, checkpoint=None):
        calls.append(checkpoint)
        if len(calls) == 2:  # the second variant: killed at bar 120, after a checkpoint at every chunk
            monkeypatch.setattr(scenarios, "CHECKPOINT_EVERY", 0.0)

            def tick_(bars):
                if bars >= 120:
                    raise KeyboardInterrupt
            return real(scenario_, cfg, table, paths, funding, tick_, checkpoint)
        return real(scenario_, cfg, table, paths, funding, tick, checkpoint)

    monkeypatch.setattr(scenarios, "_simulate", killing)
    ckpts = tmp_path / "ckpt"
    args = ["run", str(scenario), "--out", str(tmp_path / "out"), "--no-progress", "--checkpoint", str(ckpts)]
    capsys.readouterr()
    assert cli.main(args) == 130
    assert "the same command resumes it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    left = list(ckpts.iterdir())
    assert len(left) == 1 and left[0] == scenarios.checkpoint_file(ckpts, "isolated")
    monkeypatch.setattr(scenarios, "_simulate", real)
    resumed = []
    import sys

    module = sys.modules["riskcore.simulate"]  # the module (riskcore.simulate is also the function's name)
    real_sim = module.simulate

    def watching(*a, **k):
        result = real_sim(*a, **k)
        resumed.append(result.timings.get("resumed_from_bar"))
        return result

    monkeypatch.setattr(module, "simulate", watching)
    assert cli.main(args) == 0
    assert resumed[0] == 0 and 100 <= resumed[1] <= 120  # the first variant ran again, the second resumed
    assert list(ckpts.iterdir()) == []
    for name in ("events.parquet", "steps.parquet", "final_positions.parquet", "final_accounts.parquet",
                 "outcomes.parquet", "summary.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / name),
                                      pd.read_parquet(tmp_path / "whole" / name), check_exact=True)


def test_riskcore_run_checkpoint_must_be_a_folder(tmp_path, capsys):
    import riskcore.cli as cli

    where = tmp_path / "file"
    where.write_text("mine")
    assert cli.main(["run", "--out", str(tmp_path / "out"), "--checkpoint", str(where)]) == 2
    assert "is a file" in capsys.readouterr().err and where.read_text() == "mine"
