"""Studies built on runs: how large must the insurance fund be, and who pays when it is not?

Without price feedback (liquidations do not move the price), what happens to each account
does not depend on the insurance fund: the fund only receives liquidation fees and pays
deficits, and its size matters at the first point where it cannot pay a deficit in full:
there auto-deleveraging (ADL) starts, and from there on the run differs.  So one run per
price path with a fund that never runs short gives, exactly, for *every* starting fund
``F``: whether ADL happens on that path and at which point it starts.

At each point the engine first adds the point's liquidation fees to the fund, then pays
the point's deficits (MARGIN_RULES.md section 6).  With ``C`` the fund's net inflow before
the point (fees minus deficits, from the run with an ample fund), a fund that started at
``F`` holds ``F + C + fees`` when the point's deficits ``D`` fall due, and ADL starts at the
first point where that is less than ``D``.  The least fund that never needs ADL on the
path is therefore

    fund_needed = max(0, max over points of (D - fees - C))

and ``P(ADL | F)`` over a set of paths is the share of paths whose ``fund_needed``
exceeds ``F``: a whole fund-sizing curve from one run per path
(:func:`fund_needed`, :func:`adl_curve`).  ADL is off-market (it never moves the mark), so
this stays exact with market impact and feedback.  :func:`fund_sizing` adds the socialised
loss (what the fund does not pay): exact at the point where ADL starts, approximate after
it, where the run with that fund differs from the ample run.

:func:`adl_outcomes` reads a run's ADL events: who was deleveraged, by how much, what it
covered and how concentrated it was, to compare ADL policies (``adl_policy`` of
:func:`riskcore.simulate`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .result import Result

__all__ = ["AMPLE_FUND", "fund_flows", "fund_needed", "adl_curve", "fund_sizing", "FUND_SIZING_COLUMNS",
           "adl_outcomes"]

#: A starting fund no run here exhausts (the largest amount riskcore accepts).
AMPLE_FUND = 1e15


def _check(result: Result) -> None:
    if not isinstance(result, Result):
        raise TypeError(f"result must be a riskcore.Result, not {type(result).__name__}")
    steps = result.steps
    short = float(steps["adl_recovered"].sum()) + float(steps["socialised_loss"].sum())
    if short > 0:
        raise ValueError(
            f"the fund ran short in this run (ADL recovered and socialised {short:,.2f}): fund sizing needs a run "
            f"whose fund never runs short; run it with insurance_fund={AMPLE_FUND:g} (riskcore.studies.AMPLE_FUND)")


def fund_flows(result: Result) -> pd.DataFrame:
    """The fund's flows point by point, from a run whose fund never ran short: one row
    per (step, point, round) with a liquidation or a deficit (``round``: the cascade
    round, always 0 without market impact), in run order, with ``fees`` (the
    liquidation fees the fund received), ``deficits`` (what it paid), ``before`` (its net
    inflow before the point, fees minus deficits) and ``need`` (``deficits - fees -
    before``: the least starting fund for which the point's deficits are paid in full).

    ``ValueError`` when ADL recovered or socialised anything in the run."""
    _check(result)
    ev = result.events
    kind = ev["kind"].astype(object).to_numpy()
    liq = kind == "liquidation"
    bad = kind == "bad_debt"
    rows = liq | bad
    if not rows.any():
        return pd.DataFrame({"step": np.zeros(0, np.int64), "point": np.zeros(0, np.int64),
                             "round": np.zeros(0, np.int64), "fees": [],
                             "deficits": [], "before": [], "need": []})
    step = ev["step"].to_numpy(np.int64)[rows]
    point = ev["point"].to_numpy(np.int64)[rows]
    rnd = ev["round"].to_numpy(np.int64)[rows]
    fees = np.where(liq, ev["fee"].to_numpy(np.float64), 0.0)[rows]
    deficits = np.where(bad, ev["amount"].to_numpy(np.float64), 0.0)[rows]
    frame = pd.DataFrame({"step": step, "point": point, "round": rnd, "fees": np.nan_to_num(fees),
                          "deficits": np.nan_to_num(deficits)})
    frame = frame.groupby(["step", "point", "round"], sort=True, as_index=False).sum()
    net = (frame["fees"] - frame["deficits"]).to_numpy()
    frame["before"] = np.concatenate([[0.0], np.cumsum(net)[:-1]])
    frame["need"] = frame["deficits"] - frame["fees"] - frame["before"]
    return frame


def fund_needed(results: Result | Mapping[str, Result] | Iterable[Result]) -> pd.DataFrame:
    """Per run (a price path, say): the least starting fund for which no deficit of the run
    needs ADL, and where the need is greatest.  Columns ``fund_needed`` (0 when the fund
    is never drawn below its start), ``step`` and ``point`` of the binding point (-1 for
    none), ``deficits`` (all the run's deficits) and ``fees`` (all the fees the fund got).
    ``results``: one Result, a ``{name: Result}`` mapping (the names index the rows), or
    a sequence of Results (indexed 0, 1, ...); each from a run with an ample fund
    (:data:`AMPLE_FUND`), or in place of a Result the frame :func:`fund_flows` made of it."""
    if isinstance(results, Result):
        results = {0: results}
    elif not isinstance(results, Mapping):
        results = dict(enumerate(results))
    rows = {}
    for name, result in results.items():
        flows = result if isinstance(result, pd.DataFrame) else fund_flows(result)
        need = flows["need"].to_numpy()
        at = int(np.argmax(need)) if need.size else -1
        needed = max(0.0, float(need[at])) if need.size else 0.0
        rows[name] = {"fund_needed": needed,
                      "step": int(flows["step"].iloc[at]) if needed > 0 else -1,
                      "point": int(flows["point"].iloc[at]) if needed > 0 else -1,
                      "deficits": float(flows["deficits"].sum()), "fees": float(flows["fees"].sum())}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "run"
    return frame


def adl_curve(needed, sizes) -> pd.DataFrame:
    """The fund-sizing curve: for each starting fund in ``sizes``, the share of runs
    (paths) on which ADL happens, ``p_adl`` (a fund of exactly ``fund_needed`` pays every
    deficit in full), and how many runs that is.  ``needed``: the ``fund_needed`` of
    :func:`fund_needed` (a frame, Series or array)."""
    values = needed["fund_needed"] if isinstance(needed, pd.DataFrame) else needed
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("needed is empty: give the fund_needed of at least one run")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("needed must hold finite amounts >= 0 (the fund_needed column of fund_needed())")
    sizes = np.asarray(list(sizes), dtype=np.float64)
    if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise ValueError("sizes must be finite fund sizes >= 0, at least one")
    runs = np.sort(values)
    with_adl = runs.size - np.searchsorted(runs, sizes, side="right")  # runs needing more than the size
    return pd.DataFrame({"insurance_fund": sizes, "runs": runs.size, "runs_with_adl": with_adl,
                         "p_adl": with_adl / runs.size})



#: The columns of :func:`fund_sizing`, with their meaning (the report's table and docs/studies.md).
FUND_SIZING_COLUMNS = {
    "insurance_fund": "the insurance fund at the start",
    "paths": "paths (runs) in the study",
    "paths_with_adl": "paths on which this fund runs short (exact)",
    "p_adl": "paths_with_adl / paths: the probability of ADL (exact for these paths)",
    "socialised_mean": "mean over the paths of the socialised loss: deficits the fund does not pay (approximate "
                       "after the first shortfall)",
    "socialised_tail": "expected shortfall of the socialised loss at tail_level: the mean of the worst "
                       "ceil((1 - tail_level) x paths) paths (approximate after the first shortfall)",
    "socialised_max": "the largest socialised loss over the paths (approximate after the first shortfall)",
    "first_point_mean": "mean over the paths of the shortfall at the point where ADL starts (exact; a lower bound "
                        "of the socialised loss)",
    "first_point_tail": "its expected shortfall at tail_level (exact; a lower bound of socialised_tail's)",
    "tail_level": "the level of the tail columns",
}


def _records(need: np.ndarray) -> np.ndarray:
    """The needs that set a new high, in run order (a fund of ``F`` first runs short at the
    first of them above ``F``)."""
    if need.size == 0:
        return need
    high = np.maximum.accumulate(need)
    keep = np.concatenate([[True], high[1:] > high[:-1]])
    return need[keep & (need > 0)]


def _tail_mean(losses: np.ndarray, level: float) -> np.ndarray:
    """Expected shortfall over paths (axis 0): the mean of the worst ceil((1 - level) * n)."""
    n = losses.shape[0]
    k = max(1, math.ceil(round((1.0 - level) * n, 9)))
    worst = -np.sort(-losses, axis=0)[:k]
    return worst.mean(axis=0)


def fund_sizing(runs, sizes, *, tail: float = 0.95) -> pd.DataFrame:
    """The fund-sizing curve over a set of paths, from one run per path with an ample fund.

    ``runs``: as for :func:`fund_needed` (Results from runs with :data:`AMPLE_FUND`, or their
    :func:`fund_flows` frames), one per path.  ``sizes``: starting funds.  ``tail``: the level
    of the tail columns (0.95: the mean of the worst 5% of the paths, at least one path).
    One row per size, the columns of :data:`FUND_SIZING_COLUMNS`.

    What is exact and what is not.  A run's accounts do not depend on the fund until it first
    runs short (the fund only takes fees and pays deficits, and ADL is off-market, so this
    holds with market impact and feedback too).  So, for each path and fund ``F``:

    * whether ADL happens, and where it starts, is exact: at the first point whose ``need``
      (:func:`fund_flows`) exceeds ``F``; ``p_adl`` is exact for these paths;
    * the shortfall at that first point, ``need - F``, is exact (the fund pays what it
      holds, the rest is the shortfall); ``first_point_*`` give it, a lower bound of the
      socialised loss;
    * after it, ADL has closed positions the ample run kept, and later liquidations may
      differ.  ``socialised_*`` assume they do not: the fund then starts at ``F``, gets the
      fees and pays the deficits of the ample run, never below zero, and what it cannot pay
      is socialised.  That comes to ``max(0, fund_needed - F)`` on each path.  Exact when
      nothing is liquidated after ADL starts; an approximation otherwise.

    "Socialised loss" here is all of a deficit the fund does not pay: what ADL recovers from
    the counterparties plus what nobody covers (the run's ``socialised_loss`` column).
    """
    if not 0 < tail < 1:
        raise ValueError(f"tail must be a level between 0 and 1 (0.95: the worst 5% of the paths), not {tail!r}")
    sizes = np.asarray(list(sizes), dtype=np.float64)
    if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise ValueError("sizes must be finite fund sizes >= 0, at least one")
    runs = _runs(runs)
    if not runs:
        raise ValueError("runs is empty: give one run (or its fund_flows) per path")
    needed = np.zeros(len(runs))
    first = np.zeros((len(runs), sizes.size))
    for i, run in enumerate(runs.values()):
        flows = run if isinstance(run, pd.DataFrame) else fund_flows(run)
        records = _records(flows["need"].to_numpy(np.float64))
        if records.size:
            needed[i] = records[-1]
            at = np.searchsorted(np.maximum.accumulate(records), sizes, side="right")  # first record above F
            hit = at < records.size
            first[i, hit] = records[at[hit]] - sizes[hit]
    loss = np.maximum(0.0, needed[:, None] - sizes[None, :])
    with_adl = (needed[:, None] > sizes[None, :]).sum(axis=0)
    return pd.DataFrame({"insurance_fund": sizes, "paths": len(runs), "paths_with_adl": with_adl,
                         "p_adl": with_adl / len(runs), "socialised_mean": loss.mean(axis=0),
                         "socialised_tail": _tail_mean(loss, tail), "socialised_max": loss.max(axis=0),
                         "first_point_mean": first.mean(axis=0), "first_point_tail": _tail_mean(first, tail),
                         "tail_level": float(tail)}, columns=list(FUND_SIZING_COLUMNS))


def _runs(results) -> dict:
    if isinstance(results, (Result, pd.DataFrame)):
        return {0: results}
    if isinstance(results, Mapping):
        return dict(results)
    return dict(enumerate(results))


ADL_OUTCOME_COLUMNS = ["positions_hit", "accounts_hit", "adl_qty", "adl_notional", "deficits", "insurance_paid",
                       "shortfall", "recovered", "socialised", "haircut_share", "counterparty_pnl",
                       "overshoot_qty", "overshoot_notional", "top1_share", "top10_share", "herfindahl"]


def adl_outcomes(results: Result | Mapping[str, Result] | Iterable[Result]) -> pd.DataFrame:
    """Who was auto-deleveraged in each run, by how much, and what it covered.

    One row per run (``results`` as in :func:`fund_needed`), from the run's ``bad_debt``
    and ``adl`` events (reason codes ``adl_counterparty``: a position closed by ADL, and
    ``adl_bankrupt``: what the bankrupt position recovered) and the fund's payments
    (``steps["insurance_paid"]``; the events carry them only as text):

    * ``positions_hit``, ``accounts_hit``: counterparty positions (account, contract, leg)
      and accounts closed wholly or partly by ADL;
    * ``adl_qty``, ``adl_notional``: what they closed, in base units and in notional at the
      ADL prices;
    * ``deficits`` (all bad debt), ``insurance_paid``, ``shortfall`` (deficits the fund did
      not pay), ``recovered`` (by ADL), ``socialised`` (``shortfall - recovered``);
    * the haircut: ``recovered`` is also the money the counterparties gave up against the
      bankrupt positions' liquidation fills (each unit closes at the ADL price instead of
      the fill: the bankrupt side gains exactly what the counterparty gives up), and
      ``haircut_share = recovered / shortfall`` (NaN without a shortfall) the share of the
      shortfall it covered; ``counterparty_pnl`` the profit the counterparties still
      realised at the ADL prices (never negative, MARGIN_RULES.md section 6);
    * ``overshoot_qty``, ``overshoot_notional``: quantity (and its notional at the match's
      average price) closed beyond what the money recovered needed.  For each bankrupt
      position's match, the fill is ``x = price - side * amount / qty`` of its
      ``adl_bankrupt`` event; the counterparties closed just before that event recover
      ``side * (price_i - x)`` per unit; the quantity needed is ``recovered / best``, the
      best of those (the bankruptcy price, unless every one of them was held at its entry
      price); what was matched beyond it is overshoot;
    * concentration of ``adl_notional`` over the accounts hit: ``top1_share`` and
      ``top10_share``, the share borne by the top 1% and 10% of them (at least one
      account), and ``herfindahl``, the sum of the squared shares (1: one account bore all).
      NaN without ADL.
    """
    rows = {}
    for name, result in _runs(results).items():
        if not isinstance(result, Result):
            raise TypeError(f"result must be a riskcore.Result, not {type(result).__name__}")
        rows[name] = _adl_outcome(result)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=ADL_OUTCOME_COLUMNS)
    frame.index.name = "run"
    return frame.astype({"positions_hit": "int64", "accounts_hit": "int64"})


def _adl_outcome(result: Result) -> dict:
    ev = result.events
    kind = ev["kind"].astype(object)
    code = ev["reason_code"].astype(object)
    deficits = float(ev.loc[(kind == "bad_debt").to_numpy(), "amount"].sum())
    paid = float(result.steps["insurance_paid"].sum())
    adl = ev.loc[(kind == "adl").to_numpy()]
    bankrupt = (code.loc[adl.index] == "adl_bankrupt").to_numpy()
    cp = adl.loc[~bankrupt]
    bk = adl.loc[bankrupt]
    recovered = float(bk["amount"].sum())
    notional = cp["qty"] * cp["price"]
    out = {"positions_hit": int(len(cp[["account", "contract", "leg"]].drop_duplicates())),
           "accounts_hit": int(cp["account"].nunique()), "adl_qty": float(cp["qty"].sum()),
           "adl_notional": float(notional.sum()), "deficits": deficits, "insurance_paid": paid,
           "shortfall": deficits - paid, "recovered": recovered, "socialised": deficits - paid - recovered,
           "haircut_share": recovered / (deficits - paid) if deficits - paid > 0 else np.nan,
           "counterparty_pnl": float(cp["amount"].sum())}
    out.update(_overshoot(adl, bankrupt))
    out.update(_concentration(notional.groupby(cp["account"].to_numpy()).sum().to_numpy()))
    return out


def _overshoot(adl: pd.DataFrame, bankrupt: np.ndarray) -> dict:
    if not bankrupt.any():
        return {"overshoot_qty": 0.0, "overshoot_notional": 0.0}
    match = np.cumsum(bankrupt) - bankrupt  # each counterparty close belongs to the next bankrupt event
    side = adl["side"].to_numpy(np.float64)
    qty = adl["qty"].to_numpy(np.float64)
    price = adl["price"].to_numpy(np.float64)
    amount = adl["amount"].to_numpy(np.float64)
    fill = (price - side * amount / qty)[bankrupt]  # the bankrupt position's liquidation fill, per match
    m = match[~bankrupt]
    per_unit = side[bankrupt][m] * (price[~bankrupt] - fill[m])
    best = pd.Series(per_unit).groupby(m).max().reindex(range(int(bankrupt.sum()))).to_numpy()
    needed = amount[bankrupt] / best
    over = np.maximum(0.0, qty[bankrupt] - needed)
    return {"overshoot_qty": float(over.sum()), "overshoot_notional": float((over * price[bankrupt]).sum())}


def _concentration(per_account: np.ndarray) -> dict:
    total = float(per_account.sum())
    if per_account.size == 0 or not total > 0:
        return {"top1_share": np.nan, "top10_share": np.nan, "herfindahl": np.nan}
    shares = np.sort(per_account)[::-1] / total
    n = shares.size
    return {"top1_share": float(shares[:max(1, math.ceil(0.01 * n))].sum()),
            "top10_share": float(shares[:max(1, math.ceil(0.10 * n))].sum()),
            "herfindahl": float((shares ** 2).sum())}
