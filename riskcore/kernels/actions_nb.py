"""The tape's scheduled actions, applied to the struct-of-arrays at the first point of a bar.

Twin of ``ReferenceEngine.run_actions`` / ``run_action`` (riskcore/reference/engine.py)
and of the :class:`riskcore.book.Book` methods they call: every action of
:data:`riskcore.inputs.ACTIONS` runs its checks in the Book's order, and either
completes or is refused leaving the book exactly as it was (the Book's ``_atomic``).
A refusal is a :data:`~riskcore.kernels.enums.TapeRefusal` code with a float payload
``r0..r3``; :func:`riskcore.kernels.tape.tape_events` writes the Book's sentence from
them.  Checks that need no book state (unknown account or contract, a bad side word,
a non-positive amount ...) were made when the tape was encoded
(:func:`riskcore.kernels.tape.encode_tape`): such a row is only reported here, at its bar.

Every action emits exactly one event into ``ev`` row 0 (stage ACTIONS, point 0, in tape
order), so a buffer of ``len(tape)`` records never overflows.  Event ``IVAL`` is the
tape row (index into :class:`~riskcore.kernels.tape.TapeArrays`), ``RCODE`` the
refusal.  Money follows the Book's float operations in the same order (fastmath off),
so an account's money matches the reference bit for bit, except sums over an account's
positions: the Book adds them in its dict order, the kernel in (contract, leg) order.

Prices: ``cur`` is ``[n_contracts, 2]``, the bar's first point (the marks).  Accounts an
action changed are woken from bar ``t`` (``sleep_nb``), and cached isolated liquidation
prices are refreshed where a wallet or size changed.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .account_nb import (capped_notional_nb, closing_direction_nb, emit_nb, fill_nb, find_slot_nb, lev_nb, raw_free_nb,
                         refresh_lp_nb)
from .enums import (LEG_BOTH, LEG_LONG, LEG_SHORT, MARGIN_CROSS, MARGIN_ISOLATED, Action, EventKind, Ledger, Reason,
                    Refusal, SlotState, Stage, TapeRefusal)
from .margin_nb import max_notional_nb
from .options import NB, NB_INLINE, NB_INNER
from .step_nb import effective_nb, point_prices_nb, wake_now_nb

NAN = math.nan
OK = TapeRefusal.OK


@njit(**NB_INLINE)
def tol_nb(scale):
    """``riskcore.book._money_tolerance``."""
    return 1e-9 * (1.0 + abs(scale))


@njit(**NB_INLINE)
def py_max0_nb(x):
    """Python's ``max(0.0, x)`` (0.0 unless x is strictly greater)."""
    return x if x > 0.0 else 0.0


@njit(**NB_INLINE)
def no_refusal():
    """``(refusal, contract, leg, side, r0, r1, r2, r3)`` of an action that completed."""
    return OK, -1, -1, 0, 0.0, 0.0, 0.0, 0.0


@njit(**NB_INLINE)
def no_refusal_code(code):
    """A refusal without payload (or OK)."""
    return code, -1, -1, 0, 0.0, 0.0, 0.0, 0.0


@njit(**NB_INLINE)
def refusal(code, r0, r1, r2, r3):
    return code, -1, -1, 0, r0, r1, r2, r3


@njit(**NB_INNER)
def first_position_nb(bk, a, c):
    """The account's first live position in the Book's dict order (``s_seq``), on contract
    ``c`` or on any contract (``c < 0``); -1 when there is none."""
    best = -1
    for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
        if bk.s_state[p] == SlotState.LIVE and (c < 0 or bk.s_contract[p] == c):
            if best < 0 or bk.s_seq[p] < bk.s_seq[best]:
                best = p
    return best


@njit(**NB_INNER)
def first_order_nb(bk, a, c):
    """The account's first resting order (by id: the Book's dict order) on contract ``c`` or any."""
    for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
        if bk.o_live[i] and (c < 0 or bk.o_contract[i] == c):
            return i
    return -1


@njit(**NB_INNER)
def refuse_unless_flat_nb(bk, a, c):
    """``Book._refuse_unless_flat``: the first position, else the first order, in the way."""
    p = first_position_nb(bk, a, c)
    if p >= 0:
        return (TapeRefusal.BLOCKED_POS, int(bk.s_contract[p]), int(bk.s_leg[p]), int(bk.s_side[p]),
                float(bk.s_side[p]), bk.s_qty[p], 0.0, 0.0)
    i = first_order_nb(bk, a, c)
    if i >= 0:
        return (TapeRefusal.BLOCKED_ORDER, int(bk.o_contract[i]), int(bk.o_leg[i]), int(bk.o_side[i]),
                float(bk.o_id[i]), bk.o_qty[i], bk.o_price[i], float(bk.o_side[i]))
    return no_refusal()


@njit(**NB_INNER)
def cap_check_nb(bk, ct, a, c, leg, order_side, price):
    """``Book._check_leverage_cap`` with the mark as price: the (contract, leg) position on
    ``side`` plus its opening resting orders must stay within the notional the leverage
    allows.  ``order_side`` 0: both sides (None), else only that side for a one-way order."""
    p = find_slot_nb(bk, a, c, leg)
    for side in (1, -1):
        if leg != LEG_BOTH and side != (1 if leg == LEG_LONG else -1):
            continue
        if order_side != 0 and side != order_side and leg == LEG_BOTH:
            continue
        notional = capped_notional_nb(bk, a, p, c, leg, side, price)
        if notional == 0.0:
            continue
        lev = lev_nb(bk, a, c, leg)
        cap = max_notional_nb(ct, c, lev)
        if notional > cap * (1 + 1e-12):
            return TapeRefusal.LEV_CAP, float(side), notional, cap, lev
    return OK, 0.0, 0.0, 0.0, 0.0


@njit(**NB_INNER)
def order_leg_nb(bk, a, leg):
    """``Book._order_leg``: hedge orders name their leg, one-way orders have none."""
    if bk.acc_hedge[a] and leg == LEG_BOTH:
        return TapeRefusal.ORDER_LEG_HEDGE
    if not bk.acc_hedge[a] and leg != LEG_BOTH:
        return TapeRefusal.ORDER_LEG_ONE_WAY
    return OK


@njit(**NB_INNER)
def find_position_nb(bk, a, c, leg):
    """``Book._find_position``: (refusal, slot)."""
    if bk.acc_hedge[a] and leg == LEG_BOTH:
        return TapeRefusal.POS_LEG_HEDGE, -1
    if not bk.acc_hedge[a] and leg != LEG_BOTH:
        return TapeRefusal.POS_LEG_ONE_WAY, -1
    p = find_slot_nb(bk, a, c, leg)
    if p < 0 or bk.s_state[p] != SlotState.LIVE:
        return TapeRefusal.NO_POSITION, -1
    return OK, p


@njit(**NB_INNER)
def emit_action_nb(bk, ev, t, r, a, c, amount):
    """The ``action`` event of a completed setting or money action."""
    emit_nb(ev, 0, t, 0, Stage.ACTIONS, 0, a, EventKind.ACTION, c, -1, 0, NAN, NAN, amount, 0.0, bk.acc_wallet[a],
            NAN, Reason.NONE, 0, r, 0.0, 0.0, 0.0, 0.0)


# ------------------------------------------------------------------------ orders
@njit(**NB_INNER)
def market_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur):
    """``Book.market_order`` at the mark, taker fee (section 5); emits the ``fill``."""
    a = ta.account[r]
    c = ta.contract[r]
    leg = np.int64(ta.leg[r])
    side = np.int64(ta.side[r])
    code = order_leg_nb(bk, a, leg)
    if code != OK:
        return no_refusal_code(code)
    p = find_slot_nb(bk, a, c, leg)
    if p < 0:
        raise RuntimeError("tape: no slot for a market order (grow_book was not run)")
    stored = bk.set_stored[a, c]
    bk.set_stored[a, c] = True  # Book._fill stores the settings
    px = cur[c, 0]
    rc, q, realized, fee, r0, r1, r2, r3 = fill_nb(bk, ct, a, p, c, leg, side, ta.qty[r], px, ct.taker_fee[c],
                                                   ta.reduce_only[r], cur, pr.mm_entry)
    if rc != Refusal.OK:
        bk.set_stored[a, c] = stored
        return TapeRefusal.FILL + rc, int(c), int(leg), int(side), r0, r1, r2, r3
    ts.ledger[0] += realized
    sc.blk_ledger[a // pr.block, Ledger.FEES] += fee
    wiso = bk.s_wiso[p] if bk.s_state[p] == SlotState.LIVE else 0.0
    emit_nb(ev, 0, t, 0, Stage.ACTIONS, 0, a, EventKind.FILL, c, leg, side, q, px, realized, fee, bk.acc_wallet[a],
            wiso, Reason.NONE, 0, r, 0.0, 0.0, 0.0, 0.0)
    return no_refusal()


@njit(**NB_INNER)
def order_direction_nb(bk, a, c, leg, side, qty, reduce_only, order_id):
    """``Book._check_order_direction``: reduce-only orders that could not reduce, and hedge
    closing orders beyond the leg (with the other resting orders closing it)."""
    closing = closing_direction_nb(leg, side)
    if leg == LEG_BOTH and not reduce_only:
        return no_refusal()
    oid = float(order_id)
    if leg != LEG_BOTH and not closing:
        if reduce_only:
            return refusal(TapeRefusal.LIMIT_RO_HEDGE, oid, 0.0, 0.0, 0.0)
        return no_refusal()
    p = find_slot_nb(bk, a, c, leg)
    live = p >= 0 and bk.s_state[p] == SlotState.LIVE
    if not live and leg != LEG_BOTH:
        return refusal(TapeRefusal.LIMIT_NO_LEG, oid, 0.0, 0.0, 0.0)
    if not live:
        return refusal(TapeRefusal.LIMIT_RO_NOTHING, oid, 0.0, 0.0, 0.0)
    if leg == LEG_BOTH and bk.s_side[p] == side:
        return refusal(TapeRefusal.LIMIT_RO_NOTHING, oid, float(bk.s_side[p]), 0.0, 0.0)
    if leg != LEG_BOTH and not reduce_only:
        pending = 0.0
        for i in range(bk.acc_ord0[a], bk.acc_ord0[a + 1]):
            if bk.o_live[i] and bk.o_contract[i] == c and bk.o_leg[i] == leg and bk.o_side[i] == side:
                pending += bk.o_qty[i]
        if qty + pending > bk.s_qty[p] * (1 + 1e-12):
            return (TapeRefusal.LIMIT_CLOSE_EXCEEDS, int(c), int(leg), int(bk.s_side[p]), oid, bk.s_qty[p], 0.0,
                    0.0)
    return no_refusal()


@njit(**NB_INNER)
def order_row_nb(ts, i):
    """The row holding order id ``i``, or -1 (new ids are ``ts.ids[1]`` on, older ones sorted)."""
    if i >= ts.ids[1]:
        j = i - ts.ids[1]
        if j < ts.new_row.size:
            return ts.new_row[j]
        return -1
    k = np.searchsorted(ts.old_ids, i)
    if k < ts.old_ids.size and ts.old_ids[k] == i:
        return ts.old_rows[k]
    return -1


@njit(**NB_INNER)
def limit_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur):
    """``Book.limit_order``: a resting order holding initial margin; emits the ``order``.
    It takes the account's next pre-allocated order row (ids only grow, so rows stay
    sorted by id)."""
    a = ta.account[r]
    c = ta.contract[r]
    leg = np.int64(ta.leg[r])
    side = np.int64(ta.side[r])
    qty = ta.qty[r]
    price = ta.price[r]
    code = order_leg_nb(bk, a, leg)
    if code != OK:
        return no_refusal_code(code)
    order_id = ts.ids[0]
    res = order_direction_nb(bk, a, c, leg, side, qty, ta.reduce_only[r], order_id)
    if res[0] != OK:
        return res
    i = ts.acc_free[a]
    if i >= bk.acc_ord0[a + 1]:
        raise RuntimeError("tape: no order row left for a limit order (grow_book was not run)")
    stored = bk.set_stored[a, c]
    bk.set_stored[a, c] = True
    bk.o_id[i] = order_id
    bk.o_contract[i] = c
    bk.o_leg[i] = leg
    bk.o_side[i] = side
    bk.o_qty[i] = qty
    bk.o_price[i] = price
    bk.o_reduce_only[i] = ta.reduce_only[r]
    bk.o_live[i] = True
    code, r0, r1, r2, r3 = cap_check_nb(bk, ct, a, c, leg, side, cur[c, 0])
    if code == OK:
        raw = raw_free_nb(bk, a, cur)
        if raw < -tol_nb(bk.acc_wallet[a]):
            code, r0, r1, r2, r3 = TapeRefusal.LIMIT_MARGIN, float(order_id), -raw, 0.0, 0.0
    if code != OK:
        bk.o_live[i] = False
        bk.set_stored[a, c] = stored
        return code, int(c), int(leg), int(side), r0, r1, r2, r3
    ts.acc_free[a] = i + 1
    ts.ids[0] = order_id + 1
    ts.new_row[order_id - ts.ids[1]] = i
    if ta.tag[r] >= 0:
        ts.tag_order[ta.tag[r]] = order_id
    emit_nb(ev, 0, t, 0, Stage.ACTIONS, 0, a, EventKind.ORDER, c, leg, side, qty, price, 0.0, 0.0, bk.acc_wallet[a],
            NAN, Reason.NONE, 0, r, float(order_id), 0.0, 0.0, 0.0)
    return no_refusal()


@njit(**NB_INNER)
def cancel_nb(bk, sc, ev, pr, ta, ts, r, t):
    """``Book.cancel_order`` by id, or by the tag of an earlier limit of the tape; emits the
    ``cancel`` and returns the order's account in the first payload slot on success."""
    order_id = ta.order_id[r]
    if ta.tag[r] >= 0:  # no order_id given
        order_id = ts.tag_order[ta.tag[r]]
        if order_id < 0:
            return no_refusal_code(TapeRefusal.TAG_UNKNOWN)
    i = order_row_nb(ts, order_id)
    if i < 0 or not bk.o_live[i]:
        return refusal(TapeRefusal.NO_ORDER, float(order_id), 0.0, 0.0, 0.0)
    a = np.searchsorted(bk.acc_ord0, i, side="right") - 1
    bk.o_live[i] = False
    emit_nb(ev, 0, t, 0, Stage.ACTIONS, 0, a, EventKind.CANCEL, bk.o_contract[i], bk.o_leg[i], bk.o_side[i],
            bk.o_qty[i], bk.o_price[i], 0.0, 0.0, bk.acc_wallet[a], NAN, Reason.NONE, 0, r, float(order_id), 0.0,
            0.0, 0.0)
    return OK, int(a), -1, 0, 0.0, 0.0, 0.0, 0.0


# ------------------------------------------------------------------ margin moves
@njit(**NB_INNER)
def margin_move_nb(bk, ct, pr, ta, r, cur, add):
    """``Book.add_margin`` (``add``) / ``Book.remove_margin`` on an isolated position."""
    a = ta.account[r]
    c = ta.contract[r]
    amount = ta.amount[r]
    code, p = find_position_nb(bk, a, c, np.int64(ta.leg[r]))
    if code != OK:
        return no_refusal_code(code)
    side = np.int64(bk.s_side[p])
    qty = bk.s_qty[p]
    if bk.set_mode[a, c] != MARGIN_ISOLATED:
        return refusal(TapeRefusal.NOT_ISOLATED, float(side), qty, 0.0, 0.0)
    if add:
        free = py_max0_nb(raw_free_nb(bk, a, cur))
        if amount > free + tol_nb(free):
            return refusal(TapeRefusal.ADD_FREE, float(side), qty, free, 0.0)
        bk.acc_wallet[a] -= amount
        bk.s_wiso[p] += amount
    else:
        # riskcore.margin.max_removable_margin: max(0, min(W, W + s*Q*(MP - EP) - Q*MP/L)), numpy's
        # maximum/minimum (the second operand when equal)
        w = bk.s_wiso[p]
        mark = cur[c, 0]
        x = w + float(side) * qty * (mark - bk.s_entry[p]) - qty * mark / lev_nb(bk, a, c, bk.s_leg[p])
        inner = w if w < x else x
        most = 0.0 if 0.0 > inner else inner
        if amount > most + tol_nb(most):
            return refusal(TapeRefusal.REMOVE_MOST, float(side), qty, most, 0.0)
        bk.acc_wallet[a] += amount
        bk.s_wiso[p] -= amount
    refresh_lp_nb(bk, ct, a, p, pr.mm_entry)
    return no_refusal()


@njit(**NB_INNER)
def deposit_nb(bk, ta, ts, r, cur, withdraw):
    """``Book.deposit`` / ``Book.withdraw`` (at most the free balance, capped at the wallet)."""
    a = ta.account[r]
    amount = ta.amount[r]
    if withdraw:
        free = py_max0_nb(raw_free_nb(bk, a, cur))
        held = py_max0_nb(bk.acc_wallet[a])
        most = held if held < free else free  # Python's min(free, held)
        if amount > most + tol_nb(most):
            return refusal(TapeRefusal.WITHDRAW_MOST, most, 0.0, 0.0, 0.0)
        bk.acc_wallet[a] -= amount
        ts.ledger[1] -= amount
    else:
        bk.acc_wallet[a] += amount
        ts.ledger[1] += amount
    return no_refusal()


# ---------------------------------------------------------------------- settings
@njit(**NB_INNER)
def set_leverage_nb(bk, ct, ta, r, cur):
    """``Book.set_leverage``: both legs, or one leg of an isolated hedge contract; refused above
    the brackets' cap for the position and its opening orders or when margin is uncovered."""
    a = ta.account[r]
    c = ta.contract[r]
    leg = np.int64(ta.leg[r])
    lev = ta.leverage[r]
    hedge = bk.acc_hedge[a]
    if leg != LEG_BOTH and not hedge:
        return no_refusal_code(TapeRefusal.LEV_ONE_WAY_LEG)
    if leg != LEG_BOTH and bk.set_mode[a, c] == MARGIN_CROSS:
        other = bk.set_lev_short[a, c] if leg == LEG_LONG else bk.set_lev_long[a, c]
        if other != lev:
            return refusal(TapeRefusal.LEV_LEGS_DIFFER, other, 0.0, 0.0, 0.0)
    if max_notional_nb(ct, c, lev) <= 0.0:
        return refusal(TapeRefusal.LEV_ABOVE_MAX, ct.max_lev[c, 0], 0.0, 0.0, 0.0)
    stored, ll, ls = bk.set_stored[a, c], bk.set_lev_long[a, c], bk.set_lev_short[a, c]
    bk.set_stored[a, c] = True
    if leg == LEG_BOTH or leg == LEG_LONG:
        bk.set_lev_long[a, c] = lev
    if leg == LEG_BOTH or leg == LEG_SHORT:
        bk.set_lev_short[a, c] = lev
    mark = cur[c, 0]
    code, r0, r1, r2, r3 = OK, 0.0, 0.0, 0.0, 0.0
    if not hedge:
        code, r0, r1, r2, r3 = cap_check_nb(bk, ct, a, c, np.int64(LEG_BOTH), np.int64(0), mark)
    else:
        if leg == LEG_BOTH or leg == LEG_LONG:
            code, r0, r1, r2, r3 = cap_check_nb(bk, ct, a, c, np.int64(LEG_LONG), np.int64(0), mark)
        if code == OK and (leg == LEG_BOTH or leg == LEG_SHORT):
            code, r0, r1, r2, r3 = cap_check_nb(bk, ct, a, c, np.int64(LEG_SHORT), np.int64(0), mark)
    if code == OK:
        raw = raw_free_nb(bk, a, cur)
        if raw < -tol_nb(bk.acc_wallet[a]):
            code, r0, r1, r2, r3 = TapeRefusal.LEV_MARGIN, -raw, 0.0, 0.0, 0.0
    if code != OK:
        bk.set_stored[a, c] = stored
        bk.set_lev_long[a, c] = ll
        bk.set_lev_short[a, c] = ls
        return refusal(code, r0, r1, r2, r3)
    return no_refusal()


@njit(**NB_INNER)
def set_margin_mode_nb(bk, ta, r):
    """``Book.set_margin_mode``: only when flat on the contract; back to cross needs equal legs."""
    a = ta.account[r]
    c = ta.contract[r]
    mode = ta.mode[r]
    if mode == bk.set_mode[a, c]:
        return no_refusal()
    res = refuse_unless_flat_nb(bk, a, c)
    if res[0] != OK:
        return res
    if mode == MARGIN_CROSS and bk.set_lev_long[a, c] != bk.set_lev_short[a, c]:
        return refusal(TapeRefusal.CROSS_LEGS_DIFFER, bk.set_lev_long[a, c], bk.set_lev_short[a, c], 0.0, 0.0)
    bk.set_stored[a, c] = True
    bk.set_mode[a, c] = mode
    if mode == MARGIN_CROSS:
        bk.set_auto_long[a, c] = False
        bk.set_auto_short[a, c] = False
    return no_refusal()


@njit(**NB_INNER)
def set_position_mode_nb(bk, ta, r):
    """``Book.set_position_mode``: only when flat everywhere; to one-way, each contract keeps
    the lower leg leverage and auto-add only if both legs had it."""
    a = ta.account[r]
    hedge = ta.mode[r] == 1
    if hedge == bk.acc_hedge[a]:
        return no_refusal()
    res = refuse_unless_flat_nb(bk, a, np.int64(-1))
    if res[0] != OK:
        return res
    bk.acc_hedge[a] = hedge
    if not hedge:
        for c in range(bk.set_mode.shape[1]):
            ll = bk.set_lev_long[a, c]
            ls = bk.set_lev_short[a, c]
            low = ls if ls < ll else ll  # Python's min(long, short)
            bk.set_lev_long[a, c] = low
            bk.set_lev_short[a, c] = low
            both = bk.set_auto_long[a, c] and bk.set_auto_short[a, c]
            bk.set_auto_long[a, c] = both
            bk.set_auto_short[a, c] = both
    return no_refusal()


@njit(**NB_INNER)
def set_auto_add_nb(bk, ta, r):
    """``Book.set_auto_add_margin`` on an isolated contract (or one hedge leg)."""
    a = ta.account[r]
    c = ta.contract[r]
    leg = np.int64(ta.leg[r])
    if bk.set_mode[a, c] != MARGIN_ISOLATED:
        return no_refusal_code(TapeRefusal.AUTO_CROSS)
    if leg != LEG_BOTH and not bk.acc_hedge[a]:
        return no_refusal_code(TapeRefusal.AUTO_ONE_WAY_LEG)
    bk.set_stored[a, c] = True
    if leg == LEG_BOTH or leg == LEG_LONG:
        bk.set_auto_long[a, c] = ta.enabled[r]
    if leg == LEG_BOTH or leg == LEG_SHORT:
        bk.set_auto_short[a, c] = ta.enabled[r]
    return no_refusal()


@njit(**NB_INNER)
def set_tp_sl_nb(bk, ta, r, cur):
    """``Book.set_tp_sl``: NaN keeps a trigger, -inf clears it, a negative code is a value the
    Book refuses; refused when a new trigger is already reached at the mark."""
    a = ta.account[r]
    c = ta.contract[r]
    code, p = find_position_nb(bk, a, c, np.int64(ta.leg[r]))
    if code != OK:
        return no_refusal_code(code)
    side = np.int64(bk.s_side[p])
    qty = bk.s_qty[p]
    mark = cur[c, 0]
    new_tp = bk.s_tp[p]
    new_sl = bk.s_sl[p]
    tp = ta.take_profit[r]
    if not math.isnan(tp):
        if tp == -math.inf:
            new_tp = NAN
        elif tp < 0.0:
            return no_refusal_code(TapeRefusal.TP_INVALID)
        else:
            new_tp = tp
            if side * (tp - mark) <= 0:
                return refusal(TapeRefusal.TP_CROSSED, float(side), qty, mark, 0.0)
    sl = ta.stop_loss[r]
    if not math.isnan(sl):
        if sl == -math.inf:
            new_sl = NAN
        elif sl < 0.0:
            return no_refusal_code(TapeRefusal.SL_INVALID)
        else:
            new_sl = sl
            if side * (sl - mark) >= 0:
                return refusal(TapeRefusal.SL_CROSSED, float(side), qty, mark, 0.0)
    bk.s_tp[p] = new_tp
    bk.s_sl[p] = new_sl
    return no_refusal()


# ------------------------------------------------------------------------ a bar
@njit(**NB_INNER)
def apply_row_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur):
    """One tape row; returns ``(refusal, contract, leg, side, r0, r1, r2, r3, account changed)``.
    The success event is emitted here or by the action; the refusal event by the caller."""
    kind = ta.kind[r]
    a = ta.account[r]
    if kind == Action.MARKET:
        res = market_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur)
    elif kind == Action.LIMIT:
        res = limit_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur)
    elif kind == Action.CANCEL:
        res = cancel_nb(bk, sc, ev, pr, ta, ts, r, t)
        if res[0] == OK:
            return no_refusal_code(OK), res[1]
        return res, -1
    else:
        if kind == Action.ADD_MARGIN:
            res = margin_move_nb(bk, ct, pr, ta, r, cur, np.bool_(True))
        elif kind == Action.REMOVE_MARGIN:
            res = margin_move_nb(bk, ct, pr, ta, r, cur, np.bool_(False))
        elif kind == Action.SET_LEVERAGE:
            res = set_leverage_nb(bk, ct, ta, r, cur)
        elif kind == Action.SET_MARGIN_MODE:
            res = set_margin_mode_nb(bk, ta, r)
        elif kind == Action.SET_POSITION_MODE:
            res = set_position_mode_nb(bk, ta, r)
        elif kind == Action.SET_AUTO_ADD_MARGIN:
            res = set_auto_add_nb(bk, ta, r)
        elif kind == Action.SET_TP_SL:
            res = set_tp_sl_nb(bk, ta, r, cur)
        elif kind == Action.DEPOSIT:
            res = deposit_nb(bk, ta, ts, r, cur, np.bool_(False))
        else:
            res = deposit_nb(bk, ta, ts, r, cur, np.bool_(True))
        if res[0] == OK:
            emit_action_nb(bk, ev, t, r, a, ta.contract[r], ta.amount[r])
    return res, a


@njit(**NB)
def apply_tape_nb(bk, ct, mk, pr, ta, ts, sc, ev, lo, hi, t, shift):
    """Stage 2 of a point (first point of bar ``t`` only): tape rows ``lo:hi`` in order, as
    ``ReferenceEngine.run_actions``.  Mutates ``bk`` (wallets, slots, orders, settings,
    modes), ``ts`` (order ids, tags, the tape's ledger), ``sc`` (wake bars, the fees of
    market fills in ``blk_ledger``) and ``ev`` (one event per row).  Accounts an action
    changed are awake from bar ``t``: their wake bar is redone at the bar's last point."""
    n_c = ct.maker_fee.size
    base = np.empty((n_c, 2))
    cur = np.empty((n_c, 2))
    point_prices_nb(mk.ohlc, t, np.int64(0), pr.intrabar, base)
    effective_nb(shift, base, cur)
    for r in range(lo, hi):
        a = ta.account[r]
        if ta.static[r]:
            res = no_refusal_code(TapeRefusal.STATIC)
        else:
            res, a_changed = apply_row_nb(bk, ct, sc, ev, pr, ta, ts, r, t, cur)
            if res[0] == OK:
                wake_now_nb(sc, pr, a_changed, t, np.bool_(False))
                continue
        code, ic, ileg, iside, r0, r1, r2, r3 = res
        wallet = bk.acc_wallet[a] if a >= 0 else NAN
        emit_nb(ev, 0, t, 0, Stage.ACTIONS, 0, a, EventKind.REFUSED, ic, ileg, iside, NAN, NAN, 0.0, 0.0, wallet,
                NAN, Reason.NONE, code, r, r0, r1, r2, r3)
