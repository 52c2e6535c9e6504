"""Sleeping accounts: how long an account is sure to stay quiet, so no point looks at it.

At the end of every bar in which an account was looked at, :func:`wake_bar_nb` works out
a price band per contract it holds (a position, or a resting order) inside which nothing
can happen to it, and the first later bar whose intrabar points leave one of its bands.
Until that bar the scan of :func:`riskcore.kernels.step_nb.scan_block_nb` skips it
without reading its positions.

The bands are the account's own quiet conditions (``scan_block_nb``), made into
price thresholds:

* a resting buy (sell) limit at ``P``: every point above (below) ``P``;
* a long's stop-loss and a short's take-profit: above; a long's take-profit and a
  short's stop-loss: below; an isolated long's cached liquidation price: above, a
  short's: below;
* the cross book: its excess ``E = wallet + sum(uPnL) - sum(MM)`` at the bar's close is
  shared out between the contracts it holds.  A move of ``d`` in contract ``c``'s price
  changes the excess by at most ``d * L_c``, with ``L_c = sum(qty * (1 + highest mmr))``
  over the cross positions on ``c`` (uPnL moves by ``qty`` per unit of price, the
  maintenance margin by at most ``qty * mmr``, and is continuous across tiers up to the
  table's rounding, ``jump``).  So while each price stays within
  ``(E - 2 tol) / (n_contracts * L_c)`` of the close, the excess stays above zero.
  ``tol`` covers the rounding of both sums (``1e-9`` of the money in the sums).

Nothing else changes an account between the points it is looked at: funding bars look
at every account, the serial phase wakes every account it touches (liquidated, in
deficit, or an ADL counterparty), a tape action wakes the account it changed, and a
funding bar with tape actions wakes every account.  The bands are conservative, so a woken account may still turn out quiet; it is
then simply looked at, as without sleeping, and the run's result is the same.

``first_exit_nb`` finds the bar with a two-level summary of the path (the extreme
points of every 64 and every 4,096 bars), so a long sleep costs a few dozen reads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .enums import MARGIN_ISOLATED, Intrabar, SlotState
from .options import NB, NB_INNER

L1 = 6  # log2 of the bars summarised by one first-level entry
L2 = 12  # ... by one second-level entry
TOL = 1e-9  # relative rounding allowance of the cross excess


@njit(**NB)
def levels_nb(ohlc, intrabar, lo, hi, l1_lo, l1_hi, l2_lo, l2_hi):
    """Fill the lowest and highest point of every bar (both views, the model's points
    only: the closes under ``close``) and their summaries over 64 and 4,096 bars."""
    n_t, n_c = ohlc.shape[0], ohlc.shape[1]
    for t in range(n_t):
        for c in range(n_c):
            if intrabar == Intrabar.CLOSE:
                lo[t, c] = ohlc[t, c, 3]
                hi[t, c] = ohlc[t, c, 3]
            else:
                o, h, low, cl = ohlc[t, c, 0], ohlc[t, c, 1], ohlc[t, c, 2], ohlc[t, c, 3]
                lo[t, c] = min(min(o, cl), low)
                hi[t, c] = max(max(o, cl), h)
    l1_lo[:, :] = math.inf
    l1_hi[:, :] = -math.inf
    l2_lo[:, :] = math.inf
    l2_hi[:, :] = -math.inf
    for t in range(n_t):
        j1 = t >> L1
        j2 = t >> L2
        for c in range(n_c):
            l1_lo[j1, c] = min(l1_lo[j1, c], lo[t, c])
            l1_hi[j1, c] = max(l1_hi[j1, c], hi[t, c])
            l2_lo[j2, c] = min(l2_lo[j2, c], lo[t, c])
            l2_hi[j2, c] = max(l2_hi[j2, c], hi[t, c])


@njit(**NB_INNER)
def first_exit_nb(lv, c, u, lo, hi):
    """The first bar from ``u`` on with a point of contract ``c`` at or below ``lo`` or at or
    above ``hi``; the number of bars when there is none."""
    n_t = lv.pt_lo.shape[0]
    while u < n_t:
        if (u & ((1 << L2) - 1)) == 0:
            j = u >> L2
            if lv.l2_lo[j, c] > lo and lv.l2_hi[j, c] < hi:
                u += 1 << L2
                continue
        if (u & ((1 << L1) - 1)) == 0:
            j = u >> L1
            if lv.l1_lo[j, c] > lo and lv.l1_hi[j, c] < hi:
                u += 1 << L1
                continue
        if lv.pt_lo[u, c] <= lo or lv.pt_hi[u, c] >= hi:
            return u
        u += 1
    return n_t


@njit(**NB)
def wake_bar_nb(bk, ct, lv, band, a, t, cur, env):
    """The first bar after ``t`` at which account ``a`` may not be quiet (module docstring).
    ``cur``: the prices of bar ``t``'s last point; ``band``: ``[n_contracts, 3]`` scratch;
    ``env``: per contract, the lowest and highest multiplier of the path's prices the mark
    may take until every account is woken (``MarkState.env``; 1 and 1 without market
    impact).  The bands, in mark prices, become bands of the path's prices that hold for
    every multiplier in ``env``."""
    n_c = band.shape[0]
    for c in range(n_c):
        band[c, 0] = -math.inf
        band[c, 1] = math.inf
        band[c, 2] = 0.0
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if bk.o_live[i]:
            c = np.int64(bk.o_contract[i])
            if bk.o_side[i] > 0:
                band[c, 0] = max(band[c, 0], bk.o_price[i])
            else:
                band[c, 1] = min(band[c, 1], bk.o_price[i])
    wallet = bk.acc_wallet[a]
    excess = wallet
    scale = abs(wallet)
    jumps = 0.0
    n_cross = 0
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] != SlotState.LIVE:
            continue
        c = np.int64(bk.s_contract[p])
        side = np.int64(bk.s_side[p])
        below, above = (bk.s_sl[p], bk.s_tp[p]) if side > 0 else (bk.s_tp[p], bk.s_sl[p])
        if not math.isnan(below):
            band[c, 0] = max(band[c, 0], below)
        if not math.isnan(above):
            band[c, 1] = min(band[c, 1], above)
        if bk.set_mode[a, c] == MARGIN_ISOLATED:
            lp = bk.s_lp[p]
            if not math.isnan(lp):
                if side > 0:
                    band[c, 0] = max(band[c, 0], lp)
                else:
                    band[c, 1] = min(band[c, 1], lp)
        else:
            n_cross += 1
            qty = bk.s_qty[p]
            now = cur[c, 0 if side > 0 else 1]
            notional = qty * now
            nt = ct.n_tiers[c]
            i = 0
            while i < nt - 1 and ct.cap[c, i] < notional:
                i += 1
            mm = notional * ct.mmr[c, i] - ct.cum[c, i]
            excess += side * qty * (now - bk.s_entry[p])
            excess -= mm
            scale += abs(notional) + abs(qty * bk.s_entry[p]) + abs(mm) + abs(ct.cum[c, i])
            jumps += lv.jump[c]  # every boundary crossed, at worst
            band[c, 2] += qty * (1.0 + lv.mmr_max[c])
    if n_cross == 0:
        if wallet < 0.0:
            return t + 1
    else:
        room = excess - 2.0 * (TOL * scale + jumps)
        if not (room > 0.0):
            return t + 1
        n_held = 0
        for c in range(n_c):
            if band[c, 2] > 0.0:
                n_held += 1
        for c in range(n_c):
            if band[c, 2] > 0.0:
                d = room / (n_held * band[c, 2])
                band[c, 0] = max(band[c, 0], max(cur[c, 0], cur[c, 1]) - d)
                band[c, 1] = min(band[c, 1], min(cur[c, 0], cur[c, 1]) + d)
    wake = lv.pt_lo.shape[0]
    for c in range(n_c):
        if band[c, 0] == -math.inf and band[c, 1] == math.inf:
            continue
        lo = band[c, 0]
        hi = band[c, 1]
        if env[c, 0] != 1.0 or env[c, 1] != 1.0:  # rounding: the product path * m must stay inside too
            lo = lo / env[c, 0] * (1.0 + 1e-12)
            hi = hi / env[c, 1] * (1.0 - 1e-12)
        wake = min(wake, first_exit_nb(lv, c, t + 1, lo, hi))
    return wake


def contract_levels(ct) -> tuple:
    """Per contract: the highest mmr of its table and the sum of the jumps of its maintenance
    margin at the tier boundaries (about 0 for a table whose cum follows the continuity
    rule), with an allowance for the rounding of each boundary's two sides."""
    n_c = ct.n_tiers.size
    mmr_max = np.zeros(n_c)
    jump = np.zeros(n_c)
    for c in range(n_c):
        n = int(ct.n_tiers[c])
        mmr_max[c] = float(np.max(ct.mmr[c, :n]))
        for i in range(n - 1):
            cap = ct.cap[c, i]
            below = cap * ct.mmr[c, i] - ct.cum[c, i]
            above = cap * ct.mmr[c, i + 1] - ct.cum[c, i + 1]
            jump[c] += abs(above - below) + 1e-9 * abs(cap)
    return mmr_max, jump
