"""Per-account kernels: everything one account does at one intrabar point.

These functions touch only the state of account ``a`` (its wallet, slots and
orders) plus the per-block accumulators of the block it belongs to, so
:func:`riskcore.kernels.step_nb.phase_a_nb` runs them in parallel over accounts.
They follow :class:`riskcore.reference.engine.ReferenceEngine` and
:meth:`riskcore.book.Book._fill` operation for operation (same float order), so an
account's money matches the reference bit for bit.  Prices: ``cur``/``prev`` are
``[n_contracts, 2]`` arrays, column 0 the price a long (or a buy) sees, column 1 a
short's (they differ only at the adverse point of the ``worst`` model).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .enums import (LEG_BOTH, LEG_LONG, LEG_SHORT, MARGIN_CROSS, MARGIN_ISOLATED, AccountFlag, BlockAcc,
                    EventKind, EvF, EvI, Ledger, Procedure, Reason, Refusal, SlotState, Stage)
from .margin_nb import beyond_nb, isolated_lp_nb, max_notional_nb, mm_nb, tier_nb
from .options import NB, NB_INLINE, NB_INNER

NAN = math.nan


@njit(**NB_INLINE)
def view_nb(side):
    return 0 if side > 0 else 1


@njit(**NB_INLINE)
def lev_nb(bk, a, c, leg):
    """``Settings.leverage(leg, side)``: the short leg has its own, both/long use the long one."""
    return bk.set_lev_short[a, c] if leg == LEG_SHORT else bk.set_lev_long[a, c]


@njit(**NB_INLINE)
def auto_nb(bk, a, c, leg):
    return bk.set_auto_short[a, c] if leg == LEG_SHORT else bk.set_auto_long[a, c]


@njit(**NB_INLINE)
def find_slot_nb(bk, a, c, leg):
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_contract[p] == c and bk.s_leg[p] == leg:
            return p
    return -1


@njit(**NB_INNER)
def next_seq_nb(bk, a):
    """A ``s_seq`` above every slot of account ``a``: a position opened now comes last in
    the Book's dict (the order in which it names a blocking position)."""
    top = -1
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        top = max(top, bk.s_seq[p])
    return top + 1


@njit(**NB_INLINE)
def slot_lp_nb(ct, c, live, isolated, side, qty, entry, wallet, mm_entry):
    """The cached isolated liquidation price of a slot: NaN unless live and isolated."""
    if live and isolated:
        return isolated_lp_nb(ct, c, side, qty, entry, wallet, mm_entry)
    return NAN


@njit(**NB_INNER)
def refresh_lp_nb(bk, ct, a, p, mm_entry):
    """Re-cache the isolated liquidation price of slot ``p`` after its state changed."""
    c = np.int64(bk.s_contract[p])
    bk.s_lp[p] = slot_lp_nb(ct, c, bk.s_state[p] == SlotState.LIVE, bk.set_mode[a, c] == MARGIN_ISOLATED,
                            bk.s_side[p], bk.s_qty[p], bk.s_entry[p], bk.s_wiso[p], mm_entry)


@njit(**NB)
def init_lp_nb(bk, ct, mm_entry):
    """Cache every isolated liquidation price (NaN for cross and empty slots); the
    whole-book form of :func:`refresh_lp_nb`, with the arrays taken out of ``bk`` once
    (handing the whole struct to a call per slot cost more than the formula)."""
    slot0, contract, state, mode = bk.acc_slot0, bk.s_contract, bk.s_state, bk.set_mode
    side, qty, entry, wiso, lp = bk.s_side, bk.s_qty, bk.s_entry, bk.s_wiso, bk.s_lp
    for a in range(bk.acc_wallet.size):
        for p in range(slot0[a], slot0[a + 1]):
            c = np.int64(contract[p])
            lp[p] = slot_lp_nb(ct, c, state[p] == SlotState.LIVE, mode[a, c] == MARGIN_ISOLATED, side[p], qty[p],
                               entry[p], wiso[p], mm_entry)


@njit(**NB_INLINE)
def emit_nb(ev, row, t, k, stage, sub, acct, kind, c, leg, side, qty, price, amount, fee, wallet, wiso,
            reason, rcode, ival, r0, r1, r2, r3):
    """Append one event record to buffer row ``row``; count it as overflow when full."""
    n = ev.count[row]
    if n >= ev.ints.shape[1]:
        ev.overflow[row] += 1
        return
    ei = ev.ints[row, n]
    ei[EvI.T] = t
    ei[EvI.K] = k
    ei[EvI.STAGE] = stage
    ei[EvI.SUB] = sub
    ei[EvI.ACCOUNT] = acct
    ei[EvI.SEQ] = n
    ei[EvI.KIND] = kind
    ei[EvI.CONTRACT] = c
    ei[EvI.LEG] = leg
    ei[EvI.SIDE] = side
    ei[EvI.REASON] = reason
    ei[EvI.RCODE] = rcode
    ei[EvI.IVAL] = ival
    ei[EvI.ROUND] = ev.round[0]
    ef = ev.floats[row, n]
    ef[EvF.QTY] = qty
    ef[EvF.PRICE] = price
    ef[EvF.AMOUNT] = amount
    ef[EvF.FEE] = fee
    ef[EvF.WALLET] = wallet
    ef[EvF.WALLET_ISO] = wiso
    ef[EvF.R0] = r0
    ef[EvF.R1] = r1
    ef[EvF.R2] = r2
    ef[EvF.R3] = r3
    ev.count[row] = n + 1


# ---------------------------------------------------------------- margin read-outs
@njit(**NB_INLINE)
def closing_direction_nb(leg, side):
    return (leg == LEG_LONG and side < 0) or (leg == LEG_SHORT and side > 0)


@njit(**NB_INNER)
def opening_nb(bk, a, i):
    """Quantity resting order ``i`` would open (``Book._opening_orders``): 0 for reduce-only
    and hedge closing orders; a one-way order first uses up the opposite position not
    already claimed by earlier orders (by id) on its side."""
    if bk.o_reduce_only[i]:
        return 0.0
    leg = np.int64(bk.o_leg[i])
    if leg != LEG_BOTH:
        return 0.0 if closing_direction_nb(leg, bk.o_side[i]) else bk.o_qty[i]
    c = np.int64(bk.o_contract[i])
    side = np.int64(bk.o_side[i])
    reducible = 0.0
    p = find_slot_nb(bk, a, c, LEG_BOTH)
    if p >= 0 and bk.s_state[p] == SlotState.LIVE and bk.s_side[p] != side:
        reducible = bk.s_qty[p]
    for j in range(bk.acc_ord0[a], i):
        if (bk.o_live[j] and not bk.o_reduce_only[j] and bk.o_leg[j] == LEG_BOTH and bk.o_contract[j] == c
                and bk.o_side[j] == side):
            reducible -= min(reducible, bk.o_qty[j])
    used = min(reducible, bk.o_qty[i])
    return bk.o_qty[i] - used


@njit(**NB_INNER)
def order_margin_nb(bk, a):
    """Initial margin held by resting orders: opening qty x price / leverage (``Book._order_margin``).
    Orders of a position already marked for liquidation at this point hold none: they are
    cancelled first (section 6; ``ReferenceEngine.free_balance``)."""
    total = 0.0
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if bk.o_live[i]:
            p = find_slot_nb(bk, a, np.int64(bk.o_contract[i]), np.int64(bk.o_leg[i]))
            if p >= 0 and bk.s_state[p] == SlotState.LIQ_ISOLATED:
                continue
            total += opening_nb(bk, a, i) * bk.o_price[i] / lev_nb(bk, a, bk.o_contract[i], bk.o_leg[i])
    return total


@njit(**NB_INNER)
def free_balance_nb(bk, a, cur):
    """Section 3, as ``ReferenceEngine.free_balance``: cross wallet + cross uPnL - cross IM -
    order margin, floored at 0, each position valued at the price its side sees."""
    upnl = 0.0
    im = 0.0
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] != SlotState.LIVE or bk.set_mode[a, c] != MARGIN_CROSS:
            continue
        side = np.int64(bk.s_side[p])
        px = cur[c, view_nb(side)]
        notional = bk.s_qty[p] * px
        upnl += side * bk.s_qty[p] * (px - bk.s_entry[p])
        im += notional / lev_nb(bk, a, c, bk.s_leg[p])
    return max(0.0, bk.acc_wallet[a] + upnl - im - order_margin_nb(bk, a))


@njit(**NB_INNER)
def raw_free_nb(bk, a, cur):
    """``Book._raw_free`` at the marks (the long view): not floored."""
    upnl = 0.0
    im = 0.0
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] != SlotState.LIVE or bk.set_mode[a, c] != MARGIN_CROSS:
            continue
        mark = cur[c, 0]
        notional = bk.s_qty[p] * mark
        upnl += bk.s_side[p] * bk.s_qty[p] * (mark - bk.s_entry[p])
        im += notional / lev_nb(bk, a, c, bk.s_leg[p])
    return bk.acc_wallet[a] + upnl - im - order_margin_nb(bk, a)


@njit(**NB_INNER)
def capped_notional_nb(bk, a, p, c, leg, side, price):
    """What the leverage cap bounds on one side of (contract ``c``, ``leg``): the notional of
    slot ``p``'s position on ``side`` at ``price`` (0 when ``p`` < 0 or it is not on that
    side) plus the opening notional of the account's resting orders there
    (``Book._check_leverage_cap``)."""
    notional = 0.0
    if p >= 0 and bk.s_state[p] == SlotState.LIVE and bk.s_side[p] == side:
        notional = bk.s_qty[p] * price
    pending = 0.0
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if bk.o_live[i] and bk.o_contract[i] == c and bk.o_leg[i] == leg and bk.o_side[i] == side:
            pending += opening_nb(bk, a, i) * bk.o_price[i]
    return notional + pending


@njit(**NB_INNER)
def leverage_cap_nb(bk, ct, a, p, c, leg, price):
    """``Book._check_leverage_cap`` after a fill at ``price``: the position plus its
    same-direction opening orders must stay within the notional the leverage allows."""
    for side in (1, -1):
        if leg != LEG_BOTH and side != (1 if leg == LEG_LONG else -1):
            continue
        notional = capped_notional_nb(bk, a, p, c, leg, side, price)
        if notional == 0.0:
            continue
        lev = lev_nb(bk, a, c, leg)
        cap = max_notional_nb(ct, c, lev)
        if notional > cap * (1 + 1e-12):
            return Refusal.LEVERAGE_CAP, float(side), notional, cap, lev
    return Refusal.OK, 0.0, 0.0, 0.0, 0.0


@njit(**NB_INNER)
def fill_nb(bk, ct, a, p, c, leg, side, qty, price, fee_rate, reduce_only, cur, mm_entry):
    """One fill (section 5), as ``Book._fill`` inside ``Book._atomic``: on a refusal the
    account is left exactly as it was.  Slot ``p`` is the account's (contract, leg) slot.

    Returns ``(refusal, qty, realized, fee, r0, r1, r2, r3)``; ``qty`` is the filled
    quantity (reduce-only orders are clipped to the position)."""
    live = bk.s_state[p] == SlotState.LIVE
    pside = np.int64(bk.s_side[p])
    pqty = bk.s_qty[p]
    if leg == LEG_BOTH:
        opposite = live and pside != side
        close_qty = min(qty, pqty) if opposite else 0.0
        if reduce_only:
            if not opposite:
                return Refusal.REDUCE_ONLY_ONE_WAY, qty, 0.0, 0.0, float(side), float(pside) if live else 0.0, 0.0, 0.0
            qty = close_qty
        open_qty = qty - close_qty
        open_side = side
    else:
        if closing_direction_nb(leg, side):
            if not live:
                return Refusal.NO_LEG, qty, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            if reduce_only:
                qty = min(qty, pqty)
            if qty > pqty * (1 + 1e-12):
                return Refusal.CLOSE_EXCEEDS, qty, 0.0, 0.0, float(side), qty, pqty, float(pside)
            close_qty = min(qty, pqty)
            open_qty = 0.0
        else:
            if reduce_only:
                return Refusal.REDUCE_ONLY_HEDGE, qty, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            close_qty = 0.0
            open_qty = qty
        open_side = 1 if leg == LEG_LONG else -1
    isolated = bk.set_mode[a, c] == MARGIN_ISOLATED
    # saved for a rollback
    w0 = bk.acc_wallet[a]
    st0, sd0, q0, e0, wi0, tp0, sl0, lp0 = (bk.s_state[p], bk.s_side[p], bk.s_qty[p], bk.s_entry[p],
                                            bk.s_wiso[p], bk.s_tp[p], bk.s_sl[p], bk.s_lp[p])
    seq0 = bk.s_seq[p]
    realized = 0.0
    if close_qty > 0:
        realized = pside * close_qty * (price - bk.s_entry[p])
        if isolated:
            released = bk.s_wiso[p] * (close_qty / pqty)
            if released + realized < 0.0:
                bp = bk.s_entry[p] - pside * bk.s_wiso[p] / pqty
                return Refusal.BEYOND_BANKRUPTCY, qty, 0.0, 0.0, close_qty, price, bp, pqty
            bk.s_wiso[p] -= released
            bk.acc_wallet[a] += released
        bk.acc_wallet[a] += realized
        bk.s_qty[p] -= close_qty
        if bk.s_qty[p] <= 0.0:
            if isolated:
                bk.acc_wallet[a] += bk.s_wiso[p]
            bk.s_state[p] = SlotState.EMPTY
    if open_qty > 0:
        if bk.s_state[p] != SlotState.LIVE:
            bk.s_seq[p] = next_seq_nb(bk, a)  # a new entry goes last in the Book's dict
            bk.s_state[p] = SlotState.LIVE
            bk.s_side[p] = open_side
            bk.s_qty[p] = 0.0
            bk.s_entry[p] = price
            bk.s_wiso[p] = 0.0
            bk.s_tp[p] = NAN
            bk.s_sl[p] = NAN
        if bk.s_qty[p] > 0.0:
            bk.s_entry[p] = (bk.s_qty[p] * bk.s_entry[p] + open_qty * price) / (bk.s_qty[p] + open_qty)
        bk.s_qty[p] += open_qty
        if isolated:
            im = open_qty * price / lev_nb(bk, a, c, leg)
            bk.acc_wallet[a] -= im
            bk.s_wiso[p] += im
    fee = fee_rate * qty * price
    bk.acc_wallet[a] -= fee
    if open_qty > 0:
        code, r0, r1, r2, r3 = leverage_cap_nb(bk, ct, a, p, c, leg, price)
        if code == Refusal.OK:
            raw = raw_free_nb(bk, a, cur)
            if raw < -(1e-9 * (1.0 + abs(bk.acc_wallet[a]))):
                code, r0, r1, r2, r3 = Refusal.INSUFFICIENT_MARGIN, float(side), qty, -raw, 0.0
        if code != Refusal.OK:
            bk.acc_wallet[a] = w0
            bk.s_state[p], bk.s_side[p], bk.s_qty[p], bk.s_entry[p] = st0, sd0, q0, e0
            bk.s_wiso[p], bk.s_tp[p], bk.s_sl[p], bk.s_lp[p] = wi0, tp0, sl0, lp0
            bk.s_seq[p] = seq0
            return code, qty, 0.0, 0.0, r0, r1, r2, r3
    refresh_lp_nb(bk, ct, a, p, mm_entry)
    return Refusal.OK, qty, realized, fee, 0.0, 0.0, 0.0, 0.0


# ------------------------------------------------------------------------ stages
@njit(**NB_INNER)
def funding_nb(bk, ct, sc, ev, pr, a, b, row, t, rates_t, cur):
    """Stage 1 (section 7): ``received = -side * qty * mark * rate`` into the wallet that backs
    the position.  Events keyed by contract first, as the reference loops contracts outermost."""
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] != SlotState.LIVE:
            continue
        c = np.int64(bk.s_contract[p])
        rate = rates_t[c]
        if rate == 0.0:
            continue
        side = np.int64(bk.s_side[p])
        px = cur[c, 0]
        received = (-side) * bk.s_qty[p] * px * rate
        if bk.set_mode[a, c] == MARGIN_ISOLATED:
            bk.s_wiso[p] += received
            refresh_lp_nb(bk, ct, a, p, pr.mm_entry)
        else:
            bk.acc_wallet[a] += received
        sc.blk_ledger[b, Ledger.FUNDING] += received
        sc.blk_acc[b, BlockAcc.FUNDING_PAID] -= received
        emit_nb(ev, row, t, 0, Stage.FUNDING, c, a, EventKind.FUNDING, c, bk.s_leg[p], side, bk.s_qty[p], px,
                received, 0.0, bk.acc_wallet[a], bk.s_wiso[p], Reason.FUNDING_RATE, 0, 0, rate, 0.0, 0.0, 0.0)


@njit(**NB_INNER)
def limit_fills_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur):
    """Stage 3a: resting orders (by id) the price reached fill at the limit when crossed inside
    the segment, at the point's price after a gap; a refused fill cancels the order."""
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if not bk.o_live[i]:
            continue
        c = np.int64(bk.o_contract[i])
        side = np.int64(bk.o_side[i])
        v = view_nb(side)
        now = cur[c, v]
        limit = bk.o_price[i]
        if side * (now - limit) > 0:
            continue
        crossed = (not gap) and side * (prev[c, v] - limit) > 0
        px = limit if crossed else now
        bk.o_live[i] = False
        leg = np.int64(bk.o_leg[i])
        p = find_slot_nb(bk, a, c, leg)
        code, q, realized, fee, r0, r1, r2, r3 = fill_nb(bk, ct, a, p, c, leg, side, bk.o_qty[i], px,
                                                         ct.maker_fee[c], bk.o_reduce_only[i], cur, pr.mm_entry)
        if code != Refusal.OK:
            emit_nb(ev, row, t, k, Stage.FILLS, 0, a, EventKind.REFUSED, c, leg, side, bk.o_qty[i], px, 0.0, 0.0,
                    bk.acc_wallet[a], NAN, Reason.FILL_REFUSED, code, bk.o_id[i], r0, r1, r2, r3)
            continue
        sc.blk_ledger[b, Ledger.REALIZED] += realized
        sc.blk_ledger[b, Ledger.FEES] += fee
        wiso = bk.s_wiso[p] if bk.s_state[p] == SlotState.LIVE else 0.0
        emit_nb(ev, row, t, k, Stage.FILLS, 0, a, EventKind.FILL, c, leg, side, q, px, realized, fee,
                bk.acc_wallet[a], wiso, Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)


@njit(**NB_INNER)
def tp_sl_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur):
    """Stage 3b: a stop-loss (checked first) or take-profit the mark crossed closes the whole
    position at the trigger (at the point's price after a gap), reduce-only, taker fee."""
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] != SlotState.LIVE:
            continue
        c = np.int64(bk.s_contract[p])
        side = np.int64(bk.s_side[p])
        v = view_nb(side)
        now = cur[c, v]
        sl = bk.s_sl[p]
        tp = bk.s_tp[p]
        fired = -1
        level = 0.0
        if side * (now - sl) <= 0:  # False for NaN: no stop-loss
            fired = EventKind.SL
            level = sl
        elif side * (now - tp) >= 0:
            fired = EventKind.TP
            level = tp
        if fired < 0:
            continue
        before = prev[c, v]
        if fired == EventKind.SL:
            crossed = (not gap) and side * (before - level) > 0
        else:
            crossed = (not gap) and side * (before - level) < 0
        px = level if crossed else now
        qty = bk.s_qty[p]
        leg = np.int64(bk.s_leg[p])
        code, q, realized, fee, r0, r1, r2, r3 = fill_nb(bk, ct, a, p, c, leg, -side, qty, px, ct.taker_fee[c],
                                                         np.bool_(True), cur, pr.mm_entry)
        if code != Refusal.OK:
            reason = Reason.SL_REFUSED if fired == EventKind.SL else Reason.TP_REFUSED
            emit_nb(ev, row, t, k, Stage.TP_SL, 0, a, EventKind.REFUSED, c, leg, side, qty, px, 0.0, 0.0,
                    bk.acc_wallet[a], NAN, reason, code, 0, r0, r1, r2, r3)
            continue
        sc.blk_ledger[b, Ledger.REALIZED] += realized
        sc.blk_ledger[b, Ledger.FEES] += fee
        wiso = bk.s_wiso[p] if bk.s_state[p] == SlotState.LIVE else 0.0
        emit_nb(ev, row, t, k, Stage.TP_SL, 0, a, fired, c, leg, -side, q, px, realized, fee, bk.acc_wallet[a],
                wiso, Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)


@njit(**NB_INNER)
def isolated_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur):
    """Stage 4 (section 3): an isolated position whose mark reached its liquidation price is
    topped up (auto-add: ``min(Q*EP/L, free balance, Q*touch - W)``) while the price keeps
    crossing the moved LP; otherwise it is marked for liquidation at the touch price."""
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] != SlotState.LIVE:
            continue
        c = np.int64(bk.s_contract[p])
        if bk.set_mode[a, c] != MARGIN_ISOLATED:
            continue
        side = np.int64(bk.s_side[p])
        v = view_nb(side)
        now = cur[c, v]
        lp = bk.s_lp[p]
        if not beyond_nb(side, now, lp):
            continue
        touch = lp if ((not gap) and not beyond_nb(side, prev[c, v], lp)) else now
        leg = np.int64(bk.s_leg[p])
        auto = auto_nb(bk, a, c, leg)
        while True:
            amount = 0.0
            if auto:
                amount = min(bk.s_qty[p] * bk.s_entry[p] / lev_nb(bk, a, c, leg), free_balance_nb(bk, a, cur),
                             max(0.0, bk.s_qty[p] * touch - bk.s_wiso[p]))
            # A top-up too small to move the price (e.g. capped at 1x leverage) ends the loop.
            if amount <= 1e-9 * bk.s_qty[p] * bk.s_entry[p]:
                bk.s_state[p] = SlotState.LIQ_ISOLATED
                sc.s_lpx[p] = touch
                break
            bk.acc_wallet[a] -= amount
            bk.s_wiso[p] += amount
            sc.blk_acc[b, BlockAcc.TOPUPS] += 1.0
            sc.blk_acc[b, BlockAcc.TOPUP_AMOUNT] += amount
            emit_nb(ev, row, t, k, Stage.TOPUPS, 0, a, EventKind.TOPUP, c, leg, side, bk.s_qty[p], touch, amount,
                    0.0, bk.acc_wallet[a], bk.s_wiso[p], Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)
            refresh_lp_nb(bk, ct, a, p, pr.mm_entry)
            lp = bk.s_lp[p]
            if not beyond_nb(side, now, lp):
                break
            touch = lp if not gap else now


@njit(**NB_INNER)
def cross_excess_nb(bk, ct, a, prev, cur, lam, mode):
    """Margin balance minus maintenance margin of the cross book; prices at the segment's
    start (mode 0), its end (mode 1) or ``a + lam * (b - a)`` (mode 2)."""
    excess = bk.acc_wallet[a]
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] != SlotState.LIVE or bk.set_mode[a, c] != MARGIN_CROSS:
            continue
        side = np.int64(bk.s_side[p])
        v = view_nb(side)
        if mode == 0:
            px = prev[c, v]
        elif mode == 1:
            px = cur[c, v]
        else:
            px = prev[c, v] + lam * (cur[c, v] - prev[c, v])
        qty = bk.s_qty[p]
        excess += side * qty * (px - bk.s_entry[p])
        excess -= mm_nb(ct, c, qty * px)
    return excess


@njit(**NB_INNER)
def cross_trigger_nb(bk, ct, a, prev, cur):
    """The first lambda in [0, 1] where the cross excess reaches 0 along the segment, solved
    exactly on each linear piece between tier edges (``ReferenceEngine.cross_trigger``)."""
    f_lo = cross_excess_nb(bk, ct, a, prev, cur, 0.0, np.int64(0))
    if f_lo <= 0.0:
        return 1.0
    n = 1
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] == SlotState.LIVE and bk.set_mode[a, c] == MARGIN_CROSS:
            n += ct.n_tiers[c] - 1
    breaks = np.empty(n)
    breaks[0] = 1.0
    m = 1
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] != SlotState.LIVE or bk.set_mode[a, c] != MARGIN_CROSS:
            continue
        v = view_nb(bk.s_side[p])
        x0 = prev[c, v]
        x1 = cur[c, v]
        if x0 == x1:
            continue
        for j in range(ct.n_tiers[c] - 1):
            lam = (ct.cap[c, j] / bk.s_qty[p] - x0) / (x1 - x0)
            if 0.0 < lam < 1.0:
                breaks[m] = lam
                m += 1
    breaks = np.sort(breaks[:m])
    lo = 0.0
    last = -1.0
    for j in range(m):
        hi = breaks[j]
        if hi == last:  # a set in the reference: each lambda once
            continue
        last = hi
        f_hi = cross_excess_nb(bk, ct, a, prev, cur, hi, np.int64(2))
        if f_hi <= 0.0:
            return lo + (hi - lo) * f_lo / (f_lo - f_hi)
        lo = hi
        f_lo = f_hi
    return 1.0


@njit(**NB_INNER)
def cross_check_nb(bk, ct, sc, a, gap, prev, cur):
    """Stage 5 (section 4): the cross book liquidates when margin balance <= maintenance margin;
    its positions are marked with their trigger prices on the segment.  A flat cross book
    with a negative wallet is a deficit with nothing to close."""
    n_cross = 0
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] == SlotState.LIVE and bk.set_mode[a, bk.s_contract[p]] == MARGIN_CROSS:
            n_cross += 1
    if n_cross == 0:
        if bk.acc_wallet[a] < 0.0:
            sc.acc_flag[a] |= AccountFlag.EMPTY_DEFICIT
        return
    if cross_excess_nb(bk, ct, a, prev, cur, 0.0, np.int64(1)) > 0.0:
        return
    lam = 1.0 if gap else cross_trigger_nb(bk, ct, a, prev, cur)
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        c = np.int64(bk.s_contract[p])
        if bk.s_state[p] == SlotState.LIVE and bk.set_mode[a, c] == MARGIN_CROSS:
            v = view_nb(bk.s_side[p])
            sc.s_lpx[p] = prev[c, v] + lam * (cur[c, v] - prev[c, v])
            bk.s_state[p] = SlotState.LIQ_CROSS
    sc.acc_flag[a] |= AccountFlag.CROSS_LIQ


@njit(**NB_INNER)
def cancel_orders_nb(bk, ev, row, t, k, stage, a, scope_c, scope_leg):
    """Cancel the account's resting orders in a liquidated scope (by id): one (contract, leg),
    or with ``scope_c < 0`` every order on a cross contract."""
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if not bk.o_live[i]:
            continue
        c = np.int64(bk.o_contract[i])
        if scope_c >= 0:
            if c != scope_c or bk.o_leg[i] != scope_leg:
                continue
        elif bk.set_mode[a, c] != MARGIN_CROSS:
            continue
        bk.o_live[i] = False
        emit_nb(ev, row, t, k, stage, 0, a, EventKind.CANCEL, c, bk.o_leg[i], bk.o_side[i], bk.o_qty[i],
                bk.o_price[i], 0.0, 0.0, bk.acc_wallet[a], NAN, Reason.CANCEL_LIQUIDATION, 0, bk.o_id[i],
                0.0, 0.0, 0.0, 0.0)


@njit(**NB_INNER)
def count_liquidated_nb(sc, a, b, t, n_closes, notional):
    if sc.acc_last_liq[a] != t:
        sc.acc_last_liq[a] = t
        sc.blk_acc[b, BlockAcc.ACCOUNTS_LIQUIDATED] += 1.0
    sc.blk_acc[b, BlockAcc.LIQUIDATIONS] += n_closes
    sc.blk_acc[b, BlockAcc.LIQUIDATED_NOTIONAL] += notional


@njit(**NB_INNER)
def exec_px_nb(sc, pr, c, side, trigger):
    """The trigger moved by the slippage and the round's impact (``ReferenceEngine.exec_price``)."""
    return trigger * (1.0 - side * (pr.slippage + sc.imp_slip[c, view_nb(side)]))


@njit(**NB_INNER)
def keep_nb(ct, c, qty, trigger, level):
    """``ReferenceEngine.keep_candidates``: what a partial liquidation at ``level`` keeps of a
    position of ``qty`` triggered at ``trigger`` (the whole ``qty`` when nothing is closed)."""
    proc = ct.procedure[c]
    if proc == Procedure.TIERS or proc == Procedure.FIRST_TIER:
        i = tier_nb(ct, c, qty * trigger)
        if i + 1 < ct.partial_from[c]:
            return qty
        j = 0 if proc == Procedure.FIRST_TIER else i - level
        if j < 0:
            j = 0
        keep = ct.cap[c, j] / trigger
        return keep if keep < qty else qty
    if proc == Procedure.SLICES and qty * trigger > ct.slice_above[c]:
        return qty * (1.0 - ct.slice_fraction[c])
    return qty


@njit(**NB_INNER)
def levels_nb(ct, c, qty, trigger):
    """``ReferenceEngine.levels``: how many partial steps the contract's procedure offers."""
    proc = ct.procedure[c]
    if proc == Procedure.TIERS or proc == Procedure.FIRST_TIER:
        i = tier_nb(ct, c, qty * trigger)
        if i + 1 < ct.partial_from[c]:
            return 0
        return 1 if proc == Procedure.FIRST_TIER else i
    if proc == Procedure.SLICES and qty * trigger > ct.slice_above[c]:
        return 1
    return 0


@njit(**NB_INNER)
def partial_isolated_nb(bk, ct, sc, pr, p, c, side, now):
    """``ReferenceEngine.partial_isolated``: the quantity a partial liquidation keeps of the
    isolated slot ``p`` (0: none leaves it short of its liquidation price at ``now``)."""
    qty = bk.s_qty[p]
    trigger = sc.s_lpx[p]
    x = exec_px_nb(sc, pr, c, side, trigger)
    rate = ct.liq_fee[c]
    entry = bk.s_entry[p]
    for level in range(1, levels_nb(ct, c, qty, trigger) + 1):
        keep = keep_nb(ct, c, qty, trigger, level)
        if not keep < qty:
            continue
        q = qty - keep
        wallet = bk.s_wiso[p] + side * q * (x - entry) - rate * (q * x)
        if not beyond_nb(side, now, isolated_lp_nb(ct, c, bk.s_side[p], keep, entry, wallet, pr.mm_entry)):
            return keep
    return 0.0


@njit(**NB_INNER)
def cross_fee_nb(bk, ct, sc, a, want, qty_closed):
    """``ReferenceEngine.fee_sum`` over the account's slots in state ``want`` closing
    ``qty_closed[p - slot0]`` at ``sc.s_lpx[p]`` (the execution price): one rate times the total
    notional when every close has the same rate, else the sum of ``rate x notional``."""
    s0 = bk.acc_slot0[a]
    r0 = 0.0
    uniform = True
    first = True
    total = 0.0
    for p in range(s0, bk.acc_slot0[a + 1]):
        if bk.s_state[p] != want or not qty_closed[p - s0] > 0.0:
            continue
        r = ct.liq_fee[np.int64(bk.s_contract[p])]
        if first:
            r0 = r
            first = False
        elif r != r0:
            uniform = False
        total += qty_closed[p - s0] * sc.s_lpx[p]
    if uniform:
        return r0 * total
    fee = 0.0
    for p in range(s0, bk.acc_slot0[a + 1]):
        if bk.s_state[p] != want or not qty_closed[p - s0] > 0.0:
            continue
        fee += ct.liq_fee[np.int64(bk.s_contract[p])] * (qty_closed[p - s0] * sc.s_lpx[p])
    return fee


@njit(**NB_INNER)
def partial_cross_nb(bk, ct, sc, ev, pr, a, b, row, t, k, cur):
    """``ReferenceEngine.partial_cross``: the first level at which every doomed cross position
    stepped down leaves the book above maintenance margin at ``cur``; its closes are made (the
    slots live again with the rest) and True returned, else nothing changes and False."""
    s0 = bk.acc_slot0[a]
    s1 = bk.acc_slot0[a + 1]
    n_levels = 0
    for p in range(s0, s1):
        if bk.s_state[p] == SlotState.LIQ_CROSS:
            n = levels_nb(ct, np.int64(bk.s_contract[p]), bk.s_qty[p], sc.s_lpx[p])
            if n > n_levels:
                n_levels = n
    if n_levels == 0:
        return False
    held = bk.s_qty[s0:s1].copy()
    trig = sc.s_lpx[s0:s1].copy()
    doomed = np.zeros(s1 - s0, np.bool_)
    for p in range(s0, s1):
        doomed[p - s0] = bk.s_state[p] == SlotState.LIQ_CROSS
    kept = held.copy()
    closed = np.zeros(s1 - s0)
    wallet0 = bk.acc_wallet[a]
    for level in range(1, n_levels + 1):
        change = False
        for p in range(s0, s1):
            closed[p - s0] = 0.0
            kept[p - s0] = held[p - s0]
            if doomed[p - s0]:
                keep = keep_nb(ct, np.int64(bk.s_contract[p]), held[p - s0], trig[p - s0], level)
                if keep < held[p - s0]:
                    kept[p - s0] = keep
                    closed[p - s0] = held[p - s0] - keep
                    change = True
        if not change:
            continue
        total_realized = 0.0
        for p in range(s0, s1):  # execution prices, for cross_fee_nb
            if doomed[p - s0]:
                side = np.int64(bk.s_side[p])
                sc.s_lpx[p] = exec_px_nb(sc, pr, np.int64(bk.s_contract[p]), side, trig[p - s0])
                if closed[p - s0] > 0.0:
                    total_realized += side * closed[p - s0] * (sc.s_lpx[p] - bk.s_entry[p])
        fee = cross_fee_nb(bk, ct, sc, a, SlotState.LIQ_CROSS, closed)
        wallet = bk.acc_wallet[a] + total_realized - fee
        for p in range(s0, s1):
            if doomed[p - s0]:
                bk.s_state[p] = SlotState.LIVE
                bk.s_qty[p] = kept[p - s0]
        bk.acc_wallet[a] = wallet
        safe = cross_excess_nb(bk, ct, a, cur, cur, 0.0, np.int64(1)) > 0.0
        if not safe:
            for p in range(s0, s1):
                if doomed[p - s0]:
                    bk.s_state[p] = SlotState.LIQ_CROSS
                    bk.s_qty[p] = held[p - s0]
                    sc.s_lpx[p] = trig[p - s0]
            bk.acc_wallet[a] = wallet0
            continue
        total_notional = 0.0
        n_closes = 0
        for p in range(s0, s1):
            if closed[p - s0] > 0.0:
                total_notional += closed[p - s0] * sc.s_lpx[p]
                n_closes += 1
        count_liquidated_nb(sc, a, b, t, float(n_closes), total_notional)
        for p in range(s0, s1):
            if not closed[p - s0] > 0.0:
                continue
            side = np.int64(bk.s_side[p])
            px = sc.s_lpx[p]
            q = closed[p - s0]
            notional = q * px
            realized = side * q * (px - bk.s_entry[p])
            sc.blk_ledger[b, Ledger.REALIZED] += realized
            share = fee * notional / total_notional if total_notional > 0 else 0.0
            emit_nb(ev, row, t, k, Stage.LIQ_CROSS, 0, a, EventKind.LIQUIDATION, bk.s_contract[p], bk.s_leg[p], side,
                    q, px, realized, share, bk.acc_wallet[a], 0.0, Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)
        sc.acc_xfee[a] = fee
        sc.acc_xdef[a] = 0.0
        return True
    return False


@njit(**NB_INNER)
def liquidate_nb(bk, ct, sc, ev, pr, a, b, row, t, k, cur):
    """Stage 6 (section 6): close the doomed isolated positions, then the doomed cross book, at
    their trigger prices moved by the slippage and the round's impact (``sc.imp_slip``); the
    fee (capped at what is left) is kept for the serial phase to pay into the fund, and any
    deficit is recorded.  Each contract's venue profile (``ct.procedure``, ``ct.backstop``,
    ``ct.takeover``, ``ct.liq_fee``) decides how much is closed and what the fund keeps, as
    ``ReferenceEngine.liquidate``: a partial isolated close leaves the slot ``LIQ_PARTIAL``
    (live again in the serial phase once its fee is paid), a partial cross close leaves the
    slots live."""
    flag = sc.acc_flag[a]
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] != SlotState.LIQ_ISOLATED:
            continue
        flag |= AccountFlag.ISO_LIQ
        c = np.int64(bk.s_contract[p])
        side = np.int64(bk.s_side[p])
        qty = bk.s_qty[p]
        cancel_orders_nb(bk, ev, row, t, k, Stage.LIQ_ISOLATED, a, c, np.int64(bk.s_leg[p]))
        trigger = sc.s_lpx[p]
        backstop = False
        if ct.backstop[c] > 0.0:
            backstop = (bk.s_wiso[p] + side * qty * (trigger - bk.s_entry[p])
                        < ct.backstop[c] * mm_nb(ct, c, qty * trigger))
        if ct.procedure[c] != Procedure.WHOLE and not backstop:
            keep = partial_isolated_nb(bk, ct, sc, pr, p, c, side, cur[c, view_nb(side)])
            if keep > 0.0:
                x = exec_px_nb(sc, pr, c, side, trigger)
                q = qty - keep
                realized = side * q * (x - bk.s_entry[p])
                notional = q * x
                fee = ct.liq_fee[c] * notional
                bk.s_wiso[p] = bk.s_wiso[p] + realized - fee
                bk.s_qty[p] = keep
                sc.blk_ledger[b, Ledger.REALIZED] += realized
                count_liquidated_nb(sc, a, b, t, 1.0, notional)
                emit_nb(ev, row, t, k, Stage.LIQ_ISOLATED, 0, a, EventKind.LIQUIDATION, c, bk.s_leg[p], side, q, x,
                        realized, fee, bk.acc_wallet[a], bk.s_wiso[p], Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)
                bk.s_state[p] = SlotState.LIVE  # the cached LP is that of a live position
                refresh_lp_nb(bk, ct, a, p, pr.mm_entry)
                bk.s_state[p] = SlotState.LIQ_PARTIAL
                sc.s_lpx[p] = x
                sc.s_lfee[p] = fee
                sc.s_ldef[p] = 0.0
                continue
        px = exec_px_nb(sc, pr, c, side, trigger)
        realized = side * qty * (px - bk.s_entry[p])
        notional = qty * px
        sc.blk_ledger[b, Ledger.REALIZED] += realized
        count_liquidated_nb(sc, a, b, t, 1.0, notional)
        equity = bk.s_wiso[p] + realized
        bk.s_wiso[p] = 0.0
        bk.s_lp[p] = NAN
        if backstop or ct.takeover[c]:
            fee = max(0.0, equity)
        else:
            fee = min(ct.liq_fee[c] * notional, max(0.0, equity))
        remaining = equity - fee
        if remaining >= 0.0:
            bk.acc_wallet[a] += remaining
        share = fee * notional / notional if notional > 0 else 0.0
        emit_nb(ev, row, t, k, Stage.LIQ_ISOLATED, 0, a, EventKind.LIQUIDATION, c, bk.s_leg[p], side, qty, px,
                realized, share, bk.acc_wallet[a], 0.0, Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)
        sc.s_lpx[p] = px
        sc.s_lfee[p] = fee
        sc.s_ldef[p] = -remaining if remaining < 0.0 else 0.0
    if flag & AccountFlag.CROSS_LIQ:
        cancel_orders_nb(bk, ev, row, t, k, Stage.LIQ_CROSS, a, np.int64(-1), np.int64(-1))
        s0 = bk.acc_slot0[a]
        s1 = bk.acc_slot0[a + 1]
        threshold = 0.0
        takeover = False
        partial = False
        for p in range(s0, s1):
            if bk.s_state[p] == SlotState.LIQ_CROSS:
                c = np.int64(bk.s_contract[p])
                if ct.backstop[c] > threshold:
                    threshold = ct.backstop[c]
                takeover = takeover or ct.takeover[c]
                partial = partial or ct.procedure[c] != Procedure.WHOLE
        backstop = False
        if threshold > 0.0:
            equity_at = bk.acc_wallet[a]
            mm_at = 0.0
            for p in range(s0, s1):
                if bk.s_state[p] == SlotState.LIQ_CROSS:
                    c = np.int64(bk.s_contract[p])
                    equity_at += bk.s_side[p] * bk.s_qty[p] * (sc.s_lpx[p] - bk.s_entry[p])
                    mm_at += mm_nb(ct, c, bk.s_qty[p] * sc.s_lpx[p])
            backstop = equity_at < threshold * mm_at
        if partial and not backstop and partial_cross_nb(bk, ct, sc, ev, pr, a, b, row, t, k, cur):
            sc.acc_flag[a] = flag
            return flag
        total_realized = 0.0
        total_notional = 0.0
        n_closes = 0
        for p in range(s0, s1):
            if bk.s_state[p] != SlotState.LIQ_CROSS:
                continue
            side = np.int64(bk.s_side[p])
            px = exec_px_nb(sc, pr, np.int64(bk.s_contract[p]), side, sc.s_lpx[p])
            sc.s_lpx[p] = px
            realized = bk.s_side[p] * bk.s_qty[p] * (px - bk.s_entry[p])
            sc.blk_ledger[b, Ledger.REALIZED] += realized
            total_realized += realized
            total_notional += bk.s_qty[p] * px
            n_closes += 1
        count_liquidated_nb(sc, a, b, t, float(n_closes), total_notional)
        equity = bk.acc_wallet[a] + total_realized
        if backstop or takeover:
            fee = max(0.0, equity)
        else:
            fee = min(cross_fee_nb(bk, ct, sc, a, SlotState.LIQ_CROSS, bk.s_qty[s0:s1]), max(0.0, equity))
        bk.acc_wallet[a] = equity - fee
        for p in range(s0, s1):
            if bk.s_state[p] != SlotState.LIQ_CROSS:
                continue
            px = sc.s_lpx[p]
            side = np.int64(bk.s_side[p])
            notional = bk.s_qty[p] * px
            realized = side * bk.s_qty[p] * (px - bk.s_entry[p])
            share = fee * notional / total_notional if total_notional > 0 else 0.0
            emit_nb(ev, row, t, k, Stage.LIQ_CROSS, 0, a, EventKind.LIQUIDATION, bk.s_contract[p], bk.s_leg[p], side,
                    bk.s_qty[p], px, realized, share, bk.acc_wallet[a], 0.0, Reason.NONE, 0, 0, 0.0, 0.0, 0.0, 0.0)
        sc.acc_xfee[a] = fee
        sc.acc_xdef[a] = -bk.acc_wallet[a] if bk.acc_wallet[a] < 0.0 else 0.0
    elif flag & AccountFlag.EMPTY_DEFICIT:
        if bk.acc_wallet[a] < 0.0:  # after isolated remainders, as the reference
            sc.acc_xdef[a] = -bk.acc_wallet[a]
        else:  # this point's isolated remainders made it good: no deficit
            flag &= ~AccountFlag.EMPTY_DEFICIT
    sc.acc_flag[a] = flag
    return flag


@njit(**NB_INNER)
def account_point_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, do_funding, rates_t, prev, cur):
    """Every per-account stage of one point, in the reference's order; returns the account's
    AccountFlag bits (non-zero: it needs the serial phase).  With market impact
    (``pr.impact``) the liquidations are left for :func:`riskcore.kernels.step_nb.settle_nb`,
    once the round's flow is known; the return value is then only non-zero or zero."""
    if do_funding:
        funding_nb(bk, ct, sc, ev, pr, a, b, row, t, rates_t, cur)
    limit_fills_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur)
    tp_sl_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur)
    isolated_nb(bk, ct, sc, ev, pr, a, b, row, t, k, gap, prev, cur)
    cross_check_nb(bk, ct, sc, a, gap, prev, cur)
    if sc.acc_flag[a] == 0:
        has_iso = False
        for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
            if bk.s_state[p] == SlotState.LIQ_ISOLATED:
                has_iso = True
                break
        if not has_iso:
            return 0
    if pr.impact:
        return 1
    return liquidate_nb(bk, ct, sc, ev, pr, a, b, row, t, k, cur)
