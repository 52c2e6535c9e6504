"""Studies built on runs: how large must the insurance fund be?

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
(:func:`fund_needed`, :func:`adl_curve`).  What ADL then recovers and what is socialised
depends on the run after that point and is not given here (run the engine with that
fund to see it).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .result import Result

__all__ = ["AMPLE_FUND", "fund_flows", "fund_needed", "adl_curve"]

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
    (:data:`AMPLE_FUND`)."""
    if isinstance(results, Result):
        results = {0: results}
    elif not isinstance(results, Mapping):
        results = dict(enumerate(results))
    rows = {}
    for name, result in results.items():
        flows = fund_flows(result)
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

