"""The book's columnar form: one table per kind of record.

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
These tables are what the simulators read; :func:`book_from_frames` validates them
and names the table, row and column of anything wrong.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .brackets import COLUMNS as BRACKET_COLUMNS, Brackets
from .enums import (LEG_NAMES, MARGIN_MODE_NAMES, POSITION_MODE_NAMES, Leg, MarginMode, PositionMode,
                    parse_leg, parse_margin_mode, parse_position_mode)
from .errors import BracketError, RiskcoreError

FORMAT_VERSION = 1

SCHEMA: dict[str, dict[str, str]] = {
    "meta": {"format_version": "int64", "default_leverage": "float64", "fees_collected": "float64",
             "next_order_id": "int64"},
    "contracts": {"contract": "object", "maker_fee": "float64", "taker_fee": "float64",
                  "mark_price": "float64"},
    "brackets": {"contract": "object", "tier": "int64", **{c: "float64" for c in BRACKET_COLUMNS},
                 "effective_date": "object", "source": "object"},
    "accounts": {"account": "object", "wallet": "float64", "position_mode": "object"},
    "settings": {"account": "object", "contract": "object", "margin_mode": "object",
                 "leverage_long": "float64", "leverage_short": "float64", "auto_add_long": "bool",
                 "auto_add_short": "bool"},
    "positions": {"account": "object", "contract": "object", "leg": "object", "side": "int8",
                  "qty": "float64", "entry_price": "float64", "wallet_iso": "float64",
                  "take_profit": "float64", "stop_loss": "float64"},
    "orders": {"order_id": "int64", "account": "object", "contract": "object", "leg": "object",
               "side": "int8", "qty": "float64", "price": "float64", "reduce_only": "bool"},
}


class BookFormatError(RiskcoreError, ValueError):
    """A columnar book is malformed; the message names the table, row and column."""


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    cols = SCHEMA[table]
    data = {c: pd.Series([r[c] for r in rows], dtype=dtype) for c, dtype in cols.items()}
    return pd.DataFrame(data, columns=list(cols))


def _nan(value):
    return np.nan if value is None else value


def book_to_frames(book) -> dict[str, pd.DataFrame]:
    """The book as a dict of DataFrames, one per table above."""
    frames = {
        "meta": _frame("meta", [{"format_version": FORMAT_VERSION, "default_leverage": book.default_leverage,
                                 "fees_collected": book.fees_collected, "next_order_id": book.next_order_id}]),
        "contracts": _frame("contracts", [
            {"contract": c.symbol, "maker_fee": c.maker_fee, "taker_fee": c.taker_fee,
             "mark_price": _nan(c.mark_price)} for c in book.contracts.values()]),
    }
    bracket_rows = []
    for c in book.contracts.values():
        b = c.brackets
        for i in range(b.n_tiers):
            bracket_rows.append({"contract": c.symbol, "tier": i + 1,
                                 **{col: float(getattr(b, col)[i]) for col in BRACKET_COLUMNS},
                                 "effective_date": b.effective_date, "source": b.source})
    frames["brackets"] = _frame("brackets", bracket_rows)
    accounts, settings, positions, orders = [], [], [], []
    for acct in book.accounts.values():
        accounts.append({"account": acct.account_id, "wallet": acct.wallet,
                         "position_mode": POSITION_MODE_NAMES[acct.position_mode]})
        for symbol, st in acct.settings.items():
            settings.append({"account": acct.account_id, "contract": symbol,
                             "margin_mode": MARGIN_MODE_NAMES[st.margin_mode],
                             "leverage_long": st.leverage_long, "leverage_short": st.leverage_short,
                             "auto_add_long": st.auto_add_long, "auto_add_short": st.auto_add_short})
        for pos in acct.positions.values():
            positions.append({"account": acct.account_id, "contract": pos.contract, "leg": LEG_NAMES[pos.leg],
                              "side": pos.side, "qty": pos.qty, "entry_price": pos.entry_price,
                              "wallet_iso": pos.wallet_iso, "take_profit": _nan(pos.take_profit),
                              "stop_loss": _nan(pos.stop_loss)})
        for o in acct.orders.values():
            orders.append({"order_id": o.order_id, "account": acct.account_id, "contract": o.contract,
                           "leg": LEG_NAMES[o.leg], "side": o.side, "qty": o.qty, "price": o.price,
                           "reduce_only": o.reduce_only})
    frames["accounts"] = _frame("accounts", accounts)
    frames["settings"] = _frame("settings", settings)
    frames["positions"] = _frame("positions", positions)
    frames["orders"] = _frame("orders", orders)
    return frames


# ------------------------------------------------------------------ reading back
class _Rows:
    """Row access with errors that name table, row and column."""

    def __init__(self, frames: dict, table: str):
        if table not in frames:
            raise BookFormatError(f"the book has no {table!r} table (tables: {sorted(frames)})")
        frame = frames[table]
        missing = [c for c in SCHEMA[table] if c not in frame.columns]
        if missing:
            raise BookFormatError(f"table {table!r} lacks column(s) {missing}")
        self.table = table
        self.records = frame[list(SCHEMA[table])].to_dict("records")

    def __iter__(self):
        for i, rec in enumerate(self.records):
            yield _Row(self.table, i, rec)


class _Row:
    def __init__(self, table, index, rec):
        self.table, self.index, self.rec = table, index, rec

    def fail(self, column: str, why: str):
        raise BookFormatError(f"table {self.table!r} row {self.index}, column {column!r}: {why} "
                              f"(value {self.rec.get(column)!r})")

    def id(self, column: str):
        v = self.rec[column]
        if isinstance(v, (bool, np.bool_)):
            self.fail(column, "an id must be an int or a str")
        if isinstance(v, (np.integer, int)):
            return int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str) and v:
            return str(v)
        self.fail(column, "an id must be an int or a non-empty str")

    def num(self, column: str, low: float | None = None, *, strict: bool = False, optional: bool = False):
        v = self.rec[column]
        try:
            f = float(v)
        except (TypeError, ValueError):
            self.fail(column, "not a number")
        if math.isnan(f) and optional:
            return None
        if not math.isfinite(f):
            self.fail(column, "not a finite number")
        if low is not None and (f <= low if strict else f < low):
            self.fail(column, f"must be {'>' if strict else '>='} {low:g}")
        return f

    def flag(self, column: str) -> bool:
        v = self.rec[column]
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        self.fail(column, "must be true or false")

    def code(self, column: str, parse):
        try:
            return parse(self.rec[column])
        except ValueError as exc:
            self.fail(column, str(exc))


def book_from_frames(frames: dict[str, pd.DataFrame]):
    """Rebuild a :class:`~riskcore.book.Book` from its tables, validating them."""
    from .book import Account, Book, Contract, Order, Position, Settings

    meta = list(_Rows(frames, "meta"))
    if len(meta) != 1:
        raise BookFormatError(f"table 'meta' must have exactly one row, not {len(meta)}")
    m = meta[0]
    if m.num("format_version") != FORMAT_VERSION:
        m.fail("format_version", f"this riskcore reads format {FORMAT_VERSION}")
    book = Book(default_leverage=m.num("default_leverage", 1.0))
    book.fees_collected = m.num("fees_collected")
    next_order_id = int(m.num("next_order_id", 1.0))

    tiers: dict[str, list] = {}
    for r in _Rows(frames, "brackets"):
        tiers.setdefault(r.id("contract"), []).append(r)
    for r in _Rows(frames, "contracts"):
        symbol = r.id("contract")
        if not isinstance(symbol, str):
            r.fail("contract", "a contract symbol is a string")
        if symbol in book.contracts:
            r.fail("contract", "listed twice")
        rows = sorted(tiers.pop(symbol, []), key=lambda t: t.num("tier"))
        if not rows:
            r.fail("contract", "has no rows in table 'brackets'")
        first = rows[0].rec
        try:
            brackets = Brackets(*([t.rec[c] for t in rows] for c in BRACKET_COLUMNS),
                                symbol=symbol, effective_date=_opt_str(first["effective_date"]),
                                source=_opt_str(first["source"]))
        except BracketError as exc:
            raise BookFormatError(f"table 'brackets', contract {symbol!r}: {exc}") from None
        for col in ("maker_fee", "taker_fee"):
            if not -0.01 < r.num(col) < 0.1:
                r.fail(col, "not a plausible fee rate (a fraction, e.g. 0.0005)")
        book.contracts[symbol] = Contract(symbol, brackets, r.num("maker_fee"), r.num("taker_fee"),
                                          r.num("mark_price", 0.0, strict=True, optional=True))
    if tiers:
        raise BookFormatError(f"table 'brackets' has rows for contract(s) not in 'contracts': {sorted(tiers)}")

    def contract_of(row: _Row) -> str:
        symbol = row.id("contract")
        if symbol not in book.contracts:
            row.fail("contract", "unknown contract (not in table 'contracts')")
        return symbol

    def account_of(row: _Row) -> Account:
        account = row.id("account")
        if account not in book.accounts:
            row.fail("account", "unknown account (not in table 'accounts')")
        return book.accounts[account]

    for r in _Rows(frames, "accounts"):
        account = r.id("account")
        if account in book.accounts:
            r.fail("account", "listed twice")
        if book.accounts and type(account) is not type(next(iter(book.accounts))):
            r.fail("account", "account ids must all be ints or all be strs")
        book.accounts[account] = Account(account, r.num("wallet"), r.code("position_mode", parse_position_mode))

    for r in _Rows(frames, "settings"):
        acct, symbol = account_of(r), contract_of(r)
        if symbol in acct.settings:
            r.fail("contract", "settings listed twice for this account")
        st = Settings(r.code("margin_mode", parse_margin_mode), r.num("leverage_long", 1.0),
                      r.num("leverage_short", 1.0), r.flag("auto_add_long"), r.flag("auto_add_short"))
        if acct.position_mode == PositionMode.ONE_WAY or st.margin_mode == MarginMode.CROSS:
            if st.leverage_long != st.leverage_short:
                r.fail("leverage_short", "must equal leverage_long in one-way mode and under cross margin")
        if acct.position_mode == PositionMode.ONE_WAY and st.auto_add_long != st.auto_add_short:
            r.fail("auto_add_short", "must equal auto_add_long in one-way mode")
        if st.margin_mode == MarginMode.CROSS and (st.auto_add_long or st.auto_add_short):
            r.fail("auto_add_long", "auto add-margin applies to isolated margin only")
        top = float(book.contracts[symbol].brackets.max_leverage[0])
        for col in ("leverage_long", "leverage_short"):
            if getattr(st, col) > top:
                r.fail(col, f"above the {symbol} brackets' highest max leverage {top:g}")
        acct.settings[symbol] = st

    for r in _Rows(frames, "positions"):
        acct, symbol = account_of(r), contract_of(r)
        leg = r.code("leg", parse_leg)
        side = int(r.num("side"))
        if side not in (1, -1):
            r.fail("side", "must be +1 or -1")
        _check_leg(r, acct, leg, "a position")
        if leg != Leg.BOTH and side != (1 if leg == Leg.LONG else -1):
            r.fail("side", f"the {LEG_NAMES[leg]} leg has side {1 if leg == Leg.LONG else -1}")
        if (symbol, leg) in acct.positions:
            r.fail("leg", "a second position on the same account, contract and leg")
        if symbol not in acct.settings:
            r.fail("contract", "a position needs a row in table 'settings'")
        wallet_iso = r.num("wallet_iso", 0.0)
        if acct.settings[symbol].margin_mode == MarginMode.CROSS and wallet_iso != 0.0:
            r.fail("wallet_iso", "a cross position has no isolated wallet (must be 0)")
        acct.positions[(symbol, leg)] = Position(
            acct.account_id, symbol, leg, side, r.num("qty", 0.0, strict=True),
            r.num("entry_price", 0.0, strict=True), wallet_iso,
            r.num("take_profit", 0.0, strict=True, optional=True),
            r.num("stop_loss", 0.0, strict=True, optional=True))

    seen_ids = set()
    for r in _Rows(frames, "orders"):
        acct, symbol = account_of(r), contract_of(r)
        order_id = r.id("order_id")
        if not isinstance(order_id, int) or order_id < 1 or order_id >= next_order_id:
            r.fail("order_id", f"must be an int from 1 to next_order_id - 1 = {next_order_id - 1}")
        if order_id in seen_ids:
            r.fail("order_id", "listed twice")
        seen_ids.add(order_id)
        leg = r.code("leg", parse_leg)
        _check_leg(r, acct, leg, "an order")
        side = int(r.num("side"))
        if side not in (1, -1):
            r.fail("side", "must be +1 (buy) or -1 (sell)")
        if symbol not in acct.settings:
            r.fail("contract", "an order needs a row in table 'settings'")
        acct.orders[order_id] = Order(order_id, acct.account_id, symbol, leg, side,
                                      r.num("qty", 0.0, strict=True), r.num("price", 0.0, strict=True),
                                      r.flag("reduce_only"))
    book.next_order_id = next_order_id
    return book


def _check_leg(row: _Row, acct, leg: int, what: str) -> None:
    if acct.position_mode == PositionMode.ONE_WAY and leg != Leg.BOTH:
        row.fail("leg", f"account {acct.account_id!r} is one-way: {what} has leg 'both'")
    if acct.position_mode == PositionMode.HEDGE and leg == Leg.BOTH:
        row.fail("leg", f"account {acct.account_id!r} is in hedge mode: {what} names leg 'long' or 'short'")


def _opt_str(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


# ------------------------------------------------------------------ Arrow/Parquet
def frames_to_arrow(frames: dict[str, pd.DataFrame]) -> dict[str, pa.Table]:
    return {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in frames.items()}


def arrow_to_frames(tables: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:
    return {name: table.to_pandas() for name, table in tables.items()}


def write_parquet(frames: dict[str, pd.DataFrame], directory) -> None:
    """Write each table to ``directory/<table>.parquet``.  The files are written to a temporary
    folder first and moved into place together, so a failure leaves the old folder as it was."""
    target = Path(directory)
    if target.exists():
        ours = {f"{name}.parquet" for name in SCHEMA}
        foreign = sorted(p.name for p in target.iterdir() if p.name not in ours) if target.is_dir() else [target.name]
        if foreign:
            raise BookFormatError(f"{target} holds other files ({foreign[:3]}); write the book to its own folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, table in frames_to_arrow(frames).items():
            pq.write_table(table, tmp / f"{name}.parquet")
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


def read_parquet(directory) -> dict[str, pd.DataFrame]:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no book folder at {directory}")
    frames = {}
    for name in SCHEMA:
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise BookFormatError(f"{directory}: missing {name}.parquet")
        frames[name] = pq.read_table(path).to_pandas()
    return frames
