"""Scalar margin formulas for the kernels (MARGIN_RULES.md sections 2 and 3).

Each mirrors :mod:`riskcore.margin` / :class:`riskcore.brackets.Brackets` operation
for operation, so the results are bit-identical to the reference engine's.
"""
from __future__ import annotations

import math

from numba import njit

from .options import NB_INNER


@njit(**NB_INNER)
def tier_nb(ct, c, notional):
    """Tier holding ``notional``: the first cap >= notional, the last tier above every cap
    (``np.searchsorted(cap, notional, 'left')`` clipped, as ``Brackets.tier_index``)."""
    n = ct.n_tiers[c]
    i = 0
    while i < n - 1 and ct.cap[c, i] < notional:
        i += 1
    return i


@njit(**NB_INNER)
def mm_nb(ct, c, notional):
    """Maintenance margin ``notional * mmr - cum`` of the tier holding the notional (section 2)."""
    i = tier_nb(ct, c, notional)
    return notional * ct.mmr[c, i] - ct.cum[c, i]


@njit(**NB_INNER)
def max_notional_nb(ct, c, lev):
    """Largest notional ``lev`` allows: the cap of the last tier whose max leverage >= lev, 0 if none."""
    n = ct.n_tiers[c]
    ok = 0
    for i in range(n):
        if ct.max_lev[c, i] >= lev:
            ok = i + 1
    return 0.0 if ok == 0 else ct.cap[c, ok - 1]


@njit(**NB_INNER)
def isolated_lp_nb(ct, c, side, qty, entry, wallet, mm_entry):
    """Isolated liquidation price (section 3), as ``riskcore.margin.isolated_liquidation_price``.

    Mark basis: ``(W + cum - s*Q*EP) / (Q*mmr - s*Q)`` with the tier found from the sign
    of ``W + s*(cap - Q*EP) - MM(cap)`` at each tier edge.  Entry basis:
    ``EP - s*(W - MM(Q*EP))/Q``.  NaN when not positive and finite or when qty is 0."""
    s = float(side)
    q = qty
    if mm_entry:
        lp = entry - s * (wallet - mm_nb(ct, c, q * entry)) / q
    else:
        n = ct.n_tiers[c]
        k = 0
        for j in range(n - 1):
            cap = ct.cap[c, j]
            edge_mm = cap * ct.mmr[c, j] - ct.cum[c, j]
            f = wallet + s * (cap - q * entry) - edge_mm
            if (f < 0.0) if s > 0 else (f > 0.0):
                k += 1
        lp = (wallet + ct.cum[c, k] - s * q * entry) / (q * ct.mmr[c, k] - s * q)
    if q > 0.0 and lp > 0.0 and math.isfinite(lp):
        return lp
    return math.nan


@njit(**NB_INNER)
def beyond_nb(side, price, level):
    """Has the price reached a level adverse for this side (long: at or below)?  NaN: never."""
    if math.isnan(level):
        return False
    return price <= level if side > 0 else price >= level
