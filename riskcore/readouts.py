"""Risk read-outs of a whole book, computed over its columnar tables.

:meth:`Book.positions_frame` and :meth:`Book.accounts_frame` walk the object model
one position at a time in Python.  The functions here compute the same numbers from
the book's tables (:data:`riskcore.table.SCHEMA`: :meth:`Book.to_frames`, or
:meth:`riskcore.table.BookTable.frames`) with numpy and a few numba kernels, without
building a :class:`~riskcore.book.Book`:

* :func:`position_readouts` -- ``Book.positions_frame()`` plus ``effective_leverage``;
* :func:`account_readouts` -- ``Book.accounts_frame()``;
* :func:`cross_liquidation_prices` -- ``Book.cross_liquidation_price`` and the cross
  bankruptcy price for every (account, contract) with cross positions;
* :func:`readouts` -- all three from one pass (the tables resolved once).

Each call runs in three phases: resolve and validate the tables (pandas: ids, symbols
and spellings become integer codes and float arrays), run the kernels (arrays only),
wrap the arrays as labelled frames (label columns -- contract, leg, margin and position
mode -- as Categoricals; account ids as given).  Every kernel names its twin in the Book:

==============================  ==========================================================
kernel                          twin (MARGIN_RULES.md section)
==============================  ==========================================================
:func:`position_metrics_nb`     ``Book._position_view``, ``margin.isolated_liquidation_price``,
                                ``margin.bankruptcy_price`` (sections 2, 3)
:func:`account_walk_nb`         ``Book._cross_totals``, ``Book.account_summary``,
                                ``Book.cross_liquidation_price``,
                                ``Book._cross_bankruptcy_price`` (section 4)
:func:`cross_lp_nb`             ``margin._cross_lp_one`` (section 4)
:func:`order_margin_nb`         ``Book._opening_orders``, ``Book._order_margin`` (section 5)
==============================  ==========================================================

The kernels perform the Book's float operations in the Book's order: sums run over
an account's positions in the positions table's order (the Book's insertion order,
which :meth:`Book.to_frames` preserves) starting from 0.0, orders are walked by
``order_id``, and each formula is written with the Book's association.  The results
are therefore bit-identical to the Book's read-outs for tables written by
:meth:`Book.to_frames`.

Inputs are checked as far as the read-outs need (tables and columns present, known
accounts and contracts, valid spellings, one position per (account, contract, leg),
one settings row per (account, contract), a usable mark for every contract with a
position); :meth:`BookTable.from_frames` validates everything else.  A position or order
without a settings row gets the defaults ``Book.settings`` reports (cross, the
book's default leverage capped by the first tier, auto-add off).  Every bad input
raises ``ValueError`` naming the table, column or contract.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numba import njit

from . import margin as fm
from .brackets import COLUMNS as BRACKET_COLUMNS, Brackets
from .checks import check_price
from .table import SCHEMA
from .enums import (LEG_NAMES, MARGIN_MODE_NAMES, POSITION_MODE_NAMES, Leg, MarginMode, parse_leg,
                    parse_margin_mode, parse_position_mode)
from .errors import BracketError
from .kernels.options import NB

__all__ = ["POSITION_COLUMNS", "ACCOUNT_COLUMNS", "CROSS_PRICE_COLUMNS", "position_readouts", "account_readouts",
           "cross_liquidation_prices", "readouts", "account_facts",
           "ACCOUNT_MODE_LABELS"]

#: Columns of :func:`position_readouts`: those of ``Book.positions_frame()`` and ``effective_leverage``.
POSITION_COLUMNS = [
    "account", "contract", "leg", "side", "qty", "entry_price", "margin_mode", "leverage", "mark_price",
    "notional", "unrealized_pnl", "maintenance_margin", "initial_margin", "wallet_iso",
    "liquidation_price", "bankruptcy_price", "auto_add_margin", "take_profit", "stop_loss",
    "effective_leverage",
]
#: Columns of :func:`account_readouts`: those of ``Book.accounts_frame()``.
ACCOUNT_COLUMNS = [
    "account", "position_mode", "wallet", "isolated_wallet", "cross_unrealized_pnl", "margin_balance",
    "maintenance_margin", "initial_margin", "order_margin", "mmr", "imr", "free_balance", "equity",
    "n_positions", "n_orders",
]
#: Columns of :func:`cross_liquidation_prices`.
CROSS_PRICE_COLUMNS = ["account", "contract", "liquidation_price", "bankruptcy_price"]

LEG_BOTH, LEG_LONG, LEG_SHORT = Leg.BOTH, Leg.LONG, Leg.SHORT
NAN = math.nan


# ============================================================================ kernels
@njit(**NB)
def tier_nb(n_tiers, cap, c, notional):
    """0-based tier of contract ``c`` whose band ``(floor, cap]`` holds ``notional``.

    The first cap >= notional, the last tier above every cap: ``Brackets.tier_index``
    (``np.searchsorted(cap, notional, "left")`` clipped).

    Parameters
    ----------
    n_tiers : int64 [n_contracts]
        Tiers of each contract.
    cap : float64 [n_contracts, max_tiers]
        Tier caps (quote currency), padded with +inf.
    c : int
        Contract index.
    notional : float
        Position notional (quote currency), >= 0.
    """
    last = n_tiers[c] - 1
    k = 0
    while k < last and cap[c, k] < notional:
        k += 1
    return k


@njit(**NB)
def position_metrics_nb(contract, side, qty, entry_px, wallet_iso, leverage, isolated, mark_px,
                        n_tiers, cap, mmr, cum, mm_entry):
    """Per-position read-outs at the marks (MARGIN_RULES.md sections 2 and 3).

    Twin of ``Book._position_view`` plus, for isolated positions,
    ``margin.isolated_liquidation_price`` and ``margin.bankruptcy_price``; same
    operations in the same order, so the same bits.

    Parameters
    ----------
    contract : int64 [n_positions]
        Contract index of each position.
    side : int64 [n_positions]
        +1 long, -1 short.
    qty : float64 [n_positions]
        Size in base units (> 0).
    entry_px : float64 [n_positions]
        Average entry price (quote per base unit).
    wallet_iso : float64 [n_positions]
        Isolated margin (quote currency; 0 under cross).
    leverage : float64 [n_positions]
        The position's leverage setting.
    isolated : bool [n_positions]
        Isolated margin (else cross).
    mark_px : float64 [n_contracts]
        Mark price of each contract (finite and > 0 where a position refers to it).
    n_tiers, cap, mmr, cum : int64 [n_contracts], float64 [n_contracts, max_tiers] x 3
        Bracket tables, padded (cap +inf, mmr and cum 0) beyond ``n_tiers``.
    mm_entry : bool
        Isolated liquidation price with maintenance margin on the entry notional
        (Bybit) instead of the notional at the liquidation price (the default).

    Returns
    -------
    notional, unrealized_pnl, maintenance_margin, initial_margin : float64 [n_positions]
        ``Q*MP``; ``side*Q*(MP - EP)``; ``Q*MP*mmr - cum`` of the tier holding ``Q*MP``;
        ``Q*MP/L`` (quote currency).
    liquidation_price, bankruptcy_price : float64 [n_positions]
        Isolated positions: ``(WB_iso + cum - side*Q*EP) / (Q*mmr - side*Q)`` with the
        tier holding the notional at that price (entry basis:
        ``EP - side*(WB_iso - MM(Q*EP))/Q``) and ``EP - side*WB_iso/Q``.  NaN where
        not finite and positive, and for cross positions (filled by
        :func:`account_walk_nb`).  Nothing is mutated.
    """
    n = qty.size
    notional = np.empty(n)
    upnl = np.empty(n)
    mm = np.empty(n)
    im = np.empty(n)
    lp = np.full(n, NAN)
    bp = np.full(n, NAN)
    for p in range(n):
        c = contract[p]
        s = float(side[p])
        q = qty[p]
        ep = entry_px[p]
        mp = mark_px[c]
        nt = q * mp
        notional[p] = nt
        upnl[p] = s * q * (mp - ep)
        k = tier_nb(n_tiers, cap, c, nt)
        mm[p] = nt * mmr[c, k] - cum[c, k]
        im[p] = nt / leverage[p]
        if not isolated[p]:
            continue
        w = wallet_iso[p]
        if mm_entry:
            ne = q * ep
            ke = tier_nb(n_tiers, cap, c, ne)
            price = ep - s * (w - (ne * mmr[c, ke] - cum[c, ke])) / q
        else:
            # f(P) = W + s*Q*(P - EP) - MM(Q*P) is monotone; its sign at each tier edge tells the tier.
            k = 0
            for j in range(n_tiers[c] - 1):
                edge = cap[c, j]
                f_edge = w + s * (edge - q * ep) - (edge * mmr[c, j] - cum[c, j])
                if (f_edge < 0.0) if s > 0 else (f_edge > 0.0):
                    k += 1
            price = (w + cum[c, k] - s * q * ep) / (q * mmr[c, k] - s * q)
        if q > 0.0 and price > 0.0 and math.isfinite(price):
            lp[p] = price
        price = ep - s * w / q
        if q > 0.0 and price > 0.0 and math.isfinite(price):
            bp[p] = price
    return notional, upnl, mm, im, lp, bp


@njit(**NB)
def cross_lp_nb(base, n_pos, sides, qtys, entries, c, n_tiers, cap, mmr, cum, scratch):
    """Cross liquidation price of one contract (MARGIN_RULES.md section 4).

    Twin of ``margin._cross_lp_one``: the root of
    ``f(P) = base + sum s*Q*(P - EP) - sum MM(Q*P)`` in the adverse direction (the
    price reached falling when the net exposure is long, rising otherwise), solved
    piece by piece between the prices where some position crosses a tier edge.

    Parameters
    ----------
    base : float
        ``WB - TMM + UPNL``: cross wallet minus the other cross contracts' maintenance
        margin plus their unrealized PnL (quote currency).
    n_pos : int
        Number of positions of the contract (1 to 3) in ``sides[:n_pos]`` ...
    sides, qtys, entries : float64 [3]
        Side (+1/-1), size (base units) and entry price of the one-way position and/or
        the long and the short hedge leg, in that order.
    c : int
        Contract index into the bracket arrays ``n_tiers, cap, mmr, cum`` (as in
        :func:`position_metrics_nb`).
    scratch : float64 [>= 3 * (max_tiers - 1) + 2]
        Work space for the sorted tier-edge prices (overwritten).

    Returns
    -------
    float
        The price; NaN where no positive price solves the condition in that direction.
    """
    if n_pos == 0:
        return NAN
    net = 0.0
    for i in range(n_pos):
        net += sides[i] * qtys[i]
    # bounds = [0] + sorted set of cap/Q over positions and inner caps + [inf]
    n_edges = 0
    for i in range(n_pos):
        for j in range(n_tiers[c] - 1):
            x = cap[c, j] / qtys[i]
            at = n_edges  # insertion sort into scratch[1:]
            while at > 0 and scratch[at] > x:
                scratch[at + 1] = scratch[at]
                at -= 1
            scratch[at + 1] = x
            n_edges += 1
    n_bounds = 1
    scratch[0] = 0.0
    for i in range(1, n_edges + 1):
        if i == 1 or scratch[i] != scratch[n_bounds - 1]:
            scratch[n_bounds] = scratch[i]
            n_bounds += 1
    scratch[n_bounds] = np.inf
    n_bounds += 1
    want_rising = net > 0
    total = 0.0
    for i in range(n_pos):
        total += sides[i] * qtys[i] * entries[i]
    const = base - total
    for b in range(n_bounds - 1):
        lo = scratch[b]
        hi = scratch[b + 1]
        if math.isfinite(hi):
            probe = 0.5 * (lo + hi)
        else:
            probe = lo * 2.0 if lo > 0 else 1.0
        alpha = const
        beta = 0.0
        for i in range(n_pos):
            k = tier_nb(n_tiers, cap, c, qtys[i] * probe)
            alpha += cum[c, k]
            beta += sides[i] * qtys[i] - qtys[i] * mmr[c, k]
        if beta == 0.0 or (beta > 0) != want_rising:
            continue
        root = -alpha / beta
        if lo <= root and root <= hi and root > 0:
            return root
    return NAN


@njit(**NB)
def account_walk_nb(pos_start, pos_order, contract, leg, side, qty, entry_px, wallet_iso, isolated,
                    upnl, mm, im, wallet, n_tiers, cap, mmr, cum, lp, bp, with_prices):
    """Account totals and cross liquidation/bankruptcy prices (MARGIN_RULES.md section 4).

    Twin of ``Book._cross_totals``, the position sums of ``Book.account_summary``,
    ``Book.cross_liquidation_price`` and ``Book._cross_bankruptcy_price``.  Each
    account's positions are visited in the positions table's order, so every sum
    adds the same terms in the same order as the Book (from 0.0).  The prices of a
    cross contract use the other cross contracts' MM and uPnL summed the same way
    (not the total minus the contract's own, which would round differently).

    Parameters
    ----------
    pos_start : int64 [n_accounts + 1]
        Account ``a``'s positions are ``pos_order[pos_start[a]:pos_start[a + 1]]``.
    pos_order : int64 [n_positions]
        Position rows grouped by account, in table order within an account.
    contract, leg, side : int64 [n_positions]
        Contract index, leg code (0 both, 1 long, 2 short), side (+1/-1).
    qty, entry_px, wallet_iso : float64 [n_positions]
        Size (base units), entry price, isolated margin (quote).
    isolated : bool [n_positions]
        Isolated margin (else cross).
    upnl, mm, im : float64 [n_positions]
        From :func:`position_metrics_nb` (quote currency).
    wallet : float64 [n_accounts]
        Cross wallet of each account (quote currency).
    n_tiers, cap, mmr, cum :
        Bracket tables as in :func:`position_metrics_nb`.
    lp, bp : float64 [n_positions]
        Mutated: the cross contract's liquidation and bankruptcy prices are written
        into each of its positions (isolated rows are left as they are).
    with_prices : bool
        Solve the cross prices (else only the totals; ``lp``, ``bp``, ``first`` untouched).

    Returns
    -------
    cross_upnl, cross_mm, cross_im, iso_wallet, iso_equity : float64 [n_accounts]
        Sums over cross positions of uPnL, MM, IM; sum of every position's
        ``wallet_iso``; sum over isolated positions of ``max(0, wallet_iso + uPnL)``.
    first : bool [n_positions]
        True on the first position (in table order) of each (account, cross contract).
    """
    n_acc = wallet.size
    cross_upnl = np.zeros(n_acc)
    cross_mm = np.zeros(n_acc)
    cross_im = np.zeros(n_acc)
    iso_wallet = np.zeros(n_acc)
    iso_equity = np.zeros(n_acc)
    first = np.zeros(qty.size, np.bool_)
    sides = np.zeros(3)
    qtys = np.zeros(3)
    entries = np.zeros(3)
    scratch = np.empty(3 * cap.shape[1] + 2)
    for a in range(n_acc):
        s0 = pos_start[a]
        s1 = pos_start[a + 1]
        u = 0.0
        m = 0.0
        i_m = 0.0
        iw = 0.0
        ie = 0.0
        for j in range(s0, s1):
            p = pos_order[j]
            iw += wallet_iso[p]
            if isolated[p]:
                x = wallet_iso[p] + upnl[p]
                ie += x if x > 0.0 else 0.0
            else:
                u += upnl[p]
                m += mm[p]
                i_m += im[p]
        cross_upnl[a] = u
        cross_mm[a] = m
        cross_im[a] = i_m
        iso_wallet[a] = iw
        iso_equity[a] = ie
        if not with_prices:
            continue
        for j in range(s0, s1):
            p = pos_order[j]
            if isolated[p]:
                continue
            c = contract[p]
            seen = False
            for j2 in range(s0, j):
                p2 = pos_order[j2]
                if contract[p2] == c and not isolated[p2]:
                    seen = True
                    break
            if seen:
                continue
            first[p] = True
            other_upnl = 0.0
            other_mm = 0.0
            net = 0.0
            const = 0.0
            has_both = False
            has_long = False
            has_short = False
            s_both = 1.0
            q_both = 0.0
            e_both = 0.0
            q_long = 0.0
            e_long = 0.0
            q_short = 0.0
            e_short = 0.0
            for j2 in range(s0, s1):
                p2 = pos_order[j2]
                if contract[p2] == c:
                    sq = float(side[p2]) * qty[p2]
                    net += sq
                    const += sq * entry_px[p2]
                    if leg[p2] == LEG_BOTH:
                        has_both = True
                        s_both = float(side[p2])
                        q_both = qty[p2]
                        e_both = entry_px[p2]
                    elif leg[p2] == LEG_LONG:
                        has_long = True
                        q_long = qty[p2]
                        e_long = entry_px[p2]
                    else:
                        has_short = True
                        q_short = qty[p2]
                        e_short = entry_px[p2]
                elif not isolated[p2]:
                    other_upnl += upnl[p2]
                    other_mm += mm[p2]
            # margin.cross_liquidation_price: positions (one-way, long leg, short leg) with Q > 0
            n_pos = 0
            if has_both and q_both > 0:
                sides[n_pos] = s_both
                qtys[n_pos] = q_both
                entries[n_pos] = e_both
                n_pos += 1
            if has_long and q_long > 0:
                sides[n_pos] = 1.0
                qtys[n_pos] = q_long
                entries[n_pos] = e_long
                n_pos += 1
            if has_short and q_short > 0:
                sides[n_pos] = -1.0
                qtys[n_pos] = q_short
                entries[n_pos] = e_short
                n_pos += 1
            w = wallet[a]
            price_lp = cross_lp_nb(w - other_mm + other_upnl, n_pos, sides, qtys, entries, c,
                                   n_tiers, cap, mmr, cum, scratch)
            price_bp = NAN
            if net != 0.0:
                price_bp = (const - w - other_upnl) / net
                if not price_bp > 0:
                    price_bp = NAN
            for j2 in range(s0, s1):
                p2 = pos_order[j2]
                if contract[p2] == c and not isolated[p2]:
                    lp[p2] = price_lp
                    bp[p2] = price_bp
    return cross_upnl, cross_mm, cross_im, iso_wallet, iso_equity, first


@njit(**NB)
def order_margin_nb(ord_start, order_rows, order_id, contract, leg, side, qty, price, reduce_only, leverage,
                    against_qty, n_contracts):
    """Initial margin held by each account's resting orders (MARGIN_RULES.md section 5).

    Twin of ``Book._opening_orders`` and ``Book._order_margin``.  Each account's
    orders are walked by ascending ``order_id``; an order holds
    ``opening * price / leverage`` where ``opening`` is: 0 for a reduce-only order; 0
    for a hedge order that closes its leg (a sell on the long leg, a buy on the short
    leg), else its quantity; for a one-way order, its quantity less the part of an
    opposite position not yet claimed by earlier one-way orders of the same contract
    and side.

    Parameters
    ----------
    ord_start : int64 [n_accounts + 1]
        Account ``a``'s orders are ``order_rows[ord_start[a]:ord_start[a + 1]]``.
    order_rows : int64 [n_orders]
        Order rows grouped by account (any order within an account: the kernel sorts a
        copy by ``order_id``, stably).
    order_id : int64 [n_orders]
    contract, leg, side : int64 [n_orders]
        Contract index, leg code (0 both, 1 long, 2 short), +1 buy / -1 sell.
    qty, price : float64 [n_orders]
        Quantity (base units) and limit price.
    reduce_only : bool [n_orders]
    leverage : float64 [n_orders]
        Leverage of the order's (account, contract, leg).
    against_qty : float64 [n_orders]
        One-way orders: the size of the account's position on the contract when it is
        on the other side (0 when flat or on the same side); ignored otherwise.
    n_contracts : int

    Returns
    -------
    float64 [n_accounts]
        Order margin (quote currency), summed in ``order_id`` order from 0.0.  Nothing
        is mutated.
    """
    n_acc = ord_start.size - 1
    out = np.zeros(n_acc)
    rows = order_rows.copy()
    owner = np.full(2 * n_contracts, -1, np.int64)  # which account set remaining[key]
    remaining = np.zeros(2 * n_contracts)
    for a in range(n_acc):
        s0 = ord_start[a]
        s1 = ord_start[a + 1]
        if s1 - s0 > 32:
            seg = rows[s0:s1].copy()
            rank = np.argsort(order_id[seg], kind="mergesort")
            for i in range(seg.size):
                rows[s0 + i] = seg[rank[i]]
        else:  # insertion sort, stable
            for i in range(s0 + 1, s1):
                moving = rows[i]
                at = i
                while at > s0 and order_id[rows[at - 1]] > order_id[moving]:
                    rows[at] = rows[at - 1]
                    at -= 1
                rows[at] = moving
        total = 0.0
        for j in range(s0, s1):
            o = rows[j]
            q = qty[o]
            if reduce_only[o]:
                opening = 0.0
            elif leg[o] == LEG_BOTH:
                key = 2 * contract[o] + (1 if side[o] > 0 else 0)
                if owner[key] != a:
                    owner[key] = a
                    remaining[key] = against_qty[o]
                r = remaining[key]
                used = r if r <= q else q
                remaining[key] = r - used
                opening = q - used
            elif (leg[o] == LEG_LONG and side[o] < 0) or (leg[o] == LEG_SHORT and side[o] > 0):
                opening = 0.0
            else:
                opening = q
            total += opening * price[o] / leverage[o]
        out[a] = total
    return out


@njit(**NB)
def dense_index_nb(keys, lo, span):
    """Dense look-up table of int keys: ``table[key - lo]`` = the key's row (-1: none).

    Parameters
    ----------
    keys : int64 [n]
        Keys, all in ``[lo, lo + span)``.
    lo, span : int

    Returns
    -------
    table : int64 [span]
    duplicate : int
        The first row whose key was already seen; -1 when the keys are distinct.
    """
    table = np.full(span, -1, np.int64)
    duplicate = -1
    for i in range(keys.size):
        k = keys[i] - lo
        if table[k] >= 0 and duplicate < 0:
            duplicate = i
        table[k] = i
    return table, duplicate


@njit(**NB)
def dense_rows_nb(table, lo, queries):
    """Row of each query in a :func:`dense_index_nb` table; -1 where it is not a key.

    Parameters
    ----------
    table : int64 [span]
    lo : int
    queries : int64 [m]

    Returns
    -------
    int64 [m]
    """
    out = np.empty(queries.size, np.int64)
    n = table.size
    for i in range(queries.size):
        k = queries[i] - lo
        out[i] = table[k] if 0 <= k < n else -1
    return out


@njit(**NB)
def settings_of_nb(rows, contract, leg, set_isolated, set_lev_long, set_lev_short, set_auto_long, set_auto_short,
                   default_leverage):
    """The settings a position or order uses: twin of ``Book.settings(...).leverage(leg, side)``
    and ``.auto_add(leg, side)`` (the short leg reads the short fields, "both" and "long" the
    long ones), with ``Book.settings``' defaults (cross, default leverage, auto-add off)
    where the (account, contract) has no settings row.

    Parameters
    ----------
    rows : int64 [n]
        Settings row of each item; -1 for none.
    contract, leg : int64 [n]
        Contract index; leg code (0 both, 1 long, 2 short).
    set_isolated, set_auto_long, set_auto_short : bool [n_settings]
    set_lev_long, set_lev_short : float64 [n_settings]
    default_leverage : float64 [n_contracts]
        The book's default leverage capped by each contract's first tier.

    Returns
    -------
    isolated : bool [n]
    leverage : float64 [n]
    auto_add : bool [n]
    """
    n = rows.size
    isolated = np.zeros(n, np.bool_)
    leverage = np.empty(n)
    auto_add = np.zeros(n, np.bool_)
    for i in range(n):
        r = rows[i]
        if r < 0:
            leverage[i] = default_leverage[contract[i]]
            continue
        isolated[i] = set_isolated[r]
        if leg[i] == LEG_SHORT:
            leverage[i] = set_lev_short[r]
            auto_add[i] = set_auto_short[r]
        else:
            leverage[i] = set_lev_long[r]
            auto_add[i] = set_auto_long[r]
    return isolated, leverage, auto_add


@njit(**NB)
def account_facts_nb(pos_start, pos_order, side, isolated, auto_add, leverage, mark, contract, lp):
    """Per account, over its open positions: which margin modes they use, whether an
    isolated one has auto-add-margin on, the highest leverage setting, their number and the
    nearest liquidation price as a fraction of the mark.

    Parameters
    ----------
    pos_start, pos_order : int64
        CSR grouping of the positions by account (``_group``).
    side : int8/int64 [n_positions]; isolated, auto_add : bool [n_positions]
    leverage : float64 [n_positions]
        The settings each position uses (``settings_of_nb``).
    mark : float64 [n_contracts]; contract : int64 [n_positions]
    lp : float64 [n_positions]
        Liquidation price (NaN where there is none).

    Returns
    -------
    modes : int8 [n_accounts]
        1 when a cross position is held, plus 2 when an isolated one is.
    auto : bool [n_accounts]
    top_leverage : float64 [n_accounts]
        NaN for an account without positions.
    count : int64 [n_accounts]
    distance : float64 [n_accounts]
        ``min over positions of side * (mark - lp) / mark``, ``inf`` for a position
        without a liquidation price, NaN for an account without positions.
    """
    n = pos_start.size - 1
    modes = np.zeros(n, np.int8)
    auto = np.zeros(n, np.bool_)
    top = np.full(n, np.nan)
    count = np.zeros(n, np.int64)
    distance = np.full(n, np.nan)
    for a in range(n):
        s0 = pos_start[a]
        s1 = pos_start[a + 1]
        count[a] = s1 - s0
        for j in range(s0, s1):
            p = pos_order[j]
            if isolated[p]:
                modes[a] |= 2
                if auto_add[p]:
                    auto[a] = True
            else:
                modes[a] |= 1
            if not (top[a] >= leverage[p]):
                top[a] = leverage[p]
            if np.isnan(lp[p]):
                d = np.inf
            else:
                m = mark[contract[p]]
                d = float(side[p]) * (m - lp[p]) / m
            if not (distance[a] <= d):
                distance[a] = d
    return modes, auto, top, count, distance


# ========================================================================= resolving
_DENSE_LIMIT = 1 << 25  # keys below this are looked up in a dense table (<= 256 MB), else hashed


def _table(frames: Mapping, name: str) -> pd.DataFrame:
    if not isinstance(frames, Mapping):
        raise ValueError(f"frames must be a mapping of table name to DataFrame (Book.to_frames()), "
                         f"not {type(frames).__name__}")
    if name not in frames:
        raise ValueError(f"the book has no {name!r} table (tables: {sorted(frames)})")
    frame = frames[name]
    missing = [c for c in SCHEMA[name] if c not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks column(s) {missing}")
    return frame


def _label(value):
    """A numpy scalar as the plain Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _lookup(column: pd.Series, lookup, table: str, name: str) -> np.ndarray:
    """int64 codes of a column of labels (object, str or Categorical): ``lookup`` maps each
    distinct label to its code (raising ValueError or KeyError for a bad one)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    if codes.size and codes.min() < 0:
        raise ValueError(f"table {table!r} row {int(np.argmax(codes < 0))}, column {name!r}: missing value")
    lut = np.empty(len(uniques), np.int64)
    for i, value in enumerate(uniques):
        try:
            lut[i] = lookup(value)
        except (KeyError, ValueError) as exc:
            why = exc.args[0] if exc.args and isinstance(exc, ValueError) else f"unknown value {value!r}"
            raise ValueError(f"table {table!r}, column {name!r}: {why}") from None
    return lut[codes]


def _fresh(values) -> np.ndarray:
    """A new writeable array: the outputs own their memory, and numba sees one array type
    (pandas hands out read-only views; numba would compile a read-only specialisation)."""
    return np.array(values, copy=True)


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray:
    return _fresh(frame[name].to_numpy(np.float64, na_value=np.nan))


def _bools(frame: pd.DataFrame, name: str, table: str) -> np.ndarray:
    values = frame[name].to_numpy()
    if values.dtype.kind != "b":
        kind = pd.api.types.infer_dtype(values, skipna=False)
        if kind not in ("boolean", "empty"):
            raise ValueError(f"table {table!r}, column {name!r}: must be true or false (found {kind} values)")
        values = values.astype(np.bool_)
    return _fresh(values)


def _sides(frame: pd.DataFrame, table: str) -> np.ndarray:
    side = _fresh(frame["side"].to_numpy(np.int64))
    bad = np.flatnonzero((side != 1) & (side != -1))
    if bad.size:
        raise ValueError(f"table {table!r} row {bad[0]}, column 'side': must be +1 or -1, not {side[bad[0]]}")
    return side


def _ids(column: pd.Series, table: str) -> np.ndarray:
    """Account ids as int64 (ints, also held as objects or integral floats) or object (strs)."""
    values = np.asarray(column)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if np.all(np.isfinite(values) & (values == np.round(values))):
            return values.astype(np.int64)
        raise ValueError(f"table {table!r}, column 'account': an id must be an int or a str")
    values = values.astype(object)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "empty":
        return np.zeros(0, np.int64)
    if kind == "integer":
        return values.astype(np.int64)
    if kind == "string":
        return values
    raise ValueError(f"table {table!r}, column 'account': ids must be all ints or all strs (found {kind})")


class _Keys:
    """Row of each key among ``keys`` (ints in ``[0, size)``, or account ids): a dense table
    when the key range is small, else a hash index.  ``duplicate`` is a row whose key
    repeats an earlier row's (-1 when all keys are distinct)."""

    def __init__(self, keys: np.ndarray, size: int | None = None):
        self.lo, self.table = 0, None
        n = keys.size
        if keys.dtype.kind == "i" and n:
            lo, hi = int(keys.min()), int(keys.max())
            span = hi - lo + 1
            if span <= _DENSE_LIMIT and (size is not None or span <= 4 * n + 1024):
                self.lo = lo
                self.table, self.duplicate = dense_index_nb(keys.astype(np.int64), lo, span)
        if self.table is None:
            self.index = pd.Index(keys)
            dup = np.flatnonzero(self.index.duplicated()) if not self.index.is_unique else ()
            self.duplicate = int(dup[0]) if len(dup) else -1

    def rows(self, queries: np.ndarray) -> np.ndarray:
        """int64 row of each query; -1 where it is not a key."""
        if self.table is None:
            return self.index.get_indexer(queries).astype(np.int64)
        if queries.dtype.kind != "i":
            return np.full(queries.size, -1, np.int64)
        return dense_rows_nb(self.table, self.lo, queries.astype(np.int64, copy=False))


def _group(rows: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR grouping: start offsets [n_groups + 1] and the row order (stable within a group)."""
    order = np.argsort(rows, kind="stable").astype(np.int64)
    start = np.zeros(n_groups + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_groups), out=start[1:])
    return start, order


def _text(labels, codes: np.ndarray):
    """``labels[codes]`` as the column type pandas gives text (``str`` in pandas 3, else object);
    taken in pyarrow when the text is Arrow-backed (much faster than inferring it from objects)."""
    labels = np.asarray(labels, dtype=object)
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa
        return pd.array(pa.array(list(labels), type=pa.large_string()).take(pa.array(codes)), dtype=dtype)
    return labels[codes]


def _labels(labels, codes: np.ndarray) -> pd.Categorical:
    """``labels[codes]`` as a Categorical (a label column of a read-out: contract, leg,
    margin or position mode): no text per row, and Parquet stores it as a dictionary."""
    return pd.Categorical.from_codes(np.asarray(codes).astype(np.int16, copy=False), categories=list(labels))


class _Book:
    """The resolved tables: the codes and float arrays the kernels see, and the labels.

    Accounts are numbered by their row in the accounts table, contracts by their row
    in the contracts table."""

    def __init__(self, frames: Mapping, marks: Mapping | None, *, need_orders: bool):
        meta = _table(frames, "meta")
        contracts = _table(frames, "contracts")
        brackets = _table(frames, "brackets")
        accounts = _table(frames, "accounts")
        settings = _table(frames, "settings")
        positions = _table(frames, "positions")
        self._contracts(meta, contracts, brackets, marks)
        n_c = self.n_contracts

        # accounts
        self.account_ids = _ids(accounts["account"], "accounts")
        self.accounts = _Keys(self.account_ids)
        if self.accounts.duplicate >= 0:
            raise ValueError(f"table 'accounts', column 'account': "
                             f"{_label(self.account_ids[self.accounts.duplicate])!r} is listed twice")
        self.n_accounts = self.account_ids.size
        self.wallet = _floats(accounts, "wallet")
        self.position_mode = _lookup(accounts["position_mode"], parse_position_mode, "accounts", "position_mode")

        # settings, keyed by account * n_contracts + contract
        s_acc = self._account_rows(settings, "settings")
        s_key = s_acc * n_c + self._contract_rows(settings, "settings")
        self.settings = _Keys(s_key, self.n_accounts * n_c)
        if self.settings.duplicate >= 0:
            row = self.settings.duplicate
            raise ValueError(f"table 'settings' row {row}: settings listed twice for account "
                             f"{_label(self.account_ids[s_acc[row]])!r} and contract {self.symbols[s_key[row] % n_c]!r}")
        self.set_isolated = _lookup(settings["margin_mode"], parse_margin_mode, "settings",
                                    "margin_mode") == MarginMode.ISOLATED
        self.set_lev_long = _floats(settings, "leverage_long")
        self.set_lev_short = _floats(settings, "leverage_short")
        self.set_auto_long = _bools(settings, "auto_add_long", "settings")
        self.set_auto_short = _bools(settings, "auto_add_short", "settings")

        # positions
        self.p_acc = self._account_rows(positions, "positions")
        self.p_contract = self._contract_rows(positions, "positions")
        self.p_leg = _lookup(positions["leg"], parse_leg, "positions", "leg")
        self.p_side = _sides(positions, "positions")
        self.p_qty = _floats(positions, "qty")
        self.p_entry = _floats(positions, "entry_price")
        self.p_wallet_iso = _floats(positions, "wallet_iso")
        self.p_tp = _floats(positions, "take_profit")
        self.p_sl = _floats(positions, "stop_loss")
        self.slots = _Keys((self.p_acc * n_c + self.p_contract) * 3 + self.p_leg, self.n_accounts * n_c * 3)
        if self.slots.duplicate >= 0:
            row = self.slots.duplicate
            raise ValueError(f"table 'positions' row {row}: a second position of account "
                             f"{_label(self.account_ids[self.p_acc[row]])!r} on {self.symbols[self.p_contract[row]]} "
                             f"leg {LEG_NAMES[int(self.p_leg[row])]!r}")
        self.p_isolated, self.p_leverage, self.p_auto = self._settings_of(self.p_acc, self.p_contract, self.p_leg)
        used = np.flatnonzero(np.bincount(self.p_contract, minlength=n_c))
        bad = used[~(np.isfinite(self.mark[used]) & (self.mark[used] > 0))]
        if bad.size:
            names = [self.symbols[c] for c in bad]
            raise ValueError(f"no mark price for contract{'s' if len(names) > 1 else ''} {', '.join(names)}, "
                             "which has positions: give it in marks= or in the contracts table's mark_price")
        self.pos_start, self.pos_order = _group(self.p_acc, self.n_accounts)
        if need_orders:
            self._orders(_table(frames, "orders"))

    @staticmethod
    def _maintenance(contracts, tables: list) -> list:
        """The tables maintenance margin is charged with: each contract's venue profile's
        (``Profile.maintenance_brackets``: the brackets themselves under Binance's rules; a
        table without a ``venue`` column is Binance's), as the Book and the engines charge it."""
        if "venue" not in contracts.columns:
            return tables
        from .venues.profiles import profile

        venues = contracts["venue"].astype(object).map(str).to_numpy(object)
        taker = _floats(contracts, "taker_fee") if "taker_fee" in contracts.columns else np.zeros(len(tables))
        out = []
        for c, b in enumerate(tables):
            try:
                out.append(profile(venues[c]).maintenance_brackets(b, float(taker[c])))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"table 'contracts' row {c}, column 'venue': {exc}") from None
        return out

    def _contracts(self, meta, contracts, brackets, marks) -> None:
        symbols = [str(s) for s in contracts["contract"].tolist()]
        self.symbols = symbols
        self.contract_index = {s: c for c, s in enumerate(symbols)}
        if len(self.contract_index) != len(symbols):
            dup = next(s for s in symbols if symbols.count(s) > 1)
            raise ValueError(f"table 'contracts', column 'contract': {dup!r} is listed twice")
        n_c = self.n_contracts = len(symbols)
        tables = []
        bracket_contract = brackets["contract"].astype(object).map(str).to_numpy(object)
        for symbol in symbols:
            rows = brackets[bracket_contract == symbol].sort_values("tier")
            if rows.empty:
                raise ValueError(f"table 'brackets': contract {symbol!r} has no tiers")
            try:
                tables.append(Brackets(*(rows[c].to_numpy(np.float64) for c in BRACKET_COLUMNS), symbol=symbol))
            except BracketError as exc:
                raise ValueError(f"table 'brackets', contract {symbol!r}: {exc}") from None
        maintenance = self._maintenance(contracts, tables)
        width = max([b.n_tiers for b in maintenance], default=1)
        self.n_tiers = np.array([b.n_tiers for b in maintenance], dtype=np.int64)
        self.cap = np.full((n_c, width), np.inf)
        self.mmr = np.zeros((n_c, width))
        self.cum = np.zeros((n_c, width))
        for c, b in enumerate(maintenance):
            self.cap[c, :b.n_tiers], self.mmr[c, :b.n_tiers], self.cum[c, :b.n_tiers] = b.notional_cap, b.mmr, b.cum
        if len(meta) != 1:
            raise ValueError(f"table 'meta' must have exactly one row, not {len(meta)}")
        default = float(meta["default_leverage"].iloc[0])  # Book.settings: the default capped by tier 1
        self.default_leverage = np.array([min(default, float(b.max_leverage[0])) for b in tables], dtype=np.float64)
        mark = _floats(contracts, "mark_price")
        for symbol, price in ({} if marks is None else marks).items():
            if symbol not in self.contract_index:
                raise ValueError(f"marks: unknown contract {symbol!r}; the book has {symbols}")
            try:
                value = float(price)
            except (TypeError, ValueError):
                value = math.nan
            if isinstance(price, (bool, np.bool_)) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"marks: the mark price of {symbol} must be a positive finite number, not {price!r}")
            check_price(value, f"marks: the mark price of {symbol}")
            mark[self.contract_index[symbol]] = value
        self.mark = mark

    def _account_rows(self, frame: pd.DataFrame, table: str) -> np.ndarray:
        ids = _ids(frame["account"], table)
        rows = self.accounts.rows(ids)
        bad = np.flatnonzero(rows < 0)
        if bad.size:
            raise ValueError(f"table {table!r} row {bad[0]}, column 'account': unknown account "
                             f"{_label(ids[bad[0]])!r} (not in table 'accounts')")
        return rows

    def _contract_rows(self, frame: pd.DataFrame, table: str) -> np.ndarray:
        index = self.contract_index

        def lookup(symbol):
            if symbol not in index:
                raise ValueError(f"unknown contract {symbol!r} (not in table 'contracts': {sorted(index)})")
            return index[symbol]

        return _lookup(frame["contract"], lookup, table, "contract")

    def _settings_of(self, acc: np.ndarray, contract: np.ndarray, leg: np.ndarray):
        """(isolated, leverage, auto_add) of each item on (account, contract, leg)."""
        rows = self.settings.rows(acc * self.n_contracts + contract)
        return settings_of_nb(rows, contract, leg, self.set_isolated, self.set_lev_long, self.set_lev_short,
                              self.set_auto_long, self.set_auto_short, self.default_leverage)

    def _orders(self, orders: pd.DataFrame) -> None:
        o_acc = self._account_rows(orders, "orders")
        o_contract = self._contract_rows(orders, "orders")
        o_leg = _lookup(orders["leg"], parse_leg, "orders", "leg")
        o_side = _sides(orders, "orders")
        self.o_leverage = self._settings_of(o_acc, o_contract, o_leg)[1]
        # the one-way position an order could reduce: its size when it is on the other side
        row = self.slots.rows((o_acc * self.n_contracts + o_contract) * 3 + LEG_BOTH)
        found = row >= 0
        row = np.where(found, row, 0)
        if self.p_qty.size:
            self.o_against = np.where(found & (self.p_side[row] != o_side), self.p_qty[row], 0.0)
        else:
            self.o_against = np.zeros(o_acc.size)
        self.o_contract, self.o_leg, self.o_side = o_contract, o_leg, o_side
        self.o_id = _fresh(orders["order_id"].to_numpy(np.int64))
        self.o_qty = _floats(orders, "qty")
        self.o_price = _floats(orders, "price")
        self.o_reduce_only = _bools(orders, "reduce_only", "orders")
        self.ord_start, self.ord_rows = _group(o_acc, self.n_accounts)

    # -------------------------------------------------------------- kernels
    def positions(self, mm_entry: bool, with_prices: bool):
        """Per-position metrics and prices, and the per-account totals."""
        notional, upnl, mm, im, lp, bp = position_metrics_nb(
            self.p_contract, self.p_side, self.p_qty, self.p_entry, self.p_wallet_iso, self.p_leverage,
            self.p_isolated, self.mark, self.n_tiers, self.cap, self.mmr, self.cum, mm_entry)
        totals = account_walk_nb(self.pos_start, self.pos_order, self.p_contract, self.p_leg, self.p_side,
                                 self.p_qty, self.p_entry, self.p_wallet_iso, self.p_isolated, upnl, mm, im,
                                 self.wallet, self.n_tiers, self.cap, self.mmr, self.cum, lp, bp, with_prices)
        return dict(notional=notional, upnl=upnl, mm=mm, im=im, lp=lp, bp=bp), totals

    def order_margin(self) -> np.ndarray:
        return order_margin_nb(self.ord_start, self.ord_rows, self.o_id, self.o_contract, self.o_leg, self.o_side,
                               self.o_qty, self.o_price, self.o_reduce_only, self.o_leverage, self.o_against,
                               self.n_contracts)

    def account_labels(self, rows: np.ndarray):
        """The account id of each account row: int64, or text."""
        if self.account_ids.dtype.kind == "i":
            return self.account_ids[rows]
        return _text(self.account_ids, rows)


def _mm_entry(mm_basis: str) -> bool:
    if mm_basis not in ("mark", "entry"):
        raise ValueError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")
    return mm_basis == "entry"


_LEGS = [LEG_NAMES[i] for i in range(3)]
_MARGIN_MODES = [MARGIN_MODE_NAMES[i] for i in range(2)]
_POSITION_MODES = [POSITION_MODE_NAMES[i] for i in range(2)]


# =============================================================================== API
def position_readouts(frames: Mapping[str, pd.DataFrame], marks: Mapping[str, float] | None = None,
                      mm_basis: str = "mark") -> pd.DataFrame:
    """Every open position with its risk read-outs at the marks: ``Book.positions_frame()``
    computed from the book's tables, plus ``effective_leverage``.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        The book's tables (:data:`riskcore.table.SCHEMA`), as :meth:`Book.to_frames` or
        :meth:`BookTable.frames` give them.  ``contract``, ``leg``, ``margin_mode`` and
        ``position_mode`` may be object, str or Categorical columns; ``account`` int64 or
        object (all ints or all strs).
    marks : mapping of str to float, optional
        Mark prices by contract; contracts left out take the contracts table's
        ``mark_price``.
    mm_basis : {"mark", "entry"}, default "mark"
        Basis of the maintenance margin in isolated liquidation prices (as in
        :func:`riskcore.margin.isolated_liquidation_price`).  ``"mark"`` is what
        ``Book.positions_frame`` reports; cross prices are always on the mark basis.

    Returns
    -------
    pandas.DataFrame
        One row per row of the positions table, in its order, with the columns of
        ``Book.positions_frame()`` (:data:`POSITION_COLUMNS`; money in the quote
        currency, sizes in base units) and the same values, plus

        ``effective_leverage``
            notional / the equity backing the position: for an isolated position
            ``notional / (wallet_iso + unrealized_pnl)``, for a cross position
            ``notional / margin_balance`` of its account (cross wallet plus the uPnL of
            all the account's cross positions, the balance every cross position draws
            on).  NaN where that equity is <= 0.

        Liquidation and bankruptcy prices are NaN where the Book reports none (never
        reached, or not positive).

    Raises
    ------
    ValueError
        A missing table or column, an unknown account or contract, a bad spelling or
        side, a duplicate position, a bad ``marks`` entry, ``mm_basis`` not "mark" or
        "entry", or no usable mark price for a contract with positions (the message
        names the contract).

    Examples
    --------
    >>> from riskcore.examples import binance_cross_example
    >>> book, _ = binance_cross_example()
    >>> frame = position_readouts(book.to_frames())
    >>> round(float(frame.loc[0, "liquidation_price"]), 2)  # cross BTCUSDT, Binance: 26,316.89
    26316.89
    """
    bk = _Book(frames, marks, need_orders=False)
    v, totals = bk.positions(_mm_entry(mm_basis), with_prices=True)
    return _position_frame(bk, v, totals)


def account_readouts(frames: Mapping[str, pd.DataFrame], marks: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Every account's metrics at the marks: ``Book.accounts_frame()`` computed from the
    book's tables.

    Parameters
    ----------
    frames, marks :
        As for :func:`position_readouts`.

    Returns
    -------
    pandas.DataFrame
        One row per row of the accounts table, in its order, with the columns of
        ``Book.accounts_frame()`` (:data:`ACCOUNT_COLUMNS`) and the same values
        (quote currency; ratios as fractions):

        * ``margin_balance`` = wallet + ``cross_unrealized_pnl``; ``maintenance_margin``
          and ``initial_margin`` summed over cross positions (section 4);
        * ``order_margin``: ``opening * price / leverage`` over resting orders, as
          ``Book._opening_orders`` counts the opening quantity (by ``order_id``;
          reduce-only and hedge closing orders open nothing; a one-way order against
          the position first uses up the part not claimed by earlier orders);
        * ``mmr``, ``imr``: :func:`riskcore.margin.account_mmr` / ``account_imr``;
        * ``free_balance`` = ``max(0, margin_balance - initial_margin - order_margin)``;
        * ``equity`` = ``margin_balance`` + sum over isolated positions of
          ``max(0, wallet_iso + uPnL)``;
        * ``isolated_wallet`` sums ``wallet_iso``; ``n_positions``, ``n_orders`` count rows.

    Raises
    ------
    ValueError
        As for :func:`position_readouts`.
    """
    bk = _Book(frames, marks, need_orders=True)
    _, totals = bk.positions(False, with_prices=False)
    return _account_frame(bk, totals, bk.order_margin())


def cross_liquidation_prices(frames: Mapping[str, pd.DataFrame],
                             marks: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Cross liquidation and bankruptcy prices of every (account, contract) with cross
    positions, the account's other cross contracts held at their marks (section 4).

    Parameters
    ----------
    frames, marks :
        As for :func:`position_readouts`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CROSS_PRICE_COLUMNS`: ``account``, ``contract``,
        ``liquidation_price`` (``Book.cross_liquidation_price``: Binance's formula, each
        position's tier the one holding its notional at the price) and
        ``bankruptcy_price`` (``Book._cross_bankruptcy_price``: the price at which the
        margin balance is 0; NaN with no net exposure or when not positive).  One row
        per pair, in the order its first position appears in the positions table.

    Raises
    ------
    ValueError
        As for :func:`position_readouts`.
    """
    bk = _Book(frames, marks, need_orders=False)
    v, totals = bk.positions(False, with_prices=True)
    return _cross_frame(bk, v, totals)


def readouts(frames: Mapping[str, pd.DataFrame], marks: Mapping[str, float] | None = None,
             mm_basis: str = "mark") -> dict[str, pd.DataFrame]:
    """All three read-outs from one pass over the tables (the tables are resolved and the
    kernels run once, instead of once per frame).

    Parameters
    ----------
    frames, marks, mm_basis :
        As for :func:`position_readouts` (``mm_basis`` affects isolated liquidation
        prices only).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``"positions"``: :func:`position_readouts`; ``"accounts"``:
        :func:`account_readouts`; ``"cross_prices"``: :func:`cross_liquidation_prices`.

    Raises
    ------
    ValueError
        As for :func:`position_readouts`.
    """
    bk = _Book(frames, marks, need_orders=True)
    v, totals = bk.positions(_mm_entry(mm_basis), with_prices=True)
    return {"positions": _position_frame(bk, v, totals), "accounts": _account_frame(bk, totals, bk.order_margin()),
            "cross_prices": _cross_frame(bk, v, totals)}


#: Labels of :func:`account_facts`' ``margin_modes`` (its codes: 1 cross, 2 isolated, 3 both).
ACCOUNT_MODE_LABELS = ("", "cross", "isolated", "cross+isolated")


def account_facts(frames: Mapping[str, pd.DataFrame], marks: Mapping[str, float] | None = None,
                  mm_basis: str = "mark") -> pd.DataFrame:
    """One row per account (in the accounts table's order) with what a study of a book
    needs to know about it before a run, from one pass over the tables.

    Columns: ``account``; ``equity`` (cross wallet + cross uPnL + the sum over isolated
    positions of ``max(0, wallet_iso + uPnL)``, at the marks: the ``equity`` of
    :func:`account_readouts`); ``margin_modes`` (Categorical of
    :data:`ACCOUNT_MODE_LABELS`: ``"cross"``, ``"isolated"``, ``"cross+isolated"``, or
    ``""`` without positions); ``auto_add`` (an isolated position has auto-add-margin on);
    ``leverage`` (the highest leverage setting its positions use, NaN without positions);
    ``positions`` (their number); ``liquidation_distance`` (``min over positions of
    side * (mark - liquidation price) / mark``, the prices of :func:`position_readouts`;
    ``inf`` when no position has a liquidation price, NaN without positions).

    Parameters and errors as for :func:`position_readouts`.
    """
    bk = _Book(frames, marks, need_orders=False)
    v, totals = bk.positions(_mm_entry(mm_basis), with_prices=True)
    modes, auto, top, count, distance = account_facts_nb(
        bk.pos_start, bk.pos_order, bk.p_side, bk.p_isolated, bk.p_auto, bk.p_leverage, bk.mark,
        bk.p_contract, v["lp"])
    return pd.DataFrame({
        "account": bk.account_labels(np.arange(bk.n_accounts)),
        "equity": bk.wallet + totals[0] + totals[4],
        "margin_modes": pd.Categorical.from_codes(modes, categories=list(ACCOUNT_MODE_LABELS)),
        "auto_add": auto, "leverage": top, "positions": count, "liquidation_distance": distance}, copy=False)


# ========================================================================= wrapping
# Every array handed to a frame is new (made by the kernels or copied from the input), so
# the frames take them without another copy.
def _position_frame(bk: _Book, v: dict, totals: tuple) -> pd.DataFrame:
    margin_balance = bk.wallet + totals[0]
    backing = np.where(bk.p_isolated, bk.p_wallet_iso + v["upnl"], margin_balance[bk.p_acc])
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.where(backing > 0, v["notional"] / backing, np.nan)
    data = {
        "account": bk.account_labels(bk.p_acc),
        "contract": _labels(bk.symbols, bk.p_contract),
        "leg": _labels(_LEGS, bk.p_leg),
        "side": bk.p_side,
        "qty": bk.p_qty,
        "entry_price": bk.p_entry,
        "margin_mode": _labels(_MARGIN_MODES, bk.p_isolated),
        "leverage": bk.p_leverage,
        "mark_price": bk.mark[bk.p_contract],
        "notional": v["notional"],
        "unrealized_pnl": v["upnl"],
        "maintenance_margin": v["mm"],
        "initial_margin": v["im"],
        "wallet_iso": bk.p_wallet_iso,
        "liquidation_price": v["lp"],
        "bankruptcy_price": v["bp"],
        "auto_add_margin": bk.p_auto,
        "take_profit": bk.p_tp,
        "stop_loss": bk.p_sl,
        "effective_leverage": effective,
    }
    return pd.DataFrame(data, columns=POSITION_COLUMNS, copy=False)


def _account_frame(bk: _Book, totals: tuple, order_margin: np.ndarray) -> pd.DataFrame:
    cross_upnl, cross_mm, cross_im, iso_wallet, iso_equity, _ = totals
    margin_balance = bk.wallet + cross_upnl
    data = {
        "account": bk.account_labels(np.arange(bk.n_accounts)),
        "position_mode": _labels(_POSITION_MODES, bk.position_mode),
        "wallet": bk.wallet.copy(),
        "isolated_wallet": iso_wallet,
        "cross_unrealized_pnl": cross_upnl,
        "margin_balance": margin_balance,
        "maintenance_margin": cross_mm,
        "initial_margin": cross_im,
        "order_margin": order_margin,
        "mmr": np.array(fm.account_mmr(cross_mm, margin_balance), dtype=np.float64),
        "imr": np.array(fm.account_imr(cross_im, margin_balance), dtype=np.float64),
        "free_balance": np.maximum(0.0, margin_balance - cross_im - order_margin),
        "equity": margin_balance + iso_equity,
        "n_positions": np.diff(bk.pos_start),
        "n_orders": np.diff(bk.ord_start),
    }
    return pd.DataFrame(data, columns=ACCOUNT_COLUMNS, copy=False)


def _cross_frame(bk: _Book, v: dict, totals: tuple) -> pd.DataFrame:
    rows = np.flatnonzero(totals[5])
    return pd.DataFrame({
        "account": bk.account_labels(bk.p_acc[rows]),
        "contract": _labels(bk.symbols, bk.p_contract[rows]),
        "liquidation_price": v["lp"][rows],
        "bankruptcy_price": v["bp"][rows],
    }, columns=CROSS_PRICE_COLUMNS, copy=False)
