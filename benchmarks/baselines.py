"""What the kernel is measured against.

* ``speed_of_light``: the least work of the same model: at every intrabar point, each
  position's equity and maintenance margin (tier search), counting breaches.  Same
  loop structure as the kernel (points outermost, ``prange`` over blocks of accounts).
* ``numpy_cross_check``: a naive numpy vectorisation of the cross-MMR check: a
  Python loop over points, each a handful of whole-array operations over all positions.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from riskcore.kernels.options import NB, NB_PARALLEL


@njit(**NB)
def _sol_block_nb(bk, ct, px, a0, a1):
    breaches = 0
    for a in range(a0, a1):
        equity_x = bk.acc_wallet[a]
        mm_x = 0.0
        for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
            c = bk.s_contract[p]
            qty = bk.s_qty[p]
            price = px[c]
            notional = qty * price
            upnl = bk.s_side[p] * qty * (price - bk.s_entry[p])
            i = 0
            while i < ct.n_tiers[c] - 1 and ct.cap[c, i] < notional:
                i += 1
            mm = notional * ct.mmr[c, i] - ct.cum[c, i]
            if bk.set_mode[a, c] == 1:
                if bk.s_wiso[p] + upnl <= mm:
                    breaches += 1
            else:
                equity_x += upnl
                mm_x += mm
        if equity_x <= mm_x:
            breaches += 1
    return breaches


@njit(**NB_PARALLEL)
def _sol_point_nb(bk, ct, px, block, out):
    n_acc = bk.acc_wallet.size
    n_blocks = out.size
    for b in prange(n_blocks):
        out[b] += _sol_block_nb(bk, ct, px, b * block, min(n_acc, b * block + block))


@njit(**NB)
def speed_of_light_nb(bk, ct, ohlc, block):
    """Equity and MM of every position at every point of the ``ohlc`` model; returns breaches."""
    n_blocks = (bk.acc_wallet.size + block - 1) // block
    out = np.zeros(n_blocks, np.int64)
    px = np.empty(ohlc.shape[1])
    for t in range(ohlc.shape[0]):
        for k in range(4):
            for c in range(ohlc.shape[1]):
                o, h, lo, cl = ohlc[t, c, 0], ohlc[t, c, 1], ohlc[t, c, 2], ohlc[t, c, 3]
                up = cl >= o
                px[c] = o if k == 0 else ((lo if up else h) if k == 1 else ((h if up else lo) if k == 2 else cl))
            _sol_point_nb(bk, ct, px, block, out)
    return out.sum()


def numpy_cross_check(bk, ct, ohlc) -> int:
    """The cross check of every account at every ``ohlc`` point, vectorised over positions."""
    n_acc = bk.acc_wallet.size
    owner = np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0))
    cross = bk.set_mode[owner, bk.s_contract] == 0
    contract = bk.s_contract[cross]
    qty, side, entry = bk.s_qty[cross], bk.s_side[cross].astype(np.float64), bk.s_entry[cross]
    who = owner[cross]
    breaches = 0
    for t in range(ohlc.shape[0]):
        o, h, lo, cl = (ohlc[t, :, i] for i in range(4))
        up = cl >= o
        for px in (o, np.where(up, lo, h), np.where(up, h, lo), cl):
            price = px[contract]
            notional = qty * price
            upnl = side * qty * (price - entry)
            tier = np.empty(contract.size, np.int64)
            for c in range(ohlc.shape[1]):
                m = contract == c
                tier[m] = np.minimum(np.searchsorted(ct.cap[c, :ct.n_tiers[c]], notional[m]), ct.n_tiers[c] - 1)
            mm = notional * ct.mmr[contract, tier] - ct.cum[contract, tier]
            excess = bk.acc_wallet + np.bincount(who, upnl - mm, minlength=n_acc)
            breaches += int(np.count_nonzero(excess <= 0.0))
    return breaches


def threads() -> int:
    return numba.get_num_threads()
