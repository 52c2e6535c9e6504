"""Small integer codes for the categorical settings of the book.

The kernels of later issues see only these integers; the public API accepts
the friendly spellings as well ("long", "sell", "isolated", "hedge", ...) and
turns them into codes through the ``parse_*`` helpers, which raise a
``ValueError`` naming the bad value.
"""
from __future__ import annotations

from typing import NamedTuple


class _Side(NamedTuple):
    LONG: int = 1
    SHORT: int = -1


class _Leg(NamedTuple):
    BOTH: int = 0  # the single net position of one-way mode
    LONG: int = 1  # hedge-mode long leg
    SHORT: int = 2  # hedge-mode short leg


class _MarginMode(NamedTuple):
    CROSS: int = 0
    ISOLATED: int = 1


class _PositionMode(NamedTuple):
    ONE_WAY: int = 0
    HEDGE: int = 1


Side = _Side()
Leg = _Leg()
MarginMode = _MarginMode()
PositionMode = _PositionMode()

LEG_NAMES = {Leg.BOTH: "both", Leg.LONG: "long", Leg.SHORT: "short"}
MARGIN_MODE_NAMES = {MarginMode.CROSS: "cross", MarginMode.ISOLATED: "isolated"}
POSITION_MODE_NAMES = {PositionMode.ONE_WAY: "one-way", PositionMode.HEDGE: "hedge"}
SIDE_NAMES = {Side.LONG: "long", Side.SHORT: "short"}

_SIDE_WORDS = {"long": 1, "buy": 1, "short": -1, "sell": -1}
_LEG_WORDS = {"both": Leg.BOTH, "one-way": Leg.BOTH, "long": Leg.LONG, "short": Leg.SHORT}
_MARGIN_WORDS = {"cross": MarginMode.CROSS, "isolated": MarginMode.ISOLATED}
_POSITION_WORDS = {
    "one-way": PositionMode.ONE_WAY,
    "oneway": PositionMode.ONE_WAY,
    "one_way": PositionMode.ONE_WAY,
    "hedge": PositionMode.HEDGE,
}


def _parse(value, words: dict, codes, what: str) -> int:
    if isinstance(value, bool):
        pass
    elif isinstance(value, str):
        key = value.strip().lower()
        if key in words:
            return words[key]
    else:
        try:  # numpy integers
            as_int = int(value)
            if as_int == value and as_int in codes:
                return as_int
        except (TypeError, ValueError):
            pass
    allowed = ", ".join(repr(w) for w in words) + ", or " + ", ".join(str(c) for c in codes)
    raise ValueError(f"{what}: {value!r} is not one of {allowed}")


def parse_side(value, what: str = "side") -> int:
    """+1 for long/buy, -1 for short/sell."""
    return _parse(value, _SIDE_WORDS, (1, -1), what)


def parse_leg(value, what: str = "leg") -> int:
    """Leg code: 0 both (one-way), 1 long, 2 short. ``None`` means both."""
    if value is None:
        return Leg.BOTH
    return _parse(value, _LEG_WORDS, tuple(LEG_NAMES), what)


def parse_margin_mode(value, what: str = "margin mode") -> int:
    return _parse(value, _MARGIN_WORDS, tuple(MARGIN_MODE_NAMES), what)


def parse_position_mode(value, what: str = "position mode") -> int:
    return _parse(value, _POSITION_WORDS, tuple(POSITION_MODE_NAMES), what)
