"""Argument checks shared by the Book and the kernels' tape encoder (which must not import
the Book): the same test and the same sentence wherever an amount or a price is judged."""
from __future__ import annotations

import math

import numpy as np


def check_amount(what: str, amount, allow_zero: bool = False) -> None:
    """A positive (or, with ``allow_zero``, non-negative) finite number; ``ValueError`` naming
    ``what`` otherwise."""
    ok = isinstance(amount, (int, float, np.floating, np.integer)) and not isinstance(amount, bool) \
        and math.isfinite(amount) and (amount >= 0 if allow_zero else amount > 0)
    if not ok:
        raise ValueError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} finite number, "
                         f"not {amount!r}")


def check_price(price) -> None:
    """A positive finite price; ``ValueError`` otherwise."""
    if not (isinstance(price, (int, float, np.floating, np.integer)) and not isinstance(price, bool)
            and math.isfinite(price) and price > 0):
        raise ValueError(f"price must be a positive finite number, not {price!r}")
