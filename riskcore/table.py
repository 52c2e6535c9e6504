"""The canonical columnar book: one table per kind of record, the schema defined here once.

=========== ===================================================================
table       columns
=========== ===================================================================
meta        format_version, default_leverage, fees_collected, next_order_id
contracts   contract, maker_fee, taker_fee, mark_price (NaN when unknown)
brackets    contract, tier, notional_floor, notional_cap, mmr, max_leverage, cum,
            effective_date, source
accounts    account, wallet, position_mode ("one-way" | "hedge")
settings    account, contract, margin_mode ("cross" | "isolated"), leverage_long,
            leverage_short, auto_add_long, auto_add_short
positions   account, contract, leg ("both" | "long" | "short"), side (+1/-1), qty,
            entry_price, wallet_iso, take_profit, stop_loss (NaN when unset)
orders      order_id, account, contract, leg, side (+1 buy/-1 sell), qty, price,
            reduce_only
=========== ===================================================================

``wallet`` is the cross wallet; ``wallet_iso`` the isolated margin of a position (0
under cross).  One-way positions and orders have leg "both"; hedge legs name theirs.

:class:`BookTable` holds these tables, validated and in canonical dtypes: account ids
are ``int64`` (or strings, as ``object``, when the ids are strings); ``contract``,
``leg``, ``margin_mode`` and ``position_mode`` are pandas categoricals (dictionary
columns in Arrow and Parquet), whose categories are the contracts table's symbols and
the fixed words above.  It is what the simulators, the read-outs
(:mod:`riskcore.readouts`) and Parquet/Arrow I/O read and write; the
:class:`~riskcore.book.Book` is an interactive editor over it
(``Book.to_table()`` / ``Book.from_table()``).

Validation is vectorised: a table of ten million rows is checked with numpy, and an
error names the table, row and column of the first bad value.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .brackets import COLUMNS as BRACKET_COLUMNS, Brackets
from .checks import LIMIT as _LIMIT  # prices, sizes and money above it are refused
from .errors import BracketError, RiskcoreError

FORMAT_VERSION = 1
TABLES = ("meta", "contracts", "brackets", "accounts", "settings", "positions", "orders")
LEGS = ("both", "long", "short")  # category order = riskcore.enums.Leg codes
MARGIN_MODES = ("cross", "isolated")  # = riskcore.enums.MarginMode codes
POSITION_MODES = ("one-way", "hedge")  # = riskcore.enums.PositionMode codes

# Columns a table written before they existed may lack, and the value they then take.
OPTIONAL_COLUMNS = {"contracts": {"venue": "binance"}}
# Column -> dtype, as stored.  "id" is int64 (or object for string ids); "symbol" and the
# word columns are categoricals.
SCHEMA: dict[str, dict[str, str]] = {
    "meta": {"format_version": "int64", "default_leverage": "float64", "fees_collected": "float64",
             "next_order_id": "int64"},
    "contracts": {"contract": "object", "maker_fee": "float64", "taker_fee": "float64",
                  "mark_price": "float64", "venue": "object"},
    "brackets": {"contract": "object", "tier": "int64", **{c: "float64" for c in BRACKET_COLUMNS},
                 "effective_date": "object", "source": "object"},
    "accounts": {"account": "id", "wallet": "float64", "position_mode": "position_mode"},
    "settings": {"account": "id", "contract": "symbol", "margin_mode": "margin_mode",
                 "leverage_long": "float64", "leverage_short": "float64", "auto_add_long": "bool",
                 "auto_add_short": "bool"},
    "positions": {"account": "id", "contract": "symbol", "leg": "leg", "side": "int8",
                  "qty": "float64", "entry_price": "float64", "wallet_iso": "float64",
                  "take_profit": "float64", "stop_loss": "float64"},
    "orders": {"order_id": "int64", "account": "id", "contract": "symbol", "leg": "leg",
               "side": "int8", "qty": "float64", "price": "float64", "reduce_only": "bool"},
}
_WORDS = {"leg": LEGS, "margin_mode": MARGIN_MODES, "position_mode": POSITION_MODES}
_WORD_ALIASES = {"leg": {"one-way": "both"},
                 "position_mode": {"oneway": "one-way", "one_way": "one-way"}}
_SPELLINGS = {"leg": (("both", "one-way", "long", "short"), "leg"),  # as riskcore.enums' parsers say it
              "margin_mode": (("cross", "isolated"), "margin mode"),
              "position_mode": (("one-way", "oneway", "one_way", "hedge"), "position mode")}


class BookFormatError(RiskcoreError, ValueError):
    """A columnar book is malformed; the message names the table, row and column."""


# ----------------------------------------------------------------- validation
def _value(frame: pd.DataFrame, column: str, i: int):
    return frame[column].iloc[i:i + 1].tolist()[0]


def _fail_at(table: str, frame: pd.DataFrame, bad: np.ndarray, column: str, why: str) -> None:
    """Raise for the first row where ``bad`` holds, if any."""
    if bad.size and bad.any():
        i = int(np.argmax(bad))
        raise BookFormatError(f"table {table!r} row {i}, column {column!r}: {why} "
                              f"(value {_value(frame, column, i)!r})")


def _numbers(table: str, frame: pd.DataFrame, column: str, low: float | None = None, *, strict: bool = False,
             optional: bool = False, high: float = _LIMIT) -> np.ndarray:
    """The column as float64; NaN allowed only when ``optional``; bounds checked."""
    col = frame[column]
    if pd.api.types.is_bool_dtype(col.dtype):
        _fail_at(table, frame, np.ones(len(col), bool), column, "not a number")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(np.float64, na_value=np.nan)
    else:
        raw = col.to_numpy(object)
        is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), bool, raw.size)
        _fail_at(table, frame, is_bool, column, "not a number")
        values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        _fail_at(table, frame, np.isnan(values) & ~pd.isna(col).to_numpy(), column, "not a number")
    nan = np.isnan(values)
    if not optional:
        _fail_at(table, frame, nan, column, "not a finite number")
    _fail_at(table, frame, np.isinf(values), column, "not a finite number")
    if low is not None:
        below = (values <= low) if strict else (values < low)
        _fail_at(table, frame, below & ~nan, column, f"must be {'>' if strict else '>='} {low:g}")
    _fail_at(table, frame, (np.abs(values) > high) & ~nan, column,
             f"above {high:g}: outside the range riskcore computes exactly")
    return values


def _ids(table: str, frame: pd.DataFrame, column: str) -> np.ndarray:
    """Account or order ids: int64 when every id is a whole number, else non-empty strings."""
    col = frame[column]
    if pd.api.types.is_bool_dtype(col.dtype):
        _fail_at(table, frame, np.ones(len(col), bool), column, "an id must be an int or a non-empty str")
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(np.int64)
    if pd.api.types.is_float_dtype(col.dtype):
        v = col.to_numpy(np.float64)
        _fail_at(table, frame, ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) > 2.0 ** 53), column,
                 "an id must be an int or a non-empty str")
        return v.astype(np.int64)
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    raw = col.to_numpy(object)
    kinds = np.fromiter((2 if isinstance(v, str) and v else
                         1 if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) else
                         1 if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()
                         else 0 for v in raw), np.int8, raw.size)
    _fail_at(table, frame, kinds == 0, column, "an id must be an int or a non-empty str")
    if raw.size and (kinds == 1).all():
        return np.array([int(v) for v in raw], dtype=np.int64)
    _fail_at(table, frame, kinds != kinds[0] if raw.size else kinds == 0, column,
             "account ids must all be ints or all be strs")
    return raw


def _words(table: str, frame: pd.DataFrame, column: str, kind: str) -> np.ndarray:
    """A word column as its int8 code (index into the fixed words)."""
    words = _WORDS[kind]
    aliases = _WORD_ALIASES.get(kind, {})
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = list(col.cat.categories)
        lookup = np.array([words.index(_norm(c, aliases)) if _norm(c, aliases) in words else -1 for c in cats]
                          + [-1], np.int8)
        codes = lookup[col.cat.codes.to_numpy()]  # code -1 (missing) maps to the trailing -1
    else:
        raw = col.to_numpy(object)
        uniq, inv = np.unique(np.array([repr(v) if not isinstance(v, str) else v for v in raw], dtype=object),
                              return_inverse=True) if raw.size else (np.zeros(0, object), np.zeros(0, np.int64))
        lookup = np.array([words.index(_norm(u, aliases)) if isinstance(u, str) and _norm(u, aliases) in words
                           else -1 for u in uniq] + [-1], np.int8)
        codes = lookup[inv] if raw.size else np.zeros(0, np.int8)
        # numbers given as codes (0/1/2) are accepted, as the Book's parsers do
        is_num = np.fromiter((isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                              and 0 <= int(v) < len(words) for v in raw), bool, raw.size)
        if is_num.any():
            codes = codes.copy()
            codes[is_num] = np.array([int(v) for v in raw[is_num]], np.int8)
    bad = codes < 0
    if bad.any():
        spellings, label = _SPELLINGS[kind]
        value = _value(frame, column, int(np.argmax(bad)))
        allowed = ", ".join(repr(w) for w in spellings) + ", or " + ", ".join(str(c) for c in range(len(words)))
        _fail_at(table, frame, bad, column, f"{label}: {value!r} is not one of {allowed}")
    return codes.astype(np.int8)


def _norm(word, aliases: dict):
    if not isinstance(word, str):
        return word
    w = word.strip().lower()
    return aliases.get(w, w)


def _flags(table: str, frame: pd.DataFrame, column: str) -> np.ndarray:
    col = frame[column]
    if pd.api.types.is_bool_dtype(col.dtype) and not col.isna().any():
        return col.to_numpy(np.bool_)
    raw = col.to_numpy(object)
    ok = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), bool, raw.size)
    _fail_at(table, frame, ~ok, column, "must be true or false")
    return raw.astype(np.bool_)


def _sides(table: str, frame: pd.DataFrame, what: str = "must be +1 or -1") -> np.ndarray:
    side = _numbers(table, frame, "side")
    _fail_at(table, frame, (side != 1.0) & (side != -1.0), "side", what)
    return side.astype(np.int8)


def _symbols(table: str, frame: pd.DataFrame, symbols: list[str]) -> np.ndarray:
    """Contract column as the index into ``symbols`` (-1 never returned)."""
    col = frame["contract"]
    index = {s: i for i, s in enumerate(symbols)}
    if isinstance(col.dtype, pd.CategoricalDtype):
        lookup = np.array([index.get(c, -1) if isinstance(c, str) else -1 for c in col.cat.categories] + [-1],
                          np.int64)
        codes = lookup[col.cat.codes.to_numpy()]
    else:
        codes = col.map(lambda v: index.get(v, -1) if isinstance(v, str) else -1).to_numpy(np.int64) \
            if len(col) else np.zeros(0, np.int64)
    _fail_at(table, frame, codes < 0, "contract", "unknown contract (not in table 'contracts')")
    return codes


def _lookup(table: str, frame: pd.DataFrame, ids: np.ndarray, account_index: pd.Index) -> np.ndarray:
    """Row of each id in the accounts table (fails on unknown accounts)."""
    if account_index.dtype == object and ids.dtype != object:
        ids = ids.astype(object)
    values = account_index.to_numpy()
    if ids.dtype == np.int64 and values.dtype == np.int64 and len(values) and account_index.is_monotonic_increasing:
        if values[0] == 0 and values[-1] == len(values) - 1:  # ids 0..n-1 (drawn populations): the id is the row
            at = np.where((ids >= 0) & (ids < len(values)), ids, -1)
        else:  # sorted ids: a binary search, then a check that the id is there
            at = np.minimum(np.searchsorted(values, ids), len(values) - 1)
            at = np.where(values[at] == ids, at, -1)
    else:
        at = account_index.get_indexer(ids)
    _fail_at(table, frame, at < 0, "account", "unknown account (not in table 'accounts')")
    return at


def _duplicated(*keys: np.ndarray) -> np.ndarray:
    """True at every row whose key repeats an earlier row's."""
    if not keys[0].size:
        return np.zeros(0, bool)
    spans = [int(k.max()) - int(k.min()) + 1 for k in keys] if all(k.dtype.kind in "iu" for k in keys) else None
    if spans is not None and math.prod(spans) < 2 ** 62:  # integer codes: one int64 key, hashed once
        combined = np.zeros(keys[0].size, np.int64)
        for k, span in zip(keys, spans):
            combined = combined * span + (k.astype(np.int64) - int(k.min()))
        return pd.Index(combined).duplicated()
    if len(keys) == 1:
        return pd.Index(keys[0]).duplicated()
    return pd.DataFrame({i: k for i, k in enumerate(keys)}).duplicated().to_numpy()


def _require(frames, table: str) -> pd.DataFrame:
    if table not in frames:
        raise BookFormatError(f"the book has no {table!r} table (tables: {sorted(frames)})")
    frame = frames[table]
    if not isinstance(frame, pd.DataFrame):
        raise BookFormatError(f"table {table!r} must be a pandas DataFrame, not {type(frame).__name__}")
    missing = [c for c in SCHEMA[table] if c not in frame.columns]
    fill = {c: OPTIONAL_COLUMNS.get(table, {})[c] for c in missing if c in OPTIONAL_COLUMNS.get(table, {})}
    if fill:
        frame = frame.assign(**fill)
        missing = [c for c in missing if c not in fill]
    if missing:
        raise BookFormatError(f"table {table!r} lacks column(s) {missing}")
    return frame[list(SCHEMA[table])].reset_index(drop=True)


def _category(codes: np.ndarray, categories) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8 if len(categories) < 127 else np.int32),
                                     categories=list(categories))


def _opt_str(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


@dataclass(eq=False)
class BookTable:
    """A validated columnar book (see the module docstring for the tables).

    Build one with :meth:`from_frames` (validates), :meth:`read_parquet`,
    :meth:`from_arrow`, ``Book.to_table()`` or
    :func:`riskcore.populations.generate_population_table`.  The frames are treated
    as immutable: methods that change something return a new table.
    """
    default_leverage: float
    fees_collected: float
    next_order_id: int
    contracts: pd.DataFrame
    brackets: pd.DataFrame
    accounts: pd.DataFrame
    settings: pd.DataFrame
    positions: pd.DataFrame
    orders: pd.DataFrame
    bracket_tables: dict = field(default_factory=dict, repr=False)  # symbol -> Brackets

    # ------------------------------------------------------------ construction
    @classmethod
    def from_frames(cls, frames) -> "BookTable":
        """Validate the tables (a mapping of table name to DataFrame) and return them in
        canonical dtypes.  Raises :class:`BookFormatError` naming table, row and column."""
        if isinstance(frames, BookTable):
            return frames
        meta = _require(frames, "meta")
        if len(meta) != 1:
            raise BookFormatError(f"table 'meta' must have exactly one row, not {len(meta)}")
        version = _numbers("meta", meta, "format_version")
        if version[0] != FORMAT_VERSION:
            _fail_at("meta", meta, np.ones(1, bool), "format_version", f"this riskcore reads format {FORMAT_VERSION}")
        default_leverage = float(_numbers("meta", meta, "default_leverage", 1.0)[0])
        fees_collected = float(_numbers("meta", meta, "fees_collected")[0])
        next_order_id = int(_numbers("meta", meta, "next_order_id", 1.0)[0])

        contracts, brackets, tables = _contracts(frames)
        symbols = contracts["contract"].tolist()
        top = np.array([float(tables[s].max_leverage[0]) for s in symbols] + [np.inf])

        acc = _require(frames, "accounts")
        ids = _ids("accounts", acc, "account")
        _fail_at("accounts", acc, _duplicated(ids), "account", "listed twice")
        wallet = _numbers("accounts", acc, "wallet")
        pmode = _words("accounts", acc, "position_mode", "position_mode")
        accounts = pd.DataFrame({"account": ids, "wallet": wallet,
                                 "position_mode": _category(pmode, POSITION_MODES)})
        index = pd.Index(ids)
        hedge = pmode == 1

        st = _require(frames, "settings")
        s_acc = _lookup("settings", st, _ids("settings", st, "account"), index)
        s_c = _symbols("settings", st, symbols)
        _fail_at("settings", st, _duplicated(s_acc, s_c), "contract", "settings listed twice for this account")
        s_mode = _words("settings", st, "margin_mode", "margin_mode")
        lev_l = _numbers("settings", st, "leverage_long", 1.0)
        lev_s = _numbers("settings", st, "leverage_short", 1.0)
        auto_l = _flags("settings", st, "auto_add_long")
        auto_s = _flags("settings", st, "auto_add_short")
        one_way = ~hedge[s_acc]
        cross = s_mode == 0
        _fail_at("settings", st, (one_way | cross) & (lev_l != lev_s), "leverage_short",
                 "must equal leverage_long in one-way mode and under cross margin")
        _fail_at("settings", st, one_way & (auto_l != auto_s), "auto_add_short",
                 "must equal auto_add_long in one-way mode")
        _fail_at("settings", st, cross & (auto_l | auto_s), "auto_add_long",
                 "auto add-margin applies to isolated margin only")
        for col, lev in (("leverage_long", lev_l), ("leverage_short", lev_s)):
            over = lev > top[s_c]
            if over.any():
                i = int(np.argmax(over))
                _fail_at("settings", st, over, col,
                         f"above the {symbols[s_c[i]]} brackets' highest max leverage {top[s_c[i]]:g}")
        settings = pd.DataFrame({"account": accounts["account"].to_numpy()[s_acc],
                                 "contract": _category(s_c, symbols), "margin_mode": _category(s_mode, MARGIN_MODES),
                                 "leverage_long": lev_l, "leverage_short": lev_s, "auto_add_long": auto_l,
                                 "auto_add_short": auto_s})
        # (account row, contract) -> settings row, for the positions' and orders' checks
        n_c = len(symbols)
        setting_key = pd.Index(s_acc.astype(np.int64) * max(n_c, 1) + s_c)

        pos = _require(frames, "positions")
        p_acc = _lookup("positions", pos, _ids("positions", pos, "account"), index)
        p_c = _symbols("positions", pos, symbols)
        p_leg = _words("positions", pos, "leg", "leg")
        p_side = _sides("positions", pos)
        _check_legs("positions", pos, p_leg, hedge[p_acc], "a position", accounts["account"].to_numpy()[p_acc])
        leg_side = np.where(p_leg == 1, 1, -1)
        wrong = (p_leg != 0) & (p_side != leg_side)
        if wrong.any():
            i = int(np.argmax(wrong))
            _fail_at("positions", pos, wrong, "side", f"the {LEGS[p_leg[i]]} leg has side {leg_side[i]}")
        _fail_at("positions", pos, _duplicated(p_acc, p_c, p_leg), "leg",
                 "a second position on the same account, contract and leg")
        p_set = setting_key.get_indexer(p_acc.astype(np.int64) * max(n_c, 1) + p_c)
        _fail_at("positions", pos, p_set < 0, "contract", "a position needs a row in table 'settings'")
        # any finite number: funding may take an isolated wallet below zero (MARGIN_RULES.md section 7)
        wallet_iso = _numbers("positions", pos, "wallet_iso")
        _fail_at("positions", pos, (s_mode[p_set] == 0) & (wallet_iso != 0.0), "wallet_iso",
                 "a cross position has no isolated wallet (must be 0)")
        positions = pd.DataFrame({
            "account": accounts["account"].to_numpy()[p_acc], "contract": _category(p_c, symbols),
            "leg": _category(p_leg, LEGS), "side": p_side,
            "qty": _numbers("positions", pos, "qty", 0.0, strict=True),
            "entry_price": _numbers("positions", pos, "entry_price", 0.0, strict=True),
            "wallet_iso": wallet_iso,
            "take_profit": _numbers("positions", pos, "take_profit", 0.0, strict=True, optional=True),
            "stop_loss": _numbers("positions", pos, "stop_loss", 0.0, strict=True, optional=True)})

        od = _require(frames, "orders")
        o_acc = _lookup("orders", od, _ids("orders", od, "account"), index)
        o_c = _symbols("orders", od, symbols)
        o_id = _numbers("orders", od, "order_id")
        _fail_at("orders", od, (o_id != np.round(o_id)) | (o_id < 1) | (o_id >= next_order_id), "order_id",
                 f"must be an int from 1 to next_order_id - 1 = {next_order_id - 1}")
        o_id = o_id.astype(np.int64)
        _fail_at("orders", od, _duplicated(o_id), "order_id", "listed twice")
        o_leg = _words("orders", od, "leg", "leg")
        _check_legs("orders", od, o_leg, hedge[o_acc], "an order", accounts["account"].to_numpy()[o_acc])
        o_side = _sides("orders", od, "must be +1 (buy) or -1 (sell)")
        o_set = setting_key.get_indexer(o_acc.astype(np.int64) * max(n_c, 1) + o_c)
        _fail_at("orders", od, o_set < 0, "contract", "an order needs a row in table 'settings'")
        orders = pd.DataFrame({
            "order_id": o_id, "account": accounts["account"].to_numpy()[o_acc], "contract": _category(o_c, symbols),
            "leg": _category(o_leg, LEGS), "side": o_side,
            "qty": _numbers("orders", od, "qty", 0.0, strict=True),
            "price": _numbers("orders", od, "price", 0.0, strict=True),
            "reduce_only": _flags("orders", od, "reduce_only")})
        return cls(default_leverage, fees_collected, next_order_id, contracts, brackets, accounts, settings,
                   positions, orders, tables)

    @classmethod
    def from_arrow(cls, tables: dict) -> "BookTable":
        return cls.from_frames({name: t.to_pandas() for name, t in tables.items()})

    @classmethod
    def read_parquet(cls, directory) -> "BookTable":
        """Read a folder written by :meth:`write_parquet` (one file per table) and validate it."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"no book folder at {directory}")
        frames = {}
        for name in TABLES:
            path = directory / f"{name}.parquet"
            if not path.exists():
                raise BookFormatError(f"{directory}: missing {name}.parquet")
            try:
                frames[name] = pq.read_table(path).to_pandas()
            except (pa.ArrowException, OSError) as exc:
                raise BookFormatError(f"{path}: not a readable Parquet file ({exc})") from None
        return cls.from_frames(frames)

    # ------------------------------------------------------------------ views
    @property
    def symbols(self) -> list[str]:
        return self.contracts["contract"].tolist()

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    @property
    def n_positions(self) -> int:
        return len(self.positions)

    @property
    def n_orders(self) -> int:
        return len(self.orders)

    def marks(self) -> dict:
        """Symbol -> mark price (None when unknown)."""
        return {s: (None if math.isnan(m) else float(m))
                for s, m in zip(self.contracts["contract"], self.contracts["mark_price"])}

    def with_marks(self, marks: dict) -> "BookTable":
        """The same table with the contracts' marks replaced where ``marks`` names them."""
        contracts = self.contracts.copy()
        contracts["mark_price"] = [float(marks.get(s, m)) if marks.get(s, m) is not None else np.nan
                                   for s, m in zip(contracts["contract"], contracts["mark_price"])]
        return self.replace(contracts=contracts)

    def replace(self, **tables) -> "BookTable":
        """A new table with some fields replaced (not re-validated: callers keep it valid)."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        values.update(tables)
        return BookTable(**values)

    def meta_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"format_version": np.array([FORMAT_VERSION], np.int64),
                             "default_leverage": [float(self.default_leverage)],
                             "fees_collected": [float(self.fees_collected)],
                             "next_order_id": np.array([self.next_order_id], np.int64)})

    def frames(self, plain: bool = False) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame, ``meta`` included (the order of :data:`TABLES`).

        ``plain=True`` gives the word and symbol columns as ordinary strings (object
        dtype) instead of categoricals: easier to edit by hand, heavier for big tables."""
        out = {"meta": self.meta_frame(), "contracts": self.contracts, "brackets": self.brackets,
               "accounts": self.accounts, "settings": self.settings, "positions": self.positions,
               "orders": self.orders}
        if plain:
            for name, frame in out.items():
                cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
                        or (c == "account" and frame[c].dtype != np.int64)]
                if cats:
                    frame = frame.copy()
                    for c in cats:
                        frame[c] = pd.Series(frame[c].to_numpy(object), dtype=object)
                    out[name] = frame
        return out

    def to_arrow(self) -> dict[str, pa.Table]:
        return {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in self.frames().items()}

    def write_parquet(self, directory) -> None:
        """Write each table to ``directory/<table>.parquet``.  The files are written to a
        temporary folder first and moved into place together, so a failure leaves the old
        folder as it was; a folder holding anything else is refused."""
        write_parquet(self.frames(), directory)

    def __eq__(self, other) -> bool:
        if not isinstance(other, BookTable):
            return NotImplemented
        mine, theirs = self.frames(), other.frames()
        return all(mine[t].equals(theirs[t]) for t in TABLES)

    def __repr__(self) -> str:
        return (f"<BookTable: {len(self.contracts)} contracts, {self.n_accounts:,} accounts, "
                f"{self.n_positions:,} positions, {self.n_orders:,} resting orders>")


def _contracts(frames) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    con = _require(frames, "contracts")
    br = _require(frames, "brackets")
    raw = con["contract"].astype(object).to_numpy() if len(con) else np.zeros(0, object)
    bad = np.fromiter((not (isinstance(v, str) and v) for v in raw), bool, raw.size)
    _fail_at("contracts", con, bad, "contract", "a contract symbol is a non-empty string")
    _fail_at("contracts", con, _duplicated(raw), "contract", "listed twice")
    maker = _numbers("contracts", con, "maker_fee")
    taker = _numbers("contracts", con, "taker_fee")
    for col, fee in (("maker_fee", maker), ("taker_fee", taker)):
        _fail_at("contracts", con, ~((fee > -0.01) & (fee < 0.1)), col,
                 "not a plausible fee rate (a fraction, e.g. 0.0005)")
    mark = _numbers("contracts", con, "mark_price", 0.0, strict=True, optional=True)
    venues = _venues(con)
    symbols = [str(s) for s in raw]
    br_contract = br["contract"].astype(object).to_numpy() if len(br) else np.zeros(0, object)
    tier = _numbers("brackets", br, "tier")
    tables, rows = {}, []
    for symbol in symbols:
        at = np.flatnonzero(br_contract == symbol)
        if not at.size:
            _fail_at("contracts", con, np.array([s == symbol for s in symbols]), "contract",
                     "has no rows in table 'brackets'")
        at = at[np.argsort(tier[at], kind="stable")]
        part = br.iloc[at]
        try:
            b = Brackets(*(part[c].to_numpy() for c in BRACKET_COLUMNS), symbol=symbol,
                         effective_date=_opt_str(part["effective_date"].iloc[0]),
                         source=_opt_str(part["source"].iloc[0]))
        except (BracketError, TypeError, ValueError) as exc:
            raise BookFormatError(f"table 'brackets', contract {symbol!r}: {exc}") from None
        tables[symbol] = b
        rows.append(_bracket_frame(b, symbol))
    extra = sorted({str(v) for v in br_contract} - set(symbols))
    if extra:
        raise BookFormatError(f"table 'brackets' has rows for contract(s) not in 'contracts': {extra}")
    for symbol, venue, fee in zip(symbols, venues, taker):  # the profile's MM table must be valid too
        try:
            venue_profile(venue).maintenance_brackets(tables[symbol], float(fee))
        except BracketError as exc:
            raise BookFormatError(f"table 'contracts', contract {symbol!r}, column 'venue': {exc}") from None
    contracts = pd.DataFrame({"contract": pd.Series(symbols, dtype=object), "maker_fee": maker, "taker_fee": taker,
                              "mark_price": mark, "venue": pd.Series(venues, dtype=object)})
    brackets = pd.concat(rows, ignore_index=True) if rows else _empty("brackets")
    return contracts, brackets, tables


def _venues(con: pd.DataFrame) -> list[str]:
    """The ``venue`` column as canonical profile names (a missing value is the default)."""
    from .venues.profiles import DEFAULT_VENUE, PROFILES

    out = []
    for i, v in enumerate(con["venue"].to_numpy(object)):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(DEFAULT_VENUE)
            continue
        key = v.strip().lower() if isinstance(v, str) else None
        if key not in PROFILES:
            raise BookFormatError(f"table 'contracts' row {i}, column 'venue': unknown venue {v!r}; "
                                  f"venue profiles: {list(PROFILES)}")
        out.append(key)
    return out


def venue_profile(venue):
    from .venues.profiles import profile
    return profile(venue)


def _bracket_frame(b: Brackets, symbol: str) -> pd.DataFrame:
    n = b.n_tiers
    return pd.DataFrame({"contract": pd.Series([symbol] * n, dtype=object), "tier": np.arange(1, n + 1),
                         **{c: np.asarray(getattr(b, c), np.float64) for c in BRACKET_COLUMNS},
                         "effective_date": pd.Series([b.effective_date] * n, dtype=object),
                         "source": pd.Series([b.source] * n, dtype=object)})


def _check_legs(table: str, frame: pd.DataFrame, leg: np.ndarray, hedge: np.ndarray, what: str,
                account: np.ndarray) -> None:
    bad = ~hedge & (leg != 0)
    if bad.any():
        i = int(np.argmax(bad))
        _fail_at(table, frame, bad, "leg", f"account {account[i]!r} is one-way: {what} has leg 'both'")
    bad = hedge & (leg == 0)
    if bad.any():
        i = int(np.argmax(bad))
        _fail_at(table, frame, bad, "leg", f"account {account[i]!r} is in hedge mode: {what} names leg 'long' "
                                           "or 'short'")


def _empty(table: str, symbols=()) -> pd.DataFrame:
    def column(kind):
        if kind == "symbol":
            return pd.Categorical([], categories=list(symbols))
        if kind in _WORDS:
            return pd.Categorical([], categories=list(_WORDS[kind]))
        return pd.Series([], dtype="int64" if kind == "id" else kind)
    return pd.DataFrame({c: column(t) for c, t in SCHEMA[table].items()})


def empty_frames(symbols=()) -> dict[str, pd.DataFrame]:
    """Empty tables in canonical dtypes (contracts ``symbols`` for the symbol columns)."""
    return {name: _empty(name, symbols) for name in TABLES}


def contract_frames(contracts: dict, marks: dict | None = None, maker_fee: float = 0.0002,
                    taker_fee: float = 0.0005, venues: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``contracts`` and ``brackets`` tables for ``{symbol: Brackets}``, with uniform fees and
    each contract's venue profile (``venues``: ``{symbol: name}``, default binance)."""
    marks = marks or {}
    venues = venues or {}
    symbols = list(contracts)
    frame = pd.DataFrame({"contract": pd.Series(symbols, dtype=object),
                          "maker_fee": np.full(len(symbols), float(maker_fee)),
                          "taker_fee": np.full(len(symbols), float(taker_fee)),
                          "mark_price": [float(marks[s]) if marks.get(s) is not None else np.nan for s in symbols],
                          "venue": pd.Series([venues.get(s, "binance") for s in symbols], dtype=object)})
    brackets = pd.concat([_bracket_frame(contracts[s], s) for s in symbols], ignore_index=True) if symbols \
        else _empty("brackets")
    return frame, brackets


# ------------------------------------------------------------------ Parquet
def write_parquet(frames: dict[str, pd.DataFrame], directory) -> None:
    """Write each table to ``directory/<table>.parquet``, all or nothing."""
    target = Path(directory)
    if target.exists():
        ours = {f"{name}.parquet" for name in TABLES}
        foreign = sorted(p.name for p in target.iterdir() if p.name not in ours) if target.is_dir() else [target.name]
        if foreign:
            raise BookFormatError(f"{target} holds other files ({foreign[:3]}); write the book to its own folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, frame in frames.items():
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet")
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
