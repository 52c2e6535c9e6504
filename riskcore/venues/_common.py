"""What the venue loaders and formulas share: the error type, number parsing that names
venue, field and row, reading JSON from a path or taking it parsed, and the shipped tables."""
from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .._paths import data_dir
from ..enums import parse_side
from ..errors import BracketError

#: Written as the cap of a venue's open-ended last tier (``Brackets`` needs a finite cap).
OPEN_CAP = 1e12


class VenueError(BracketError):
    """A venue's tier data or a venue formula's input is malformed.

    The message starts with the venue and the data's name (``"bybit risk-limit: ..."``) and names
    the row (from 1, in the order given) and the field at fault.  A ``BracketError`` (and so a
    ``ValueError``), so code that catches bracket errors catches these too.
    """


def where(venue: str, what: str, row: int | None = None, label: str | None = None) -> str:
    """``"bybit risk-limit: row 2 (id 2)"`` — the prefix of every message."""
    out = f"{venue} {what}"
    if row is not None:
        out += f": row {row}"
        if label:
            out += f" ({label})"
    return out


def number(raw, field: str, prefix: str, *, allow_empty: bool = False, default: float | None = None) -> float:
    """``raw`` (a number or numeric string) as a finite float; ``VenueError`` naming the field otherwise.

    With ``allow_empty``, ``""`` and ``None`` give ``default``.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if allow_empty:
            return default
        raise VenueError(f"{prefix}: field {field!r} is empty")
    if isinstance(raw, bool):
        raise VenueError(f"{prefix}: field {field!r} is {raw!r}, not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise VenueError(f"{prefix}: field {field!r} is {raw!r}, not a number") from None
    if not math.isfinite(value):
        raise VenueError(f"{prefix}: field {field!r} is {raw!r}, not a finite number")
    return value


def field(row: Mapping, key: str, prefix: str):
    """``row[key]``; ``VenueError`` naming the key and the keys present when it is missing."""
    if not isinstance(row, Mapping):
        raise VenueError(f"{prefix}: is a {type(row).__name__}, not an object (dict)")
    if key not in row:
        raise VenueError(f"{prefix}: has no field {key!r} (fields: {sorted(row)})")
    return row[key]


def read_json(data, venue: str, what: str):
    """Parsed JSON as given, or read from a ``str``/``Path`` naming a ``.json`` or ``.json.gz`` file."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise VenueError(f"{venue} {what}: file {str(path)!r} does not exist")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            try:
                return json.load(fh)
            except json.JSONDecodeError as exc:
                raise VenueError(f"{venue} {what}: {path} is not JSON: {exc}") from None
    return data


def side_of(side) -> int:
    """+1 long / -1 short from the usual spellings (``ValueError`` otherwise)."""
    return parse_side(side)


def positive(value: float, name: str, venue: str) -> float:
    """``value`` as a float that is finite and > 0; ``ValueError`` naming it otherwise."""
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{venue}: {name} must be a finite number above 0, not {value!r}")
    return v


def non_negative(value: float, name: str, venue: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{venue}: {name} must be a finite number >= 0, not {value!r}")
    return v


def rate(value: float, name: str, venue: str, *, upper: float = 1.0) -> float:
    """A fraction in ``[0, upper)`` (fees, margin rates); a percent by mistake is refused."""
    v = float(value)
    if not (math.isfinite(v) and 0 <= v < upper):
        hint = " (give fractions: 0.005 for 0.5%)" if math.isfinite(v) and v >= upper else ""
        raise ValueError(f"{venue}: {name} must lie in [0, {upper:g}), not {value!r}{hint}")
    return v


def price_or_nan(p: float) -> float:
    """A price that cannot occur (<= 0 or not finite) is NaN, as in ``riskcore.margin``."""
    return p if (math.isfinite(p) and p > 0) else math.nan


# ------------------------------------------------------------------------ shipped tables
def shipped_frame(venue: str) -> pd.DataFrame:
    """``data/venues/<venue>.csv``: one row per tier, with ``symbol``, ``effective_date``,
    ``tier``, the venue's own fields, ``trust`` and ``source``."""
    path = data_dir() / "venues" / f"{venue}.csv"
    if not path.is_file():
        raise VenueError(f"{venue}: no shipped tables ({path} does not exist)")
    return pd.read_csv(path, comment="#", dtype={"effective_date": str, "symbol": str})


def pick_shipped(venue: str, symbol: str, date=None) -> tuple[pd.DataFrame, str]:
    """The rows of the newest shipped table of ``symbol`` dated on or before ``date``."""
    from ..brackets import _day

    table = shipped_frame(venue)
    rows = table[table["symbol"] == symbol]
    if rows.empty:
        have = sorted(set(table["symbol"]))
        raise VenueError(f"{venue}: no shipped table for {symbol!r}; shipped: {have}")
    dates = sorted(set(rows["effective_date"]))
    if date is not None:
        try:
            cutoff = _day(date)
        except BracketError as exc:
            raise VenueError(f"{venue}: {exc}") from None
        dates = [d for d in dates if d <= cutoff]
        if not dates:
            raise VenueError(f"{venue}: no shipped table for {symbol!r} in effect on {date}; "
                             f"the oldest is from {min(rows['effective_date'])}")
    chosen = rows[rows["effective_date"] == dates[-1]].sort_values("tier")
    return chosen, dates[-1]


def source_of(rows: pd.DataFrame) -> str:
    return f"{rows['source'].iloc[0]} [{rows['trust'].iloc[0]}]"
