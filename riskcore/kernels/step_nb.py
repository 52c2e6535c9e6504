"""Points and steps: the parallel phase over accounts, the serial phase over deficits.

At each intrabar point:

* phase A (:func:`phase_a_nb`, ``prange`` over blocks of accounts): every account runs
  funding, limit fills, TP/SL, isolated checks with top-ups, the cross check and its
  own liquidations (:func:`riskcore.kernels.account_nb.account_point_nb`).  Nothing
  here reads another account or the insurance fund, so the order of accounts does
  not matter; each block lists its accounts with a liquidation or deficit.
* phase B (:func:`phase_b_nb`, serial, only when a block listed an account): in
  canonical account order it pays the liquidation fees into the fund (isolated ones
  first, as the reference), then covers the point's deficits pro rata from the
  fund and auto-deleverages the shortfall against ranked opposite positions
  (scores computed in parallel, each ranking sorted once, stably).

This is exactly the reference's result: its stages 1-6 only couple accounts through
the fund, which no stage before 7 reads, and stage 7-8 runs here in its order.

With market impact (:mod:`riskcore.impact`) the fills of liquidations depend on every
account's liquidations at the round: phase A only marks them, :func:`flow_nb` sums their
notional (serially, in account order, as the reference), and :func:`settle_nb` closes
them in parallel at the impacted prices before phase B.  With feedback, the net flow then
moves the mark (:func:`move_mark_nb`) and the point runs again at the moved mark: a
cascade round.  Sleeping accounts stay asleep while the mark's multiplier stays within
the range their bands were drawn for (:func:`envelope_nb`); a move beyond it wakes every
account.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from ..impact import MAX_IMPACT, MIN_DEPTH, MIN_MULTIPLIER
from .adl_nb import adl_key_nb
from .account_nb import account_point_nb, cross_excess_nb, emit_nb, funding_nb, liquidate_nb, refresh_lp_nb, view_nb
from .enums import (MARGIN_CROSS, MARGIN_ISOLATED, AccountFlag, AdlPolicy, BlockAcc, EventKind, Glob, Intrabar,
                    Reason, SlotState, Stage)
from .options import NB, NB_INNER, NB_PARALLEL_INNER
from .sleep_nb import wake_bar_nb

NAN = math.nan


@njit(**NB_INNER)
def n_points_nb(intrabar):
    if intrabar == Intrabar.CLOSE:
        return 1
    if intrabar == Intrabar.OHLC:
        return 4
    return 3


@njit(**NB_INNER)
def point_prices_nb(ohlc, t, k, intrabar, out):
    """``riskcore.inputs.bar_points``: point ``k`` of bar ``t`` into ``out[n_contracts, 2]``
    (column 0 what longs see, column 1 what shorts see)."""
    for c in range(ohlc.shape[1]):
        o = ohlc[t, c, 0]
        h = ohlc[t, c, 1]
        lo = ohlc[t, c, 2]
        cl = ohlc[t, c, 3]
        if intrabar == Intrabar.CLOSE:
            out[c, 0] = cl
            out[c, 1] = cl
        elif intrabar == Intrabar.OHLC:
            up = cl >= o
            if k == 0:
                px = o
            elif k == 1:
                px = lo if up else h
            elif k == 2:
                px = h if up else lo
            else:
                px = cl
            out[c, 0] = px
            out[c, 1] = px
        else:
            if k == 0:
                out[c, 0] = o
                out[c, 1] = o
            elif k == 1:
                out[c, 0] = lo
                out[c, 1] = h
            else:
                out[c, 0] = cl
                out[c, 1] = cl


@njit(**NB_INNER)
def scan_block_nb(bk, ct, a0, a1, cur, out, sc_wake, t):
    """The accounts of ``a0:a1`` that are not quiet at this point (no funding due), written
    to ``out[a0:]``.  Quiet: no resting order reached, no TP/SL crossed, no isolated
    position at its cached LP, a cross book above its maintenance margin (the excess of
    ``cross_excess_nb``, same order of operations) and no negative wallet behind an empty
    cross book.  Exactly the accounts on which ``account_point_nb`` would do nothing are
    skipped.  Written as one tight loop over arrays pulled out of the tuples once, with no
    calls and no early exits: numba then compiles it to about what the speed-of-light
    loop costs.  Accounts whose wake bar (``sc_wake``) is after ``t`` are not read."""
    acc_ord0, o_live, o_side, o_contract, o_price = bk.acc_ord0, bk.o_live, bk.o_side, bk.o_contract, bk.o_price
    acc_slot0, s_state, s_contract, s_side = bk.acc_slot0, bk.s_state, bk.s_contract, bk.s_side
    s_sl, s_tp, set_mode, s_lp, s_qty, s_entry = bk.s_sl, bk.s_tp, bk.set_mode, bk.s_lp, bk.s_qty, bk.s_entry
    wallet, n_tiers, cap, mmr, cum = bk.acc_wallet, ct.n_tiers, ct.cap, ct.mmr, ct.cum
    wake = sc_wake
    n = 0
    for a in range(a0, a1):
        if wake[a] > t:  # asleep: quiet at every point until its wake bar (sleep_nb.py)
            continue
        busy = False
        for i in range(acc_ord0[a], acc_ord0[a + 1]):
            if o_live[i]:
                side = o_side[i]
                if side * (cur[o_contract[i], 0 if side > 0 else 1] - o_price[i]) <= 0:
                    busy = True
        excess = wallet[a]
        n_cross = 0
        for p in range(acc_slot0[a], acc_slot0[a + 1]):
            if s_state[p] != SlotState.LIVE:
                continue
            c = s_contract[p]
            side = s_side[p]
            now = cur[c, 0 if side > 0 else 1]
            if side * (now - s_sl[p]) <= 0 or side * (now - s_tp[p]) >= 0:
                busy = True
            if set_mode[a, c] == MARGIN_ISOLATED:
                lp = s_lp[p]
                if not math.isnan(lp) and ((now <= lp) if side > 0 else (now >= lp)):
                    busy = True
            else:
                n_cross += 1
                qty = s_qty[p]
                notional = qty * now
                nt = n_tiers[c]
                i = 0
                while i < nt - 1 and cap[c, i] < notional:
                    i += 1
                excess += side * qty * (now - s_entry[p])
                excess -= notional * mmr[c, i] - cum[c, i]
        if n_cross == 0:
            busy = busy or wallet[a] < 0.0
        else:
            busy = busy or not (excess > 0.0)
        if busy:
            out[a0 + n] = a
            n += 1
    return n


@njit(**NB_INNER)
def live_quantities_nb(bk, a0, a1, q):
    """The live quantity of accounts ``a0:a1`` per contract and view, into ``q``."""
    q[:, :] = 0.0
    for p in range(bk.acc_slot0[a0], bk.acc_slot0[a1]):
        if bk.s_state[p] == SlotState.LIVE:
            q[bk.s_contract[p], view_nb(bk.s_side[p])] += bk.s_qty[p]


@njit(**NB_INNER)
def block_point_nb(bk, ct, lv, sc, ev, pr, b, row, t, k, gap, do_funding, funding_only, band, rates_t, prev, cur,
                   env):
    """One block of accounts at one point (in account order); returns how many of its
    accounts need the serial phase, listed from ``sc.liq_acct[b * block]`` on.

    The busy accounts are first compacted into the same list (in place: the j-th busy
    account is read before the list's entry j can be overwritten).  A block whose
    accounts all sleep past bar ``t`` is not read at all; with ``band`` (the bar's last
    point, no market impact) the block's bar ends here (:func:`end_block_nb`)."""
    n_acc = bk.acc_wallet.size
    a0 = b * pr.block
    a1 = min(a0 + pr.block, n_acc)
    if funding_only:
        for a in range(a0, a1):
            funding_nb(bk, ct, sc, ev, pr, a, b, row, t, rates_t, cur)
        return 0
    awake = sc.blk_wake[b] <= t or not pr.sleep
    nliq = 0
    if do_funding:  # every wallet may change: every account is looked at, and its bands redone
        for a in range(a0, a1):
            sc.liq_acct[a] = a
            sc.acc_wake[a] = t
        sc.blk_wake[b] = t
        awake = True
        n_busy = a1 - a0
    elif awake:
        n_busy = scan_block_nb(bk, ct, a0, a1, cur, sc.liq_acct, sc.acc_wake, t)
    else:
        n_busy = 0
    for j in range(n_busy):
        a = sc.liq_acct[a0 + j]
        flag = account_point_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, do_funding, rates_t, prev, cur)
        if flag != 0:
            sc.liq_acct[a0 + nliq] = a
            nliq += 1
    if band:
        end_block_nb(bk, ct, lv, sc, pr, b, t, cur, awake, env)
    return nliq


@njit(**NB_INNER)
def end_block_nb(bk, ct, lv, sc, pr, b, t, cur, awake, env):
    """The end of bar ``t`` for block ``b``: the accounts that were awake get their next
    wake bar, and the block's open interest comes from its live quantities, recounted
    (and the serial phase's adjustments to it dropped) only when the block was awake."""
    n_acc = bk.acc_wallet.size
    a0 = b * pr.block
    a1 = min(a0 + pr.block, n_acc)
    if awake:
        if pr.sleep:
            first = lv.pt_lo.shape[0]
            for a in range(a0, a1):
                if sc.acc_wake[a] <= t:
                    sc.acc_wake[a] = wake_bar_nb(bk, ct, lv, sc.blk_band[b], a, t, cur, env)
                first = min(first, sc.acc_wake[a])
            sc.blk_wake[b] = first
        live_quantities_nb(bk, a0, a1, sc.blk_q[b])
        sc.blk_acc[b, BlockAcc.OI_ADJUST] = 0.0
    oi = 0.0
    for c in range(cur.shape[0]):
        oi += sc.blk_q[b, c, 0] * cur[c, 0] + sc.blk_q[b, c, 1] * cur[c, 1]
    sc.blk_acc[b, BlockAcc.OPEN_INTEREST] = oi
    return 0


@njit(**NB_PARALLEL_INNER)
def end_bar_nb(bk, ct, lv, sc, pr, t, cur, env):
    """:func:`end_block_nb` for every block (with market impact, after the cascade rounds of
    the bar's last point: bands drawn earlier would not hold for the next round)."""
    done = np.zeros(sc.blk_nliq.size, np.int64)
    n_blocks = done.size
    for b in prange(n_blocks):
        done[b] = end_block_nb(bk, ct, lv, sc, pr, np.int64(b), t, cur, sc.blk_wake[b] <= t or not pr.sleep, env)


@njit(**NB_PARALLEL_INNER)
def phase_a_nb(bk, ct, lv, sc, ev, pr, t, k, gap, do_funding, funding_only, band, rates_t, prev, cur, env):
    """The parallel phase of one point; see the module docstring.  Each block of accounts is
    one work item; events go to the buffer row of the worker thread that runs it."""
    counts = sc.blk_nliq
    n_blocks = counts.size
    for b in prange(n_blocks):
        row = np.int64(numba.get_thread_id())
        # int64(b): a prange index is typed int64 before the loop is outlined and uint64 after,
        # which would compile everything below twice (see options.py)
        counts[b] = block_point_nb(bk, ct, lv, sc, ev, pr, np.int64(b), row, t, k, gap, do_funding, funding_only,
                                   band, rates_t, prev, cur, env)


@njit(**NB_INNER)
def block_scores_nb(bk, ct, sc, pr, cur, b, t, k):
    """ADL sort keys of one block of accounts (see :func:`adl_scores_nb`)."""
    n_acc = bk.acc_wallet.size
    for a in range(b * pr.block, min(b * pr.block + pr.block, n_acc)):
        s0 = bk.acc_slot0[a]
        s1 = bk.acc_slot0[a + 1]
        if sc.acc_flag[a] & AccountFlag.EXCLUDED:
            for p in range(s0, s1):
                sc.s_lfee[p] = NAN
            continue
        upnl_x = 0.0
        for p in range(s0, s1):
            c = np.int64(bk.s_contract[p])
            if bk.s_state[p] == SlotState.LIVE and bk.set_mode[a, c] == MARGIN_CROSS:
                px = cur[c, view_nb(bk.s_side[p])]
                upnl_x += bk.s_side[p] * bk.s_qty[p] * (px - bk.s_entry[p])
        for p in range(s0, s1):
            if bk.s_state[p] != SlotState.LIVE:
                sc.s_lfee[p] = NAN
                continue
            c = np.int64(bk.s_contract[p])
            side = np.int64(bk.s_side[p])
            px = cur[c, view_nb(side)]
            upnl = side * bk.s_qty[p] * (px - bk.s_entry[p])
            notional = bk.s_qty[p] * px
            if bk.set_mode[a, c] == MARGIN_ISOLATED:
                margin = bk.s_wiso[p]
                equity = bk.s_wiso[p] + upnl
            else:
                lev = bk.set_lev_short[a, c] if bk.s_leg[p] == 2 else bk.set_lev_long[a, c]
                margin = notional / lev
                equity = bk.acc_wallet[a] + upnl_x
            sc.s_lfee[p] = adl_key_nb(ct.adl_policy[c], pr.adl_seed, t, k, a, c, np.int64(bk.s_leg[p]), upnl,
                                      notional, margin, equity)
    return 0


@njit(**NB_PARALLEL_INNER)
def adl_scores_nb(bk, ct, sc, pr, cur, t, k):
    """The ADL sort key of every live position outside the deficit accounts under the run's
    policy (:func:`riskcore.kernels.adl_nb.adl_key_nb`; for Binance's, ``-score``), in
    ``sc.s_lfee`` (NaN: not a candidate); ``ReferenceEngine.adl_ranking``.  ``t``, ``k``:
    the point (the random policy's key depends on it)."""
    done = np.zeros(sc.blk_nliq.size, np.int64)
    n_blocks = done.size
    for b in prange(n_blocks):
        done[b] = block_scores_nb(bk, ct, sc, pr, cur, np.int64(b), t, k)


@njit(**NB_INNER)
def ranking_nb(bk, sc, c, side):
    """Candidates of (contract, side), best first; ties keep the canonical (slot) order."""
    n = 0
    for p in range(bk.s_qty.size):
        if bk.s_contract[p] == c and bk.s_side[p] == side and not math.isnan(sc.s_lfee[p]):
            n += 1
    idx = np.empty(n, np.int64)
    keys = np.empty(n)
    n = 0
    for p in range(bk.s_qty.size):
        if bk.s_contract[p] == c and bk.s_side[p] == side and not math.isnan(sc.s_lfee[p]):
            idx[n] = p
            keys[n] = sc.s_lfee[p]
            n += 1
    return idx[np.argsort(keys, kind="mergesort")]


@njit(**NB_INNER)
def wake_now_nb(sc, pr, a, t, last):
    """The serial phase changed account ``a``: look at it again from the next point (the
    rest of bar ``t``, or bar ``t + 1`` after the last point), and redo its bands."""
    u = t + 1 if last else t
    if sc.acc_wake[a] > u:
        sc.acc_wake[a] = u
    b = a // pr.block
    if sc.blk_wake[b] > u:
        sc.blk_wake[b] = u


@njit(**NB_INNER)
def owner_nb(bk, p):
    """The account owning slot ``p`` (binary search in the slot offsets)."""
    return np.searchsorted(bk.acc_slot0, p, side="right") - 1


@njit(**NB_INNER)
def close_counterparty_nb(bk, ct, sc, ev, pr, row, t, k, last, cur, o, qty, price):
    """``ReferenceEngine.close_counterparty``: close ``qty`` of slot ``o`` at ``price``."""
    b = owner_nb(bk, o)
    c = np.int64(bk.s_contract[o])
    side = np.int64(bk.s_side[o])
    q_before = bk.s_qty[o]
    realized = side * qty * (price - bk.s_entry[o])
    isolated = bk.set_mode[b, c] == MARGIN_ISOLATED
    if isolated:
        released = bk.s_wiso[o] * (qty / bk.s_qty[o])
        bk.s_wiso[o] -= released
        bk.acc_wallet[b] += released
    bk.acc_wallet[b] += realized
    bk.s_qty[o] -= qty
    if bk.s_qty[o] <= 1e-12 * qty:
        if isolated:
            bk.acc_wallet[b] += bk.s_wiso[o]
            bk.s_wiso[o] = 0.0
        bk.s_qty[o] = 0.0
        bk.s_state[o] = SlotState.EMPTY
    refresh_lp_nb(bk, ct, b, o, pr.mm_entry)
    wake_now_nb(sc, pr, b, t, last)
    if last:
        sc.blk_acc[b // pr.block, BlockAcc.OI_ADJUST] -= (q_before - bk.s_qty[o]) * cur[c, view_nb(side)]
    sc.glob[Glob.REALIZED] += realized
    emit_nb(ev, row, t, k, Stage.BAD_DEBT, 0, b, EventKind.ADL, c, bk.s_leg[o], side, qty, price, realized, 0.0,
            bk.acc_wallet[b], bk.s_wiso[o], Reason.ADL_COUNTERPARTY, 0, 0, 0.0, 0.0, 0.0, 0.0)


@njit(**NB_INNER)
def adl_price_nb(bk, b, o, bp):
    """``ReferenceEngine.adl_price``: counterparty slot ``o`` (of account ``b``) closes at ``bp``
    unless that is worse than its entry (or, isolated with a wallet below zero, than its own
    bankruptcy price); then at that limit."""
    side = np.int64(bk.s_side[o])
    limit = bk.s_entry[o]
    if bk.set_mode[b, np.int64(bk.s_contract[o])] == MARGIN_ISOLATED and bk.s_wiso[o] < 0.0:
        limit = bk.s_entry[o] - side * bk.s_wiso[o] / bk.s_qty[o]
    return bp if side * (bp - limit) >= 0.0 else limit


@njit(**NB_INNER)
def pro_rata_fraction_nb(bk, cands, side, x, bp, qty, left):
    """``ReferenceEngine.pro_rata_fraction``: the share of its quantity every eligible
    candidate (one that gives something at its ADL price) gives up,
    ``min(1, qty / units, left / money)``; 0 when none is eligible (docs/simulation.md,
    "ADL policies").

    ``cands``: i8 [n] candidate slots (the ranking of the opposite side, canonical order
    under pro rata); ``side`` the bankrupt position's side (+1/-1), ``x`` its liquidation
    fill and ``bp`` its bankruptcy price (USDT per base unit), ``qty`` its size (base
    units), ``left`` the money still to recover (USDT).  Reads only; slots no longer live
    are skipped.  Sums in slot order, as the reference sums in ranking order."""
    units = 0.0
    money = 0.0
    for j in range(cands.size):
        o = cands[j]
        if bk.s_state[o] != SlotState.LIVE or bk.s_qty[o] <= 0.0:
            continue
        per_unit = side * (adl_price_nb(bk, owner_nb(bk, o), o, bp) - x)
        if per_unit > 0.0:
            units += bk.s_qty[o]
            money += bk.s_qty[o] * per_unit
    if not money > 0.0:
        return 0.0
    return min(1.0, qty / units, left / money)


@njit(**NB_INNER)
def deleverage_nb(bk, ct, sc, ev, pr, row, t, k, last, cur, a, slot, deficit, shortfall, cache, built):
    """``ReferenceEngine.deleverage``: the deficit is attributed to the scope's positions by their
    losses at the fill (by notional when none lost); each recovers its share from the ranked
    opposite positions at its bankruptcy price, bounded per counterparty (no realised loss,
    no cross book pushed to its maintenance margin), at most its own quantity."""
    share = shortfall / deficit
    if slot >= 0:
        s0 = slot
        s1 = slot + 1
    else:
        s0 = bk.acc_slot0[a]
        s1 = bk.acc_slot0[a + 1]
    want_state = SlotState.LIQ_ISOLATED if slot >= 0 else SlotState.LIQ_CROSS
    total = 0.0
    for p in range(s0, s1):
        if bk.s_state[p] == want_state:
            side = np.int64(bk.s_side[p])
            total += max(0.0, (-side) * bk.s_qty[p] * (sc.s_lpx[p] - bk.s_entry[p]))
    by_loss = total > 0.0
    if not by_loss:
        total = 0.0
        for p in range(s0, s1):
            if bk.s_state[p] == want_state:
                total += bk.s_qty[p] * sc.s_lpx[p]
    recovered = 0.0
    for p in range(s0, s1):
        if bk.s_state[p] != want_state:
            continue
        c = np.int64(bk.s_contract[p])
        side = np.int64(bk.s_side[p])
        qty = bk.s_qty[p]
        x = sc.s_lpx[p]
        if by_loss:
            weight = max(0.0, (-side) * qty * (x - bk.s_entry[p]))
        else:
            weight = qty * x
        if not weight > 0.0:
            continue
        part = deficit * (weight / total)
        bp = x + side * part / qty
        left = share * part
        matched = 0.0
        gain = 0.0
        key = 2 * c + (1 if -side > 0 else 0)
        if not built[key]:
            cache[key] = ranking_nb(bk, sc, c, -side)
            built[key] = True
        cands = cache[key]
        fraction = 1.0
        if ct.adl_policy[c] == AdlPolicy.PRO_RATA:
            fraction = pro_rata_fraction_nb(bk, cands, side, x, bp, qty, left)
        for j in range(cands.size):
            if left <= 0.0 or matched >= qty:
                break
            o = cands[j]
            if bk.s_state[o] != SlotState.LIVE or bk.s_qty[o] <= 0.0:
                continue
            b = owner_nb(bk, o)
            px = adl_price_nb(bk, b, o, bp)
            per_unit = side * (px - x)
            if not per_unit > 0.0:
                continue
            q = min(fraction * bk.s_qty[o], qty - matched)
            if bk.set_mode[b, c] != MARGIN_ISOLATED:
                oside = np.int64(bk.s_side[o])
                cost = oside * (cur[c, view_nb(oside)] - px)
                if cost > 0.0:
                    excess = cross_excess_nb(bk, ct, b, cur, cur, 0.0, np.int64(1))
                    q = min(q, max(0.0, excess) / cost)
            if not q > 0.0:
                continue
            if q * per_unit >= left:
                q = left / per_unit
                money = left
            else:
                money = q * per_unit
            close_counterparty_nb(bk, ct, sc, ev, pr, row, t, k, last, cur, o, q, px)
            left -= money
            matched += q
            gain += money
        if matched > 0.0:
            recovered += gain
            sc.glob[Glob.REALIZED] += gain
            emit_nb(ev, row, t, k, Stage.BAD_DEBT, 0, a, EventKind.ADL, c, bk.s_leg[p], side, matched,
                    x + side * gain / matched, gain, 0.0, bk.acc_wallet[a], NAN, Reason.ADL_BANKRUPT, 0, 0, 0.0, 0.0,
                    0.0, 0.0)
    sc.glob[Glob.ADL_RECOVERED] += recovered
    if slot < 0:
        bk.acc_wallet[a] += recovered
    return recovered


@njit(**NB_INNER)
def phase_b_nb(bk, ct, sc, ev, pr, t, k, last, cur):
    """The serial phase of one point: fees into the fund, bad debt, ADL; see the module docstring."""
    row = ev.count.size - 1
    size = pr.block
    g = sc.glob
    n_blocks = sc.blk_nliq.size
    # liquidation fees into the fund: every isolated close, then every cross book
    n_def = 0
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                if bk.s_state[p] == SlotState.LIQ_ISOLATED:
                    g[Glob.FUND] += sc.s_lfee[p]
                    if sc.s_ldef[p] > 0.0:
                        n_def += 1
                elif bk.s_state[p] == SlotState.LIQ_PARTIAL:  # partly closed: its fee, then live again
                    g[Glob.FUND] += sc.s_lfee[p]
                    bk.s_state[p] = SlotState.LIVE
                    sc.s_lfee[p] = 0.0
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            flag = sc.acc_flag[a]
            if flag & AccountFlag.CROSS_LIQ:
                g[Glob.FUND] += sc.acc_xfee[a]
                if sc.acc_xdef[a] > 0.0:
                    n_def += 1
            elif flag & AccountFlag.EMPTY_DEFICIT:
                n_def += 1
    if n_def > 0:
        d_acct = np.empty(n_def, np.int64)
        d_slot = np.empty(n_def, np.int64)
        d_amt = np.empty(n_def)
        n = 0
        for b in range(n_blocks):
            for j in range(sc.blk_nliq[b]):
                a = sc.liq_acct[b * size + j]
                for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                    if bk.s_state[p] == SlotState.LIQ_ISOLATED and sc.s_ldef[p] > 0.0:
                        d_acct[n] = a
                        d_slot[n] = p
                        d_amt[n] = sc.s_ldef[p]
                        n += 1
        for b in range(n_blocks):
            for j in range(sc.blk_nliq[b]):
                a = sc.liq_acct[b * size + j]
                flag = sc.acc_flag[a]
                if ((flag & AccountFlag.CROSS_LIQ) and sc.acc_xdef[a] > 0.0) or (
                        not (flag & AccountFlag.CROSS_LIQ) and (flag & AccountFlag.EMPTY_DEFICIT)):
                    d_acct[n] = a
                    d_slot[n] = -1
                    d_amt[n] = sc.acc_xdef[a]
                    n += 1
        for i in range(n_def):
            sc.acc_flag[d_acct[i]] |= AccountFlag.EXCLUDED
        total = 0.0
        for i in range(n_def):
            total += d_amt[i]
        ratio = min(1.0, g[Glob.FUND] / total)
        n_keys = 2 * ct.maker_fee.size
        cache = [np.empty(0, np.int64) for _ in range(n_keys)]
        built = np.zeros(n_keys, np.bool_)
        ranked = False
        for i in range(n_def):
            a = d_acct[i]
            slot = d_slot[i]
            deficit = d_amt[i]
            paid = ratio * deficit
            g[Glob.FUND] = max(0.0, g[Glob.FUND] - paid)
            g[Glob.BAD_DEBT] += deficit
            g[Glob.INSURANCE_PAID] += paid
            emit_nb(ev, row, t, k, Stage.BAD_DEBT, 0, a, EventKind.BAD_DEBT, -1, -1, 0, NAN, NAN, deficit, 0.0,
                    bk.acc_wallet[a], NAN, Reason.FUND_PAID, 0, 0, paid, 0.0, 0.0, 0.0)
            shortfall = deficit - paid
            recovered = 0.0
            has_closes = slot >= 0 or (sc.acc_flag[a] & AccountFlag.CROSS_LIQ) != 0
            if shortfall > 0.0 and has_closes:
                if not ranked:
                    adl_scores_nb(bk, ct, sc, pr, cur, t, k)
                    ranked = True
                recovered = deleverage_nb(bk, ct, sc, ev, pr, row, t, k, last, cur, a, slot, deficit, shortfall,
                                          cache, built)
            socialised = deficit - paid - recovered
            g[Glob.SOCIALISED] += socialised
            g[Glob.STEP_SOCIALISED] += socialised
            if slot < 0:
                bk.acc_wallet[a] = 0.0
    # the liquidated positions leave the book
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                if bk.s_state[p] == SlotState.LIQ_ISOLATED or bk.s_state[p] == SlotState.LIQ_CROSS:
                    bk.s_state[p] = SlotState.EMPTY
                    bk.s_lp[p] = NAN
                    sc.s_ldef[p] = 0.0
                    sc.s_lfee[p] = 0.0
            sc.acc_flag[a] = 0
            wake_now_nb(sc, pr, a, t, last)
            sc.acc_xfee[a] = 0.0
            sc.acc_xdef[a] = 0.0
        sc.blk_nliq[b] = 0


@njit(**NB_INNER)
def impact_fraction_nb(q, coef, volume):
    """``riskcore.impact.fraction``: the square-root law."""
    if not q > 0.0:
        return 0.0
    return min(MAX_IMPACT, coef * math.sqrt(q / volume))


@njit(**NB_INNER)
def depth_walk_nb(q, dist, cum, n, g):
    """``riskcore.impact.depth_walk``: (the distance reached, the average distance)."""
    if not q > 0.0:
        return 0.0, 0.0
    x0 = 0.0
    d0 = 0.0
    area = 0.0
    slope = 0.0
    for i in range(n):
        x1 = cum[i] * g
        d1 = dist[i]
        slope = (d1 - d0) / (x1 - x0)
        if q <= x1:
            d = d0 + slope * (q - x0)
            area += 0.5 * (d0 + d) * (q - x0)
            return min(MAX_IMPACT, d), min(MAX_IMPACT, area / q)
        area += 0.5 * (d0 + d1) * (x1 - x0)
        x0 = x1
        d0 = d1
    d = d0 + slope * (q - x0)
    area += 0.5 * (d0 + d) * (q - x0)
    return min(MAX_IMPACT, d), min(MAX_IMPACT, area / q)


@njit(**NB_INNER)
def impact_of_nb(q, im, c):
    """``riskcore.impact.impact_of`` at the mark's multiplier now: (reached, average)."""
    n = im.depth_n[c]
    if n == 0:
        f = impact_fraction_nb(q, im.coef[c], im.volume[c])
        return f, f
    m = max(MIN_MULTIPLIER, (1.0 + im.shift[c, 0]) + im.shift[c, 1])
    g = max(MIN_DEPTH, 1.0 - im.thinning[c] * abs(m - 1.0))
    return depth_walk_nb(q, im.depth_dist[c], im.depth_cum[c], n, g)


@njit(**NB_INNER)
def flow_nb(bk, sc, pr, im):
    """The round's liquidation flow (notional at the trigger prices by contract and view),
    summed account by account in order and over each account's slots, and the impact its
    fills take (``sc.imp_slip``)."""
    flow = im.flow
    flow[:, :] = 0.0
    for b in range(sc.blk_nliq.size):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * pr.block + j]
            for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                st = bk.s_state[p]
                if st == SlotState.LIQ_ISOLATED or st == SlotState.LIQ_CROSS:
                    flow[np.int64(bk.s_contract[p]), view_nb(bk.s_side[p])] += bk.s_qty[p] * sc.s_lpx[p]
    for c in range(flow.shape[0]):
        for v in range(2):
            sc.imp_slip[c, v] = impact_of_nb(flow[c, v], im, c)[1]  # the average impact of the side's flow


@njit(**NB_INNER)
def settle_block_nb(bk, ct, sc, ev, pr, b, row, t, k, cur):
    for j in range(sc.blk_nliq[b]):
        liquidate_nb(bk, ct, sc, ev, pr, sc.liq_acct[b * pr.block + j], b, row, t, k, cur)
    return 0


@njit(**NB_PARALLEL_INNER)
def settle_nb(bk, ct, sc, ev, pr, t, k, cur):
    """The liquidations phase A marked, closed at their impacted prices (parallel over blocks)."""
    done = np.zeros(sc.blk_nliq.size, np.int64)
    n_blocks = done.size
    for b in prange(n_blocks):
        row = np.int64(numba.get_thread_id())
        done[b] = settle_block_nb(bk, ct, sc, ev, pr, np.int64(b), row, t, k, cur)


@njit(**NB_INNER)
def move_mark_nb(im):
    """``ReferenceEngine.move_mark``: the net flow moves each contract's mark shifts by the
    impact of its size; returns whether any moved."""
    moved = False
    for c in range(im.flow.shape[0]):
        net = im.flow[c, 0] - im.flow[c, 1]
        if net == 0.0 or (im.perm[c] == 0.0 and im.trans[c] == 0.0):
            continue
        size = impact_of_nb(abs(net), im, c)[0]  # where the net flow reached
        if size == 0.0:
            continue
        move = -size if net > 0.0 else size
        im.shift[c, 0] += im.perm[c] * move
        im.shift[c, 1] += im.trans[c] * move
        moved = True
    return moved


@njit(**NB_INNER)
def effective_nb(shift, base, cur):
    """``ReferenceEngine.effective``: the path's prices times each contract's multiplier."""
    for c in range(base.shape[0]):
        m = max(MIN_MULTIPLIER, (1.0 + shift[c, 0]) + shift[c, 1])
        cur[c, 0] = base[c, 0] * m
        cur[c, 1] = base[c, 1] * m


@njit(**NB_INNER)
def open_bar_nb(im):
    """The transient shift of the mark decays bar by bar."""
    for c in range(im.decay.size):
        im.shift[c, 1] *= im.decay[c]


ENVELOPE = 0.002  # slack of the multipliers the bands allow for, beyond the mark's current range


@njit(**NB_INNER)
def envelope_nb(im):
    """After the mark moved: are every contract's multiplier now and at the end of its decay
    inside the range the sleeping accounts' bands allow for (``im.env``: lowest and
    highest)?  If not, the range becomes theirs widened by :data:`ENVELOPE`, and True is
    returned: every account must then be looked at again.  (The multiplier moves
    monotonically from now to the end of the decay, so the two ends are enough.)"""
    reset = False
    for c in range(im.env.shape[0]):
        m_now = max(MIN_MULTIPLIER, (1.0 + im.shift[c, 0]) + im.shift[c, 1])
        m_end = max(MIN_MULTIPLIER, 1.0 + im.shift[c, 0])
        lo = min(m_now, m_end)
        hi = max(m_now, m_end)
        if lo < im.env[c, 0] or hi > im.env[c, 1]:
            im.env[c, 0] = lo / (1.0 + ENVELOPE)
            im.env[c, 1] = hi * (1.0 + ENVELOPE)
            reset = True
    return reset


@njit(**NB_INNER)
def wake_everyone_nb(sc, t):
    """Every account looked at from bar ``t`` on (the mark moved under its bands)."""
    for a in range(sc.acc_wake.size):
        if sc.acc_wake[a] > t:
            sc.acc_wake[a] = t
    for b in range(sc.blk_wake.size):
        if sc.blk_wake[b] > t:
            sc.blk_wake[b] = t


@njit(**NB_INNER)
def begin_step_nb(sc):
    sc.blk_acc[:, :] = 0.0
    for i in range(Glob.BAD_DEBT, sc.glob.size):
        sc.glob[i] = 0.0


@njit(**NB_INNER)
def end_step_nb(sc, t):
    """The step's row of ``STEP_COLUMNS[2:]``: block sums and the serial phase's sums."""
    s = sc.steps
    acc = np.zeros(sc.blk_acc.shape[1])
    for b in range(sc.blk_acc.shape[0]):
        for j in range(acc.size):
            acc[j] += sc.blk_acc[b, j]
    g = sc.glob
    s[t, 0] = g[Glob.FUND]
    s[t, 1] = acc[BlockAcc.ACCOUNTS_LIQUIDATED]
    s[t, 2] = acc[BlockAcc.LIQUIDATIONS]
    s[t, 3] = acc[BlockAcc.LIQUIDATED_NOTIONAL]
    s[t, 4] = g[Glob.BAD_DEBT]
    s[t, 5] = g[Glob.INSURANCE_PAID]
    s[t, 6] = g[Glob.ADL_RECOVERED]
    s[t, 7] = g[Glob.STEP_SOCIALISED]
    s[t, 8] = acc[BlockAcc.TOPUPS]
    s[t, 9] = acc[BlockAcc.TOPUP_AMOUNT]
    s[t, 10] = acc[BlockAcc.FUNDING_PAID]
    s[t, 11] = acc[BlockAcc.OPEN_INTEREST] + acc[BlockAcc.OI_ADJUST]


@njit(**NB_INNER)
def start_prices_nb(mk, im, t_start, prev):
    """Prices before the first point of bar ``t_start``: the book's marks at the start of the
    run, else where the previous bar ended (its close times the mark's multiplier then)."""
    if t_start == 0:
        prev[:, :] = mk.init_prev
    else:
        prev[:, :] = im.last_px


@njit(**NB)
def funding_only_nb(bk, ct, mk, lv, sc, ev, pr, im, t):
    """Open bar ``t`` and settle its funding only (the tape's actions run next, in Python)."""
    begin_step_nb(sc)
    open_bar_nb(im)
    n_c = ct.maker_fee.size
    base = np.empty((n_c, 2))
    cur = np.empty((n_c, 2))
    zero = np.int64(0)
    yes = np.bool_(True)
    point_prices_nb(mk.ohlc, t, zero, pr.intrabar, base)
    effective_nb(im.shift, base, cur)
    due = False
    for c in range(n_c):
        if mk.rates[t, c] != 0.0:
            due = True
    if due:
        phase_a_nb(bk, ct, lv, sc, ev, pr, t, zero, yes, yes, yes, not yes, mk.rates[t], cur, cur, im.env)


@njit(**NB_INNER)
def events_held_nb(ev):
    """Whether some buffer row holds an event."""
    for r in range(ev.count.size):
        if ev.count[r] > 0:
            return True
    return False


@njit(**NB_INNER)
def half_full_nb(ev):
    """Whether some buffer row holds more than half of its capacity."""
    half = ev.ints.shape[1] // 2
    for r in range(ev.count.size):
        if ev.count[r] > half:
            return True
    return False


@njit(**NB)
def run_steps_nb(bk, ct, mk, lv, sc, ev, pr, im, t_start, t_end, resume):
    """Step bars ``t_start`` to ``t_end - 1`` through their intrabar points.

    ``resume``: bar ``t_start`` was opened by :func:`funding_only_nb` (funding settled, the
    tape applied), so its first point starts at the limit fills.  Mutates ``bk``, ``sc``
    and ``ev``; writes ``sc.steps[t]`` at the end of each bar.  Returns the bar it stopped
    before: ``t_end``, or earlier when a buffer row of ``ev`` is more than half full at
    the end of a bar, or before a funding bar when the buffers hold events (the caller
    empties the buffers and goes on from there, so the buffers need room for one bar
    only: see ``engine.default_capacity``)."""
    n_c = ct.maker_fee.size
    prev = np.empty((n_c, 2))
    cur = np.empty((n_c, 2))
    base = np.empty((n_c, 2))
    start_prices_nb(mk, im, t_start, prev)
    n_points = n_points_nb(pr.intrabar)
    stop = t_end
    for t in range(t_start, t_end):
        first = resume and t == t_start
        due = False
        if not first:
            for c in range(n_c):
                if mk.rates[t, c] != 0.0:
                    due = True
        if due and t > t_start and events_held_nb(ev):
            stop = t  # a funding bar (an event per position) starts with empty buffers
            break
        if not first:
            begin_step_nb(sc)
            open_bar_nb(im)
        for k in range(n_points):
            point_prices_nb(mk.ohlc, t, k, pr.intrabar, base)
            effective_nb(im.shift, base, cur)
            gap = k == 0 and (t == 0 or pr.intrabar != Intrabar.CLOSE)
            last = k == n_points - 1
            funding = k == 0 and due
            band = last and not pr.impact  # with impact, the bar ends after the rounds (end_bar_nb)
            r = 0
            while True:  # cascade rounds (one unless liquidations move the mark)
                ev.round[0] = r
                phase_a_nb(bk, ct, lv, sc, ev, pr, t, k, gap, funding, np.bool_(False), band, mk.rates[t], prev,
                           cur, im.env)
                moved = False
                if sc.blk_nliq.sum() > 0:
                    if pr.impact:
                        flow_nb(bk, sc, pr, im)
                        settle_nb(bk, ct, sc, ev, pr, t, k, cur)
                    # with impact more rounds may follow: what it touches is looked at again now
                    phase_b_nb(bk, ct, sc, ev, pr, t, k, band, cur)
                    if pr.impact:
                        moved = move_mark_nb(im)
                if not moved:
                    break
                prev[:, :] = cur
                effective_nb(im.shift, base, cur)
                gap = False
                funding = False
                if envelope_nb(im):  # out of what the sleeping accounts' bands allow for
                    wake_everyone_nb(sc, t)
                if r + 1 >= pr.rounds:  # the bound: the next point looks at the moved mark
                    break
                r += 1
            ev.round[0] = 0
            if last and pr.impact:
                end_bar_nb(bk, ct, lv, sc, pr, t, cur, im.env)
            prev[:, :] = cur
        end_step_nb(sc, t)
        if t + 1 < t_end and half_full_nb(ev):
            stop = t + 1
            break
    im.last_px[:, :] = prev
    return stop
