"""``run_numba``: validate-free fast path of :func:`riskcore.simulate` on the numba kernels.

Phases: pack (the book table -> struct-of-arrays, paths -> dense ``[n_steps, n_contracts, 4]``)
-> run the kernels bar by bar -> unpack into a :class:`~riskcore.result.Result` whose final
state is a :class:`~riskcore.table.BookTable` and whose events are a columnar frame.  Bars
that carry tape actions are split: the kernel settles the bar's funding,
:func:`~riskcore.kernels.actions_nb.apply_tape_nb` applies the bar's actions (every
refusal as the Book's), and the kernel resumes at the bar's limit fills.  The tape is
encoded once (:mod:`riskcore.kernels.tape`), and the book packed with room for the slots
and orders it may add.  Nothing here imports the Book or the reference engine.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from ..adl import DEFAULT_POLICY, check_seed, policy_code
from ..errors import RiskcoreError
from ..impact import DEFAULT_ROUNDS, multiplier
from ..inputs import PricePaths, bar_points
from ..result import Result, steps_from_array
from .. import malloc
from ..table import BookTable
from . import checkpoint as checkpoints
from .account_nb import init_lp_nb
from .actions_nb import apply_tape_nb
from .enums import Glob, Intrabar, Ledger
from .pack import contract_arrays, events_frame, gather_events, money_of, pack_table, unpack_table
from .state import Market, Params, empty_events, mark_state, new_levels, new_scratch, wake_all
from .step_nb import funding_only_nb, run_steps_nb
from .tape import encode_tape, prepare_tape, tape_events

INTRABAR_CODES = {"close": Intrabar.CLOSE, "ohlc": Intrabar.OHLC, "worst": Intrabar.WORST}
DEFAULT_BLOCK = 1024


class EventBufferOverflow(RiskcoreError, RuntimeError):
    """More events than ``event_capacity`` holds; the message says how many to allow."""


def event_rows() -> int:
    """Buffer rows: one per worker thread the parallel layer may use, one for the serial phase."""
    return int(numba.config.NUMBA_NUM_THREADS) + 1


CHUNK = 32  # bars per kernel call: the event buffers are emptied between calls
MIN_PROGRESS_CHUNK = 8  # bars per call at least when a progress bar is shown


def default_capacity(n_slots: int, rates: np.ndarray) -> int:
    """Events per buffer row: what one funding bar writes (an event per position) when
    the path has funding, plus a 32nd of the positions, shared by the worker rows, and a
    floor for small books.  ``run_steps_nb`` stops at the end of a bar that left a row
    more than half full and before a funding bar when the buffers hold events; the
    buffers are emptied then and after each chunk of :data:`CHUNK` bars, and doubled
    when a row got three quarters full, so a run holds its events once, compactly,
    rather than buffers sized for the worst case.  A bar that overflows a row all the
    same makes the run start again with larger buffers."""
    due = bool(np.any(rates != 0.0))
    return 65_536 + (n_slots * due + n_slots // 32) // max(1, event_rows() - 1)


class _Overflow(Exception):
    """A chunk's events did not fit: the run stops and is repeated with larger buffers."""


def market_arrays(table: BookTable, paths: PricePaths, rates: np.ndarray, intrabar: str) -> Market:
    ohlc = np.ascontiguousarray(paths.ohlc, dtype=np.float64)
    init = bar_points(ohlc[0], intrabar)[0].copy()
    marks = table.marks()
    for c, symbol in enumerate(paths.contracts):  # the run starts from the book's marks
        mark = marks.get(symbol)
        if mark is not None:
            init[c, :] = mark
    return Market(ohlc, np.ascontiguousarray(rates, dtype=np.float64), np.ascontiguousarray(init))


class _Run:
    """One kernel run over the whole path, with the tape applied between segments."""

    def __init__(self, book, paths, rates, actions, params: Params, intrabar: str, mm_basis: str,
                 capacity: int | None, insurance_fund: float, checkpoint: Path | None = None,
                 checkpoint_every: float = 60.0, impact: dict | None = None):
        book = book if isinstance(book, BookTable) else book.to_table()
        self.base = book
        self.paths = paths
        self.rates = rates
        self.actions = list(actions)
        self.pr = params
        self.intrabar = intrabar
        self.mm_basis = mm_basis
        contracts = tuple(paths.contracts)
        self.ct = contract_arrays(book, contracts, params.fee_rate, params.adl_policy)
        self.im = mark_state(impact, contracts)
        self.mk = market_arrays(book, paths, rates, intrabar)
        self.bk, self.meta = pack_table(book, contracts)
        self.tape = encode_tape(self.actions, self.meta.account_ids, contracts, tuple(book.symbols))
        self.bk, self.tst = prepare_tape(self.bk, self.tape, self.meta.next_order_id)
        self.tev = empty_events(1, max(1, len(self.actions)))  # one event per action: never full
        init_lp_nb(self.bk, self.ct, params.mm_entry)
        n_acc = self.bk.acc_wallet.size
        n_blocks = max(1, -(-n_acc // params.block))
        self.sc = new_scratch(self.bk.s_qty.size, n_acc, n_blocks, paths.n_steps, len(contracts))
        self.lv = new_levels(self.mk.ohlc, params.intrabar, self.ct)
        self.sc.glob[Glob.FUND] = insurance_fund
        cap = capacity if capacity is not None else default_capacity(self.bk.s_qty.size, rates)
        self.ev = empty_events(event_rows(), cap)
        self.drained: list = []  # (ints, floats) of the chunks run so far
        self.need = 0  # the most events one buffer row took in one chunk (held or overflowed)
        self.action_events: list[dict] = []
        self.action_ledger = {"realized_pnl": 0.0, "deposits": 0.0}
        self.fees_kernel_base = 0.0  # the book's fees at the last pack, beyond the kernel's own sums
        self.fees_base = self.meta.fees_collected
        self.kernel_seconds = 0.0  # time inside the stepping kernels (for honest phase timings)
        self.t_start = 0  # the first bar this process runs (> 0: resumed from a checkpoint)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        if checkpoint is not None:
            self._resume(params, intrabar, mm_basis, insurance_fund)

    # ---------------------------------------------------------------- checkpoints
    def _resume(self, params: Params, intrabar: str, mm_basis: str, insurance_fund: float) -> None:
        """Take the run's state from its checkpoint file when there is one (kernels/checkpoint.py)."""
        self.digest = checkpoints.run_digest(
            (self.bk, self.mk, self.tape.arrays, self.ct, self.im),
            {"params": params._asdict(), "intrabar": intrabar, "mm_basis": mm_basis,
             "insurance_fund": insurance_fund, "contracts": list(self.paths.contracts),
             "timestamps": [str(self.paths.timestamps[0]), str(self.paths.timestamps[-1]), self.paths.n_steps]})
        self.last_save = time.perf_counter()
        saved = checkpoints.load(self.checkpoint, self.digest, self._state())
        if saved is None:
            return
        t_done, state, drained, meta = saved
        self.bk, self.sc, self.tst, self.tev, self.im = state["bk"], state["sc"], state["tst"], state["tev"], state["im"]
        self.drained = drained
        self.need = int(meta.get("need", 0))
        capacity = int(meta.get("capacity", 0))
        if capacity > self.ev.ints.shape[1]:
            self.ev = empty_events(self.ev.count.size, capacity)
        self.t_start = t_done

    def _state(self) -> dict:
        return {"bk": self.bk, "sc": self.sc, "tst": self.tst, "tev": self.tev, "im": self.im}

    def _save(self, t_done: int) -> None:
        if self.checkpoint is None or t_done >= self.paths.n_steps:
            return
        if time.perf_counter() - self.last_save < self.checkpoint_every:
            return
        checkpoints.save(self.checkpoint, self.digest, t_done, self._state(), self.drained,
                         {"need": self.need, "capacity": int(self.ev.ints.shape[1])})
        self.last_save = time.perf_counter()

    def kernel_fees(self) -> float:
        return float(self.sc.blk_ledger[:, Ledger.FEES].sum())

    def run(self, progress=None) -> None:
        n_steps = self.paths.n_steps
        t0, resume = self.t_start, False
        if t0 and progress is not None:
            progress(t0)
        for ts in self.tape.steps:
            if ts < t0:  # before the checkpoint this run resumed from
                continue
            self.steps(t0, ts, resume, progress)
            start = time.perf_counter()
            funding_only_nb(self.bk, self.ct, self.mk, self.lv, self.sc, self.ev, self.pr, self.im, ts)
            if np.any(self.mk.rates[ts] != 0.0):  # funding paid every position: look at every account
                wake_all(self.sc, ts)
            self.apply_actions(ts)
            self.kernel_seconds += time.perf_counter() - start
            self.drain()  # the funding bar's events out before the bar's points add theirs
            t0, resume = ts, True
        self.steps(t0, n_steps, resume, progress)
        self.tape_results()

    def steps(self, t0: int, t1: int, resume: bool, progress) -> None:
        """Bars ``t0:t1`` in kernel calls of :data:`CHUNK` bars (smaller when someone watches
        the progress: about 5% of the run, at least :data:`MIN_PROGRESS_CHUNK` bars, since
        every call starts the parallel threads again), emptying the event buffers after each
        call (a chunk boundary is a plain bar boundary)."""
        chunk = CHUNK if progress is None else min(CHUNK, max(MIN_PROGRESS_CHUNK, self.paths.n_steps // 20))
        while t0 < t1:
            end = min(t1, t0 + chunk)
            start = time.perf_counter()
            end = int(run_steps_nb(self.bk, self.ct, self.mk, self.lv, self.sc, self.ev, self.pr, self.im, t0, end,
                                   resume))  # earlier than asked when a buffer row is half full
            self.kernel_seconds += time.perf_counter() - start
            self.drain()
            self._save(end)
            if progress is not None:
                progress(end)
            t0, resume = end, False

    def drain(self) -> None:
        """Move the buffers' events out (compact copies), and double the buffers when a row
        got more than three quarters full (the kernel stops once a row is half full, so one
        bar then wrote a quarter of a row); raise :class:`_Overflow` when a row overflowed."""
        ev = self.ev
        held = ev.count + ev.overflow
        self.need = max(self.need, int(held.max()))
        if ev.overflow.any():
            raise _Overflow
        for r in range(ev.count.size):
            n = int(ev.count[r])
            if n:
                self.drained.append((ev.ints[r, :n].copy(), ev.floats[r, :n].copy()))
        ev.count[:] = 0
        if 4 * self.need > 3 * ev.ints.shape[1]:  # a bar wrote a quarter of a row: double the rows
            self.ev = empty_events(ev.count.size, 2 * ev.ints.shape[1])

    def events(self) -> tuple[np.ndarray, np.ndarray]:
        """Every event of the run (ints, floats), chunk after chunk."""
        self.drain()
        if not self.drained:
            ints, floats = gather_events(self.ev)
            return ints, floats
        # copied into place chunk by chunk, each chunk let go once copied: the events are
        # held about once, not twice as np.concatenate would hold them
        n = sum(len(i) for i, _ in self.drained)
        first_i, first_f = self.drained[0]
        ints = np.empty((n,) + first_i.shape[1:], first_i.dtype)
        floats = np.empty((n,) + first_f.shape[1:], first_f.dtype)
        del first_i, first_f
        at = 0
        self.drained.reverse()
        while self.drained:
            i, f = self.drained.pop()
            ints[at:at + len(i)] = i
            floats[at:at + len(i)] = f
            at += len(i)
            del i, f
        return ints, floats

    def apply_actions(self, ts: int) -> None:
        """The tape's actions of bar ``ts``, in the kernel (every account they change wakes)."""
        lo, hi = self.tape.bounds(ts)
        apply_tape_nb(self.bk, self.ct, self.mk, self.pr, self.tape.arrays, self.tst, self.sc, self.tev, lo, hi, ts,
                      self.im.shift)

    def tape_results(self) -> None:
        """The tape's events (as the reference's dicts) and its share of the ledger."""
        n = int(self.tev.count[0])
        self.action_events = tape_events(self.tev.ints[0, :n], self.tev.floats[0, :n], self.tape,
                                         self.meta.account_ids, self.meta.contracts)
        self.action_ledger["realized_pnl"] = float(self.tst.ledger[0])
        self.action_ledger["deposits"] = float(self.tst.ledger[1])

    def needed_capacity(self) -> int:
        return self.need


def run_numba(book, paths, funding_rates=None, actions=None, *, liquidation_fee_rate: float,
              insurance_fund: float = 0.0, liquidation_slippage: float = 0.0, intrabar: str = "ohlc",
              mm_basis: str = "mark", block: int = DEFAULT_BLOCK, event_capacity: int | None = None,
              on_overflow: str = "grow", progress=None, sleep: bool = True, checkpoint=None,
              checkpoint_every: float = 60.0, impact: dict | None = None,
              cascade_rounds: int = DEFAULT_ROUNDS, adl_policy: str = DEFAULT_POLICY, adl_seed: int = 0) -> Result:
    """Simulate on the numba kernels; the same :class:`Result` as the reference engine.

    Parameters are :func:`riskcore.simulate`'s after validation: ``paths`` a
    :class:`PricePaths`, ``funding_rates`` the ``[n_steps, n_contracts]`` array of
    :func:`riskcore.inputs.funding_by_step` (None: no funding), ``actions`` the list of
    :func:`riskcore.inputs.schedule_tape`.  ``block`` accounts per parallel work item;
    ``event_capacity`` events per buffer row (default :func:`default_capacity`);
    ``on_overflow`` ``"grow"`` (run again with room for every event) or ``"raise"``
    (:class:`EventBufferOverflow`).  ``progress(bars_done)`` is called as bars finish
    (never going back when a run is repeated to grow the buffers).  ``sleep=False`` looks
    at every account at every point (the same result, slower; for tests and benchmarks).
    ``book`` is a :class:`~riskcore.table.BookTable` (or anything with a ``to_table()``,
    such as a Book); it is not modified.  ``checkpoint``, a file path: the run's state is
    saved there at bar boundaries, at most every ``checkpoint_every`` seconds, and a run
    of the same inputs resumes from it (:mod:`riskcore.kernels.checkpoint`); the file is
    removed when the run finishes.  ``impact``: ``{symbol: Impact}`` (:mod:`riskcore.impact`),
    ``cascade_rounds`` the bound on cascade rounds per point.  ``adl_policy`` and
    ``adl_seed``: who is auto-deleveraged (:mod:`riskcore.adl`); a bad name raises
    :class:`~riskcore.inputs.InputError`.
    """
    book = book if isinstance(book, BookTable) else book.to_table()
    malloc.release()  # memory freed before the run (building the book, say) goes back to the system
    paths = PricePaths.from_frames(paths)
    rates = np.zeros((paths.n_steps, paths.n_contracts)) if funding_rates is None else np.asarray(funding_rates)
    actions = [] if actions is None else list(actions)
    if intrabar not in INTRABAR_CODES:
        raise ValueError(f"intrabar must be one of {tuple(INTRABAR_CODES)}, not {intrabar!r}")
    if mm_basis not in ("mark", "entry"):
        raise ValueError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")
    if on_overflow not in ("grow", "raise"):
        raise ValueError(f"on_overflow must be 'grow' or 'raise', not {on_overflow!r}")
    impact = dict(impact or {})
    impact_on = any(spec.active for spec in impact.values())
    params = Params(INTRABAR_CODES[intrabar], mm_basis == "entry", float(liquidation_fee_rate),
                    float(liquidation_slippage), int(block), bool(sleep), impact_on, int(cascade_rounds),
                    policy_code(adl_policy), check_seed(adl_seed))
    money_start = money_of(book, float(insurance_fund))
    capacity = event_capacity
    shown = [0]

    def advance(bars: int) -> None:
        if progress is not None and bars > shown[0]:
            shown[0] = bars
            progress(bars)

    checkpoint = None if checkpoint is None else Path(checkpoint)
    while True:
        run = _Run(book, paths, rates, actions, params, intrabar, mm_basis, capacity, float(insurance_fund),
                   checkpoint, float(checkpoint_every), impact)
        try:
            run.run(advance if progress is not None else None)
            break
        except _Overflow:
            pass
        need = run.needed_capacity()
        if on_overflow == "raise":
            raise EventBufferOverflow(
                f"a stretch of {CHUNK} bars recorded {need:,} events in one buffer row but the buffers hold "
                f"{run.ev.ints.shape[1]:,} per row; pass event_capacity={need + 1024} or on_overflow='grow'")
        capacity = need + 1024  # any one row may take them all
    resumed = run.t_start
    result = _result(run, paths, money_start, params, intrabar, mm_basis, insurance_fund)
    result.params["market_impact"] = {symbol: dataclasses.asdict(spec) for symbol, spec in impact.items()}
    result.params["cascade_rounds"] = int(cascade_rounds)
    result.params["adl_policy"] = adl_policy
    result.params["adl_seed"] = adl_seed
    result.timings["resumed_from_bar"] = resumed
    if checkpoint is not None:
        checkpoints.remove(checkpoint)
    return result


def _result(run: _Run, paths: PricePaths, money_start: float, params: Params, intrabar: str, mm_basis: str,
            insurance_fund: float) -> Result:
    """The Result, built so that the run's arrays are let go as soon as they have been read:
    the scratch and the path summary first, the event chunks once the frame is built, the
    book's arrays once the final table holds what it needs (peak memory stays near the
    input table plus the packed arrays)."""
    sc = run.sc
    shift = run.im.shift
    marks = {symbol: float(paths.ohlc[-1, c, 3]) * multiplier(float(shift[c, 0]), float(shift[c, 1]))
             for c, symbol in enumerate(paths.contracts)}  # the last close, times the mark's multiplier
    fund = float(sc.glob[Glob.FUND])
    ledger = {
        "realized_pnl": float(sc.blk_ledger[:, Ledger.REALIZED].sum()) + float(sc.glob[Glob.REALIZED])
        + run.action_ledger["realized_pnl"],
        "funding": float(sc.blk_ledger[:, Ledger.FUNDING].sum()),
        "deposits": run.action_ledger["deposits"],
        "socialised_loss": float(sc.glob[Glob.SOCIALISED]),
    }
    fees = run.fees_base + run.kernel_fees()
    steps = steps_from_array(sc.steps, paths.timestamps)
    run.sc = run.lv = sc = None  # scratch and path summary: no longer needed
    ints, floats = run.events()
    run.drained, run.ev = [], None
    events = events_frame(ints, floats, run.meta, paths.timestamps, run.action_events)
    del ints, floats
    if not run.actions:  # the settings are the start book's: the dense matrices go before the table is built
        run.bk = run.bk._replace(set_mode=None, set_lev_long=None, set_lev_short=None, set_auto_long=None,
                                 set_auto_short=None, set_stored=None, s_lp=None)
    final = unpack_table(run.base, run.bk, run.meta, marks, fees, int(run.tst.ids[0]), with_tape=bool(run.actions))
    run.bk = None
    ledger.update(money_start=money_start, money_end=money_of(final, fund), insurance_fund=fund,
                  trading_fees=final.fees_collected)
    result = Result(events, steps, final, ledger=ledger)
    result.params = {"liquidation_fee_rate": params.fee_rate, "insurance_fund": insurance_fund,
                     "liquidation_slippage": params.slippage, "intrabar": intrabar, "mm_basis": mm_basis,
                     "engine": "numba", "n_steps": paths.n_steps, "contracts": list(paths.contracts)}
    result.timings = {"kernel": run.kernel_seconds}
    return result


def warmup_entries(tape: bool = True) -> list:
    """The jitted functions called from Python: the stepping kernels, the read-outs' loops and,
    with ``tape``, the kernels that apply a tape (a run without one never compiles them)."""
    from .. import readouts
    from .account_nb import init_lp_nb
    from .compiling import is_kernel
    from .sleep_nb import levels_nb

    entries = [run_steps_nb, init_lp_nb, levels_nb]
    entries += [obj for obj in vars(readouts).values() if is_kernel(obj) and obj.py_func.__module__ == readouts.__name__]
    if tape:
        entries += [funding_only_nb, apply_tape_nb]
    return entries


def warmup(tape: bool = True, progress=None) -> dict:
    """Compile (or load from the cache) every kernel once, serially, on a tiny book that
    reaches fills, TP/SL, top-ups, liquidations, bad debt, ADL and the tape (without
    ``tape``: every kernel but the tape's), and the read-outs' loops
    (:mod:`riskcore.readouts`).  ``progress(done, total, name, seconds)`` is called as each
    kernel starts compiling (:class:`~riskcore.kernels.compiling.CompileProgress`).
    Returns ``{"seconds": time taken, "compiled": kernels compiled}``."""
    from .compiling import CompileProgress, kernels_to_compile

    start = time.perf_counter()
    watch = CompileProgress(len(kernels_to_compile(warmup_entries(tape))), progress or (lambda *a: None))
    with watch:
        _warm(tape)
    return {"seconds": time.perf_counter() - start, "compiled": watch.done}


def warm_inputs() -> tuple:
    """The warm-up's tiny book, paths, funding rates and tape (see :func:`warmup`)."""
    from ..brackets import Brackets
    from ..inputs import funding_by_step, schedule_tape
    from ..table import contract_frames

    tiers = [{"notional_floor": 0, "notional_cap": 2_000, "mmr": 0.01, "max_leverage": 50},
             {"notional_floor": 2_000, "notional_cap": 1e12, "mmr": 0.05, "max_leverage": 10}]
    contracts, brackets = contract_frames({s: Brackets.from_records(tiers, symbol=s) for s in ("AAA", "BBB")},
                                          {"AAA": 100.0, "BBB": 100.0})
    # account 1: isolated long 15 with auto-add; 2: cross long 25 at 10x and a resting BBB buy;
    # 3: cross short 40 at 10x with a take profit (opening taker fees already paid)
    book = BookTable.from_frames({
        "meta": pd.DataFrame({"format_version": [1], "default_leverage": [20.0], "fees_collected": [4.0],
                              "next_order_id": [2]}),
        "contracts": contracts, "brackets": brackets,
        "accounts": pd.DataFrame({"account": [1, 2, 3], "wallet": [124.25, 298.75, 2_998.0],
                                  "position_mode": ["one-way"] * 3}),
        "settings": pd.DataFrame({"account": [1, 2, 2, 3], "contract": ["AAA", "AAA", "BBB", "AAA"],
                                  "margin_mode": ["isolated", "cross", "cross", "cross"],
                                  "leverage_long": [20.0, 10.0, 20.0, 10.0], "leverage_short": [20.0, 10.0, 20.0, 10.0],
                                  "auto_add_long": [True, False, False, False],
                                  "auto_add_short": [True, False, False, False]}),
        "positions": pd.DataFrame({"account": [1, 2, 3], "contract": ["AAA"] * 3, "leg": ["both"] * 3,
                                   "side": [1, 1, -1], "qty": [15.0, 25.0, 40.0], "entry_price": [100.0] * 3,
                                   "wallet_iso": [75.0, 0.0, 0.0], "take_profit": [np.nan, np.nan, 60.0],
                                   "stop_loss": [np.nan] * 3}),
        "orders": pd.DataFrame({"order_id": [1], "account": [2], "contract": ["BBB"], "leg": ["both"], "side": [1],
                                "qty": [1.0], "price": [95.0], "reduce_only": [False]}),
    })
    stamps = pd.date_range("2025-01-01", periods=3, freq="1min")
    frame = pd.DataFrame({"timestamp": stamps, "open": [100.0, 70.0, 70.0], "high": [101.0, 71.0, 72.0],
                          "low": [99.0, 60.0, 69.0], "close": [100.0, 70.0, 70.0]})
    paths = PricePaths.from_frames({"AAA": frame, "BBB": frame})
    rates = funding_by_step({"AAA": pd.DataFrame({"timestamp": stamps[:1], "rate": [0.001]})}, paths)
    tape = schedule_tape([{"timestamp": stamps[1], "action": "deposit", "account": 3, "amount": 1.0}], paths)
    return book, paths, rates, tape


def warm_run(book, paths, rates) -> _Run:
    """A run of the warm-up book set up as :func:`run_numba` sets it up, not yet stepped (it
    calls the set-up kernels ``init_lp_nb`` and ``levels_nb``): its arrays have the types
    the stepping kernels are compiled for."""
    params = Params(INTRABAR_CODES["ohlc"], False, 0.01, 0.0, DEFAULT_BLOCK, True)
    return _Run(book, PricePaths.from_frames(paths), rates, [], params, "ohlc", "mark", None, 0.0)


def _warm(with_tape: bool) -> None:
    book, paths, rates, tape = warm_inputs()
    for intrabar in INTRABAR_CODES:
        result = run_numba(book, paths, rates, tape if with_tape else None, liquidation_fee_rate=0.01, intrabar=intrabar)
    from ..readouts import readouts  # the read-outs' jitted loops too (a scenario run needs them next)

    readouts(book.frames())
    readouts(result.final.frames())
