"""``run_numba``: validate-free fast path of :func:`riskcore.simulate` on the numba kernels.

Phases: pack (book tables -> struct-of-arrays, paths -> dense ``[n_steps, n_contracts, 4]``)
-> run the kernels bar by bar -> unpack into the reference engine's
:class:`~riskcore.result.Result`.  Bars that carry tape actions are split: the kernel
settles the bar's funding, :func:`~riskcore.kernels.actions_nb.apply_tape_nb` applies
the bar's actions (every refusal as the Book's), and the kernel resumes at the bar's
limit fills.  The tape is encoded once (:mod:`riskcore.kernels.tape`), and the book
packed with room for the slots and orders it may add.
"""
from __future__ import annotations

import time

import numba
import numpy as np
import pandas as pd

from ..book import Book
from ..inputs import PricePaths, ScheduledAction, bar_points
from ..result import STEP_COLUMNS, Result, steps_frame
from ..errors import RiskcoreError
from .enums import Glob, Intrabar, Ledger
from .actions_nb import apply_tape_nb
from .pack import (PackMeta, contract_arrays, events_frame, gather_events, init_lp_nb, pack_book, pack_frames,
                   unpack_book, unpack_modes)
from .state import Market, Params, empty_events, new_levels, new_scratch, wake_all
from .step_nb import funding_only_nb, run_steps_nb
from .tape import encode_tape, prepare_tape, tape_events

INTRABAR_CODES = {"close": Intrabar.CLOSE, "ohlc": Intrabar.OHLC, "worst": Intrabar.WORST}
DEFAULT_BLOCK = 1024


class EventBufferOverflow(RiskcoreError, RuntimeError):
    """More events than ``event_capacity`` holds; the message says how many to allow."""


def event_rows() -> int:
    """Buffer rows: one per worker thread the parallel layer may use, one for the serial phase."""
    return int(numba.config.NUMBA_NUM_THREADS) + 1


def default_capacity(n_slots: int, rates: np.ndarray) -> int:
    """Events per buffer row: room for one event per position plus every funding event,
    shared by the worker rows, and a floor for small books."""
    n_funding = int(np.count_nonzero(np.any(rates != 0.0, axis=1)))
    return 65_536 + (n_slots * (n_funding + 1)) // max(1, event_rows() - 1)


def market_arrays(book: Book, paths: PricePaths, rates: np.ndarray, intrabar: str) -> Market:
    ohlc = np.ascontiguousarray(paths.ohlc, dtype=np.float64)
    init = bar_points(ohlc[0], intrabar)[0].copy()
    for c, symbol in enumerate(paths.contracts):  # the run starts from the book's marks
        mark = book.contracts[symbol].mark_price
        if mark is not None:
            init[c, :] = mark
    return Market(ohlc, np.ascontiguousarray(rates, dtype=np.float64), np.ascontiguousarray(init))


def money(book: Book, fund: float) -> float:
    """``ReferenceEngine.money``: wallets + isolated wallets + fund + fees (same summation order)."""
    return (sum(a.wallet for a in book.accounts.values())
            + sum(p.wallet_iso for a in book.accounts.values() for p in a.positions.values())
            + fund + book.fees_collected)


class _Run:
    """One kernel run over the whole path, with the tape applied between segments."""

    def __init__(self, book, paths, rates, actions, params: Params, intrabar: str, mm_basis: str,
                 capacity: int | None, insurance_fund: float):
        self.base = book
        self.paths = paths
        self.rates = rates
        self.actions = list(actions)
        self.pr = params
        self.intrabar = intrabar
        self.mm_basis = mm_basis
        contracts = tuple(paths.contracts)
        self.ct = contract_arrays(book, contracts)
        self.mk = market_arrays(book, paths, rates, intrabar)
        self.bk, self.meta = pack_book(book, contracts)
        self.tape = encode_tape(self.actions, self.meta.account_ids, contracts, tuple(book.contracts))
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
        self.action_events: list[dict] = []
        self.action_ledger = {"realized_pnl": 0.0, "deposits": 0.0}
        self.fees_kernel_base = 0.0  # the book's fees at the last pack, beyond the kernel's own sums
        self.fees_base = self.meta.fees_collected

    def kernel_fees(self) -> float:
        return float(self.sc.blk_ledger[:, Ledger.FEES].sum())

    def current_book(self, marks: dict) -> Book:
        book = unpack_book(self.base, self.bk, self.meta, marks, self.fees_base + self.kernel_fees(),
                           int(self.tst.ids[0]))
        ta = self.tape.arrays  # only accounts the tape names can have new modes or settings
        return unpack_modes(book, self.bk, self.meta, ta.account[~ta.static & (ta.account >= 0)])

    def run(self, progress=None) -> None:
        n_steps = self.paths.n_steps
        t0, resume = 0, False
        for ts in self.tape.steps:
            self.steps(t0, ts, resume, progress)
            funding_only_nb(self.bk, self.ct, self.mk, self.lv, self.sc, self.ev, self.pr, ts)
            if np.any(self.mk.rates[ts] != 0.0):  # funding paid every position: look at every account
                wake_all(self.sc, ts)
            self.apply_actions(ts)
            t0, resume = ts, True
        self.steps(t0, n_steps, resume, progress)
        self.tape_results()

    def steps(self, t0: int, t1: int, resume: bool, progress) -> None:
        """Bars ``t0:t1`` in one kernel call, or in chunks of about 1% of the run when
        someone is watching the progress (a chunk boundary is a plain bar boundary)."""
        if progress is None:
            run_steps_nb(self.bk, self.ct, self.mk, self.lv, self.sc, self.ev, self.pr, t0, t1, resume)
            return
        chunk = max(1, self.paths.n_steps // 100)
        while t0 < t1:
            end = min(t1, t0 + chunk)
            run_steps_nb(self.bk, self.ct, self.mk, self.lv, self.sc, self.ev, self.pr, t0, end, resume)
            progress(end)
            t0, resume = end, False

    def apply_actions(self, ts: int) -> None:
        """The tape's actions of bar ``ts``, in the kernel (every account they change wakes)."""
        lo, hi = self.tape.bounds(ts)
        apply_tape_nb(self.bk, self.ct, self.mk, self.pr, self.tape.arrays, self.tst, self.sc, self.tev, lo, hi, ts)

    def tape_results(self) -> None:
        """The tape's events as the reference's dicts, and its share of the ledger."""
        n = int(self.tev.count[0])
        self.action_events = tape_events(self.tev.ints[0, :n], self.tev.floats[0, :n], self.tape,
                                         self.meta.account_ids, self.meta.contracts)
        self.action_ledger["realized_pnl"] = float(self.tst.ledger[0])
        self.action_ledger["deposits"] = float(self.tst.ledger[1])

    def overflow(self) -> int:
        return int(self.ev.overflow.sum())

    def needed_capacity(self) -> int:
        return int((self.ev.count + self.ev.overflow).sum())


def run_numba(book: Book, paths, funding_rates=None, actions=None, *, liquidation_fee_rate: float,
              insurance_fund: float = 0.0, liquidation_slippage: float = 0.0, intrabar: str = "ohlc",
              mm_basis: str = "mark", block: int = DEFAULT_BLOCK, event_capacity: int | None = None,
              on_overflow: str = "grow", progress=None, sleep: bool = True) -> Result:
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
    The book is not modified.
    """
    paths = PricePaths.from_frames(paths)
    rates = np.zeros((paths.n_steps, paths.n_contracts)) if funding_rates is None else np.asarray(funding_rates)
    actions = [] if actions is None else list(actions)
    if intrabar not in INTRABAR_CODES:
        raise ValueError(f"intrabar must be one of {tuple(INTRABAR_CODES)}, not {intrabar!r}")
    if mm_basis not in ("mark", "entry"):
        raise ValueError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")
    if on_overflow not in ("grow", "raise"):
        raise ValueError(f"on_overflow must be 'grow' or 'raise', not {on_overflow!r}")
    params = Params(INTRABAR_CODES[intrabar], mm_basis == "entry", float(liquidation_fee_rate),
                    float(liquidation_slippage), int(block), bool(sleep))
    money_start = money(book, float(insurance_fund))
    capacity = event_capacity
    shown = [0]

    def advance(bars: int) -> None:
        if progress is not None and bars > shown[0]:
            shown[0] = bars
            progress(bars)

    while True:
        run = _Run(book, paths, rates, actions, params, intrabar, mm_basis, capacity, float(insurance_fund))
        run.run(advance if progress is not None else None)
        if run.overflow() == 0:
            break
        need = run.needed_capacity()
        if on_overflow == "raise":
            raise EventBufferOverflow(
                f"the run recorded {need:,} events but the buffers hold {run.ev.ints.shape[1]:,} per row "
                f"({run.overflow():,} did not fit); pass event_capacity={need + 1024} or on_overflow='grow'")
        capacity = need + 1024  # any one row may take them all
    return _result(run, paths, money_start, params, intrabar, mm_basis, insurance_fund)


def _result(run: _Run, paths: PricePaths, money_start: float, params: Params, intrabar: str, mm_basis: str,
            insurance_fund: float) -> Result:
    marks = {symbol: float(paths.ohlc[-1, c, 3]) for c, symbol in enumerate(paths.contracts)}
    final = run.current_book(marks)
    ints, floats = gather_events(run.ev)
    events = events_frame(ints, floats, run.meta, paths.timestamps, run.action_events)
    steps = run.sc.steps
    rows = []
    for t in range(paths.n_steps):
        row = {"step": t, "timestamp": pd.Timestamp(paths.timestamps[t])}
        row.update(zip(STEP_COLUMNS[2:], steps[t].tolist()))
        rows.append(row)
    fund = float(run.sc.glob[Glob.FUND])
    ledger = {
        "realized_pnl": float(run.sc.blk_ledger[:, Ledger.REALIZED].sum()) + float(run.sc.glob[Glob.REALIZED])
        + run.action_ledger["realized_pnl"],
        "funding": float(run.sc.blk_ledger[:, Ledger.FUNDING].sum()),
        "deposits": run.action_ledger["deposits"],
        "socialised_loss": float(run.sc.glob[Glob.SOCIALISED]),
    }
    ledger.update(money_start=money_start, money_end=money(final, fund), insurance_fund=fund,
                  trading_fees=final.fees_collected)
    result = Result(events, steps_frame(rows), final, ledger=ledger)
    result.params = {"liquidation_fee_rate": params.fee_rate, "insurance_fund": insurance_fund,
                     "liquidation_slippage": params.slippage, "intrabar": intrabar, "mm_basis": mm_basis,
                     "engine": "numba", "n_steps": paths.n_steps, "contracts": list(paths.contracts)}
    return result


def warmup() -> dict:
    """Compile (or load from the cache) every kernel once, serially, on a tiny book that
    reaches fills, TP/SL, top-ups, liquidations, bad debt and ADL.  Returns seconds taken."""
    from ..brackets import Brackets
    from ..inputs import funding_by_step, schedule_tape

    start = time.perf_counter()
    book = Book()
    tiers = [{"notional_floor": 0, "notional_cap": 2_000, "mmr": 0.01, "max_leverage": 50},
             {"notional_floor": 2_000, "notional_cap": 1e12, "mmr": 0.05, "max_leverage": 10}]
    for symbol in ("AAA", "BBB"):
        book.add_contract(symbol, Brackets.from_records(tiers, symbol=symbol), mark_price=100.0)
    book.add_account(1, wallet=200.0)
    book.set_margin_mode(1, "AAA", "isolated")
    book.set_auto_add_margin(1, "AAA", True)
    book.market_order(1, "AAA", "buy", 15.0, 100.0)
    book.add_account(2, wallet=300.0)
    book.set_leverage(2, "AAA", 10)
    book.market_order(2, "AAA", "buy", 25.0, 100.0)
    book.limit_order(2, "BBB", "buy", 1.0, 95.0)
    book.add_account(3, wallet=3_000.0)
    book.set_leverage(3, "AAA", 10)
    book.market_order(3, "AAA", "sell", 40.0, 100.0)
    book.set_tp_sl(3, "AAA", take_profit=60.0)
    stamps = pd.date_range("2025-01-01", periods=3, freq="1min")
    frame = pd.DataFrame({"timestamp": stamps, "open": [100.0, 70.0, 70.0], "high": [101.0, 71.0, 72.0],
                          "low": [99.0, 60.0, 69.0], "close": [100.0, 70.0, 70.0]})
    paths = PricePaths.from_frames({"AAA": frame, "BBB": frame})
    rates = funding_by_step({"AAA": pd.DataFrame({"timestamp": stamps[:1], "rate": [0.001]})}, paths)
    tape = schedule_tape([{"timestamp": stamps[1], "action": "deposit", "account": 3, "amount": 1.0}], paths)
    for intrabar in INTRABAR_CODES:
        run_numba(book, paths, rates, tape, liquidation_fee_rate=0.01, intrabar=intrabar)
    return {"seconds": time.perf_counter() - start}
