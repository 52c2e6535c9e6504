"""Argument checks shared by the Book, the tables and the kernels' tape encoder (which must
not import the Book): the same test and the same sentence wherever an amount or a price is
judged."""
from __future__ import annotations

import math

import numpy as np

#: Prices, sizes and money above this are refused: up to a notional of about 1e15 the float
#: arithmetic of margins and PnL stays exact to the cent; beyond it, it does not.
LIMIT = 1e15


def _number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_amount(what: str, amount, allow_zero: bool = False) -> None:
    """A positive (or, with ``allow_zero``, non-negative) finite number up to :data:`LIMIT`;
    ``ValueError`` naming ``what`` otherwise."""
    ok = _number(amount) and math.isfinite(amount) and (amount >= 0 if allow_zero else amount > 0)
    if not ok:
        raise ValueError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} finite number, "
                         f"not {amount!r}")
    if amount > LIMIT:
        raise ValueError(f"{what} {amount!r} is above {LIMIT:g}, outside the range riskcore computes exactly")


def check_price(price, what: str = "price") -> None:
    """A positive finite price up to :data:`LIMIT`; ``ValueError`` naming ``what`` otherwise."""
    if not (_number(price) and math.isfinite(price) and price > 0):
        raise ValueError(f"{what} must be a positive finite number, not {price!r}")
    if price > LIMIT:
        raise ValueError(f"{what} {price!r} is above {LIMIT:g}, outside the range riskcore computes exactly")


def rng(seed) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``; ``ValueError`` naming the seed when it is not one."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be an int >= 0, a numpy SeedSequence or None, not {seed!r}") from None
