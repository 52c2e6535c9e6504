"""Other venues' tier formats and margin formulas, beside riskcore's Binance rules.

One module per venue, each implementing a section of ``VENUES.md`` (the venue rule book beside
``MARGIN_RULES.md``):

* :mod:`.bybit` (section 2): ``/v5/market/risk-limit`` tiers as :class:`~riskcore.Brackets`; MM
  with the UTA's fee to close; the entry-value liquidation price; the bankruptcy price
  ``EP * (1 -/+ 1/leverage)``; classic cross.
* :mod:`.okx` (section 3): ``/api/v5/public/position-tiers`` as :class:`~.okx.OkxTiers` (tiers by
  size in contracts, no continuity deduction); MM including the taker fee; isolated LP.
* :mod:`.hyperliquid` (section 5): ``marginTables`` as :class:`~riskcore.Brackets` with
  ``MMR = 1 / (2 * max leverage)``; the published liquidation price; the 2/3-MM backstop.
* :mod:`.dydx` (section 6): liquidity tiers as :class:`~.dydx.DydxLiquidityTier` (IMF rising with
  open interest, fixed MMF); isolated and cross liquidation prices; bankruptcy price.

:func:`load` reads the dated tables shipped in ``data/venues/``.  Bad data raises
:class:`VenueError` (a :class:`~riskcore.BracketError`) naming venue, row and field.
These are plain-Python formulas.  What the simulators apply is a contract's venue profile
(:mod:`.profiles`: MM variant, liquidation procedure, backstop, takeover, fee, ADL policy);
:mod:`.study` compares runs under different profiles.
"""
from __future__ import annotations

from . import bybit, dydx, hyperliquid, okx
from ._common import OPEN_CAP, VenueError, shipped_frame
from .bybit import from_bybit
from .dydx import DydxLiquidityTier, from_dydx
from .hyperliquid import from_hyperliquid
from .okx import OkxTiers, from_okx

VENUES = ("bybit", "okx", "hyperliquid", "dydx")
_MODULES = {"bybit": bybit, "okx": okx, "hyperliquid": hyperliquid, "dydx": dydx}

__all__ = ["DydxLiquidityTier", "OPEN_CAP", "OkxTiers", "VENUES", "VenueError", "bybit", "dydx", "from_bybit",
           "from_dydx", "from_hyperliquid", "from_okx", "hyperliquid", "load", "okx", "shipped"]


def load(venue: str, symbol: str, date=None):
    """The shipped table of ``symbol`` at ``venue`` in effect on ``date`` (the newest without one).

    Bybit and Hyperliquid give a :class:`~riskcore.Brackets`, dYdX a :class:`DydxLiquidityTier`,
    OKX an :class:`OkxTiers` (none is shipped yet).  ``VenueError`` for an unknown venue or
    symbol, or a date before the oldest table.
    """
    key = str(venue).strip().lower()
    if key not in _MODULES:
        raise VenueError(f"unknown venue {venue!r}; venues with tables: {list(VENUES)} "
                         "(Binance tables: riskcore.Brackets.load)")
    return _MODULES[key].load(symbol, date)


def shipped(venue: str):
    """The shipped tables of one venue (``data/venues/<venue>.csv``), one row per tier."""
    key = str(venue).strip().lower()
    if key not in _MODULES:
        raise VenueError(f"unknown venue {venue!r}; venues with tables: {list(VENUES)}")
    return shipped_frame(key)
