"""The Book's refusal sentences for kernel refusal codes (no Book import).

The kernels report a refusal as an integer code and a float payload; these functions
write the text of the ``Refused`` exception :class:`riskcore.book.Book` raises in the
same case, character for character.  Shared by :mod:`riskcore.kernels.pack` (fills,
TP/SL) and :mod:`riskcore.kernels.tape` (the tape's actions).
"""
from __future__ import annotations

from ..enums import LEG_NAMES, SIDE_NAMES
from .enums import Refusal

REFUSAL_CODES = {Refusal.REDUCE_ONLY_ONE_WAY: "reduce_only_opens", Refusal.NO_LEG: "no_position",
                 Refusal.CLOSE_EXCEEDS: "close_exceeds_position", Refusal.REDUCE_ONLY_HEDGE: "reduce_only_opens",
                 Refusal.BEYOND_BANKRUPTCY: "beyond_bankruptcy", Refusal.LEVERAGE_CAP: "leverage_cap",
                 Refusal.INSUFFICIENT_MARGIN: "insufficient_margin"}


def position_name(side: int, qty: float, symbol: str, leg: int, account) -> str:
    """``Position.name``."""
    where = "" if leg == 0 else f" {LEG_NAMES[leg]} leg"
    return f"{SIDE_NAMES[side]} {qty:g} {symbol}{where} of account {account!r}"


def order_name(order_id: int, side: int, qty: float, symbol: str, price: float, leg: int) -> str:
    """``Order.name``."""
    where = "" if leg == 0 else f" ({LEG_NAMES[leg]} leg)"
    word = "buy" if side > 0 else "sell"
    return f"resting order #{order_id} ({word} {qty:g} {symbol} @ {price:g}{where})"


def refusal_message(rcode: int, account, symbol: str, leg: int, pos_side: int, r) -> str:
    """The text of the Book's ``Refused`` exception for a kernel fill refusal code."""
    r0, r1, r2, r3 = (float(x) for x in r)
    word = "buy" if r0 > 0 else "sell"
    if rcode == Refusal.REDUCE_ONLY_ONE_WAY:
        what = "no position" if r1 == 0 else f"the position is {SIDE_NAMES[int(r1)]}"
        return f"reduce-only {word} of {symbol} for account {account!r}: {what} to reduce"
    if rcode == Refusal.NO_LEG:
        return f"account {account!r} has no {symbol} {LEG_NAMES[leg]} leg to close"
    if rcode == Refusal.CLOSE_EXCEEDS:
        return f"{word} {r1:g} exceeds {position_name(int(r3), r2, symbol, leg, account)}"
    if rcode == Refusal.REDUCE_ONLY_HEDGE:
        return f"reduce-only order would open the {symbol} {LEG_NAMES[leg]} leg of account {account!r}"
    if rcode == Refusal.BEYOND_BANKRUPTCY:
        return (f"closing {r0:g} of {position_name(pos_side, r3, symbol, leg, account)} at {r1:g} would lose more "
                f"than its isolated margin (bankruptcy price {r2:g}); such a position is liquidated, not closed")
    if rcode == Refusal.LEVERAGE_CAP:
        return (f"account {account!r}: {SIDE_NAMES[int(r0)]} {symbol} notional {r1:,.2f} is above the {r2:,.0f} "
                f"that {r3:g}x allows in the {symbol} brackets")
    if rcode == Refusal.INSUFFICIENT_MARGIN:
        return f"account {account!r}: {word} {r1:g} {symbol} would leave initial margin uncovered (short by {r2:,.2f})"
    return f"refusal {rcode}"
