"""The account book: accounts, positions, resting orders and their margin settings.

``Book`` implements MARGIN_RULES.md sections 1 and 5 (settings, netting, orders) on
top of the formulas of :mod:`riskcore.margin`, and reads out every risk metric of
sections 3 and 4 at the current mark prices.  Every action either completes or is
refused with :class:`riskcore.Refused`, naming what stood in the way, and leaves the
book exactly as it was.

The book is the readable, object-per-position model that users edit, an editor over
the canonical columnar book (:class:`riskcore.table.BookTable`, :meth:`Book.to_table`
and :meth:`Book.from_table`), which is what the simulators and read-outs work on.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import margin as fm
from .brackets import Brackets
from .enums import (LEG_NAMES, MARGIN_MODE_NAMES, POSITION_MODE_NAMES, SIDE_NAMES, Leg, MarginMode,
                    PositionMode, parse_leg, parse_margin_mode, parse_position_mode, parse_side)
from .checks import LIMIT, check_amount as _check_amount, check_price as _check_price
from .errors import Refused
from .venues.profiles import DEFAULT_VENUE, Profile, profile as venue_profile
from .table import FORMAT_VERSION, SCHEMA as TABLE_SCHEMA, BookTable, _bracket_frame, empty_frames

DEFAULT_LEVERAGE = 20.0
BINANCE_MAKER_FEE = 0.0002
BINANCE_TAKER_FEE = 0.0005


def _money_tolerance(scale: float) -> float:
    """Slack for comparisons of money that went through a few float operations."""
    return 1e-9 * (1.0 + abs(scale))


# --------------------------------------------------------------------------- state
@dataclass
class Contract:
    """A linear perpetual: its brackets, fee rates and current mark price (None until known)."""
    symbol: str
    brackets: Brackets
    maker_fee: float = BINANCE_MAKER_FEE
    taker_fee: float = BINANCE_TAKER_FEE
    mark_price: float | None = None
    venue: str = DEFAULT_VENUE  # the venue profile (riskcore.venues.profiles): its rule switches

    @property
    def profile(self) -> Profile:
        return venue_profile(self.venue, f"contract {self.symbol!r}")

    @property
    def mm_brackets(self) -> Brackets:
        """The table maintenance margin is charged with under the contract's venue profile
        (``brackets`` itself under Binance's rules)."""
        if self.venue == DEFAULT_VENUE:
            return self.brackets
        return _mm_brackets(self.venue, self.brackets, self.taker_fee)


@functools.lru_cache(maxsize=256)
def _mm_brackets(venue: str, brackets: Brackets, taker_fee: float) -> Brackets:
    return venue_profile(venue).maintenance_brackets(brackets, taker_fee)


@dataclass
class Settings:
    """An account's settings on one contract (section 1).

    In one-way mode the long and short fields hold the same value; in hedge mode they
    belong to the two legs (and must be equal under cross margin)."""
    margin_mode: int = MarginMode.CROSS
    leverage_long: float = DEFAULT_LEVERAGE
    leverage_short: float = DEFAULT_LEVERAGE
    auto_add_long: bool = False
    auto_add_short: bool = False

    def leverage(self, leg: int, side: int) -> float:
        if leg == Leg.BOTH:
            return self.leverage_long
        return self.leverage_long if leg == Leg.LONG else self.leverage_short

    def auto_add(self, leg: int, side: int) -> bool:
        if leg == Leg.BOTH:
            return self.auto_add_long
        return self.auto_add_long if leg == Leg.LONG else self.auto_add_short


@dataclass
class Position:
    """One open position: the net position of one-way mode or one hedge leg.

    ``qty`` > 0 in base units, ``side`` +1/-1, ``wallet_iso`` the isolated margin (0 under
    cross), ``take_profit``/``stop_loss`` trigger prices or None."""
    account: object
    contract: str
    leg: int
    side: int
    qty: float
    entry_price: float
    wallet_iso: float = 0.0
    take_profit: float | None = None
    stop_loss: float | None = None

    @property
    def name(self) -> str:
        leg = "" if self.leg == Leg.BOTH else f" {LEG_NAMES[self.leg]} leg"
        return f"{SIDE_NAMES[self.side]} {self.qty:g} {self.contract}{leg} of account {self.account!r}"


@dataclass
class Order:
    """A resting limit order.  ``side`` +1 buy / -1 sell; ``leg`` as for positions."""
    order_id: int
    account: object
    contract: str
    leg: int
    side: int
    qty: float
    price: float
    reduce_only: bool = False

    @property
    def name(self) -> str:
        leg = "" if self.leg == Leg.BOTH else f" ({LEG_NAMES[self.leg]} leg)"
        word = "buy" if self.side > 0 else "sell"
        return f"resting order #{self.order_id} ({word} {self.qty:g} {self.contract} @ {self.price:g}{leg})"


@dataclass
class Account:
    """An account: its cross wallet, position mode, per-contract settings, positions and orders."""
    account_id: object
    wallet: float = 0.0
    position_mode: int = PositionMode.ONE_WAY
    settings: dict = field(default_factory=dict)  # symbol -> Settings
    positions: dict = field(default_factory=dict)  # (symbol, leg) -> Position
    orders: dict = field(default_factory=dict)  # order_id -> Order


@dataclass
class Fill:
    """What one fill did: the closed and opened quantities, realized PnL and fee."""
    account: object
    contract: str
    leg: int
    side: int
    qty: float
    price: float
    closed_qty: float
    opened_qty: float
    realized_pnl: float
    fee: float


# ---------------------------------------------------------------------------- book
class Book:
    """Accounts, positions and orders on a set of linear perpetual contracts.

    >>> from riskcore import Book, Brackets
    >>> book = Book()
    >>> book.add_contract("BTCUSDT", Brackets.load("BTCUSDT"))
    >>> book.add_account("alice", wallet=10_000)
    >>> book.set_margin_mode("alice", "BTCUSDT", "isolated")
    >>> book.set_leverage("alice", "BTCUSDT", 10)
    >>> fill = book.market_order("alice", "BTCUSDT", "buy", 0.5, price=60_000)
    >>> round(book.position("alice", "BTCUSDT").wallet_iso, 2)
    3000.0
    """

    def __init__(self, default_leverage: float = DEFAULT_LEVERAGE):
        if not (isinstance(default_leverage, (int, float)) and not isinstance(default_leverage, bool)
                and math.isfinite(default_leverage) and default_leverage >= 1):
            raise ValueError(f"default_leverage must be a number >= 1, not {default_leverage!r}")
        self.default_leverage = float(default_leverage)
        self.contracts: dict[str, Contract] = {}
        self.accounts: dict[object, Account] = {}
        self.fees_collected = 0.0
        self.next_order_id = 1

    def __eq__(self, other) -> bool:
        if not isinstance(other, Book):
            return NotImplemented
        return (self.default_leverage == other.default_leverage and self.contracts == other.contracts
                and self.accounts == other.accounts and self.fees_collected == other.fees_collected
                and self.next_order_id == other.next_order_id)

    def __repr__(self) -> str:
        n_pos = sum(len(a.positions) for a in self.accounts.values())
        n_ord = sum(len(a.orders) for a in self.accounts.values())
        return (f"<Book: {len(self.contracts)} contracts, {len(self.accounts)} accounts, "
                f"{n_pos} positions, {n_ord} resting orders>")

    def copy(self) -> "Book":
        return copy.deepcopy(self)

    # ------------------------------------------------------------ contracts/marks
    def add_contract(self, symbol: str, brackets: Brackets, maker_fee: float = BINANCE_MAKER_FEE,
                     taker_fee: float = BINANCE_TAKER_FEE, mark_price: float | None = None,
                     venue: str = DEFAULT_VENUE) -> None:
        """Register a contract with its bracket table and fee rates (Binance's defaults:
        0.02% maker, 0.05% taker) and the venue profile whose rules the simulators apply to it
        (``riskcore.venues.profiles``: binance, bybit, okx, hyperliquid, dydx)."""
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"contract symbol must be a non-empty string, not {symbol!r}")
        if symbol in self.contracts:
            raise ValueError(f"contract {symbol!r} is already in the book")
        if not isinstance(brackets, Brackets):
            raise TypeError(f"brackets of {symbol} must be a riskcore.Brackets, not {type(brackets).__name__}")
        for name, rate in (("maker_fee", maker_fee), ("taker_fee", taker_fee)):
            if not (isinstance(rate, (int, float)) and math.isfinite(rate) and -0.01 < rate < 0.1):
                raise ValueError(f"{symbol}: {name} {rate!r} is not a plausible fee rate (a fraction, e.g. 0.0005)")
        name = venue_profile(venue, f"contract {symbol!r}").name
        venue_profile(name).maintenance_brackets(brackets, float(taker_fee))  # refused here, not at the run
        self.contracts[symbol] = Contract(symbol, brackets, float(maker_fee), float(taker_fee), venue=name)
        if mark_price is not None:
            self.set_marks({symbol: mark_price})

    def _contract(self, symbol: str) -> Contract:
        try:
            return self.contracts[symbol]
        except KeyError:
            raise KeyError(f"unknown contract {symbol!r}; the book has {sorted(self.contracts)}") from None

    def set_marks(self, marks: dict | None = None, **more) -> None:
        """Set mark prices, e.g. ``book.set_marks({"BTCUSDT": 60_000})`` or ``book.set_marks(BTCUSDT=60_000)``."""
        marks = {**(marks or {}), **more}
        for symbol, price in marks.items():
            self._contract(symbol)
            _check_price(price, f"mark price of {symbol}")
        for symbol, price in marks.items():
            self.contracts[symbol].mark_price = float(price)

    @property
    def marks(self) -> dict[str, float | None]:
        return {s: c.mark_price for s, c in self.contracts.items()}

    def _marks(self, override: dict | None) -> dict:
        marks = self.marks
        if override:
            for symbol, price in override.items():
                self._contract(symbol)
                _check_price(price, f"mark price of {symbol}")
                marks[symbol] = float(price)
        return marks

    def _mark(self, marks: dict, symbol: str) -> float:
        price = marks.get(symbol)
        if price is None:
            raise Refused(f"no mark price for {symbol}: set one with book.set_marks({{{symbol!r}: price}})",
                          "no_mark", symbol)
        return price

    # ------------------------------------------------------------------- accounts
    def add_account(self, account, wallet: float = 0.0, position_mode="one-way") -> None:
        """Open an account with a cross wallet balance and a position mode (one-way by default)."""
        if isinstance(account, bool) or not isinstance(account, (int, str, np.integer)):
            raise TypeError(f"account id must be an int or a str, not {type(account).__name__}")
        account = int(account) if isinstance(account, np.integer) else account
        if self.accounts:
            kind = type(next(iter(self.accounts)))
            if type(account) is not kind:
                raise TypeError(f"account ids of one book are all {kind.__name__}s; {account!r} is not")
        if account in self.accounts:
            raise ValueError(f"account {account!r} already exists")
        _check_amount("wallet", wallet, allow_zero=True)
        self.accounts[account] = Account(account, float(wallet), parse_position_mode(position_mode))

    def _account(self, account) -> Account:
        try:
            return self.accounts[account]
        except KeyError:
            raise KeyError(f"unknown account {account!r}") from None

    def settings(self, account, symbol: str) -> Settings:
        """A copy of the account's settings on a contract (the defaults when never set: cross,
        the book's default leverage capped by the first bracket, auto-add off).  Change them
        with the ``set_*`` methods."""
        return copy.copy(self._settings(self._account(account), symbol))

    def _settings(self, acct: Account, symbol: str) -> Settings:
        """The stored settings object, or a fresh default one (not stored)."""
        contract = self._contract(symbol)
        if symbol in acct.settings:
            return acct.settings[symbol]
        lev = min(self.default_leverage, float(contract.brackets.max_leverage[0]))
        return Settings(MarginMode.CROSS, lev, lev)

    def _settings_for_write(self, acct: Account, symbol: str) -> Settings:
        """The stored settings, storing the defaults first; callers run inside :meth:`_atomic`
        or only after every check has passed."""
        st = self._settings(acct, symbol)
        acct.settings[symbol] = st
        return st

    def deposit(self, account, amount: float) -> None:
        """Add money to the cross wallet."""
        _check_amount("deposit", amount)
        self._account(account).wallet += float(amount)

    def withdraw(self, account, amount: float, marks: dict | None = None) -> None:
        """Take money out of the cross wallet, up to the free balance and never more than the
        wallet holds (unrealized profit cannot be withdrawn)."""
        _check_amount("withdrawal", amount)
        most = min(self.free_balance(account, marks), max(0.0, self._account(account).wallet))
        if amount > most + _money_tolerance(most):
            raise Refused(f"account {account!r}: cannot withdraw {amount:g}, at most {most:g} is withdrawable "
                          "(the free balance, capped at the wallet)", "insufficient_free_balance")
        self._account(account).wallet -= float(amount)

    # --------------------------------------------------------------- mode changes
    def set_position_mode(self, account, mode) -> None:
        """One-way or hedge, for all contracts of the account; only when it is flat everywhere.

        Going from hedge to one-way, a contract whose legs had different isolated
        leverage keeps the lower one, and auto-add-margin stays on only if both legs had it."""
        acct = self._account(account)
        mode = parse_position_mode(mode)
        if mode == acct.position_mode:
            return
        self._refuse_unless_flat(acct, None, "change the position mode", "position_mode_blocked")
        acct.position_mode = mode
        if mode == PositionMode.ONE_WAY:
            for st in acct.settings.values():
                st.leverage_long = st.leverage_short = min(st.leverage_long, st.leverage_short)
                st.auto_add_long = st.auto_add_short = st.auto_add_long and st.auto_add_short

    def set_margin_mode(self, account, symbol: str, mode) -> None:
        """Cross or isolated for one contract; only when the account is flat on it."""
        acct = self._account(account)
        mode = parse_margin_mode(mode)
        st = self.settings(account, symbol)
        if mode == st.margin_mode:
            return
        self._refuse_unless_flat(acct, symbol, f"change the margin mode of {symbol}", "margin_mode_blocked")
        if mode == MarginMode.CROSS and st.leverage_long != st.leverage_short:
            raise Refused(f"account {account!r}: {symbol} legs have leverage {st.leverage_long:g}x (long) and "
                          f"{st.leverage_short:g}x (short); cross hedge legs must share one leverage, "
                          "set it first", "cross_leverage_mismatch", symbol)
        st = self._settings_for_write(acct, symbol)
        st.margin_mode = mode
        if mode == MarginMode.CROSS:
            st.auto_add_long = st.auto_add_short = False

    def _refuse_unless_flat(self, acct: Account, symbol: str | None, action: str, code: str) -> None:
        for (sym, _), pos in acct.positions.items():
            if symbol is None or sym == symbol:
                raise Refused(f"account {acct.account_id!r}: cannot {action}: open position {pos.name}",
                              code, pos.name)
        for order in acct.orders.values():
            if symbol is None or order.contract == symbol:
                raise Refused(f"account {acct.account_id!r}: cannot {action}: {order.name}", code, order.name)

    def set_leverage(self, account, symbol: str, leverage: float, leg=None, marks: dict | None = None) -> None:
        """Set leverage on a contract (both legs, or one leg of an isolated hedge-mode contract).

        Refused above the bracket's cap for the position and its resting orders, when
        cross hedge legs would differ, or when the new initial margin is not covered."""
        acct = self._account(account)
        contract = self._contract(symbol)
        st = self.settings(account, symbol)
        leg = parse_leg(leg)
        if not (isinstance(leverage, (int, float, np.floating, np.integer)) and math.isfinite(leverage)
                and leverage >= 1):
            raise ValueError(f"leverage must be a number >= 1, not {leverage!r}")
        leverage = float(leverage)
        if leg != Leg.BOTH and acct.position_mode == PositionMode.ONE_WAY:
            raise ValueError(f"account {account!r} is in one-way mode: leverage has no legs (leg must be None)")
        if leg != Leg.BOTH and st.margin_mode == MarginMode.CROSS:
            other = st.leverage_short if leg == Leg.LONG else st.leverage_long
            if other != leverage:
                raise Refused(f"account {account!r}: cross hedge legs of {symbol} must share one leverage "
                              f"({other:g}x on the other leg); set both with leg=None",
                              "cross_leverage_mismatch", symbol)
        if contract.brackets.max_notional(leverage) <= 0.0:
            raise Refused(f"account {account!r}: leverage {leverage:g}x is above the {symbol} brackets' "
                          f"highest max leverage {contract.brackets.max_leverage[0]:g}x", "leverage_cap", symbol)
        legs = (Leg.LONG, Leg.SHORT) if leg == Leg.BOTH else (leg,)
        marks = self._marks(marks)

        def apply():
            st = self._settings_for_write(acct, symbol)
            for lg in legs:
                if lg == Leg.LONG:
                    st.leverage_long = leverage
                else:
                    st.leverage_short = leverage
            for lg in (legs if acct.position_mode == PositionMode.HEDGE else (Leg.BOTH,)):
                self._check_leverage_cap(acct, contract, lg, marks, None)
            self._check_margin_covered(acct, marks, f"leverage {leverage:g}x on {symbol}")

        self._atomic(acct, apply)

    def set_auto_add_margin(self, account, symbol: str, enabled: bool = True, leg=None) -> None:
        """Turn automatic top-ups on or off for an isolated contract (or one hedge leg)."""
        acct = self._account(account)
        st = self.settings(account, symbol)
        leg = parse_leg(leg)
        if not isinstance(enabled, (bool, np.bool_)):
            raise TypeError(f"enabled must be True or False, not {enabled!r}")
        if st.margin_mode != MarginMode.ISOLATED:
            raise Refused(f"account {account!r}: auto add-margin applies to isolated positions only; "
                          f"{symbol} is in cross margin", "auto_add_cross", symbol)
        if leg != Leg.BOTH and acct.position_mode == PositionMode.ONE_WAY:
            raise ValueError(f"account {account!r} is in one-way mode: leg must be None")
        st = self._settings_for_write(acct, symbol)
        if leg in (Leg.BOTH, Leg.LONG):
            st.auto_add_long = bool(enabled)
        if leg in (Leg.BOTH, Leg.SHORT):
            st.auto_add_short = bool(enabled)

    # ------------------------------------------------------------------ margin moves
    def add_margin(self, account, symbol: str, amount: float, leg=None, marks: dict | None = None) -> None:
        """Move money from the free balance into an isolated position's margin."""
        _check_amount("margin to add", amount)
        acct = self._account(account)
        pos = self._isolated_position(acct, symbol, leg)
        free = self.free_balance(account, marks)
        if amount > free + _money_tolerance(free):
            raise Refused(f"account {account!r}: cannot add {amount:g} to {pos.name}: the free balance is "
                          f"{free:g}", "insufficient_free_balance", pos.name)
        acct.wallet -= float(amount)
        pos.wallet_iso += float(amount)

    def remove_margin(self, account, symbol: str, amount: float, leg=None, marks: dict | None = None) -> None:
        """Move money from an isolated position's margin back to the cross wallet, up to
        :meth:`max_removable_margin`."""
        _check_amount("margin to remove", amount)
        acct = self._account(account)
        pos = self._isolated_position(acct, symbol, leg)
        most = self.max_removable_margin(account, symbol, leg, marks)
        if amount > most + _money_tolerance(most):
            raise Refused(f"account {account!r}: cannot remove {amount:g} from {pos.name}: at most {most:g} "
                          "may be removed", "remove_too_much", pos.name)
        acct.wallet += float(amount)
        pos.wallet_iso -= float(amount)

    def max_removable_margin(self, account, symbol: str, leg=None, marks: dict | None = None) -> float:
        acct = self._account(account)
        pos = self._isolated_position(acct, symbol, leg)
        mark = self._mark(self._marks(marks), symbol)
        lev = self.settings(account, symbol).leverage(pos.leg, pos.side)
        return fm.max_removable_margin(pos.side, pos.qty, pos.entry_price, pos.wallet_iso, mark, lev)

    def _isolated_position(self, acct: Account, symbol: str, leg) -> Position:
        pos = self._find_position(acct, symbol, leg)
        if self.settings(acct.account_id, symbol).margin_mode != MarginMode.ISOLATED:
            raise Refused(f"account {acct.account_id!r}: {pos.name} is in cross margin; only isolated "
                          "positions have their own margin", "not_isolated", pos.name)
        return pos

    def _find_position(self, acct: Account, symbol: str, leg) -> Position:
        self._contract(symbol)
        leg = parse_leg(leg)
        if acct.position_mode == PositionMode.HEDGE and leg == Leg.BOTH:
            raise ValueError(f"account {acct.account_id!r} is in hedge mode: name the leg ('long' or 'short')")
        if acct.position_mode == PositionMode.ONE_WAY and leg != Leg.BOTH:
            raise ValueError(f"account {acct.account_id!r} is in one-way mode: leg must be None")
        pos = acct.positions.get((symbol, leg))
        if pos is None:
            where = "" if leg == Leg.BOTH else f" {LEG_NAMES[leg]} leg"
            raise Refused(f"account {acct.account_id!r} has no {symbol}{where} position", "no_position", symbol)
        return pos

    def position(self, account, symbol: str, leg=None) -> Position | None:
        """The open position (or hedge leg), or None when flat."""
        acct = self._account(account)
        self._contract(symbol)
        leg = parse_leg(leg)
        if acct.position_mode == PositionMode.HEDGE and leg == Leg.BOTH:
            raise ValueError(f"account {account!r} is in hedge mode: name the leg ('long' or 'short')")
        return acct.positions.get((symbol, leg))

    def set_tp_sl(self, account, symbol: str, take_profit: float | None = None, stop_loss: float | None = None,
                  leg=None, marks: dict | None = None) -> None:
        """Set take-profit and/or stop-loss trigger prices of a position.

        ``None`` leaves a trigger as it is; ``"clear"`` (or NaN) removes it.  Refused when a
        trigger is already crossed at the current mark (it would fire at once)."""
        acct = self._account(account)
        pos = self._find_position(acct, symbol, leg)
        mark = self._marks(marks).get(symbol)
        new = {}
        for name, price in (("take_profit", take_profit), ("stop_loss", stop_loss)):
            if price is None:
                new[name] = getattr(pos, name)
            elif isinstance(price, str) and price == "clear" or (isinstance(price, float) and math.isnan(price)):
                new[name] = None
            elif isinstance(price, (int, float, np.floating, np.integer)) and not isinstance(price, bool) \
                    and math.isfinite(price) and 0 < price <= LIMIT:
                new[name] = float(price)
                if mark is not None and name == "take_profit" and pos.side * (price - mark) <= 0:
                    raise Refused(f"{pos.name}: take profit {price:g} is already reached at mark {mark:g}",
                                  "tp_sl_crossed", pos.name)
                if mark is not None and name == "stop_loss" and pos.side * (price - mark) >= 0:
                    raise Refused(f"{pos.name}: stop loss {price:g} is already reached at mark {mark:g}",
                                  "tp_sl_crossed", pos.name)
            else:
                raise ValueError(f"{name} must be a positive price up to {LIMIT:g}, None (keep) or 'clear', "
                                 f"not {price!r}")
        pos.take_profit, pos.stop_loss = new["take_profit"], new["stop_loss"]

    # -------------------------------------------------------------------- orders
    def market_order(self, account, symbol: str, side, qty: float, price: float, leg=None,
                     reduce_only: bool = False, maker: bool = False, marks: dict | None = None) -> Fill:
        """Fill ``qty`` at ``price`` now (taker fee unless ``maker``).

        One-way: adds, reduces or flips the net position (reduce-only never opens or
        flips; it is clipped to the position).  Hedge: ``leg`` names the leg; a buy opens
        the long leg or closes the short one, a sell the reverse."""
        acct = self._account(account)
        contract = self._contract(symbol)
        side = parse_side(side)
        _check_amount("quantity", qty)
        _check_price(price)
        leg = self._order_leg(acct, leg)
        rate = contract.maker_fee if maker else contract.taker_fee

        def apply():
            if contract.mark_price is None:
                contract.mark_price = float(price)
            return self._fill(acct, contract, leg, side, float(qty), float(price), rate, reduce_only,
                              self._marks(marks))

        return self._atomic(acct, apply)

    def limit_order(self, account, symbol: str, side, qty: float, price: float, leg=None,
                    reduce_only: bool = False, marks: dict | None = None) -> int:
        """Place a resting limit order; it holds initial margin for the quantity it would open.
        Returns the order id."""
        acct = self._account(account)
        contract = self._contract(symbol)
        side = parse_side(side)
        _check_amount("quantity", qty)
        _check_price(price)
        leg = self._order_leg(acct, leg)
        marks = self._marks(marks)
        order = Order(self.next_order_id, acct.account_id, symbol, leg, side, float(qty), float(price),
                      bool(reduce_only))
        self._check_order_direction(acct, order)

        def apply():
            self._settings_for_write(acct, symbol)
            acct.orders[order.order_id] = order
            self._check_leverage_cap(acct, contract, leg, marks, side)
            self._check_margin_covered(acct, marks, order.name)

        self._atomic(acct, apply)
        self.next_order_id += 1
        return order.order_id

    def cancel_order(self, order_id: int) -> Order:
        """Cancel a resting order; returns it."""
        acct, order = self._find_order(order_id)
        del acct.orders[order_id]
        return order

    def fill_order(self, order_id: int, price: float | None = None, marks: dict | None = None) -> Fill:
        """Fill a resting order (all of it) at its limit price or a better ``price``, with the maker fee.

        A reduce-only order is clipped to what is left of the position; one with
        nothing left to reduce is refused and stays resting."""
        acct, order = self._find_order(order_id)
        contract = self._contract(order.contract)
        px = order.price if price is None else float(price)
        _check_price(px)
        if order.side * (px - order.price) > 0:
            raise ValueError(f"{order.name}: fill price {px:g} is worse than the limit")

        def apply():
            if contract.mark_price is None:
                contract.mark_price = float(px)
            del acct.orders[order_id]
            return self._fill(acct, contract, order.leg, order.side, order.qty, px, contract.maker_fee,
                              order.reduce_only, self._marks(marks))

        return self._atomic(acct, apply)

    def orders(self, account) -> list[Order]:
        return list(self._account(account).orders.values())

    def _find_order(self, order_id) -> tuple[Account, Order]:
        for acct in self.accounts.values():
            if order_id in acct.orders:
                return acct, acct.orders[order_id]
        raise KeyError(f"no resting order #{order_id}")

    def _order_leg(self, acct: Account, leg) -> int:
        leg = parse_leg(leg)
        if acct.position_mode == PositionMode.HEDGE and leg == Leg.BOTH:
            raise ValueError(f"account {acct.account_id!r} is in hedge mode: an order must name its leg "
                             "('long' or 'short')")
        if acct.position_mode == PositionMode.ONE_WAY and leg != Leg.BOTH:
            raise ValueError(f"account {acct.account_id!r} is in one-way mode: an order has no leg")
        return leg

    def _check_order_direction(self, acct: Account, order: Order) -> None:
        """Refuse reduce-only orders that could not reduce, and hedge closes beyond the leg."""
        closing = self._closing_direction(order.leg, order.side)
        if order.leg == Leg.BOTH and not order.reduce_only:
            return
        pos = acct.positions.get((order.contract, order.leg))
        if order.leg != Leg.BOTH and not closing:
            if order.reduce_only:
                raise Refused(f"{order.name}: a reduce-only order on the {LEG_NAMES[order.leg]} leg must "
                              f"{'sell' if order.leg == Leg.LONG else 'buy'}", "reduce_only_opens")
            return
        if pos is None and order.leg != Leg.BOTH:
            raise Refused(f"{order.name} would close the {LEG_NAMES[order.leg]} leg, but there is none",
                          "no_position", order.contract)
        if pos is None or (order.leg == Leg.BOTH and pos.side == order.side):
            what = "there is no position" if pos is None else f"the position is {SIDE_NAMES[pos.side]}"
            raise Refused(f"{order.name} is reduce-only, but {what} to reduce", "reduce_only_opens")
        if order.leg != Leg.BOTH and not order.reduce_only:
            pending = sum(o.qty for o in acct.orders.values()
                          if (o.contract, o.leg, o.side) == (order.contract, order.leg, order.side))
            if order.qty + pending > pos.qty * (1 + 1e-12):
                raise Refused(f"{order.name}: closing orders would exceed the {pos.qty:g} held on the leg",
                              "close_exceeds_position", pos.name)

    @staticmethod
    def _closing_direction(leg: int, side: int) -> bool:
        return (leg == Leg.LONG and side < 0) or (leg == Leg.SHORT and side > 0)

    # --------------------------------------------------------------------- fills
    def _fill(self, acct: Account, contract: Contract, leg: int, side: int, qty: float, price: float,
              fee_rate: float, reduce_only: bool, marks: dict) -> Fill:
        """Apply one fill (section 5).  Runs inside :meth:`_atomic`."""
        symbol = contract.symbol
        st = self._settings_for_write(acct, symbol)
        pos = acct.positions.get((symbol, leg))
        if leg == Leg.BOTH:
            opposite = pos is not None and pos.side != side
            close_qty = min(qty, pos.qty) if opposite else 0.0
            if reduce_only:
                if not opposite:
                    what = "no position" if pos is None else f"the position is {SIDE_NAMES[pos.side]}"
                    raise Refused(f"reduce-only {'buy' if side > 0 else 'sell'} of {symbol} for account "
                                  f"{acct.account_id!r}: {what} to reduce", "reduce_only_opens", symbol)
                qty = close_qty
            open_qty = qty - close_qty
            open_side = side
        else:
            if self._closing_direction(leg, side):
                if pos is None:
                    raise Refused(f"account {acct.account_id!r} has no {symbol} {LEG_NAMES[leg]} leg to close",
                                  "no_position", symbol)
                if reduce_only:
                    qty = min(qty, pos.qty)
                if qty > pos.qty * (1 + 1e-12):
                    raise Refused(f"{'buy' if side > 0 else 'sell'} {qty:g} exceeds {pos.name}",
                                  "close_exceeds_position", pos.name)
                close_qty, open_qty = min(qty, pos.qty), 0.0
            else:
                if reduce_only:
                    raise Refused(f"reduce-only order would open the {symbol} {LEG_NAMES[leg]} leg of "
                                  f"account {acct.account_id!r}", "reduce_only_opens", symbol)
                close_qty, open_qty = 0.0, qty
            open_side = 1 if leg == Leg.LONG else -1
        isolated = st.margin_mode == MarginMode.ISOLATED
        realized = 0.0
        if close_qty > 0:
            realized = pos.side * close_qty * (price - pos.entry_price)
            if isolated:
                released = pos.wallet_iso * (close_qty / pos.qty)
                if released + realized < 0.0:
                    raise Refused(f"closing {close_qty:g} of {pos.name} at {price:g} would lose more than its "
                                  f"isolated margin (bankruptcy price "
                                  f"{pos.entry_price - pos.side * pos.wallet_iso / pos.qty:g}); such a position "
                                  "is liquidated, not closed", "beyond_bankruptcy", pos.name)
                pos.wallet_iso -= released
                acct.wallet += released
            acct.wallet += realized
            pos.qty -= close_qty
            if pos.qty <= 0.0:
                if isolated:
                    acct.wallet += pos.wallet_iso
                del acct.positions[(symbol, leg)]
                pos = None
        if open_qty > 0:
            if pos is None:
                pos = Position(acct.account_id, symbol, leg, open_side, 0.0, price)
                acct.positions[(symbol, leg)] = pos
            if pos.qty > 0.0:
                pos.entry_price = (pos.qty * pos.entry_price + open_qty * price) / (pos.qty + open_qty)
            pos.qty += open_qty
            if isolated:
                im = open_qty * price / st.leverage(leg, open_side)
                acct.wallet -= im
                pos.wallet_iso += im
        fee = fee_rate * qty * price
        acct.wallet -= fee
        self.fees_collected += fee
        if open_qty > 0:
            self._check_leverage_cap(acct, contract, leg, marks, None, fill_price=price)
            self._check_margin_covered(acct, marks, f"{'buy' if side > 0 else 'sell'} {qty:g} {symbol}")
        return Fill(acct.account_id, symbol, leg, side, qty, price, close_qty, open_qty, realized, fee)

    def _atomic(self, acct: Account, action):
        """Run ``action``; if it raises, put the account and the fee pot back as they were."""
        saved = copy.deepcopy(acct)
        fees, marks = self.fees_collected, self.marks
        try:
            return action()
        except BaseException:
            self.accounts[acct.account_id].__dict__.update(saved.__dict__)
            self.fees_collected = fees
            for symbol, price in marks.items():
                self.contracts[symbol].mark_price = price
            raise

    def _check_leverage_cap(self, acct: Account, contract: Contract, leg: int, marks: dict, order_side,
                            fill_price: float | None = None) -> None:
        """Refuse a position (plus its same-direction resting orders) above the notional the
        leverage allows in the contract's brackets."""
        symbol = contract.symbol
        pos = acct.positions.get((symbol, leg))
        st = self.settings(acct.account_id, symbol)
        for side in (1, -1):
            if leg != Leg.BOTH and side != (1 if leg == Leg.LONG else -1):
                continue
            if order_side is not None and side != order_side and leg == Leg.BOTH:
                continue
            price = fill_price or marks.get(symbol) or (pos.entry_price if pos else None)
            notional = pos.qty * price if (pos is not None and pos.side == side and price) else 0.0
            notional += sum(opening * o.price for o, opening in self._opening_orders(acct)
                            if o.contract == symbol and o.leg == leg and o.side == side)
            if notional == 0.0:
                continue
            lev = st.leverage(leg, side)
            cap = contract.brackets.max_notional(lev)
            if notional > cap * (1 + 1e-12):
                raise Refused(f"account {acct.account_id!r}: {SIDE_NAMES[side]} {symbol} notional {notional:,.2f} "
                              f"is above the {cap:,.0f} that {lev:g}x allows in the {symbol} brackets",
                              "leverage_cap", symbol)

    def _check_margin_covered(self, acct: Account, marks: dict, what: str) -> None:
        raw = self._raw_free(acct, marks)
        if raw < -_money_tolerance(acct.wallet):
            raise Refused(f"account {acct.account_id!r}: {what} would leave initial margin uncovered "
                          f"(short by {-raw:,.2f})", "insufficient_margin")

    # ------------------------------------------------------------------ read-outs
    def _position_view(self, pos: Position, mark: float, st: Settings, contract: Contract) -> dict:
        notional = pos.qty * mark
        lev = st.leverage(pos.leg, pos.side)
        return {
            "notional": notional,
            "unrealized_pnl": pos.side * pos.qty * (mark - pos.entry_price),
            "maintenance_margin": float(contract.mm_brackets.maintenance_margin(notional)),
            "initial_margin": notional / lev,
            "leverage": lev,
        }

    def _cross_totals(self, acct: Account, marks: dict, skip: str | None = None) -> dict:
        upnl = mm = im = 0.0
        for (symbol, _), pos in acct.positions.items():
            st = acct.settings[symbol]
            if st.margin_mode != MarginMode.CROSS or symbol == skip:
                continue
            v = self._position_view(pos, self._mark(marks, symbol), st, self.contracts[symbol])
            upnl += v["unrealized_pnl"]
            mm += v["maintenance_margin"]
            im += v["initial_margin"]
        return {"unrealized_pnl": upnl, "maintenance_margin": mm, "initial_margin": im}

    def _opening_orders(self, acct: Account):
        """Each resting order with the quantity it would open: reduce-only and hedge closing
        orders open nothing; in one-way mode an order against the position first uses up
        the part of the position not already claimed by earlier orders on that side."""
        reducible: dict = {}
        for order in sorted(acct.orders.values(), key=lambda o: o.order_id):
            if order.reduce_only:
                opening = 0.0
            elif order.leg == Leg.BOTH:
                key = (order.contract, order.side)
                if key not in reducible:
                    pos = acct.positions.get((order.contract, Leg.BOTH))
                    reducible[key] = pos.qty if (pos is not None and pos.side != order.side) else 0.0
                used = min(reducible[key], order.qty)
                reducible[key] -= used
                opening = order.qty - used
            else:
                opening = 0.0 if self._closing_direction(order.leg, order.side) else order.qty
            yield order, opening

    def _order_margin(self, acct: Account) -> float:
        """Initial margin held by resting orders: opening quantity x price / leverage."""
        return sum(opening * order.price / acct.settings[order.contract].leverage(order.leg, order.side)
                   for order, opening in self._opening_orders(acct))

    def _raw_free(self, acct: Account, marks: dict) -> float:
        tot = self._cross_totals(acct, marks)
        return acct.wallet + tot["unrealized_pnl"] - tot["initial_margin"] - self._order_margin(acct)

    def free_balance(self, account, marks: dict | None = None) -> float:
        """Cross wallet + cross uPnL - cross IM - order margin, floored at 0 (section 3)."""
        return max(0.0, self._raw_free(self._account(account), self._marks(marks)))

    def account_summary(self, account, marks: dict | None = None) -> dict:
        """Every account-level metric at the marks: wallets, margin balance, MM, IM, MMR, IMR,
        order margin, free balance, equity."""
        acct = self._account(account)
        marks = self._marks(marks)
        tot = self._cross_totals(acct, marks)
        iso_wallet = sum(p.wallet_iso for p in acct.positions.values())
        # An isolated position can lose its own wallet and no more: its equity counts from 0.
        iso_equity = sum(max(0.0, p.wallet_iso + p.side * p.qty * (self._mark(marks, p.contract) - p.entry_price))
                         for p in acct.positions.values()
                         if acct.settings[p.contract].margin_mode == MarginMode.ISOLATED)
        mb = acct.wallet + tot["unrealized_pnl"]
        order_margin = self._order_margin(acct)
        return {
            "account": acct.account_id,
            "position_mode": POSITION_MODE_NAMES[acct.position_mode],
            "wallet": acct.wallet,
            "isolated_wallet": iso_wallet,
            "cross_unrealized_pnl": tot["unrealized_pnl"],
            "margin_balance": mb,
            "maintenance_margin": tot["maintenance_margin"],
            "initial_margin": tot["initial_margin"],
            "order_margin": order_margin,
            "mmr": fm.account_mmr(tot["maintenance_margin"], mb),
            "imr": fm.account_imr(tot["initial_margin"], mb),
            "free_balance": max(0.0, mb - tot["initial_margin"] - order_margin),
            "equity": mb + iso_equity,
            "n_positions": len(acct.positions),
            "n_orders": len(acct.orders),
        }

    def cross_liquidation_price(self, account, symbol: str, marks: dict | None = None) -> float:
        """Binance's cross liquidation price of ``symbol`` for the account, the other cross
        contracts held at their marks (section 4); NaN when flat or never liquidated."""
        acct = self._account(account)
        marks = self._marks(marks)
        st = self.settings(account, symbol)
        if st.margin_mode != MarginMode.CROSS:
            raise ValueError(f"{symbol} is isolated for account {account!r}; use liquidation_price")
        kw = self._cross_contract_args(acct, symbol)
        if kw is None:
            return float("nan")
        others = self._cross_totals(acct, marks, skip=symbol)
        return fm.cross_liquidation_price(acct.wallet, self.contracts[symbol].mm_brackets,
                                          other_maintenance=others["maintenance_margin"],
                                          other_unrealized_pnl=others["unrealized_pnl"], **kw)

    def _cross_contract_args(self, acct: Account, symbol: str) -> dict | None:
        one = acct.positions.get((symbol, Leg.BOTH))
        lg = acct.positions.get((symbol, Leg.LONG))
        sh = acct.positions.get((symbol, Leg.SHORT))
        if one is None and lg is None and sh is None:
            return None
        kw = {}
        if one is not None:
            kw.update(side=one.side, qty=one.qty, entry_price=one.entry_price)
        if lg is not None:
            kw.update(long_qty=lg.qty, long_entry_price=lg.entry_price)
        if sh is not None:
            kw.update(short_qty=sh.qty, short_entry_price=sh.entry_price)
        return kw

    def _cross_bankruptcy_price(self, acct: Account, symbol: str, marks: dict) -> float:
        """Price of ``symbol`` at which the cross margin balance is 0, others at mark."""
        others = self._cross_totals(acct, marks, skip=symbol)
        net = const = 0.0
        for (sym, _), pos in acct.positions.items():
            if sym == symbol:
                net += pos.side * pos.qty
                const += pos.side * pos.qty * pos.entry_price
        if net == 0.0:
            return float("nan")
        price = (const - acct.wallet - others["unrealized_pnl"]) / net
        return price if price > 0 else float("nan")

    def liquidation_price(self, account, symbol: str, leg=None, marks: dict | None = None,
                          mm_basis: str = "mark") -> float:
        """Liquidation price of a position: its own (isolated) or the contract's cross price."""
        acct = self._account(account)
        pos = self._find_position(acct, symbol, leg)
        if self.settings(account, symbol).margin_mode == MarginMode.CROSS:
            return self.cross_liquidation_price(account, symbol, marks)
        return fm.isolated_liquidation_price(pos.side, pos.qty, pos.entry_price, pos.wallet_iso,
                                             self.contracts[symbol].mm_brackets, mm_basis=mm_basis)

    def positions_frame(self, marks: dict | None = None) -> pd.DataFrame:
        """Every open position with its risk read-outs at the marks: uPnL, notional, MM, IM,
        liquidation and bankruptcy prices, isolated wallet, TP/SL."""
        marks = self._marks(marks)
        rows = []
        for acct in self.accounts.values():
            cross_lp: dict = {}
            for (symbol, leg), pos in acct.positions.items():
                st = acct.settings[symbol]
                contract = self.contracts[symbol]
                mark = self._mark(marks, symbol)
                v = self._position_view(pos, mark, st, contract)
                if st.margin_mode == MarginMode.CROSS:
                    if symbol not in cross_lp:
                        cross_lp[symbol] = (self.cross_liquidation_price(acct.account_id, symbol, marks),
                                            self._cross_bankruptcy_price(acct, symbol, marks))
                    lp, bp = cross_lp[symbol]
                else:
                    lp = fm.isolated_liquidation_price(pos.side, pos.qty, pos.entry_price, pos.wallet_iso,
                                                       contract.mm_brackets)
                    bp = fm.bankruptcy_price(pos.side, pos.qty, pos.entry_price, pos.wallet_iso)
                rows.append({
                    "account": acct.account_id, "contract": symbol, "leg": LEG_NAMES[leg],
                    "side": pos.side, "qty": pos.qty, "entry_price": pos.entry_price,
                    "margin_mode": MARGIN_MODE_NAMES[st.margin_mode], "leverage": v["leverage"],
                    "mark_price": mark, "notional": v["notional"], "unrealized_pnl": v["unrealized_pnl"],
                    "maintenance_margin": v["maintenance_margin"], "initial_margin": v["initial_margin"],
                    "wallet_iso": pos.wallet_iso, "liquidation_price": lp, "bankruptcy_price": bp,
                    "auto_add_margin": st.auto_add(leg, pos.side),
                    "take_profit": np.nan if pos.take_profit is None else pos.take_profit,
                    "stop_loss": np.nan if pos.stop_loss is None else pos.stop_loss,
                })
        return pd.DataFrame(rows, columns=_POSITION_VIEW_COLUMNS)

    def accounts_frame(self, marks: dict | None = None) -> pd.DataFrame:
        """One row per account with :meth:`account_summary`'s metrics."""
        rows = [self.account_summary(a, marks) for a in self.accounts]
        return pd.DataFrame(rows, columns=_ACCOUNT_VIEW_COLUMNS)

    # ------------------------------------------------------------------ columns
    def to_table(self) -> BookTable:
        """The book as its canonical columnar table (:class:`riskcore.table.BookTable`):
        the simulators' input."""
        return BookTable.from_frames(_frames_of(self))

    @classmethod
    def from_table(cls, table) -> "Book":
        """A book holding a :class:`~riskcore.table.BookTable` (or a mapping of its tables,
        validated first) as objects, for interactive editing."""
        return _book_of(BookTable.from_frames(table))

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The whole book as DataFrames, one per table of :mod:`riskcore.table` (words and
        symbols as plain strings, easy to edit; :meth:`to_table` is the typed form)."""
        return self.to_table().frames(plain=True)

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame]) -> "Book":
        """Rebuild a book from :meth:`to_frames` output, validating every table."""
        return cls.from_table(frames)

    def to_arrow(self) -> dict:
        return self.to_table().to_arrow()

    @classmethod
    def from_arrow(cls, tables: dict) -> "Book":
        return cls.from_table(BookTable.from_arrow(tables))

    def write_parquet(self, directory) -> None:
        """Write the book as one Parquet file per table into ``directory`` (all or nothing)."""
        self.to_table().write_parquet(directory)

    @classmethod
    def read_parquet(cls, directory) -> "Book":
        return cls.from_table(BookTable.read_parquet(directory))


def _nan(value):
    return np.nan if value is None else value


def _frames_of(book: Book) -> dict[str, pd.DataFrame]:
    """The book's objects as plain tables (validated and typed by ``BookTable.from_frames``)."""
    meta = pd.DataFrame({"format_version": [FORMAT_VERSION], "default_leverage": [book.default_leverage],
                         "fees_collected": [book.fees_collected], "next_order_id": [book.next_order_id]})
    contracts = pd.DataFrame({"contract": pd.Series([c.symbol for c in book.contracts.values()], dtype=object),
                              "maker_fee": [c.maker_fee for c in book.contracts.values()],
                              "taker_fee": [c.taker_fee for c in book.contracts.values()],
                              "mark_price": [_nan(c.mark_price) for c in book.contracts.values()],
                              "venue": pd.Series([c.venue for c in book.contracts.values()], dtype=object)})
    contracts = contracts.astype({"maker_fee": "float64", "taker_fee": "float64", "mark_price": "float64"})
    if book.contracts:
        brackets = pd.concat([_bracket_frame(c.brackets, c.symbol) for c in book.contracts.values()],
                             ignore_index=True)
    else:
        brackets = empty_frames()["brackets"]
    accounts, settings, positions, orders = [], [], [], []
    for acct in book.accounts.values():
        accounts.append((acct.account_id, acct.wallet, POSITION_MODE_NAMES[acct.position_mode]))
        for symbol, st in acct.settings.items():
            settings.append((acct.account_id, symbol, MARGIN_MODE_NAMES[st.margin_mode], st.leverage_long,
                             st.leverage_short, st.auto_add_long, st.auto_add_short))
        for pos in acct.positions.values():
            positions.append((acct.account_id, pos.contract, LEG_NAMES[pos.leg], pos.side, pos.qty, pos.entry_price,
                              pos.wallet_iso, _nan(pos.take_profit), _nan(pos.stop_loss)))
        for o in acct.orders.values():
            orders.append((o.order_id, acct.account_id, o.contract, LEG_NAMES[o.leg], o.side, o.qty, o.price,
                           o.reduce_only))

    def frame(table, rows):
        cols = list(TABLE_SCHEMA[table])
        if not rows:
            return empty_frames()[table]
        data = {c: pd.Series([r[i] for r in rows], dtype=object) for i, c in enumerate(cols)}
        return pd.DataFrame(data, columns=cols)

    return {"meta": meta, "contracts": contracts, "brackets": brackets, "accounts": frame("accounts", accounts),
            "settings": frame("settings", settings), "positions": frame("positions", positions),
            "orders": frame("orders", orders)}


def _book_of(table: BookTable) -> Book:
    """Objects for a validated table (no checks repeated: the table is valid)."""
    book = Book(default_leverage=table.default_leverage)
    book.fees_collected = float(table.fees_collected)
    book.next_order_id = int(table.next_order_id)
    for symbol, maker, taker, mark, venue in zip(table.contracts["contract"], table.contracts["maker_fee"],
                                                 table.contracts["taker_fee"], table.contracts["mark_price"],
                                                 table.contracts["venue"]):
        book.contracts[symbol] = Contract(symbol, table.bracket_tables[symbol], float(maker), float(taker),
                                          None if math.isnan(mark) else float(mark), venue=str(venue))

    def ids(frame):
        return frame["account"].tolist()

    acc = table.accounts
    for a, wallet, mode in zip(ids(acc), acc["wallet"].tolist(), acc["position_mode"].cat.codes.tolist()):
        book.accounts[a] = Account(a, wallet, int(mode))
    st = table.settings
    for a, symbol, mode, ll, ls, al, as_ in zip(ids(st), st["contract"].tolist(), st["margin_mode"].cat.codes.tolist(),
                                                st["leverage_long"].tolist(), st["leverage_short"].tolist(),
                                                st["auto_add_long"].tolist(), st["auto_add_short"].tolist()):
        book.accounts[a].settings[symbol] = Settings(int(mode), ll, ls, bool(al), bool(as_))
    p = table.positions
    for a, symbol, leg, side, qty, entry, wiso, tp, sl in zip(
            ids(p), p["contract"].tolist(), p["leg"].cat.codes.tolist(), p["side"].tolist(), p["qty"].tolist(),
            p["entry_price"].tolist(), p["wallet_iso"].tolist(), p["take_profit"].tolist(), p["stop_loss"].tolist()):
        book.accounts[a].positions[(symbol, int(leg))] = Position(
            a, symbol, int(leg), int(side), qty, entry, wiso, None if tp != tp else tp, None if sl != sl else sl)
    o = table.orders
    for oid, a, symbol, leg, side, qty, price, ro in zip(
            o["order_id"].tolist(), ids(o), o["contract"].tolist(), o["leg"].cat.codes.tolist(), o["side"].tolist(),
            o["qty"].tolist(), o["price"].tolist(), o["reduce_only"].tolist()):
        book.accounts[a].orders[oid] = Order(oid, a, symbol, int(leg), int(side), qty, price, bool(ro))
    return book


_POSITION_VIEW_COLUMNS = [
    "account", "contract", "leg", "side", "qty", "entry_price", "margin_mode", "leverage", "mark_price",
    "notional", "unrealized_pnl", "maintenance_margin", "initial_margin", "wallet_iso",
    "liquidation_price", "bankruptcy_price", "auto_add_margin", "take_profit", "stop_loss",
]
_ACCOUNT_VIEW_COLUMNS = [
    "account", "position_mode", "wallet", "isolated_wallet", "cross_unrealized_pnl", "margin_balance",
    "maintenance_margin", "initial_margin", "order_margin", "mmr", "imr", "free_balance", "equity",
    "n_positions", "n_orders",
]
