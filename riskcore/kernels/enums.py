"""Integer codes the kernels use (NamedTuple instances, read by numba as constants).

Strings appear only in :mod:`riskcore.kernels.pack`, which maps these codes to the
reference engine's kinds, legs and reasons.
"""
from __future__ import annotations

from typing import NamedTuple


class _EventKind(NamedTuple):  # the index into riskcore.result.EVENT_KINDS
    FUNDING: int = 0
    FILL: int = 1
    ORDER: int = 2
    CANCEL: int = 3
    ACTION: int = 4
    REFUSED: int = 5
    TP: int = 6
    SL: int = 7
    TOPUP: int = 8
    LIQUIDATION: int = 9
    BAD_DEBT: int = 10
    ADL: int = 11


class _Stage(NamedTuple):
    """Where an event comes from inside a point; events sort by (step, point, round, stage, ...)."""
    FUNDING: int = 0
    ACTIONS: int = 1  # the tape (kernels/actions_nb.py), between kernel segments
    FILLS: int = 2
    TP_SL: int = 3
    TOPUPS: int = 4
    LIQ_ISOLATED: int = 5
    LIQ_CROSS: int = 6
    BAD_DEBT: int = 7  # serial phase: insurance fund and ADL


class _SlotState(NamedTuple):
    EMPTY: int = 0
    LIVE: int = 1
    LIQ_ISOLATED: int = 2  # doomed / closed by an isolated liquidation at this point
    LIQ_CROSS: int = 3  # doomed / closed by a cross liquidation at this point
    LIQ_PARTIAL: int = 4  # isolated, partly closed at this point (live again once its fee is paid)


class _Procedure(NamedTuple):
    """A venue profile's liquidation procedure (``riskcore.venues.profiles.LIQUIDATIONS``)."""
    WHOLE: int = 0
    TIERS: int = 1
    SLICES: int = 2
    FIRST_TIER: int = 3


class _Reason(NamedTuple):
    NONE: int = 0
    FUNDING_RATE: int = 1  # r0 = rate
    FILL_REFUSED: int = 2  # ival = order id, rcode = _Refusal
    TP_REFUSED: int = 3
    SL_REFUSED: int = 4
    CANCEL_LIQUIDATION: int = 5  # ival = order id
    FUND_PAID: int = 6  # r0 = paid
    ADL_BANKRUPT: int = 7
    ADL_COUNTERPARTY: int = 8


class _Refusal(NamedTuple):
    """Book refusals a kernel fill can meet (riskcore.book.Book._fill and its checks)."""
    OK: int = 0
    REDUCE_ONLY_ONE_WAY: int = 1  # r0 order side, r1 position side (0 none)
    NO_LEG: int = 2
    CLOSE_EXCEEDS: int = 3  # r0 order side, r1 qty, r2 position qty, r3 position side
    REDUCE_ONLY_HEDGE: int = 4
    BEYOND_BANKRUPTCY: int = 5  # r0 close qty, r1 price, r2 bankruptcy price, r3 position qty
    LEVERAGE_CAP: int = 6  # r0 side, r1 notional, r2 cap, r3 leverage
    INSUFFICIENT_MARGIN: int = 7  # r0 order side, r1 qty, r2 shortfall


class _Action(NamedTuple):
    """Tape action kinds, in the order of ``riskcore.inputs.ACTIONS`` (see kernels/tape.py)."""
    MARKET: int = 0
    LIMIT: int = 1
    CANCEL: int = 2
    ADD_MARGIN: int = 3
    REMOVE_MARGIN: int = 4
    SET_LEVERAGE: int = 5
    SET_MARGIN_MODE: int = 6
    SET_POSITION_MODE: int = 7
    SET_AUTO_ADD_MARGIN: int = 8
    SET_TP_SL: int = 9
    DEPOSIT: int = 10
    WITHDRAW: int = 11


class _TapeRefusal(NamedTuple):
    """Why the Book refused a tape action (kernels/actions_nb.py), with the float payload
    ``r0..r3`` of its event; :func:`riskcore.kernels.tape.tape_events` writes the text.
    A refused event's contract/leg/side ints name the blocking position or order where
    there is one.  ``FILL + r`` is a market fill refused by ``fill_nb`` with Refusal ``r``."""
    OK: int = 0
    STATIC: int = 1  # judged before the run from the row alone (text kept by tape.py)
    ORDER_LEG_HEDGE: int = 2  # Book._order_leg, ValueError
    ORDER_LEG_ONE_WAY: int = 3
    POS_LEG_HEDGE: int = 4  # Book._find_position, ValueError
    POS_LEG_ONE_WAY: int = 5
    NO_POSITION: int = 6
    NOT_ISOLATED: int = 7  # r0 position side, r1 position qty
    ADD_FREE: int = 8  # r0 side, r1 qty, r2 free balance
    REMOVE_MOST: int = 9  # r0 side, r1 qty, r2 most removable
    LEV_ONE_WAY_LEG: int = 10  # ValueError
    LEV_LEGS_DIFFER: int = 11  # r0 the other leg's leverage
    LEV_ABOVE_MAX: int = 12  # r0 the first tier's max leverage
    LEV_CAP: int = 13  # r0 side, r1 notional, r2 cap, r3 leverage (set_leverage and limit)
    LEV_MARGIN: int = 14  # r0 shortfall
    BLOCKED_POS: int = 15  # r0 side, r1 qty of the blocking position (event contract/leg: its)
    BLOCKED_ORDER: int = 16  # r0 id, r1 qty, r2 price, r3 side of the blocking order (contract/leg: its)
    CROSS_LEGS_DIFFER: int = 17  # r0 long leverage, r1 short leverage
    AUTO_CROSS: int = 18
    AUTO_ONE_WAY_LEG: int = 19  # ValueError
    TP_CROSSED: int = 20  # r0 side, r1 qty, r2 mark
    SL_CROSSED: int = 21
    TP_INVALID: int = 22  # ValueError, text from the row
    SL_INVALID: int = 23
    TAG_UNKNOWN: int = 24  # KeyError
    NO_ORDER: int = 25  # KeyError, r0 order id
    WITHDRAW_MOST: int = 26  # r0 most withdrawable
    LIMIT_RO_HEDGE: int = 27  # r0 order id (the id the order would have had)
    LIMIT_NO_LEG: int = 28  # r0 order id
    LIMIT_RO_NOTHING: int = 29  # r0 order id, r1 position side (0: none)
    LIMIT_CLOSE_EXCEEDS: int = 30  # r0 order id, r1 position qty
    LIMIT_MARGIN: int = 31  # r0 order id, r1 shortfall
    FILL: int = 32  # + Refusal code; payload as fill_nb's


class _AccountFlag(NamedTuple):
    CROSS_LIQ: int = 1
    EMPTY_DEFICIT: int = 2  # no cross position and a negative cross wallet
    ISO_LIQ: int = 4
    EXCLUDED: int = 8  # has a deficit at this point: out of the ADL ranking


class _Intrabar(NamedTuple):
    CLOSE: int = 0
    OHLC: int = 1
    WORST: int = 2


class _AdlPolicy(NamedTuple):
    """Who is auto-deleveraged: the index of the name in ``riskcore.adl.POLICIES``."""
    BINANCE: int = 0
    LEVERAGE: int = 1
    PNL: int = 2
    RANDOM: int = 3
    PRO_RATA: int = 4


class _EvI(NamedTuple):  # integer columns of an event record
    T: int = 0
    K: int = 1
    STAGE: int = 2
    SUB: int = 3
    ACCOUNT: int = 4
    SEQ: int = 5
    KIND: int = 6
    CONTRACT: int = 7
    LEG: int = 8
    SIDE: int = 9
    REASON: int = 10
    RCODE: int = 11
    IVAL: int = 12
    ROUND: int = 13  # cascade round within the point (riskcore/impact.py)


class _EvF(NamedTuple):  # float columns of an event record
    QTY: int = 0
    PRICE: int = 1
    AMOUNT: int = 2
    FEE: int = 3
    WALLET: int = 4
    WALLET_ISO: int = 5
    R0: int = 6
    R1: int = 7
    R2: int = 8
    R3: int = 9


class _BlockAcc(NamedTuple):
    """Per-block accumulators of one step (reset at each step)."""
    FUNDING_PAID: int = 0
    TOPUPS: int = 1
    TOPUP_AMOUNT: int = 2
    LIQUIDATIONS: int = 3
    LIQUIDATED_NOTIONAL: int = 4
    ACCOUNTS_LIQUIDATED: int = 5
    OPEN_INTEREST: int = 6
    OI_ADJUST: int = 7  # the serial phase's closes at the bar's last point, after the block's count


class _Ledger(NamedTuple):
    """Per-block running totals over the whole run (never reset)."""
    REALIZED: int = 0
    FUNDING: int = 1
    FEES: int = 2


class _Glob(NamedTuple):
    """Serial scalars of the run."""
    FUND: int = 0
    REALIZED: int = 1  # realized PnL booked in the serial phase (ADL)
    SOCIALISED: int = 2
    BAD_DEBT: int = 3  # the step's serial accumulators from here on
    INSURANCE_PAID: int = 4
    ADL_RECOVERED: int = 5
    STEP_SOCIALISED: int = 6


EventKind = _EventKind()
Stage = _Stage()
SlotState = _SlotState()
Procedure = _Procedure()
Reason = _Reason()
Refusal = _Refusal()
Action = _Action()
TapeRefusal = _TapeRefusal()
AccountFlag = _AccountFlag()
Intrabar = _Intrabar()
AdlPolicy = _AdlPolicy()
EvI = _EvI()
EvF = _EvF()
BlockAcc = _BlockAcc()
Ledger = _Ledger()
Glob = _Glob()

N_EVI = len(EvI)
N_EVF = len(EvF)
N_BLOCK_ACC = len(BlockAcc)
N_LEDGER = len(Ledger)
N_GLOB = len(Glob)
LEG_BOTH, LEG_LONG, LEG_SHORT = 0, 1, 2
MARGIN_CROSS, MARGIN_ISOLATED = 0, 1
