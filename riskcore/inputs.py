"""Simulation inputs: mark-price paths, funding rates and the tape of scheduled actions.

Every input is validated before a run starts; errors name the contract (or tape
row) and the column at fault.  Timestamps may be datetimes or integers, which are
read as epoch milliseconds (Binance's convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import LIMIT
from .errors import RiskcoreError

OHLC = ("open", "high", "low", "close")
INTRABAR_MODELS = ("close", "ohlc", "worst")


class InputError(RiskcoreError, ValueError):
    """A simulation input is malformed; the message says which and where."""


def _timestamps(values, where: str) -> np.ndarray:
    series = pd.Series(values)
    try:
        if series.dtype.kind in "iu":
            stamps = pd.to_datetime(series, unit="ms", utc=True)
        elif series.dtype.kind == "f":
            if series.isna().any():
                raise InputError(f"{where}: timestamp has missing values (row {int(series.isna().idxmax())})")
            stamps = pd.to_datetime(series.astype("int64"), unit="ms", utc=True)
        else:
            stamps = pd.to_datetime(series, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: column 'timestamp' is not a time: {exc}") from None
    if stamps.isna().any():
        raise InputError(f"{where}: timestamp has missing values (row {int(stamps.isna().to_numpy().argmax())})")
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _prices(column: pd.Series, where: str, name: str) -> np.ndarray:
    """A price column as float64 (missing values as NaN); text or flags that are not numbers
    raise, naming the row."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    raw = column.to_numpy(object)
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), bool, raw.size) \
        | (np.isnan(values) & ~pd.isna(column).to_numpy())
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(f"{where}: row {row}, column {name!r}: {raw[row]!r} is not a number")
    return values


@dataclass(frozen=True, eq=False)
class PricePaths:
    """Mark-price bars of several contracts on one timeline.

    ``ohlc[t, c, :]`` holds open, high, low, close of contract ``contracts[c]`` in bar ``t``
    (float64); ``timestamps[t]`` is the bar's open time (datetime64[ns], UTC).
    """
    contracts: tuple
    timestamps: np.ndarray
    ohlc: np.ndarray

    @property
    def n_steps(self) -> int:
        return int(self.timestamps.size)

    @property
    def n_contracts(self) -> int:
        return len(self.contracts)

    def head(self, n_steps: int) -> "PricePaths":
        """The first ``n_steps`` bars."""
        return PricePaths(self.contracts, self.timestamps[:n_steps], self.ohlc[:n_steps])

    def to_frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for c, symbol in enumerate(self.contracts):
            frame = pd.DataFrame(self.ohlc[:, c, :], columns=list(OHLC))
            frame.insert(0, "timestamp", self.timestamps)
            out[symbol] = frame
        return out

    @classmethod
    def from_frames(cls, paths) -> "PricePaths":
        """From ``{contract: DataFrame}`` (columns timestamp, open, high, low, close) or one
        long DataFrame with a ``contract`` column as well."""
        if isinstance(paths, PricePaths):
            return paths
        if isinstance(paths, pd.DataFrame):
            if "contract" not in paths.columns:
                raise InputError("a single price frame needs a 'contract' column (or pass {contract: frame})")
            paths = {str(k): g.drop(columns="contract").reset_index(drop=True)
                     for k, g in paths.groupby("contract", sort=False)}
        if not isinstance(paths, dict) or not paths:
            raise InputError("paths must be a non-empty {contract: DataFrame} mapping")
        contracts = tuple(paths)
        stamps = None
        blocks = []
        for symbol in contracts:
            frame = paths[symbol]
            where = f"path of {symbol}"
            if not isinstance(frame, pd.DataFrame):
                raise InputError(f"{where}: expected a DataFrame, got {type(frame).__name__}")
            missing = [c for c in ("timestamp",) + OHLC if c not in frame.columns]
            if missing:
                raise InputError(f"{where}: missing column(s) {missing}")
            if len(frame) == 0:
                raise InputError(f"{where}: no bars")
            ts = _timestamps(frame["timestamp"].to_numpy(), where)
            step = np.diff(ts.astype("int64"))
            if np.any(step <= 0):
                row = int(np.argmax(step <= 0)) + 1
                what = "duplicate" if step[row - 1] == 0 else "out of order"
                raise InputError(f"{where}: row {row}: timestamp {pd.Timestamp(ts[row])} is {what}")
            values = np.stack([_prices(frame[col], where, col) for col in OHLC], axis=1)
            bad = ~(np.isfinite(values) & (values > 0) & (values <= LIMIT))
            if bad.any():
                row, col = map(int, np.argwhere(bad)[0])
                price = float(values[row, col])
                why = "is not a positive finite number" if not price > LIMIT else \
                    f"is above {LIMIT:g}, outside the range riskcore computes exactly"
                raise InputError(f"{where}: row {row}, column {OHLC[col]!r}: price {price!r} {why}")
            o, h, l, c = values.T
            for name, value, bound, broken in (("high", h, np.maximum(o, c), h < np.maximum(o, c)),
                                               ("low", l, np.minimum(o, c), l > np.minimum(o, c))):
                if broken.any():
                    row = int(np.argmax(broken))
                    limit = "below max(open, close)" if name == "high" else "above min(open, close)"
                    raise InputError(f"{where}: row {row}, column {name!r}: {name} {float(value[row])!r} is {limit} "
                                     f"= {float(bound[row])!r}")
            if stamps is None:
                stamps = ts
            elif ts.size != stamps.size or np.any(ts != stamps):
                n = min(ts.size, stamps.size)
                diff = np.flatnonzero(ts[:n] != stamps[:n])
                row = int(diff[0]) if diff.size else n
                raise InputError(f"{where}: its timeline differs from {contracts[0]}'s at row {row} "
                                 f"({ts.size} vs {stamps.size} bars); all contracts must share one timeline")
            blocks.append(values)
        return cls(contracts, stamps, np.ascontiguousarray(np.stack(blocks, axis=1)))


def bar_points(ohlc_bar: np.ndarray, model: str) -> list[np.ndarray]:
    """The mark prices seen inside one bar, as a list of ``[n_contracts, 2]`` arrays.

    Column 0 is the price a long position (and a buy order) sees, column 1 the price a
    short (and a sell order) sees; they differ only at the adverse point of ``worst``.

    * ``close``: the close.
    * ``ohlc``: open, then low and high (a bar that closed at or above its open) or high
      and low (one that closed below), then close.
    * ``worst``: open, then each side at its adverse extreme (longs at the low, shorts at
      the high), then close.
    """
    o, h, l, c = (ohlc_bar[:, i] for i in range(4))
    if model == "close":
        prices = [c]
    elif model == "ohlc":
        up = c >= o
        prices = [o, np.where(up, l, h), np.where(up, h, l), c]
    elif model == "worst":
        return [np.stack([o, o], axis=1), np.stack([l, h], axis=1), np.stack([c, c], axis=1)]
    else:
        raise InputError(f"intrabar model must be one of {INTRABAR_MODELS}, not {model!r}")
    return [np.stack([p, p], axis=1) for p in prices]


def funding_by_step(funding, paths: PricePaths) -> np.ndarray:
    """Funding rates as a ``[n_steps, n_contracts]`` array (0 where none is due).

    ``funding`` is ``{contract: DataFrame(timestamp, rate)}`` or one frame with a
    ``contract`` column.  A funding time is settled at the first point of the first bar
    opening at or after it; several in one bar add up.  Times outside the path are ignored.
    """
    rates = np.zeros((paths.n_steps, paths.n_contracts))
    if funding is None:
        return rates
    if isinstance(funding, pd.DataFrame):
        if "contract" not in funding.columns:
            raise InputError("a single funding frame needs a 'contract' column")
        funding = {str(k): g for k, g in funding.groupby("contract", sort=False)}
    if not isinstance(funding, dict):
        raise InputError("funding must be {contract: DataFrame(timestamp, rate)}")
    bar_ns = paths.timestamps.astype("int64")
    for symbol, frame in funding.items():
        where = f"funding of {symbol}"
        if symbol not in paths.contracts:
            raise InputError(f"{where}: unknown contract (the paths have {list(paths.contracts)})")
        for col in ("timestamp", "rate"):
            if col not in frame.columns:
                raise InputError(f"{where}: missing column {col!r}")
        ts = _timestamps(frame["timestamp"].to_numpy(), where).astype("int64")
        rate = frame["rate"].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(rate) | (np.abs(rate) >= 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"{where}: row {row}, column 'rate': {float(rate[row])!r} is not a plausible rate "
                             "(a fraction between -1 and 1, e.g. 0.0001)")
        step = np.searchsorted(bar_ns, ts, side="left")
        inside = (ts >= bar_ns[0]) & (step < paths.n_steps)
        c = paths.contracts.index(symbol)
        np.add.at(rates[:, c], step[inside], rate[inside])
    return rates


# ------------------------------------------------------------------------ the tape
ACTIONS = {
    # action: (required fields, optional fields)
    "market": (("account", "contract", "side", "qty"), ("leg", "reduce_only")),
    "limit": (("account", "contract", "side", "qty", "price"), ("leg", "reduce_only", "tag")),
    "cancel": ((), ("order_id", "tag")),
    "add_margin": (("account", "contract", "amount"), ("leg",)),
    "remove_margin": (("account", "contract", "amount"), ("leg",)),
    "set_leverage": (("account", "contract", "leverage"), ("leg",)),
    "set_margin_mode": (("account", "contract", "mode"), ()),
    "set_position_mode": (("account", "mode"), ()),
    "set_auto_add_margin": (("account", "contract", "enabled"), ("leg",)),
    "set_tp_sl": (("account", "contract"), ("leg", "take_profit", "stop_loss")),
    "deposit": (("account", "amount"), ()),
    "withdraw": (("account", "amount"), ()),
}


@dataclass(frozen=True)
class ScheduledAction:
    step: int  # the bar at whose first point it runs
    row: int  # its row in the tape as given
    action: str
    fields: dict


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _tape_stamps(records: list[dict]) -> np.ndarray | None:
    """Every row's timestamp (int64 ns) in one conversion, when the rows' values are all
    integers (epoch ms) or all datetimes, which convert alone exactly as together; None
    otherwise (strings, floats, missing values ...: :func:`schedule_tape` converts row by
    row, naming the row at fault)."""
    values = [rec.get("timestamp") for rec in records]
    try:
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
            array = np.array(values, dtype=np.int64)
        elif all(isinstance(v, (pd.Timestamp, np.datetime64)) and not pd.isna(v) for v in values):
            array = np.array(values, dtype=object)
        else:
            return None
        return _timestamps(array, "tape").astype("int64")
    except (InputError, ValueError, TypeError, OverflowError):
        return None


def schedule_tape(tape, paths: PricePaths) -> list[ScheduledAction]:
    """Validate the tape and assign each action to a bar: the first bar opening at or after
    its timestamp.  Actions after the last bar are left out.  Same-bar actions keep tape order."""
    if tape is None:
        return []
    if isinstance(tape, pd.DataFrame):
        records = tape.to_dict("records")
    else:
        records = [dict(r) for r in tape]
    if not records:
        return []
    bar_ns = paths.timestamps.astype("int64")
    stamps = _tape_stamps(records)
    steps = None if stamps is None else np.searchsorted(bar_ns, stamps, side="left")
    out = []
    for row, rec in enumerate(records):
        where = f"tape row {row}"
        action = rec.get("action")
        if action not in ACTIONS:
            raise InputError(f"{where}, column 'action': {action!r} is not one of {sorted(ACTIONS)}")
        required, optional = ACTIONS[action]
        fields = {}
        for name in required:
            if name not in rec or _missing(rec[name]):
                raise InputError(f"{where} ({action}): column {name!r} is required")
            fields[name] = rec[name]
        for name in optional:
            if name in rec and not _missing(rec[name]):
                fields[name] = rec[name]
        if action == "cancel" and not fields:
            raise InputError(f"{where} (cancel): give 'order_id' or 'tag'")
        if "timestamp" not in rec or _missing(rec["timestamp"]):
            raise InputError(f"{where}: column 'timestamp' is required")
        if steps is not None:
            step = int(steps[row])
        else:
            ts = int(_timestamps(np.array([rec["timestamp"]]), where).astype("int64")[0])
            step = int(np.searchsorted(bar_ns, ts, side="left"))
        if step < paths.n_steps:
            out.append(ScheduledAction(step, row, action, fields))
    out.sort(key=lambda a: (a.step, a.row))
    return out
