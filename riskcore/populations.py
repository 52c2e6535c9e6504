"""Synthetic account populations: many accounts with random, valid positions.

:func:`generate_population` draws a population from a :class:`PopulationSpec` and
returns it as a :class:`~riskcore.book.Book`; :func:`generate_population_frames`
returns the same population as the book's columnar tables (see
:mod:`riskcore.table`) without building the object model, for very large runs.
:func:`load_population` reads a population saved with :meth:`Book.write_parquet`
or written by hand as CSV files of the same tables.

How a population is drawn
-------------------------
For each account, independently:

1. its position mode: hedge with probability ``hedge_share``, else one-way;
2. its number of positions, uniform on ``positions_per_account`` (clipped to the
   number of distinct slots: one per contract in one-way mode, two -- the long and
   the short leg -- per contract in hedge mode);
3. which slots hold them, drawn without replacement with probability proportional to
   ``contract_weights`` (in hedge mode the long leg of a contract is weighted by
   ``long_share`` and the short leg by ``1 - long_share``);
4. the side of each one-way position: long with probability ``long_share``;
5. the margin mode of each contract it trades: isolated with probability
   ``isolated_share`` (one draw per account and contract: hedge legs share it);
6. the notional of each position: lognormal with median ``notional_median`` and log
   standard deviation ``notional_sigma``, clipped to ``[notional_min, notional_max]``
   and below the last bracket's cap; the quantity is ``notional / price``;
7. the leverage of each position: from ``leverage`` (or ``leverage_range``), lowered to
   the bracket's max leverage for the position's notional; legs that must share one
   leverage (one-way, and both legs of a cross hedge contract) take the lower one;
8. auto-add-margin for each isolated position with probability ``auto_add_share``;
9. the deposit: ``IM * (1 + headroom) + opening fees`` with ``IM`` the initial margin
   of its positions and ``headroom`` lognormal (median ``headroom_median``, log
   standard deviation ``headroom_sigma``), so the free balance after opening is
   ``headroom * IM``.

Every position is then opened at ``prices[contract]`` (which is also the mark) with
the taker fee (when ``charge_opening_fee``), exactly as the Book API would open it:
``generate_population(..., method="api")`` builds the same population through
:meth:`Book.add_account`, :meth:`Book.set_position_mode`, :meth:`Book.set_margin_mode`,
:meth:`Book.set_leverage`, :meth:`Book.set_auto_add_margin` and
:meth:`Book.market_order` and gives an identical book (slow: use it to check).

In hedge mode the slots are drawn without replacement, so an account that fills
most of its slots has a long share nearer one half than ``long_share``; one-way
positions are long with probability exactly ``long_share``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .book import BINANCE_MAKER_FEE, BINANCE_TAKER_FEE, DEFAULT_LEVERAGE, Book
from .brackets import Brackets
from .checks import check_price, rng as _rng
from .table import FORMAT_VERSION, SCHEMA, TABLES, BookFormatError, BookTable, contract_frames, empty_frames

__all__ = ["PopulationSpec", "generate_population", "generate_population_frames", "load_population"]

#: Default leverage distribution, ``(leverage, weight)`` pairs: mostly 5x-20x, a tail to 125x.
DEFAULT_LEVERAGE_MIX = ((1.0, 0.03), (2.0, 0.05), (3.0, 0.07), (5.0, 0.15), (10.0, 0.25), (20.0, 0.20),
                        (25.0, 0.07), (50.0, 0.10), (75.0, 0.04), (100.0, 0.03), (125.0, 0.01))


# ------------------------------------------------------------------ validation helpers
def _field_error(name: str, why: str, value) -> ValueError:
    return ValueError(f"PopulationSpec.{name}: {why} (got {value!r})")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _number(name: str, value, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, what: str | None = None) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise _field_error(name, "must be a finite number", value)
    v = float(value)
    if low is not None and (v <= low if low_open else v < low):
        raise _field_error(name, what or f"must be {'>' if low_open else '>='} {low:g}", value)
    if high is not None and v > high:
        raise _field_error(name, what or f"must be <= {high:g}", value)
    return v


def _share(name: str, value) -> float:
    return _number(name, value, low=0.0, high=1.0, what="must be a share between 0 and 1")


def _pairs(name: str, value, *, key_kind: str) -> tuple:
    """A mapping or a sequence of (key, weight) pairs as a tuple of pairs."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        if key_kind == "number" and all(_is_number(v) for v in items):
            items = [(v, 1.0) for v in items]
        if not all(isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 for p in items):
            raise _field_error(name, "must be a mapping or a sequence of (key, weight) pairs", value)
        items = [tuple(p) for p in items]
    else:
        raise _field_error(name, "must be a mapping or a sequence", value)
    if not items:
        raise _field_error(name, "must not be empty", value)
    out, seen = [], set()
    for key, weight in items:
        if key_kind == "number":
            if not _is_number(key) or not math.isfinite(float(key)) or float(key) < 1.0:
                raise _field_error(name, f"leverage {key!r} must be a finite number >= 1", value)
            key = float(key)
        elif not isinstance(key, str) or not key:
            raise _field_error(name, f"key {key!r} must be a non-empty contract symbol", value)
        if key in seen:
            raise _field_error(name, f"{key!r} is listed twice", value)
        seen.add(key)
        if not _is_number(weight) or not math.isfinite(float(weight)) or float(weight) < 0:
            raise _field_error(name, f"the weight of {key!r} must be a finite number >= 0", value)
        out.append((key, float(weight)))
    if not sum(w for _, w in out) > 0:
        raise _field_error(name, "the weights must not all be 0", value)
    return tuple(out)


# ------------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class PopulationSpec:
    """The distributions a synthetic population is drawn from.

    Validated on construction: a bad value raises ``ValueError`` naming the field.
    Mappings given to ``leverage``, ``contract_weights`` and ``notional_median`` are
    stored as tuples of ``(key, value)`` pairs (so the spec stays immutable).

    Parameters
    ----------
    positions_per_account : int or (int, int), default (1, 3)
        Number of positions per account, uniform on the inclusive range (an int fixes it).
        Clipped per account to the slots available (contracts in one-way mode, twice as
        many legs in hedge mode).  A lower bound of 0 allows accounts with no position
        (and, as the deposit is sized on initial margin, an empty wallet).
    contract_weights : mapping of str to float, optional
        Relative probability that a position is on each contract; contracts left out get
        weight 0.  Default: all contracts equally likely.
    leverage : mapping of float to float, or sequence, default :data:`DEFAULT_LEVERAGE_MIX`
        Leverage choices and their weights: ``{10: 0.5, 20: 0.5}``, ``[(10, 1), (20, 1)]``,
        or a plain sequence of leverages (equal weights).  Ignored when ``leverage_range``
        is set.
    leverage_range : (float, float), optional
        Draw leverage log-uniformly on ``[low, high]`` instead (rounded to whole numbers
        when ``leverage_integer``).
    leverage_integer : bool, default True
        Round leverage drawn from ``leverage_range`` to an integer (as exchanges do).
    notional_median : float or mapping of str to float, default 10,000
        Median position notional (quote currency), for all contracts or per contract.
    notional_sigma : float, default 1.5
        Log standard deviation of the notional (0 gives every position the median).
    notional_min : float, default 5.0
        Smallest notional (Binance's minimum order value is 5 USDT on most contracts).
    notional_max : float, optional
        Largest notional.  Notionals are always kept below the contract's last bracket cap.
    long_share : float, default 0.55
        Probability that a position is long.
    hedge_share : float, default 0.2
        Share of accounts in hedge mode.
    isolated_share : float, default 0.3
        Share of (account, contract) pairs in isolated margin.
    auto_add_share : float, default 0.1
        Share of isolated positions (legs) with auto-add-margin on.
    headroom_median : float, default 1.0
        Median free balance after opening, as a multiple of the account's initial margin
        (1.0: the deposit is twice the initial margin plus fees; 0: no free balance).
    headroom_sigma : float, default 1.0
        Log standard deviation of the headroom.
    maker_fee, taker_fee : float, default 0.0002, 0.0005
        Fee rates of every contract (Binance's defaults).
    charge_opening_fee : bool, default True
        Charge the taker fee on the opening fills (the deposit includes it, so the free
        balance is the same either way); ``False`` opens fee-free.
    default_leverage : float, default 20
        The book's default leverage (for contracts an account has never set).
    """
    positions_per_account: int | tuple[int, int] = (1, 3)
    contract_weights: Mapping[str, float] | tuple | None = None
    leverage: Mapping[float, float] | tuple = DEFAULT_LEVERAGE_MIX
    leverage_range: tuple[float, float] | None = None
    leverage_integer: bool = True
    notional_median: float | Mapping[str, float] | tuple = 10_000.0
    notional_sigma: float = 1.5
    notional_min: float = 5.0
    notional_max: float | None = None
    long_share: float = 0.55
    hedge_share: float = 0.2
    isolated_share: float = 0.3
    auto_add_share: float = 0.1
    headroom_median: float = 1.0
    headroom_sigma: float = 1.0
    maker_fee: float = BINANCE_MAKER_FEE
    taker_fee: float = BINANCE_TAKER_FEE
    charge_opening_fee: bool = True
    default_leverage: float = DEFAULT_LEVERAGE

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        ppa = self.positions_per_account
        if _is_number(ppa) and float(ppa).is_integer():
            ppa = (int(ppa), int(ppa))
        if not (isinstance(ppa, Sequence) and not isinstance(ppa, str) and len(ppa) == 2
                and all(_is_number(v) and float(v).is_integer() for v in ppa)):
            raise _field_error("positions_per_account", "must be an int or a (low, high) pair of ints", ppa)
        lo, hi = int(ppa[0]), int(ppa[1])
        if lo < 0 or hi < max(lo, 1):
            raise _field_error("positions_per_account", "needs 0 <= low <= high and high >= 1", ppa)
        put("positions_per_account", (lo, hi))

        if self.contract_weights is not None:
            put("contract_weights", _pairs("contract_weights", self.contract_weights, key_kind="symbol"))
        put("leverage", tuple(sorted(_pairs("leverage", self.leverage, key_kind="number"))))
        if self.leverage_range is not None:
            rng = self.leverage_range
            if not (isinstance(rng, Sequence) and not isinstance(rng, str) and len(rng) == 2
                    and all(_is_number(v) and math.isfinite(float(v)) for v in rng)):
                raise _field_error("leverage_range", "must be a (low, high) pair of numbers", rng)
            low, high = float(rng[0]), float(rng[1])
            if not 1.0 <= low <= high:
                raise _field_error("leverage_range", "needs 1 <= low <= high", rng)
            if self.leverage_integer and math.floor(high) < math.ceil(low):
                raise _field_error("leverage_range", "holds no whole number (set leverage_integer=False)", rng)
            put("leverage_range", (low, high))
        for name in ("leverage_integer", "charge_opening_fee"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise _field_error(name, "must be True or False", getattr(self, name))
            put(name, bool(getattr(self, name)))

        med = self.notional_median
        if isinstance(med, (Mapping, Sequence)) and not isinstance(med, str):
            pairs = _pairs("notional_median", med, key_kind="symbol")
            for key, value in pairs:
                if value <= 0:
                    raise _field_error("notional_median", f"the median of {key!r} must be > 0", med)
            put("notional_median", pairs)
        else:
            put("notional_median", _number("notional_median", med, low=0.0, low_open=True))
        put("notional_sigma", _number("notional_sigma", self.notional_sigma, low=0.0))
        put("notional_min", _number("notional_min", self.notional_min, low=0.0, low_open=True))
        if self.notional_max is not None:
            put("notional_max", _number("notional_max", self.notional_max, low=self.notional_min,
                                        what=f"must be >= notional_min ({self.notional_min:g})"))
        for name in ("long_share", "hedge_share", "isolated_share", "auto_add_share"):
            put(name, _share(name, getattr(self, name)))
        put("headroom_median", _number("headroom_median", self.headroom_median, low=0.0))
        put("headroom_sigma", _number("headroom_sigma", self.headroom_sigma, low=0.0))
        for name in ("maker_fee", "taker_fee"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(float(value)) and -0.01 < float(value) < 0.1):
                raise _field_error(name, "is not a plausible fee rate (a fraction, e.g. 0.0005)", value)
            put(name, float(value))
        put("default_leverage", _number("default_leverage", self.default_leverage, low=1.0))

    @classmethod
    def from_dict(cls, values: Mapping) -> "PopulationSpec":
        """Build a spec from a dict of field values; unknown keys raise ``ValueError``."""
        if isinstance(values, PopulationSpec):
            return values
        if not isinstance(values, Mapping):
            raise TypeError(f"spec must be a PopulationSpec or a dict, not {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"PopulationSpec has no field(s) {unknown}; fields: {sorted(known)}")
        return cls(**values)


# ------------------------------------------------------------------------ drawing
def _check_inputs(n_accounts, contracts, prices, spec: PopulationSpec):
    if isinstance(n_accounts, (bool, np.bool_)) or not isinstance(n_accounts, (int, np.integer)) or n_accounts < 0:
        raise ValueError(f"n_accounts must be an int >= 0, not {n_accounts!r}")
    if not isinstance(contracts, Mapping) or not contracts:
        raise ValueError("contracts must be a non-empty {symbol: Brackets} mapping")
    symbols = list(contracts)
    for symbol, brackets in contracts.items():
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"contract symbol must be a non-empty string, not {symbol!r}")
        if not isinstance(brackets, Brackets):
            raise TypeError(f"contracts[{symbol!r}] must be a riskcore.Brackets, not {type(brackets).__name__}")
    if not isinstance(prices, Mapping):
        raise ValueError("prices must be a {symbol: price} mapping")
    price = np.empty(len(symbols))
    for i, symbol in enumerate(symbols):
        if symbol not in prices:
            raise ValueError(f"prices has no price for contract {symbol!r}")
        p = prices[symbol]
        check_price(p, f"prices[{symbol!r}]")
        price[i] = float(p)
    extra = sorted(set(prices) - set(symbols))
    if extra:
        raise ValueError(f"prices names contract(s) {extra} that are not in contracts")

    if spec.contract_weights is None:
        weight = np.ones(len(symbols))
    else:
        given = dict(spec.contract_weights)
        unknown = sorted(set(given) - set(symbols))
        if unknown:
            raise ValueError(f"PopulationSpec.contract_weights: contract(s) {unknown} are not in contracts "
                             f"{symbols}")
        weight = np.array([given.get(s, 0.0) for s in symbols])
        if not weight.sum() > 0:
            raise ValueError("PopulationSpec.contract_weights: no contract of this population has a positive weight")
    if isinstance(spec.notional_median, tuple):
        given = dict(spec.notional_median)
        unknown = sorted(set(given) - set(symbols))
        missing = [s for s, w in zip(symbols, weight) if w > 0 and s not in given]
        if unknown or missing:
            raise ValueError(f"PopulationSpec.notional_median: "
                             + (f"contract(s) {unknown} are not in contracts; " if unknown else "")
                             + (f"no median for contract(s) {missing}" if missing else ""))
        median = np.array([given.get(s, 1.0) for s in symbols])
    else:
        median = np.full(len(symbols), spec.notional_median)
    return symbols, price, weight / weight.sum(), median


def _draw(n: int, contracts: Mapping, price: np.ndarray, weight: np.ndarray, median: np.ndarray,
          spec: PopulationSpec, seed) -> dict:
    """Draw the population as flat arrays (positions in account order, then contract, then leg)."""
    rng = _rng(seed)
    n_c = len(price)
    kmax = spec.positions_per_account[1]

    # Every random draw happens here, in a fixed order and with fixed shapes.
    hedge = rng.random(n) < spec.hedge_share
    count = rng.integers(spec.positions_per_account[0], kmax + 1, size=n)
    slot_keys = rng.exponential(size=(n, 2 * n_c))
    long_draw = rng.random((n, kmax)) < spec.long_share
    iso_draw = rng.random((n, n_c)) < spec.isolated_share
    z_notional = rng.standard_normal((n, kmax))
    lev_u = rng.random((n, kmax))
    auto_draw = rng.random((n, kmax)) < spec.auto_add_share
    z_headroom = rng.standard_normal(n)

    # Slots: one-way rows use columns 0..n_c-1 (one per contract); hedge rows use all
    # 2*n_c columns, column 2c the long leg of contract c and 2c+1 its short leg.
    one_way_w = np.concatenate([weight, np.zeros(n_c)])
    hedge_w = np.empty(2 * n_c)
    hedge_w[0::2] = weight * spec.long_share
    hedge_w[1::2] = weight * (1.0 - spec.long_share)
    w = np.where(hedge[:, None], hedge_w[None, :], one_way_w[None, :])
    keys = np.full(w.shape, np.inf)
    np.divide(slot_keys, w, out=keys, where=w > 0)  # exponential race: smallest keys win
    count = np.minimum(count, (w > 0).sum(axis=1))
    k = min(kmax, 2 * n_c)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :k]
    valid = np.arange(k)[None, :] < count[:, None]
    chosen = np.sort(np.where(valid, chosen, 2 * n_c), axis=1)  # tidy order, unused slots last
    valid = chosen < 2 * n_c

    acct_m = np.broadcast_to(np.arange(n)[:, None], chosen.shape)
    hedge_m = np.broadcast_to(hedge[:, None], chosen.shape)
    acct, slot, is_hedge = acct_m[valid], chosen[valid], hedge_m[valid]
    contract = np.where(is_hedge, slot // 2, slot)
    leg = np.where(is_hedge, 1 + slot % 2, 0).astype(np.int64)
    side = np.where(is_hedge, np.where(slot % 2 == 0, 1, -1), np.where(long_draw[:, :k][valid], 1, -1))
    isolated = iso_draw[acct, contract]

    # Notional and quantity.
    notional = median[contract] * np.exp(spec.notional_sigma * z_notional[:, :k][valid])
    cap = np.array([float(contracts[s].notional_cap[-1]) for s in contracts]) * (1.0 - 1e-9)
    upper = cap[contract] if spec.notional_max is None else np.minimum(cap[contract], spec.notional_max)
    notional = np.minimum(np.maximum(notional, spec.notional_min), upper)
    px = price[contract]
    qty = notional / px
    notional = qty * px  # the notional the book will see

    # Leverage, lowered to what the bracket allows for the notional.
    u = lev_u[:, :k][valid]
    if spec.leverage_range is not None:
        low, high = spec.leverage_range
        lev = np.exp(np.log(low) + u * (np.log(high) - np.log(low)))
        if spec.leverage_integer:
            lev = np.clip(np.round(lev), math.ceil(low), math.floor(high))
    else:
        choices = np.array([v for v, _ in spec.leverage])
        cdf = np.cumsum([wt for _, wt in spec.leverage])
        cdf /= cdf[-1]
        lev = choices[np.minimum(np.searchsorted(cdf, u, side="right"), choices.size - 1)]
    allowed = np.empty_like(lev)
    for c, symbol in enumerate(contracts):
        here = contract == c
        allowed[here] = contracts[symbol].max_leverage_for(notional[here])
    lev = np.minimum(lev, allowed)

    # Settings, one row per (account, contract) with a position.
    gkey = acct * n_c + contract
    first = np.ones(acct.size, dtype=bool)
    first[1:] = gkey[1:] != gkey[:-1]
    gid = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    g_min = np.minimum.reduceat(lev, starts) if starts.size else np.empty(0)
    g_acct, g_contract = acct[starts], contract[starts]
    g_iso, g_hedge = isolated[starts], hedge[g_acct]
    lev_long, lev_short = g_min.copy(), g_min.copy()
    per_leg = isolated & is_hedge
    lev_long[gid[per_leg & (leg == 1)]] = lev[per_leg & (leg == 1)]
    lev_short[gid[per_leg & (leg == 2)]] = lev[per_leg & (leg == 2)]
    lev_pos = np.where(leg == 2, lev_short[gid], lev_long[gid])

    auto = auto_draw[:, :k][valid] & isolated
    auto_long = np.zeros(starts.size, dtype=bool)
    auto_short = np.zeros(starts.size, dtype=bool)
    one_way = leg == 0
    auto_long[gid[one_way]] = auto[one_way]
    auto_short[gid[one_way]] = auto[one_way]
    auto_long[gid[leg == 1]] = auto[leg == 1]
    auto_short[gid[leg == 2]] = auto[leg == 2]

    # Money, with the same float operations as Book.market_order (so both paths agree exactly).
    im = qty * px / lev_pos
    wallet_iso = np.where(isolated, im, 0.0)
    taker = spec.taker_fee if spec.charge_opening_fee else 0.0
    fee = taker * qty * px
    im_total = np.bincount(acct, weights=im, minlength=n)
    fee_total = np.bincount(acct, weights=fee, minlength=n)
    headroom = spec.headroom_median * np.exp(spec.headroom_sigma * z_headroom)
    deposit = im_total * (1.0 + headroom) + fee_total
    wallet = deposit.copy()
    ordinal = np.arange(acct.size) - _starts_of_account(acct, n)[acct]
    for j in range(k):  # one fill after the other, as the book applies them
        at = ordinal == j
        wallet[acct[at]] -= wallet_iso[at]
        wallet[acct[at]] -= fee[at]
    fees_collected = float(np.cumsum(fee)[-1]) if fee.size else 0.0

    return {
        "hedge": hedge, "deposit": deposit, "wallet": wallet, "fees_collected": fees_collected,
        "acct": acct, "contract": contract, "leg": leg, "side": side, "qty": qty, "price": px,
        "wallet_iso": wallet_iso, "lev": lev_pos,
        "g_acct": g_acct, "g_contract": g_contract, "g_iso": g_iso, "g_hedge": g_hedge,
        "lev_long": lev_long, "lev_short": lev_short, "auto_long": auto_long, "auto_short": auto_short,
    }


def _starts_of_account(acct: np.ndarray, n: int) -> np.ndarray:
    """Index of each account's first row in ``acct`` (sorted); for accounts with no row, where it would be."""
    return np.searchsorted(acct, np.arange(n), side="left")


def _object(values) -> np.ndarray:
    return np.asarray(values).astype(object)


def _frames_from_draw(d: dict, symbols: list, contracts: Mapping, price: np.ndarray,
                      spec: PopulationSpec, n: int) -> dict[str, pd.DataFrame]:
    contracts_frame, brackets_frame = contract_frames({s: contracts[s] for s in symbols},
                                                      dict(zip(symbols, map(float, price))),
                                                      maker_fee=spec.maker_fee, taker_fee=spec.taker_fee)
    meta = pd.DataFrame({"format_version": np.array([FORMAT_VERSION], np.int64),
                         "default_leverage": [float(spec.default_leverage)],
                         "fees_collected": [float(d["fees_collected"])], "next_order_id": np.array([1], np.int64)})

    def cat(codes, categories):
        return pd.Categorical.from_codes(np.asarray(codes).astype(np.int8), categories=list(categories))

    accounts = pd.DataFrame({"account": np.arange(n, dtype=np.int64), "wallet": d["wallet"],
                             "position_mode": cat(d["hedge"].astype(np.int8), ("one-way", "hedge"))})
    settings = pd.DataFrame({
        "account": np.asarray(d["g_acct"], np.int64), "contract": cat(d["g_contract"], symbols),
        "margin_mode": cat(np.asarray(d["g_iso"]).astype(np.int8), ("cross", "isolated")),
        "leverage_long": d["lev_long"], "leverage_short": d["lev_short"],
        "auto_add_long": np.asarray(d["auto_long"], bool), "auto_add_short": np.asarray(d["auto_short"], bool)})
    nan = np.full(d["acct"].size, np.nan)
    positions = pd.DataFrame({
        "account": np.asarray(d["acct"], np.int64), "contract": cat(d["contract"], symbols),
        "leg": cat(d["leg"], ("both", "long", "short")), "side": np.asarray(d["side"], np.int8), "qty": d["qty"],
        "entry_price": d["price"], "wallet_iso": d["wallet_iso"], "take_profit": nan, "stop_loss": nan})
    return {"meta": meta, "contracts": contracts_frame, "brackets": brackets_frame, "accounts": accounts,
            "settings": settings, "positions": positions, "orders": empty_frames(symbols)["orders"]}


def _book_by_api(d: dict, symbols: list, contracts: Mapping, price: np.ndarray,
                 spec: PopulationSpec, n: int) -> Book:
    """Open the drawn population through the Book API, account by account."""
    book = Book(default_leverage=spec.default_leverage)
    fee_free = not spec.charge_opening_fee
    for symbol, p in zip(symbols, price):
        book.add_contract(symbol, contracts[symbol], maker_fee=0.0 if fee_free else spec.maker_fee,
                          taker_fee=0.0 if fee_free else spec.taker_fee, mark_price=float(p))
    pos_start = _starts_of_account(d["acct"], n)
    set_start = _starts_of_account(d["g_acct"], n)
    pos_end = np.append(pos_start[1:], d["acct"].size)
    set_end = np.append(set_start[1:], d["g_acct"].size)
    for a in range(n):
        book.add_account(a, wallet=float(d["deposit"][a]),
                         position_mode="hedge" if d["hedge"][a] else "one-way")
        for g in range(set_start[a], set_end[a]):
            symbol = symbols[d["g_contract"][g]]
            if d["g_iso"][g]:
                book.set_margin_mode(a, symbol, "isolated")
            if d["g_hedge"][g] and d["g_iso"][g]:
                book.set_leverage(a, symbol, float(d["lev_long"][g]), leg="long")
                book.set_leverage(a, symbol, float(d["lev_short"][g]), leg="short")
                for leg, on in (("long", d["auto_long"][g]), ("short", d["auto_short"][g])):
                    if on:
                        book.set_auto_add_margin(a, symbol, True, leg=leg)
            else:
                book.set_leverage(a, symbol, float(d["lev_long"][g]))
                if d["auto_long"][g]:
                    book.set_auto_add_margin(a, symbol, True)
        for i in range(pos_start[a], pos_end[a]):
            leg = (None, "long", "short")[d["leg"][i]]
            book.market_order(a, symbols[d["contract"][i]], "buy" if d["side"][i] > 0 else "sell",
                              float(d["qty"][i]), price=float(d["price"][i]), leg=leg)
    if fee_free:
        for symbol in symbols:
            book.contracts[symbol].maker_fee = spec.maker_fee
            book.contracts[symbol].taker_fee = spec.taker_fee
    return book


def _prepare(n_accounts, contracts, prices, spec, seed):
    spec = PopulationSpec() if spec is None else PopulationSpec.from_dict(spec)
    symbols, price, weight, median = _check_inputs(n_accounts, contracts, prices, spec)
    n = int(n_accounts)
    contracts = {s: contracts[s] for s in symbols}
    try:
        drawn = _draw(n, contracts, price, weight, median, spec, seed)
    except MemoryError:
        raise MemoryError(f"n_accounts = {n:,}: that many accounts do not fit in memory") from None
    return spec, symbols, contracts, price, drawn, n


def generate_population_frames(n_accounts: int, contracts: Mapping[str, Brackets], prices: Mapping[str, float],
                               *, seed, spec: PopulationSpec | Mapping | None = None) -> dict[str, pd.DataFrame]:
    """Draw a population and return it as the book's columnar tables.

    The tables are exactly what :meth:`Book.to_frames` would give for the population
    (see :mod:`riskcore.table`); they are built directly with numpy, without the
    object model, so this is the path for very large populations.  Pass them to
    :meth:`Book.from_frames` to validate them and get a book.

    Parameters
    ----------
    n_accounts : int
        Number of accounts; their ids are the ints ``0 .. n_accounts - 1``.
    contracts : mapping of str to Brackets
        The contracts and their bracket tables.
    prices : mapping of str to float
        Price of each contract: every position is opened at it, and it is the mark.
    seed : int, numpy SeedSequence or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same tables.
    spec : PopulationSpec or dict, optional
        The distributions (a dict is passed to :meth:`PopulationSpec.from_dict`);
        default ``PopulationSpec()``.

    Returns
    -------
    dict of str to pandas.DataFrame
        Tables ``meta, contracts, brackets, accounts, settings, positions, orders``
        (no resting orders).

    Raises
    ------
    ValueError
        For a bad spec (naming the field) or inputs that do not fit together.
    """
    spec, symbols, contracts, price, drawn, n = _prepare(n_accounts, contracts, prices, spec, seed)
    return _frames_from_draw(drawn, symbols, contracts, price, spec, n)


def generate_population_table(n_accounts: int, contracts: Mapping[str, Brackets], prices: Mapping[str, float],
                              *, seed, spec: PopulationSpec | Mapping | None = None) -> BookTable:
    """Draw a population straight into the columnar book (validated): the fast path.

    The same population as :func:`generate_population` (same arguments, same seed, same
    accounts), without building the object model: a million accounts take seconds.
    """
    return BookTable.from_frames(generate_population_frames(n_accounts, contracts, prices, seed=seed, spec=spec))


def generate_population(n_accounts: int, contracts: Mapping[str, Brackets], prices: Mapping[str, float],
                        *, seed, spec: PopulationSpec | Mapping | None = None, method: str = "frames") -> Book:
    """Draw a population of accounts with open positions and return it as a book.

    See the module docstring for how each account is drawn.  Every position is valid:
    its leverage is within the contract's brackets for its notional, cross hedge legs
    share one leverage, and each account's deposit covers the initial margin and fees.

    Parameters
    ----------
    n_accounts : int
        Number of accounts; their ids are the ints ``0 .. n_accounts - 1``.
    contracts : mapping of str to Brackets
        The contracts and their bracket tables.
    prices : mapping of str to float
        Price of each contract: every position is opened at it, and it is the mark.
    seed : int, numpy SeedSequence or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives an identical book.
    spec : PopulationSpec or dict, optional
        The distributions; default ``PopulationSpec()``.
    method : {"frames", "api"}, default "frames"
        ``"frames"`` builds the columnar tables with numpy and validates them with
        :meth:`Book.from_frames` (about 100k accounts in seconds); ``"api"`` opens every
        account through the Book API (a few thousand accounts per second), giving an
        identical book.

    Returns
    -------
    Book

    Examples
    --------
    >>> from riskcore import Brackets
    >>> from riskcore.populations import generate_population
    >>> book = generate_population(1_000, {"BTCUSDT": Brackets.load("BTCUSDT")}, {"BTCUSDT": 60_000.0},
    ...                            seed=1, spec={"isolated_share": 0.5})
    >>> len(book.accounts)
    1000
    """
    if method not in ("frames", "api"):
        raise ValueError(f"method must be 'frames' or 'api', not {method!r}")
    spec, symbols, contracts, price, drawn, n = _prepare(n_accounts, contracts, prices, spec, seed)
    if method == "api":
        return _book_by_api(drawn, symbols, contracts, price, spec, n)
    return Book.from_table(_frames_from_draw(drawn, symbols, contracts, price, spec, n))


# ------------------------------------------------------------------------- loading
_ID_COLUMNS = ("account", "contract", "order_id")
_BOOL_COLUMNS = ("auto_add_long", "auto_add_short", "reduce_only")
_TEXT_COLUMNS = ("position_mode", "margin_mode", "leg", "effective_date", "source")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_INT = re.compile(r"-?(0|[1-9][0-9]*)")


def _read_csv_table(path: Path) -> pd.DataFrame:
    as_text = {c: str for c in _ID_COLUMNS + _BOOL_COLUMNS + _TEXT_COLUMNS}
    frame = pd.read_csv(path, dtype=as_text, comment=None)
    for col in ("account", "order_id"):
        if col in frame.columns:
            values = frame[col]
            if len(values) and values.map(lambda v: isinstance(v, str) and _INT.fullmatch(v) is not None).all():
                frame[col] = values.map(int).astype(object)
    for col in _BOOL_COLUMNS:
        if col in frame.columns:
            def flag(v):
                if isinstance(v, str) and v.strip().lower() in _TRUE:
                    return True
                if isinstance(v, str) and v.strip().lower() in _FALSE:
                    return False
                return v  # left for the table's validation to report
            mapped = frame[col].map(flag)
            frame[col] = mapped.astype(bool) if mapped.map(lambda v: isinstance(v, bool)).all() else mapped
    return frame


def _csv_path(folder: Path, table: str) -> Path | None:
    for name in (f"{table}.csv", f"{table}.csv.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_population(path, *, contracts: Mapping[str, Brackets] | None = None) -> Book:
    """:func:`load_population_table` as a :class:`~riskcore.book.Book`."""
    return Book.from_table(load_population_table(path, contracts=contracts))


def load_population_table(path, *, contracts: Mapping[str, Brackets] | None = None) -> BookTable:
    """Read a population (a book) from a folder of Parquet or CSV tables.

    A folder holding ``*.parquet`` files is read as written by :meth:`BookTable.write_parquet`
    (or :meth:`Book.write_parquet`).  Otherwise the folder holds CSV files named after the
    tables of :mod:`riskcore.table` (``accounts.csv``, ``settings.csv``, ``positions.csv``,
    ``contracts.csv``, ``brackets.csv``, ``orders.csv``, ``meta.csv``; ``.csv.gz`` also
    works), with the same columns.  In a CSV folder:

    * ``orders.csv`` may be left out (no resting orders) and so may ``meta.csv``
      (format 1, default leverage 20, no fees collected, next order id after the last);
    * ``contracts.csv`` and ``brackets.csv`` may be left out when ``contracts`` gives
      the bracket tables (fees then Binance's defaults, marks unknown);
    * account ids written as whole numbers become ints, others stay strings; booleans
      may be written true/false or 1/0.

    ``contracts`` given for a folder that has its own contracts (Parquet, or CSV with
    ``contracts.csv``) replaces their bracket tables (a scenario's market: its brackets,
    scaled or capped by a variant); every contract of the folder must be named in it.

    Every table is validated (:meth:`BookTable.from_frames`).

    Raises
    ------
    FileNotFoundError
        When the folder does not exist.
    riskcore.table.BookFormatError
        When a table is missing or malformed (the message names table, row and column).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no population folder at {folder}")
    frames: dict[str, pd.DataFrame] = {}
    if any(folder.glob("*.parquet")):
        frames = BookTable.read_parquet(folder).frames()
    else:
        for table in TABLES:
            p = _csv_path(folder, table)
            if p is not None:
                frames[table] = _read_csv_table(p)
        for table in ("accounts", "settings", "positions"):
            if table not in frames:
                raise BookFormatError(f"{folder}: missing {table}.csv")
    if contracts is not None:
        if "contracts" in frames:
            own = [str(s) for s in frames["contracts"]["contract"]]
            unknown = [s for s in own if s not in contracts]
            if unknown:
                raise BookFormatError(f"{folder}: contract(s) {unknown} of the population are not in the "
                                      f"scenario's market (it has {sorted(contracts)})")
            _, frames["brackets"] = contract_frames({s: contracts[s] for s in own})
        else:
            frames["contracts"], frames["brackets"] = contract_frames(dict(contracts), maker_fee=BINANCE_MAKER_FEE,
                                                                      taker_fee=BINANCE_TAKER_FEE)
    for table in ("contracts", "brackets"):
        if table not in frames:
            raise BookFormatError(f"{folder}: missing {table}.csv (or pass contracts=)")
    if "orders" not in frames:
        frames["orders"] = empty_frames()["orders"]
    if "meta" not in frames:
        ids = [int(v) for v in frames["orders"]["order_id"] if _is_number(v)] if "order_id" in frames["orders"] else []
        frames["meta"] = pd.DataFrame({"format_version": [FORMAT_VERSION], "default_leverage": [DEFAULT_LEVERAGE],
                                       "fees_collected": [0.0], "next_order_id": [max(ids, default=0) + 1]})
    return BookTable.from_frames(frames)
