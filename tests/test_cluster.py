"""Scenario runs on a Dask cluster (riskcore.cluster): the same outputs as a run in one process.

A local cluster of two worker processes (one thread each) runs a small study of four
variants (two margin setups times a grid of two maintenance-rate factors); every output is
compared with what ``run_to_folder`` writes for the same scenario in this process.  A
worker is killed in the middle of a run, the scheduler is unreachable, the address is
malformed, dask is missing: each gives the documented outcome.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from riskcore import cluster  # noqa: E402
from riskcore.cli import main  # noqa: E402
from riskcore.scenarios import load_scenario, run_to_folder  # noqa: E402

TABLES = ("events", "steps", "final_positions", "final_accounts", "outcomes")
VARIANTS = ["cross [mmr_factor=1.0]", "cross [mmr_factor=1.5]", "isolated + auto-add [mmr_factor=1.0]",
            "isolated + auto-add [mmr_factor=1.5]"]

STUDY = """
name = "sweep"
seed = 3
{engine}
[market]
liquidation_fee_rate = 0.0125
insurance_fund = 5_000.0
liquidation_slippage = 0.001

[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }}
start_price = 60_000.0

[market.contracts.ETHUSDT]
brackets = {{ venue = "binance", symbol = "ETHUSDT", date = "2025-06-19" }}
start_price = 3_000.0

[path]
kind = "gbm"
n_steps = 40
vol = 0.9
correlation = 0.7

[[path.wicks]]
contract = "BTCUSDT"
at = 25
depth = -0.1

[population]
accounts = 300
positions_per_account = [1, 2]
leverage = {{ 10 = 0.3, 20 = 0.4, 50 = 0.3 }}
headroom_median = 0.3

[funding]
rate = 0.0001
every_hours = 0.25

[[variants]]
name = "cross"
population = {{ isolated_share = 0.0 }}
{variant_engine}
[[variants]]
name = "isolated + auto-add"
population = {{ isolated_share = 1.0, auto_add_share = 1.0 }}

[grid]
"market.mmr_factor" = [1.0, 1.5]
"""


def write_study(folder: Path, name: str = "sweep.toml", engine: str = "", variant_engine: str = "") -> Path:
    path = folder / name
    path.write_text(STUDY.format(engine=engine, variant_engine=variant_engine), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dask_client():
    """Two worker processes of one thread each, warmed once for the whole module."""
    with cluster.connect(cluster.parse_cluster("local:2")) as client:
        yield client


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def local_run(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    run_to_folder(study, out)
    return out


@pytest.fixture(scope="module")
def cluster_run(study, dask_client, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cluster") / "out"
    cluster.run_on_cluster(study, out, None, client=dask_client)
    return out


def read(folder: Path, table: str) -> pd.DataFrame:
    """A table of a run, its rows in variant order (the order within a variant kept), text as
    strings."""
    frame = pd.read_parquet(folder / f"{table}.parquet")
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
    order = {name: i for i, name in enumerate(VARIANTS)}
    frame = frame.iloc[frame["variant"].map(order).argsort(kind="stable")]
    return frame.reset_index(drop=True)


def assert_same_outputs(ours: Path, local: Path, *, report: bool = True) -> None:
    for table in TABLES + ("summary",):
        expected, got = read(local, table), read(ours, table)
        assert len(expected) > 0 or table == "events"
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=table)
    if report:  # the page and its charts, byte for byte
        for name in ["report.html"] + sorted(p.name for p in local.glob("*.png")):
            assert (ours / name).read_bytes() == (local / name).read_bytes(), name


# --------------------------------------------------------------------------- the outputs
def test_the_study_has_work_to_compare(local_run):
    """Guard: the variants liquidate accounts and differ, so equal outputs mean something."""
    summary = pd.read_parquet(local_run / "summary.parquet").set_index("variant")
    assert list(summary.index) == VARIANTS
    assert (summary["accounts"] == 300).all()
    assert (summary["liquidations"] > 0).all()
    assert summary["liquidations"].nunique() > 1
    assert summary.loc[VARIANTS[2], "topups"] > 0


def test_a_cluster_run_writes_what_a_local_run_writes(cluster_run, local_run):
    assert_same_outputs(cluster_run, local_run)


PATH_VARIANTS = ["cross [path.seed=1]", "cross [path.seed=2]", "isolated + auto-add [path.seed=1]",
                 "isolated + auto-add [path.seed=2]"]


def test_a_paths_grid_on_the_cluster_writes_what_a_local_run_writes(tmp_path, dask_client):
    """Two margin variants times two path seeds: each task builds its variant's own path, and
    every table, the spread over the paths, run.json's paths and the report (every chart, byte
    for byte) are those of the local run."""
    study = tmp_path / "paths.toml"
    study.write_text(STUDY.format(engine="", variant_engine="").replace('"market.mmr_factor" = [1.0, 1.5]',
                                                                       '"path.seed" = [1, 2]'), encoding="utf-8")
    local, ours = tmp_path / "local", tmp_path / "cluster"
    run_to_folder(study, local)
    cluster.run_on_cluster(study, ours, None, client=dask_client)
    summary = pd.read_parquet(local / "summary.parquet").set_index("variant")
    assert list(summary.index) == PATH_VARIANTS
    # guard: the two paths give different results, so equal outputs mean the right path ran
    assert summary.loc[PATH_VARIANTS[0], "liquidated_notional"] != summary.loc[PATH_VARIANTS[1], "liquidated_notional"]
    order = {name: i for i, name in enumerate(PATH_VARIANTS)}
    for table in TABLES + ("summary",):
        frames = []
        for folder in (local, ours):
            frame = pd.read_parquet(folder / f"{table}.parquet")
            for col in frame.columns:
                if isinstance(frame[col].dtype, pd.CategoricalDtype):
                    frame[col] = frame[col].astype(object)
            frames.append(frame.iloc[frame["variant"].map(order).argsort(kind="stable")].reset_index(drop=True))
        assert len(frames[0]) > 0 or table == "events"
        pd.testing.assert_frame_equal(frames[1], frames[0], check_exact=True, obj=table)
    pd.testing.assert_frame_equal(pd.read_parquet(ours / "spread.parquet"), pd.read_parquet(local / "spread.parquet"),
                                  check_exact=True)
    assert json.loads((ours / "run.json").read_text())["paths"] == json.loads((local / "run.json").read_text())["paths"]
    for name in ["report.html"] + sorted(p.name for p in local.glob("*.png")):
        assert (ours / name).read_bytes() == (local / name).read_bytes(), name
    assert (local / "spread.png").is_file()


def test_each_table_is_a_folder_of_one_part_per_variant(cluster_run):
    for table in TABLES:
        folder = cluster_run / f"{table}.parquet"
        assert sorted(p.name for p in folder.iterdir()) == [f"part-0000{i}.parquet" for i in range(4)]
        for i, name in enumerate(VARIANTS):  # part i is variant i of the scenario
            assert set(pd.read_parquet(folder / f"part-0000{i}.parquet")["variant"]) <= {name}
    assert (cluster_run / "summary.parquet").is_file()
    manifest = json.loads((cluster_run / "manifest.json").read_text())
    assert "events.parquet/part-00003.parquet" in manifest["files"]
    assert "cluster.json" in manifest["files"]


def test_pyarrow_and_dask_read_the_tables(cluster_run, local_run):
    import dask.dataframe as dd
    import pyarrow.dataset as ds

    for table in TABLES:
        expected = read(local_run, table)
        assert ds.dataset(cluster_run / f"{table}.parquet").count_rows() == len(expected)
        got = dd.read_parquet(cluster_run / f"{table}.parquet").compute()
        assert len(got) == len(expected)
        assert list(got.columns) == list(expected.columns)
    one = pd.read_parquet(cluster_run / "outcomes.parquet", filters=[("variant", "==", VARIANTS[1])])
    assert len(one) == 300 and set(one["variant"].astype(str)) == {VARIANTS[1]}


def test_the_workers_compiled_nothing_in_a_task(cluster_run, dask_client):
    info = json.loads((cluster_run / "cluster.json").read_text())
    tasks = info["tasks"]
    assert [t["variant"] for t in tasks] == VARIANTS
    assert [t["kernels_compiled"] for t in tasks] == [0, 0, 0, 0]
    expected_threads = max(1, (os.cpu_count() or 1) // 2)  # a local:2 cluster shares the cores
    assert {t["numba_threads"] for t in tasks} == {expected_threads}
    warm = dask_client.run(lambda: dict(cluster._WARM))
    assert len(warm) == 2
    assert all(w["pid"] > 0 for w in warm.values())  # each worker warmed itself when it started


# ------------------------------------------------------------ a worker killed mid-run
def dying_task(spec):
    """The first attempt of variant 1 leaves half a part behind and kills its worker process;
    the attempt the scheduler makes elsewhere runs normally."""
    marker = Path(spec.out).parent / f"{Path(spec.out).name}.died"
    if spec.index == 1:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            half = Path(spec.out) / "events.parquet" / f".part-00001.parquet.{os.getpid()}-deadbeef.tmp"
            half.write_bytes(b"PAR1 half a part")
            os._exit(1)
    return cluster.run_task(spec)


def failing_task(spec):
    if spec.index == 2:
        raise RuntimeError("variant 2 failed on purpose")
    return cluster.run_task(spec)


@pytest.fixture
def by_value():
    """Send this module's task wrappers to the workers by value (they cannot import it)."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_worker_killed_mid_run_changes_nothing(study, local_run, dask_client, tmp_path, by_value):
    out = tmp_path / "out"
    cluster.run_on_cluster(study, out, None, client=dask_client, task=dying_task)
    died = [p for p in tmp_path.iterdir() if p.name.endswith(".died")]
    assert len(died) == 1, "the first attempt of variant 1 killed its worker"
    dead_pid = int(died[0].read_text())
    info = json.loads((out / "cluster.json").read_text())
    assert info["tasks"][1]["pid"] != dead_pid
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert_same_outputs(out, local_run)
    assert len(dask_client.run(os.getpid)) == 2  # the nanny started a new worker


def test_a_failed_task_leaves_the_folder_as_it_was(study, cluster_run, dask_client, tmp_path, by_value):
    out = tmp_path / "out"
    cluster.run_on_cluster(study, out, None, client=dask_client)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    with pytest.raises(RuntimeError, match="variant 2 failed on purpose"):
        cluster.run_on_cluster(study, out, None, client=dask_client, task=failing_task)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder, no lock left


def test_a_worker_that_cannot_see_the_folder_is_named(study, tmp_path):
    spec = cluster.task_specs(load_scenario(study), tmp_path / "not-here")[0]
    with pytest.raises(cluster.ClusterError, match=r"cannot see the run's temporary folder .*not-here.*shared"):
        cluster.run_task(spec)


def test_a_missing_data_file_fails_as_a_local_run_would(tmp_path, dask_client, capsys):
    study = tmp_path / "pop.toml"
    study.write_text(f"""
name = "pop"
[engine]
cluster = "{dask_client.scheduler.address}"
[market]
liquidation_fee_rate = 0.0125
[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }}
start_price = 60_000.0
[path]
kind = "gbm"
n_steps = 10
[population]
file = "accounts-nowhere.parquet"
""", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out), "--no-progress"]) == 3  # raised on a worker
    err = capsys.readouterr().err
    assert "population.file: 'accounts-nowhere.parquet' not found" in err
    assert not out.exists()


# ------------------------------------------------------------------- the command line
def test_cli_runs_on_a_local_cluster_of_two(study, local_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(study), "--cluster", "local:2", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "as tasks on the Dask cluster local:2" in printed
    assert "2 worker(s) ready" in printed
    assert_same_outputs(out, local_run)


def test_the_scenario_key_names_the_cluster(tmp_path, dask_client, local_run):
    address = dask_client.scheduler.address
    study = write_study(tmp_path, engine=f'[engine]\ncluster = "{address}"\n')
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "cluster.json").read_text())["cluster"] == address
    assert_same_outputs(out, local_run, report=False)  # its parameter table shows engine.cluster
    out_here = tmp_path / "here"  # --cluster off runs in this process
    assert main(["run", str(study), "--out", str(out_here), "--no-progress", "--cluster", "off"]) == 0
    assert not (out_here / "cluster.json").exists()


@pytest.mark.parametrize("value, why", [
    ("local:0", "local:N needs a whole number of worker processes >= 1"),
    ("local:two", "local:N needs a whole number"),
    ("http://10.0.0.5:8786", "is not a cluster"),
    ("tcp://10.0.0.5", "is not a cluster"),
    ("10.0.0.5:8786", "is not a cluster"),
    ("tcp://10.0.0.5:70000", "the port must be from 1 to 65535"),
    ("", "is not a cluster"),
])
def test_a_bad_address_is_refused_naming_it(value, why, study, tmp_path, capsys):
    with pytest.raises(cluster.ClusterError, match=why) as err:
        cluster.parse_cluster(value)
    assert str(err.value).startswith(f"--cluster: {value!r}")
    out = tmp_path / "out"
    assert main(["run", str(study), "--cluster", value, "--out", str(out)]) == 2
    assert why in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_scenario_key_names_the_file_and_key(tmp_path, capsys):
    study = write_study(tmp_path, engine='[engine]\ncluster = "local:x"\n')
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 2
    assert f"{study}: engine.cluster: 'local:x'" in capsys.readouterr().err
    study = write_study(tmp_path, "v.toml", variant_engine='engine = { cluster = "local:2" }\n')
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 2
    assert f"{study}: variants[0].engine.cluster: " in capsys.readouterr().err
    study = write_study(tmp_path, "n.toml", engine="[engine]\ncluster = 2\n")
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 2
    assert f"{study}: engine.cluster: expected a string, got 2" in capsys.readouterr().err


def test_an_unreachable_scheduler_exits_4(study, tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    out = tmp_path / "out"
    assert main(["run", str(study), "--cluster", f"tcp://127.0.0.1:{port}", "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert f"tcp://127.0.0.1:{port}: no Dask scheduler answered within 1 s" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no lock, no temporary folder


def test_without_dask_the_error_says_what_to_install(study, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    assert main(["run", str(study), "--cluster", "local:2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs dask.distributed, which is not installed" in err
    assert "pip install 'riskcore[cluster]'" in err
    assert not (tmp_path / "out").exists()
