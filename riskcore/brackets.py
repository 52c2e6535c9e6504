"""Maintenance-margin bracket tables (tiers): build, validate, look up.

A contract's brackets are rows ``(notional_floor, notional_cap, mmr, max_leverage, cum)``
(MARGIN_RULES.md section 2).  The maintenance margin of a position of notional ``N``
is ``N * mmr(b) - cum(b)`` where ``b`` is the tier whose band ``(floor, cap]`` holds
``N`` (the first tier also holds 0).  ``cum`` keeps the maintenance margin continuous
at tier edges: ``cum_1 = 0`` and ``cum_n = cum_(n-1) + floor_n * (mmr_n - mmr_(n-1))``.

A notional above the last cap is charged at the last tier's rate; no leverage
allows such a position (see :meth:`Brackets.max_notional`).
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ._paths import data_dir
from .errors import BracketError

COLUMNS = ("notional_floor", "notional_cap", "mmr", "max_leverage", "cum")
CUM_TOLERANCE = 1e-6  # relative (floored at 1.0 in absolute terms) when checking a given cum

# Binance's leverageBracket fields, and the older minNotional/maxNotional spellings.
_BINANCE_KEYS = {
    "notional_floor": ("notionalFloor", "minNotional"),
    "notional_cap": ("notionalCap", "maxNotional"),
    "mmr": ("maintMarginRatio", "maintenanceMarginRate"),
    "max_leverage": ("initialLeverage", "maxLeverage"),
    "cum": ("cum",),
}


def _fmt(x: float) -> str:
    return f"{x:,.10g}"


def _day(date) -> str:
    """A date as YYYY-MM-DD; ``BracketError`` naming it when it is not one."""
    try:
        day = pd.Timestamp(date)
    except (TypeError, ValueError):
        day = pd.NaT
    if pd.isna(day):
        raise BracketError(f"date {date!r} is not a date (use YYYY-MM-DD)")
    return day.date().isoformat()


class Brackets:
    """A validated, immutable maintenance-margin bracket table for one contract.

    Build it with :meth:`from_records`, :meth:`from_frame`, :meth:`from_binance`,
    :meth:`from_binance_file` or :meth:`load` (tables shipped in ``data/``).
    Arrays are float64 and read-only; ``cum`` is derived when not given and
    checked against the continuity rule when given.
    """

    __slots__ = ("notional_floor", "notional_cap", "mmr", "max_leverage", "cum",
                 "symbol", "effective_date", "source", "_caps", "_rates", "_cums", "_edge_mm")

    def __init__(self, notional_floor, notional_cap, mmr, max_leverage, cum=None, *,
                 symbol: str | None = None, effective_date: str | None = None,
                 source: str | None = None):
        where = f" for {symbol}" if symbol else ""
        arrays = {}
        for name, values in zip(COLUMNS[:4], (notional_floor, notional_cap, mmr, max_leverage)):
            try:
                arrays[name] = np.array(values, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise BracketError(f"brackets{where}: column {name!r} is not numeric: {exc}") from None
        n = arrays["notional_floor"].size
        if n == 0:
            raise BracketError(f"brackets{where}: the table has no tiers")
        for name, arr in arrays.items():
            if arr.size != n:
                raise BracketError(f"brackets{where}: column {name!r} has {arr.size} values, expected {n}")
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise BracketError(f"brackets{where}: tier {bad[0] + 1}: {name} is {float(arr[bad[0]])!r}, not a finite number")
        floor, cap, rate, lev = (arrays[c] for c in COLUMNS[:4])

        def tier(i: int) -> str:
            return f"brackets{where}: tier {i + 1} (notional {_fmt(floor[i])} to {_fmt(cap[i])})"

        if floor[0] != 0.0:
            raise BracketError(f"{tier(0)}: the first floor must be 0, not {_fmt(floor[0])}")
        for i in range(n):
            if not cap[i] > floor[i]:
                raise BracketError(f"{tier(i)}: cap must be above floor")
            if not 0.0 < rate[i] < 1.0:
                raise BracketError(f"{tier(i)}: mmr {float(rate[i])!r} must lie strictly between 0 and 1")
            if not lev[i] >= 1.0:
                raise BracketError(f"{tier(i)}: max leverage {float(lev[i])!r} must be at least 1")
            if not rate[i] < 1.0 / lev[i]:
                raise BracketError(
                    f"{tier(i)}: mmr {rate[i]:g} is not below 1/max_leverage = {1.0 / lev[i]:g}; "
                    "a position opened at the maximum leverage would be liquidated at once")
            if i:
                if floor[i] != cap[i - 1]:
                    raise BracketError(f"{tier(i)}: floor must equal the previous tier's cap {_fmt(cap[i - 1])} "
                                       "(floors ascending and contiguous)")
                if rate[i] < rate[i - 1]:
                    raise BracketError(f"{tier(i)}: mmr {rate[i]:g} is below the previous tier's "
                                       f"{rate[i - 1]:g} (rates must not decrease)")
                if lev[i] > lev[i - 1]:
                    raise BracketError(f"{tier(i)}: max leverage {lev[i]:g} is above the previous tier's "
                                       f"{lev[i - 1]:g} (max leverage must not increase)")
        derived = np.zeros(n)
        for i in range(1, n):
            derived[i] = derived[i - 1] + floor[i] * (rate[i] - rate[i - 1])
        if cum is None:
            cum_arr = derived
        else:
            try:
                cum_arr = np.array(cum, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise BracketError(f"brackets{where}: column 'cum' is not numeric: {exc}") from None
            if cum_arr.size != n:
                raise BracketError(f"brackets{where}: column 'cum' has {cum_arr.size} values, expected {n}")
            for i in range(n):
                if not abs(cum_arr[i] - derived[i]) <= CUM_TOLERANCE * max(1.0, abs(derived[i])):
                    raise BracketError(
                        f"{tier(i)}: cum {float(cum_arr[i])!r} breaks the continuity rule, which gives "
                        f"{float(derived[i])!r} "
                        "(cum_n = cum_(n-1) + floor_n * (mmr_n - mmr_(n-1)))")
        for name, arr in zip(COLUMNS, (floor, cap, rate, lev, cum_arr)):
            arr = np.ascontiguousarray(arr, dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        # Plain-float copies for scalar look-ups in the simulators' inner loops.
        object.__setattr__(self, "_caps", tuple(float(x) for x in cap))
        object.__setattr__(self, "_rates", tuple(float(x) for x in rate))
        object.__setattr__(self, "_cums", tuple(float(x) for x in cum_arr))
        object.__setattr__(self, "_edge_mm", tuple(float(x) for x in cap[:-1] * rate[:-1] - cum_arr[:-1]))
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "effective_date", None if effective_date is None else str(effective_date))
        object.__setattr__(self, "source", source)

    def __setattr__(self, name, value):
        raise AttributeError("Brackets is immutable; build a new table instead")

    def __delattr__(self, name):
        raise AttributeError("Brackets is immutable; build a new table instead")

    def __reduce__(self):
        return (_rebuild, (tuple(getattr(self, c) for c in COLUMNS),
                           (self.symbol, self.effective_date, self.source)))

    # ----------------------------------------------------------------- building
    @classmethod
    def from_records(cls, records: Iterable[Mapping], **meta) -> "Brackets":
        """From dicts with keys notional_floor, notional_cap, mmr, max_leverage and optional cum."""
        records = list(records)
        if not records:
            raise BracketError("brackets: no records given")
        cols = {c: [] for c in COLUMNS}
        has_cum = ["cum" in r and r["cum"] is not None for r in records]
        if any(has_cum) and not all(has_cum):
            missing = has_cum.index(False) + 1
            raise BracketError(f"brackets: tier {missing} has no cum while others do; give cum for all tiers or none")
        for i, rec in enumerate(records):
            for c in COLUMNS[:4]:
                if c not in rec:
                    raise BracketError(f"brackets: tier {i + 1} has no {c!r} (keys: {sorted(rec)})")
                cols[c].append(rec[c])
            if has_cum[0]:
                cols["cum"].append(rec["cum"])
        return cls(*(cols[c] for c in COLUMNS[:4]), cols["cum"] if has_cum[0] else None, **meta)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, **meta) -> "Brackets":
        """From a DataFrame with columns notional_floor, notional_cap, mmr, max_leverage [, cum]."""
        missing = [c for c in COLUMNS[:4] if c not in frame.columns]
        if missing:
            raise BracketError(f"brackets: the frame lacks column(s) {missing}")
        cum = frame["cum"].to_numpy() if "cum" in frame.columns else None
        return cls(*(frame[c].to_numpy() for c in COLUMNS[:4]), cum, **meta)

    @classmethod
    def from_binance(cls, data, symbol: str | None = None, **meta) -> "Brackets":
        """From Binance's ``/fapi/v1/leverageBracket`` shape.

        ``data`` is a list of bracket dicts (``notionalFloor``, ``notionalCap``,
        ``maintMarginRatio``, ``initialLeverage``, ``cum``; strings or numbers), a dict
        with a ``brackets`` list, or the endpoint's list of ``{"symbol", "brackets"}``
        (then ``symbol`` picks one).  CCXT leverage tiers (dicts with an ``info``
        holding those fields) are accepted too.
        """
        if isinstance(data, Mapping) and "brackets" in data:
            symbol = symbol or data.get("symbol")
            data = data["brackets"]
        elif isinstance(data, Mapping) and symbol is not None and symbol in data:  # CCXT: {symbol: tiers}
            data = data[symbol]
        if isinstance(data, list) and data and isinstance(data[0], Mapping) and "brackets" in data[0]:
            if symbol is None:
                raise BracketError("brackets: the data holds several symbols; name one with symbol=")
            found = [d for d in data if d.get("symbol") == symbol or d.get("ccxt_symbol") == symbol]
            if not found:
                raise BracketError(f"brackets: symbol {symbol!r} is not in the data")
            data = found[0]["brackets"]
        if not isinstance(data, list) or not data:
            raise BracketError("brackets: expected a non-empty list of Binance bracket dicts")
        records = []
        for i, raw in enumerate(data):
            if not isinstance(raw, Mapping):
                raise BracketError(f"brackets: tier {i + 1} is a {type(raw).__name__}, not a dict")
            raw = raw.get("info", raw)
            rec = {}
            for ours, theirs in _BINANCE_KEYS.items():
                for key in theirs:
                    if key in raw and raw[key] is not None:
                        rec[ours] = float(raw[key])
                        break
                else:
                    if ours != "cum":
                        raise BracketError(f"brackets{' for ' + symbol if symbol else ''}: tier {i + 1} has no "
                                           f"{theirs[0]!r} (keys: {sorted(raw)})")
            records.append(rec)
        if "bracket" in (data[0].get("info", data[0])):
            order = np.argsort([float(d.get("info", d)["bracket"]) for d in data], kind="stable")
            records = [records[i] for i in order]
        return cls.from_records(records, symbol=symbol, **meta)

    @classmethod
    def from_binance_file(cls, path, symbol: str, date=None) -> "Brackets":
        """From a Binance-shaped JSON file (``.json`` or ``.json.gz``), or a JSON-lines history
        with ``commit_date``/``effective_date`` per line (then the newest entry on or before
        ``date`` is taken; the newest of all when ``date`` is None)."""
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
        stem = path.name.removesuffix(".gz")
        if stem.endswith(".jsonl"):
            best = None
            cutoff = None if date is None else _day(date)
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BracketError(f"{path}: line {n} is not JSON: {exc}") from None
                if entry.get("symbol") != symbol:
                    continue
                # The calendar day as written (commit dates carry the committer's offset).
                day = str(entry.get("effective_date") or entry.get("commit_date"))[:10]
                if cutoff is not None and day > cutoff:
                    continue
                if best is None or day >= best[0]:
                    best = (day, entry, n)
            if best is None:
                raise BracketError(f"{path}: no {symbol} table" + (f" on or before {date}" if date else ""))
            return cls.from_binance(best[1]["brackets"], symbol=symbol,
                                    effective_date=best[0],
                                    source=f"{path.name} line {best[2]}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BracketError(f"{path}: not JSON: {exc}") from None
        return cls.from_binance(data, symbol=symbol, source=path.name)

    @classmethod
    def shipped(cls) -> pd.DataFrame:
        """The bracket tables shipped in ``data/brackets/brackets.csv``, one row per tier."""
        path = data_dir() / "brackets" / "brackets.csv"
        return pd.read_csv(path, comment="#", dtype={"effective_date": str})

    @classmethod
    def load(cls, symbol: str, date=None, venue: str = "binance") -> "Brackets":
        """A shipped table: the newest one of ``symbol`` in effect on ``date`` (default: newest)."""
        table = cls.shipped()
        rows = table[(table["venue"] == venue) & (table["symbol"] == symbol)]
        if rows.empty:
            have = sorted(set(table.loc[table["venue"] == venue, "symbol"]))
            raise BracketError(f"no shipped {venue} bracket table for {symbol!r}; shipped: {have}")
        dates = sorted(set(rows["effective_date"]))
        if date is not None:
            cutoff = _day(date)
            dates = [d for d in dates if d <= cutoff]
            if not dates:
                raise BracketError(f"no shipped {venue} table for {symbol!r} in effect on {date}; "
                                   f"the oldest is from {min(rows['effective_date'])}")
        chosen = rows[rows["effective_date"] == dates[-1]].sort_values("tier")
        return cls.from_frame(chosen, symbol=symbol, effective_date=dates[-1],
                              source=str(chosen["source"].iloc[0]))

    # ------------------------------------------------------------------ views
    @property
    def n_tiers(self) -> int:
        return int(self.mmr.size)

    def to_frame(self) -> pd.DataFrame:
        """One row per tier (tier numbers from 1)."""
        frame = pd.DataFrame({c: getattr(self, c) for c in COLUMNS})
        frame.insert(0, "tier", np.arange(1, self.n_tiers + 1))
        return frame

    def to_records(self) -> list[dict]:
        return [dict(zip(COLUMNS, map(float, row)))
                for row in zip(*(getattr(self, c) for c in COLUMNS))]

    def __len__(self) -> int:
        return self.n_tiers

    def __eq__(self, other) -> bool:
        if not isinstance(other, Brackets):
            return NotImplemented
        return (all(np.array_equal(getattr(self, c), getattr(other, c)) for c in COLUMNS)
                and (self.symbol, self.effective_date) == (other.symbol, other.effective_date))

    def __hash__(self):
        return hash((self.symbol, self.effective_date, self.mmr.tobytes(), self.notional_cap.tobytes()))

    def __repr__(self) -> str:
        name = self.symbol or "contract"
        when = f" as of {self.effective_date}" if self.effective_date else ""
        return f"<Brackets {name}{when}: {self.n_tiers} tiers, mmr {self.mmr[0]:.4g}..{self.mmr[-1]:.4g}>"

    # ---------------------------------------------------------------- look-ups
    def tier_index(self, notional):
        """0-based tier whose band ``(floor, cap]`` holds each notional (tier 0 holds 0).

        Notionals above the last cap map to the last tier.  Negative notionals are refused.
        """
        n = np.asarray(notional, dtype=np.float64)
        if np.any(n < 0):
            raise ValueError(f"notional must be >= 0; got {n[n < 0].ravel()[:3].tolist()}")
        idx = np.searchsorted(self.notional_cap, n, side="left")
        idx = np.minimum(idx, self.n_tiers - 1)
        return idx if idx.ndim else int(idx)

    def mmr_cum(self, notional):
        """(mmr, cum) of the tier holding each notional."""
        idx = self.tier_index(notional)
        return self.mmr[idx], self.cum[idx]

    def maintenance_margin(self, notional):
        """``notional * mmr - cum`` at the tier holding the notional."""
        rate, cum = self.mmr_cum(notional)
        return np.asarray(notional, dtype=np.float64) * rate - cum

    def max_leverage_for(self, notional):
        """The max leverage of the tier holding each notional."""
        return self.max_leverage[self.tier_index(notional)]

    def max_notional(self, leverage):
        """The largest position notional allowed at ``leverage``: the cap of the last tier whose
        max leverage is at least ``leverage``; 0 when the leverage is above the first tier's."""
        lev = np.asarray(leverage, dtype=np.float64)
        # max_leverage is non-increasing: count tiers with max_leverage >= lev.
        ok = np.searchsorted(-self.max_leverage, -lev, side="right")
        caps = np.concatenate(([0.0], self.notional_cap))
        out = caps[ok]
        return out if out.ndim else float(out)

    def scaled(self, mmr_factor: float = 1.0, max_leverage_cap: float | None = None) -> "Brackets":
        """A stressed copy: every mmr times ``mmr_factor`` (cum scales with it) and max leverage
        capped.  Refused when a scaled rate reaches 1/max_leverage of its tier."""
        def real(v) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)

        if not (real(mmr_factor) and mmr_factor > 0):
            raise BracketError(f"mmr_factor must be a number above 0, not {mmr_factor!r}")
        if max_leverage_cap is not None and not (real(max_leverage_cap) and max_leverage_cap >= 1):
            raise BracketError(f"max_leverage_cap must be a number of at least 1, not {max_leverage_cap!r}")
        rate = self.mmr * float(mmr_factor)
        lev = self.max_leverage if max_leverage_cap is None else np.minimum(self.max_leverage, max_leverage_cap)
        # cum is linear in the rates, so it scales with them (and scaled(1.0) equals the table).
        bad = np.flatnonzero(rate >= 1.0 / lev)
        if bad.size:
            i = int(bad[0])
            raise BracketError(f"mmr_factor {mmr_factor:g} is too large for {self.symbol or 'this table'}: tier {i + 1} "
                               f"would have mmr {rate[i]:g} at max leverage {lev[i]:g}x, not below 1/max_leverage = {1.0 / lev[i]:g} "
                               f"(cap max leverage lower, or use a factor below "
                               f"{float(np.min(1.0 / (self.mmr * self.max_leverage))):.4g})")
        return Brackets(self.notional_floor, self.notional_cap, rate, lev, self.cum * float(mmr_factor),
                        symbol=self.symbol,
                        effective_date=self.effective_date,
                        source=f"{self.source or 'table'} x mmr {mmr_factor:g}"
                        + (f", leverage <= {max_leverage_cap:g}" if max_leverage_cap is not None else ""))


def _rebuild(arrays, meta):
    symbol, effective_date, source = meta
    return Brackets(*arrays, symbol=symbol, effective_date=effective_date, source=source)
