"""Reports of simulation runs: summary tables, per-account outcomes, PNG charts and an HTML page.

A report compares *variants*: runs of the same population through the same price
paths that differ in one setting (``"cross"``, ``"isolated"``, ``"isolated+auto-add"``,
...).  The variants are named by the caller; the report groups them by the margin mode
their accounts hold (:data:`MODES`), in the order of the ``runs`` mapping within a mode.
``start_book`` is the book the runs started from, or
``{variant: Book}`` when the variants started from different books; a book whose money
does not match a run's ledger (``money_start``) is refused with ``ValueError``.

* :func:`account_outcomes` -- one row per account of one run: equity at the start and
  the end, PnL, whether it was liquidated, its top-ups, the margin modes, leverage and
  distance to liquidation it started with.
* :func:`summarize` -- one row per variant: liquidations, bad debt, insurance fund,
  ADL, top-ups, mean loss per account, accounts saved by auto-add-margin.
* :func:`leverage_table`, :func:`distance_table` -- outcomes by leverage and account
  margin mode, and by distance to liquidation at the start.
* :func:`write_report` -- the charts of :data:`CHARTS` and a self-contained
  ``report.html`` (plain HTML, inline CSS, no script, no external resource) that
  shows them by relative file name; its sections are :data:`SECTIONS`, described in
  ``docs/scenarios.md``.

Equity, the measure of an account's money used throughout::

    equity = cross wallet + sum of cross uPnL
             + sum over isolated positions of max(0, isolated wallet + uPnL)

with the uPnL of every open position valued at its contract's mark price in the book
(a position whose contract has no mark counts no uPnL).  It is the ``equity`` of
:meth:`riskcore.Book.account_summary`: money in the wallets plus what open positions
would bring if closed at the mark (an isolated position cannot lose more than its
wallet).  A result's book carries the marks of the last bar's close, so end equity is
the account marked to market at the end of the run.

matplotlib is imported only when a chart is drawn, and the charts are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas, without pyplot: the
report never changes the process's matplotlib backend.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .book import Book
from .enums import MarginMode
from .inputs import PricePaths
from .readouts import ACCOUNT_MODE_LABELS
from .result import Result
from .table import BookTable

__all__ = ["SUMMARY_COLUMNS", "OUTCOME_COLUMNS", "CHARTS", "SECTIONS", "summarize", "account_outcomes",
           "write_report", "format_value", "VariantDigest", "digest", "account_equity", "start_distance",
           "leverage_table", "distance_table", "loss_buckets", "short_money", "MODES", "LOSS_BUCKETS", "LOSS_EDGES",
           "ChartHelper", "PathSweep", "spread_table", "SPREAD_METRICS", "PATH_CHARTS", "SECTION_CHARTS",
           "FundSizingReport", "FUND_SECTION", "fund_sizing_findings"]

#: Columns of :func:`summarize`'s frame (its index is the variant name), with their meaning.
SUMMARY_COLUMNS = {
    "accounts": "accounts in the start book",
    "positions": "open positions in the start book",
    "accounts_liquidated": "distinct accounts with at least one liquidation",
    "liquidation_rate": "accounts_liquidated / accounts",
    "liquidations": "positions closed by liquidation",
    "liquidated_notional": "sum of qty x price of the liquidation closes",
    "bad_debt": "sum of the deficits left by liquidations",
    "insurance_paid": "part of the bad debt the insurance fund paid",
    "adl_recovered": "part of the bad debt recovered by auto-deleveraging",
    "socialised_loss": "part of the bad debt nobody covered",
    "adl_events": "counterparty positions closed (wholly or partly) by auto-deleveraging",
    "topups": "auto-add-margin top-ups",
    "topup_amount": "money moved into isolated wallets by the top-ups",
    "mean_loss_per_account": "mean over all accounts of start equity + net deposits - end equity",
    "insurance_fund_start": "insurance fund at the start",
    "final_insurance_fund": "insurance fund after the last bar",
    "accounts_saved_by_auto_add": "accounts with at least one top-up that were never liquidated",
}

#: Columns of :func:`account_outcomes`'s frame.
OUTCOME_COLUMNS = ["account", "margin_modes", "auto_add", "positions", "leverage", "liquidation_distance",
                   "start_equity", "net_deposits", "end_equity", "pnl", "pnl_pct", "liquidated", "liquidations",
                   "liquidated_notional", "bad_debt", "topups", "topup_amount", "saved_by_auto_add"]

#: The chart files :func:`write_report` writes, with their captions' subject.
CHARTS = {
    "comparison.png": "variants side by side",
    "price.png": "price paths and liquidation clusters",
    "liquidations.png": "liquidations per bar",
    "insurance.png": "insurance fund and cumulative bad debt",
    "losses.png": "distribution of losses across accounts",
    "outcomes.png": "distribution of account outcomes",
    "distance.png": "distance to liquidation at the start",
}

#: The charts a report over several paths (:class:`PathSweep`) adds to :data:`CHARTS`.
PATH_CHARTS = {"spread.png": "spread of the results over the paths"}

_COUNT_COLUMNS = ("accounts", "positions", "accounts_liquidated", "liquidations", "adl_events", "topups",
                  "accounts_saved_by_auto_add")


# ------------------------------------------------------------------------- helpers
def _as_table(book) -> BookTable:
    if isinstance(book, BookTable):
        return book
    if isinstance(book, Book):
        return book.to_table()
    raise TypeError(f"start_book must be a riskcore.BookTable or Book (or a {{variant: book}} mapping), "
                    f"not {type(book).__name__}")


def account_equity(table: BookTable) -> pd.DataFrame:
    """Per account of ``table`` (in its order): equity at the table's marks (module
    docstring), the margin modes of its open positions, whether any isolated one has
    auto-add-margin on, the highest leverage setting of its open positions (NaN with none)
    and their number.  Vectorised over positions."""
    acc = table.accounts
    pos = table.positions
    ids = acc["account"].to_numpy()
    index = pd.Index(ids)
    equity = acc["wallet"].to_numpy(np.float64).copy()
    has_cross = np.zeros(len(acc), bool)
    has_iso = np.zeros(len(acc), bool)
    auto = np.zeros(len(acc), bool)
    leverage = np.full(len(acc), np.nan)
    n_pos = np.zeros(len(acc), np.int64)
    if len(pos):
        rows = index.get_indexer(pos["account"].to_numpy())
        symbols = table.symbols
        marks = table.contracts["mark_price"].to_numpy(np.float64)
        p_c = pos["contract"].cat.codes.to_numpy().astype(np.int64)  # categories are the table's symbols
        mark = marks[p_c]
        upnl = pos["side"].to_numpy(np.float64) * pos["qty"].to_numpy() * (mark - pos["entry_price"].to_numpy())
        upnl = np.where(np.isnan(mark), 0.0, upnl)
        st = table.settings
        n_c = max(1, len(symbols))
        key = pd.Index(index.get_indexer(st["account"].to_numpy()).astype(np.int64) * n_c
                       + st["contract"].cat.codes.to_numpy().astype(np.int64))
        at = key.get_indexer(rows.astype(np.int64) * n_c + p_c)
        iso = st["margin_mode"].cat.codes.to_numpy()[at] == MarginMode.ISOLATED
        leg = pos["leg"].cat.codes.to_numpy()
        side = pos["side"].to_numpy()
        short = (leg == 2) | ((leg == 0) & (side < 0))
        auto_pos = np.where(short, st["auto_add_short"].to_numpy()[at], st["auto_add_long"].to_numpy()[at]) & iso
        lev = np.where(short, st["leverage_short"].to_numpy(np.float64)[at],
                       st["leverage_long"].to_numpy(np.float64)[at])
        np.fmax.at(leverage, rows, lev)
        n_pos = np.bincount(rows, minlength=len(acc)).astype(np.int64)
        value = np.where(iso, np.maximum(0.0, pos["wallet_iso"].to_numpy() + upnl), upnl)
        equity += np.bincount(rows, weights=value, minlength=len(acc))
        has_iso[rows[iso]] = True
        has_cross[rows[~iso]] = True
        auto[rows[auto_pos]] = True
    modes = pd.Categorical.from_codes(has_cross.astype(np.int8) + 2 * has_iso.astype(np.int8),
                                      categories=list(ACCOUNT_MODE_LABELS))
    return pd.DataFrame({"account": ids, "equity": equity, "margin_modes": modes, "auto_add": auto,
                         "leverage": leverage, "positions": n_pos})


def _kind(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    return events[(events["kind"] == kind).to_numpy()]


def _net_deposits(events: pd.DataFrame) -> pd.Series:
    """Deposits minus withdrawals of the tape, per account."""
    actions = _kind(events, "action")
    code = actions["reason_code"].astype(object)
    actions = actions[code.isin(("deposit", "withdraw")).to_numpy()]
    if actions.empty:
        return pd.Series(dtype="float64")
    signed = np.where(actions["reason_code"].astype(object) == "deposit", 1.0, -1.0) \
        * actions["amount"].astype("float64")
    return pd.Series(signed, index=actions.index).groupby(actions["account"].to_numpy()).sum()


def _per_account(frame: pd.DataFrame, values) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="float64")
    return pd.Series(np.asarray(values, dtype="float64"), index=frame.index).groupby(
        frame["account"].to_numpy()).sum()


def _check_runs(runs) -> None:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty {variant name: Result} mapping")
    for name, result in runs.items():
        if not isinstance(result, (Result, VariantDigest)):
            raise TypeError(f"run {name!r} is a {type(result).__name__}, not a riskcore.Result")


def _start_book_of(start_book, name) -> BookTable:
    if isinstance(start_book, (Book, BookTable)):
        return _as_table(start_book)
    if isinstance(start_book, Mapping):
        try:
            book = start_book[name]
        except KeyError:
            raise ValueError(f"start_book has no book for variant {name!r}; it has {list(start_book)}") from None
        if isinstance(book, (Book, BookTable)):
            return _as_table(book)
    raise TypeError("start_book must be a riskcore.BookTable or Book, or a {variant name: book} mapping")


def _book_money(table: BookTable) -> float:
    """Wallets + isolated wallets + fees collected: the book's part of a ledger's ``money_start``."""
    return (float(table.accounts["wallet"].sum()) + float(table.positions["wallet_iso"].sum())
            + float(table.fees_collected))


def _check_start(result: Result, book: BookTable, name=None) -> None:
    """Refuse a start book that cannot be the one the run started from: its money must be the
    ledger's ``money_start`` less the insurance fund at the start."""
    start = result.ledger.get("money_start")
    fund = result.params.get("insurance_fund")
    if start is None or fund is None:
        return
    have = _book_money(book) + float(fund)
    if not math.isclose(have, start, rel_tol=1e-9, abs_tol=1e-6):
        which = "the run" if name is None else f"variant {name!r}"
        raise ValueError(f"start_book is not the book {which} started from: it holds {have:,.6f} with the "
                         f"insurance fund, the run started with {start:,.6f} (pass one book per variant, "
                         f"{{variant: Book}}, when the variants start from different books)")


# ------------------------------------------------------------------ account outcomes
def account_outcomes(result: Result, start_book) -> pd.DataFrame:
    """One row per account of the start book: how the run went for it.

    Columns (:data:`OUTCOME_COLUMNS`):

    * ``account`` -- the account id;
    * ``margin_modes`` -- margin modes of its open positions in the start book:
      ``"cross"``, ``"isolated"``, ``"cross+isolated"``, or ``""`` when it held none;
    * ``auto_add`` -- at least one of its isolated start positions had auto-add-margin on;
    * ``positions`` -- its open positions in the start book; ``leverage`` -- the highest
      leverage setting among them (NaN when it held none);
    * ``liquidation_distance`` -- how far the price had to move against it, as a fraction
      of the start mark, to reach the nearest liquidation price of its start positions
      (``side * (mark - liquidation price) / mark``, the prices of
      :func:`riskcore.readouts.position_readouts` on the start book, with the run's
      ``mm_basis``; before any top-up); ``inf`` when no position has a liquidation price,
      NaN when it held none or a contract has no mark;
    * ``start_equity`` / ``end_equity`` -- equity (module docstring) in ``start_book`` at
      its marks and in ``result.final`` at the marks of the last close;
    * ``net_deposits`` -- deposits minus withdrawals made by the tape during the run;
    * ``pnl`` -- ``end_equity - start_equity - net_deposits``;
    * ``pnl_pct`` -- ``100 * pnl / start_equity`` (NaN when the start equity is not > 0);
    * ``liquidated`` -- at least one liquidation event; ``liquidations`` their count and
      ``liquidated_notional`` their ``qty * price``;
    * ``bad_debt`` -- the deficits it left (``bad_debt`` events);
    * ``topups`` / ``topup_amount`` -- auto-add-margin top-ups and the money they moved;
    * ``saved_by_auto_add`` -- at least one top-up and never liquidated.

    ``start_book`` (a BookTable or Book) must be the book the run started from:
    ``ValueError`` when its money (wallets, isolated wallets, fees collected) plus the
    starting insurance fund is not the ledger's ``money_start``.  Vectorised: a million
    accounts take about a second and a half (the liquidation distances included).
    """
    return _account_outcomes(result, start_book, None)


def _start_facts(start: BookTable, mm_basis: str) -> pd.DataFrame:
    """:func:`riskcore.readouts.account_facts` of the start book, or, when a contract with
    positions has no mark, :func:`account_equity` with NaN distances."""
    from .readouts import account_facts

    try:
        return account_facts(start.frames(), mm_basis=mm_basis)
    except ValueError:  # a contract without a mark price: no distance to report
        facts = account_equity(start)
        facts["liquidation_distance"] = np.nan
        return facts


def _end_equity(result: Result, ids: np.ndarray, end_equity=None) -> np.ndarray:
    """Equity of each of ``ids`` in the final book (0 for an account it no longer has);
    ``end_equity`` (account, equity) when the caller has it already."""
    if end_equity is None:
        end_equity = account_equity(result.final)[["account", "equity"]]
    have = end_equity["account"].to_numpy()
    values = end_equity["equity"].to_numpy(np.float64)
    if have.shape == ids.shape and np.array_equal(have, ids):
        return values
    return pd.Series(values, index=have).reindex(ids).fillna(0.0).to_numpy(np.float64)


def _account_outcomes(result: Result, start_book, name, end_equity=None) -> pd.DataFrame:
    """:func:`account_outcomes`; ``end_equity``, a frame (account, equity) of the final book
    (``readouts()['accounts']``), saves computing it again."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a riskcore.Result, not {type(result).__name__}")
    start = _as_table(start_book)
    _check_start(result, start, name)
    s = _start_facts(start, result.params.get("mm_basis", "mark"))
    ids = s["account"].to_numpy()
    ev = result.events
    liq = _kind(ev, "liquidation")
    top = _kind(ev, "topup")
    bad = _kind(ev, "bad_debt")

    def per(frame, values=None):
        if frame.empty:
            return np.zeros(len(ids))
        series = _per_account(frame, np.ones(len(frame)) if values is None else values)
        return series.reindex(ids).fillna(0.0).to_numpy(np.float64)

    n_liq = per(liq).astype(np.int64)
    n_top = per(top).astype(np.int64)
    start_eq = s["equity"].to_numpy(np.float64)
    end_eq = _end_equity(result, ids, end_equity)
    dep = _net_deposits(ev).reindex(ids).fillna(0.0).to_numpy(np.float64)
    pnl = end_eq - start_eq - dep
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(start_eq > 0, 100.0 * pnl / np.where(start_eq > 0, start_eq, 1.0), np.nan)
    frame = pd.DataFrame({
        "account": ids, "margin_modes": s["margin_modes"], "auto_add": s["auto_add"].to_numpy(bool),
        "positions": s["positions"].to_numpy(np.int64), "leverage": s["leverage"].to_numpy(np.float64),
        "liquidation_distance": s["liquidation_distance"].to_numpy(np.float64),
        "start_equity": start_eq, "net_deposits": dep, "end_equity": end_eq, "pnl": pnl, "pnl_pct": pct,
        "liquidated": n_liq > 0, "liquidations": n_liq,
        "liquidated_notional": per(liq, liq["qty"].to_numpy(np.float64) * liq["price"].to_numpy(np.float64)),
        "bad_debt": per(bad, bad["amount"].to_numpy(np.float64)), "topups": n_top,
        "topup_amount": per(top, top["amount"].to_numpy(np.float64)),
        "saved_by_auto_add": (n_top > 0) & (n_liq == 0)}, columns=OUTCOME_COLUMNS)
    return frame


def start_distance(table: BookTable, mm_basis: str = "mark") -> np.ndarray:
    """Per account of ``table`` (in its order): the nearest liquidation price of its open
    positions as a fraction of the mark, ``min over positions of side * (mark - LP) / mark``
    (cross positions at the account's cross liquidation price, isolated ones at their
    own), the ``liquidation_distance`` of :func:`riskcore.readouts.account_facts`.  ``inf`` where no position
    has a liquidation price (it cannot be liquidated by the price alone), NaN for an
    account without positions, and NaN everywhere when a contract with positions has no
    mark price.  Negative when a position starts beyond its liquidation price."""
    return _start_facts(table, mm_basis)["liquidation_distance"].to_numpy(np.float64)


# ------------------------------------------------------------------------- digests
@dataclass
class VariantDigest:
    """What the summary and the report need of one variant's run, small enough to keep
    for every variant of a big run: the per-step series, params and ledger, the summary
    row, the liquidation clusters (per contract and step), the accounts' PnL %, and the
    accounts aggregated: the start book's make-up (``profile``), outcomes by leverage and
    account margin mode, by distance to liquidation at the start, and the distribution
    of losses (``loss_counts``: accounts that gained or broke even, then lost up to each
    of :data:`LOSS_EDGES`, then more).  Everything past ``pnl_pct`` is optional (a
    digest without it leaves the matching parts of the report out)."""
    steps: pd.DataFrame
    params: dict
    ledger: dict
    row: dict
    clusters: pd.DataFrame | None
    pnl_pct: np.ndarray
    profile: dict = field(default_factory=dict)
    by_leverage: pd.DataFrame | None = None
    by_distance: pd.DataFrame | None = None
    distance_counts: np.ndarray | None = None
    loss_counts: np.ndarray | None = None
    loss_stats: dict = field(default_factory=dict)
    cascade: dict = field(default_factory=dict)  # _cascade_facts: rounds, final marks (market impact)
    adl: dict = field(default_factory=dict)  # riskcore.studies.adl_outcomes' row (runs with ADL only)
    venue: dict = field(default_factory=dict)  # riskcore.venues.study.venue_outcomes' row


@dataclass
class PathSweep:
    """Several price paths in one report: the variants of a grid over ``path.seed``, each
    margin variant (``base_of``) run through every path (``path_of``).  The report then draws
    every path, gives the spread of the results over the paths, and shows the sections per
    variant for the first path of ``paths`` only (``docs/scenarios.md``)."""
    paths: dict  # path label ("path.seed=3") -> {contract: bars}, in order: the first is shown in detail
    path_of: dict  # variant -> its path's label
    base_of: dict  # variant -> its name without the path (the margin variant compared across paths)
    description: str = ""  # where the prices come from, e.g. "synthetic GBM, 8 paths (path.seed 1 to 8)"


#: The summary columns whose spread over paths the report gives, with how they are shown.
SPREAD_METRICS = {"liquidation_rate": "liquidation rate", "bad_debt": "bad debt",
                  "mean_loss_per_account": "mean loss per account"}


def spread_table(summary: pd.DataFrame, sweep: PathSweep) -> pd.DataFrame:
    """The spread of results over the paths: one row per margin variant (``sweep.base_of``,
    in order of appearance), its number of ``paths``, and for each of :data:`SPREAD_METRICS`
    the ``_mean``, ``_median`` and ``_worst`` (the highest: a higher liquidation rate, bad
    debt or loss is worse) over its paths, with ``_worst_path``, the path that gave it (the
    first such path on a tie), and the ``_best`` (the lowest).  NaN values are left out.  ``summary`` is :func:`summarize`'s frame of every variant."""
    missing = [n for n in summary.index if n not in sweep.base_of or n not in sweep.path_of]
    if missing:
        raise ValueError(f"variant {missing[0]!r} has no path in the sweep (path_of, base_of)")
    bases = list(dict.fromkeys(sweep.base_of[n] for n in summary.index))
    rows = []
    for base in bases:
        names = [n for n in summary.index if sweep.base_of[n] == base]
        row = {"variant": base, "paths": len(names)}
        for col in SPREAD_METRICS:
            v = summary.loc[names, col].to_numpy(np.float64)
            finite = np.isfinite(v)
            row[f"{col}_mean"] = float(v[finite].mean()) if finite.any() else math.nan
            row[f"{col}_median"] = float(np.median(v[finite])) if finite.any() else math.nan
            worst = int(np.argmax(np.where(finite, v, -np.inf))) if finite.any() else 0
            row[f"{col}_worst"] = float(v[worst]) if finite.any() else math.nan
            row[f"{col}_worst_path"] = sweep.path_of[names[worst]] if finite.any() else ""
            row[f"{col}_best"] = float(v[finite].min()) if finite.any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


#: Account margin modes as the report groups them (an account's open positions at the start).
MODES = ("cross", "isolated", "isolated + auto-add", "cross + isolated", "mixed", "no position")
#: Upper edges of the leverage ranges used when a population has many distinct leverages.
LEVERAGE_EDGES = (2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 75.0, 100.0, 125.0)
#: Edges of the distance-to-liquidation buckets (fractions of the start price); then "never".
DISTANCE_EDGES = (0.01, 0.02, 0.05, 0.10, 0.20, 0.50)
#: Fine edges of the distance histogram kept per variant (0 to 100% in 0.25% steps, then beyond).
DISTANCE_FINE = np.linspace(0.0, 1.0, 401)
#: Buckets of account PnL, % of start equity, in the loss chart: (label, colour).
LOSS_BUCKETS = (("gained or flat", "#a5d6a7"), ("lost under 10%", "#fff176"), ("lost 10-50%", "#ffb74d"),
                ("lost 50-99%", "#f4511e"), ("lost 99% or more", "#8e0000"))
#: Edges of the buckets of account loss in money (quote currency) in the loss chart.
LOSS_EDGES = (100.0, 1_000.0, 10_000.0, 100_000.0)
_LOSS_COLORS = ("#a5d6a7", "#fff9c4", "#ffe082", "#ffb74d", "#f4511e", "#8e0000")
_EXACT_LEVERAGES = 12  # at most this many distinct leverages: one row each, else ranges


def _mode_codes(margin_modes: np.ndarray, auto_add: np.ndarray) -> np.ndarray:
    """Index into :data:`MODES` per account (5 = no position)."""
    if isinstance(margin_modes, pd.Categorical) and list(margin_modes.categories) == list(ACCOUNT_MODE_LABELS):
        codes = np.asarray(margin_modes.codes)  # 0 none, 1 cross, 2 isolated, 3 both
        out = np.array([5, 0, 1, 3], np.int8)[np.maximum(codes, 0)]
        out[(codes == 2) & np.asarray(auto_add, bool)] = 2
        return out
    mm = np.asarray(margin_modes, dtype=object)
    code = np.full(len(mm), 5, np.int8)
    code[mm == "cross"] = 0
    iso = mm == "isolated"
    code[iso] = np.where(np.asarray(auto_add, bool)[iso], 2, 1)
    code[mm == "cross+isolated"] = 3
    return code


def _leverage_key(lev: np.ndarray) -> np.ndarray:
    """The upper edge of each leverage's range (inf beyond the last edge)."""
    edges = np.asarray(LEVERAGE_EDGES)
    i = np.searchsorted(edges, lev, side="left")
    return np.where(i < len(edges), edges[np.minimum(i, len(edges) - 1)], np.inf)


def _leverage_label(key: float, exact: bool) -> str:
    if exact:
        return f"{key:g}x"
    edges = (0.0, *LEVERAGE_EDGES)
    if not np.isfinite(key):
        return f"> {edges[-1]:g}x"
    i = edges.index(key)
    return f"up to {key:g}x" if i == 1 else f"{edges[i - 1]:g}-{key:g}x"


def _distance_labels() -> list[str]:
    pct = [f"{100 * e:g}%" for e in DISTANCE_EDGES]
    return ([f"under {pct[0]}"] + [f"{a} to {b}" for a, b in zip(pct, pct[1:])]
            + [f"{pct[-1]} or more", "never (no liquidation price)"])


def _aggregate(outcomes: pd.DataFrame, start: BookTable) -> dict:
    """The account aggregates of a digest (numpy over the outcome columns)."""
    n = len(outcomes)
    modes = outcomes["margin_modes"]
    code = _mode_codes(modes.array if isinstance(modes.dtype, pd.CategoricalDtype) else modes.to_numpy(object),
                       outcomes["auto_add"].to_numpy(bool))
    held = code != 5
    lev = outcomes["leverage"].to_numpy(np.float64)
    liq = outcomes["liquidated"].to_numpy(bool)
    loss = -outcomes["pnl"].to_numpy(np.float64)
    pct = outcomes["pnl_pct"].to_numpy(np.float64)
    dist = outcomes["liquidation_distance"].to_numpy(np.float64)
    distinct = np.unique(lev[held & np.isfinite(lev)])
    exact = len(distinct) <= _EXACT_LEVERAGES
    key = lev if exact else _leverage_key(lev)
    frame = pd.DataFrame({"leverage": key[held], "mode": code[held], "accounts": 1, "liquidated": liq[held],
                          "loss": loss[held], "lost_all": (pct <= -99.0)[held]})
    by_lev = frame.groupby(["leverage", "mode"], sort=True).sum().reset_index()
    by_lev["mode"] = [MODES[c] for c in by_lev["mode"]]
    by_lev = by_lev.astype({"accounts": "int64", "liquidated": "int64", "lost_all": "int64"})

    known = held & ~np.isnan(dist)
    d = dist[known]
    bucket = np.where(np.isinf(d), len(DISTANCE_EDGES) + 1,
                      np.searchsorted(np.asarray(DISTANCE_EDGES), d, side="right"))
    k = len(DISTANCE_EDGES) + 2
    by_dist = pd.DataFrame({"accounts": np.bincount(bucket, minlength=k),
                            "liquidated": np.bincount(bucket, weights=liq[known], minlength=k).astype(np.int64),
                            "loss": np.bincount(bucket, weights=loss[known], minlength=k)},
                           index=pd.Index(_distance_labels(), name="distance"))
    fine = np.clip(d[np.isfinite(d)], 0.0, None)
    counts = np.bincount(np.minimum(np.searchsorted(DISTANCE_FINE, fine, side="right") - 1, len(DISTANCE_FINE) - 1),
                         minlength=len(DISTANCE_FINE))  # the last count: 100% or more (finite)
    counts = np.append(counts, int(np.isinf(d).sum()))

    losses = np.sort(loss[np.isfinite(loss)])
    cuts = np.searchsorted(losses, [0.0, *LOSS_EDGES], side="right")  # gained or flat: loss <= 0
    money_counts = np.diff(np.concatenate([[0], cuts, [losses.size]]))
    positive = losses[losses > 0]
    total = float(positive.sum())
    stats = {"accounts": int(losses.size), "losers": int(positive.size), "total_loss": total,
             "max_loss": float(positive[-1]) if positive.size else 0.0,
             "median_loss_of_losers": float(np.median(positive)) if positive.size else 0.0}
    for share in (0.01, 0.10):
        top = max(1, int(round(share * losses.size))) if losses.size else 0
        stats[f"top{int(share * 100)}_share"] = (float(positive[-top:].sum()) / total) if total > 0 else math.nan

    shares = np.bincount(code[held], minlength=len(MODES)) / max(1, int(held.sum()))
    present = [MODES[i] for i in range(len(MODES)) if shares[i] > 0]
    mode = present[0] if len(present) == 1 else ("mixed" if present else "no position")
    br = start.brackets
    brackets = {}
    for symbol, g in br.groupby(br["contract"].astype(object), sort=False):
        date = g["effective_date"].iloc[0] if "effective_date" in g else None
        source = g["source"].iloc[0] if "source" in g else None
        brackets[str(symbol)] = {
            "effective_date": None if date is None or (isinstance(date, float) and math.isnan(date)) else str(date),
            "source": None if source is None or (isinstance(source, float) and math.isnan(source)) else str(source),
            "mmr": [float(v) for v in g.sort_values("tier")["mmr"]],
            "max_leverage": float(g["max_leverage"].max()), "tiers": int(len(g))}
    n_pos = outcomes["positions"].to_numpy(np.int64)
    profile = {
        "accounts": n, "positions": int(n_pos.sum()), "accounts_with_positions": int(held.sum()),
        "max_positions_per_account": int(n_pos.max()) if n else 0, "mode": mode,
        "mode_shares": {MODES[i]: float(shares[i]) for i in range(len(MODES)) if shares[i] > 0},
        "leverages": [float(v) for v in distinct] if exact else None,
        "leverage_range": (float(distinct[0]), float(distinct[-1])) if distinct.size else None,
        "leverage_median": float(np.median(lev[held])) if held.any() else math.nan,
        "leverage_exact": bool(exact), "brackets": brackets,
        "marks": {str(c): float(m) for c, m in zip(start.contracts["contract"].astype(object),
                                                   start.contracts["mark_price"])},
        "distance_known": int(known.sum()),
        "max_distance_liquidated": float(np.max(dist[known & liq])) if (known & liq).any() else math.nan,
        "min_distance_survived": float(np.min(dist[known & ~liq])) if (known & ~liq).any() else math.nan,
    }
    return {"profile": profile, "by_leverage": by_lev, "by_distance": by_dist, "distance_counts": counts,
            "loss_counts": money_counts.astype(np.int64), "loss_stats": stats}


def digest(result: Result, start_book, name=None, outcomes: pd.DataFrame | None = None) -> VariantDigest:
    """The :class:`VariantDigest` of one run (account outcomes computed once, here)."""
    start = _as_table(start_book)
    if outcomes is None:
        outcomes = _account_outcomes(result, start, name)
    return VariantDigest(result.steps, dict(result.params), dict(result.ledger),
                         _summary_row(result, start, outcomes), _clusters(result.events),
                         outcomes["pnl_pct"].to_numpy(np.float64), **_aggregate(outcomes, start),
                         cascade=_cascade_facts(result), adl=_adl_facts(result), venue=_venue_facts(result))


def _venue_facts(result: Result) -> dict:
    """``venues.study.venue_outcomes`` of a run: the Venues section compares them when the
    variants' venue profiles differ."""
    from .venues.study import venue_outcomes

    return {k: (v if isinstance(v, str) else float(v)) for k, v in venue_outcomes(result).iloc[0].items()}


def _adl_facts(result: Result) -> dict:
    """``studies.adl_outcomes`` of a run with ADL (empty without: the section is then left out)."""
    from .studies import adl_outcomes

    kinds = result.events["kind"]
    if not (kinds == "adl").any():
        return {}
    return {k: (float(v) if not isinstance(v, (int, np.integer)) else int(v))
            for k, v in adl_outcomes(result).iloc[0].items()}


def _cascade_facts(result: Result) -> dict:
    """What the Cascades section needs of a run: the deepest cascade round, the
    liquidations (and their notional) in rounds after a point's first look, and the final
    marks (the last close times the mark's multiplier)."""
    ev = result.events
    liq = _kind(ev, "liquidation")
    later = liq[liq["round"].to_numpy() > 0] if "round" in liq else liq.iloc[:0]
    return {"max_round": int(ev["round"].max()) if "round" in ev and len(ev) else 0,
            "round_liquidations": len(later),
            "round_notional": float((later["qty"].astype("float64") * later["price"].astype("float64")).sum()),
            "marks": {str(k): float(v) for k, v in result.final.marks().items() if v is not None}}


def _clusters(events: pd.DataFrame) -> pd.DataFrame | None:
    liq = _kind(events, "liquidation")
    if liq.empty:
        return None
    qty = liq["qty"].to_numpy(dtype="float64")
    px = liq["price"].to_numpy(dtype="float64")
    g = pd.DataFrame({"step": liq["step"].to_numpy(), "contract": liq["contract"].astype(object).to_numpy(),
                      "notional": qty * px, "qty": qty, "count": 1})
    g = g.groupby(["contract", "step"], sort=True).sum()
    g["price"] = g["notional"] / g["qty"]
    return g


# ------------------------------------------------------------------------- summary
def _summary_row(result: Result, book: BookTable, outcomes: pd.DataFrame) -> dict:
    ev = result.events
    steps = result.steps
    liq = _kind(ev, "liquidation")
    adl = _kind(ev, "adl")
    n_accounts = book.n_accounts
    liquidated = int(liq["account"].nunique()) if not liq.empty else 0
    fund_start = float(result.params.get("insurance_fund", math.nan))
    if len(steps):
        fund_end = float(steps["insurance_fund"].iloc[-1])
    else:
        fund_end = float(result.ledger.get("insurance_fund", fund_start))
    return {
        "accounts": n_accounts,
        "positions": book.n_positions,
        "accounts_liquidated": liquidated,
        "liquidation_rate": liquidated / n_accounts if n_accounts else math.nan,
        "liquidations": len(liq),
        "liquidated_notional": float((liq["qty"].astype("float64") * liq["price"].astype("float64")).sum()),
        "bad_debt": float(steps["bad_debt"].sum()),
        "insurance_paid": float(steps["insurance_paid"].sum()),
        "adl_recovered": float(steps["adl_recovered"].sum()),
        "socialised_loss": float(steps["socialised_loss"].sum()),
        "adl_events": int((adl["reason_code"].astype(object) == "adl_counterparty").sum()),
        "topups": int(steps["topups"].sum()),
        "topup_amount": float(steps["topup_amount"].sum()),
        "mean_loss_per_account": float(-outcomes["pnl"].mean()) if len(outcomes) else math.nan,
        "insurance_fund_start": fund_start,
        "final_insurance_fund": fund_end,
        "accounts_saved_by_auto_add": int(outcomes["saved_by_auto_add"].sum()),
    }


def summarize(runs: Mapping, start_book=None) -> pd.DataFrame:
    """One row per variant, indexed by the variant's name (index name ``"variant"``), in
    the order of ``runs``.

    Columns (:data:`SUMMARY_COLUMNS`), all over the whole run:

    * ``accounts``, ``positions`` -- accounts and open positions of the start book;
    * ``accounts_liquidated`` -- distinct accounts with at least one ``liquidation``
      event; ``liquidation_rate`` = ``accounts_liquidated / accounts``;
    * ``liquidations`` -- liquidation events (positions closed by liquidation);
    * ``liquidated_notional`` -- sum of ``qty * price`` of the liquidation events (the
      execution price, after slippage);
    * ``bad_debt``, ``insurance_paid``, ``adl_recovered``, ``socialised_loss`` -- sums of
      the per-step columns of the same names: ``bad_debt = insurance_paid +
      adl_recovered + socialised_loss``;
    * ``adl_events`` -- ``adl`` events of counterparties (reason code
      ``"adl_counterparty"``): the positions closed, wholly or partly, by auto-deleveraging;
    * ``topups``, ``topup_amount`` -- auto-add-margin top-ups and the money they moved;
    * ``mean_loss_per_account`` -- ``-mean(pnl)`` over every account of the start book,
      with ``pnl = end equity - start equity - net deposits`` of :func:`account_outcomes`
      (equity: wallets + isolated wallets + uPnL at the marks, see the module
      docstring).  Positive is a loss; accounts that won offset accounts that lost;
    * ``insurance_fund_start`` -- ``result.params["insurance_fund"]``;
      ``final_insurance_fund`` -- the fund after the last bar;
    * ``accounts_saved_by_auto_add`` -- accounts that received at least one top-up and
      were never liquidated.

    ``runs`` maps variant names to Results (``start_book`` is then the book every run
    started from, a BookTable or Book, or a ``{variant: book}`` mapping when the variants
    started from different books; a book that is not the one a run started from raises
    ``ValueError``) or to :class:`VariantDigest` objects (``start_book`` unused).
    """
    digests = _digests(runs, start_book)
    frame = pd.DataFrame([d.row for d in digests.values()], columns=list(SUMMARY_COLUMNS),
                         index=pd.Index(list(digests), name="variant"))
    return frame.astype({c: "int64" for c in _COUNT_COLUMNS})


def _digests(runs: Mapping, start_book) -> dict:
    _check_runs(runs)
    return {name: r if isinstance(r, VariantDigest) else digest(r, _start_book_of(start_book, name), name)
            for name, r in runs.items()}


# ------------------------------------------------------------------ account tables
def leverage_table(runs: Mapping, start_book=None) -> pd.DataFrame:
    """Outcomes by leverage and account margin mode: one row per variant, margin mode of
    the accounts (:data:`MODES`: the modes of an account's open positions at the start,
    ``"isolated + auto-add"`` when an isolated one has auto-add-margin on) and leverage
    (the highest leverage setting of the account's start positions).

    Leverages are shown one by one (``"10x"``) when the variants hold at most twelve
    distinct ones, else in ranges whose upper edge is included (``"5-10x"`` holds 10x).
    Columns: ``variant``, ``mode``, ``leverage`` (the value, or the range's upper edge),
    ``label``, ``accounts``, ``liquidated`` (accounts with at least one liquidation),
    ``liquidation_rate``, ``mean_loss`` (``-mean(pnl)`` in the quote currency, as in
    :func:`summarize`) and ``lost_all`` (accounts that lost 99% or more of their start
    equity).  ``runs`` and ``start_book`` as for :func:`summarize`."""
    digests = _digests(runs, start_book)
    columns = ["variant", "mode", "leverage", "label", "accounts", "liquidated", "liquidation_rate", "mean_loss",
               "lost_all"]
    parts = [d.by_leverage.assign(variant=name) for name, d in digests.items() if d.by_leverage is not None]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True)
    exact = (all(d.profile.get("leverage_exact", False) for d in digests.values() if d.by_leverage is not None)
             and frame["leverage"].nunique() <= _EXACT_LEVERAGES)
    if not exact:
        frame["leverage"] = _leverage_key(frame["leverage"].to_numpy(np.float64))
    order = {name: i for i, name in enumerate(digests)}
    frame["_v"] = frame["variant"].map(order)
    frame["_m"] = frame["mode"].map({m: i for i, m in enumerate(MODES)})
    frame = (frame.groupby(["_v", "_m", "leverage"], sort=True)
             .agg(variant=("variant", "first"), mode=("mode", "first"), accounts=("accounts", "sum"),
                  liquidated=("liquidated", "sum"), loss=("loss", "sum"), lost_all=("lost_all", "sum"))
             .reset_index())
    frame["label"] = [_leverage_label(k, exact) for k in frame["leverage"]]
    frame["liquidation_rate"] = frame["liquidated"] / frame["accounts"]
    frame["mean_loss"] = frame["loss"] / frame["accounts"]
    return frame[columns].astype({"accounts": "int64", "liquidated": "int64", "lost_all": "int64"})


def distance_table(runs: Mapping, start_book=None) -> pd.DataFrame:
    """Accounts by distance to liquidation at the start: how far the price had to move
    against an account (fraction of the start mark) to reach the nearest liquidation
    price of its start positions (``liquidation_distance`` of :func:`account_outcomes`),
    in the buckets under 1%, 1-2%, 2-5%, 5-10%, 10-20%, 20-50%, 50% or more, and never
    (no liquidation price).  One row per variant and bucket; columns ``variant``,
    ``distance`` (the bucket), ``accounts``, ``share`` (of the variant's accounts with
    a distance), ``liquidated``, ``liquidation_rate`` (NaN for an empty bucket) and
    ``mean_loss``."""
    digests = _digests(runs, start_book)
    parts = []
    for name, d in digests.items():
        if d.by_distance is None:
            continue
        part = d.by_distance.reset_index()
        total = part["accounts"].sum()
        part.insert(0, "variant", name)
        part["share"] = part["accounts"] / total if total else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            part["liquidation_rate"] = np.where(part["accounts"] > 0, part["liquidated"] / part["accounts"].clip(1),
                                                np.nan)
            part["mean_loss"] = np.where(part["accounts"] > 0, part["loss"] / part["accounts"].clip(1), np.nan)
        parts.append(part)
    columns = ["variant", "distance", "accounts", "share", "liquidated", "liquidation_rate", "mean_loss"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


# -------------------------------------------------------------------------- styles
_CMAPS = {"cross": "Blues", "isolated": "Oranges", "isolated + auto-add": "Greens", "cross + isolated": "Purples",
          "mixed": "Purples", "no position": "Greys"}
_GROUP_MARKERS = {"cross": "o", "isolated": "s", "isolated + auto-add": "^", "cross + isolated": "D",
                  "mixed": "D", "no position": "x"}
_LINESTYLES = ("-", "--", ":", "-.")
_MODE_KEYS = {"population.isolated_share", "population.auto_add_share", "accounts' margin mode",
              "auto-add-margin"}


@dataclass
class _Style:
    group: str
    color: str
    linestyle: str
    marker: str
    rest: tuple  # the variant's values of the settings that differ between variants, margin mode aside
    short: str  # the variant within its group: those settings as "key=value", or its name
    rest_keys: tuple = ()  # the names of those settings


def _styles(runs: Mapping[str, VariantDigest], rows: list) -> dict[str, _Style]:
    """One colour family per margin mode (cross blue, isolated orange, isolated + auto-add
    green, mixed purple), shades and line styles within it."""
    from matplotlib import colormaps

    names = list(runs)
    # what sets the variants apart, margin mode aside: the scenario's settings when given (a
    # start book's leverages or positions may follow from its margin mode), else the runs'
    # parameters and the bracket tables
    scenario = any(source == "scenario" for _, _, source in rows)
    differ = [(key, texts) for key, texts, source in rows
              if len(set(texts)) > 1 and key not in _MODE_KEYS
              and (source == "scenario" if scenario else (source == "run" or "bracket" in key
                                                          or "maintenance" in key))]
    setting_keys = [(key, texts) for key, texts in differ if "." in key]
    groups = {name: runs[name].profile.get("mode", "mixed") for name in names}
    members: dict[str, list] = {}
    for name in names:
        members.setdefault(groups[name], []).append(name)
    out = {}
    for group, group_names in members.items():
        cmap = colormaps[_CMAPS.get(group, "Greys")]
        m = len(group_names)
        for j, name in enumerate(group_names):
            i = names.index(name)
            shade = 0.75 if m == 1 else 0.85 - 0.4 * j / (m - 1)
            rest = tuple(texts[i] for _, texts in differ)
            short = ", ".join(f"{key.rsplit('.', 1)[-1]}={texts[i]}" for key, texts in setting_keys) or name
            out[name] = _Style(group, _hex(cmap(shade)), _LINESTYLES[j % len(_LINESTYLES)],
                               _GROUP_MARKERS.get(group, "o"), rest, short, tuple(key for key, _ in differ))
    return out


def _hex(rgba) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgba[:3])


def _group_order(styles: Mapping[str, _Style]) -> list[str]:
    present = {s.group for s in styles.values()}
    return [g for g in MODES if g in present]


def _by_group(styles: Mapping[str, _Style]) -> dict[str, list[str]]:
    return {g: [n for n, s in styles.items() if s.group == g] for g in _group_order(styles)}


# -------------------------------------------------------------------------- charts
def _figure(n_rows: int, n_cols: int = 1, *, width: float = 11.0, row_height: float = 3.0, **kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, max(2.5, row_height * n_rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return fig, axes


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="png")


def short_money(value: float, unit: str = "") -> str:
    """A money amount for a chart tick: three significant digits with k, M, B, T
    (``short_money(1.2e7, "USDT") == "12M USDT"``)."""
    a = abs(value)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            text = f"{value / div:.3g}{suffix}"
            break
    else:
        text = "0" if a == 0 else f"{value:.3g}"
    return f"{text} {unit}" if unit and a != 0 else text


def _money_axis(ax, unit: str, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: short_money(v, unit))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _count_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True, nbins="auto"))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _price_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.6g}"))


def _percent_axis(ax, axis: str = "y", decimals=None) -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(100.0, decimals=decimals))


def _time_axis(ax, max_ticks: int = 10) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=max_ticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.6, text, transform=ax.transAxes, ha="center", va="center", color="#777777",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _bar_length(times: np.ndarray) -> np.timedelta64:
    """The bars' length: the median spacing of their open times (one minute for one bar)."""
    if times.size > 1:
        return np.median(np.diff(times).astype("int64")).astype("int64").astype("timedelta64[ns]")
    return np.timedelta64(60_000_000_000, "ns")


def _step_times(result) -> np.ndarray:
    """Open times of the result's bars (datetime64[ns])."""
    return pd.to_datetime(result.steps["timestamp"]).to_numpy().astype("datetime64[ns]")


def _stairs(ax, times: np.ndarray, values: np.ndarray, **kwargs) -> None:
    """A per-bar quantity as a staircase over each bar's interval (the last bar included)."""
    if times.size == 0:
        return
    x = np.append(times, times[-1] + _bar_length(times))
    y = np.append(values, values[-1])
    ax.plot(x, y, drawstyle="steps-post", **kwargs)


def _bars(ax, left: np.ndarray, width: np.timedelta64, values: np.ndarray, **kwargs) -> None:
    """Bars of one ``width`` starting at ``left`` (datetime64), drawn as one filled step
    patch (thousands of Rectangle patches would take seconds); zero bars are left out."""
    import matplotlib.dates as mdates

    keep = values != 0
    k = int(keep.sum())
    if k == 0:
        return
    lo = mdates.date2num(left[keep])
    w = float(np.asarray(width).astype("timedelta64[ns]").astype(np.int64)) / 86_400e9
    edges = np.empty(2 * k)
    edges[0::2], edges[1::2] = lo, lo + w
    heights = np.zeros(2 * k - 1)
    heights[0::2] = values[keep]
    ax.stairs(heights, edges, fill=True, **kwargs)


def _bar_text(bar: np.timedelta64) -> str:
    minutes = int(bar.astype("timedelta64[s]").astype(np.int64)) / 60.0
    if minutes < 1:
        return f"{minutes * 60:g}-second"
    if minutes < 60:
        return f"{minutes:g}-minute"
    return f"{minutes / 60:g}-hour"


@dataclass
class _Window:
    """The event window: the bars around the peak of liquidations, zoomed on in the charts."""
    first: int
    last: int  # inclusive
    start: np.datetime64
    end: np.datetime64
    share: float  # of all liquidated notional (all variants) inside


def _event_window(runs: Mapping[str, VariantDigest], min_bars: int = 30, max_bars: int = 60,
                  mass: float = 0.8) -> _Window | None:
    """The shortest run of bars holding ``mass`` of the liquidated notional of all variants,
    widened to ``min_bars`` around it; when that run is longer than ``max_bars``, the
    ``max_bars`` bars holding the most.  None without liquidations, or when the whole run
    is short enough to need no zoom."""
    n = max((len(d.steps) for d in runs.values()), default=0)
    if n == 0:
        return None
    total = np.zeros(n)
    t = None
    for d in runs.values():
        v = d.steps["liquidated_notional"].to_numpy(np.float64)
        c = d.steps["liquidations"].to_numpy(np.float64)
        total[:len(v)] += np.where(v > 0, v, c)
        if t is None or len(d.steps) == n:
            t = _step_times(d)
    whole = total.sum()
    if whole <= 0 or n <= min_bars * 1.5:
        return None
    cum = np.concatenate([[0.0], np.cumsum(total)])
    # shortest window [i, j) with cum[j] - cum[i] >= mass * whole (two pointers)
    best = (0, n)
    i = 0
    for j in range(1, n + 1):
        while cum[j] - cum[i + 1] >= mass * whole and i + 1 < j:
            i += 1
        if cum[j] - cum[i] >= mass * whole and j - i < best[1] - best[0]:
            best = (i, j)
    lo, hi = best
    if hi - lo > max_bars:
        lo = int(np.argmax(cum[max_bars:] - cum[:-max_bars]))
        hi = lo + max_bars
    pad = max(3, (min_bars - (hi - lo) + 1) // 2)
    lo, hi = max(0, lo - pad), min(n, hi + pad)
    if hi - lo < min_bars:
        lo, hi = max(0, min(lo, hi - min_bars)), min(n, max(hi, lo + min_bars))
    if hi - lo >= n * 0.8:
        return None
    bar = _bar_length(t)
    return _Window(lo, hi - 1, t[lo], t[hi - 1] + bar, float((cum[hi] - cum[lo]) / whole))


def _window_text(w: _Window) -> str:
    a, b = pd.Timestamp(w.start), pd.Timestamp(w.end)
    return f"{a:%H:%M}-{b:%H:%M}" if a.date() == b.date() else f"{a:%m-%d %H:%M}-{b:%m-%d %H:%M}"


def _chart_prices(path: Path, runs: Mapping[str, VariantDigest], frames: dict[str, pd.DataFrame],
                  styles: Mapping[str, _Style], window: _Window | None, unit: str) -> None:
    """Per contract: the whole window (close, high-low band, event window shaded, the
    liquidation clusters), and the event window zoomed, each variant's clusters side by
    side inside its bar."""
    symbols = list(frames)
    n_rows = len(symbols) * (2 if window else 1)
    fig, axes = _figure(n_rows, row_height=3.3)
    clusters = {name: d.clusters for name, d in runs.items()}
    top = max((float(g["notional"].max()) for g in clusters.values() if g is not None), default=0.0)
    names = [n for group in _by_group(styles).values() for n in group]
    for k, symbol in enumerate(symbols):
        frame = frames[symbol]
        t = pd.to_datetime(frame["timestamp"]).to_numpy().astype("datetime64[ns]")
        bar = _bar_length(t)
        low, high = frame["low"].to_numpy(np.float64), frame["high"].to_numpy(np.float64)
        close = frame["close"].to_numpy(np.float64)
        opens = frame["open"].to_numpy(np.float64)
        panels = [(axes[k * (2 if window else 1), 0], None)]
        if window:
            panels.append((axes[k * 2 + 1, 0], window))
        for ax, w in panels:
            sl = slice(None) if w is None else slice(w.first, w.last + 1)
            tt, lo_, hi_ = t[sl], low[sl], high[sl]
            if w is None:
                edges = np.append(tt, tt[-1] + bar)
                ax.fill_between(edges, np.append(lo_, lo_[-1]), np.append(hi_, hi_[-1]), color="#999999",
                                alpha=0.35, linewidth=0, step="post", label="high-low range of each bar")
                ax.plot(edges, np.concatenate([opens[:1], close]), color="black", linewidth=0.9,
                        label="close")
                if window:
                    ax.axvspan(window.start, window.end, color="#ffd54f", alpha=0.25, linewidth=0,
                               label=f"event window {_window_text(window)} (zoomed below)")
                ax.set_title(f"{symbol}: the whole run", loc="left", fontsize=10)
            else:
                mid = tt + bar // 2
                ax.vlines(mid, lo_, hi_, color="#888888", linewidth=2.5, alpha=0.6, label="high-low range")
                ax.hlines(close[sl], mid, tt + bar, color="black", linewidth=1.2, label="close")
                ax.hlines(opens[sl], tt, mid, color="#555555", linewidth=1.0, label="open")
                ax.set_title(f"{symbol}: event window {_window_text(w)} ({w.last - w.first + 1} bars, "
                             f"{w.share:.0%} of the liquidated notional); markers side by side within each bar",
                             loc="left", fontsize=10)
            n = len(names)
            for i, name in enumerate(names):
                g = clusters[name]
                s = styles[name]
                if g is None or symbol not in g.index.get_level_values(0):
                    if w is None:
                        ax.scatter([], [], color=s.color, marker=s.marker, label=f"{name}: no liquidations")
                    continue
                part = g.loc[symbol]
                steps = part.index.to_numpy()
                keep = (steps >= 0) & (steps < len(t))
                if w is not None:
                    keep &= (steps >= w.first) & (steps <= w.last)
                steps = steps[keep]
                part = part.loc[steps]
                scale = 400.0 if w is not None else 150.0
                sizes = 12.0 + scale * part["notional"].to_numpy() / top if top > 0 else 12.0
                offset = bar * (i + 0.5) / n if w is not None else bar // 2
                x = t[steps] + offset
                label = None if w is not None else f"{name}: {int(g.loc[symbol]['count'].sum()):,} liquidations"
                ax.scatter(x, part["price"].to_numpy(), s=sizes, color=s.color, marker=s.marker, alpha=0.75,
                           edgecolors="black", linewidths=0.4, label=label, zorder=3)
            ax.set_ylabel(f"price ({unit})")
            _price_axis(ax)
            ax.grid(alpha=0.3)
            _time_axis(ax)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8, markerscale=0.7,
               frameon=False)
    _save(fig, path)


#: At most this many paths are drawn as lines in the price chart of a sweep (the band covers them all).
PATH_LINES = 100
_PATH_POINTS = 2000  # a path drawn as a line keeps about this many of its closes


def _chart_paths(path: Path, paths: dict, unit: str) -> None:
    """The price chart of a sweep (:class:`PathSweep`): per contract, every path's close as
    a thin grey line (the first :data:`PATH_LINES`), the band of the 5th to 95th percentile
    of the closes of every path at each bar (when they share their bars' times and there are
    ten paths or more), and the first path, the one shown in detail, in black."""
    labels = list(paths)
    symbols = list(dict.fromkeys(s for frames in paths.values() for s in frames))
    fig, axes = _figure(len(symbols), row_height=3.6)
    drawn = labels[:PATH_LINES]
    alpha = float(min(0.8, max(0.12, 2.5 / math.sqrt(len(drawn)))))
    for k, symbol in enumerate(symbols):
        ax = axes[k, 0]
        series = []
        for label in labels:
            frame = paths[label].get(symbol)
            if frame is None or not len(frame):
                continue
            t = pd.to_datetime(frame["timestamp"]).to_numpy().astype("datetime64[ns]")
            series.append((label, t, frame["close"].to_numpy(np.float64)))
        if not series:
            _empty_note(ax, f"no {symbol} bars")
            continue
        first_frame = paths[series[0][0]][symbol]
        t, lo_, hi_ = series[0][1], first_frame["low"].to_numpy(np.float64), first_frame["high"].to_numpy(np.float64)
        edges = np.append(t, t[-1] + _bar_length(t))
        ax.fill_between(edges, np.append(lo_, lo_[-1]), np.append(hi_, hi_[-1]), color="#999999", alpha=0.35,
                        linewidth=0, step="post", label=f"{series[0][0]}: high-low range of each bar")
        t0 = series[0][1]
        same = all(len(t) == len(t0) and (t == t0).all() for _, t, _ in series)
        if same and len(series) >= 10:
            closes = np.vstack([c for _, _, c in series])
            lo, hi = np.percentile(closes, [5.0, 95.0], axis=0)
            ax.fill_between(t0, lo, hi, color="#90caf9", alpha=0.45, linewidth=0,
                            label=f"5th-95th percentile of the {len(series)} paths' closes")
        for i, (label, t, close) in enumerate(series):
            if label not in drawn:
                continue
            step = max(1, len(t) // _PATH_POINTS)
            first = i == 0
            ax.plot(t[::step], close[::step], color="black" if first else "#616161",
                    linewidth=1.3 if first else 0.6, alpha=1.0 if first else alpha, zorder=3 if first else 2,
                    label=(f"{label} (shown in detail below)" if first
                           else ("the other paths" if i == 1 else None)))
        shown = (f"{len(series)} paths" if len(series) <= PATH_LINES
                 else f"{len(series)} paths, the first {PATH_LINES} drawn")
        ax.set_title(f"{symbol}: close of each bar, {shown}", loc="left", fontsize=10)
        ax.set_ylabel(f"price ({unit})")
        _price_axis(ax)
        ax.grid(alpha=0.3)
        _time_axis(ax)
        ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def _chart_spread(path: Path, spread: pd.DataFrame, points: dict, colors: dict, unit: str) -> None:
    """The spread over paths: a panel per metric of :data:`SPREAD_METRICS`, a row per margin
    variant, a dot per path (``points[variant][metric]``: the values), the mean as a black bar
    and the median as a white diamond."""
    bases = list(spread["variant"])
    fig, axes = _figure(1, len(SPREAD_METRICS), width=12.5, row_height=1.2 + 0.5 * len(bases), sharey=True)
    y = np.arange(len(bases))[::-1]
    rng = np.random.default_rng(0)  # the jitter of the dots, the same in every run
    for ax, (col, title) in zip(axes[0], SPREAD_METRICS.items()):
        scale = 100.0 if col == "liquidation_rate" else 1.0
        for yy, base in zip(y, bases):
            v = np.asarray(points[base][col], np.float64) * scale
            jitter = rng.uniform(-0.18, 0.18, len(v))
            ax.scatter(v, yy + jitter, s=14, color=colors.get(base, "#757575"), alpha=0.6, linewidths=0)
            row = spread[spread["variant"] == base].iloc[0]
            ax.plot([row[f"{col}_mean"] * scale] * 2, [yy - 0.32, yy + 0.32], color="black", linewidth=2.0)
            ax.scatter([row[f"{col}_median"] * scale], [yy], marker="D", s=28, color="white", edgecolors="black",
                       linewidths=0.8, zorder=3)
        ax.set_title(title + (f" ({unit})" if col != "liquidation_rate" else " (% of accounts)"), fontsize=10)
        if not any(np.nan_to_num(np.asarray(points[b][col], np.float64)).any() for b in bases):
            _empty_note(ax, f"no {title} on any path")
        ax.grid(alpha=0.3, axis="x")
        if col == "liquidation_rate":
            _percent_axis(ax, "x", decimals=0)
        else:
            _money_axis(ax, "", axis="x")
    axes[0, 0].set_yticks(y, bases, fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color="#757575", label="one path"),
               Line2D([], [], color="black", linewidth=2.0, label="mean over the paths"),
               Line2D([], [], marker="D", linestyle="", markerfacecolor="white", markeredgecolor="black",
                      label="median")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    _save(fig, path)


def _grid(styles, n_rows: int, *, width: float = 12.0, row_height: float = 2.8, sharey="row", sharex=True):
    groups = list(_by_group(styles))
    fig, axes = _figure(n_rows, len(groups), width=width, row_height=row_height, sharey=sharey, sharex=sharex)
    return fig, axes, groups


def _chart_liquidations(path: Path, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style],
                        window: _Window | None, unit: str) -> None:
    """Small multiples, a column per margin mode: liquidations per bar over the whole run,
    then (event window) liquidations and liquidated notional per bar, variants side by side."""
    members = _by_group(styles)
    n_rows = 3 if window else 2
    fig, axes, groups = _grid(styles, n_rows, row_height=2.6, sharex=False)
    for c, group in enumerate(groups):
        ax_full = axes[0, 0 + c]
        zoom = [axes[1, c], axes[2, c]] if window else []
        notional_full = axes[1, c] if not window else None
        names = members[group]
        for j, name in enumerate(names):
            d, s = runs[name], styles[name]
            t = _step_times(d)
            if t.size == 0:
                continue
            bar = _bar_length(t)
            count = d.steps["liquidations"].to_numpy(np.float64)
            notional = d.steps["liquidated_notional"].to_numpy(np.float64)
            _stairs(ax_full, t, count, color=s.color, linestyle=s.linestyle, linewidth=1.3,
                    label=f"{s.short}: {int(count.sum()):,}")
            if notional_full is not None:
                _stairs(notional_full, t, notional, color=s.color, linestyle=s.linestyle, linewidth=1.3)
            if window:
                sl = slice(window.first, window.last + 1)
                width = bar / len(names)
                x = t[sl] + width * j
                for ax, v in zip(zoom, (count, notional)):
                    _bars(ax, x, width, v[sl], color=s.color)
        ax_full.set_title(f"{group}: whole run", loc="left", fontsize=10)
        ax_full.legend(loc="upper left", fontsize=8, title="liquidations", title_fontsize=8)
        if window:
            ax_full.axvspan(window.start, window.end, color="#ffd54f", alpha=0.25, linewidth=0)
            import matplotlib.dates as mdates

            zoom[0].set_title(f"{group}: zoom on {_window_text(window)}", loc="left", fontsize=10)
            zoom[0].sharex(zoom[1])
            zoom[1].set_xlim(mdates.date2num(window.start), mdates.date2num(window.end))
        rows = [(ax_full, "count")] + ([(zoom[0], "count"), (zoom[1], "money")] if window
                                       else [(notional_full, "money")])
        for ax, kind in rows:
            if kind == "money":
                _money_axis(ax, unit)
            else:
                _count_axis(ax)
            ax.grid(alpha=0.3)
            _time_axis(ax, max_ticks=6)
    bar = _bar_text(_bar_length(_step_times(next(iter(runs.values())))))
    axes[0, 0].set_ylabel(f"liquidations per {bar} bar")
    if window:
        axes[1, 0].set_ylabel(f"liquidations per {bar} bar")
        axes[2, 0].set_ylabel("liquidated notional per bar")
    else:
        axes[1, 0].set_ylabel("liquidated notional per bar")
    if not any(int(d.steps["liquidations"].sum()) for d in runs.values()):
        _empty_note(axes[0, 0], "no liquidations in any variant")
    _save(fig, path)


def _chart_insurance(path: Path, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style],
                     unit: str) -> None:
    """Small multiples per margin mode: the insurance fund, and (when any variant has some)
    cumulative bad debt with the socialised part dashed."""
    members = _by_group(styles)
    any_debt = any(float(d.steps["bad_debt"].sum()) > 0 for d in runs.values())
    fig, axes, groups = _grid(styles, 2 if any_debt else 1, row_height=2.8)
    for c, group in enumerate(groups):
        for name in members[group]:
            d, s = runs[name], styles[name]
            t = _step_times(d)
            if t.size == 0:
                continue
            t = np.append(t[:1], t + _bar_length(t))
            steps = d.steps
            fund0 = float(d.params.get("insurance_fund", steps["insurance_fund"].iloc[0]))
            fund = np.append(fund0, steps["insurance_fund"].to_numpy(np.float64))
            axes[0, c].plot(t, fund, color=s.color, linestyle=s.linestyle, linewidth=1.4,
                            label=f"{s.short}: {short_money(fund[-1], unit)}")
            if any_debt:
                debt = np.append(0.0, steps["bad_debt"].cumsum().to_numpy(np.float64))
                social = np.append(0.0, steps["socialised_loss"].cumsum().to_numpy(np.float64))
                axes[1, c].plot(t, debt, color=s.color, linestyle="-", linewidth=1.4, label=f"{s.short}: bad debt")
                axes[1, c].plot(t, social, color=s.color, linestyle=":", linewidth=1.4,
                                label=f"{s.short}: socialised")
        axes[0, c].set_title(f"{group}: insurance fund", loc="left", fontsize=10)
        axes[0, c].legend(loc="upper left", fontsize=8, title="at the end", title_fontsize=8)
        if any_debt:
            axes[1, c].set_title(f"{group}: cumulative bad debt", loc="left", fontsize=10)
            axes[1, c].legend(loc="upper left", fontsize=8)
        for ax in axes[:, c]:
            _money_axis(ax, unit)
            ax.grid(alpha=0.3)
            _time_axis(ax, max_ticks=6)
    axes[0, 0].set_ylabel("insurance fund")
    if any_debt:
        axes[1, 0].set_ylabel("cumulative bad debt")
    _save(fig, path)


def _chart_outcomes(path: Path, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style]) -> None:
    """Histograms of account PnL % of start equity: a column per margin mode, a row per variant in it."""
    members = _by_group(styles)
    n_rows = max(len(v) for v in members.values())
    fig, axes, groups = _grid(styles, n_rows, row_height=2.3, sharey=True)
    values = {n: d.pnl_pct[np.isfinite(d.pnl_pct)] for n, d in runs.items()}
    lo = min((float(v.min()) for v in values.values() if v.size), default=-1.0)
    hi = max((float(v.max()) for v in values.values() if v.size), default=1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    bins = np.linspace(lo, hi, 41)
    for c, group in enumerate(groups):
        for r in range(n_rows):
            ax = axes[r, c]
            if r >= len(members[group]):
                ax.set_axis_off()
                continue
            name = members[group][r]
            v, s = values[name], styles[name]
            if v.size:
                counts, _ = np.histogram(v, bins=bins)
                ax.stairs(counts, bins, fill=True, color=s.color, alpha=0.85)
                ax.axvline(0.0, color="black", linewidth=0.8)
                med = float(np.median(v))
                ax.axvline(med, color="black", linewidth=0.8, linestyle="--")
                ax.set_title(f"{name}\nmedian {med:+.1f}%, {(v <= -99.0).mean():.1%} lost 99% or more",
                             loc="left", fontsize=9)
            else:
                _empty_note(ax, "no account with a positive start equity")
                ax.set_title(name, loc="left", fontsize=9)
            _count_axis(ax)
            _percent_axis(ax, "x", decimals=0)
            ax.grid(alpha=0.3)
        axes[n_rows - 1, c].set_xlabel("account PnL, % of start equity")
    for r in range(n_rows):
        axes[r, 0].set_ylabel("accounts")
    _save(fig, path)


def loss_buckets(pnl_pct: np.ndarray) -> np.ndarray:
    """Accounts in each of :data:`LOSS_BUCKETS` (NaN PnL % left out): gained or flat
    (>= 0), lost under 10% (-10 < x < 0), 10-50% (-50 < x <= -10), 50-99% (-99 < x <= -50),
    99% or more (x <= -99)."""
    v = np.asarray(pnl_pct, np.float64)
    v = v[np.isfinite(v)]
    return np.array([(v >= 0).sum(), ((v < 0) & (v > -10)).sum(), ((v <= -10) & (v > -50)).sum(),
                     ((v <= -50) & (v > -99)).sum(), (v <= -99).sum()], dtype=np.int64)


def _loss_money_labels(unit: str) -> list[str]:
    e = [short_money(x) for x in LOSS_EDGES]
    return (["gained or flat", f"lost under {e[0]} {unit}"] + [f"lost {a}-{b}" for a, b in zip(e, e[1:])]
            + [f"lost {e[-1]} or more"])


def _stacked(ax, order: list, counts: np.ndarray, labels: list, colors, title: str) -> None:
    y = np.arange(len(order))[::-1]
    totals = counts.sum(axis=1, keepdims=True)
    shares = 100.0 * counts / np.where(totals > 0, totals, 1.0)
    left = np.zeros(len(order))
    for k, (label, color) in enumerate(zip(labels, colors)):
        w = shares[:, k]
        bars = ax.barh(y, w, left=left, color=color, edgecolor="white", linewidth=0.6, label=label)
        dark = k >= len(labels) - 2
        ax.bar_label(bars, labels=[f"{v:.0f}%" if v >= 4 else "" for v in w], label_type="center", fontsize=8,
                     color="white" if dark else "black")
        left += w
    ax.set_yticks(y, order, fontsize=9)
    ax.set_xlim(0, 100)
    _percent_axis(ax, "x", decimals=0)
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize=8, frameon=False)


def _chart_losses(path: Path, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style], unit: str) -> None:
    """Each variant's accounts by loss, as % of start equity (left) and in money (right)."""
    order = [n for group in _by_group(styles).values() for n in group]
    fig, axes = _figure(1, 2, width=12.5, row_height=1.7 + 0.42 * len(order), sharey=True)
    pct = np.array([loss_buckets(runs[n].pnl_pct) for n in order], dtype=np.float64)
    _stacked(axes[0, 0], order, pct, [b[0] for b in LOSS_BUCKETS], [b[1] for b in LOSS_BUCKETS],
             "share of accounts by PnL, % of start equity")
    money = np.array([runs[n].loss_counts if runs[n].loss_counts is not None else np.zeros(len(LOSS_EDGES) + 2)
                      for n in order], dtype=np.float64)
    _stacked(axes[0, 1], order, money, _loss_money_labels(unit), _LOSS_COLORS,
             f"share of accounts by loss ({unit})")
    _save(fig, path)


def _largest_moves(frames: dict[str, pd.DataFrame], runs: Mapping[str, VariantDigest]) -> dict:
    """Per contract: the largest fall and rise from the start mark (the first digest's
    profile, else the first open) to the lowest low and highest high, as fractions."""
    marks = next(iter(runs.values())).profile.get("marks", {})
    out = {}
    for symbol, frame in frames.items():
        start = marks.get(symbol)
        if start is None or not np.isfinite(start) or start <= 0:
            start = float(frame["open"].iloc[0])
        out[symbol] = ((start - float(frame["low"].min())) / start, (float(frame["high"].max()) - start) / start)
    return out


def _chart_distance(path: Path, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style],
                    moves: dict) -> None:
    """Cumulative share of accounts whose nearest liquidation price was within X% of the
    start price: a panel per margin mode, the path's largest fall and rise marked."""
    members = _by_group(styles)
    fig, axes, groups = _grid(styles, 1, row_height=3.6, sharey=True)
    biggest = max((max(v) for v in moves.values()), default=0.0)
    x_max = 100.0 * min(1.0, max(0.25, 1.6 * biggest))
    x = 100.0 * DISTANCE_FINE
    for c, group in enumerate(groups):
        ax = axes[0, c]
        for name in members[group]:
            d, s = runs[name], styles[name]
            if d.distance_counts is None or d.distance_counts.sum() == 0:
                continue
            counts = d.distance_counts
            cum = 100.0 * np.concatenate([[0.0], np.cumsum(counts[:-2])]) / counts.sum()
            never = counts[-1] / counts.sum()
            ax.plot(x, cum, color=s.color, linestyle=s.linestyle, linewidth=1.8,
                    label=f"{s.short}" + (f" ({never:.0%} never)" if never > 0 else ""))
        for k, (symbol, (fall, rise)) in enumerate(moves.items()):
            dash = (0, (4, 2 + 2 * k))
            if 100 * fall <= x_max:
                ax.axvline(100 * fall, color="#c62828", linestyle=dash, linewidth=1.0,
                           label=f"{symbol} largest fall: {fall:.1%}")
            if 100 * rise <= x_max:
                ax.axvline(100 * rise, color="#2e7d32", linestyle=dash, linewidth=1.0,
                           label=f"{symbol} largest rise: {rise:.1%}")
        ax.set_xlim(0, x_max)
        ax.set_ylim(0, 100)
        _percent_axis(ax, "x", decimals=0)
        _percent_axis(ax, decimals=0)
        ax.set_title(group, loc="left", fontsize=10)
        ax.set_xlabel("price move to the nearest liquidation price")
        ax.legend(loc="lower right", fontsize=7.5)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("share of accounts within")
    _save(fig, path)


def _chart_comparison(path: Path, summary: pd.DataFrame, styles: Mapping[str, _Style], unit: str) -> None:
    """Horizontal bars, one per variant, grouped and coloured by margin mode."""
    order = [n for group in _by_group(styles).values() for n in group]
    fig, axes = _figure(1, 3, width=12.5, row_height=1.0 + 0.42 * len(order), sharey=True)
    y = np.arange(len(order))[::-1]
    colors = [styles[n].color for n in order]
    panels = (("liquidation_rate", "liquidation rate (% of accounts)", 100.0, lambda v: f"{v:.1f}%"),
              ("mean_loss_per_account", f"mean loss per account ({unit})", 1.0,
               lambda v: f"{v:,.2f} {unit}"),
              ("accounts_saved_by_auto_add", "accounts saved by auto-add-margin", 1.0, lambda v: f"{v:,.0f}"))
    for ax, (col, title, scale, fmt) in zip(axes[0], panels):
        vals = np.nan_to_num(summary.loc[order, col].to_numpy(np.float64) * scale)
        bars = ax.barh(y, vals, color=colors, edgecolor="black", linewidth=0.4)
        ax.bar_label(bars, labels=[fmt(v) for v in vals], fontsize=8, padding=3)
        ax.set_title(title, fontsize=10)
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3, axis="x")
        ax.margins(x=0.28)
        if col == "mean_loss_per_account":
            _money_axis(ax, "", axis="x")
        elif col == "liquidation_rate":
            _percent_axis(ax, "x", decimals=0)
        else:
            _count_axis(ax, "x")
    axes[0, 0].set_yticks(y, order, fontsize=9)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=styles[members[0]].color, edgecolor="black", linewidth=0.4, label=group)
               for group, members in _by_group(styles).items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False,
               title="margin mode (shades: the variants within it)", title_fontsize=8)
    _save(fig, path)


# ---------------------------------------------------------------------- parameters
_SKIP_SETTINGS = {"name", "description", "notes", "variants", "grid"}


def _flatten(cfg: Mapping, prefix: str = "") -> dict:
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value and not all(isinstance(v, (int, float)) for v in value.values()):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def _param_text(value) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_param_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_param_text(v) for v in value)
    return str(value)


def _modes_text(p: dict) -> str:
    shares = p.get("mode_shares") or {}
    if not shares:
        return "no positions"
    return ", ".join(f"{m} {shares[m]:.0%}" if len(shares) > 1 else f"{m}, every account" for m in MODES
                     if m in shares)


def _leverage_text(p: dict) -> str:
    if p.get("leverages"):
        return ", ".join(f"{v:g}x" for v in p["leverages"])
    if p.get("leverage_range"):
        lo, hi = p["leverage_range"]
        return f"{lo:g}x to {hi:g}x (median {p['leverage_median']:g}x)"
    return "no positions"


def _positions_text(p: dict) -> str:
    top = p.get("max_positions_per_account", 0)
    held = p.get("accounts_with_positions", 0)
    if top <= 1:
        return "one" if top == 1 else "none"
    return f"1 to {top} (mean {p['positions'] / max(1, held):.2f})"


def _bracket_text(p: dict, symbol: str) -> str:
    b = (p.get("brackets") or {}).get(symbol)
    if b is None:
        return ""
    when = f"observed {b['effective_date']}" if b.get("effective_date") else "given tiers"
    return f"{when}, {b['tiers']} tiers, up to {b['max_leverage']:g}x"


def _rates_text(p: dict, symbol: str) -> str:
    b = (p.get("brackets") or {}).get(symbol)
    if b is None:
        return ""
    rates = ", ".join(f"{100 * m:.3g}%" for m in b["mmr"][:4])
    return rates + (", ..." if len(b["mmr"]) > 4 else "")


def _param_rows(runs: Mapping[str, VariantDigest], settings: Mapping | None) -> list[tuple[str, list, str]]:
    """(name, text per variant, where it comes from) for every parameter of the report:
    the start book's make-up, the scenario's settings (when given), the run's params."""
    names = list(runs)
    rows = []
    profiles = [runs[n].profile for n in names]
    if any(profiles):
        rows.append(("accounts' margin mode", [_modes_text(p) if p else "" for p in profiles], "book"))
        rows.append(("leverage", [_leverage_text(p) if p else "" for p in profiles], "book"))
        rows.append(("positions per account", [_positions_text(p) if p else "" for p in profiles], "book"))
        symbols = []
        for p in profiles:
            symbols += [s for s in (p.get("brackets") or {}) if s not in symbols]
        for symbol in symbols:
            rows.append((f"{symbol} bracket table", [_bracket_text(p, symbol) for p in profiles], "book"))
            rows.append((f"{symbol} maintenance rates (first tiers)", [_rates_text(p, symbol) for p in profiles],
                         "book"))
    param_keys: list = []
    for n in names:
        param_keys += [k for k in runs[n].params if k not in param_keys]
    if settings:
        flat = {n: _flatten(settings.get(n, {})) for n in names}
        keys: list = []
        for n in names:
            keys += [k for k in flat[n] if k not in keys]
        for key in keys:
            if key.split(".", 1)[0] in _SKIP_SETTINGS or key.rsplit(".", 1)[-1] in param_keys:
                continue
            rows.append((key, [_param_text(flat[n][key]) if key in flat[n] else "" for n in names], "scenario"))
    for key in param_keys:
        rows.append((key, [_param_text(runs[n].params[key]) if key in runs[n].params else "" for n in names], "run"))
    return rows


def _params_html(names: list, rows: list, styles: Mapping[str, _Style]) -> str:
    differ = [(k, t) for k, t, _ in rows if len(set(t)) > 1]
    same = [(k, t) for k, t, _ in rows if len(set(t)) <= 1]
    parts = []
    if not rows:
        return "<p>No parameters recorded.</p>"
    if differ:
        head = "".join(_variant_th(n, styles) for n in names)
        body = "".join(f'<tr><th scope="row">{_esc(k)}</th>' + "".join(f"<td>{_esc(v)}</td>" for v in t) + "</tr>"
                       for k, t in differ)
        parts.append("<h3>What differs between the variants</h3>"
                     f'<table id="params-diff"><thead><tr><th>parameter</th>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")
    else:
        parts.append('<p>The variants differ in nothing recorded here but their names.</p>')
    if same:
        body = "".join(f'<tr><th scope="row">{_esc(k)}</th><td>{_esc(t[0] if t else "")}</td></tr>' for k, t in same)
        parts.append("<h3>The same in every variant</h3>"
                     f'<table id="params"><thead><tr><th>parameter</th><th>value</th></tr></thead>'
                     f"<tbody>{body}</tbody></table>")
    return "".join(parts)


# ------------------------------------------------------------------------ findings
def _n(v) -> str:
    return f"{int(v):,}"


def _fewer(a: float, b: float, more: str, fewer: str) -> str:
    """'29% fewer' style: a against b."""
    if b == 0:
        return "as many" if a == 0 else more
    change = (a - b) / b
    if abs(change) < 0.0005:
        return "as many"
    return f"{abs(change):.0%} {more if change > 0 else fewer}" if abs(change) >= 0.01 else \
        f"{abs(change):.1%} {more if change > 0 else fewer}"


def _identical(summary: pd.DataFrame, a: str, b: str) -> bool:
    ra, rb = summary.loc[a], summary.loc[b]
    return (int(ra["accounts_liquidated"]) == int(rb["accounts_liquidated"])
            and int(ra["liquidations"]) == int(rb["liquidations"])
            and math.isclose(ra["liquidated_notional"], rb["liquidated_notional"], rel_tol=1e-9, abs_tol=1e-6)
            and math.isclose(ra["mean_loss_per_account"], rb["mean_loss_per_account"], rel_tol=1e-9, abs_tol=1e-6)
            and math.isclose(ra["bad_debt"], rb["bad_debt"], rel_tol=1e-9, abs_tol=1e-6))


_PAIRS = (("isolated + auto-add", "isolated"), ("cross", "isolated"), ("cross", "isolated + auto-add"),
          ("mixed", "cross"), ("mixed", "isolated"))


def _findings(summary: pd.DataFrame, runs: Mapping[str, VariantDigest], styles: Mapping[str, _Style], unit: str,
              moves: dict, lev: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The headline differences, computed from the numbers, and the notes on results that
    follow from a modelling choice.  Plain text sentences."""
    found: list[str] = []
    why: list[str] = []
    names = [n for group in _by_group(styles).values() for n in group]
    by_rest: dict = {}
    for n in names:
        by_rest.setdefault(styles[n].rest, {}).setdefault(styles[n].group, n)
    multi = len(by_rest) > 1

    def liq(n):
        return int(summary.loc[n, "accounts_liquidated"])

    def loss(n):
        return float(summary.loc[n, "mean_loss_per_account"])

    def tag(n):
        return f" with {styles[n].short}" if multi else ""

    # who liquidated how many
    accounts = int(summary["accounts"].max()) if len(summary) else 0
    parts = []
    for rest, groups in by_rest.items():
        members = sorted(groups.values(), key=lambda n: -liq(n))
        text = ", ".join(f"{styles[n].group if len(groups) > 1 else n} {liq(n):,} "
                         f"({summary.loc[n, 'liquidation_rate']:.1%})" for n in members)
        parts.append(text + tag(members[0]))
    if any(liq(n) for n in names):
        found.append(f"Accounts liquidated, of {accounts:,}: " + "; ".join(parts) + ".")
    else:
        found.append(f"No account was liquidated in any variant ({accounts:,} accounts each).")

    # margin modes against each other, every setting of the rest in one sentence
    identical_pairs = []
    for a, b in _PAIRS:
        pairs = [(g[a], g[b]) for g in by_rest.values() if a in g and b in g]
        if not pairs:
            continue
        same = [_identical(summary, na, nb) for na, nb in pairs]
        identical_pairs += [p for p, x in zip(pairs, same) if x]
        if all(same):
            counts = "; ".join(f"{liq(na):,} accounts liquidated{tag(na)}" for na, _ in pairs)
            found.append(f"{a[0].upper() + a[1:]} and {b} gave identical results ({counts}).")
            continue
        na, nb = pairs[0]
        counts = "; ".join(f"{liq(x):,} against {liq(y):,}{tag(x)}" for x, y in pairs)
        losses = "; ".join(f"{loss(x):,.2f} against {loss(y):,.2f} {unit}{tag(x)}" for x, y in pairs)
        if all(loss(x) > 0 and loss(y) > 0 for x, y in pairs):
            lost = f"lost {_fewer(loss(na), loss(nb), 'more', 'less')} per account ({losses})"
        else:
            lost = f"the mean loss per account was {losses} (negative: a mean gain)"
        found.append(f"{a[0].upper() + a[1:]} liquidated {_fewer(liq(na), liq(nb), 'more', 'fewer')} accounts "
                     f"than {b} ({counts}) and {lost}.")

    # the other settings, within each margin mode
    if multi:
        clauses = []
        members = _by_group(styles)
        for k, rest in enumerate(list(by_rest)[1:]):
            parts = []
            for group, groups_names in members.items():
                base = next((n for n in groups_names if styles[n].rest == list(by_rest)[0]), None)
                other = next((n for n in groups_names if styles[n].rest == rest), None)
                if base is None or other is None:
                    continue
                parts.append(f"{group} {liq(other) - liq(base):+,} accounts liquidated ({liq(other):,}), "
                             f"{loss(other) - loss(base):+,.2f} {unit} mean loss")
                label, base_label = styles[other].short, styles[base].short
            if parts:
                clauses.append(f"{label} instead of {base_label}: " + "; ".join(parts))
        if clauses:
            found.append(". ".join(f"With {c}" for c in clauses) + ".")

    # auto-add-margin
    topped = [n for n in names if int(summary.loc[n, "topups"]) > 0]
    if topped:
        parts = [f"{int(summary.loc[n, 'topups']):,} top-ups worth "
                 f"{short_money(float(summary.loc[n, 'topup_amount']), unit)} in {n}, after which "
                 f"{int(summary.loc[n, 'accounts_saved_by_auto_add']):,} topped-up accounts were never liquidated"
                 for n in topped]
        found.append("Auto-add-margin made " + "; ".join(parts) + ".")

    # leverage, distance, losses: the variant with the most liquidations
    worst = max(names, key=lambda n: (liq(n), loss(n)))
    if len(lev) and liq(worst) > 0:
        part = lev[lev["variant"] == worst].groupby("leverage", sort=True).agg(
            label=("label", "first"), accounts=("accounts", "sum"), liquidated=("liquidated", "sum"))
        if len(part) > 1:
            rates = ", ".join(f"{r.label} {r.liquidated / r.accounts:.0%}" for r in part.itertuples())
            found.append(f"By leverage, share of accounts liquidated in {worst}: {rates}.")
    d = runs[worst]
    p = d.profile
    if p and liq(worst) > 0 and np.isfinite(p.get("max_distance_liquidated", math.nan)):
        moved = ", ".join(f"{s} fell at most {fall:.1%} and rose at most {rise:.1%}" for s, (fall, rise)
                          in moves.items())
        found.append(f"Every account liquidated in {worst} started within {p['max_distance_liquidated']:.1%} of "
                     f"its nearest liquidation price ({moved} from the start).")
    first = next(iter(by_rest.values()))
    if len(first) > 1:
        wiped = []
        for group, n in first.items():
            b = loss_buckets(runs[n].pnl_pct)
            total = max(1, int(b.sum()))
            wiped.append(f"{group} {b[4] / total:.1%} (and {b[3] / total:.1%} lost 50-99%)")
        found.append(f"Accounts that lost 99% or more of their start equity{tag(next(iter(first.values())))}: "
                     + ", ".join(wiped) + ".")
    st = d.loss_stats
    if st and st.get("total_loss", 0) > 0:
        found.append(f"Losses are concentrated ({worst}): the 10% of accounts that lost most carry "
                     f"{st['top10_share']:.0%} of all losses and the top 1% carry {st['top1_share']:.0%}; "
                     f"{st['losers']:,} accounts lost money, {short_money(st['total_loss'], unit)} in all, the "
                     f"largest single loss {short_money(st['max_loss'], unit)}.")

    # bad debt
    debt = [n for n in names if float(summary.loc[n, "bad_debt"]) > 0]
    for n in debt:
        r = summary.loc[n]
        found.append(f"Bad debt in {n}: {float(r['bad_debt']):,.2f} {unit} (insurance fund paid "
                     f"{float(r['insurance_paid']):,.2f}, auto-deleveraging recovered {float(r['adl_recovered']):,.2f}, "
                     f"socialised {float(r['socialised_loss']):,.2f}).")

    # why: results that follow from modelling choices
    any_liq = any(liq(n) for n in names)
    if not debt and any_liq and not any(runs[n].params.get("market_impact") for n in names):
        slips = sorted({float(runs[n].params.get("liquidation_slippage", 0.0)) for n in names})
        rates = [m for n in names for b in (runs[n].profile.get("brackets") or {}).values() for m in b["mmr"][:1]]
        fees = sorted({float(runs[n].params.get("liquidation_fee_rate", 0.0)) for n in names})
        slip = " or ".join(f"{100 * s:.3g}%" for s in slips)
        mm = f" (at least {100 * min(rates):.3g}% of notional with these brackets)" if rates else ""
        why.append(f"No variant has bad debt, and this follows from the model: a liquidation fills at its trigger "
                   f"price (the liquidation price, or the bar's open after a gap) moved by the liquidation slippage "
                   f"of {slip}, and liquidations do not move the price. At its liquidation price a position still "
                   f"holds its maintenance margin{mm}, more than the slippage costs, so a deficit needs a bar that "
                   f"opens beyond the bankruptcy price, which one-minute bars rarely do. The insurance fund only "
                   f"collects the liquidation fee ({' or '.join(f'{100 * f:.3g}%' for f in fees)} of the notional, "
                   f"capped at the margin left). On a real exchange liquidation orders hit a thin order book and "
                   f"push the price further: read the bad debt here as a lower bound, or give the contracts a "
                   f"market-impact model (docs/cascades.md) to see a cascade.")
    for na, nb in identical_pairs:
        pair = {styles[na].group, styles[nb].group}
        if pair == {"cross", "isolated + auto-add"}:
            one = all(runs[n].profile.get("max_positions_per_account", 2) <= 1 for n in (na, nb))
            if one:
                why.append("Cross and isolated + auto-add are identical because every account holds one position: "
                           "auto-add-margin tops the isolated wallet up from the free balance each time the price "
                           "reaches the liquidation price, until the free balance is spent, so the position is "
                           "liquidated when the account's whole equity is down to its maintenance margin, which is "
                           "the cross liquidation condition. With several positions per account the two differ.")
            else:
                why.append("Cross and isolated + auto-add gave identical results although some accounts hold "
                           "several positions.")
            break
    for rest, groups in by_rest.items():
        if "cross" in groups and "isolated" in groups and liq(groups["isolated"]) > liq(groups["cross"]):
            why.append("Isolated margin liquidates more accounts than cross because an isolated position can only "
                       "lose the margin put into it: the rest of the account's money stays in the cross wallet and "
                       "cannot save it, while under cross margin the whole wallet backs the position. The same "
                       "wall is why an isolated liquidation rarely wipes an account out: it takes the position's "
                       "margin and leaves the rest.")
            break
    if multi and any("mmr_factor" in key for key in styles[names[0]].rest_keys):
        rests = list(by_rest)
        base_group = next(iter(by_rest[rests[0]].values()))
        steady = all(abs(liq(o) - liq(b)) <= max(1, 0.05 * liq(b))
                     for g in _by_group(styles).values()
                     for b in [n for n in g if styles[n].rest == rests[0]][:1]
                     for o in [n for n in g if styles[n].rest != rests[0]])
        rates = {styles[n].short: min((br["mmr"][0] for br in (runs[n].profile.get("brackets") or {}).values()),
                                      default=math.nan)
                 for n in names if styles[n].group == styles[base_group].group}
        if steady and len(rates) > 1:
            shown = " and ".join(f"{100 * r:.3g}% with {k}" for k, r in rates.items())
            why.append(f"Higher maintenance rates barely change who is liquidated (tier 1: {shown}): a position's "
                       f"liquidation price moves by about the difference in rate, a fraction of a percent of the "
                       f"price, while the crash moved the price much further. They do change the insurance fund: "
                       f"a position liquidated at a higher maintenance rate still holds more margin, and the "
                       f"liquidation fee, capped at the margin left, takes more of it.")
    return found, why


# ---------------------------------------------------------------------------- HTML
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def format_value(column: str, value) -> str:
    """How the report writes a summary value: counts as integers, the liquidation rate as
    a percentage with two decimals, money with two decimals (thousands separated by ",")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if column in _COUNT_COLUMNS:
        return f"{int(value):,}"
    if column == "liquidation_rate":
        return f"{100.0 * float(value):.2f}%"
    return f"{float(value):,.2f}"


def _units(unit: str) -> dict:
    return {"accounts": "accounts", "positions": "positions", "accounts_liquidated": "accounts",
            "liquidation_rate": "% of accounts", "liquidations": "positions", "liquidated_notional": unit,
            "bad_debt": unit, "insurance_paid": unit, "adl_recovered": unit, "socialised_loss": unit,
            "adl_events": "positions", "topups": "top-ups", "topup_amount": unit, "mean_loss_per_account": unit,
            "insurance_fund_start": unit, "final_insurance_fund": unit, "accounts_saved_by_auto_add": "accounts"}


def _variant_th(name: str, styles: Mapping[str, _Style], colspan: int = 1, extra: str = "") -> str:
    s = styles.get(name)
    color = s.color if s else "#cccccc"
    span = f' colspan="{colspan}"' if colspan > 1 else ""
    return (f'<th scope="col"{span} class="variant" style="border-top: 5px solid {color}">{_esc(name)}'
            f'{extra}</th>')


def _group_row(order: list, styles: Mapping[str, _Style], lead: int, tail: int = 0, per: int = 1) -> str:
    cells = [f'<th colspan="{lead}"></th>'] if lead else []
    for group, members in _by_group(styles).items():
        members = [m for m in members if m in order]
        if members:
            color = styles[members[0]].color
            cells.append(f'<th colspan="{len(members) * per}" class="group" '
                         f'style="background: {color}33">{_esc(group)}</th>')
    if tail:
        cells.append(f'<th colspan="{tail}"></th>')
    return f'<tr class="groups">{"".join(cells)}</tr>'


def _metric_table(table_id: str, order: list, styles: Mapping[str, _Style], rows: list) -> str:
    """A table of metrics by variant (a column per variant, under its margin mode): ``rows``
    of ``(metric, unit, {variant: text}, meaning)``."""
    head = "".join(_variant_th(n, styles) for n in order)
    body = "".join(f'<tr><th scope="row">{_esc(name)}</th><td class="unit">{_esc(unit)}</td>'
                   + "".join(f'<td class="num">{_esc(cells[n])}</td>' for n in order)
                   + f'<td class="meaning">{_esc(meaning)}</td></tr>' for name, unit, cells, meaning in rows)
    return (f'<table id="{table_id}"><thead>{_group_row(order, styles, 2, 1)}'
            f'<tr><th>metric</th><th>unit</th>{head}<th>meaning</th></tr></thead>'
            f'<tbody>{body}</tbody></table>')


def _summary_html(summary: pd.DataFrame, order: list, styles: Mapping[str, _Style], unit: str) -> str:
    units = _units(unit)
    return _metric_table("summary", order, styles, [
        (col, units[col], {n: format_value(col, summary.loc[n, col]) for n in order}, meaning)
        for col, meaning in SUMMARY_COLUMNS.items()])


#: The Cascades section (only on a page where some variant ran with market impact): its id and title.
CASCADE_SECTION = ("cascades", "Cascades: market impact and feedback")

#: Rows of the cascade table: column -> (unit key, meaning).
CASCADE_COLUMNS = {
    "impact": ("", "market impact of this variant's liquidations: off, on fills only, or on fills with feedback "
                   "on the mark (docs/cascades.md)"),
    "liquidated_notional": ("money", "notional closed by liquidations, at the fill prices"),
    "amplification": ("x", "liquidated notional against the baseline (the first variant without impact)"),
    "bad_debt": ("money", "deficits left by liquidations"),
    "bad_debt_vs_baseline": ("money", "bad debt minus the baseline's"),
    "insurance_paid": ("money", "bad debt the insurance fund paid"),
    "adl_recovered": ("money", "bad debt recovered by auto-deleveraging"),
    "socialised_loss": ("money", "bad debt neither could cover"),
    "adl_events": ("positions", "counterparty positions closed by ADL"),
    "round_liquidations": ("positions", "liquidations in a cascade round (after a point's first look, at a mark "
                                        "moved by the liquidations before them)"),
    "round_notional": ("money", "their notional"),
    "max_round": ("rounds", "the deepest cascade round reached at any point"),
    "mark_shift": ("%", "the mark at the last close against the path's close (the permanent shift and what is "
                        "left of the transient one), for the contract shifted most"),
}


def _impact_text(params: Mapping) -> str:
    specs = params.get("market_impact") or {}
    if not specs:
        return "off"
    return "fills + feedback" if any(v.get("feedback") for v in specs.values()) else "fills only"


def cascade_table(summary: pd.DataFrame, runs: Mapping[str, VariantDigest], frames: Mapping) -> pd.DataFrame:
    """One row per variant (index: the variant) of :data:`CASCADE_COLUMNS`; the baseline
    is the first variant without impact (no amplification without one)."""
    baseline = next((n for n, d in runs.items() if not d.params.get("market_impact")), None)
    rows = []
    for n, d in runs.items():
        r = summary.loc[n]
        shifts = [d.cascade["marks"][sym] / float(f["close"].iloc[-1]) - 1.0 for sym, f in frames.items()
                  if sym in d.cascade.get("marks", {})]
        row = {"impact": _impact_text(d.params), "liquidated_notional": float(r["liquidated_notional"]),
               "amplification": math.nan, "bad_debt": float(r["bad_debt"]), "bad_debt_vs_baseline": math.nan,
               **{k: float(r[k]) for k in ("insurance_paid", "adl_recovered", "socialised_loss")},
               "adl_events": int(r["adl_events"]), "round_liquidations": int(d.cascade.get("round_liquidations", 0)),
               "round_notional": float(d.cascade.get("round_notional", 0.0)),
               "max_round": int(d.cascade.get("max_round", 0)),
               "mark_shift": max(shifts, key=abs) if shifts else 0.0}
        if baseline is not None:
            base = summary.loc[baseline]
            b = float(base["liquidated_notional"])
            row["amplification"] = row["liquidated_notional"] / b if b > 0 else math.nan
            row["bad_debt_vs_baseline"] = row["bad_debt"] - float(base["bad_debt"])
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(list(runs), name="variant"), columns=list(CASCADE_COLUMNS))


def _cascade_cell(col: str, value) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if col == "amplification":
        return f"{value:.2f}x"
    if col == "mark_shift":
        return f"{100 * value:+.2f}%"
    if col in ("adl_events", "round_liquidations", "max_round"):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _cascade_html(table: pd.DataFrame, order: list, styles: Mapping[str, _Style], unit: str) -> str:
    return _metric_table("cascade", order, styles, [
        (col, unit if kind == "money" else kind, {n: _cascade_cell(col, table.loc[n, col]) for n in order}, meaning)
        for col, (kind, meaning) in CASCADE_COLUMNS.items()])


def _cascade_findings(table: pd.DataFrame, unit: str) -> list[str]:
    """A sentence per variant with impact against the baseline."""
    base = table.index[table["impact"] == "off"]
    if not len(base):
        return []
    out = []
    for n, r in table.iterrows():
        if r["impact"] == "off" or math.isnan(r["amplification"]):
            continue
        out.append(f"Cascade: {n} ({r['impact']}) liquidated {r['amplification']:.2f}x the notional of {base[0]} "
                   f"({short_money(r['liquidated_notional'], unit)} against "
                   f"{short_money(float(table.loc[base[0], 'liquidated_notional']), unit)}), with "
                   f"{short_money(r['bad_debt'], unit)} of bad debt ({short_money(r['adl_recovered'], unit)} "
                   f"recovered by ADL, {short_money(r['socialised_loss'], unit)} socialised)"
                   + (f"; {r['round_liquidations']:,} liquidations came in cascade rounds, up to round "
                      f"{r['max_round']}" if r["round_liquidations"] else "") + ".")
    return out


#: The Auto-deleveraging section (only on a page where some variant deleveraged): its id and title.
ADL_SECTION = ("adl", "Auto-deleveraging: who paid for the shortfall")

#: Rows of the ADL table: column -> (unit key, meaning); from riskcore.studies.adl_outcomes.
ADL_COLUMNS = {
    "adl_policy": ("", "who is deleveraged first (docs/simulation.md, ADL policies)"),
    "shortfall": ("money", "bad debt the insurance fund did not pay"),
    "recovered": ("money", "what ADL recovered: the profit counterparties gave up at the bankruptcy prices"),
    "haircut_share": ("%", "recovered / shortfall"),
    "socialised": ("money", "what neither the fund nor ADL covered"),
    "positions_hit": ("positions", "counterparty positions closed, wholly or partly"),
    "accounts_hit": ("accounts", "accounts they belong to"),
    "adl_notional": ("money", "notional closed by ADL, at the ADL prices"),
    "counterparty_pnl": ("money", "profit the counterparties still realised on those closes"),
    "overshoot_notional": ("money", "notional closed beyond what the money recovered needed"),
    "top1_share": ("%", "share of the ADL'd notional borne by the top 1% of the accounts hit"),
    "top10_share": ("%", "... by the top 10%"),
    "herfindahl": ("", "sum of the squared shares of the accounts hit (1: one account bore all)"),
}


def _adl_cell(col: str, value) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if col in ("haircut_share", "top1_share", "top10_share"):
        return f"{100 * value:.1f}%"
    if col in ("positions_hit", "accounts_hit"):
        return f"{int(value):,}"
    if col == "herfindahl":
        return f"{value:.4f}"
    return f"{value:,.2f}"


def _adl_html(runs: Mapping[str, VariantDigest], order: list, styles: Mapping[str, _Style], unit: str) -> str:
    def value(n, col):
        return runs[n].params.get("adl_policy", "binance") if col == "adl_policy" else runs[n].adl.get(col, math.nan)

    return _metric_table("adl-table", order, styles, [
        (col, unit if kind == "money" else kind, {n: _adl_cell(col, value(n, col)) for n in order}, meaning)
        for col, (kind, meaning) in ADL_COLUMNS.items()])


#: The Venues section (only when the variants' venue profiles differ): its id and title.
VENUE_SECTION = ("venues", "Venues: where the liquidation procedures differ")

#: Rows of the Venues table: column -> (unit key, meaning); from riskcore.venues.study.venue_outcomes.
VENUE_ROWS = {
    "venues": ("", "the venue profile(s) of the variant's contracts (docs/venues.md)"),
    "liquidations": ("closes", "liquidation closes (a partial liquidation is one close)"),
    "positions_closed_out": ("positions", "positions liquidated and gone at the end"),
    "positions_reduced": ("positions", "positions partly liquidated and still open at the end"),
    "accounts_liquidated": ("accounts", "accounts with a liquidation"),
    "liquidated_notional": ("money", "notional liquidated, at the execution prices"),
    "liquidation_fees": ("money", "what the liquidations paid the fund (fees, penalties, takeovers, backstops)"),
    "bad_debt": ("money", "deficits of bankrupt positions"),
    "insurance_paid": ("money", "of which the fund paid"),
    "adl_recovered": ("money", "of which ADL recovered from counterparties"),
    "socialised": ("money", "of which nobody paid"),
    "adl_positions_hit": ("positions", "counterparty positions closed by ADL"),
    "fund_end": ("money", "the insurance fund after the last bar"),
}


def _venue_cell(col: str, value, base) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    money = VENUE_ROWS[col][0] == "money"
    text = f"{value:,.2f}" if money else f"{int(value):,}"
    if base is not None and not isinstance(base, str) and value != base:
        diff = value - base
        text += f" ({diff:+,.2f})" if money else f" ({int(diff):+,})"
    return text


def _venue_html(runs: Mapping[str, VariantDigest], order: list, styles: Mapping[str, _Style], unit: str) -> str:
    base = next((n for n in order if runs[n].venue.get("venues") == "binance"), order[0])
    return _metric_table("venue-table", order, styles, [
        (col, unit if kind == "money" else kind,
         {n: _venue_cell(col, runs[n].venue.get(col, math.nan), None if n == base else runs[base].venue.get(col))
          for n in order}, meaning)
        for col, (kind, meaning) in VENUE_ROWS.items()]), base


#: Charts written only with the section they illustrate (Cascades, Auto-deleveraging, Insurance-fund sizing).
SECTION_CHARTS = {
    "cascades.png": "liquidated notional and bad debt per variant, with and without market impact",
    "adl.png": "what ADL recovered and what was socialised, and how concentrated it was, per variant",
    "fund_sizing.png": "probability of ADL and socialised loss against the insurance fund",
}


def _hbar_panel(ax, order: list, colors: list, stacks: list, title: str, unit: str) -> None:
    """Horizontal bars, one per variant (first at the top): ``stacks`` of (label, values,
    hatch) drawn end to end, the total written at the end of each bar."""
    y = np.arange(len(order))[::-1]
    left = np.zeros(len(order))
    for label, values, hatch in stacks:
        values = np.nan_to_num(np.asarray(values, dtype=np.float64))
        ax.barh(y, values, left=left, color=colors, edgecolor="black", linewidth=0.4, hatch=hatch, label=label,
                alpha=1.0 if not hatch else 0.55)
        left = left + values
    for yi, total in zip(y, left):
        ax.text(total, yi, f" {short_money(total, unit)}", va="center", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    top = float(left.max()) if left.size else 0.0
    ax.set_xlim(0.0, 1.3 * top if top > 0 else 1.0)
    ax.axvline(0.0, color="black", linewidth=0.6)
    _money_axis(ax, "", axis="x")


def _chart_cascades(path: Path, table: pd.DataFrame, order: list, colors: Mapping[str, str], unit: str) -> None:
    """The Cascades section's chart: per variant, the liquidated notional, and the bad debt
    split into what the fund paid, what ADL recovered and what was socialised."""
    fig, axes = _figure(1, 2, width=12.0, row_height=1.2 + 0.45 * len(order), sharey=True)
    cols = [colors[n] for n in order]
    t = table.loc[order]
    _hbar_panel(axes[0, 0], order, cols, [("liquidated notional", t["liquidated_notional"], None)],
                f"liquidated notional ({unit})", unit)
    _hbar_panel(axes[0, 1], order, cols, [("paid by the insurance fund", t["insurance_paid"], None),
                                          ("recovered by ADL", t["adl_recovered"], "//"),
                                          ("socialised", t["socialised_loss"], "xx")],
                f"bad debt ({unit}): paid by the fund, recovered by ADL (//), socialised (xx)", unit)
    labels = [f"{n}\n({t.loc[n, 'impact']})" for n in order]
    axes[0, 0].set_yticks(np.arange(len(order))[::-1], labels, fontsize=8)
    _save(fig, path)


def _chart_adl(path: Path, runs: Mapping[str, VariantDigest], order: list, colors: Mapping[str, str],
               unit: str) -> None:
    """The Auto-deleveraging section's chart: per variant, the shortfall split into what ADL
    recovered and what was socialised, and the share of the ADL'd notional the top 1% and
    top 10% of the accounts hit bore."""
    from matplotlib.ticker import PercentFormatter

    fig, axes = _figure(1, 2, width=12.0, row_height=1.2 + 0.45 * len(order), sharey=True)
    cols = [colors[n] for n in order]

    def col(key):
        return [runs[n].adl.get(key, math.nan) for n in order]

    _hbar_panel(axes[0, 0], order, cols, [("recovered by ADL", col("recovered"), None),
                                          ("socialised", col("socialised"), "xx")],
                f"shortfall ({unit}): recovered by ADL, socialised (xx)", unit)
    y = np.arange(len(order))[::-1]
    top1, top10 = np.nan_to_num(np.array(col("top1_share"), float)), np.nan_to_num(np.array(col("top10_share"), float))
    ax = axes[0, 1]
    ax.barh(y + 0.2, top10, height=0.4, color=cols, edgecolor="black", linewidth=0.4, alpha=0.55, hatch="//")
    ax.barh(y - 0.2, top1, height=0.4, color=cols, edgecolor="black", linewidth=0.4)
    for yi, a, b, n in zip(y, top1, top10, order):
        hits = runs[n].adl.get("accounts_hit", 0)
        ax.text(b, yi + 0.2, f" top 10%: {100 * b:.0f}%", va="center", fontsize=7)
        ax.text(a, yi - 0.2, f" top 1%: {100 * a:.0f}% (of {int(hits or 0):,} accounts hit)", va="center",
                fontsize=7)
    ax.set_xlim(0, 1.45)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("share of the ADL'd notional on the top 1% (solid) and 10% (//) of accounts hit", fontsize=10)
    policies = [str(runs[n].params.get("adl_policy", "binance")) for n in order]
    axes[0, 0].set_yticks(y, [f"{n}\n(policy: {p})" for n, p in zip(order, policies)], fontsize=8)
    _save(fig, path)


# ----------------------------------------------------------------- insurance-fund sizing
#: The Insurance-fund sizing section (a fund-sizing study only, docs/studies.md): its id and title.
FUND_SECTION = ("fund-sizing", "Insurance-fund sizing")


@dataclass
class FundSizingReport:
    """What the report's Insurance-fund sizing section shows: the curve
    (:func:`riskcore.studies.fund_sizing` with a ``variant`` column, a row per variant and
    fund size), the paths (``variant``, ``seed``, ``fund_needed``, ...), the tail level and
    the target probability of ADL the findings use."""
    curve: pd.DataFrame
    paths: pd.DataFrame
    tail: float = 0.95
    adl_target: float = 0.05
    description: str = ""  # where the paths come from


def _fund_axis(ax, sizes: np.ndarray, unit: str) -> None:
    positive = sizes[sizes > 0]
    if positive.size and positive.max() / positive.min() >= 100:
        if (sizes <= 0).any():
            ax.set_xscale("symlog", linthresh=float(positive.min()))
        else:
            ax.set_xscale("log")
    _money_axis(ax, "", axis="x")
    ax.set_xlabel(f"insurance fund at the start ({unit})", fontsize=9)


def _chart_fund_sizing(path: Path, study: FundSizingReport, colors: Mapping[str, str], unit: str) -> None:
    """Left: P(ADL) against the fund, a line per variant, the target as a grey line.  Right:
    the expected (solid) and tail (dashed) socialised loss against the fund, and the exact
    shortfall at the first point (dotted, a lower bound of the expected)."""
    from matplotlib.ticker import PercentFormatter

    fig, axes = _figure(1, 2, width=12.0, row_height=4.0)
    curve = study.curve
    left, right = axes[0, 0], axes[0, 1]
    for name, c in curve.groupby("variant", sort=False):
        color = colors.get(name, "#333333")
        x = c["insurance_fund"].to_numpy(np.float64)
        left.plot(x, c["p_adl"], marker="o", markersize=4, color=color, label=name)
        right.plot(x, c["socialised_mean"], marker="o", markersize=4, color=color, label=f"{name}: expected")
        right.plot(x, c["socialised_tail"], linestyle="--", color=color,
                   label=f"{name}: tail (mean of the worst {1 - study.tail:.0%} of paths)")
        right.plot(x, c["first_point_mean"], linestyle=":", color=color,
                   label=f"{name}: expected, exact part (first point of ADL)")
    left.axhline(study.adl_target, color="grey", linewidth=0.8, linestyle="--")
    left.text(0.99, study.adl_target, f"target {study.adl_target:.0%} ", transform=left.get_yaxis_transform(),
              ha="right", va="bottom", fontsize=8, color="grey")
    left.set_ylim(-0.03, 1.03)
    left.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    n_paths = int(curve["paths"].iloc[0])
    left.set_title(f"probability of ADL over {n_paths:,} paths (exact)", fontsize=10)
    right.set_title(f"socialised loss per path ({unit}; approximate after the first point of ADL)", fontsize=10)
    sizes = curve["insurance_fund"].to_numpy(np.float64)
    for ax in (left, right):
        _fund_axis(ax, sizes, unit)
        ax.grid(alpha=0.3)
    _money_axis(right, "")
    if curve["variant"].nunique() > 1:
        left.legend(fontsize=8, frameon=False)
    right.legend(fontsize=7, frameon=False)
    _save(fig, path)


def _fund_cell(col: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if col == "p_adl":
        return f"{100 * value:.1f}%"
    if col in ("paths", "paths_with_adl"):
        return f"{int(value):,}"
    return f"{value:,.2f}"


#: The columns of the section's table: column -> header.
FUND_TABLE = {"insurance_fund": "insurance fund", "paths_with_adl": "paths with ADL", "p_adl": "P(ADL)",
              "socialised_mean": "socialised loss: expected", "socialised_tail": "tail",
              "socialised_max": "worst path", "first_point_mean": "at the first point of ADL: expected",
              "first_point_tail": "tail"}


def _fund_sizing_html(study: FundSizingReport, colors: Mapping[str, str], unit: str) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in FUND_TABLE.values())
    rows = []
    for name, c in study.curve.groupby("variant", sort=False):
        color = colors.get(name, "#cccccc")
        for i, (_, r) in enumerate(c.iterrows()):
            lead = (f'<th scope="rowgroup" rowspan="{len(c)}" class="variant" style="border-left: 5px solid '
                    f'{color}">{_esc(name)}</th>') if i == 0 else ""
            rows.append("<tr>" + lead + "".join(f'<td class="num">{_fund_cell(k, r[k])}</td>' for k in FUND_TABLE)
                        + "</tr>")
    return (f'<table id="fund-sizing-table"><thead><tr><th>variant</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def fund_sizing_findings(study: FundSizingReport, unit: str) -> list[str]:
    """One sentence per variant: the smallest fund tested that keeps P(ADL) at or below the
    target (or that none does), and the spread of the fund the paths need."""
    out = []
    for name, c in study.curve.groupby("variant", sort=False):
        n = int(c["paths"].iloc[0])
        c = c.reset_index(drop=True)
        ok = c.index[c["p_adl"] <= study.adl_target + 1e-12]
        if len(ok):
            r = c.loc[ok[0]]
            text = (f"Insurance fund ({name}, {n:,} paths): the smallest fund tested that keeps P(ADL) at or below "
                    f"{study.adl_target:.0%} is {short_money(r['insurance_fund'], unit)} (P(ADL) "
                    f"{r['p_adl']:.1%}; expected socialised loss {short_money(r['socialised_mean'], unit)}, tail "
                    f"{short_money(r['socialised_tail'], unit)})")
            if ok[0] > 0:
                below = c.loc[ok[0] - 1]
                text += (f"; the next size down, {short_money(below['insurance_fund'], unit)}, gives "
                         f"{below['p_adl']:.1%}")
        else:
            r = c.iloc[-1]
            text = (f"Insurance fund ({name}, {n:,} paths): no fund tested keeps P(ADL) at or below "
                    f"{study.adl_target:.0%}: with the largest, {short_money(r['insurance_fund'], unit)}, P(ADL) is "
                    f"{r['p_adl']:.1%} (expected socialised loss {short_money(r['socialised_mean'], unit)})")
        p = study.paths[study.paths["variant"] == name]
        need = p["fund_needed"].to_numpy(np.float64)
        if need.size:
            worst = p.iloc[int(np.argmax(need))]
            none = int((need <= 0).sum())
            text += (f"; the fund a path needs to avoid ADL: median {short_money(float(np.median(need)), unit)}, "
                     f"largest {short_money(float(need.max()), unit)} (path.seed {worst['seed']})"
                     + (f"; {none:,} of {need.size:,} paths need none" if none else ""))
        text += "."
        out.append(text)
    return out


def _leverage_html(lev: pd.DataFrame, order: list, styles: Mapping[str, _Style], unit: str) -> str:
    if not len(lev):
        return "<p>No account held a position at the start.</p>"
    cols = []
    for n in order:
        modes = [m for m in MODES if ((lev["variant"] == n) & (lev["mode"] == m)).any()]
        cols += [(n, m, len(modes) > 1) for m in modes]
    keys = lev.drop_duplicates("leverage").sort_values("leverage")[["leverage", "label"]]
    cell = {(r.variant, r.mode, r.leverage): r for r in lev.itertuples()}
    counts = {k: {cell[(n, m, k)].accounts if (n, m, k) in cell else 0 for n, m, _ in cols}
              for k in keys["leverage"]}
    shared = all(len(v) == 1 for v in counts.values())
    per = 2 if shared else 3
    head1 = "".join(_variant_th(n, styles, per, f"<br><small>{_esc(m)} accounts</small>" if split else "")
                    for n, m, split in cols)
    sub = (("" if shared else "<th>accounts</th>") + "<th>liquidated</th>" + f"<th>mean loss ({_esc(unit)})</th>")
    head2 = sub * len(cols)
    rows = []
    for k, label in zip(keys["leverage"], keys["label"]):
        cells = [f'<th scope="row">{_esc(label)}</th>']
        if shared:
            cells.append(f'<td class="num">{next(iter(counts[k])):,}</td>')
        for n, m, _ in cols:
            r = cell.get((n, m, k))
            if r is None:
                cells.append("<td></td>" * per)
                continue
            if not shared:
                cells.append(f'<td class="num">{r.accounts:,}</td>')
            cells.append(f'<td class="num" title="{r.liquidated:,} of {r.accounts:,}">{r.liquidation_rate:.1%}</td>'
                         f'<td class="num">{r.mean_loss:,.2f}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    accounts_head = "<th rowspan=\"2\">accounts</th>" if shared else ""
    return (f'<table id="by-leverage"><thead>'
            f'<tr><th rowspan="2">leverage</th>{accounts_head}{head1}</tr><tr>{head2}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _distance_html(dist: pd.DataFrame, order: list, styles: Mapping[str, _Style]) -> str:
    if not len(dist) or dist["accounts"].sum() == 0:
        return "<p>No distance to liquidation is known (no positions, or no mark price at the start).</p>"
    order = [n for n in order if (dist["variant"] == n).any()]
    head1 = "".join(_variant_th(n, styles, 2) for n in order)
    head2 = "<th>accounts</th><th>liquidated</th>" * len(order)
    rows = []
    for bucket in dist["distance"].drop_duplicates():
        cells = [f'<th scope="row">{_esc(bucket)}</th>']
        for n in order:
            r = dist[(dist["variant"] == n) & (dist["distance"] == bucket)].iloc[0]
            rate = "" if r["accounts"] == 0 else f"{r['liquidation_rate']:.1%}"
            cells.append(f'<td class="num">{int(r["accounts"]):,} ({r["share"]:.1%})</td><td class="num">{rate}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table id="by-distance"><thead><tr><th rowspan="2">distance at the start</th>{head1}</tr>'
            f'<tr>{head2}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _spread_cell(col: str, value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100.0 * value:.2f}%" if col == "liquidation_rate" else f"{value:,.2f}"


def _spread_html(spread: pd.DataFrame, colors: Mapping[str, str], unit: str) -> str:
    """The table of :func:`spread_table`: a row per margin variant, per metric its mean,
    median and worst over the paths (the worst path under it)."""
    head1 = "".join(f'<th colspan="3" class="group">{_esc(title)} '
                    f'({"% of accounts" if col == "liquidation_rate" else _esc(unit)})</th>'
                    for col, title in SPREAD_METRICS.items())
    head2 = "<th>mean</th><th>median</th><th>worst</th>" * len(SPREAD_METRICS)
    rows = []
    for r in spread.itertuples(index=False):
        r = r._asdict()
        color = colors.get(r["variant"], "#cccccc")
        cells = [f'<th scope="row" style="border-left: 5px solid {color}">{_esc(r["variant"])}</th>',
                 f'<td class="num">{int(r["paths"]):,}</td>']
        for col in SPREAD_METRICS:
            cells.append(f'<td class="num">{_esc(_spread_cell(col, r[f"{col}_mean"], unit))}</td>'
                         f'<td class="num">{_esc(_spread_cell(col, r[f"{col}_median"], unit))}</td>'
                         f'<td class="num">{_esc(_spread_cell(col, r[f"{col}_worst"], unit))}'
                         f'<br><small>{_esc(r[f"{col}_worst_path"])}</small></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table id="spread-table"><thead><tr><th rowspan="2">variant</th><th rowspan="2">paths</th>{head1}</tr>'
            f'<tr>{head2}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _spread_findings(spread: pd.DataFrame, unit: str) -> list[str]:
    """A sentence per margin variant: its liquidation rate and loss over the paths."""
    out = []
    for r in spread.itertuples(index=False):
        r = r._asdict()
        rate = "liquidation_rate"
        if r[f"{rate}_best"] == r[f"{rate}_worst"]:
            spread = f"{_spread_cell(rate, r[f'{rate}_mean'], unit)} of the accounts liquidated on each of " \
                     f"{int(r['paths']):,} paths"
        else:
            spread = (f"{_spread_cell(rate, r[f'{rate}_mean'], unit)} of the accounts liquidated on average over "
                      f"{int(r['paths']):,} paths (median {_spread_cell(rate, r[f'{rate}_median'], unit)}, best "
                      f"{_spread_cell(rate, r[f'{rate}_best'], unit)}, worst {_spread_cell(rate, r[f'{rate}_worst'], unit)}"
                      f" on {r[f'{rate}_worst_path']})")
        text = (f"{r['variant']}: {spread}; a mean loss per account of "
                f"{_spread_cell('mean_loss_per_account', r['mean_loss_per_account_mean'], unit)} {unit} (worst "
                f"{_spread_cell('mean_loss_per_account', r['mean_loss_per_account_worst'], unit)} {unit})")
        if r["bad_debt_worst"] > 0:
            text += (f"; bad debt {_spread_cell('bad_debt', r['bad_debt_mean'], unit)} {unit} on average, "
                     f"{_spread_cell('bad_debt', r['bad_debt_worst'], unit)} {unit} at worst "
                     f"({r['bad_debt_worst_path']})")
        else:
            text += "; no bad debt on any path"
        out.append(text + ".")
    return out


def _quote_currency(symbols) -> str:
    """The quote currency shared by the contracts (``USDT`` for BTCUSDT), else "quote"."""
    found = set()
    for s in symbols:
        for q in ("FDUSD", "USDT", "USDC", "BUSD", "USD"):
            if str(s).upper().endswith(q):
                found.add(q)
                break
        else:
            found.add("quote")
    return found.pop() if len(found) == 1 else "quote"


def _duration_text(delta: pd.Timedelta) -> str:
    minutes = int(round(delta.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else []) + ([f"{mins} min"] if mins else [])
    return " ".join(parts) or "0 min"


def _range_text(frames: dict) -> tuple[str, pd.Timestamp | None, str]:
    firsts = [pd.Timestamp(f["timestamp"].iloc[0]) for f in frames.values() if len(f)]
    if not firsts:
        return "no bars", None, ""
    first = min(firsts)
    frame = max(frames.values(), key=len)
    t = pd.to_datetime(frame["timestamp"]).to_numpy().astype("datetime64[ns]")
    bar = _bar_length(t)
    end = max(pd.Timestamp(f["timestamp"].iloc[-1]) for f in frames.values() if len(f)) + pd.Timedelta(bar)
    span = (f"{first:%Y-%m-%d %H:%M} to {end:%H:%M} UTC" if first.date() == end.date()
            else f"{first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    minutes = float(bar.astype("timedelta64[s]").astype(np.int64)) / 60.0
    size = f"{minutes:g} min" if minutes < 60 else f"{minutes / 60:g} h"
    return span, first, f"{_duration_text(end - first)}, {len(t):,} bars of {size}"


def _bracket_notes(runs: Mapping[str, VariantDigest], first: pd.Timestamp | None,
                   dated: bool = True) -> tuple[list[str], list[str]]:
    """(facts, warnings) about the bracket tables: which one each contract used, and a
    warning where a table was observed after the first bar (a stand-in: the table in
    force then is not shipped).  ``dated=False`` (synthetic prices, whose dates mean
    nothing) gives no warning."""
    seen: dict = {}
    for d in runs.values():
        for symbol, b in (d.profile.get("brackets") or {}).items():
            seen.setdefault(symbol, b.get("effective_date"))
    facts, later = [], {}
    for symbol, date in seen.items():
        if not date:
            facts.append(f"{symbol}: tiers given in the scenario")
            continue
        when = pd.Timestamp(date).normalize()
        if first is None or not dated:
            facts.append(f"{symbol}: table observed {date}")
        elif when > first.normalize():
            later.setdefault(date, []).append(symbol)
            facts.append(f"{symbol}: table observed {date} (a stand-in, see below)")
        else:
            days = (first.normalize() - when).days
            facts.append(f"{symbol}: table observed {date}" + (f", {days:,} days before the first bar" if days else
                                                                ", the day of the first bar"))
    warnings = []
    for date, symbols in later.items():
        days = (pd.Timestamp(date).normalize() - first.normalize()).days
        which = " and ".join(symbols)
        warnings.append(f"Stand-in brackets: {which} {'uses' if len(symbols) == 1 else 'use'} the bracket "
                        f"table{'s' if len(symbols) > 1 else ''} observed on {date}, {days:,} days after this "
                        f"scenario's first bar ({first:%Y-%m-%d}). No older table ships, so the maintenance rates "
                        f"and leverage caps in force then may have been different.")
    return facts, warnings


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto; max-width: 1250px;
       padding: 0 1em; color: #222; line-height: 1.4; }
header.title { border-bottom: 2px solid #333; padding-bottom: 0.6em; }
h1 { font-size: 1.5em; margin: 0 0 0.3em 0; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.0em; margin: 1.2em 0 0.3em 0; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.4em 0; font-size: 0.92em; }
dl.meta dt { color: #555; }
dl.meta dd { margin: 0; }
p.warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.4em 0.7em; margin: 0.5em 0; }
nav.toc { font-size: 0.9em; margin: 0.6em 0; }
nav.toc a { margin-right: 1em; }
section#findings ul { margin: 0.3em 0; padding-left: 1.3em; }
section#findings li { margin: 0.25em 0; }
ul.why li { color: #333; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
th.variant { font-weight: 600; }
th.group { text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.unit, td.meaning { color: #666; font-size: 0.9em; }
figure { margin: 1em 0 1.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.source { color: #555; }
ul.notes li { margin: 0.2em 0; }
"""

#: The sections of ``report.html``, by element id, in order, with their headings.
SECTIONS = {
    "title": "title block: description, dates, version, seed, engine, brackets",
    "findings": "Key findings",
    "headline": "Summary",
    "comparison-section": "Variants side by side",
    "timeline": "Prices and liquidations over time",
    "leverage": "Outcomes by leverage and margin mode",
    "losses": "Distribution of losses across accounts",
    "distance": "Distance to liquidation at the start",
    "parameters": "Parameters",
}


def _draw_chart(name: str, args: tuple) -> None:
    globals()[name](*args)


def _draw_charts(theirs: list, ours: list, helper: "ChartHelper | None") -> None:
    """Draw the charts: ``theirs`` on the helper process when there is one, ``ours`` here."""
    if helper is None:
        for name, args in theirs + ours:
            _draw_chart(name, args)
        return
    from concurrent.futures.process import BrokenProcessPool

    try:
        futures = [helper.submit(name, args) for name, args in theirs]
    except BrokenProcessPool:  # the helper is gone: draw everything here
        futures = [None] * len(theirs)
    for name, args in ours:
        _draw_chart(name, args)
    for (name, args), future in zip(theirs, futures):
        try:
            if future is not None:
                future.result()  # a chart that failed over there fails here, as it would have here
                continue
        except BrokenProcessPool:
            pass
        _draw_chart(name, args)


def _ready() -> None:
    """The helper's start: matplotlib imported and its fonts loaded before the first chart.
    At a lower priority: it starts while the run draws the population and runs the kernels,
    and must take only the idle core, never time from the kernels' threads."""
    import os

    try:
        os.nice(10)
    except (AttributeError, OSError):  # not POSIX, or not allowed
        pass
    fig, axes = _figure(1)
    axes[0, 0].set_title("ready")
    fig.canvas.draw()


class ChartHelper:
    """A second Python process that draws charts for :func:`write_report`.

    Drawing the report's charts is matplotlib work in one thread; with a second core, a
    helper process started at the beginning of a run (it imports matplotlib while the
    population is drawn) takes about half of the charts.  ``riskcore run`` uses one when
    the machine has two cores or more.  A context manager; :meth:`close` stops the
    process (it is also stopped when the run fails)."""

    def __init__(self):
        import concurrent.futures
        import multiprocessing

        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_ready)
        self.pool.submit(int)  # start it now, not at the first chart

    @staticmethod
    def wanted() -> bool:
        """Worth starting: this process may run on two cores or more."""
        import os

        try:
            return len(os.sched_getaffinity(0)) >= 2
        except AttributeError:  # not Linux
            return (os.cpu_count() or 1) >= 2

    def submit(self, name: str, args: tuple):
        return self.pool.submit(_draw_chart, name, args)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _figure_html(file: str, caption: str) -> str:
    return (f'<figure><img src="{_esc(file)}" alt="{_esc({**CHARTS, **PATH_CHARTS, **SECTION_CHARTS}[file])}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def write_report(out_dir, runs: Mapping, paths, start_book=None, *, title: str, notes=(), price_source: str = "",
                 description: str = "", seed=None, settings: Mapping | None = None,
                 chart_helper: "ChartHelper | None" = None, sweep: PathSweep | None = None,
                 fund_sizing: FundSizingReport | None = None) -> Path:
    """Write the charts and ``report.html`` into ``out_dir`` and return the page's path.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if missing; files of the same names are replaced).
    runs : mapping of str to Result (or :class:`VariantDigest`)
        The variants, by name.  Tables and charts group them by the margin mode of their
        accounts (cross, isolated, isolated + auto-add, mixed), in this order of ``runs``
        within a mode.
    paths : dict of str to DataFrame (or anything :meth:`riskcore.PricePaths.from_frames` takes)
        The price bars the runs went through (timestamp, open, high, low, close per contract).
    start_book : BookTable, Book, a mapping of str to either, or None for digests
        The book the runs started from, or one per variant (see :func:`summarize`).
    title : str
        The page's title (the scenario's name).
    notes : sequence of str
        Notes listed under the title (e.g. "last-price klines stand in for mark prices").
    price_source : str
        Where the prices came from (shown in the title block).
    description : str
        One sentence shown as the heading (default: the title).
    seed : int or None
        The seed of the population and path, shown in the title block.
    settings : mapping of str to dict, optional
        Each variant's settings (a scenario's merged configuration), for the parameter
        table: nested tables are flattened to ``section.key`` rows.
    chart_helper : ChartHelper, optional
        A started :class:`ChartHelper`: it draws about half of the charts while this
        process draws the rest (the same files).
    sweep : PathSweep, optional
        The runs went through several paths (a grid over ``path.seed``): ``paths`` is then
        the first of ``sweep.paths``.  The page draws every path, adds the spread of the
        results over the paths (a section, its table and ``spread.png``, :data:`PATH_CHARTS`),
        and shows the sections per variant for the variants of the first path only.  A sweep
        of one path changes nothing.
    fund_sizing : FundSizingReport, optional
        A fund-sizing study's curve and paths (``riskcore run`` on a scenario with
        ``[study] kind = "fund-sizing"``): the page gets an "Insurance-fund sizing" section
        (:data:`FUND_SECTION`), its table, ``fund_sizing.png`` and findings; the other
        sections show ``runs``, the variants on the study's first path.

    Files written: the charts of :data:`CHARTS` and ``report.html``, which references them
    by relative file name and needs nothing else (no script, no external resource).  The
    sections of the page are listed in :data:`SECTIONS`; ``docs/scenarios.md`` describes
    each.
    """
    from . import __version__

    _check_runs(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = PricePaths.from_frames(paths).to_frames()
    runs = _digests(runs, start_book)
    sweep = sweep if sweep is not None and len(sweep.paths) > 1 else None
    if sweep is not None:  # every variant counts in the spread; the first path's are shown in detail
        every = runs
        spread = spread_table(summarize(every), sweep)
        first_path = next(iter(sweep.paths))
        runs = {n: d for n, d in every.items() if sweep.path_of[n] == first_path}
        if not runs:
            raise ValueError(f"no variant ran through the first path of the sweep, {first_path!r}")
        if settings:
            settings = {n: settings[n] for n in runs if n in settings}
    summary = summarize(runs)
    unit = _quote_currency(frames)
    rows = _param_rows(runs, settings)
    styles = _styles(runs, rows)
    order = [n for group in _by_group(styles).values() for n in group]
    window = _event_window(runs)
    moves = _largest_moves(frames, runs)
    lev = leverage_table(runs)
    dist = distance_table(runs)

    price_chart = ("_chart_prices", (out / "price.png", runs, frames, styles, window, unit))
    extra = []
    if sweep is not None:
        price_chart = ("_chart_paths", (out / "price.png", sweep.paths, unit))
        shown = {sweep.base_of[n]: n for n in runs}
        colors = {b: styles[n].color for b, n in shown.items()}
        every_summary = summarize(every)
        points = {b: {col: [float(every_summary.loc[n, col]) for n in every if sweep.base_of[n] == b]
                      for col in SPREAD_METRICS} for b in spread["variant"]}
        extra = [("_chart_spread", (out / "spread.png", spread, points, colors, unit))]
    vcolors = {n: styles[n].color for n in order}
    has_adl, has_impact = any(d.adl for d in runs.values()), any(d.params.get("market_impact") for d in runs.values())
    cascades = cascade_table(summary, runs, frames) if has_impact else None
    if has_impact:
        extra.append(("_chart_cascades", (out / "cascades.png", cascades, order, vcolors, unit)))
    if has_adl:
        extra.append(("_chart_adl", (out / "adl.png", runs, order, vcolors, unit)))
    if fund_sizing is not None:
        extra.append(("_chart_fund_sizing", (out / "fund_sizing.png", fund_sizing, vcolors, unit)))
    _draw_charts([  # (chart, its arguments): the helper (matplotlib loaded) takes the larger share,
        # this process (which imports matplotlib first) the smaller, so that both end together
        ("_chart_liquidations", (out / "liquidations.png", runs, styles, window, unit)),
        ("_chart_comparison", (out / "comparison.png", summary, styles, unit)),
        ("_chart_insurance", (out / "insurance.png", runs, styles, unit)),
        ("_chart_losses", (out / "losses.png", runs, styles, unit)),
    ] + extra, [
        price_chart,
        ("_chart_outcomes", (out / "outcomes.png", runs, styles)),
        ("_chart_distance", (out / "distance.png", runs, styles, moves)),
    ], chart_helper)

    found, why = _findings(summary, runs, styles, unit, moves, lev)
    adl_html = ""
    if has_adl:
        adl_html = f"""<section id="{ADL_SECTION[0]}">
<h2>{_esc(ADL_SECTION[1])}</h2>
<p>When the insurance fund cannot pay a deficit, the shortfall is recovered from opposite positions on the
same contract, closed at the bankrupt position's bankruptcy price; the ADL policy decides whose
(<code>market.adl_policy</code>). Variants without ADL show n/a. <code>riskcore.studies.adl_outcomes</code> gives
this table for any run.</p>
{_adl_html(runs, order, styles, unit)}
{_figure_html("adl.png", f"Left: each variant's shortfall ({unit}), what ADL recovered (plain) and what was "
                         f"socialised (xx). Right: how concentrated the ADL was: the share of the notional closed by "
                         f"ADL borne by the top 1% and top 10% of the accounts hit.")}
</section>
"""
    venue_html = ""
    if len({d.venue.get("venues") for d in runs.values() if d.venue}) > 1:
        table, base = _venue_html(runs, order, styles, unit)
        venue_html = f"""<section id="{VENUE_SECTION[0]}">
<h2>{_esc(VENUE_SECTION[1])}</h2>
<p>The variants apply different venues' rules (docs/venues.md): how maintenance margin is charged, whether a
position is liquidated whole, by tier or in slices, what the insurance fund keeps, and who is deleveraged. The
numbers in brackets are each variant's difference to {_esc(base)}.
<code>riskcore.venues.study.venue_differences</code> gives this table for any set of runs.</p>
{table}
</section>
"""
    cascade_html = ""
    if has_impact:
        found = found + _cascade_findings(cascades, unit)
        cascade_html = f"""<section id="{CASCADE_SECTION[0]}">
<h2>{_esc(CASCADE_SECTION[1])}</h2>
<p>Liquidations with market impact fill worse than their trigger by the square-root impact of the notional
liquidated on their side at the same point; with feedback the net flow also moves the mark, and the point is
looked at again at the moved mark (a cascade round). The baseline is the first variant without impact.
docs/cascades.md describes the model and its parameters.</p>
{_cascade_html(cascades, order, styles, unit)}
{_figure_html("cascades.png", f"Left: the notional each variant liquidated ({unit}); the label says its market "
                              f"impact (off, on fills only, or with feedback on the mark). Right: its bad debt, "
                              f"split into what the insurance fund paid, what ADL recovered (//) and what was "
                              f"socialised (xx).")}
</section>
"""
    fund_html = ""
    if fund_sizing is not None:
        found = fund_sizing_findings(fund_sizing, unit) + found
        n_paths = int(fund_sizing.curve["paths"].iloc[0])
        fund_html = f"""<section id="{FUND_SECTION[0]}">
<h2>{_esc(FUND_SECTION[1])}</h2>
<p>Each variant ran once through each path ({_esc(fund_sizing.description)}) with an insurance fund that never
runs short. Until the fund first runs short, nothing the accounts do depends on the fund (ADL is
off-market, so this holds with market impact and feedback too): for every fund size, whether ADL happens on a path,
where it starts and the shortfall at that first point are exact. After that point the run with that fund differs
(ADL closed positions the ample run kept); the socialised loss assumes the later fees and deficits are the ample
run's, so it is an approximation, of which the shortfall at the first point of ADL is the exact part and a lower
bound. Socialised loss here is all of a deficit the fund does not pay: what ADL recovers from counterparties and
what nobody covers. Tail: the mean over the worst {1 - fund_sizing.tail:.0%} of the paths (at least one).
<code>fund_sizing.parquet</code> holds this table, <code>fund_paths.parquet</code> the fund each path needs.
Money in {_esc(unit)}.</p>
{_figure_html("fund_sizing.png", f"Left: the share of the {n_paths:,} paths on which a fund of that size runs "
                                 f"short and ADL starts, by variant; the grey line is the target of "
                                 f"{fund_sizing.adl_target:.0%}. Right: the socialised loss ({unit}) over the paths: "
                                 f"expected (solid), tail (dashed), and the exact part of the expected, the "
                                 f"shortfall at the first point of ADL (dotted).")}
{_fund_sizing_html(fund_sizing, vcolors, unit)}
<p class="warning">The sections below show the variants on the study's first path, run with that ample fund
(so the insurance fund there never runs short).</p>
</section>
"""
    span, first, length = _range_text(frames)
    kinds = {str((cfg.get("path") or {}).get("kind", "")) for cfg in (settings or {}).values()}
    bracket_facts, bracket_warnings = _bracket_notes(runs, first, dated=not kinds & {"gbm", "bootstrap"})
    engines = sorted({" ".join(f"{k}={d.params[k]}" if k != "engine" else str(d.params[k])
                               for k in ("engine", "intrabar", "mm_basis") if k in d.params) for d in runs.values()})
    accounts = sorted({int(summary.loc[n, "accounts"]) for n in order})
    zoom = (f" The lower panel zooms on the event window {_window_text(window)} ({window.share:.0%} of the "
            f"liquidated notional), where each variant's markers stand side by side within their bar."
            if window else "")
    captions = {
        "comparison.png": (f"Each variant's liquidation rate, mean loss per account ({unit}; start equity + net "
                           f"deposits - end equity, marked to market at the last close) and accounts saved by "
                           f"auto-add-margin (at least one top-up, never liquidated). Colour: margin mode."),
        "price.png": (f"Price of each contract ({unit}): close line and each bar's high-low range, with the "
                      f"liquidation clusters of every variant: one marker per bar with liquidations, at the "
                      f"notional-weighted mean liquidation price, area proportional to the liquidated notional, "
                      f"colour and shape by margin mode." + zoom),
        "liquidations.png": (f"Liquidations per bar, a column per margin mode (its variants as line styles and "
                             f"shades); the shaded band is the event window, whose rows below show each bar's "
                             f"liquidations and liquidated notional ({unit}) with the variants side by side."
                             if window else f"Liquidations and liquidated notional ({unit}) per bar, a column per "
                             f"margin mode."),
        "insurance.png": (f"Insurance fund ({unit}) at the end of each bar, a column per margin mode"
                          + (", and cumulative bad debt (dotted: the part socialised)." if any(
                              float(summary.loc[n, 'bad_debt']) > 0 for n in order)
                             else "; no variant has bad debt, so there is no bad-debt panel.")),
        "outcomes.png": ("Account PnL as % of start equity (equity marked to market at the last close; solid "
                         "line 0, dashed line the median), a column per margin mode and a panel per variant, on "
                         "shared bins; accounts with no start equity left out."),
        "losses.png": (f"How the losses spread across accounts: each variant's accounts by PnL as % of their "
                       f"start equity (left; 'lost 99% or more' is an account wiped out) and by the money lost "
                       f"({unit}, right)."),
        "distance.png": ("Distance to liquidation at the start: the share of accounts whose nearest liquidation "
                         "price was within a given price move against them (cross positions at the account's "
                         "cross liquidation price, isolated ones at their own, before any top-up); vertical lines: "
                         "the path's largest fall and rise from the start. Accounts whose positions have no "
                         "liquidation price never reach 100%."),
    }
    spread_html, detail_html, spread_toc = "", "", ""
    if sweep is not None:
        n_paths = len(sweep.paths)
        captions["price.png"] = (
            f"Close of each bar ({unit}) on every path: {first_path}, whose variants the sections below the "
            f"spread show, in black; the other paths in grey"
            + (f" (the first {PATH_LINES} of {n_paths})" if n_paths > PATH_LINES else "")
            + ("; the blue band holds the middle 90% of the paths' closes at each bar." if n_paths >= 10 else ".")
            + " Liquidation clusters are not drawn over several paths: liquidations.png shows the first path's.")
        caption = (f"Each margin variant over the {n_paths} paths: a dot per path (jittered up and down), the mean "
                   f"(black bar) and the median (white diamond) of the liquidation rate, the bad debt and the mean "
                   f"loss per account ({unit}).")
        spread_toc = '<a href="#spread">Spread over paths</a>'
        spread_html = f"""<section id="spread">
<h2>Spread over paths</h2>
<p>Each margin variant ran through {n_paths} paths ({_esc(sweep.description)}): the mean, the median and the worst
over the paths (the worst path under it; higher is worse for each) of its liquidation rate, its bad debt and its
mean loss per account. <code>spread.parquet</code> holds this table, <code>summary.parquet</code> every variant on
every path.</p>
{_spread_html(spread, colors, unit)}
{_figure_html("spread.png", caption)}
</section>"""
        detail_html = (f'<p class="warning">This section and those below show the {len(runs)} variants on the '
                       f'first path, {_esc(first_path)}, of {n_paths}; the spread over every path is above.</p>')
        found = _spread_findings(spread, unit) + [f"On {first_path} alone: {found[0][:1].lower()}{found[0][1:]}"
                                                  for _ in found[:1]] + found[1:]
    warn_html = "".join(f'<p class="warning">{_esc(w)}</p>' for w in bracket_warnings)
    notes_html = ('<ul class="notes">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>") if notes else ""
    meta = [("scenario", title),
            ("period", f"{span} ({length})"),
            ("contracts", ", ".join(frames)),
            ("accounts", " / ".join(f"{a:,}" for a in accounts) + f" in each of {len(order)} variants"
             if sweep is None else " / ".join(f"{a:,}" for a in accounts) + f" in each of {len(every)} variants "
             f"({len(set(sweep.base_of[n] for n in every))} margin variants over {len(sweep.paths)} paths; "
             f"accounts counted on the first path)"),
            ("riskcore", __version__),
            ("seed", "not given" if seed is None else str(seed)),
            ("engine", "; ".join(engines) if engines else "not recorded"),
            ("brackets", "; ".join(bracket_facts) if bracket_facts else "not recorded")]
    if price_source:
        meta.append(("prices", price_source))
    if sweep is not None:
        meta.append(("paths", f"{len(sweep.paths)} ({', '.join(list(sweep.paths)[:3])}"
                              + (", ..." if len(sweep.paths) > 3 else "") + f"); shown in detail: {first_path}"))
    meta_html = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in meta)
    toc = "".join(f'<a href="#{k}">{_esc(v)}</a>' for k, v in SECTIONS.items() if k != "title")
    if spread_toc:
        toc = toc.replace('<a href="#headline">', spread_toc + '<a href="#headline">', 1)
    if cascade_html or adl_html or fund_html or venue_html:
        extra_toc = (f'<a href="#{FUND_SECTION[0]}">Insurance-fund sizing</a>' if fund_html else "") + (
            f'<a href="#{VENUE_SECTION[0]}">Venues</a>' if venue_html else "") + (
            f'<a href="#{CASCADE_SECTION[0]}">Cascades</a>' if cascade_html else "") + (
            f'<a href="#{ADL_SECTION[0]}">Auto-deleveraging</a>' if adl_html else "")
        toc = toc.replace('<a href="#timeline">', extra_toc + '<a href="#timeline">', 1)
    findings_html = "<ul>" + "".join(f"<li>{_esc(f)}</li>" for f in found) + "</ul>"
    if why:
        findings_html += ('<h3>Why: results that follow from modelling choices</h3><ul class="why">'
                          + "".join(f"<li>{_esc(w)}</li>" for w in why) + "</ul>")
    heading = description or title
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="title" id="title">
<h1>{_esc(heading)}</h1>
<dl class="meta">{meta_html}</dl>
{warn_html}
{notes_html}
</header>
<nav class="toc">{toc}</nav>
<section id="findings">
<h2>{SECTIONS["findings"]}</h2>
{findings_html}
</section>
{spread_html}<section id="headline">
<h2>{SECTIONS["headline"]}</h2>
{detail_html}{_summary_html(summary, order, styles, unit)}
<p class="source">Equity = cross wallet + isolated wallets + unrealized PnL at the marks (an isolated position
counts from 0); an account's loss = start equity + net deposits - end equity, marked to market at the last close.
Money in {_esc(unit)}.</p>
</section>
<section id="comparison-section">
<h2>{SECTIONS["comparison-section"]}</h2>
{_figure_html("comparison.png", captions["comparison.png"])}
</section>
{fund_html}{venue_html}{cascade_html}{adl_html}<section id="timeline">
<h2>{SECTIONS["timeline"]}</h2>
{_figure_html("price.png", captions["price.png"])}
{_figure_html("liquidations.png", captions["liquidations.png"])}
{_figure_html("insurance.png", captions["insurance.png"])}
</section>
<section id="leverage">
<h2>{SECTIONS["leverage"]}</h2>
<p>Accounts by the highest leverage setting of their positions at the start: the share liquidated (hover for the
count) and the mean loss per account ({_esc(unit)}; negative: a mean gain).
{"Leverages in ranges include their upper edge." if len(lev) and "-" in str(lev["label"].iloc[0]) else ""}</p>
{_leverage_html(lev, order, styles, unit)}
</section>
<section id="losses">
<h2>{SECTIONS["losses"]}</h2>
{_figure_html("losses.png", captions["losses.png"])}
{_figure_html("outcomes.png", captions["outcomes.png"])}
</section>
<section id="distance">
<h2>{SECTIONS["distance"]}</h2>
{_figure_html("distance.png", captions["distance.png"])}
<p>Accounts by how far the price had to move against them, from the start, to reach their nearest liquidation
price (share of the variant's accounts), and the share of each bucket that was liquidated.</p>
{_distance_html(dist, order, styles)}
</section>
<section id="parameters">
<h2>{SECTIONS["parameters"]}</h2>
{_params_html(order, [(k, [t[list(runs).index(n)] for n in order], s) for k, t, s in rows], styles)}
</section>
</body>
</html>
"""
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
