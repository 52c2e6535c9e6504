"""Hyperliquid perpetuals: margin tables and the formulas of VENUES.md section 5.

A Hyperliquid margin table lists tiers by ``lowerBound`` (position value in USDC) with a
``maxLeverage`` each.  The maintenance rate of a tier is **half the initial margin rate at its
max leverage**, ``MMR = 1 / (2 * maxLeverage)``, and deductions follow the usual continuity
rule (``deduction_n = deduction_(n-1) + lower_bound_n * (MMR_n - MMR_(n-1))``), so a table is
a :class:`riskcore.Brackets` whose ``cum`` is Hyperliquid's deduction.  The last tier is
open-ended at Hyperliquid; riskcore writes its cap as ``OPEN_CAP`` (1e12 USDC).

Prices are in USDC, ``qty`` in base units (> 0), ``side`` +1 long / -1 short.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from ..brackets import Brackets
from ..errors import BracketError
from . import _common as c

VENUE = "hyperliquid"
WHAT = "margin table"

#: Partial liquidation (section 5): positions above this value (USDC) are liquidated in slices.
PARTIAL_LIQUIDATION_ABOVE = 100_000.0
#: ... of this fraction of the position each,
SLICE_FRACTION = 0.2
#: ... with this cooldown (seconds) before orders go out for the full size.
SLICE_COOLDOWN_S = 30.0
#: Backstop liquidation (section 5) when equity falls below this fraction of maintenance margin.
BACKSTOP_FRACTION = 2.0 / 3.0

__all__ = ["BACKSTOP_FRACTION", "PARTIAL_LIQUIDATION_ABOVE", "SLICE_COOLDOWN_S", "SLICE_FRACTION",
           "backstop", "bankruptcy_price", "from_hyperliquid", "initial_margin", "isolated_liquidation_price",
           "liquidation_price", "load", "maintenance_margin", "maintenance_rate"]


def maintenance_rate(max_leverage: float) -> float:
    """``MMR = (1 / max leverage) / 2`` (section 5): 1.25% at 40x, 16.7% at 3x."""
    return 0.5 / c.positive(max_leverage, "max_leverage", VENUE)


# --------------------------------------------------------------------------- loading
def _tiers(data, coin):
    """(list of raw tiers, coin, note) from the accepted shapes."""
    data = c.read_json(data, VENUE, WHAT)
    if isinstance(data, list) and data and isinstance(data[0], Mapping) and "universe" in data[0]:
        data = data[0]                                       # metaAndAssetCtxs: [meta, asset contexts]
    if isinstance(data, Mapping) and "universe" in data:
        if coin is None:
            raise c.VenueError("hyperliquid margin table: the data is a meta response; name the asset with coin=")
        assets = [a for a in data["universe"] if isinstance(a, Mapping) and a.get("name") == coin]
        if not assets:
            names = [a.get("name") for a in data["universe"] if isinstance(a, Mapping)]
            raise c.VenueError(f"hyperliquid margin table: coin {coin!r} is not in the universe ({names[:10]})")
        asset = assets[0]
        at = f"hyperliquid meta: universe entry {coin!r}"
        table_id = c.field(asset, "marginTableId", at)
        tables = {}
        for i, entry in enumerate(data.get("marginTables") or [], 1):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], Mapping)):
                raise c.VenueError(f"hyperliquid meta: marginTables entry {i} is not a pair [id, table]")
            tables[entry[0]] = entry[1]
        if table_id in tables:
            return c.field(tables[table_id], "marginTiers", f"hyperliquid meta: margin table {table_id}"), coin, \
                f"margin table {table_id}"
        # Tables not listed in marginTables have a single tier at the asset's max leverage.
        lev = c.field(asset, "maxLeverage", at)
        return [{"lowerBound": "0", "maxLeverage": lev}], coin, \
            f"margin table {table_id} is not listed; one tier at the universe's maxLeverage {lev}"
    if isinstance(data, Mapping) and "marginTiers" in data:
        return data["marginTiers"], coin, data.get("description") or None
    if isinstance(data, list):
        return data, coin, None
    raise c.VenueError("hyperliquid margin table: expected a meta response (with coin=), a margin table with "
                       "'marginTiers', or a list of tiers with lowerBound and maxLeverage")


def from_hyperliquid(data, coin: str | None = None, *, open_cap: float = c.OPEN_CAP, effective_date=None,
                     source: str | None = None) -> Brackets:
    """A :class:`~riskcore.Brackets` from a Hyperliquid margin table (section 5).

    ``data`` is the ``meta`` (or ``metaAndAssetCtxs``) info response with ``coin`` naming the asset,
    one margin table (``{"description", "marginTiers": [...]}``), the list of tiers, or a path to a
    JSON file of any of these.  Each tier needs ``lowerBound`` and ``maxLeverage`` (a whole number
    >= 1); the first ``lowerBound`` is 0 and they ascend.  An asset whose ``marginTableId`` is not
    among ``marginTables`` gets one tier at its ``maxLeverage`` (the source says so).

    ``mmr = 1 / (2 * maxLeverage)``; ``cum`` (the deduction) follows from the continuity rule.
    """
    raw_tiers, coin, note = _tiers(data, coin)
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise c.VenueError(f"hyperliquid margin table{' for ' + coin if coin else ''}: no tiers")
    records = []
    for row, raw in enumerate(raw_tiers, 1):
        at = c.where(VENUE, WHAT + (f" for {coin}" if coin else ""), row)
        lower = c.number(c.field(raw, "lowerBound", at), "lowerBound", at)
        lev = c.number(c.field(raw, "maxLeverage", at), "maxLeverage", at)
        if not (lev >= 1 and lev == int(lev)):
            raise c.VenueError(f"{at}: field 'maxLeverage' is {raw['maxLeverage']!r}; it must be a whole number >= 1")
        if row == 1 and lower != 0:
            raise c.VenueError(f"{at}: field 'lowerBound' is {raw['lowerBound']!r}; the first tier must start at 0")
        if records:
            if not lower > records[-1]["notional_floor"]:
                raise c.VenueError(f"{at}: field 'lowerBound' {lower:,.10g} is not above the previous tier's "
                                   f"{records[-1]['notional_floor']:,.10g}")
            if lev > records[-1]["max_leverage"]:
                raise c.VenueError(f"{at}: field 'maxLeverage' {lev:g} is above the previous tier's "
                                   f"{records[-1]['max_leverage']:g}")
            records[-1]["notional_cap"] = lower
        records.append({"notional_floor": lower, "notional_cap": None, "mmr": maintenance_rate(lev),
                        "max_leverage": lev})
    if not open_cap > records[-1]["notional_floor"]:
        raise c.VenueError(f"hyperliquid margin table: open_cap {open_cap!r} must be above the last lowerBound "
                           f"{records[-1]['notional_floor']:,.10g}")
    records[-1]["notional_cap"] = float(open_cap)
    src = source or "Hyperliquid info 'meta' marginTables"
    if note:
        src += f" ({note})"
    try:
        return Brackets.from_records(records, symbol=coin, effective_date=effective_date, source=src)
    except BracketError as exc:
        raise c.VenueError(f"hyperliquid margin table: {exc}") from None


def load(symbol: str, date=None) -> Brackets:
    """The shipped Hyperliquid table of an asset (``"BTC"``, ...) in effect on ``date``;
    see ``data/venues/hyperliquid.csv``."""
    rows, day = c.pick_shipped(VENUE, symbol, date)
    tiers = [{"lowerBound": r.lower_bound, "maxLeverage": r.max_leverage} for r in rows.itertuples()]
    return from_hyperliquid(tiers, symbol, effective_date=day, source=c.source_of(rows))


# -------------------------------------------------------------------------- formulas
def initial_margin(qty: float, mark_price: float, leverage: int) -> float:
    """``IM = size * mark / leverage``; leverage is a whole number >= 1 (section 5)."""
    lev = c.positive(leverage, "leverage", VENUE)
    if lev != int(lev):
        raise ValueError(f"hyperliquid: leverage must be a whole number, not {leverage!r}")
    return c.positive(qty, "qty", VENUE) * c.positive(mark_price, "mark_price", VENUE) / lev


def maintenance_margin(qty: float, mark_price: float, table: Brackets) -> float:
    """``MM = notional * MMR(tier) - deduction`` at the mark (section 5)."""
    notional = c.positive(qty, "qty", VENUE) * c.positive(mark_price, "mark_price", VENUE)
    return float(table.maintenance_margin(notional))


def liquidation_price(side, qty: float, price: float, margin_available: float, maintenance_rate: float) -> float:
    """Hyperliquid's published formula, as it stands (section 5)::

        liq_price = price - side * margin_available / position_size / (1 - l * side)

    with ``l`` the maintenance rate of the tier at the liquidation price and ``margin_available``
    the account value (cross) or isolated margin (isolated) less the maintenance margin, both at
    ``price``.  NaN when the price would be <= 0.
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    l_rate = c.rate(maintenance_rate, "maintenance_rate", VENUE)
    return c.price_or_nan(c.positive(price, "price", VENUE) - s * margin_available / q / (1.0 - l_rate * s))


def isolated_liquidation_price(side, qty: float, entry_price: float, isolated_margin: float, table: Brackets, *,
                               mark_price: float | None = None) -> float:
    """:func:`liquidation_price` for an isolated position, with the tier at the liquidation price.

    The value at ``mark_price`` (default: the entry price) is ``isolated_margin + side*Q*(mark -
    entry)``; ``margin_available`` is that less ``Q*mark*l - deduction``.  Each tier is tried and
    the one whose band holds ``Q * liq_price`` is kept.
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    ep = c.positive(entry_price, "entry_price", VENUE)
    mp = ep if mark_price is None else c.positive(mark_price, "mark_price", VENUE)
    value = float(isolated_margin) + s * q * (mp - ep)
    for k in range(table.n_tiers):
        rate, deduction = float(table.mmr[k]), float(table.cum[k])
        lp = liquidation_price(s, q, mp, value - (q * mp * rate - deduction), rate)
        if not math.isnan(lp) and table.tier_index(q * lp) == k:
            return lp
    return math.nan


def backstop(equity: float, maintenance_margin: float) -> bool:
    """True when equity is below 2/3 of maintenance margin: the liquidator vault takes the position
    and its margin over, and the maintenance margin is not returned (section 5)."""
    return float(equity) < BACKSTOP_FRACTION * float(maintenance_margin)


def bankruptcy_price(side, qty: float, entry_price: float, isolated_margin: float) -> float:
    """Not published by Hyperliquid (VENUES.md section 5 has none: a backstop hands the position to
    the vault, ADL closes at the previous oracle price).  Fallback: the generic price at which the
    isolated equity is 0, ``EP - side * margin / Q`` (MARGIN_RULES.md section 3)."""
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    return c.price_or_nan(c.positive(entry_price, "entry_price", VENUE)
                          - s * c.non_negative(isolated_margin, "isolated_margin", VENUE) / q)
