"""The output folder of ``riskcore run`` (riskcore/output.py): a folder riskcore did not write is
refused (``--force`` moves it aside), an earlier output is replaced, everything is checked
before the run, a killed run's leftovers are cleaned up, and one run at a time writes a
folder.  A user's file is never deleted."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from riskcore.cli import main
from riskcore.output import MANIFEST, OutputFolderError, OutputTarget
from riskcore.scenarios import run_to_folder

SMALL = textwrap.dedent("""
    name = "small"
    seed = 3

    [market]
    liquidation_fee_rate = 0.01

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }
    start_price = 60000.0

    [path]
    kind = "gbm"
    n_steps = 10

    [population]
    accounts = 5
""")


@pytest.fixture
def scenario(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if anything is simulated: the checks must come first."""
    import riskcore.scenarios

    def simulated(*args, **kwargs):
        raise AssertionError("a variant was simulated before the output folder was checked")

    monkeypatch.setattr(riskcore.scenarios, "_simulate", simulated)


def run(scenario: Path, out: Path, *more: str) -> int:
    return main(["run", str(scenario), "--out", str(out), "--no-progress", *more])


def files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def beside(out: Path) -> list[str]:
    """What riskcore left next to the output folder (hidden temporary, old and lock files)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_a_run_writes_a_manifest_of_every_file(tmp_path, scenario):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["written_by"] == "riskcore" and manifest["scenario"] == "small"
    assert manifest["files"] == sorted(set(files(out)) - {MANIFEST})
    assert {"events.parquet", "report.html", "run.json", "scenario.toml"} <= set(manifest["files"])
    assert beside(out) == []


def test_an_earlier_riskcore_output_is_replaced(tmp_path, scenario):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    (out / "events.parquet").write_bytes(b"stale")
    assert run(scenario, out) == 0
    assert (out / "events.parquet").read_bytes() != b"stale"
    assert beside(out) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.toml"]


def test_an_empty_folder_is_used(tmp_path, scenario):
    out = tmp_path / "out"
    out.mkdir()
    assert run(scenario, out) == 0
    assert (out / "report.html").exists() and beside(out) == []


def test_a_folder_riskcore_did_not_write_is_refused_before_the_run(tmp_path, scenario, capsys, no_simulation):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.docx").write_bytes(b"two years of work")
    (out / "figures").mkdir()
    (out / "figures" / "fig1.png").write_bytes(b"png")
    assert run(scenario, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "chapter1.docx" in err and "figures/fig1.png" in err and "--force" in err
    assert files(out) == {"chapter1.docx": b"two years of work", "figures/fig1.png": b"png"}
    assert beside(out) == []


def test_force_moves_a_foreign_folder_aside_and_deletes_nothing(tmp_path, scenario, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.docx").write_bytes(b"two years of work")
    assert run(scenario, out, "--force") == 0
    assert "moved to thesis.before-" in capsys.readouterr().out
    (aside,) = tmp_path.glob("thesis.before-*")
    assert files(aside) == {"chapter1.docx": b"two years of work"}
    assert (out / "report.html").exists() and "chapter1.docx" not in files(out)
    assert beside(out) == []


def test_a_users_file_added_to_an_earlier_output_is_kept(tmp_path, scenario, capsys):
    out = tmp_path / "out"
    assert run(scenario, out) == 0
    (out / "my-notes.txt").write_text("what I saw")
    capsys.readouterr()
    assert run(scenario, out) == 2
    err = capsys.readouterr().err
    assert "my-notes.txt" in err and "did not write" in err
    assert (out / "my-notes.txt").read_text() == "what I saw"
    assert run(scenario, out, "--force") == 0
    (aside,) = tmp_path.glob("out.before-*")
    assert (aside / "my-notes.txt").read_text() == "what I saw"


def test_a_users_file_added_during_the_run_is_kept(tmp_path, scenario, monkeypatch):
    """The folder is judged again when the outputs go in place: a file that appeared during
    the run is moved aside with the earlier output, not deleted."""
    import riskcore.scenarios

    out = tmp_path / "out"
    assert run(scenario, out) == 0
    real = riskcore.scenarios._simulate

    def simulate_while_the_user_writes(*args, **kwargs):
        (out / "my-notes.txt").write_text("written during the run")
        return real(*args, **kwargs)

    monkeypatch.setattr(riskcore.scenarios, "_simulate", simulate_while_the_user_writes)
    assert run(scenario, out) == 0
    (aside,) = tmp_path.glob("out.before-*")
    assert (aside / "my-notes.txt").read_text() == "written during the run"
    assert (out / "report.html").exists()


def test_out_at_a_regular_file_is_refused(tmp_path, scenario, capsys, no_simulation):
    out = tmp_path / "results.csv"
    out.write_text("a,b\n1,2\n")
    assert run(scenario, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "is a file, not a folder" in err
    assert out.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "small.toml"]


def test_out_below_a_regular_file_is_refused(tmp_path, scenario, capsys, no_simulation):
    (tmp_path / "results.csv").write_text("a,b\n")
    assert run(scenario, tmp_path / "results.csv" / "out") == 2
    err = capsys.readouterr().err
    assert "results.csv is a file, not a folder" in err and "Traceback" not in err
    assert (tmp_path / "results.csv").read_text() == "a,b\n"


def test_a_read_only_place_is_found_before_the_run(tmp_path, scenario, capsys, monkeypatch, no_simulation):
    """A read-only file system (here: the temporary folder cannot be made) stops the run at once."""
    import riskcore.output

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(riskcore.output.tempfile, "mkdtemp", read_only)
    out = tmp_path / "out"
    assert run(scenario, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "Read-only file system" in err
    assert not out.exists() and beside(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_folder_without_write_permission_is_found_before_the_run(tmp_path, scenario, capsys, no_simulation):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert run(scenario, parent / "out") == 2
        assert "Permission denied" in capsys.readouterr().err
    finally:
        parent.chmod(0o755)


def test_a_full_disk_is_a_clear_failure_that_changes_nothing(tmp_path, scenario, capsys, monkeypatch):
    import riskcore.scenarios

    out = tmp_path / "out"
    assert run(scenario, out) == 0
    before = files(out)

    def full(self, file, frame, variant):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(riskcore.scenarios._OutputFolder, "_append", full)
    capsys.readouterr()
    assert run(scenario, out) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out) in err and "is as it was" in err
    assert "Traceback" not in err
    assert files(out) == before and beside(out) == []


HOLD = textwrap.dedent("""
    import sys, time
    from riskcore.output import OutputTarget
    target = OutputTarget(sys.argv[1]).__enter__()
    (target.tmp / "events.parquet").write_bytes(b"half written")
    print(target.tmp, flush=True)
    time.sleep(120)
""")


def hold(out: Path) -> tuple[subprocess.Popen, Path]:
    """Another process that locked ``out`` and is writing its outputs; returns it and its
    temporary folder."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line, "the holding process did not start"
    return proc, Path(line)


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, scenario, capsys, no_simulation):
    out = tmp_path / "out"
    proc, _ = hold(out)
    try:
        assert run(scenario, out) == 2
        err = capsys.readouterr().err
        assert f"another riskcore run (process {proc.pid}) is writing this folder" in err
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_is_taken_in_one_process_too(tmp_path, scenario):
    out = tmp_path / "out"
    with OutputTarget(out):
        with pytest.raises(OutputFolderError, match="another riskcore run"):
            run_to_folder(scenario, out)
    assert beside(out) == []


def test_a_run_killed_while_writing_is_cleaned_up_by_the_next(tmp_path, scenario):
    """SIGKILL leaves the temporary folder (and the lock file, whose lock the system
    releases); the next run into the same folder removes the folder and runs."""
    out = tmp_path / "out"
    proc, tmp = hold(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.is_dir() and tmp.name.startswith(".out.tmp-")
    assert run(scenario, out) == 0
    assert not tmp.exists() and beside(out) == []
    assert (out / "report.html").exists()


def test_leftovers_of_killed_swaps_are_removed_but_foreign_files_kept(tmp_path, scenario):
    out = tmp_path / "out"
    old = tmp_path / ".out.old-12345"  # an earlier output moved aside by a run killed before it put the new one in
    old.mkdir()
    (old / "report.html").write_text("old report")
    (old / MANIFEST).write_text(json.dumps({"written_by": "riskcore", "files": ["report.html"]}))
    unlisted = tmp_path / ".out.old-999"  # the same, holding a file no manifest lists
    unlisted.mkdir()
    (unlisted / "my-notes.txt").write_text("mine")
    other = tmp_path / ".out.tmp-not-ours"  # not a name riskcore makes
    other.mkdir()
    assert run(scenario, out) == 0
    assert not old.exists() and not unlisted.exists() and other.is_dir()
    (aside,) = tmp_path.glob("out.before-*")
    assert (aside / "my-notes.txt").read_text() == "mine"


def test_the_api_refuses_too(tmp_path, scenario):
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.csv").write_text("1\n")
    with pytest.raises(OutputFolderError, match=r"data\.csv"):
        run_to_folder(scenario, out)
    run_to_folder(scenario, out, force=True)
    assert (out / MANIFEST).exists()


def test_a_manifest_never_reaches_outside_its_folder(tmp_path):
    """Names in a manifest that point outside the folder are not riskcore's files: a doctored
    manifest cannot make riskcore delete anything beside the folder."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim.txt").write_text("keep me")
    (out / "report.html").write_text("old")
    (out / MANIFEST).write_text(json.dumps({"written_by": "riskcore",
                                            "files": ["report.html", "../victim.txt", str(tmp_path / "victim.txt")]}))
    with OutputTarget(out) as target:
        (target.tmp / "report.html").write_text("new")
        target.commit()
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert (out / "report.html").read_text() == "new" and beside(out) == []


def test_a_symlink_in_the_folder_is_not_riskcores(tmp_path, scenario, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "prices.csv").write_text("1\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "data").symlink_to(data)
    assert run(scenario, out) == 2
    assert "data" in capsys.readouterr().err
    assert (data / "prices.csv").read_text() == "1\n" and (out / "data").is_symlink()
