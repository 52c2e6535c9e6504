"""Where venue profiles differ on the same crash and population (issue 12).

:func:`venue_outcomes` reads runs of one book and path under different venue profiles (a
scenario's ``grid`` over ``market.venue``, e.g. ``scenarios/venues-2025-10-10.toml``) and gives
one row per run: how much was liquidated and how (whole positions or parts of them), what the
insurance fund took in and paid out, the bad debt, and who was auto-deleveraged
(:func:`riskcore.studies.adl_outcomes`).  :func:`venue_differences` sets each run against a
base run (Binance's rules by default): the report's "Venues" section is that table.

Only the runs' events, steps and final tables are read; nothing is simulated here.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..result import Result

#: The columns of :func:`venue_outcomes`, in order.
VENUE_OUTCOME_COLUMNS = (
    "venues", "liquidations", "positions_liquidated", "positions_closed_out", "positions_reduced",
    "accounts_liquidated", "liquidated_qty", "liquidated_notional", "liquidation_fees", "fund_end",
    "bad_debt", "insurance_paid", "adl_recovered", "socialised", "adl_positions_hit", "adl_accounts_hit",
    "adl_notional", "open_positions_end",
)
#: Columns :func:`venue_differences` compares (run minus base).
COMPARED = ("liquidations", "positions_liquidated", "positions_closed_out", "positions_reduced",
            "liquidated_notional", "liquidation_fees", "bad_debt", "insurance_paid", "adl_recovered", "socialised",
            "adl_positions_hit", "adl_notional")


def _runs(results) -> dict:
    if isinstance(results, Result):
        return {"run": results}
    if isinstance(results, Mapping):
        return dict(results)
    if isinstance(results, Iterable):
        return {i: r for i, r in enumerate(results)}
    raise TypeError(f"results must be a Result, a mapping of them or an iterable, not {type(results).__name__}")


def _venues_of(result: Result) -> str:
    venues = result.params.get("venues") or {}
    names = sorted(set(venues.values()))
    return ", ".join(names) if names else "binance"


def _outcome(result: Result) -> dict:
    from ..studies import adl_outcomes

    ev = result.events
    liq = ev[ev["kind"] == "liquidation"]
    keys = set(zip(liq["account"], liq["contract"].astype(str), liq["leg"].astype(str)))
    final = result.final.positions
    final = final[final["account"].isin(liq["account"].unique())]  # only the liquidated accounts' positions
    still = set(zip(final["account"], final["contract"].astype(str), final["leg"].astype(str)))
    reduced = len(keys & still)
    steps = result.steps
    adl = adl_outcomes(result).iloc[0]
    return {
        "venues": _venues_of(result),
        "liquidations": int(len(liq)),
        "positions_liquidated": len(keys),
        "positions_closed_out": len(keys) - reduced,
        "positions_reduced": reduced,
        "accounts_liquidated": int(liq["account"].nunique()),
        "liquidated_qty": float(liq["qty"].sum()),
        "liquidated_notional": float((liq["qty"] * liq["price"]).sum()),
        "liquidation_fees": float(liq["fee"].sum()),
        "fund_end": float(steps["insurance_fund"].iloc[-1]) if len(steps) else float("nan"),
        "bad_debt": float(steps["bad_debt"].sum()),
        "insurance_paid": float(steps["insurance_paid"].sum()),
        "adl_recovered": float(steps["adl_recovered"].sum()),
        "socialised": float(steps["socialised_loss"].sum()),
        "adl_positions_hit": int(adl["positions_hit"]),
        "adl_accounts_hit": int(adl["accounts_hit"]),
        "adl_notional": float(adl["adl_notional"]),
        "open_positions_end": int(len(result.final.positions)),
    }


def venue_outcomes(results: Result | Mapping[str, Result] | Iterable[Result]) -> pd.DataFrame:
    """One row per run (index: the run's name) with :data:`VENUE_OUTCOME_COLUMNS`:

    * ``venues``: the venue profiles of the run's contracts (``Result.params["venues"]``);
    * ``liquidations``: liquidation closes (a partial liquidation is one close, a cross book's
      liquidation one per position); ``positions_liquidated``: distinct positions (account,
      contract, leg) with at least one; of those ``positions_closed_out`` are gone at the end
      and ``positions_reduced`` still open (made safe by partial liquidation; a tape that
      reopens a closed position would count it here too); ``accounts_liquidated``;
    * ``liquidated_qty`` and ``liquidated_notional`` (at the execution prices);
    * ``liquidation_fees``: what the liquidations paid the fund, fees or penalties plus all
      that a takeover or a backstop kept; ``fund_end`` the fund after the last bar;
    * ``bad_debt``, ``insurance_paid``, ``adl_recovered``, ``socialised`` (from the steps:
      ``bad_debt = insurance_paid + adl_recovered + socialised``);
    * ``adl_positions_hit``, ``adl_accounts_hit``, ``adl_notional``: who was deleveraged
      (:func:`riskcore.studies.adl_outcomes`);
    * ``open_positions_end``: positions open after the last bar.
    """
    rows = {}
    for name, result in _runs(results).items():
        if not isinstance(result, Result):
            raise TypeError(f"result {name!r} must be a riskcore.Result, not {type(result).__name__}")
        rows[name] = _outcome(result)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(VENUE_OUTCOME_COLUMNS))
    frame.index.name = "run"
    return frame


def venue_differences(results, base=None) -> pd.DataFrame:
    """:func:`venue_outcomes` of every run with, for each of :data:`COMPARED`, the difference
    to the ``base`` run (``<column>_vs_base``, run minus base).  ``base``: a run's name; by
    default the first run whose contracts all follow Binance's rules, else the first run."""
    out = venue_outcomes(results)
    if out.empty:
        return out
    if base is None:
        binance = out.index[out["venues"] == "binance"]
        base = binance[0] if len(binance) else out.index[0]
    if base not in out.index:
        raise KeyError(f"base run {base!r} is not among the runs {list(out.index)}")
    for col in COMPARED:
        out[f"{col}_vs_base"] = out[col].to_numpy(np.float64) - float(out.loc[base, col])
    out.attrs["base"] = base
    return out
