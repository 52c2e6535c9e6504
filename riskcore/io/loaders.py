"""Read price bars and funding rates from market-data files, with checks that name the fault.

Formats understood (the layers are detected from the bytes, not from the file name):

* Binance public-data (data.binance.vision) ``klines`` and ``markPriceKlines`` CSV, twelve
  columns ``open_time, open, high, low, close, volume, close_time, quote_volume, count,
  taker_buy_volume, taker_buy_quote_volume, ignore``, with or without a header row;
* CCXT OHLCV: a CSV with ``open_time`` (or ``timestamp``), open, high, low, close, volume, or
  a JSON list of ``[ms, open, high, low, close, volume]`` lists (freqtrade's layout);
* Parquet (or Feather) with those columns;
* any of the text formats gzipped, or zipped as the only file of a ``.zip`` archive (the
  way data.binance.vision ships them).

Timestamps are epoch milliseconds; values of 16 digits (at least 1e15) are read as
microseconds, which Binance's newer files use.  Text timestamps (ISO 8601) and Parquet
datetime columns are read too; times without a zone are taken as UTC.

Every loader returns bars with a ``timestamp`` column of ``datetime64[ns]`` holding UTC
times without a zone attached (the convention of :class:`riskcore.inputs.PricePaths`), so
the frames can be passed to :meth:`PricePaths.from_frames` as they are.

Problems raise :class:`DataError` (an :class:`riskcore.inputs.InputError`) whose message
names the file, the place in it and the column: ``line N`` is the 1-based line of a text
file (the header, when there is one, is line 1); ``row N`` is the 1-based row of a Parquet
file or the 1-based entry of a JSON list.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..checks import LIMIT
from ..inputs import OHLC, InputError

__all__ = ["DataError", "GAP_MODES", "load_klines", "load_paths", "load_funding", "parse_interval"]

GAP_MODES = ("refuse", "fill", "report")

# Header names accepted for each column (compared in lower case, spaces trimmed).
_TIME_NAMES = ("open_time", "timestamp", "time", "date", "datetime", "open time", "opentime", "ts")
_PRICE_NAMES = {"open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"), "close": ("close", "c")}
_SYMBOL_NAMES = ("symbol", "contract", "pair")
_FUNDING_TIME_NAMES = ("funding_time", "calc_time", "fundingtime", "funding_timestamp", "timestamp", "time",
                       "date", "datetime")
_FUNDING_RATE_NAMES = ("funding_rate", "last_funding_rate", "fundingrate", "rate")

_MS_MIN = 10**11   # 1973-03-03 in epoch ms; smaller values are refused (seconds, most likely)
_US_MIN = 10**15   # 2001-09-09 in epoch µs (and year 33658 in ms): from here on, values are µs
_US_MAX = 10**18   # beyond this, not a µs timestamp
_NS = {"ms": 10**6, "us": 10**3}
_MAX_FILLED_BARS = 50_000_000


class DataError(InputError):
    """A data file is malformed or does not fit the request.

    The message names the file, the line (text files) or row (Parquet, JSON), and the
    column at fault.
    """


# ------------------------------------------------------------------------------ intervals
_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "w": 7 * 86400 * 10**9}


def parse_interval(interval) -> pd.Timedelta:
    """Read a bar interval.

    Parameters
    ----------
    interval : str, datetime.timedelta or pandas.Timedelta
        Binance-style text (``"1m"``, ``"5m"``, ``"1h"``, ``"8h"``, ``"1d"``, ``"1w"``,
        ``"30s"``; ``m`` is minutes) or anything :class:`pandas.Timedelta` accepts.
        Months are refused: they have no fixed length.

    Returns
    -------
    pandas.Timedelta
        The interval, positive.

    Raises
    ------
    DataError
        When the interval cannot be read or is not positive.
    """
    if isinstance(interval, str):
        m = _INTERVAL_RE.match(interval)
        if m:
            value = pd.Timedelta(int(m.group(1)) * _UNIT_NS[m.group(2)], unit="ns")
        else:
            if interval.strip() in ("1M", "1mo"):
                raise DataError(f"interval {interval!r}: months have no fixed length; bars must be evenly spaced")
            try:
                value = pd.Timedelta(interval)
            except (ValueError, TypeError):
                raise DataError(f"interval {interval!r} is not a duration (try '1m', '5m', '1h', '8h', '1d')") from None
    else:
        try:
            value = pd.Timedelta(interval)
        except (ValueError, TypeError):
            raise DataError(f"interval {interval!r} is not a duration (try '1m', '5m', '1h', '8h', '1d')") from None
    if pd.isna(value) or value <= pd.Timedelta(0):
        raise DataError(f"interval {interval!r} must be a positive duration")
    return value


def _fmt_interval(ns: int) -> str:
    for unit, size in (("w", _UNIT_NS["w"]), ("d", _UNIT_NS["d"]), ("h", _UNIT_NS["h"]), ("m", _UNIT_NS["m"]),
                       ("s", _UNIT_NS["s"])):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return str(pd.Timedelta(int(ns), unit="ns"))


def _num(value) -> str:
    return repr(float(value))


def _fmt_ts(ns: int) -> str:
    return str(pd.Timestamp(int(ns), unit="ns"))


# --------------------------------------------------------------------------- reading files
@dataclass
class _Table:
    """One file's content as a table, before any interpretation."""
    frame: pd.DataFrame          # raw cells (strings for text files), positional index 0..n-1
    label: str                   # the file as named in messages
    unit: str                    # "line" or "row"
    locs: np.ndarray             # the 1-based line/row of each row of ``frame``
    names: list | None           # lower-cased header names, None when the file has no header
    member: str                  # the innermost file name (a zip member, or the file itself)


def _decompress(raw: bytes, label: str, member: str) -> tuple[bytes, str, str]:
    """Peel zip and gzip layers (at most a few) off ``raw``."""
    for _ in range(3):
        if raw[:4] == b"PK\x03\x04":
            try:
                with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                    members = [i for i in zf.infolist()
                               if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
                    if len(members) != 1:
                        names = [i.filename for i in members]
                        raise DataError(f"{label}: a zip archive must hold exactly one file, it holds "
                                        f"{len(names)}: {names[:10]}")
                    member = members[0].filename
                    raw = zf.read(members[0])
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{label}: not a readable zip archive ({exc})") from None
            label = f"{label} (member {member})"
        elif raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(f"{label}: not a readable gzip file ({exc})") from None
            if member.endswith(".gz"):
                member = member[:-3]
        else:
            break
    return raw, label, member


def _read_table(path) -> _Table:
    """Read one file of any supported format into a :class:`_Table`."""
    label = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{label}: is a folder, not a file") from None
    raw, label, member = _decompress(raw, label, Path(label).name)
    if not raw.strip():
        raise DataError(f"{label}: the file is empty")
    if raw[:4] == b"PAR1" or raw[:6] == b"ARROW1":
        kind = "Parquet" if raw[:4] == b"PAR1" else "Feather"
        try:
            frame = (pd.read_parquet if kind == "Parquet" else pd.read_feather)(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises many types
            raise DataError(f"{label}: not a readable {kind} file ({exc})") from None
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        frame = frame.reset_index(drop=True)
        names = [str(c).strip().lower() for c in frame.columns]
        frame.columns = range(frame.shape[1])
        return _Table(frame, label, "row", np.arange(1, len(frame) + 1), names, member)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not a UTF-8 text, Parquet, zip or gzip file ({exc})") from None
    stripped = text.lstrip()
    if stripped[:1] in "[{":
        return _read_json(stripped, label, member)
    return _read_csv(text, label, member)


def _read_json(text: str, label: str, member: str) -> _Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict):
        raise DataError(f"{label}: expected a JSON list of [time, open, high, low, close, volume] rows, "
                        f"got an object with keys {list(data)[:10]}")
    if not data:
        raise DataError(f"{label}: the JSON list is empty")
    names = None
    if all(isinstance(r, Mapping) for r in data):
        frame = pd.DataFrame.from_records(data)
        names = [str(c).strip().lower() for c in frame.columns]
        frame.columns = range(frame.shape[1])
    elif all(isinstance(r, (list, tuple)) for r in data):
        frame = pd.DataFrame([list(r) for r in data])
    else:
        bad = next(i for i, r in enumerate(data) if not isinstance(r, (list, tuple)))
        raise DataError(f"{label}, row {bad + 1}: expected a list [time, open, high, low, close, volume], "
                        f"got {data[bad]!r}")
    return _Table(frame, label, "row", np.arange(1, len(frame) + 1), names, member)


def _is_number(cell) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _read_csv(text: str, label: str, member: str) -> _Table:
    try:
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, skip_blank_lines=False,
                            keep_default_na=False, na_filter=False, skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise DataError(f"{label}: not a readable CSV file ({exc})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file is empty") from None
    frame = frame.fillna("")
    locs = np.arange(1, len(frame) + 1)  # line numbers: blank lines are kept by the reader
    filled = np.zeros(len(frame), dtype=bool)
    for col in frame.columns:
        filled |= (frame[col].astype(str).str.strip() != "").to_numpy()
    frame, locs = frame[filled].reset_index(drop=True), locs[filled]
    if frame.empty:
        raise DataError(f"{label}: the file is empty")
    names = None
    first = [str(c).strip() for c in frame.iloc[0]]
    if not any(_is_number(c) for c in first if c):
        names = [c.lower() for c in first]
        frame, locs = frame.iloc[1:].reset_index(drop=True), locs[1:]
    return _Table(frame, label, "line", locs, names, member)


def _find(names: list, wanted) -> int | None:
    for name in wanted:
        if name in names:
            return names.index(name)
    return None


# ------------------------------------------------------------------------ converting cells
@dataclass
class _Source:
    label: str
    unit: str
    columns: dict  # canonical column -> name shown in messages


@dataclass
class _Rows:
    """Rows gathered from one or more files, with where each came from."""
    ts: np.ndarray                      # int64 ns
    values: np.ndarray                  # float64 [n, k]
    source: np.ndarray                  # index into ``sources`` per row
    locs: np.ndarray                    # 1-based line/row per row
    sources: list = field(default_factory=list)
    symbols: np.ndarray | None = None   # per row, when the file has a symbol column

    def where(self, i: int, column: str) -> str:
        src = self.sources[int(self.source[i])]
        return f"{src.label}, {src.unit} {int(self.locs[i])}, column {src.columns.get(column, repr(column))}"


def _timestamps_ns(cells: pd.Series, table: _Table, shown: str) -> np.ndarray:
    """Epoch ms / µs numbers, ISO text or datetimes -> int64 ns since the epoch (UTC)."""
    def where(i):
        return f"{table.label}, {table.unit} {int(table.locs[i])}, column {shown}"

    if pd.api.types.is_datetime64_any_dtype(cells.dtype):
        stamps = pd.to_datetime(cells, utc=True)
        if stamps.isna().any():
            i = int(np.argmax(stamps.isna().to_numpy()))
            raise DataError(f"{where(i)}: the timestamp is missing")
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    numbers = pd.to_numeric(cells, errors="coerce")
    numeric = numbers.notna().to_numpy()
    if numeric[0] or not len(cells):
        if not numeric.all():
            i = int(np.argmin(numeric))
            raw = cells.iloc[i]
            what = "missing" if (raw is None or str(raw).strip() == "") else f"{raw!r}, not a number of epoch milliseconds"
            raise DataError(f"{where(i)}: the timestamp is {what}")
        values = numbers.to_numpy()
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values) | (values != np.floor(values))
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"{where(i)}: timestamp {cells.iloc[i]!r} is not a whole number of milliseconds")
            values = values.astype(np.int64)
        values = values.astype(np.int64)
        bad = (values < _MS_MIN) | (values >= _US_MAX)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where(i)}: timestamp {int(values[i])} is neither epoch milliseconds (13 digits) nor "
                            "epoch microseconds (16 digits)")
        return np.where(values >= _US_MIN, values * _NS["us"], values * _NS["ms"])
    stamps = pd.to_datetime(cells.astype(str), utc=True, errors="coerce", format="ISO8601")
    missing = stamps.isna().to_numpy()
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(f"{where(i)}: timestamp {cells.iloc[i]!r} is neither epoch milliseconds nor an ISO 8601 time")
    return stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)


def _numbers(cells: pd.Series, table: _Table, shown: str) -> np.ndarray:
    """Cells -> float64; text that is not a number raises (empty cells become NaN)."""
    if cells.dtype.kind in "fiub":
        return cells.to_numpy(dtype=np.float64)
    text = cells.astype(object)
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    stripped = cells.astype(str).str.strip().str.lower()
    blank = (cells.isna() | stripped.isin(["", "none", "null"])).to_numpy()
    # "nan"/"inf" text parses as NaN or inf: left to the price checks, which call it missing or not finite
    nan_text = stripped.isin(["nan", "inf", "-inf", "+inf", "infinity", "-infinity"]).to_numpy()
    bad = np.isnan(values) & ~blank & ~nan_text
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{table.label}, {table.unit} {int(table.locs[i])}, column {shown}: "
                        f"{text.iloc[i]!r} is not a number")
    return values


def _symbols(table: _Table) -> tuple[np.ndarray | None, str | None]:
    if table.names is None:
        return None, None
    k = _find(table.names, _SYMBOL_NAMES)
    if k is None:
        return None, None
    return table.frame[k].astype(str).str.strip().to_numpy(dtype=object), table.names[k]


def _select_contract(table: _Table, contract: str | None, what: str) -> tuple[_Table, str | None]:
    """Keep the rows of ``contract`` when the file has a symbol column."""
    symbols, shown = _symbols(table)
    if symbols is None:
        return table, contract
    present = list(dict.fromkeys(symbols))
    if contract is None:
        if len(present) > 1:
            raise DataError(f"{table.label}: the file holds {what} of several contracts {present}; "
                            "say which with contract=")
        return table, present[0] if present else None
    keep = symbols == contract
    if not keep.any():
        raise DataError(f"{table.label}: no rows for contract {contract!r} in column {shown!r} "
                        f"(the file holds {present})")
    frame = table.frame[keep].reset_index(drop=True)
    return _Table(frame, table.label, table.unit, table.locs[keep], table.names, table.member), contract


def _as_paths(path) -> list:
    if isinstance(path, (str, os.PathLike)):
        return [path]
    if isinstance(path, Sequence) and path:
        return list(path)
    raise DataError(f"expected a file path or a non-empty list of paths, got {path!r}")


def _bar_rows(paths: list, contract: str | None) -> tuple[_Rows, str | None]:
    """Read OHLC bars from each file, in the order given."""
    parts, sources = [], []
    for path in paths:
        table = _read_table(path)
        table, contract = _select_contract(table, contract, "bars")
        if table.names is not None:
            cols = {"timestamp": _find(table.names, _TIME_NAMES)}
            for name in OHLC:
                cols[name] = _find(table.names, _PRICE_NAMES[name])
            missing = [name for name, k in cols.items() if k is None]
            if missing:
                raise DataError(f"{table.label}: the header has no column for {missing} "
                                f"(it has {table.names}); expected open_time or timestamp, open, high, low, close")
            shown = {name: repr(table.names[k]) for name, k in cols.items()}
        else:
            if table.frame.shape[1] < 5:
                raise DataError(f"{table.label}: {table.frame.shape[1]} column(s); expected at least 5 "
                                "(open_time, open, high, low, close, ...)")
            cols = {name: k for k, name in enumerate(("timestamp",) + OHLC)}
            shown = {"timestamp": "1 (open_time)"} | {n: f"{k + 1} ({n})" for n, k in cols.items() if n != "timestamp"}
        if table.frame.empty:
            raise DataError(f"{table.label}: no bars (only a header)" if table.names else f"{table.label}: no bars")
        ts = _timestamps_ns(table.frame[cols["timestamp"]], table, shown["timestamp"])
        values = np.column_stack([_numbers(table.frame[cols[n]], table, shown[n]) for n in OHLC])
        parts.append((ts, values, np.full(ts.size, len(sources)), table.locs))
        sources.append(_Source(table.label, table.unit, shown))
    rows = _Rows(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                 np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]), sources)
    return rows, contract


# ------------------------------------------------------------------------------ checking
def _first_problem(candidates: list) -> None:
    """Raise the problem found earliest in the data (candidates are (row, count, message))."""
    candidates = [c for c in candidates if c is not None]
    if candidates:
        row, count, message = min(candidates, key=lambda c: c[0])
        more = f" ({count} rows have this problem)" if count > 1 else ""
        raise DataError(message + more)


def _check_bars(rows: _Rows) -> None:
    ts, values = rows.ts, rows.values
    candidates = []
    bad = ~(np.isfinite(values) & (values > 0) & (values <= LIMIT))
    for k, name in enumerate(OHLC):
        col_bad = np.flatnonzero(bad[:, k])
        if col_bad.size:
            i = int(col_bad[0])
            v = values[i, k]
            what = "missing" if np.isnan(v) else (f"{_num(v)}, not finite" if not np.isfinite(v) else
                                                  f"{_num(v)}, not positive" if v <= 0 else
                                                  f"{_num(v)}, above {LIMIT:g} (outside the range riskcore "
                                                  "computes exactly)")
            candidates.append((i, col_bad.size, f"{rows.where(i, name)}: the price is {what}"))
    ok = ~bad.any(axis=1)
    o, h, l, c = values.T
    with np.errstate(invalid="ignore"):
        for name, broken, limit, ref in (("high", ok & (h < np.maximum(o, c)), "below max(open, close)", np.maximum(o, c)),
                                         ("low", ok & (l > np.minimum(o, c)), "above min(open, close)", np.minimum(o, c))):
            idx = np.flatnonzero(broken)
            if idx.size:
                i = int(idx[0])
                v = values[i, OHLC.index(name)]
                candidates.append((i, idx.size, f"{rows.where(i, name)}: {name} {_num(v)} is {limit} = {_num(ref[i])} "
                                                 f"(open {_num(o[i])}, close {_num(c[i])})"))
    step = np.diff(ts)
    idx = np.flatnonzero(step <= 0)
    if idx.size:
        i = int(idx[0]) + 1
        if step[i - 1] == 0:
            msg = f"timestamp {_fmt_ts(ts[i])} repeats the previous row's (duplicate bar)"
        else:
            msg = (f"timestamp {_fmt_ts(ts[i])} is earlier than the previous row's {_fmt_ts(ts[i - 1])} "
                   "(bars must be in time order)")
        candidates.append((i, idx.size, f"{rows.where(i, 'timestamp')}: {msg}"))
    _first_problem(candidates)


def _gaps(rows: _Rows, interval, gaps: str) -> tuple[int | None, list, np.ndarray | None]:
    """Check the spacing of the bars; returns (interval ns, gap records, positions on the grid)."""
    ts = rows.ts
    step = np.diff(ts)
    if interval is not None:
        iv = int(parse_interval(interval).value)
    elif step.size:
        uniq, counts = np.unique(step, return_counts=True)
        iv = int(uniq[np.argmax(counts)])  # the most common spacing; ties go to the shortest
    else:
        return None, [], None
    off = np.flatnonzero(step % iv != 0)
    if off.size:
        i = int(off[0]) + 1
        d = int(step[i - 1])
        relation = "shorter than" if d < iv else "not a multiple of"
        raise DataError(f"{rows.where(i, 'timestamp')}: bar {_fmt_ts(ts[i])} comes {_fmt_interval(d)} after the "
                        f"previous one, {relation} the {_fmt_interval(iv)} interval"
                        + (" (given)" if interval is not None else " (the most common spacing)")
                        + f"; {off.size} spacing(s) are off the interval grid")
    records = []
    for j in np.flatnonzero(step > iv):
        i = int(j) + 1
        src = rows.sources[int(rows.source[i])]
        records.append({
            "start": pd.Timestamp(int(ts[i - 1] + iv), unit="ns"),  # the first missing bar
            "end": pd.Timestamp(int(ts[i] - iv), unit="ns"),        # the last missing bar
            "missing": int(step[j] // iv - 1),
            "file": src.label,
            src.unit: int(rows.locs[i]),                            # where the bar after the gap is
        })
    if records and gaps == "refuse":
        first = records[0]
        i = int(np.flatnonzero(step > iv)[0]) + 1
        total = sum(r["missing"] for r in records)
        raise DataError(f"{rows.where(i, 'timestamp')}: gap before this bar: no {_fmt_interval(iv)} bars from "
                        f"{first['start']} to {first['end']} ({first['missing']} missing); {len(records)} gap(s), "
                        f"{total} missing bar(s) in all. Pass gaps='fill' to insert flat bars at the previous close, "
                        "or gaps='report' to keep the gaps and list them in frame.attrs['gaps']")
    return iv, records, (ts - ts[0]) // iv


def _frame(ts_ns: np.ndarray, values: np.ndarray, columns) -> pd.DataFrame:
    out = pd.DataFrame({"timestamp": np.asarray(ts_ns, dtype=np.int64).astype("datetime64[ns]")})
    for k, name in enumerate(columns):
        out[name] = np.asarray(values[:, k], dtype=np.float64)
    return out


# -------------------------------------------------------------------------------- klines
def load_klines(path, contract: str | None = None, *, gaps: str = "refuse", interval=None) -> pd.DataFrame:
    """Load OHLC bars (klines) from a file, checked and ready for :class:`~riskcore.inputs.PricePaths`.

    Parameters
    ----------
    path : str or os.PathLike, or a sequence of them
        A Binance public-data ``klines``/``markPriceKlines`` CSV (header row optional), a
        CCXT OHLCV CSV or JSON list, or a Parquet/Feather file; plain, gzipped, or the only
        member of a zip archive.  A sequence of files (e.g. the daily zips returned by
        :func:`riskcore.io.fetch.fetch`) is read in the order given and checked as one series.
    contract : str, optional
        The contract the bars belong to.  When a file has a ``symbol`` (or ``contract``)
        column, only that contract's rows are kept (required when the file holds several);
        otherwise it is only a label, stored in ``frame.attrs["contract"]``.
    gaps : {"refuse", "fill", "report"}, default "refuse"
        What to do where bars are missing (a spacing of a whole number of intervals, above
        one): ``"refuse"`` raises, naming the first gap and how many there are; ``"report"``
        returns the bars as they are and lists the gaps in ``frame.attrs["gaps"]``; ``"fill"``
        inserts flat bars (open = high = low = close = the previous bar's close) and lists the
        gaps it filled in ``frame.attrs["gaps"]``.
    interval : str or timedelta, optional
        The bar interval (``"1m"``, ``"5m"``, ``"8h"``, ...).  Inferred as the most common
        spacing of the timestamps when not given.

    Returns
    -------
    pandas.DataFrame
        Columns ``timestamp`` (``datetime64[ns]``, the bar's open time in UTC, no zone
        attached), ``open``, ``high``, ``low``, ``close`` (float64), one row per bar in time
        order.  ``frame.attrs`` holds:

        * ``"source"``: the file (or list of files) read;
        * ``"contract"``: the contract, or None;
        * ``"interval"``: the bar interval (:class:`pandas.Timedelta`; None for a single bar
          with no interval given);
        * ``"gaps"``: a list of dicts, one per gap, with ``start`` and ``end`` (the first and
          last missing bar's open time), ``missing`` (the number of missing bars), ``file``
          and ``line`` (or ``row``) of the bar after the gap.  Empty when there are none;
        * ``"filled"``: the number of bars inserted (0 unless ``gaps="fill"``).

    Raises
    ------
    DataError
        Naming the file, line (or row) and column: unreadable files or cells, missing
        columns, missing, non-positive or non-finite prices, a high below max(open, close)
        or a low above min(open, close), duplicate or out-of-order timestamps, spacings
        off the interval grid, and gaps under ``gaps="refuse"``.  When a problem affects
        several rows, the first is named and the count given.

    Examples
    --------
    >>> bars = load_klines("BTCUSDT-1m-2025-10-10.zip", "BTCUSDT")  # doctest: +SKIP
    >>> bars.attrs["interval"]  # doctest: +SKIP
    Timedelta('0 days 00:01:00')
    """
    if gaps not in GAP_MODES:
        raise DataError(f"gaps must be one of {GAP_MODES}, not {gaps!r}")
    paths = _as_paths(path)
    rows, contract = _bar_rows(paths, contract)
    _check_bars(rows)
    iv, records, positions = _gaps(rows, interval, gaps)
    ts, values = rows.ts, rows.values
    filled = 0
    if records and gaps == "fill":
        n_total = int(positions[-1]) + 1
        if n_total > _MAX_FILLED_BARS:
            raise DataError(f"{rows.sources[0].label}: filling the gaps would make {n_total:,} bars; "
                            "refusing (are the right files and interval given?)")
        present = np.zeros(n_total, dtype=bool)
        present[positions] = True
        grid = np.empty((n_total, 4))
        grid[positions] = values
        last = np.maximum.accumulate(np.where(present, np.arange(n_total), 0))
        grid[~present] = grid[last[~present], 3][:, None]  # flat bars at the previous close
        filled = n_total - ts.size
        ts = ts[0] + np.arange(n_total, dtype=np.int64) * iv
        values = grid
    frame = _frame(ts, values, OHLC)
    frame.attrs.update({
        "source": os.fspath(paths[0]) if len(paths) == 1 else [os.fspath(p) for p in paths],
        "contract": contract,
        "interval": None if iv is None else pd.Timedelta(iv, unit="ns"),
        "gaps": records,
        "filled": filled,
    })
    return frame


def load_paths(files: Mapping, *, gaps: str = "refuse", interval=None) -> dict[str, pd.DataFrame]:
    """Load the bars of several contracts and put them on one timeline.

    Each file is read with :func:`load_klines` (its key is passed as ``contract``, so
    several contracts may come from one file with a ``symbol`` column).  The contracts
    must share the bar interval.  Every series is then **trimmed to the common time
    range** — from the latest first bar to the earliest last bar — so that, gaps aside,
    all contracts have the same bars; the result can be given to
    :meth:`riskcore.inputs.PricePaths.from_frames` as it is.

    Parameters
    ----------
    files : mapping of str to path (or sequence of paths)
        ``{contract: file}``.
    gaps : {"refuse", "fill", "report"}, default "refuse"
        As in :func:`load_klines`.  With ``"report"``, contracts whose gaps differ do not
        share one timeline and are refused.
    interval : str or timedelta, optional
        The bar interval all files must have; inferred per file when not given.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{contract: DataFrame(timestamp, open, high, low, close)}`` in the order of
        ``files``.  Besides the attributes set by :func:`load_klines` (``gaps`` keeps those
        inside the common range, ``filled`` counts them), ``frame.attrs["trimmed"]`` is
        ``(bars dropped at the start, bars dropped at the end)``.

    Raises
    ------
    DataError
        When a file fails :func:`load_klines`; when contracts have different bar intervals
        (both are named, with their files); when their time ranges do not overlap; or when,
        after trimming, their bars are not at the same times (the first difference is
        named).
    """
    if not isinstance(files, Mapping) or not files:
        raise DataError("files must be a non-empty {contract: path} mapping")
    frames = {str(c): load_klines(p, str(c), gaps=gaps, interval=interval) for c, p in files.items()}
    names = list(frames)

    def src(c):
        s = frames[c].attrs["source"]
        return s if isinstance(s, str) else f"{s[0]} ... ({len(s)} files)"

    base = names[0]
    for c in names[1:]:
        a, b = frames[base].attrs["interval"], frames[c].attrs["interval"]
        if a != b:
            fa = "unknown (a single bar)" if a is None else _fmt_interval(a.value)
            fb = "unknown (a single bar)" if b is None else _fmt_interval(b.value)
            raise DataError(f"bar intervals differ: {base} ({src(base)}) has {fa} bars but {c} ({src(c)}) has "
                            f"{fb} bars; all contracts need the same interval")
    start = max(f["timestamp"].iloc[0] for f in frames.values())
    end = min(f["timestamp"].iloc[-1] for f in frames.values())
    if start > end:
        ranges = "; ".join(f"{c}: {f['timestamp'].iloc[0]} to {f['timestamp'].iloc[-1]}" for c, f in frames.items())
        raise DataError(f"the contracts' time ranges do not overlap ({ranges})")
    out = {}
    for c, f in frames.items():
        keep = ((f["timestamp"] >= start) & (f["timestamp"] <= end)).to_numpy()
        head = int(np.argmax(keep))
        tail = int(len(f) - 1 - np.flatnonzero(keep)[-1])
        g = f[keep].reset_index(drop=True)
        g.attrs = dict(f.attrs)
        g.attrs["gaps"] = [r for r in f.attrs["gaps"] if r["start"] >= start and r["end"] <= end]
        g.attrs["filled"] = sum(r["missing"] for r in g.attrs["gaps"]) if gaps == "fill" else 0
        g.attrs["trimmed"] = (head, tail)
        out[c] = g
    ref = out[base]["timestamp"].to_numpy()
    for c in names[1:]:
        ts = out[c]["timestamp"].to_numpy()
        if ts.size != ref.size or np.any(ts != ref):
            n = min(ts.size, ref.size)
            diff = np.flatnonzero(ts[:n] != ref[:n])
            k = int(diff[0]) if diff.size else n
            at = pd.Timestamp(ref[k]) if k < ref.size else pd.Timestamp(ts[k])
            raise DataError(f"after trimming to the common range {start} to {end}, {c} ({src(c)}) and {base} "
                            f"({src(base)}) do not have the same bars: they first differ at bar {k + 1} ({at}); "
                            f"{c} has {ts.size} bars, {base} {ref.size}. Their bars are offset from each other, "
                            "or gaps differ (gaps='fill' fills them)")
    return out


# ------------------------------------------------------------------------------- funding
_FUNDING_NAME_RE = re.compile(r"^([A-Z0-9]+(?:_[0-9]+)?)-fundingRate-", re.IGNORECASE)


def load_funding(path, contracts=None) -> dict[str, pd.DataFrame]:
    """Load funding rates, one frame per contract.

    Parameters
    ----------
    path : str or os.PathLike, or a sequence of them
        A CSV with a header: either the shared layout (``symbol, funding_time, funding_rate,
        ...``; ``funding_time`` in epoch ms) or Binance's public-data ``fundingRate`` file
        (``calc_time, funding_interval_hours, last_funding_rate``), plain, gzipped or zipped;
        Parquet with those columns works too.  A Binance file has no symbol column: the
        contract is read from its name (``BTCUSDT-fundingRate-2025-10.zip``), or, failing
        that, taken from ``contracts`` when it names exactly one.  Several files are read in
        the order given.
    contracts : str or sequence of str, optional
        The contracts wanted; all those in the file(s) when not given.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{contract: DataFrame(timestamp, rate)}``, ``timestamp`` being the funding time
        (``datetime64[ns]``, UTC, no zone attached) and ``rate`` the rate as a fraction
        (0.0001 = 0.01 %), in the order of ``contracts`` (else of first appearance).
        ``frame.attrs["source"]`` names the file(s).  This is the ``funding`` argument of
        :func:`riskcore.simulate`.

    Raises
    ------
    DataError
        Naming file, line and column: missing columns, bad timestamps, rates that are
        missing, not finite or not plausible (``|rate| >= 1``), duplicate or out-of-order
        funding times within a contract; and contracts requested that the file(s) do not
        hold (those available are listed).
    """
    if isinstance(contracts, str):
        contracts = [contracts]
    wanted = None if contracts is None else [str(c) for c in contracts]
    paths = _as_paths(path)
    per: dict[str, list] = {}
    sources: list[_Source] = []
    labels = []
    for p in paths:
        table = _read_table(p)
        labels.append(table.label)
        if table.names is None:
            raise DataError(f"{table.label}: a funding file needs a header row (symbol, funding_time, funding_rate; "
                            "or calc_time, funding_interval_hours, last_funding_rate)")
        kt, kr = _find(table.names, _FUNDING_TIME_NAMES), _find(table.names, _FUNDING_RATE_NAMES)
        missing = [n for n, k in (("funding_time or calc_time", kt), ("funding_rate or last_funding_rate", kr))
                   if k is None]
        if missing:
            raise DataError(f"{table.label}: the header has no column {' and no column '.join(missing)} "
                            f"(it has {table.names})")
        shown = {"timestamp": repr(table.names[kt]), "rate": repr(table.names[kr])}
        symbols, _ = _symbols(table)
        if symbols is None:
            m = _FUNDING_NAME_RE.match(table.member) or _FUNDING_NAME_RE.match(Path(os.fspath(p)).name)
            if m:
                symbol = m.group(1).upper()
            elif wanted is not None and len(wanted) == 1:
                symbol = wanted[0]
            else:
                raise DataError(f"{table.label}: the file has no symbol column and its name does not say the contract "
                                "(SYMBOL-fundingRate-YYYY-MM); pass contracts=[the one contract]")
            symbols = np.full(len(table.frame), symbol, dtype=object)
        if table.frame.empty:
            continue
        ts = _timestamps_ns(table.frame[kt], table, shown["timestamp"])
        rate = _numbers(table.frame[kr], table, shown["rate"])
        s = len(sources)
        sources.append(_Source(table.label, table.unit, shown))
        for sym in dict.fromkeys(symbols):
            keep = symbols == sym
            per.setdefault(sym, []).append((ts[keep], rate[keep], np.full(int(keep.sum()), s), table.locs[keep]))
    available = list(per)
    if wanted is not None:
        unknown = [c for c in wanted if c not in per]
        if unknown:
            raise DataError(f"{', '.join(labels)}: no funding rates for {unknown}; the file(s) hold {available}")
    out = {}
    for sym in (wanted if wanted is not None else available):
        parts = per[sym]
        rows = _Rows(np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts])[:, None],
                     np.concatenate([q[2] for q in parts]), np.concatenate([q[3] for q in parts]), sources)
        rate = rows.values[:, 0]
        candidates = []
        bad = ~np.isfinite(rate) | (np.abs(rate) >= 1)
        if bad.any():
            i = int(np.argmax(bad))
            what = "missing" if np.isnan(rate[i]) else f"{_num(rate[i])}, not a plausible rate (|rate| must be below 1)"
            candidates.append((i, int(bad.sum()), f"{rows.where(i, 'rate')}: the funding rate of {sym} is {what}"))
        step = np.diff(rows.ts)
        idx = np.flatnonzero(step <= 0)
        if idx.size:
            i = int(idx[0]) + 1
            what = ("repeats the previous one (duplicate)" if step[i - 1] == 0 else
                    f"is earlier than the previous one, {_fmt_ts(rows.ts[i - 1])} (times must be in order)")
            candidates.append((i, idx.size, f"{rows.where(i, 'timestamp')}: funding time {_fmt_ts(rows.ts[i])} of "
                                            f"{sym} {what}"))
        _first_problem(candidates)
        frame = _frame(rows.ts, rows.values, ("rate",))
        frame.attrs.update({"source": labels[0] if len(labels) == 1 else labels, "contract": sym})
        out[sym] = frame
    return out
