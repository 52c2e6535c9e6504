"""dYdX v4 (dYdX Chain): liquidity tiers and the formulas of VENUES.md section 6.

dYdX has no notional tiers.  Each market belongs to a **liquidity tier** with an initial margin
fraction (IMF) and a maintenance margin fraction (MMF), both charged on the whole position at
the oracle price with no deduction.  The IMF alone rises with the market's open interest
between two caps (the "IMF increase"); the MMF is fixed.  :class:`DydxLiquidityTier` holds one
tier; :meth:`DydxLiquidityTier.to_brackets` gives the one-tier :class:`riskcore.Brackets` the
simulators can use (``mmr = MMF``, ``max_leverage = 1 / IMF``).

Sizes are **signed** here, as in dYdX's own formulas: ``size`` > 0 long, < 0 short, in base
units.  Prices and money are in USDC.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..brackets import Brackets
from ..errors import BracketError
from . import _common as c

VENUE = "dydx"
WHAT = "liquidity tier"
PPM = 1_000_000.0
QUOTE_QUANTUMS = 1_000_000.0      # USDC quantums per USDC (the chain's open-interest caps are in quantums)

#: The largest liquidation penalty of the default configuration (section 6).
MAX_LIQUIDATION_PENALTY = 0.015

__all__ = ["DydxLiquidityTier", "MAX_LIQUIDATION_PENALTY", "account_value", "bankruptcy_price",
           "cross_liquidation_price", "fillable_price", "from_dydx", "funding_cap_8h", "initial_margin",
           "isolated_liquidation_price", "load", "maintenance_margin"]


@dataclass(frozen=True)
class DydxLiquidityTier:
    """One dYdX liquidity tier.  Fractions are plain fractions (0.05 for 5%); caps are open
    notional in USDC, ``None`` where unknown.  ``base_position_notional`` is read and kept but
    not applied: dYdX marks it deprecated (v3.x) and the margin docs no longer use it."""

    name: str
    initial_margin_fraction: float
    maintenance_margin_fraction: float
    open_interest_lower_cap: float | None = None
    open_interest_upper_cap: float | None = None
    impact_notional: float | None = None
    base_position_notional: float | None = None
    tier_id: int | None = None
    market: str | None = None
    effective_date: str | None = None
    source: str | None = None

    def __post_init__(self):
        at = f"dydx liquidity tier {self.name!r}"
        imf, mmf = self.initial_margin_fraction, self.maintenance_margin_fraction
        if not (math.isfinite(imf) and 0 < imf <= 1):
            raise c.VenueError(f"{at}: initial margin fraction {imf!r} must lie in (0, 1]")
        if not (math.isfinite(mmf) and 0 < mmf <= imf):
            raise c.VenueError(f"{at}: maintenance margin fraction {mmf!r} must lie in (0, IMF {imf:g}]")
        lo, hi = self.open_interest_lower_cap, self.open_interest_upper_cap
        if (lo is None) != (hi is None):
            raise c.VenueError(f"{at}: give both open-interest caps or neither")
        if lo is not None and not (0 <= lo and (hi == 0 or lo <= hi)):
            raise c.VenueError(f"{at}: open-interest lower cap {lo:,.10g} must be >= 0 and not above the upper cap "
                               f"{hi:,.10g} (an upper cap of 0 turns the scaling off)")

    def imf(self, open_notional: float | None = None) -> float:
        """The effective IMF at a market open notional (open interest x oracle price, USDC)::

            scaling = (open_notional - lower_cap) / (upper_cap - lower_cap)
            IMF     = min(base IMF + max(scaling * (1 - base IMF), 0), 100%)

        (dYdX docs, ``margin.mdx``).  ``None`` gives the base IMF; an upper cap of 0 means no
        scaling.  Refused when the caps of this tier are not known.
        """
        base = self.initial_margin_fraction
        if open_notional is None:
            return base
        on = c.non_negative(open_notional, "open_notional", VENUE)
        lo, hi = self.open_interest_lower_cap, self.open_interest_upper_cap
        if lo is None:
            raise c.VenueError(f"dydx liquidity tier {self.name!r}: its open-interest caps are not known "
                               "(VENUES.md does not give them); build the tier with them to scale the IMF")
        if hi == 0 or hi == lo:
            return base if (hi == 0 or on < lo) else 1.0
        scaling = (on - lo) / (hi - lo)
        return min(base + max(scaling * (1.0 - base), 0.0), 1.0)

    def to_brackets(self, open_notional: float | None = None, *, open_cap: float = c.OPEN_CAP) -> Brackets:
        """One tier from 0 to ``open_cap``: ``mmr = MMF``, ``max_leverage = 1 / IMF(open_notional)``.
        Refused when MMF = IMF (a position at the top leverage would be liquidated at once)."""
        imf = self.imf(open_notional)
        try:
            return Brackets([0.0], [open_cap], [self.maintenance_margin_fraction], [1.0 / imf],
                            symbol=self.market or self.name, effective_date=self.effective_date,
                            source=self.source)
        except BracketError as exc:
            raise c.VenueError(f"dydx liquidity tier {self.name!r}: {exc}") from None


# --------------------------------------------------------------------------- loading
def _chain_tier(raw, at, market, effective_date, source) -> DydxLiquidityTier:
    imf = c.number(c.field(raw, "initial_margin_ppm", at), "initial_margin_ppm", at) / PPM
    fraction = c.number(c.field(raw, "maintenance_fraction_ppm", at), "maintenance_fraction_ppm", at) / PPM
    if not 0 < fraction <= 1:
        raise c.VenueError(f"{at}: field 'maintenance_fraction_ppm' is {raw['maintenance_fraction_ppm']!r}; "
                           "it must lie in (0, 1,000,000] (MMF = IMF x this fraction)")
    caps = [c.number(raw.get(k), k, at, allow_empty=True) for k in ("open_interest_lower_cap", "open_interest_upper_cap")]
    caps = [None if v is None else v / QUOTE_QUANTUMS for v in caps]
    if caps[0] is not None and caps[1] is None or caps[0] is None and caps[1] is not None:
        caps = [0.0 if v is None else v for v in caps]          # the chain omits a zero field
    impact = c.number(raw.get("impact_notional"), "impact_notional", at, allow_empty=True)
    base = c.number(raw.get("base_position_notional"), "base_position_notional", at, allow_empty=True)
    try:
        return DydxLiquidityTier(
            name=str(raw.get("name", raw.get("id"))), initial_margin_fraction=imf,
            maintenance_margin_fraction=imf * fraction, open_interest_lower_cap=caps[0],
            open_interest_upper_cap=caps[1], impact_notional=None if impact is None else impact / QUOTE_QUANTUMS,
            base_position_notional=None if base is None else base / QUOTE_QUANTUMS,
            tier_id=None if raw.get("id") is None else int(raw["id"]), market=market,
            effective_date=effective_date, source=source or "dYdX chain liquidity_tiers")
    except c.VenueError as exc:
        raise c.VenueError(f"{at}: {exc}") from None


def _indexer_market(raw, at, market, effective_date, source) -> DydxLiquidityTier:
    imf = c.number(c.field(raw, "initialMarginFraction", at), "initialMarginFraction", at)
    mmf = c.number(c.field(raw, "maintenanceMarginFraction", at), "maintenanceMarginFraction", at)
    lo = c.number(raw.get("openInterestLowerCap"), "openInterestLowerCap", at, allow_empty=True)
    hi = c.number(raw.get("openInterestUpperCap"), "openInterestUpperCap", at, allow_empty=True)
    try:
        return DydxLiquidityTier(name=market, initial_margin_fraction=imf, maintenance_margin_fraction=mmf,
                                 open_interest_lower_cap=lo, open_interest_upper_cap=hi, market=market,
                                 effective_date=effective_date,
                                 source=source or "dYdX indexer GET /v4/perpetualMarkets")
    except c.VenueError as exc:
        raise c.VenueError(f"{at}: {exc}") from None


def from_dydx(data, market: str | None = None, *, tier=None, effective_date=None,
              source: str | None = None) -> DydxLiquidityTier:
    """A :class:`DydxLiquidityTier` from dYdX's published parameters (section 6).

    ``data`` (parsed JSON or a path) is one of:

    * the indexer's ``GET /v4/perpetualMarkets`` response (``{"markets": {ticker: {...}}}``, fields
      ``initialMarginFraction``, ``maintenanceMarginFraction``, ``openInterestLowerCap``,
      ``openInterestUpperCap`` in USDC); ``market`` picks the ticker;
    * the chain's liquidity tiers (a list, or a dict with ``liquidity_tiers`` and optionally
      ``perpetuals`` mapping tickers to tiers): ``initial_margin_ppm``, ``maintenance_fraction_ppm``
      (MMF = IMF x fraction), ``open_interest_lower_cap``/``open_interest_upper_cap`` in USDC
      quantums; pick with ``tier`` (id or name) or with ``market`` when ``perpetuals`` is given.
    """
    data = c.read_json(data, VENUE, WHAT)
    if isinstance(data, Mapping) and "markets" in data:
        markets = data["markets"]
        if not isinstance(markets, Mapping) or not markets:
            raise c.VenueError("dydx perpetualMarkets: 'markets' must be a non-empty object keyed by ticker")
        if market is None:
            if len(markets) > 1:
                raise c.VenueError(f"dydx perpetualMarkets: {len(markets)} markets; name one with market=")
            market = next(iter(markets))
        if market not in markets:
            raise c.VenueError(f"dydx perpetualMarkets: market {market!r} is not in the data ({sorted(markets)[:10]})")
        return _indexer_market(markets[market], f"dydx perpetualMarkets: market {market!r}", market,
                               effective_date, source)
    if isinstance(data, Mapping) and "app_state" in data:
        data = data["app_state"].get("perpetuals", {})
    perpetuals = data.get("perpetuals", []) if isinstance(data, Mapping) else []
    tiers = data.get("liquidity_tiers") if isinstance(data, Mapping) else data
    if not isinstance(tiers, list) or not tiers:
        raise c.VenueError("dydx liquidity tier: expected perpetualMarkets ('markets') or a non-empty list of "
                           "liquidity tiers ('liquidity_tiers')")
    if tier is None and market is not None:
        for p in perpetuals:
            params = p.get("params", p) if isinstance(p, Mapping) else {}
            if params.get("ticker") == market:
                tier = params.get("liquidity_tier", 0)
                break
        else:
            raise c.VenueError(f"dydx liquidity tier: market {market!r} is not among the perpetuals given, so its "
                               "liquidity tier is unknown; pass tier= (id or name)")
    if tier is None:
        if len(tiers) > 1:
            raise c.VenueError(f"dydx liquidity tier: {len(tiers)} tiers; pick one with tier= (id or name) or market=")
        tier = tiers[0].get("id", 0) if isinstance(tiers[0], Mapping) else 0
    for row, raw in enumerate(tiers, 1):
        if not isinstance(raw, Mapping):
            raise c.VenueError(f"dydx liquidity tier: row {row} is a {type(raw).__name__}, not an object")
        if str(raw.get("id", 0)) == str(tier) or raw.get("name") == tier:
            at = c.where(VENUE, WHAT, row, f"id {raw.get('id', 0)}, {raw.get('name')!r}")
            return _chain_tier(raw, at, market, effective_date, source)
    raise c.VenueError(f"dydx liquidity tier: no tier {tier!r} (ids/names: "
                       f"{[(t.get('id', 0), t.get('name')) for t in tiers if isinstance(t, Mapping)]})")


def load(symbol: str, date=None) -> DydxLiquidityTier:
    """A shipped tier: a market (``"BTC-USD"``) or a class (``"large-cap"``, ``"mid-cap"``,
    ``"long-tail"``) in effect on ``date``; see ``data/venues/dydx.csv``."""
    rows, day = c.pick_shipped(VENUE, symbol, date)
    r = rows.iloc[0]
    raw = {"initialMarginFraction": r["initial_margin_fraction"],
           "maintenanceMarginFraction": r["maintenance_margin_fraction"],
           "openInterestLowerCap": "" if r["open_interest_lower_cap"] != r["open_interest_lower_cap"] else r["open_interest_lower_cap"],
           "openInterestUpperCap": "" if r["open_interest_upper_cap"] != r["open_interest_upper_cap"] else r["open_interest_upper_cap"]}
    t = _indexer_market(raw, f"data/venues/dydx.csv: {symbol!r}", symbol, day, c.source_of(rows))
    return DydxLiquidityTier(**{**t.__dict__, "name": str(r["liquidity_tier"])})


# -------------------------------------------------------------------------- formulas
def _size(size) -> float:
    s = float(size)
    if not (math.isfinite(s) and s != 0):
        raise ValueError(f"dydx: size must be a finite, non-zero signed number (long > 0, short < 0), not {size!r}")
    return s


def _fraction(tier_or_fraction, which: str) -> float:
    if isinstance(tier_or_fraction, DydxLiquidityTier):
        return (tier_or_fraction.initial_margin_fraction if which == "imf"
                else tier_or_fraction.maintenance_margin_fraction)
    return c.rate(tier_or_fraction, which, VENUE, upper=1.0 + 1e-12)


def initial_margin(size: float, oracle_price: float, imf) -> float:
    """``IMR = |S * P * IMF|`` (section 6); ``imf`` a fraction or a tier (its base IMF)."""
    return abs(_size(size) * c.positive(oracle_price, "oracle_price", VENUE) * _fraction(imf, "imf"))


def maintenance_margin(size: float, oracle_price: float, mmf) -> float:
    """``MMR = |S * P * MMF|`` (section 6); ``mmf`` a fraction or a tier."""
    return abs(_size(size) * c.positive(oracle_price, "oracle_price", VENUE) * _fraction(mmf, "mmf"))


def account_value(quote_balance: float, sizes, oracle_prices) -> float:
    """Total account value (equity) ``Q + sum S_i * P_i`` (section 6); ``Q`` (USDC) may be negative."""
    sizes, prices = list(sizes), list(oracle_prices)
    if len(sizes) != len(prices):
        raise ValueError(f"dydx: {len(sizes)} sizes but {len(prices)} prices")
    return float(quote_balance) + sum(float(s) * float(p) for s, p in zip(sizes, prices))


def isolated_liquidation_price(size: float, entry_price: float, equity: float, mmf) -> float:
    """``p' = (e - s*p) / (|s|*MMF - s)`` (section 6): ``e`` the equity of the isolated
    (sub)account, ``s`` the signed size, ``p`` the entry price.  NaN when <= 0."""
    s = _size(size)
    p = c.positive(entry_price, "entry_price", VENUE)
    m = _fraction(mmf, "mmf")
    return c.price_or_nan((float(equity) - s * p) / (abs(s) * m - s))


def cross_liquidation_price(size: float, entry_price: float, equity: float, mmf, other_maintenance: float) -> float:
    """``p' = (e - s*p - MMR_o) / (|s|*MMF - s)`` (section 6), ``MMR_o`` the maintenance margin of
    the account's other positions, held at their current prices.  NaN when <= 0."""
    s = _size(size)
    p = c.positive(entry_price, "entry_price", VENUE)
    m = _fraction(mmf, "mmf")
    mm_o = c.non_negative(other_maintenance, "other_maintenance", VENUE)
    return c.price_or_nan((float(equity) - s * p - mm_o) / (abs(s) * m - s))


def bankruptcy_price(size: float, entry_price: float, equity: float) -> float:
    """The price at which the position's account value is 0, ``p - e / s``; deleveraging closes the
    offsetting accounts there (section 6).  NaN when <= 0."""
    s = _size(size)
    return c.price_or_nan(c.positive(entry_price, "entry_price", VENUE) - float(equity) / s)


def fillable_price(size: float, oracle_price: float, mmf, *, account_value: float, total_maintenance: float,
                   spread_to_mm_ratio: float, bankruptcy_adjustment: float = 1.0) -> float:
    """The limit price of a protocol liquidation order (section 6)::

        fillable = P * (1 - (SMMR * MMF) * (BA * (1 - Q))),   Q = TAV / TMMR

    The page prints this one form "for both short and long position"; read literally it would buy
    a short back *below* the oracle price.  Here the adjustment is applied away from the oracle
    in the direction of the close: a long sells at ``P * (1 - adj)``, a short buys at
    ``P * (1 + adj)`` (our reading; the page gives no short example).
    """
    s = _size(size)
    p = c.positive(oracle_price, "oracle_price", VENUE)
    m = _fraction(mmf, "mmf")
    tmmr = c.positive(total_maintenance, "total_maintenance", VENUE)
    ba = float(bankruptcy_adjustment)
    if not ba >= 1:
        raise ValueError(f"dydx: bankruptcy_adjustment must be >= 1, not {bankruptcy_adjustment!r}")
    q = float(account_value) / tmmr
    adjustment = c.non_negative(spread_to_mm_ratio, "spread_to_mm_ratio", VENUE) * m * (ba * (1.0 - q))
    return p * (1.0 - math.copysign(1.0, s) * adjustment)


def funding_cap_8h(imf, mmf) -> float:
    """The 8-hour funding rate cap, ``600% x (IMF - MMF)`` (section 6): 12% for BTC-USD."""
    return 6.0 * (_fraction(imf, "imf") - _fraction(mmf, "mmf"))
