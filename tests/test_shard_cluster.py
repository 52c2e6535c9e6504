"""Sharding on a local Dask cluster of two worker processes (one thread each): the same
Result as one simulate() of the whole book, with ADL across shards, and with a worker
killed in the middle of a window (Dask runs the shard's task again, from the state file
the window started from)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from riskcore import cluster, simulate  # noqa: E402
from riskcore.shard import run_window, simulate_sharded  # noqa: E402
from shard_books import crash_book, crash_paths  # noqa: E402
from test_shard import PARAMS, assert_same  # noqa: E402


@pytest.fixture(scope="module")
def dask_client():
    with cluster.connect(cluster.parse_cluster("local:2")) as client:
        yield client


@pytest.fixture(scope="module")
def inputs():
    book, paths = crash_book(3_000, seed=0), crash_paths(90, seed=1)
    return book, paths, simulate(book, paths, insurance_fund=0.0, **PARAMS)


def test_shards_on_two_workers_give_the_one_process_result(inputs, dask_client):
    book, paths, one = inputs
    assert (one.events["kind"] == "adl").any()
    sharded = simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                               client=dask_client, **PARAMS)
    stats = sharded.timings["shard"]
    assert stats["rollbacks"] >= 1
    assert stats["kernels_compiled_in_tasks"] == 0  # the workers were warmed once, before their first task
    assert_same(sharded, one)


def dying_window(task):
    """The first attempt of shard 1 on a window from bar 17 on runs half of it, leaves a
    temporary file behind and kills its worker process; the next attempt runs normally."""
    marker = Path(task.folder).parent / f"{Path(task.folder).name}.died"
    if task.shard == 1 and task.w0 >= 17:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            import dataclasses

            run_window(dataclasses.replace(task, w1=task.w0 + 8))  # half the window, then dies
            (Path(task.folder) / f".riskcore-shard-0001-bar-{task.w1:07d}.npz.{os.getpid()}.tmp").write_bytes(b"half")
            os._exit(1)
    return run_window(task)


@pytest.fixture
def by_value():
    """Send this module's task wrapper to the workers by value (they cannot import it)."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_worker_killed_mid_window_changes_nothing(inputs, dask_client, tmp_path, by_value):
    book, paths, one = inputs
    folder = tmp_path / "ckpt"
    folder.mkdir()
    sharded = simulate_sharded(book, paths, insurance_fund=0.0, shards=2, window=16, checkpoint_every=32,
                               client=dask_client, checkpoint_dir=folder, task=dying_window, **PARAMS)
    died = tmp_path / "ckpt.died"
    assert died.is_file(), "the first attempt of shard 1 killed its worker"
    assert sharded.timings["shard"]["bars_caught_up"] > 0  # the retry rebuilt the shard from its last file
    assert_same(sharded, one)
    assert list(folder.iterdir()) == []  # every file of the run removed, the dead attempt's too
    dask_client.wait_for_workers(2, timeout=300)  # the nanny started a new worker
    assert int(died.read_text()) not in dask_client.run(os.getpid).values()
