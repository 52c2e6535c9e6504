"""One book split into shards of accounts, run on workers, with the one-process result.

``simulate_sharded(book, paths, ..., shards=N, cluster="local:2")`` returns the same
:class:`~riskcore.result.Result` as :func:`riskcore.simulate` on the whole book: events
(every column, in order), the final table, the per-step series and the insurance fund,
bit for bit.  See docs/cluster.md, "Sharding one huge book", for the design; in short:

1. The book is packed once and split into shards of whole blocks of accounts; each shard's
   state is written to the checkpoint folder (bar 0).
2. The run goes in windows of ``checkpoint_every`` bars.  Each shard runs the window from
   its state file on a worker (:func:`run_window`), optimistically, with an ample fund, and
   reports its events, phase B's fee and deficit records and the per-block step sums; it
   writes its state at the window's end.
3. The coordinator merges the records in phase B's order and replays the fund with phase
   B's arithmetic (:func:`~riskcore.shard.kernels_nb.replay_nb`).  If the fund covers every
   deficit in full, the window is exact: it is committed (events, step rows, the fund).
4. At the first bar where it would not (pro rata, ADL), the coordinator merges the shards'
   states at the window's start, runs the window's bars up to and including that bar in
   one process with the true fund (the kernels' own ``run_steps_nb``), splits the state
   again and goes on optimistically from the next bar.

A worker killed mid-window: Dask runs the task again elsewhere, from the same state file.
A whole run killed: the folder holds the last committed window; the same call resumes.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import adl
from ..errors import RiskcoreError
from ..impact import DEFAULT_ROUNDS
from ..inputs import InputError, PricePaths, funding_by_step
from ..kernels import checkpoint as checkpoints
from ..kernels.checkpoint import CheckpointError
from ..kernels.enums import BlockAcc, EvI, Glob, N_BLOCK_ACC, Stage
from ..kernels.state import ContractArrays, Market, Params, empty_events
from ..result import Result
from ..table import BookTable
from . import state as states

__all__ = ["simulate_sharded", "run_window", "ShardTask", "ShardReport", "ShardError"]

AMPLE_FUND = 1e300  # a shard's fund: every deficit is paid in full, nothing is deleveraged
DEFAULT_WINDOW = 64  # bars per window: how far the shards run ahead of the fund's replay
DEFAULT_EVERY = 512  # bars between the shards' state files
MANIFEST = "riskcore-shard-manifest.json"
MAGIC = "riskcore-shard-run"
VERSION = 1


class ShardError(RiskcoreError, RuntimeError):
    """A sharded run that cannot go on (a worker's report that does not fit the run)."""


# ------------------------------------------------------------------ the worker side
@dataclasses.dataclass(frozen=True)
class ShardTask:
    folder: str  # the run's checkpoint folder (every worker sees it at this path)
    digest: str  # the run's digest: state files of another run are refused
    shard: int
    a0: int  # the shard's first account (kernel index in the whole book)
    w0: int  # the window: bars w0 .. w1 - 1
    w1: int
    capacity: int  # events per buffer row
    records: int  # room for phase B's records
    saved: int  # the last bar whose state file the shard has (<= w0)
    save: bool  # write the state at w1
    epoch: str  # the coordinator's run and rollbacks so far: a held state of another epoch is not used
    numba_threads: int = 0  # 0: NUMBA_NUM_THREADS / the worker's threads


@dataclasses.dataclass
class ShardReport:
    shard: int
    w0: int
    w1: int
    ints: np.ndarray  # i4 [n, N_EVI] the window's events (accounts in the whole book's index)
    floats: np.ndarray  # f8 [n, N_EVF]
    rec_i: np.ndarray  # i8 [m, 3] phase B's records: bar, point, kind (kernels_nb.ISO_FEE ...)
    rec_v: np.ndarray  # f8 [m]
    oi: np.ndarray  # f8 [w1 - w0, n_blocks] each block's open interest at each bar's end
    sums_at: np.ndarray  # i4 [k, 3] (bar - w0, block, column) of the other per-block step sums that are not 0
    sums: np.ndarray  # f8 [k] their values (most blocks are quiet at most bars: they send nothing)
    capacity: int  # what the buffers had to hold (grown on overflow)
    records: int
    seconds: float  # inside the kernels
    state_bytes: int  # the state file written (0 when not saved)
    caught_up: int  # bars stepped to rebuild the state at w0 (0 when the worker held it)
    compiled: int  # kernels compiled during the task (0 on a warm worker)
    host: str
    pid: int
    address: str

    def nbytes(self) -> int:
        """Bytes this report moves to the coordinator (its arrays)."""
        return int(self.ints.nbytes + self.floats.nbytes + self.rec_i.nbytes + self.rec_v.nbytes + self.oi.nbytes
                   + self.sums_at.nbytes + self.sums.nbytes)

    def block_sums(self) -> np.ndarray:
        """The per-block step sums f8 [w1 - w0, n_blocks, N_BLOCK_ACC] (as the kernel left them)."""
        blk = np.zeros(self.oi.shape + (N_BLOCK_ACC,))
        blk[:, :, BlockAcc.OPEN_INTEREST] = self.oi
        blk[self.sums_at[:, 0], self.sums_at[:, 1], self.sums_at[:, 2]] = self.sums
        return blk


def _inputs_file(folder: Path) -> Path:
    return Path(folder) / "riskcore-shard-inputs.npz"


def _save_inputs(folder: Path, digest: str, ct: ContractArrays, mk: Market, pr: Params) -> None:
    arrays = {f"ct.{k}": v for k, v in ct._asdict().items()}
    arrays.update({f"mk.{k}": v for k, v in mk._asdict().items()})
    # arrays the run has read-only stay read-only: numba types them apart, and a second type
    # would compile the stepping kernels a second time
    readonly = [k for k, v in arrays.items() if not v.flags.writeable]
    arrays["meta"] = np.array(json.dumps({"magic": MAGIC, "digest": digest, "params": pr._asdict(),
                                          "readonly": readonly}))
    path = _inputs_file(folder)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


@lru_cache(maxsize=4)
def _load_inputs(folder: str, digest: str):
    """The run's contracts, market, parameters and path summary (read once per process)."""
    from ..kernels.state import new_levels

    with np.load(_inputs_file(Path(folder)), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"][()]))
        if meta.get("magic") != MAGIC or meta.get("digest") != digest:
            raise CheckpointError(f"{_inputs_file(Path(folder))} belongs to another run")
        arrays = {k: data[k].copy() for k in data.files if k != "meta"}
    for k in meta.get("readonly", []):
        arrays[k].flags.writeable = False
    ct = ContractArrays(**{k: arrays[f"ct.{k}"] for k in ContractArrays._fields})
    mk = Market(**{k: arrays[f"mk.{k}"] for k in Market._fields})
    pr = Params(**meta["params"])
    return ct, mk, pr, new_levels(mk.ohlc, pr.intrabar, ct)


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


#: the shards' states a worker process holds between windows: {(folder, run, shard): (epoch, bar, state)}.
#: A window starts from the held state when it is the one the coordinator expects (same run,
#: same epoch: no rollback since, same bar); otherwise from the last state file, stepping
#: forward to the window's start.
_HELD: dict = {}


def _step(bk, sc, im, inputs, t0: int, t1: int, capacity: int, records: int, keep: bool = True):
    """Bars ``t0:t1`` of a shard: (events, records, block sums, kernel seconds, buffer size
    needed, overflowed).  The buffers double when a chunk of bars fills half of them; an
    overflow loses events and records only, never state.  ``keep=False``: only the state."""
    from ..kernels.engine import CHUNK, event_rows
    from .kernels_nb import shard_steps_nb

    ct, mk, pr, lv = inputs
    ev = empty_events(event_rows(), capacity)
    rec_i = np.empty((records, 3), np.int64)
    rec_v = np.empty(records)
    n_rec = np.zeros(1, np.int64)
    blk = np.empty((t1 - t0, sc.blk_nliq.size, N_BLOCK_ACC))
    drained, need, seconds, overflowed = [], 0, 0.0, False
    t = t0
    while t < t1:
        end = min(t1, t + CHUNK)
        start = time.perf_counter()
        shard_steps_nb(bk, ct, mk, lv, sc, ev, pr, im, np.int64(t), np.int64(end), rec_i, rec_v, n_rec,
                       blk[t - t0:end - t0])
        seconds += time.perf_counter() - start
        need = max(need, int((ev.count + ev.overflow).max()))
        overflowed = overflowed or bool(ev.overflow.any()) or int(n_rec[0]) > rec_v.size
        if keep and not overflowed:
            for r in range(ev.count.size):
                n = int(ev.count[r])
                if n:
                    drained.append((ev.ints[r, :n].copy(), ev.floats[r, :n].copy()))
        ev.count[:] = 0
        ev.overflow[:] = 0
        if keep and not overflowed and 2 * need > ev.ints.shape[1]:  # a chunk filled half a row: room for twice that
            ev = empty_events(ev.count.size, 2 * ev.ints.shape[1])
        m = int(n_rec[0])
        if keep and not overflowed and 2 * m > rec_v.size:  # the same for the records, kept so far
            rec_i = np.concatenate([rec_i, np.empty_like(rec_i)])
            rec_v = np.concatenate([rec_v, np.empty_like(rec_v)])
        t = end
    return (drained, (rec_i, rec_v, int(n_rec[0])), blk, seconds, max(need, ev.ints.shape[1]), overflowed)


def drop_held(digest: str) -> None:
    """Let go of the shards' states of run ``digest`` held by this process."""
    for key in [k for k in _HELD if k[1] == digest]:
        del _HELD[key]


def run_window(task: ShardTask) -> ShardReport:
    """Run one shard through one window, optimistically (see the module docstring), and
    report.  The state at ``w0`` is the one this process holds from the shard's previous
    window, or else the last state file (bar ``saved``) stepped forward to ``w0`` (those bars
    are committed: their outputs are dropped; an event buffer that overflows there changes
    no state).  With ``save``, the state at ``w1`` is written to the folder.  Idempotent: an
    attempt that dies changes no file but the one it would write, with the same content."""
    import numba

    address = _worker_address()
    if address != "local":
        from ..cluster import ensure_warm

        ensure_warm()
        warm_shard()
        threads = task.numba_threads or numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return _run_window(task, address)


def _run_window(task: ShardTask, address: str = "local") -> ShardReport:
    """:func:`run_window` after the worker's warm-up (the warm-up itself runs this)."""
    from ..kernels.compiling import CompileProgress

    folder = Path(task.folder)
    inputs = _load_inputs(str(folder), task.digest)
    key = (str(folder), task.digest, task.shard)
    capacity, records = task.capacity, task.records
    seconds, caught_up, held = 0.0, 0, _HELD.pop(key, None)
    with CompileProgress(0, lambda *a: None) as compiled:  # kernels compiled in the task: 0 once warm
        while True:
            if held is not None and held[:2] == (task.epoch, task.w0):
                bk, sc, im = held[2]
            else:
                bk, sc, im = states.load(states.state_file(folder, task.shard, task.saved), task.digest, task.saved)
                if task.saved < task.w0:
                    out = _step(bk, sc, im, inputs, task.saved, task.w0, capacity, 1, keep=False)
                    seconds += out[3]
                    caught_up += task.w0 - task.saved
            held = None
            drained, (rec_i, rec_v, m), blk, took, need, overflowed = _step(bk, sc, im, inputs, task.w0, task.w1,
                                                                              capacity, records)
            seconds += took
            capacity = max(capacity, need)  # the next window starts with the buffers this one grew to
            records = max(records, rec_v.size)
            if not overflowed:
                break
            capacity = max(capacity, need + 1024)  # a row overflowed, or the records did: again, with room
            records = max(records, 2 * m)
    from ..kernels.enums import N_EVF, N_EVI

    ints = np.concatenate([i for i, _ in drained]) if drained else np.empty((0, N_EVI), np.int32)
    floats = np.concatenate([f for _, f in drained]) if drained else np.empty((0, N_EVF))
    ints[:, EvI.ACCOUNT] += np.int32(task.a0)
    size = 0
    if task.save:
        size = states.save(states.state_file(folder, task.shard, task.w1), task.digest, task.w1, bk, sc, im)
    _HELD[key] = (task.epoch, task.w1, (bk, sc, im))
    oi = blk[:, :, BlockAcc.OPEN_INTEREST].copy()
    blk[:, :, BlockAcc.OPEN_INTEREST] = 0.0
    # -0.0 is sent as nothing: a sum starts at +0.0 and never becomes -0.0, so x + -0.0 == x
    at = np.argwhere(blk != 0.0).astype(np.int32)
    sums = blk[at[:, 0], at[:, 1], at[:, 2]].copy()
    return ShardReport(task.shard, task.w0, task.w1, ints, floats, rec_i[:m].copy(), rec_v[:m].copy(), oi, at, sums,
                       capacity, records, seconds, size, caught_up, compiled.done, socket.gethostname(),
                       os.getpid(), address)


_SHARD_WARM: dict = {}


def warm_shard() -> dict:
    """Compile (or load from the cache) the sharding kernels once per process, on the warm-up
    book split in one shard; processes of one host take turns (the cache folder's lock)."""
    if _SHARD_WARM:
        return dict(_SHARD_WARM)
    from ..cluster import _host_lock
    from ..kernels.engine import warm_inputs
    from .kernels_nb import cache_folder

    start = time.perf_counter()
    with _host_lock(cache_folder()):
        book, paths, rates, _ = warm_inputs()
        with tempfile.TemporaryDirectory(prefix="riskcore-shard-warm-") as tmp:
            simulate_sharded(book, paths, funding=None, liquidation_fee_rate=0.01, shards=1, checkpoint_dir=tmp,
                             window=2, checkpoint_every=2, _rates=rates, task=_run_window)
    _SHARD_WARM.update(seconds=time.perf_counter() - start, pid=os.getpid())
    return dict(_SHARD_WARM)


# ------------------------------------------------------------------ the coordinator
def _validate(table, paths, *, liquidation_fee_rate, insurance_fund, liquidation_slippage, intrabar, mm_basis,
              impact, tape, adl_policy, adl_seed, shards, window, checkpoint_every):
    """simulate()'s checks, and what a sharded run refuses."""
    from ..simulate import check_paths_cover, check_settings

    check_settings(intrabar=intrabar, mm_basis=mm_basis, liquidation_fee_rate=liquidation_fee_rate,
                   liquidation_slippage=liquidation_slippage, insurance_fund=insurance_fund, adl_policy=adl_policy,
                   adl_seed=adl_seed)
    if impact:
        raise InputError(
            "simulate_sharded: market impact (impact=...) is refused: the fill price of every liquidation depends "
            "on the notional liquidated at the same point by every account of the book, and with feedback the "
            "mark itself moves, so no shard can step a point alone; run it with riskcore.simulate in one process "
            "(docs/cluster.md, 'Sharding one huge book')")
    if "venue" in table.contracts.columns:
        other = sorted({str(v) for v in table.contracts["venue"]} - {"binance"})
        if other:
            raise InputError(
                f"simulate_sharded: venue profile(s) {other} are refused: the coordinator replays the insurance "
                "fund from the fees and deficits of Binance's procedure (whole-position liquidations), and partial "
                "liquidations, takeovers and backstops pay the fund in other ways; run it with riskcore.simulate "
                "in one process")
    if tape is not None and len(tape):
        raise InputError(
            "simulate_sharded: a tape is refused: new orders take ids from one counter shared by the whole book, "
            "so a shard cannot apply its rows alone; run it with riskcore.simulate in one process")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InputError(f"shards must be a whole number >= 1, not {shards!r}")
    for name, value in (("window", window), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a whole number of bars >= 1, not {value!r}")
    check_paths_cover(table, paths)


class _Executor:
    """Runs a window's tasks: on a Dask client, or here, one after the other."""

    def __init__(self, client, task):
        self.client = client
        self.task = task
        self.attempt = 0

    def map(self, tasks: list[ShardTask]) -> list[ShardReport]:
        if self.client is None:
            return [self.task(t) for t in tasks]
        self.attempt += 1
        # a shard goes to the same worker window after window (it holds the shard's state), or
        # to another when that one is gone
        workers = sorted(self.client.scheduler_info()["workers"])
        futures = [self.client.submit(self.task, t, pure=False, workers=[workers[t.shard % len(workers)]],
                                      allow_other_workers=True,
                                      key=f"riskcore-shard-{t.digest[:10]}-{t.shard}-{t.w0}-{t.w1}-{self.attempt}")
                   for t in tasks]
        try:
            return self.client.gather(futures)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


class _Folder:
    """The run's checkpoint folder: the shards' states, the committed windows' events and
    the coordinator's state, and a manifest naming the last committed bar."""

    def __init__(self, given, digest: str):
        self.owned = given is None
        self.path = Path(tempfile.mkdtemp(prefix="riskcore-shard-")) if given is None else Path(given)
        self.digest = digest

    def manifest(self) -> dict | None:
        path = self.path / MANIFEST
        if not path.exists():
            return None
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("magic") != MAGIC or meta.get("version") != VERSION:
            raise CheckpointError(f"{path}: not a riskcore sharded run's manifest (left as it is); name another "
                                  "checkpoint_dir")
        if meta.get("digest") != self.digest:
            raise CheckpointError(f"{path} belongs to another run (different book, paths, funding, parameters, "
                                  "shards, window or riskcore version): remove the folder's riskcore-shard-* files "
                                  "to start afresh, or name another checkpoint_dir")
        return meta

    def write_json(self, name: str, meta: dict) -> None:
        path = self.path / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)

    def write_npz(self, name: str, **arrays) -> None:
        path = self.path / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def ours(self) -> list[Path]:
        return [p for p in self.path.iterdir() if p.name.startswith(("riskcore-shard-", ".riskcore-shard-"))]

    def remove(self, paths) -> None:
        for p in paths:
            Path(p).unlink(missing_ok=True)

    def finish(self) -> None:
        """The run is done: its files go (only riskcore's own; a folder riskcore made goes whole)."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.remove(self.ours())


def _merge_records(reports: list[ShardReport]):
    """Every shard's phase B records in phase B's order: by bar, point, kind, shard, order."""
    rec_i = np.concatenate([r.rec_i for r in reports])
    rec_v = np.concatenate([r.rec_v for r in reports])
    shard = np.concatenate([np.full(len(r.rec_v), s, np.int64) for s, r in enumerate(reports)])
    seq = np.concatenate([np.arange(len(r.rec_v), dtype=np.int64) for r in reports])
    order = np.lexsort((seq, shard, rec_i[:, 2], rec_i[:, 1], rec_i[:, 0]))
    return (np.ascontiguousarray(rec_i[order, 0]), np.ascontiguousarray(rec_i[order, 1]),
            np.ascontiguousarray(rec_i[order, 2]), np.ascontiguousarray(rec_v[order]))


def _merge_events(reports: list[ShardReport]) -> tuple[np.ndarray, np.ndarray]:
    """The shards' events of a window as one set of records.  Bad-debt events (the serial
    stage, ordered by their sequence) are renumbered in phase B's order of the whole book:
    a shard's k-th bad debt at a point is its k-th deficit record there."""
    from .kernels_nb import ISO_DEFICIT

    ints = np.concatenate([r.ints for r in reports])
    floats = np.concatenate([r.floats for r in reports])
    starts = np.cumsum([0] + [len(r.ints) for r in reports])
    keys = []
    for s, r in enumerate(reports):
        bad = np.flatnonzero(r.ints[:, EvI.STAGE] == Stage.BAD_DEBT)
        if bad.size == 0:
            continue
        e = r.ints[bad]
        bad = bad[np.lexsort((e[:, EvI.SEQ], e[:, EvI.K], e[:, EvI.T]))]
        deficits = np.flatnonzero(r.rec_i[:, 2] >= ISO_DEFICIT)
        d = r.rec_i[deficits]
        e = r.ints[bad]
        if len(d) != len(bad) or not (np.array_equal(d[:, 0], e[:, EvI.T]) and np.array_equal(d[:, 1], e[:, EvI.K])):
            raise ShardError(f"shard {s}, bars {r.w0}-{r.w1 - 1}: its bad-debt events do not match its deficits")
        keys.append((starts[s] + bad, d[:, 0], d[:, 1], d[:, 2], np.full(len(bad), s), np.arange(len(bad))))
    if keys:
        idx, t, k, kind, shard, j = (np.concatenate(c) for c in zip(*keys))
        order = np.lexsort((j, shard, kind, k, t))
        seq = np.empty(len(order), np.int32)
        seq[order] = np.arange(len(order), dtype=np.int32)
        ints[idx, EvI.SEQ] = seq
    return ints, floats


def simulate_sharded(book, paths, *, liquidation_fee_rate: float, insurance_fund: float = 0.0,
                     liquidation_slippage: float = 0.0, funding=None, intrabar: str = "ohlc", mm_basis: str = "mark",
                     shards: int = 2, cluster=None, client=None, checkpoint_dir=None, window: int = DEFAULT_WINDOW,
                     checkpoint_every: int = DEFAULT_EVERY, adl_policy: str = adl.DEFAULT_POLICY, adl_seed: int = 0,
                     impact=None, tape=None, cascade_rounds: int = DEFAULT_ROUNDS, event_capacity: int | None = None,
                     progress=None, task=None, _rates=None) -> Result:
    """:func:`riskcore.simulate` on a book split into ``shards`` shards of accounts, each run
    on a worker; returns the same :class:`~riskcore.result.Result`, bit for bit.

    Parameters are :func:`riskcore.simulate`'s (market impact and a tape are refused:
    both couple accounts at every point), and:

    shards : int
        Shards of whole blocks of 1,024 accounts (at most one per block).
    cluster : str, optional
        ``"local:N"``, ``"local"`` or a scheduler's address (:func:`riskcore.cluster.parse_cluster`);
        None or ``"off"``: the shards run one after the other in this process.
    client : distributed.Client, optional
        A client you have connected (instead of ``cluster``).
    checkpoint_dir : str or Path, optional
        A folder every worker sees at the same path, for the shards' state files and the
        run's committed outputs.  A run killed and called again with the same folder resumes
        from its last checkpoint.  Default: a temporary folder, removed at the end.  Only
        riskcore's own ``riskcore-shard-*`` files in it are ever removed.
    window : int
        Bars per window: the shards run this far ahead of the fund's replay (each worker
        keeps its shard's state in memory from one window to the next).
    checkpoint_every : int
        Bars between state files (at the end of the first window this many bars after the
        last one, and after every rollback).  A lost shard restarts from its last file.
    progress : callable, optional
        Called with the bars committed so far after each window.
    task : callable, optional
        What the workers run for a shard and a window (default :func:`run_window`).

    ``result.timings["shard"]`` holds the run's figures: windows, rollbacks, the bars run
    in one process, the bytes the shards reported and wrote, the coordinator's time.
    """
    import uuid

    from ..book import Book
    from ..kernels.engine import INTRABAR_CODES, DEFAULT_BLOCK, _Overflow, _result, _Run, default_capacity
    from ..kernels.engine import event_rows
    from ..kernels.pack import money_of
    from .kernels_nb import SERIAL, replay_nb, step_rows_nb

    wall = time.perf_counter()
    table = book.to_table() if isinstance(book, Book) else book
    if not isinstance(table, BookTable):
        raise TypeError(f"book must be a riskcore.BookTable or a riskcore.Book, not {type(book).__name__}")
    paths = PricePaths.from_frames(paths)
    _validate(table, paths, liquidation_fee_rate=liquidation_fee_rate, insurance_fund=insurance_fund,
              liquidation_slippage=liquidation_slippage, intrabar=intrabar, mm_basis=mm_basis, impact=impact,
              tape=tape, adl_policy=adl_policy, adl_seed=adl_seed, shards=shards, window=window,
              checkpoint_every=checkpoint_every)
    if client is not None and cluster is not None:
        raise InputError("give cluster or client, not both")
    rates = _rates if _rates is not None else funding_by_step(funding, paths)
    params = Params(INTRABAR_CODES[intrabar], mm_basis == "entry", float(liquidation_fee_rate),
                    float(liquidation_slippage), DEFAULT_BLOCK, True, False, int(cascade_rounds),
                    adl.policy_code(adl_policy), adl.check_seed(adl_seed))
    run = _Run(table, paths, rates, [], params, intrabar, mm_basis, event_capacity, float(insurance_fund))
    n_acc, n_steps = run.bk.acc_wallet.size, paths.n_steps
    n_blocks = max(1, -(-n_acc // params.block))
    if shards > n_blocks:
        raise InputError(f"shards={shards}, but the book's {n_acc:,} accounts make {n_blocks} block(s) of "
                         f"{params.block:,}: a shard is at least one block, so at most {n_blocks} shard(s)")
    cuts = states.bounds(n_acc, shards, params.block)
    digest = checkpoints.run_digest(
        (run.bk, run.mk, run.ct, run.im),
        {"params": params._asdict(), "intrabar": intrabar, "mm_basis": mm_basis, "insurance_fund": insurance_fund,
         "contracts": list(paths.contracts), "shards": cuts, "window": window, "every": checkpoint_every,
         "sharded": VERSION, "timestamps": [str(paths.timestamps[0]), str(paths.timestamps[-1]), n_steps]})
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if not checkpoint_dir.is_dir():
            raise InputError(f"checkpoint_dir {checkpoint_dir} is not a folder (create it first)")
    folder = _Folder(checkpoint_dir, digest)
    stats = {"shards": shards, "windows": 0, "rollbacks": 0, "bars_in_one_process": 0, "report_bytes": 0,
             "state_bytes": 0, "state_files": 0, "bars_caught_up": 0, "kernels_compiled_in_tasks": 0,
             "worker_kernel_seconds": 0.0,
             "coordinator_seconds": 0.0, "one_process_seconds": 0.0, "resumed_from_bar": 0, "bounds": cuts}
    capacity = event_capacity or max(default_capacity(int(run.bk.acc_slot0[b]) - int(run.bk.acc_slot0[a]), rates)
                                     for a, b in zip(cuts[:-1], cuts[1:]))
    # room for phase B's records: a liquidation fee or a deficit per position, for an eighth of
    # the largest shard's positions in one window (more: the window grows them)
    records = max(4096, max(int(run.bk.acc_slot0[b]) - int(run.bk.acc_slot0[a]) for a, b in zip(cuts[:-1], cuts[1:]))
                  // 8)
    meta = folder.manifest()

    def split_and_save(bk, sc, im, bar: int) -> None:
        for s, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
            sbk, ssc = states.split(bk, sc, a, b, params.block)
            glob = np.zeros_like(ssc.glob)
            glob[Glob.FUND] = AMPLE_FUND
            ssc = ssc._replace(glob=glob, steps=np.zeros_like(ssc.steps))
            stats["state_bytes"] += states.save(states.state_file(folder.path, s, bar), digest, bar, sbk, ssc, im)
            stats["state_files"] += 1

    def checkpoint(bar: int, events: list) -> None:
        """Everything up to ``bar`` on disk (the shards' files at ``bar`` are written): the
        events since the last checkpoint, the coordinator's state, then the manifest."""
        nonlocal meta
        part = f"riskcore-shard-events-{meta['bar']:07d}-{bar:07d}.npz"
        if events:
            folder.write_npz(part, ints=np.concatenate([i for i, _ in events]),
                             floats=np.concatenate([f for _, f in events]))
        folder.write_npz(f"riskcore-shard-coord-{bar:07d}.npz", glob=glob, steps=steps)
        old = meta["bar"]
        meta = dict(meta, bar=bar, events=meta["events"] + ([part] if events else []), capacity=capacity)
        folder.write_json(MANIFEST, meta)
        if old != bar:
            folder.remove([folder.path / f"riskcore-shard-coord-{old:07d}.npz"]
                          + [states.state_file(folder.path, s, old) for s in range(shards)])

    connection = None
    try:
        if meta is None:
            if folder.ours():
                raise CheckpointError(f"{folder.path} holds riskcore-shard-* files but no manifest (a run killed "
                                      "before its first save): remove them, or name another checkpoint_dir")
            _save_inputs(folder.path, digest, run.ct, run.mk, params)
            glob = run.sc.glob.copy()
            steps = np.zeros_like(run.sc.steps)
            split_and_save(run.bk, run.sc, run.im, 0)
            meta = {"magic": MAGIC, "version": VERSION, "digest": digest, "bar": 0, "events": [],
                    "capacity": capacity}
            checkpoint(0, [])
        else:
            with np.load(folder.path / f"riskcore-shard-coord-{meta['bar']:07d}.npz") as data:
                glob, steps = data["glob"].copy(), data["steps"].copy()
            capacity = max(capacity, int(meta.get("capacity", 0)))
            stats["resumed_from_bar"] = int(meta["bar"])
        run_token = uuid.uuid4().hex[:12]
        executor = _Executor(None, task or run_window)
        if client is None and cluster is not None and str(cluster) != "off":
            from ..cluster import connect, parse_cluster

            spec = parse_cluster(cluster)
            if spec is not None:
                connection = connect(spec)
                client = connection.__enter__()
        if client is not None:
            prepare_shard_workers(client)
            executor = _Executor(client, task or run_window)
        saved = w = int(meta["bar"])  # the last checkpoint, the bar committed
        since: list = []  # the events committed since the last checkpoint
        saved_glob, saved_steps = glob.copy(), steps.copy()
        if progress is not None and w:
            progress(w)
        while w < n_steps:
            w1 = min(n_steps, w + window)
            save = w1 == n_steps or w1 - saved >= checkpoint_every
            epoch = f"{run_token}-{stats['rollbacks']}"
            tasks = [ShardTask(str(folder.path), digest, s, cuts[s], w, w1, capacity, records, saved, save, epoch)
                     for s in range(shards)]
            reports = executor.map(tasks)
            start = time.perf_counter()
            stats["windows"] += 1
            for r in reports:
                stats["report_bytes"] += r.nbytes()
                stats["state_bytes"] += r.state_bytes
                stats["state_files"] += int(save)
                stats["bars_caught_up"] += r.caught_up
                stats["kernels_compiled_in_tasks"] += r.compiled
                stats["worker_kernel_seconds"] += r.seconds
                capacity, records = max(capacity, r.capacity), max(records, r.records)
            rec_t, rec_k, rec_kind, rec_v = _merge_records(reports)
            serial = np.zeros((w1 - w, len(SERIAL)))
            trial = glob.copy()
            short = replay_nb(rec_t, rec_k, rec_kind, rec_v, trial, np.int64(w), np.int64(w1), serial)
            if short < 0:
                blk = np.ascontiguousarray(np.concatenate([r.block_sums() for r in reports], axis=1))
                step_rows_nb(blk, serial, steps, np.int64(w))
                glob = trial
                since.append(_merge_events(reports))
                end = w1
                if save:
                    checkpoint(end, since)
                    saved, since, saved_glob, saved_steps = end, [], glob.copy(), steps.copy()
                stats["coordinator_seconds"] += time.perf_counter() - start
            else:
                # the fund falls short at bar `short`: from the last checkpoint through that bar in one
                # process, with the true fund; then a checkpoint of the split state at the next bar
                if save:
                    folder.remove(states.state_file(folder.path, s, w1) for s in range(shards))
                stats["coordinator_seconds"] += time.perf_counter() - start
                start = time.perf_counter()
                end = int(short) + 1
                while True:
                    parts = [states.load(states.state_file(folder.path, s, saved), digest, saved)
                             for s in range(shards)]
                    bk, sc = states.merge([(p[0], p[1]) for p in parts])
                    run.bk, run.sc, run.im = bk, sc._replace(glob=saved_glob.copy(), steps=saved_steps.copy()), \
                        parts[0][2]
                    del parts, bk, sc
                    run.ev, run.drained, run.need = empty_events(event_rows(), capacity), [], 0
                    try:
                        run.steps(saved, end, False, None)
                        break
                    except _Overflow:
                        capacity = run.needed_capacity() + 1024
                glob, steps = run.sc.glob.copy(), run.sc.steps
                since = [run.events()]
                split_and_save(run.bk, run.sc, run.im, end)
                run.bk = run.sc = None
                stats["rollbacks"] += 1
                stats["bars_in_one_process"] += end - saved
                stats["one_process_seconds"] += time.perf_counter() - start
                start = time.perf_counter()
                checkpoint(end, since)
                saved, since, saved_glob, saved_steps = end, [], glob.copy(), steps.copy()
                stats["coordinator_seconds"] += time.perf_counter() - start
            w = end
            if progress is not None:
                progress(w)
        # the whole book at the end, and the Result simulate() builds from it
        start = time.perf_counter()
        parts = [states.load(states.state_file(folder.path, s, n_steps), digest, n_steps) for s in range(shards)]
        bk, sc = states.merge([(p[0], p[1]) for p in parts])
        run.bk, run.sc, run.im = bk, sc._replace(glob=glob, steps=steps), parts[0][2]
        del parts, bk, sc
        drained = []
        for name in meta["events"]:
            with np.load(folder.path / name) as data:
                drained.append((data["ints"], data["floats"]))
        run.drained, run.ev, run.need = drained, empty_events(1, 1), 0
        result = _result(run, paths, money_of(table, float(insurance_fund)), params, intrabar, mm_basis,
                         insurance_fund)
        stats["coordinator_seconds"] += time.perf_counter() - start
    except BaseException:
        if folder.owned:  # nobody can resume from a folder they were not told of
            folder.finish()
        raise
    finally:
        if client is not None:  # the workers let go of the shards' states they held
            try:
                client.run(drop_held, digest)
            except Exception:  # noqa: BLE001 - a worker gone: its memory went with it
                pass
        if connection is not None:
            connection.__exit__(None, None, None)
        drop_held(digest)
    folder.finish()
    result.params["market_impact"] = {}
    result.params["cascade_rounds"] = int(cascade_rounds)
    result.params["adl_policy"] = adl_policy
    result.params["adl_seed"] = adl_seed
    result.params["venues"] = {symbol: str(v) for symbol, v in zip(table.contracts["contract"],
                                                                    table.contracts["venue"])
                               if symbol in paths.contracts}
    stats["wall_seconds"] = time.perf_counter() - wall
    result.timings["kernel"] = stats["worker_kernel_seconds"]
    result.timings["resumed_from_bar"] = stats["resumed_from_bar"]
    result.timings["shard"] = stats
    return result


def prepare_shard_workers(client) -> None:
    """Check the workers (the same riskcore) and warm both the run's kernels and the
    sharding kernels on every worker, now and on any that joins later."""
    from ..cluster import prepare_workers

    prepare_workers(client)
    client.register_plugin(ShardWarmupPlugin(), name=ShardWarmupPlugin.name)


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _PluginBase
except ImportError:  # pragma: no cover - dask is optional
    _PluginBase = object


class ShardWarmupPlugin(_PluginBase):
    """A Dask worker plugin: the sharding kernels loaded (or compiled) before any task."""
    name = "riskcore-shard-warmup"
    idempotent = True

    async def setup(self, worker):
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, warm_shard)
