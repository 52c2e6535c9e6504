"""Reports of simulation runs: summary tables, per-account outcomes, PNG charts and an HTML page.

A report compares *variants*: runs of the same population through the same price
paths that differ in one setting (``"cross"``, ``"isolated"``, ``"isolated+auto-add"``,
...).  The variants are named by the caller; the order of the ``runs`` mapping is the
order of the tables and charts.  ``start_book`` is the book the runs started from, or
``{variant: Book}`` when the variants started from different books; a book whose money
does not match a run's ledger (``money_start``) is refused with ``ValueError``.

* :func:`account_outcomes` -- one row per account of one run: equity at the start and
  the end, PnL, whether it was liquidated, its top-ups, the margin modes it held.
* :func:`summarize` -- one row per variant: liquidations, bad debt, insurance fund,
  ADL, top-ups, mean loss per account, accounts saved by auto-add-margin.
* :func:`write_report` -- charts (``price.png``, ``liquidations.png``,
  ``insurance.png``, ``outcomes.png``, ``comparison.png``) and a self-contained
  ``report.html`` (plain HTML, inline CSS, no script, no external resource) that
  shows them by relative file name.

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
from dataclasses import dataclass
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .book import Book
from .enums import MarginMode
from .inputs import PricePaths
from .result import Result
from .table import BookTable

__all__ = ["SUMMARY_COLUMNS", "OUTCOME_COLUMNS", "CHARTS", "summarize", "account_outcomes", "write_report",
           "format_value", "VariantDigest", "digest", "account_equity"]

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
OUTCOME_COLUMNS = ["account", "margin_modes", "auto_add", "start_equity", "net_deposits", "end_equity", "pnl",
                   "pnl_pct", "liquidated", "liquidations", "liquidated_notional", "bad_debt", "topups",
                   "topup_amount", "saved_by_auto_add"]

#: The chart files :func:`write_report` writes, with their captions' subject.
CHARTS = {
    "price.png": "price paths and liquidation clusters",
    "liquidations.png": "liquidations per bar",
    "insurance.png": "insurance fund and cumulative bad debt",
    "outcomes.png": "distribution of account outcomes",
    "comparison.png": "variants side by side",
}

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
    docstring), the margin modes of its open positions and whether any isolated one has
    auto-add-margin on.  Vectorised over positions."""
    acc = table.accounts
    pos = table.positions
    ids = acc["account"].to_numpy()
    index = pd.Index(ids)
    equity = acc["wallet"].to_numpy(np.float64).copy()
    has_cross = np.zeros(len(acc), bool)
    has_iso = np.zeros(len(acc), bool)
    auto = np.zeros(len(acc), bool)
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
        auto_pos = np.where((leg == 2) | ((leg == 0) & (side < 0)), st["auto_add_short"].to_numpy()[at],
                            st["auto_add_long"].to_numpy()[at]) & iso
        value = np.where(iso, np.maximum(0.0, pos["wallet_iso"].to_numpy() + upnl), upnl)
        equity += np.bincount(rows, weights=value, minlength=len(acc))
        has_iso[rows[iso]] = True
        has_cross[rows[~iso]] = True
        auto[rows[auto_pos]] = True
    modes = np.where(has_cross & has_iso, "cross+isolated", np.where(has_cross, "cross",
                                                                      np.where(has_iso, "isolated", "")))
    return pd.DataFrame({"account": ids, "equity": equity, "margin_modes": modes.astype(object), "auto_add": auto})


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
    accounts take about a second.
    """
    return _account_outcomes(result, start_book, None)


def _account_outcomes(result: Result, start_book, name) -> pd.DataFrame:
    if not isinstance(result, Result):
        raise TypeError(f"result must be a riskcore.Result, not {type(result).__name__}")
    start = _as_table(start_book)
    _check_start(result, start, name)
    s = account_equity(start)
    e = account_equity(result.final).set_index("account")["equity"]
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
    start_eq = s["equity"].to_numpy()
    end_eq = e.reindex(ids).fillna(0.0).to_numpy(np.float64)
    dep = _net_deposits(ev).reindex(ids).fillna(0.0).to_numpy(np.float64)
    pnl = end_eq - start_eq - dep
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(start_eq > 0, 100.0 * pnl / np.where(start_eq > 0, start_eq, 1.0), np.nan)
    frame = pd.DataFrame({
        "account": ids, "margin_modes": s["margin_modes"].to_numpy(object), "auto_add": s["auto_add"].to_numpy(bool),
        "start_equity": start_eq, "net_deposits": dep, "end_equity": end_eq, "pnl": pnl, "pnl_pct": pct,
        "liquidated": n_liq > 0, "liquidations": n_liq,
        "liquidated_notional": per(liq, liq["qty"].to_numpy(np.float64) * liq["price"].to_numpy(np.float64)),
        "bad_debt": per(bad, bad["amount"].to_numpy(np.float64)), "topups": n_top,
        "topup_amount": per(top, top["amount"].to_numpy(np.float64)),
        "saved_by_auto_add": (n_top > 0) & (n_liq == 0)}, columns=OUTCOME_COLUMNS)
    return frame


# ------------------------------------------------------------------------- digests
@dataclass
class VariantDigest:
    """What the summary and the report need of one variant's run, small enough to keep
    for every variant of a big run: the per-step series, params and ledger, the summary
    row, the liquidation clusters (per contract and step) and the accounts' PnL %."""
    steps: pd.DataFrame
    params: dict
    ledger: dict
    row: dict
    clusters: pd.DataFrame | None
    pnl_pct: np.ndarray


def digest(result: Result, start_book, name=None, outcomes: pd.DataFrame | None = None) -> VariantDigest:
    """The :class:`VariantDigest` of one run (account outcomes computed once, here)."""
    start = _as_table(start_book)
    if outcomes is None:
        outcomes = _account_outcomes(result, start, name)
    return VariantDigest(result.steps, dict(result.params), dict(result.ledger),
                         _summary_row(result, start, outcomes), _clusters(result.events),
                         outcomes["pnl_pct"].to_numpy(np.float64))


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


# -------------------------------------------------------------------------- charts
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def _style(i: int) -> tuple[str, str]:
    return _COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)]


def _figure(n_rows: int, n_cols: int = 1, *, width: float = 11.0, row_height: float = 3.0, **kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, max(2.5, row_height * n_rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return fig, axes


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="png")


def _time_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.75, text, transform=ax.transAxes, ha="center", va="center", color="#777777",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _bar_length(times: np.ndarray) -> np.timedelta64:
    """The bars' length: the median spacing of their open times (one minute for one bar)."""
    if times.size > 1:
        return np.median(np.diff(times).astype("int64")).astype("int64").astype("timedelta64[ns]")
    return np.timedelta64(60_000_000_000, "ns")


def _step_times(result: Result) -> np.ndarray:
    """Open times of the result's bars (datetime64[ns])."""
    return pd.to_datetime(result.steps["timestamp"]).to_numpy().astype("datetime64[ns]")


def _stairs(ax, times: np.ndarray, values: np.ndarray, **kwargs) -> None:
    """A per-bar quantity as a staircase over each bar's interval (the last bar included)."""
    if times.size == 0:
        return
    x = np.append(times, times[-1] + _bar_length(times))
    y = np.append(values, values[-1])
    ax.plot(x, y, drawstyle="steps-post", **kwargs)


def _chart_prices(path: Path, runs: Mapping[str, VariantDigest], frames: dict[str, pd.DataFrame]) -> None:
    """One panel per contract: close, high-low band, liquidation clusters of every variant."""
    symbols = list(frames)
    fig, axes = _figure(len(symbols), row_height=3.4, sharex=True)
    clusters = {name: d.clusters for name, d in runs.items()}
    top = max((float(g["notional"].max()) for g in clusters.values() if g is not None), default=0.0)
    for ax, symbol in zip(axes[:, 0], symbols):
        frame = frames[symbol]
        t = pd.to_datetime(frame["timestamp"]).to_numpy().astype("datetime64[ns]")
        bar = _bar_length(t)
        edges = np.append(t, t[-1] + bar)  # each bar's range shaded over its interval
        low, high = frame["low"].to_numpy(dtype="float64"), frame["high"].to_numpy(dtype="float64")
        ax.fill_between(edges, np.append(low, low[-1]), np.append(high, high[-1]), color="#999999", alpha=0.35,
                        linewidth=0, step="post", label="high-low range")
        opens = frame["open"].to_numpy(dtype="float64")[:1]
        ax.plot(edges, np.concatenate([opens, frame["close"].to_numpy(dtype="float64")]), color="black",
                linewidth=0.9, label="close")  # each close at its bar's end, from the first open
        middle = t + bar // 2
        for i, (name, g) in enumerate(clusters.items()):
            color, marker = _style(i)
            if g is None or symbol not in g.index.get_level_values(0):
                ax.scatter([], [], color=color, marker=marker, label=f"{name}: no liquidations")
                continue
            part = g.loc[symbol]
            steps = part.index.to_numpy()
            steps = steps[(steps >= 0) & (steps < len(t))]
            part = part.loc[steps]
            sizes = 15.0 + 400.0 * part["notional"].to_numpy() / top if top > 0 else 15.0
            ax.scatter(middle[steps], part["price"].to_numpy(), s=sizes, color=color, marker=marker, alpha=0.55,
                       edgecolors="black", linewidths=0.4,
                       label=f"{name}: {int(part['count'].sum()):,} liquidations")
        ax.set_title(symbol, loc="left", fontsize=10)
        ax.set_ylabel("price")
        ax.legend(loc="best", fontsize=8, markerscale=0.7)
        ax.grid(alpha=0.3)
        _time_axis(ax)
    _save(fig, path)


def _chart_liquidations(path: Path, runs: Mapping[str, Result]) -> None:
    fig, axes = _figure(2, sharex=True)
    any_liq = False
    for i, (name, result) in enumerate(runs.items()):
        color, _ = _style(i)
        t = _step_times(result)
        steps = result.steps
        any_liq = any_liq or bool(steps["liquidations"].sum() > 0)
        _stairs(axes[0, 0], t, steps["liquidations"].to_numpy(dtype="float64"), color=color, linewidth=1.0,
                label=name)
        _stairs(axes[1, 0], t, steps["liquidated_notional"].to_numpy(dtype="float64"), color=color,
                linewidth=1.0, label=name)
    axes[0, 0].set_ylabel("liquidations per bar")
    axes[1, 0].set_ylabel("liquidated notional per bar")
    if not any_liq:
        _empty_note(axes[0, 0], "no liquidations in any variant")
    for ax in axes[:, 0]:
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        _time_axis(ax)
    _save(fig, path)


def _chart_insurance(path: Path, runs: Mapping[str, Result]) -> None:
    fig, axes = _figure(2, sharex=True)
    any_debt = False
    for i, (name, result) in enumerate(runs.items()):
        color, _ = _style(i)
        t = _step_times(result)
        if t.size == 0:
            continue
        t = np.append(t[:1], t + _bar_length(t))  # the run's start, then each bar's end
        steps = result.steps
        any_debt = any_debt or bool(steps["bad_debt"].sum() > 0)
        fund0 = float(result.params.get("insurance_fund", steps["insurance_fund"].iloc[0]))
        fund = np.append(fund0, steps["insurance_fund"].to_numpy(dtype="float64"))
        debt = np.append(0.0, steps["bad_debt"].cumsum().to_numpy(dtype="float64"))
        social = np.append(0.0, steps["socialised_loss"].cumsum().to_numpy(dtype="float64"))
        axes[0, 0].plot(t, fund, color=color, linewidth=1.0, label=name)
        axes[1, 0].plot(t, debt, color=color, linewidth=1.0, label=f"{name}: bad debt")
        axes[1, 0].plot(t, social, color=color, linewidth=1.0, linestyle="--", label=f"{name}: socialised")
    axes[0, 0].set_ylabel("insurance fund")
    axes[1, 0].set_ylabel("cumulative bad debt")
    if not any_debt:
        _empty_note(axes[1, 0], "no bad debt in any variant")
    for ax in axes[:, 0]:
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        _time_axis(ax)
    _save(fig, path)


def _chart_outcomes(path: Path, runs: Mapping[str, VariantDigest]) -> None:
    names = list(runs)
    fig, axes = _figure(len(names), row_height=2.4, sharex=True)
    values = {n: d.pnl_pct for n, d in runs.items()}
    values = {n: v[np.isfinite(v)] for n, v in values.items()}
    pooled = np.concatenate(list(values.values())) if values else np.array([])
    if pooled.size:
        lo, hi = float(pooled.min()), float(pooled.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        bins = np.linspace(lo, hi, 41)
    else:
        bins = np.linspace(-1.0, 1.0, 41)
    for i, (ax, name) in enumerate(zip(axes[:, 0], names)):
        color, _ = _style(i)
        v = values[name]
        if v.size:
            ax.hist(v, bins=bins, color=color, alpha=0.8)
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.axvline(float(np.median(v)), color="black", linewidth=0.8, linestyle="--")
            ax.set_title(f"{name}: {v.size:,} accounts, median {np.median(v):+.2f}%, "
                         f"{(v <= -99.0).mean():.1%} lost >= 99%", loc="left", fontsize=9)
        else:
            _empty_note(ax, "no account with a positive start equity")
            ax.set_title(name, loc="left", fontsize=9)
        ax.set_ylabel("accounts")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("account PnL, % of start equity")
    _save(fig, path)


def _chart_comparison(path: Path, summary: pd.DataFrame) -> None:
    fig, axes = _figure(1, 3, width=12.0, row_height=3.8)
    names = [str(n) for n in summary.index]
    colors = [_style(i)[0] for i in range(len(names))]
    x = np.arange(len(names))
    panels = (("liquidation_rate", "liquidation rate (% of accounts)", 100.0, "{:.1f}%"),
              ("mean_loss_per_account", "mean loss per account", 1.0, "{:,.2f}"),
              ("accounts_saved_by_auto_add", "accounts saved by auto-add-margin", 1.0, "{:,.0f}"))
    for ax, (col, title, scale, fmt) in zip(axes[0], panels):
        vals = np.nan_to_num(summary[col].to_numpy(dtype="float64") * scale)
        bars = ax.bar(x, vals, color=colors)
        ax.bar_label(bars, labels=[fmt.format(v) for v in vals], fontsize=8)
        ax.set_xticks(x, names, rotation=20 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center",
                      fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3, axis="y")
        ax.margins(y=0.15)
    _save(fig, path)


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


def _summary_html(summary: pd.DataFrame) -> str:
    head = "".join(f'<th scope="col">{_esc(n)}</th>' for n in summary.index)
    rows = []
    for col, meaning in SUMMARY_COLUMNS.items():
        cells = "".join(f'<td class="num">{_esc(format_value(col, v))}</td>' for v in summary[col])
        rows.append(f'<tr><th scope="row">{_esc(col)}</th>{cells}<td class="meaning">{_esc(meaning)}</td></tr>')
    return (f'<table id="summary"><thead><tr><th>metric</th>{head}<th>meaning</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _param_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _params_html(runs: Mapping[str, Result]) -> str:
    keys: list = []
    for result in runs.values():
        keys += [k for k in result.params if k not in keys]
    if not keys:
        return "<p>No parameters recorded.</p>"
    head = "".join(f'<th scope="col">{_esc(n)}</th>' for n in runs)
    rows = []
    for key in keys:
        cells = "".join(f"<td>{_esc(_param_text(r.params[key])) if key in r.params else ''}</td>"
                        for r in runs.values())
        rows.append(f'<tr><th scope="row">{_esc(key)}</th>{cells}</tr>')
    return (f'<table id="params"><thead><tr><th>parameter</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.meaning { color: #666; font-size: 0.9em; }
figure { margin: 1em 0 1.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.source { color: #555; }
ul.notes li { margin: 0.2em 0; }
"""


def write_report(out_dir, runs: Mapping, paths, start_book=None, *, title: str,
                 notes=(), price_source: str = "") -> Path:
    """Write the charts and ``report.html`` into ``out_dir`` and return the page's path.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if missing; files of the same names are replaced).
    runs : mapping of str to Result (or :class:`VariantDigest`)
        The variants, by name, in the order to show them.
    paths : dict of str to DataFrame (or anything :meth:`riskcore.PricePaths.from_frames` takes)
        The price bars the runs went through (timestamp, open, high, low, close per contract).
    start_book : BookTable, Book, a mapping of str to either, or None for digests
        The book the runs started from, or one per variant (see :func:`summarize`).
    title : str
        The page's title.
    notes : sequence of str
        Notes listed under the title (e.g. "last-price klines stand in for mark prices").
    price_source : str
        Where the prices came from (shown under the notes).

    Files written: ``price.png`` (each contract's close, its high-low range shaded, and
    the liquidation clusters of *every* variant: one marker per bar with liquidations,
    at the notional-weighted mean liquidation price, its area proportional to the bar's
    liquidated notional on one scale across variants and contracts, one colour and
    marker shape per variant); ``liquidations.png`` (liquidations and liquidated
    notional per bar, a line per variant); ``insurance.png`` (insurance fund, and
    cumulative bad debt with the socialised part dashed, per variant);
    ``outcomes.png`` (histogram of account PnL as % of start equity, a panel per variant
    on shared bins; accounts with no start equity left out); ``comparison.png``
    (liquidation rate, mean loss per account and accounts saved by auto-add-margin, a
    bar per variant); and ``report.html``, which references the charts by relative file
    name and needs nothing else.
    """
    _check_runs(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = PricePaths.from_frames(paths).to_frames()
    runs = _digests(runs, start_book)
    summary = summarize(runs)

    _chart_prices(out / "price.png", runs, frames)
    _chart_liquidations(out / "liquidations.png", runs)
    _chart_insurance(out / "insurance.png", runs)
    _chart_outcomes(out / "outcomes.png", runs)
    _chart_comparison(out / "comparison.png", summary)

    names = ", ".join(str(n) for n in runs)
    captions = {
        "price.png": ("Price path of each contract (close line, high-low range of each bar shaded) with the "
                      "liquidation clusters of every variant: one marker per bar with liquidations, at the "
                      "notional-weighted mean liquidation price, area proportional to the liquidated notional."),
        "liquidations.png": "Liquidations (count) and liquidated notional per bar, one line per variant.",
        "insurance.png": ("Insurance fund balance and cumulative bad debt (dashed: the part socialised) "
                          "at the end of each bar, per variant."),
        "outcomes.png": ("Distribution of account PnL as % of start equity (equity marked to market at the "
                         "last close; solid line 0, dashed line the median), one panel per variant."),
        "comparison.png": ("Variants side by side: liquidation rate, mean loss per account and accounts "
                           "saved by auto-add-margin (at least one top-up, never liquidated)."),
    }
    figures = "".join(
        f'<figure><img src="{_esc(file)}" alt="{_esc(CHARTS[file])}">'
        f"<figcaption>{_esc(captions[file])}</figcaption></figure>" for file in CHARTS)
    notes_html = ""
    if notes:
        notes_html = '<ul class="notes">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>"
    source_html = f'<p class="source">Price source: {_esc(price_source)}</p>' if price_source else ""
    contracts = ", ".join(frames)
    n_steps = max((len(r.steps) for r in runs.values()), default=0)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_esc(title)}</h1>
<p>Variants: {_esc(names)}. Contracts: {_esc(contracts)}. {n_steps:,} bars.</p>
{notes_html}
{source_html}
<h2>Summary</h2>
{_summary_html(summary)}
<p class="source">Equity = cross wallet + isolated wallets + unrealized PnL at the marks (an isolated position
counts from 0); an account's loss = start equity + net deposits - end equity, marked to market at the last close.</p>
<h2>Charts</h2>
{figures}
<h2>Parameters</h2>
{_params_html(runs)}
</body>
</html>
"""
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
