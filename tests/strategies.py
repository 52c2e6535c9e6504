"""Hypothesis strategies shared by the simulation tests: random books, paths and tapes (bounded)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from riskcore import Book, Brackets, Refused

CONTRACTS = ("BTCUSDT", "ETHUSDT")
TIERS = [
    {"notional_floor": 0, "notional_cap": 2_000, "mmr": 0.01, "max_leverage": 50},
    {"notional_floor": 2_000, "notional_cap": 10_000, "mmr": 0.025, "max_leverage": 20},
    {"notional_floor": 10_000, "notional_cap": 1e12, "mmr": 0.05, "max_leverage": 10},
]
START = 100.0


def base_book(venues=None) -> Book:
    """``venues``: ``{symbol: venue profile}`` (default binance)."""
    book = Book()
    for symbol in CONTRACTS:
        book.add_contract(symbol, Brackets.from_records(TIERS, symbol=symbol), maker_fee=0.0002,
                          taker_fee=0.0005, mark_price=START, venue=(venues or {}).get(symbol, "binance"))
    return book


position_spec = st.tuples(
    st.sampled_from(CONTRACTS),
    st.sampled_from(["buy", "sell"]),
    st.floats(0.5, 40.0),  # qty
    st.floats(85.0, 115.0),  # entry price
)
account_spec = st.tuples(
    st.sampled_from(["one-way", "hedge"]),
    st.sampled_from(["cross", "isolated"]),  # BTCUSDT margin mode
    st.sampled_from(["cross", "isolated"]),  # ETHUSDT margin mode
    st.sampled_from([2, 5, 10, 20]),  # leverage
    st.booleans(),  # auto-add on isolated
    st.floats(50.0, 3_000.0),  # wallet
    st.lists(position_spec, min_size=0, max_size=3),
    st.lists(st.tuples(st.sampled_from(CONTRACTS), st.sampled_from(["buy", "sell"]), st.floats(0.5, 10.0),
                       st.floats(80.0, 120.0)), max_size=1),  # resting limit orders
)
book_specs = st.lists(account_spec, min_size=1, max_size=5)


def build_book(specs, order=None, venues=None) -> Book:
    """A book from account specs; ``order`` permutes the order in which accounts are added;
    ``venues`` names each contract's venue profile (default binance).
    Actions the book refuses are skipped (they are part of the randomness)."""
    book = base_book(venues)
    indices = list(range(len(specs))) if order is None else list(order)
    for i in indices:
        pmode, btc_mode, eth_mode, lev, auto, wallet, positions, orders = specs[i]
        a = i + 1
        book.add_account(a, wallet=wallet, position_mode=pmode)
        for symbol, mode in zip(CONTRACTS, (btc_mode, eth_mode)):
            book.set_margin_mode(a, symbol, mode)
            try:
                book.set_leverage(a, symbol, lev)
            except Refused:
                pass
            if mode == "isolated" and auto:
                book.set_auto_add_margin(a, symbol, True)
        for symbol, side, qty, price in positions:
            leg = None if pmode == "one-way" else ("long" if side == "buy" else "short")
            try:
                book.market_order(a, symbol, side, qty, price, leg=leg, marks={s: START for s in CONTRACTS})
            except Refused:
                pass
        for symbol, side, qty, price in orders:
            leg = None if pmode == "one-way" else ("long" if side == "buy" else "short")
            try:
                book.limit_order(a, symbol, side, qty, price, leg=leg)
            except Refused:
                pass
    book.set_marks({s: START for s in CONTRACTS})
    return book


bar_spec = st.tuples(
    st.floats(-0.12, 0.12),  # close / open - 1
    st.floats(0.0, 0.25),  # extra dip below min(open, close), as a fraction
    st.floats(0.0, 0.25),  # extra spike above max(open, close)
    st.floats(-0.15, 0.15),  # gap of the open from the previous close
)
path_specs = st.lists(st.tuples(bar_spec, bar_spec), min_size=1, max_size=8)


def build_paths(spec) -> dict[str, pd.DataFrame]:
    stamps = pd.date_range("2025-01-01", periods=len(spec), freq="1min")
    out = {}
    for c, symbol in enumerate(CONTRACTS):
        rows, close = [], START
        for bars in spec:
            ret, dip, spike, gap = bars[c]
            o = close * (1 + gap)
            cl = o * (1 + ret)
            lo = min(o, cl) * (1 - dip)
            hi = max(o, cl) * (1 + spike)
            rows.append((o, hi, lo, cl))
            close = cl
        frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
        frame.insert(0, "timestamp", stamps)
        out[symbol] = frame
    return out


tape_entry = st.one_of(
    st.tuples(st.just("market"), st.integers(1, 5), st.sampled_from(CONTRACTS), st.sampled_from(["buy", "sell"]),
              st.floats(0.5, 20.0)),
    st.tuples(st.just("deposit"), st.integers(1, 5), st.floats(10.0, 500.0)),
    st.tuples(st.just("withdraw"), st.integers(1, 5), st.floats(10.0, 500.0)),
    st.tuples(st.just("add_margin"), st.integers(1, 5), st.sampled_from(CONTRACTS), st.floats(10.0, 200.0)),
)
tape_specs = st.lists(st.tuples(st.integers(0, 7), tape_entry), max_size=6)


def build_tape(spec, book: Book) -> list[dict]:
    rows = []
    for step, entry in spec:
        ts = pd.Timestamp("2025-01-01") + pd.Timedelta(minutes=step)
        kind, acct = entry[0], entry[1]
        if acct not in book.accounts:
            continue
        hedge = book.accounts[acct].position_mode == 1
        if kind == "market":
            _, _, symbol, side, qty = entry
            leg = ("long" if side == "buy" else "short") if hedge else None
            rows.append({"timestamp": ts, "action": "market", "account": acct, "contract": symbol, "side": side,
                         "qty": qty, "leg": leg})
        elif kind in ("deposit", "withdraw"):
            rows.append({"timestamp": ts, "action": kind, "account": acct, "amount": entry[2]})
        else:
            leg = "long" if hedge else None
            rows.append({"timestamp": ts, "action": kind, "account": acct, "contract": entry[2],
                         "amount": entry[3], "leg": leg})
    return rows


funding_specs = st.lists(st.tuples(st.integers(0, 7), st.floats(-0.003, 0.003)), max_size=3)


def build_funding(spec) -> dict[str, pd.DataFrame] | None:
    if not spec:
        return None
    stamps = [pd.Timestamp("2025-01-01") + pd.Timedelta(minutes=m) for m, _ in spec]
    rates = [r for _, r in spec]
    return {symbol: pd.DataFrame({"timestamp": stamps, "rate": rates}) for symbol in CONTRACTS}


def event_key(events: pd.DataFrame) -> list[tuple]:
    """Events as comparable tuples (kind, account, contract, leg, step, point) with money rounded."""
    cols = ["step", "point", "account", "contract", "leg", "kind", "qty", "price", "amount", "wallet"]
    out = []
    for row in events[cols].itertuples(index=False):
        out.append(tuple((None if np.isnan(v) else round(float(v), 6)) if isinstance(v, float) else v
                         for v in row))
    return out


# ---------------------------------------------------- tapes of every action kind
# Values the Book takes and values it refuses (unknown account 9 and contract XRPUSDT, bad
# words, non-positive or non-numeric amounts), so that every refusal can come up.
_accounts = st.sampled_from([1, 2, 3, 4, 5] * 3 + [9])
_contracts = st.sampled_from(list(CONTRACTS) * 6 + ["XRPUSDT"])
_sides = st.sampled_from(["buy", "sell"] * 4 + ["long", -1, "up"])
# "auto": the leg the account's position mode wants (see build_any_tape), most of the time
_legs = st.sampled_from(["auto"] * 16 + [None, "long", "short", "both", "middle"])
_qtys = st.one_of(*[st.floats(0.1, 30.0)] * 8, st.sampled_from([0.0, -1.0, "abc"]))
_prices = st.one_of(*[st.floats(70.0, 130.0)] * 8, st.sampled_from([0.0, "x"]))
_amounts = st.one_of(*[st.floats(1.0, 1_500.0)] * 8, st.sampled_from([0.0, -5.0]))
_triggers = st.one_of(st.none(), st.floats(50.0, 150.0), st.floats(50.0, 150.0), st.sampled_from(["clear", -3.0, "high"]))
_tags = st.sampled_from(["a", "b", "c"])


def _row(action: str, **fields):
    return st.fixed_dictionaries({"action": st.just(action), **fields})


_market = _row("market", account=_accounts, contract=_contracts, side=_sides, qty=_qtys, leg=_legs,
               reduce_only=st.sampled_from([None, None, True]))
_limit = _row("limit", account=_accounts, contract=_contracts, side=_sides, qty=_qtys, price=_prices, leg=_legs,
              reduce_only=st.sampled_from([None, None, True]), tag=st.one_of(st.none(), _tags))
any_action = st.one_of(
    _market, _market, _market, _limit, _limit, _limit,
    _row("cancel", tag=_tags),
    _row("cancel", order_id=st.integers(1, 12)),
    _row("add_margin", account=_accounts, contract=_contracts, amount=_amounts, leg=_legs),
    _row("remove_margin", account=_accounts, contract=_contracts, amount=_amounts, leg=_legs),
    _row("set_leverage", account=_accounts, contract=_contracts, leg=_legs,
         leverage=st.sampled_from([1, 2, 5, 10, 20, 25, 50, 100, 0.5])),
    _row("set_margin_mode", account=_accounts, contract=_contracts,
         mode=st.sampled_from(["cross", "isolated", "isolated", "sideways"])),
    _row("set_position_mode", account=_accounts, mode=st.sampled_from(["one-way", "hedge", "hedge", "circular"])),
    _row("set_auto_add_margin", account=_accounts, contract=_contracts, leg=_legs, enabled=st.booleans()),
    _row("set_tp_sl", account=_accounts, contract=_contracts, leg=_legs, take_profit=_triggers,
         stop_loss=_triggers),
    _row("deposit", account=_accounts, amount=_amounts),
    _row("withdraw", account=_accounts, amount=_amounts),
)
any_tape_specs = st.lists(st.tuples(st.integers(0, 3), any_action), max_size=25)


def build_any_tape(spec, book: Book | None = None) -> list[dict]:
    """Tape rows (with timestamps one minute apart, as :func:`build_paths`) from ``any_tape_specs``;
    optional fields drawn as None are left out.  A leg drawn as "auto" is the one the
    account's position mode in ``book`` wants (hedge: the side's leg; one-way: none)."""
    rows = []
    for step, entry in spec:
        row = {"timestamp": pd.Timestamp("2025-01-01") + pd.Timedelta(minutes=step)}
        row.update({k: v for k, v in entry.items() if v is not None})
        if row.get("leg") == "auto":
            acct = book.accounts.get(row.get("account")) if book is not None else None
            if acct is not None and acct.position_mode == 1:
                row["leg"] = "short" if row.get("side") == "sell" else "long"
            else:
                del row["leg"]
        rows.append(row)
    return rows
