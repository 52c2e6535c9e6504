"""``simulate``: step a book through mark-price paths.  Validate, run an engine, return a Result."""
from __future__ import annotations

import dataclasses
import math

from . import adl
from .impact import DEFAULT_ROUNDS, ImpactError
from .impact import parse as _parse_impact
from .inputs import INTRABAR_MODELS, InputError, PricePaths, funding_by_step, schedule_tape
from .result import Result
from .table import BookTable
from .venues.profiles import profile as venue_profile

ENGINES = ("numba", "reference")


def impact_specs(impact, contracts) -> dict:
    """``impact=`` as ``{symbol: Impact}``; a bad one raises InputError naming the field."""
    try:
        return _parse_impact(impact, tuple(contracts))
    except ImpactError as exc:
        raise InputError(str(exc)) from None


def check_settings(*, intrabar, mm_basis, liquidation_fee_rate, liquidation_slippage, insurance_fund, adl_policy,
                   adl_seed) -> None:
    """:func:`simulate`'s checks of the run's settings (shared with
    :func:`riskcore.shard.simulate_sharded`); an :class:`InputError` names the bad one."""
    if intrabar not in INTRABAR_MODELS:
        raise InputError(f"intrabar must be one of {INTRABAR_MODELS}, not {intrabar!r}")
    if mm_basis not in ("mark", "entry"):
        raise InputError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")
    for name, value, top in (("liquidation_fee_rate", liquidation_fee_rate, 0.5),
                             ("liquidation_slippage", liquidation_slippage, 0.5)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and 0.0 <= value < top):
            raise InputError(f"{name} must be a fraction in [0, {top}), not {value!r}")
    if not (isinstance(insurance_fund, (int, float)) and not isinstance(insurance_fund, bool)
            and math.isfinite(insurance_fund) and 0 <= insurance_fund <= 1e15):
        raise InputError(f"insurance_fund must be a number from 0 to 1e15, not {insurance_fund!r}")
    adl.policy_code(adl_policy)
    adl.check_seed(adl_seed)


def check_paths_cover(table, paths) -> None:
    """The paths name only the book's contracts and cover every contract an account holds a
    position or an order on (shared with :func:`riskcore.shard.simulate_sharded`)."""
    unknown = [c for c in paths.contracts if c not in table.symbols]
    if unknown:
        raise InputError(f"paths given for contract(s) {unknown} that the book does not have")
    for frame in (table.positions, table.orders):
        held = ~frame["contract"].isin(paths.contracts).to_numpy()
        if held.any():
            i = int(held.argmax())
            account = frame["account"].iloc[i]
            missing = sorted(set(frame.loc[(frame["account"] == account).to_numpy() & held, "contract"].astype(str)))
            raise InputError(f"account {account!r} holds {missing} but the paths have no bars for it")


def simulate(book, paths, *, liquidation_fee_rate: float, insurance_fund: float = 0.0,
             liquidation_slippage: float = 0.0, funding=None, tape=None, intrabar: str = "ohlc",
             mm_basis: str = "mark", engine: str = "numba", progress=None, event_capacity: int | None = None,
             on_overflow: str = "grow", checkpoint=None, checkpoint_every: float = 60.0, impact=None,
             cascade_rounds: int = DEFAULT_ROUNDS, adl_policy: str = adl.DEFAULT_POLICY,
             adl_seed: int = 0) -> Result:
    """Run the book through the price paths and return what happened.

    Parameters
    ----------
    book : BookTable | Book
        Accounts, positions, resting orders and settings: the columnar
        :class:`~riskcore.table.BookTable` (the fast path for large books: populations,
        Parquet files) or a :class:`~riskcore.book.Book`.  It is not modified: the final
        state is returned as ``result.final`` (a table; ``result.book`` as a Book).
    paths : dict[str, DataFrame] | DataFrame | PricePaths
        Mark-price bars per contract (columns timestamp, open, high, low, close) on one
        shared timeline.  Every contract the book holds a position or order in needs one.
    liquidation_fee_rate : float
        Fee charged on the notional of a liquidation, paid to the insurance fund and capped
        at what is left of the liquidated margin.  Required: there is no silent default.
    insurance_fund : float
        The fund's balance at the start.
    liquidation_slippage : float
        Liquidations execute this fraction worse than the trigger price.
    funding : dict[str, DataFrame] | DataFrame, optional
        Funding rates (columns timestamp, rate) per contract.
    tape : DataFrame | list[dict], optional
        Scheduled actions (see :data:`riskcore.inputs.ACTIONS`), each run at the first
        point of the first bar opening at or after its timestamp.
    intrabar : "close" | "ohlc" | "worst"
        How a bar is walked (MARGIN_RULES.md section 8).
    mm_basis : "mark" | "entry"
        Notional on which isolated maintenance margin is charged (section 3).
    engine : "numba" | "reference"
        Which engine runs the simulation: the jitted kernels (the default; the first call in a
        fresh install compiles them, see ``riskcore warmup``) or the pure-Python reference
        engine they are tested against.  Both return the same Result.
    progress : callable, optional
        Called with the number of bars done so far (after each bar on the reference engine,
        after each chunk of bars on the kernels), for progress bars.
    event_capacity : int, optional
        numba engine only: events each event buffer holds (default: sized from the book).
    on_overflow : "grow" | "raise"
        numba engine only: when more events happen than the buffers hold, run again with
        room for all of them ("grow") or raise :class:`riskcore.kernels.EventBufferOverflow`
        naming the capacity needed ("raise").
    checkpoint : str or Path, optional
        numba engine only: a file where the run's state is saved at bar boundaries (at most
        every ``checkpoint_every`` seconds).  If the file holds the checkpoint of a run of the
        same inputs (a run that was killed), the run resumes from it and returns the same
        Result as an uninterrupted run; the checkpoint of another run, or a file that is
        not a checkpoint, is refused (:class:`riskcore.kernels.checkpoint.CheckpointError`)
        and left alone.  The file is removed when the run finishes.
    checkpoint_every : float
        Seconds between checkpoints (0: after every chunk of bars).
    impact : Impact | dict, optional
        Market impact of liquidations (:mod:`riskcore.impact`, ``docs/cascades.md``): one
        :class:`~riskcore.impact.Impact` (or a dict of its fields) for every contract, or a
        dict by contract.  Liquidations then fill worse by the square-root impact of the
        notional liquidated on their side at the same point, and with ``feedback`` the net
        flow moves the mark, which can liquidate more accounts at the same point (cascade
        rounds).  None (the default): no impact, fills at the trigger moved by the slippage.
    cascade_rounds : int
        At most this many rounds per point (default 20); then the next point looks at the
        moved mark.
    adl_policy : "binance" | "leverage" | "pnl" | "random" | "pro-rata"
        Who is auto-deleveraged when the insurance fund cannot pay a deficit
        (:mod:`riskcore.adl`, ``docs/simulation.md`` "ADL policies"): opposite positions ranked
        by Binance's score (the default), by effective leverage, by unrealised profit, in a
        seeded random order, or all of them pro rata to their quantity.  The same bounds hold
        under every policy: no counterparty realises a loss or is pushed to its maintenance margin.
    adl_seed : int
        The random policy's seed (0 to 2**63 - 1): the same seed gives the same order.
    """
    from .book import Book

    if isinstance(book, Book):
        table = book.to_table()
    elif isinstance(book, BookTable):
        table = book
    else:
        raise TypeError(f"book must be a riskcore.BookTable or a riskcore.Book, not {type(book).__name__}")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, not {engine!r}")
    check_settings(intrabar=intrabar, mm_basis=mm_basis, liquidation_fee_rate=liquidation_fee_rate,
                   liquidation_slippage=liquidation_slippage, insurance_fund=insurance_fund, adl_policy=adl_policy,
                   adl_seed=adl_seed)
    paths = PricePaths.from_frames(paths)
    impact = impact_specs(impact, paths.contracts)
    if isinstance(cascade_rounds, bool) or not isinstance(cascade_rounds, int) or not 1 <= cascade_rounds <= 1000:
        raise InputError(f"cascade_rounds must be a whole number from 1 to 1000, not {cascade_rounds!r}")
    check_paths_cover(table, paths)
    venues = dict(zip(table.contracts["contract"], table.contracts["venue"]))
    venues = {symbol: str(venues[symbol]) for symbol in paths.contracts}
    if any(spec.active for spec in impact.values()):
        partial = [s for s, v in venues.items() if venue_profile(v).partial]
        if partial:
            raise InputError(f"market impact with partial liquidation is not supported: contract(s) {partial} "
                             f"use venue profile(s) {sorted({venues[s] for s in partial})}, which liquidate in "
                             "parts; run them without impact, or under a profile that liquidates whole positions")
    rates = funding_by_step(funding, paths)
    actions = schedule_tape(tape, paths)
    for action in actions:
        symbol = action.fields.get("contract")
        if symbol is not None and symbol not in paths.contracts:
            raise InputError(f"tape row {action.row}: contract {symbol!r} has no price path")
    if on_overflow not in ("grow", "raise"):
        raise InputError(f"on_overflow must be 'grow' or 'raise', not {on_overflow!r}")
    if event_capacity is not None and not (isinstance(event_capacity, int) and not isinstance(event_capacity, bool)
                                           and event_capacity > 0):
        raise InputError(f"event_capacity must be a positive integer, not {event_capacity!r}")
    if checkpoint is not None:
        import os
        from pathlib import Path

        if not isinstance(checkpoint, (str, os.PathLike)):
            raise InputError(f"checkpoint must be a file path, not {type(checkpoint).__name__}")
        if engine != "numba":
            raise InputError("checkpoint needs the numba engine (the reference engine does not save its state)")
        checkpoint = Path(checkpoint)
        if checkpoint.is_dir():
            raise InputError(f"checkpoint {checkpoint} is a folder: name a file in it (e.g. {checkpoint / 'run.ckpt'})")
        if not checkpoint.parent.is_dir():
            raise InputError(f"checkpoint {checkpoint}: the folder {checkpoint.parent} does not exist")
    if not (isinstance(checkpoint_every, (int, float)) and not isinstance(checkpoint_every, bool)
            and math.isfinite(checkpoint_every) and checkpoint_every >= 0):
        raise InputError(f"checkpoint_every must be a number of seconds >= 0, not {checkpoint_every!r}")
    if engine == "numba":
        from .kernels import run_numba

        result = run_numba(table, paths, rates, actions, liquidation_fee_rate=float(liquidation_fee_rate),
                         insurance_fund=float(insurance_fund), liquidation_slippage=float(liquidation_slippage),
                         intrabar=intrabar, mm_basis=mm_basis, event_capacity=event_capacity,
                         on_overflow=on_overflow, progress=progress, checkpoint=checkpoint,
                         checkpoint_every=float(checkpoint_every), impact=impact, cascade_rounds=cascade_rounds,
                           adl_policy=adl_policy, adl_seed=adl_seed)
        result.params["venues"] = venues
        return result
    from .reference import ReferenceEngine

    run = ReferenceEngine(book.copy() if isinstance(book, Book) else Book.from_table(table), paths, rates, actions, liquidation_fee_rate=float(liquidation_fee_rate),
                          insurance_fund=float(insurance_fund), liquidation_slippage=float(liquidation_slippage),
                          intrabar=intrabar, mm_basis=mm_basis, impact=impact, cascade_rounds=cascade_rounds,
                          adl_policy=adl_policy, adl_seed=adl_seed)
    result = run.run(progress)
    result.params = {"liquidation_fee_rate": liquidation_fee_rate, "insurance_fund": insurance_fund,
                     "liquidation_slippage": liquidation_slippage, "intrabar": intrabar, "mm_basis": mm_basis,
                     "engine": engine, "n_steps": paths.n_steps, "contracts": list(paths.contracts),
                     "market_impact": {symbol: dataclasses.asdict(spec) for symbol, spec in impact.items()},
                     "cascade_rounds": cascade_rounds, "adl_policy": adl_policy, "adl_seed": adl_seed,
                     "venues": venues}
    return result
