"""Margin formulas of MARGIN_RULES.md, for scalars or numpy arrays.

Every function broadcasts its array arguments and returns a float for all-scalar
input, an array otherwise.  Conventions: ``qty`` is the size in base units (>= 0),
``side`` is +1 long / -1 short (or "long"/"short"/"buy"/"sell"), prices are mark
prices unless named otherwise, and money is in the quote currency (USDT).

Prices that cannot occur are reported as NaN, never as a negative number: a long
that is backed by a wallet of at least its entry notional cannot be liquidated
nor go bankrupt.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from .brackets import Brackets
from .enums import parse_side

__all__ = [
    "account_imr", "account_mmr", "bankruptcy_price", "cross_liquidation_price",
    "free_balance", "initial_margin", "isolated_equity", "isolated_liquidation_price",
    "isolated_liquidation_price_one", "maintenance_margin", "margin_balance", "max_addable_margin",
    "max_removable_margin",
    "unrealized_pnl",
]


def _out(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _sides(side) -> np.ndarray:
    """Side(s) as a float array of +1/-1."""
    if isinstance(side, (str, int, np.integer, bool, np.bool_)):
        return np.asarray(float(parse_side(side)))
    arr = np.asarray(side)
    if arr.dtype.kind == "b":
        raise ValueError(f"side must be +1 (long) or -1 (short), not a boolean: {side!r}")
    if arr.dtype.kind in "OUS":
        return np.vectorize(lambda v: float(parse_side(v)), otypes=[np.float64])(arr)
    arr = arr.astype(np.float64)
    if not np.all((arr == 1.0) | (arr == -1.0)):
        bad = arr[(arr != 1.0) & (arr != -1.0)].ravel()[:3]
        raise ValueError(f"side must be +1 (long) or -1 (short); got {bad.tolist()}")
    return arr


def _floats(**named):
    out = []
    for name, value in named.items():
        arr = np.asarray(value, dtype=np.float64)
        out.append(arr)
    return out


def _non_negative(name: str, arr: np.ndarray) -> None:
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0; got {arr[arr < 0].ravel()[:3].tolist()}")


def unrealized_pnl(side, qty, entry_price, mark_price):
    """``side * qty * (mark - entry)``."""
    s = _sides(side)
    q, ep, mp = _floats(qty=qty, entry_price=entry_price, mark_price=mark_price)
    _non_negative("qty", q)
    return _out(s * q * (mp - ep))


def maintenance_margin(notional, brackets: Brackets):
    """``notional * mmr - cum`` with the tier holding the notional (section 2)."""
    return _out(brackets.maintenance_margin(notional))


def initial_margin(notional, leverage):
    """``notional / leverage``."""
    n, lev = _floats(notional=notional, leverage=leverage)
    if np.any(~(lev > 0)):
        raise ValueError(f"leverage must be > 0; got {lev[~(lev > 0)].ravel()[:3].tolist()}")
    return _out(n / lev)


def isolated_equity(side, qty, entry_price, wallet, mark_price):
    """Isolated equity ``WB_iso + side * qty * (mark - entry)`` (section 3)."""
    return _out(np.asarray(wallet, dtype=np.float64) + unrealized_pnl(side, qty, entry_price, mark_price))


def isolated_liquidation_price(side, qty, entry_price, wallet, brackets: Brackets, mm_basis: str = "mark"):
    """Mark price at which an isolated position's equity equals its maintenance margin (section 3).

    ``mm_basis="mark"`` (default) charges MM on the notional at the liquidation price:
    ``LP = (WB_iso + cum - side*Q*EP) / (Q*mmr - side*Q)`` with the tier whose band holds
    ``Q*LP``.  ``mm_basis="entry"`` charges it on the entry notional, as Bybit does:
    ``LP = EP - side * (WB_iso - MM(Q*EP)) / Q``.  NaN where the position cannot be
    liquidated (the price would be <= 0) or is empty.
    """
    s = _sides(side)
    q, ep, w = _floats(qty=qty, entry_price=entry_price, wallet=wallet)
    _non_negative("qty", q)
    s, q, ep, w = np.broadcast_arrays(s, q, ep, w)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if mm_basis == "entry":
            lp = ep - s * (w - brackets.maintenance_margin(q * ep)) / q
        elif mm_basis == "mark":
            lp = _lp_mark_basis(s, q, ep, w, brackets)
        else:
            raise ValueError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")
        lp = np.where((q > 0) & (lp > 0) & np.isfinite(lp), lp, np.nan)
    return _out(lp)


def _lp_mark_basis(s, q, ep, w, brackets: Brackets):
    # f(P) = W + s*Q*(P - EP) - MM(Q*P) is monotone in P (increasing for a long, decreasing
    # for a short, because mmr < 1).  Its sign at the tier edges P_k = cap_k / Q tells
    # which tier holds the root; the root then follows from that tier's linear piece.
    caps = brackets.notional_cap[:-1]
    edge_mm = caps * brackets.mmr[:-1] - brackets.cum[:-1]
    qq = q[..., None]
    f_edges = w[..., None] + s[..., None] * (caps - qq * ep[..., None]) - edge_mm
    below = np.where(s[..., None] > 0, f_edges < 0, f_edges > 0)
    k = below.sum(axis=-1)
    rate, cum = brackets.mmr[k], brackets.cum[k]
    return (w + cum - s * q * ep) / (q * rate - s * q)


def isolated_liquidation_price_one(side: int, qty: float, entry_price: float, wallet: float, brackets: Brackets,
                                   mm_basis: str = "mark") -> float:
    """:func:`isolated_liquidation_price` for one position, in plain Python floats (the
    simulators call it in their inner loops).  Same operations, same results."""
    if not qty > 0.0:
        return math.nan
    if mm_basis == "entry":
        notional = qty * entry_price
        k = min(bisect.bisect_left(brackets._caps, notional), len(brackets._caps) - 1)
        lp = entry_price - side * (wallet - (notional * brackets._rates[k] - brackets._cums[k])) / qty
    else:
        k = 0
        for cap, edge_mm in zip(brackets._caps[:-1], brackets._edge_mm):
            f_edge = wallet + side * (cap - qty * entry_price) - edge_mm
            if (f_edge < 0.0) if side > 0 else (f_edge > 0.0):
                k += 1
        denominator = qty * brackets._rates[k] - side * qty
        lp = (wallet + brackets._cums[k] - side * qty * entry_price) / denominator
    return lp if (lp > 0.0 and math.isfinite(lp)) else math.nan


def bankruptcy_price(side, qty, entry_price, wallet):
    """Mark price at which equity is zero: ``EP - side * WB / Q``; NaN if it would be <= 0."""
    s = _sides(side)
    q, ep, w = _floats(qty=qty, entry_price=entry_price, wallet=wallet)
    _non_negative("qty", q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bp = ep - s * w / q
        bp = np.where((q > 0) & (bp > 0) & np.isfinite(bp), bp, np.nan)
    return _out(bp)


def margin_balance(wallet, unrealized_pnl):
    """Cross margin balance ``MB = cross wallet + sum of cross uPnL`` (section 4)."""
    w, u = _floats(wallet=wallet, unrealized_pnl=unrealized_pnl)
    return _out(w + u)


def _ratio(need, balance):
    need, balance = np.broadcast_arrays(*_floats(need=need, balance=balance))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(balance > 0, need / balance, np.inf)
        r = np.where(need == 0, 0.0, r)  # nothing to margin: no ratio to breach
        r = np.where(np.isnan(balance) | np.isnan(need), np.nan, r)
    return _out(r)


def account_mmr(maintenance, margin_balance):
    """Account maintenance margin ratio ``MM_x / MB``; infinite when MB <= 0, 0 with no
    maintenance margin at all.

    The cross book liquidates when it reaches 1 (100%)."""
    return _ratio(maintenance, margin_balance)


def account_imr(initial, margin_balance):
    """Account initial margin ratio ``IM_x / MB``; infinite when MB <= 0, 0 with nothing to margin."""
    return _ratio(initial, margin_balance)


def free_balance(cross_wallet, cross_unrealized_pnl, cross_initial_margin, order_margin):
    """What top-ups, manual additions, new orders and withdrawals may draw on (section 3):
    ``cross wallet + cross uPnL - cross IM (at mark) - margin held by resting orders``, floored at 0."""
    w, u, im, om = _floats(cross_wallet=cross_wallet, cross_unrealized_pnl=cross_unrealized_pnl,
                           cross_initial_margin=cross_initial_margin, order_margin=order_margin)
    return _out(np.maximum(0.0, w + u - im - om))


def max_addable_margin(free_balance):
    """Most isolated margin one can add: the free balance (never negative)."""
    return _out(np.maximum(0.0, np.asarray(free_balance, dtype=np.float64)))


def max_removable_margin(side, qty, entry_price, wallet, mark_price, leverage):
    """Most isolated margin one can remove (section 3):
    ``max(0, min(WB_iso, WB_iso + side*Q*(MP - EP) - Q*MP/L))``."""
    s = _sides(side)
    q, ep, w, mp, lev = _floats(qty=qty, entry_price=entry_price, wallet=wallet,
                                mark_price=mark_price, leverage=leverage)
    _non_negative("qty", q)
    if np.any(~(lev > 0)):
        raise ValueError(f"leverage must be > 0; got {lev[~(lev > 0)].ravel()[:3].tolist()}")
    return _out(np.maximum(0.0, np.minimum(w, w + s * q * (mp - ep) - q * mp / lev)))


def cross_liquidation_price(wallet, brackets: Brackets, *, side=1, qty=0.0, entry_price=0.0,
                            long_qty=0.0, long_entry_price=0.0, short_qty=0.0, short_entry_price=0.0,
                            other_maintenance=0.0, other_unrealized_pnl=0.0):
    """Binance's cross liquidation price of one contract, the rest of the account held at mark.

    Solves, for the contract's mark price ``P``, the account-level condition margin
    balance = maintenance margin (section 4)::

        WB - TMM + UPNL + sum_i side_i*Q_i*(P - EP_i) = sum_i (Q_i*P*mmr_i - cum_i)

    over the contract's positions ``i``: the one-way position (``side``, ``qty``,
    ``entry_price``) and/or the hedge legs (``long_qty``/``long_entry_price``,
    ``short_qty``/``short_entry_price``).  ``wallet`` is the cross wallet; ``other_maintenance``
    (TMM) and ``other_unrealized_pnl`` (UPNL) are those of the account's other cross
    contracts at their marks.  Each position's tier is the one holding its notional at
    ``P``, as with the isolated price.

    With a net long exposure the price returned is the one the mark reaches falling;
    net short or flat, the one it reaches rising.  NaN where no positive price
    satisfies the condition in that direction.
    """
    s = _sides(side)
    args = np.broadcast_arrays(*_floats(
        wallet=wallet, side=s, qty=qty, entry_price=entry_price, long_qty=long_qty,
        long_entry_price=long_entry_price, short_qty=short_qty, short_entry_price=short_entry_price,
        other_maintenance=other_maintenance, other_unrealized_pnl=other_unrealized_pnl))
    for name, arr in (("qty", args[2]), ("long_qty", args[4]), ("short_qty", args[6])):
        _non_negative(name, arr)
    flat = [a.ravel() for a in args]
    out = np.empty(flat[0].size)
    for i in range(out.size):
        wb, sd, qb, epb, ql, epl, qs, eps, tmm, upnl = (a[i] for a in flat)
        positions = [(sd, qb, epb), (1.0, ql, epl), (-1.0, qs, eps)]
        out[i] = _cross_lp_one(wb - tmm + upnl, [p for p in positions if p[1] > 0], brackets)
    return _out(out.reshape(args[0].shape))


def _cross_lp_one(base: float, positions, brackets: Brackets) -> float:
    """Root of ``f(P) = base + sum s*Q*(P - EP) - sum MM(Q*P)`` in the adverse direction.

    ``f`` is linear between the prices where some position crosses a tier edge and
    concave overall (mmr rises with notional), so it has at most one rising and one
    falling root; each linear piece is solved in turn.
    """
    if not positions:
        return float("nan")
    net = sum(s * q for s, q, _ in positions)
    edges = sorted({cap / q for _, q, _ in positions for cap in brackets.notional_cap[:-1]})
    bounds = [0.0] + edges + [float("inf")]
    want_rising = net > 0
    const = base - sum(s * q * ep for s, q, ep in positions)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        # Probe inside the piece: at an edge, rounding could put a position in the next tier.
        probe = 0.5 * (lo + hi) if np.isfinite(hi) else (lo * 2.0 if lo > 0 else 1.0)
        alpha, beta = const, 0.0
        for s, q, _ in positions:
            k = brackets.tier_index(q * probe)
            alpha += brackets.cum[k]
            beta += s * q - q * brackets.mmr[k]
        if beta == 0.0 or (beta > 0) != want_rising:
            continue
        root = -alpha / beta
        if lo <= root <= hi and root > 0:
            return float(root)
    return float("nan")
