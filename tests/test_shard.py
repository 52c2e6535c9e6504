"""Sharding one book (riskcore.shard): the same Result as one simulate() of the whole book.

The oracle is ``riskcore.simulate`` on the whole book in this process; every comparison is
exact: events (every column, in order), the per-step series (the insurance fund among
them), the final table and the ledger.  The books have a few thousand accounts (a shard is
at least one block of 1,024) and gap downs that leave bad debt: with an ample fund the
shards never need each other; with a small one the fund falls short, the run goes back to
one process for that bar, and ADL closes counterparties in the other shard.  The shards
run in this process here; tests/test_shard_cluster.py runs them on a local Dask cluster.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskcore import simulate
from riskcore.inputs import InputError
from riskcore.kernels.checkpoint import CheckpointError
from riskcore.shard import drop_held, run_window, simulate_sharded
from shard_books import crash_book, crash_paths

PARAMS = dict(liquidation_fee_rate=0.01, liquidation_slippage=0.002)


class Killed(Exception):
    pass


def assert_same(got, expected) -> None:
    pd.testing.assert_frame_equal(got.events, expected.events, check_exact=True, obj="events")
    pd.testing.assert_frame_equal(got.steps, expected.steps, check_exact=True, obj="steps")
    frames = expected.final.frames()
    for name, frame in got.final.frames().items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), frames[name].reset_index(drop=True),
                                      check_exact=True, obj=f"final.{name}")
    assert got.ledger == expected.ledger
    assert got.params == expected.params


@pytest.fixture(scope="module")
def book():
    return crash_book(3_000, seed=0)


@pytest.fixture(scope="module")
def paths():
    return crash_paths(90, seed=1)


@pytest.fixture(scope="module")
def funding(paths):
    times = paths["AAA"]["timestamp"]
    return {s: pd.DataFrame({"timestamp": times[::8].to_numpy(), "rate": 0.0005 * (1 + i)})
            for i, s in enumerate(("AAA", "BBB"))}


def one_and_sharded(book, paths, **kw):
    shard_kw = {k: kw.pop(k) for k in ("shards", "window", "checkpoint_every", "checkpoint_dir", "progress")
                if k in kw}
    return simulate(book, paths, **kw), simulate_sharded(book, paths, **kw, **shard_kw)


def test_an_ample_fund_never_needs_one_process(book, paths, funding):
    one, sharded = one_and_sharded(book, paths, insurance_fund=1e9, funding=funding, shards=2, window=16,
                                   **PARAMS)
    kinds = one.events["kind"].value_counts()
    assert kinds["bad_debt"] > 100 and kinds["liquidation"] > 1000 and kinds["funding"] > 0
    assert kinds.get("adl", 0) == 0
    stats = sharded.timings["shard"]
    assert stats["rollbacks"] == 0 and stats["windows"] == 6 and stats["bounds"] == [0, 2048, 3000]
    assert_same(sharded, one)


def test_a_fund_that_runs_short_deleverages_across_shards(book, paths):
    one, sharded = one_and_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=40,
                                   **PARAMS)
    ev = one.events
    bankrupt = ev[(ev["kind"] == "adl") & (ev["reason"] == "bankrupt side")]["account"]
    counterparty = ev[(ev["kind"] == "adl") & (ev["reason"] == "counterparty")]["account"]
    # accounts 1..2048 are shard 0, 2049..3000 shard 1: both sides of ADL cross the cut
    assert (bankrupt <= 2048).any() and (counterparty > 2048).any() and (counterparty <= 2048).any()
    assert sharded.timings["shard"]["rollbacks"] >= 1
    assert_same(sharded, one)


def test_a_fund_without_fees_rolls_back_at_every_deficit():
    book, paths = crash_book(2_500, seed=4), crash_paths(80, seed=2, gaps=((20, 0.95), (50, 0.9)))
    one, sharded = one_and_sharded(book, paths, insurance_fund=0.0, shards=2, window=32,
                                   liquidation_fee_rate=0.0, liquidation_slippage=0.002)
    steps = one.steps
    assert list(steps.index[steps["adl_recovered"] > 0]) == [0, 20]
    assert sharded.timings["shard"]["rollbacks"] >= 2
    assert_same(sharded, one)


@pytest.mark.parametrize("intrabar, mm_basis, policy", [("close", "mark", "binance"), ("worst", "entry", "pro-rata"),
                                                        ("ohlc", "mark", "random")])
def test_models_and_policies(intrabar, mm_basis, policy):
    book, paths = crash_book(2_200, seed=7), crash_paths(64, seed=3)
    one, sharded = one_and_sharded(book, paths, insurance_fund=50.0, intrabar=intrabar, mm_basis=mm_basis,
                                   adl_policy=policy, adl_seed=5, shards=2, window=10, checkpoint_every=25, **PARAMS)
    assert (one.events["kind"] == "bad_debt").any()
    assert_same(sharded, one)


def test_three_shards_and_one_shard(book, paths):
    one = simulate(book, paths, insurance_fund=100.0, **PARAMS)
    for shards in (1, 3):
        sharded = simulate_sharded(book, paths, insurance_fund=100.0, shards=shards, window=25, **PARAMS)
        assert_same(sharded, one)


def test_a_killed_run_resumes_from_its_folder(book, paths, tmp_path):
    one = simulate(book, paths, insurance_fund=0.0, **PARAMS)
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's file")

    def kill_at(bar):
        def progress(done):
            if done >= bar:
                raise Killed(done)
        return progress

    with pytest.raises(Killed):
        simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                         checkpoint_dir=tmp_path,
                         progress=kill_at(40), **PARAMS)
    manifest = json.loads((tmp_path / "riskcore-shard-manifest.json").read_text())
    assert 1 < manifest["bar"] <= 40  # the last checkpoint (every 32 bars, and after the rollback at bar 0)
    seen = []
    resumed = simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                               checkpoint_dir=tmp_path, progress=seen.append, **PARAMS)
    assert resumed.timings["resumed_from_bar"] == manifest["bar"] == seen[0]
    assert_same(resumed, one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # ours gone, the user's kept
    # another run's folder is refused, and left alone
    with pytest.raises(Killed):
        simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                         checkpoint_dir=tmp_path,
                         progress=kill_at(1), **PARAMS)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CheckpointError, match="belongs to another run"):
        simulate_sharded(book, paths, insurance_fund=1.0, shards=2, window=16, checkpoint_every=32,
                         checkpoint_dir=tmp_path,
                         **PARAMS)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def forgetful(task):
    """A worker that lost its shard's state before every window (as a new worker would)."""
    drop_held(task.digest)
    return run_window(task)


def test_a_shard_without_its_state_in_memory_restarts_from_its_last_file(book, paths):
    one = simulate(book, paths, insurance_fund=0.0, **PARAMS)
    sharded = simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=8, checkpoint_every=30,
                               task=forgetful, **PARAMS)
    assert sharded.timings["shard"]["bars_caught_up"] > 0
    assert_same(sharded, one)


def test_event_buffers_that_overflow_are_grown(book, paths):
    one = simulate(book, paths, insurance_fund=0.0, **PARAMS)
    sharded = simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                               event_capacity=20, **PARAMS)
    assert_same(sharded, one)


def test_what_sharding_refuses(book, paths, tmp_path):
    with pytest.raises(InputError, match="market impact"):
        simulate_sharded(book, paths, impact={"sigma": 0.04, "daily_volume": 1e9}, **PARAMS)
    stamp = paths["AAA"]["timestamp"].iloc[3]
    with pytest.raises(InputError, match="tape"):
        simulate_sharded(book, paths, tape=[{"timestamp": stamp, "action": "deposit", "account": 1, "amount": 1.0}],
                         **PARAMS)
    with pytest.raises(InputError, match="at most 3 shard"):
        simulate_sharded(book, paths, shards=4, **PARAMS)
    for bad in (0, 2.5, True):
        with pytest.raises(InputError, match="shards must be"):
            simulate_sharded(book, paths, shards=bad, **PARAMS)
        with pytest.raises(InputError, match="checkpoint_every must be"):
            simulate_sharded(book, paths, checkpoint_every=bad, **PARAMS)
        with pytest.raises(InputError, match="window must be"):
            simulate_sharded(book, paths, window=bad, **PARAMS)
    with pytest.raises(InputError, match="not a folder"):
        simulate_sharded(book, paths, checkpoint_dir=tmp_path / "nowhere", **PARAMS)
    with pytest.raises(InputError, match="liquidation_fee_rate"):
        simulate_sharded(book, paths, liquidation_fee_rate=-1.0)
    with pytest.raises(InputError, match="cluster or client"):
        simulate_sharded(book, paths, cluster="local:2", client=object(), **PARAMS)
    from riskcore import Book, BookTable

    frames = (book.to_table() if isinstance(book, Book) else book).frames()
    frames["contracts"] = frames["contracts"].assign(venue="okx")
    with pytest.raises(InputError, match=r"venue profile\(s\) \['okx'\] are refused"):
        simulate_sharded(BookTable.from_frames(frames), paths, **PARAMS)
    assert list(tmp_path.iterdir()) == []


def test_records_and_bytes_are_reported(book, paths):
    sharded = simulate_sharded(book, paths, insurance_fund=1e9, shards=2, window=30, **PARAMS)
    stats = sharded.timings["shard"]
    assert stats["windows"] == 3 and stats["report_bytes"] > 0 and stats["state_bytes"] > 0
    assert np.isfinite(stats["coordinator_seconds"])
