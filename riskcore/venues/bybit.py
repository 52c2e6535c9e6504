"""Bybit USDT perpetuals: risk-limit tiers and the formulas of VENUES.md section 2.

Bybit's tiers fit :class:`riskcore.Brackets` as they are: a tier's ``riskLimitValue`` is its
cap, the previous tier's is its floor, and ``mmDeduction`` is riskcore's ``cum`` under the same
continuity rule (section 2.1)::

    Deduction_n = RiskLimit_(n-1) * (MMR_n - MMR_(n-1)) + Deduction_(n-1)

What Bybit computes differently from Binance, and what this module implements:

* maintenance margin on the **entry** value in its liquidation price (section 2.2), not on the
  value at the liquidation price;
* the Unified Trading Account (UTA) adds an estimated fee to close, the bankruptcy value times
  the taker fee, to both IM and MM (section 2.1);
* the bankruptcy price is ``EP * (1 -/+ 1/leverage)`` (section 2.3);
* classic cross margin: a position is liquidated when the available balance is used up and its
  margin reaches MM (section 2.4).

Prices are in USDT, ``qty`` in base units (> 0), ``side`` +1 long / -1 short.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..brackets import Brackets, CUM_TOLERANCE
from ..errors import BracketError
from . import _common as c

VENUE = "bybit"
WHAT = "risk-limit"

__all__ = ["bankruptcy_price", "cross_liquidation_price_classic", "fee_to_close", "from_bybit",
           "initial_margin", "isolated_liquidation_price", "load", "maintenance_margin"]


# --------------------------------------------------------------------------- loading
def _rows(data, symbol):
    data = c.read_json(data, VENUE, WHAT)
    if isinstance(data, Mapping) and "retCode" in data:
        if str(data["retCode"]) != "0":
            raise c.VenueError(f"bybit risk-limit: the response is an error: retCode {data['retCode']}, "
                               f"retMsg {data.get('retMsg')!r}")
        data = c.field(data, "result", "bybit risk-limit: the response")
    if isinstance(data, Mapping) and "list" in data:
        data = data["list"]
    if not isinstance(data, list) or not data:
        raise c.VenueError("bybit risk-limit: expected a non-empty list of tiers (the response, its "
                           "'result', or 'result.list' of GET /v5/market/risk-limit)")
    symbols = sorted({str(r.get("symbol")) for r in data if isinstance(r, Mapping) and "symbol" in r})
    if symbol is None:
        if len(symbols) > 1:
            raise c.VenueError(f"bybit risk-limit: the data holds {len(symbols)} symbols ({symbols[:5]}...); "
                               "name one with symbol=")
        symbol = symbols[0] if symbols else None
    numbered = [(i + 1, r) for i, r in enumerate(data)
                if not isinstance(r, Mapping) or "symbol" not in r or r["symbol"] == symbol]
    if not numbered:
        raise c.VenueError(f"bybit risk-limit: symbol {symbol!r} is not in the data (symbols: {symbols[:10]})")
    return numbered, symbol


def from_bybit(data, symbol: str | None = None, *, effective_date=None, source: str | None = None) -> Brackets:
    """A :class:`~riskcore.Brackets` from Bybit's ``GET /v5/market/risk-limit`` (section 2.1).

    ``data`` is the whole response, its ``result``, the ``result.list`` of tiers, or a path to a
    ``.json``/``.json.gz`` file holding one of those.  Each tier needs ``riskLimitValue`` (the
    tier's cap, position value in USDT), ``maintenanceMargin`` (the MMR as a fraction) and
    ``maxLeverage``; ``initialMargin`` is checked when present.  ``mmDeduction`` may be missing or
    ``""``: such deductions are derived by the continuity rule (0 for the first tier); given ones
    must match the rule.  With several symbols in the data, ``symbol`` picks one.

    Raises :class:`VenueError` naming the row (from 1, as given) and the field.
    """
    numbered, symbol = _rows(data, symbol)
    parsed = []
    for row, raw in numbered:
        label = f"id {raw.get('id')}" if isinstance(raw, Mapping) and "id" in raw else None
        at = c.where(VENUE, WHAT + (f" for {symbol}" if symbol else ""), row, label)
        cap = c.number(c.field(raw, "riskLimitValue", at), "riskLimitValue", at)
        mmr = c.number(c.field(raw, "maintenanceMargin", at), "maintenanceMargin", at)
        lev = c.number(c.field(raw, "maxLeverage", at), "maxLeverage", at)
        if not 0 < mmr < 1:
            raise c.VenueError(f"{at}: field 'maintenanceMargin' is {raw['maintenanceMargin']!r}; the MMR must be "
                               "a fraction strictly between 0 and 1 (0.005 for 0.5%)")
        if not mmr < 1.0 / lev:
            raise c.VenueError(f"{at}: field 'maintenanceMargin' {mmr:g} is not below 1/maxLeverage = {1.0 / lev:g} "
                               "(Bybit gives fractions, 0.005 for 0.5%; is this a percent?)")
        if "initialMargin" in raw:
            imr = c.number(raw["initialMargin"], "initialMargin", at)
            if not mmr < imr <= 1:
                raise c.VenueError(f"{at}: field 'initialMargin' is {raw['initialMargin']!r}; it must be a fraction "
                                   f"above the maintenance rate {mmr:g} and at most 1")
        deduction = c.number(raw.get("mmDeduction"), "mmDeduction", at, allow_empty=True)
        parsed.append((row, at, cap, mmr, lev, deduction))
    parsed.sort(key=lambda p: p[2])
    for (_, _, cap0, *_), (_, at, cap1, *_) in zip(parsed, parsed[1:]):
        if cap1 == cap0:
            raise c.VenueError(f"{at}: field 'riskLimitValue' {cap1:,.10g} repeats another tier's")
    records, cum, prev = [], 0.0, None
    for row, at, cap, mmr, lev, deduction in parsed:
        floor = 0.0 if prev is None else prev[0]
        if prev is not None:
            cum += floor * (mmr - prev[1])   # Deduction_n = RiskLimit_(n-1)*(MMR_n - MMR_(n-1)) + Deduction_(n-1)
        if deduction is not None and not abs(deduction - cum) <= CUM_TOLERANCE * max(1.0, abs(cum)):
            raise c.VenueError(f"{at}: field 'mmDeduction' is {deduction!r} but the continuity rule of "
                               f"VENUES.md section 2.1 gives {cum:,.10g}")
        records.append({"notional_floor": floor, "notional_cap": cap, "mmr": mmr, "max_leverage": lev, "cum": cum})
        prev = (cap, mmr)
    try:
        return Brackets.from_records(records, symbol=symbol, effective_date=effective_date,
                                     source=source or "Bybit GET /v5/market/risk-limit")
    except c.VenueError:
        raise
    except BracketError as exc:
        raise c.VenueError(f"bybit risk-limit: {exc} (tiers sorted by riskLimitValue)") from None


def load(symbol: str, date=None) -> Brackets:
    """The shipped Bybit table of ``symbol`` in effect on ``date`` (newest without one);
    see ``data/venues/bybit.csv``."""
    rows, day = c.pick_shipped(VENUE, symbol, date)
    tiers = [{"symbol": symbol, "riskLimitValue": r.risk_limit_value, "maintenanceMargin": r.maintenance_margin,
              "initialMargin": r.initial_margin, "maxLeverage": r.max_leverage,
              "mmDeduction": "" if r.mm_deduction != r.mm_deduction else r.mm_deduction}   # NaN: empty
             for r in rows.itertuples()]
    return from_bybit(tiers, symbol, effective_date=day, source=c.source_of(rows))


# -------------------------------------------------------------------------- formulas
def _mmr_deduction(mmr, position_value: float) -> tuple[float, float]:
    """(MMR, deduction): from a Brackets at ``position_value``, or a bare rate with deduction 0."""
    if isinstance(mmr, Brackets):
        rate, cum = mmr.mmr_cum(position_value)
        return float(rate), float(cum)
    return c.rate(mmr, "mmr", VENUE), 0.0


def fee_to_close(side, qty: float, entry_price: float, leverage: float, taker_fee: float) -> float:
    """UTA's estimated fee to close: bankruptcy value times the taker fee (section 2.1),
    ``qty * bankruptcy_price * taker_fee``."""
    q = c.positive(qty, "qty", VENUE)
    return q * bankruptcy_price(side, entry_price, leverage) * c.rate(taker_fee, "taker_fee", VENUE)


def initial_margin(qty: float, entry_price: float, leverage: float, *, fee: float = 0.0) -> float:
    """``IM = position value / leverage`` (+ the fee to close on the UTA; section 2.1)."""
    pv = c.positive(qty, "qty", VENUE) * c.positive(entry_price, "entry_price", VENUE)
    return pv / c.positive(leverage, "leverage", VENUE) + c.non_negative(fee, "fee", VENUE)


def maintenance_margin(qty: float, entry_price: float, mmr, *, fee: float = 0.0) -> float:
    """``MM = position value * MMR - deduction`` (+ the fee to close on the UTA; section 2.1).

    ``mmr`` is a rate (deduction 0) or a :class:`~riskcore.Brackets` looked up at the position
    value ``qty * entry_price``.
    """
    pv = c.positive(qty, "qty", VENUE) * c.positive(entry_price, "entry_price", VENUE)
    rate, deduction = _mmr_deduction(mmr, pv)
    return pv * rate - deduction + c.non_negative(fee, "fee", VENUE)


def isolated_liquidation_price(side, qty: float, entry_price: float, leverage: float, mmr, *,
                               extra_margin: float = 0.0) -> float:
    """Bybit's isolated liquidation price of a USDT contract (section 2.2)::

        LP = EP - side * (IM - MM) / Q - side * extra_margin / Q

    with ``IM = Q*EP/leverage`` and ``MM = Q*EP*MMR - deduction``, both on the **entry** value.
    ``extra_margin`` is margin added by hand or by auto-add (section 2.6).  NaN when the price
    would be <= 0.  The UTA's fee-aware USDT form was not found (section 10): this is the
    classic formula, which the UTA page states for USDT as well.
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    im = initial_margin(q, entry_price, leverage)
    mm = maintenance_margin(q, entry_price, mmr)
    extra = c.non_negative(extra_margin, "extra_margin", VENUE)
    return c.price_or_nan(entry_price - s * (im - mm) / q - s * extra / q)


def bankruptcy_price(side, entry_price: float, leverage: float) -> float:
    """``BP = EP * (1 - side/leverage)``: ``EP*(1 - IMR)`` long, ``EP*(1 + IMR)`` short (section 2.3).
    NaN at 1x for a long (no positive price)."""
    s = c.side_of(side)
    ep = c.positive(entry_price, "entry_price", VENUE)
    return c.price_or_nan(ep * (1.0 - s / c.positive(leverage, "leverage", VENUE)))


def cross_liquidation_price_classic(side, qty: float, entry_price: float, available_balance: float,
                                    initial_margin: float, maintenance_margin: float) -> float:
    """Classic-account cross margin (section 2.4): only the position's IM is locked, the
    available balance backs it, and it is liquidated when the balance is used up and the
    position margin reaches MM.  The loss it can sustain is ``available + IM - MM``, so::

        LP = EP - side * (available_balance + IM - MM) / Q
    """
    s = c.side_of(side)
    q = c.positive(qty, "qty", VENUE)
    loss = (c.non_negative(available_balance, "available_balance", VENUE)
            + c.non_negative(initial_margin, "initial_margin", VENUE)
            - c.non_negative(maintenance_margin, "maintenance_margin", VENUE))
    return c.price_or_nan(c.positive(entry_price, "entry_price", VENUE) - s * loss / q)
