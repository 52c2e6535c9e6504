"""OKX perpetual swaps (SWAP): position tiers and the formulas of VENUES.md section 3.

OKX's tiers do not fit :class:`riskcore.Brackets`, for two reasons:

* they have **no continuity deduction**: the maintenance margin of a position is its whole
  notional times its tier's rate, so it jumps at a tier edge (``Brackets`` insists on the
  continuity rule for ``cum`` and would reject ``cum = 0`` above tier 1);
* a SWAP tier is chosen by the position's **size in contracts** (``minSz``/``maxSz`` of
  ``GET /api/v5/public/position-tiers``), not by its notional, so the tier does not move with
  the price.

:class:`OkxTiers` holds such a table.  The maintenance requirement includes the fee to close
(section 3.2): a position is liquidated when its equity falls to ``notional * (MMR + taker fee)``.

Prices are in USDT, ``qty`` in base units (> 0), ``side`` +1 long / -1 short.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import _common as c

VENUE = "okx"
WHAT = "position-tiers"

__all__ = ["OkxTiers", "bankruptcy_price", "from_okx", "isolated_liquidation_price", "load",
           "maintenance_margin", "margin_ratio_isolated"]


@dataclass(frozen=True)
class OkxTiers:
    """One OKX instrument family's position tiers, ascending.

    A tier holds sizes in ``(previous max_size, max_size]`` (the first tier also holds 0), in
    ``size_unit``: ``"contracts"`` (SWAP; ``contract_value`` base units per contract, OKX's
    ``ctVal * ctMult``) or ``"quote"`` (notional in USDT).  Sizes above the last ``max_size``
    use the last tier, and no leverage allows them.
    """

    max_size: tuple[float, ...]
    mmr: tuple[float, ...]
    imr: tuple[float, ...]
    max_leverage: tuple[float, ...]
    size_unit: str = "contracts"
    contract_value: float | None = None
    inst_family: str | None = None
    effective_date: str | None = None
    source: str | None = None
    min_size: tuple[float, ...] = field(default=(), repr=False)

    def __post_init__(self):
        if self.size_unit not in ("contracts", "quote"):
            raise c.VenueError(f"okx position-tiers: size_unit must be 'contracts' or 'quote', not {self.size_unit!r}")
        if self.contract_value is not None and not (math.isfinite(self.contract_value) and self.contract_value > 0):
            raise c.VenueError(f"okx position-tiers: contract_value must be above 0, not {self.contract_value!r}")
        n = len(self.max_size)
        if n == 0 or not (len(self.mmr) == len(self.imr) == len(self.max_leverage) == n):
            raise c.VenueError("okx position-tiers: max_size, mmr, imr and max_leverage need one value per tier")

    @property
    def n_tiers(self) -> int:
        return len(self.max_size)

    def size_of(self, qty: float, price: float) -> float:
        """The size OKX tiers a position by: contracts (``qty / contract_value``) or notional."""
        if self.size_unit == "quote":
            return qty * price
        if self.contract_value is None:
            raise c.VenueError(f"okx position-tiers for {self.inst_family or 'this family'}: the tiers are in "
                               "contracts; give contract_value (ctVal * ctMult, base units per contract)")
        return qty / self.contract_value

    def tier_index(self, size: float) -> int:
        """0-based tier holding a size in ``size_unit`` (above the last max: the last tier)."""
        if not size >= 0:
            raise ValueError(f"okx: size must be >= 0, not {size!r}")
        k = int(np.searchsorted(np.asarray(self.max_size), size, side="left"))
        return min(k, self.n_tiers - 1)

    def excess_over_tier(self, size: float, tier: int = 1) -> float:
        """How much of a position of ``size`` (in ``size_unit``) a partial liquidation closes to bring
        it into ``tier`` (from 1): ``max(0, size - max_size of that tier)`` (section 3.4: 15,000
        swaps with tier 1 up to 2,000 close 13,000).  Which tier a round aims at (tier 1, or
        two tiers down in newer summaries) is the profile's choice."""
        if not 1 <= tier <= self.n_tiers:
            raise ValueError(f"okx: tier must lie in 1..{self.n_tiers}, not {tier!r}")
        if not size >= 0:
            raise ValueError(f"okx: size must be >= 0, not {size!r}")
        return max(0.0, float(size) - self.max_size[tier - 1])

    def rates(self, qty: float, price: float) -> tuple[float, float, float]:
        """(mmr, imr, max_leverage) of the tier holding a position of ``qty`` at ``price``."""
        k = self.tier_index(self.size_of(qty, price))
        return self.mmr[k], self.imr[k], self.max_leverage[k]


def _rows(data, inst_family):
    data = c.read_json(data, VENUE, WHAT)
    if isinstance(data, Mapping) and "data" in data:
        if str(data.get("code", "0")) != "0":
            raise c.VenueError(f"okx position-tiers: the response is an error: code {data['code']}, msg {data.get('msg')!r}")
        data = data["data"]
    if not isinstance(data, list) or not data:
        raise c.VenueError("okx position-tiers: expected a non-empty list of tiers (the response or its 'data' "
                           "of GET /api/v5/public/position-tiers)")

    def family(r):
        if not isinstance(r, Mapping):
            return None
        return r.get("instFamily") or r.get("uly") or r.get("instId") or None

    families = sorted({f for f in map(family, data) if f})
    if inst_family is None:
        if len(families) > 1:
            raise c.VenueError(f"okx position-tiers: the data holds {len(families)} instrument families "
                               f"({families[:5]}); name one with inst_family=")
        inst_family = families[0] if families else None
    numbered = [(i + 1, r) for i, r in enumerate(data)
                if family(r) is None or family(r) == inst_family
                or (isinstance(r, Mapping) and inst_family in (r.get("uly"), r.get("instId")))]
    if not numbered:
        raise c.VenueError(f"okx position-tiers: {inst_family!r} is not in the data (families: {families[:10]})")
    return numbered, inst_family


def from_okx(data, inst_family: str | None = None, *, contract_value: float | None = None,
             size_unit: str = "contracts", effective_date=None, source: str | None = None) -> OkxTiers:
    """:class:`OkxTiers` from ``GET /api/v5/public/position-tiers`` (section 3.2).

    ``data`` is the response, its ``data`` list, or a path to a JSON file of either.  Each tier
    needs ``minSz``, ``maxSz``, ``mmr``, ``imr`` and ``maxLever``; ``tier`` orders them when
    present.  Checks: the first ``minSz`` is 0; each ``minSz`` is the previous ``maxSz`` or one
    contract above it (OKX writes both); sizes, rates and leverages are ordered; ``0 < mmr < imr
    <= 1``.  ``VenueError`` names the row (from 1, as given) and field.
    """
    numbered, inst_family = _rows(data, inst_family)
    parsed = []
    for row, raw in numbered:
        label = f"tier {raw.get('tier')}" if isinstance(raw, Mapping) and "tier" in raw else None
        at = c.where(VENUE, WHAT + (f" for {inst_family}" if inst_family else ""), row, label)
        order = c.number(raw["tier"], "tier", at) if "tier" in raw else float(row)
        lo = c.number(c.field(raw, "minSz", at), "minSz", at)
        hi = c.number(c.field(raw, "maxSz", at), "maxSz", at)
        mmr = c.number(c.field(raw, "mmr", at), "mmr", at)
        imr = c.number(c.field(raw, "imr", at), "imr", at)
        lev = c.number(c.field(raw, "maxLever", at), "maxLever", at)
        if not hi > lo >= 0:
            raise c.VenueError(f"{at}: field 'maxSz' {raw['maxSz']!r} must be above minSz {raw['minSz']!r} (and minSz >= 0)")
        if not 0 < mmr < 1:
            raise c.VenueError(f"{at}: field 'mmr' is {raw['mmr']!r}; it must be a fraction strictly between 0 and 1")
        if not mmr < imr <= 1:
            raise c.VenueError(f"{at}: field 'imr' is {raw['imr']!r}; it must lie above mmr {mmr:g} and at most 1")
        if not lev >= 1:
            raise c.VenueError(f"{at}: field 'maxLever' is {raw['maxLever']!r}; it must be at least 1")
        parsed.append((order, row, at, lo, hi, mmr, imr, lev))
    parsed.sort(key=lambda p: p[0])
    prev = None
    for order, row, at, lo, hi, mmr, imr, lev in parsed:
        if prev is None:
            if lo != 0:
                raise c.VenueError(f"{at}: field 'minSz' is {lo:g}; the first tier must start at 0")
        else:
            p_hi, p_mmr, p_lev = prev
            if not p_hi <= lo <= p_hi + 1:
                raise c.VenueError(f"{at}: field 'minSz' {lo:g} does not follow the previous tier's maxSz {p_hi:g} "
                                   "(it must equal it or be one contract above)")
            if mmr < p_mmr:
                raise c.VenueError(f"{at}: field 'mmr' {mmr:g} is below the previous tier's {p_mmr:g}")
            if lev > p_lev:
                raise c.VenueError(f"{at}: field 'maxLever' {lev:g} is above the previous tier's {p_lev:g}")
        prev = (hi, mmr, lev)
    return OkxTiers(max_size=tuple(p[4] for p in parsed), mmr=tuple(p[5] for p in parsed),
                    imr=tuple(p[6] for p in parsed), max_leverage=tuple(p[7] for p in parsed),
                    min_size=tuple(p[3] for p in parsed), size_unit=size_unit, contract_value=contract_value,
                    inst_family=inst_family, effective_date=effective_date,
                    source=source or "OKX GET /api/v5/public/position-tiers")


def load(symbol: str, date=None) -> OkxTiers:
    """A shipped OKX table.  None is shipped: VENUES.md quotes no OKX tier with both its size band and
    its rate (section 3), so this raises :class:`VenueError` saying so for any symbol."""
    if c.shipped_frame(VENUE).empty:
        raise c.VenueError("okx: no OKX tables are shipped: VENUES.md section 3 quotes no OKX tier with both its "
                           "size band and its rate; load a position-tiers response with from_okx")
    rows, day = c.pick_shipped(VENUE, symbol, date)
    tiers = [{"instFamily": symbol, "tier": r.tier, "minSz": r.min_size, "maxSz": r.max_size, "mmr": r.mmr,
              "imr": r.imr, "maxLever": r.max_leverage} for r in rows.itertuples()]
    return from_okx(tiers, symbol, contract_value=float(rows["contract_value"].iloc[0]),
                    effective_date=day, source=c.source_of(rows))


# -------------------------------------------------------------------------- formulas
def _mmr(mmr, qty: float, price: float) -> float:
    if isinstance(mmr, OkxTiers):
        return mmr.rates(qty, price)[0]
    return c.rate(mmr, "mmr", VENUE)


def maintenance_margin(qty: float, mark_price: float, mmr, *, taker_fee: float = 0.0) -> float:
    """OKX's maintenance requirement with the fee to close (section 3.2)::

        MM = |contracts| * face value * mark * (MMR(tier) + taker fee)

    i.e. ``qty * mark * (mmr + taker_fee)``, with no deduction.  ``mmr`` is a rate or an
    :class:`OkxTiers` (tier by size).  ``taker_fee=0`` gives the bare MM of section 3.2.
    """
    q = c.positive(qty, "qty", VENUE)
    mp = c.positive(mark_price, "mark_price", VENUE)
    return q * mp * (_mmr(mmr, q, mp) + c.rate(taker_fee, "taker_fee", VENUE))


def margin_ratio_isolated(side, qty: float, entry_price: float, margin: float, mark_price: float, mmr, *,
                          taker_fee: float) -> float:
    """Isolated USDT-margined margin ratio (section 3.2); liquidation begins at <= 1::

        ratio = (margin + uPnL) / (qty * mark * (MMR + taker fee))
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    equity = c.non_negative(margin, "margin", VENUE) + s * q * (mark_price - c.positive(entry_price, "entry_price", VENUE))
    return equity / maintenance_margin(q, mark_price, mmr, taker_fee=taker_fee)


def isolated_liquidation_price(side, qty: float, entry_price: float, margin: float, mmr, *,
                               taker_fee: float) -> float:
    """Isolated liquidation price (section 3.3; [derived], matching freqtrade's OKX code)::

        LP_long  = (EP - M/Q) / (1 - (MMR + taker))
        LP_short = (EP + M/Q) / (1 + (MMR + taker))

    where equity ``M + side*Q*(LP - EP)`` equals ``Q*LP*(MMR + taker)``.  With ``mmr`` an
    :class:`OkxTiers`, the tier is the one of the position's size (it does not move with the
    price for tiers in contracts).  NaN when the price would be <= 0.
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    ep = c.positive(entry_price, "entry_price", VENUE)
    m = c.non_negative(margin, "margin", VENUE)
    if isinstance(mmr, OkxTiers) and mmr.size_unit == "quote":
        raise c.VenueError("okx: isolated_liquidation_price needs a rate or tiers in contracts; with tiers by "
                           "notional the tier at the liquidation price is not solved here")
    need = _mmr(mmr, q, ep) + c.rate(taker_fee, "taker_fee", VENUE)
    return c.price_or_nan((ep - s * m / q) / (1.0 - s * need))


def bankruptcy_price(side, qty: float, entry_price: float, margin: float) -> float:
    """The price at which the isolated margin ratio is 0, i.e. equity 0 (section 3.4): OKX takes a
    fully liquidated position over there.  ``BP = EP - side * M / Q``."""
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    return c.price_or_nan(c.positive(entry_price, "entry_price", VENUE) - s * c.non_negative(margin, "margin", VENUE) / q)
