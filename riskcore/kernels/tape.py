"""The tape of scheduled actions as columns for :mod:`riskcore.kernels.actions_nb`.

Three steps around the kernel, none of which imports the Book or the reference engine:

1. :func:`encode_tape`: the validated, scheduled actions (:func:`riskcore.inputs.schedule_tape`)
   become :class:`TapeArrays`, one row per action in run order.  Whatever the Book would
   refuse from the row alone (unknown account or contract, a bad side or mode word, a
   quantity that is not a positive number, an order id that is not an integer, ...) is
   judged here, in the Book's order of checks, and kept as the exact sentence of the
   reference's ``refused`` event; the kernel only reports it at the row's bar.
2. :func:`prepare_tape`: the book's arrays get the position slots and order rows the
   tape may need (:func:`tape_capacity`, :func:`grow_book`), and the kernel's running
   state (:class:`TapeState`: order ids, tags, the tape's ledger) is set up.
3. :func:`tape_events`: after the run, the kernel's event records of the tape become the
   reference engine's event dicts, with the reason sentences written out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..enums import LEG_NAMES, SIDE_NAMES, parse_leg, parse_margin_mode, parse_position_mode, parse_side
from ..checks import LIMIT, check_amount as _check_amount, check_price as _check_price
from ..inputs import ACTIONS, InputError, ScheduledAction
from ..result import EVENT_KINDS
from .enums import Action, EventKind, EvF, EvI, Refusal, SlotState, TapeRefusal
from .state import BookArrays
from .text import REFUSAL_CODES, order_name, position_name, refusal_message

ACTION_NAMES = tuple(ACTIONS)  # index = kernels.enums.Action code
assert ACTION_NAMES == ("market", "limit", "cancel", "add_margin", "remove_margin", "set_leverage", "set_margin_mode",
                        "set_position_mode", "set_auto_add_margin", "set_tp_sl", "deposit", "withdraw")
_KIND = {name: code for code, name in enumerate(ACTION_NAMES)}
_MAX_ID = 2 ** 62  # order ids outside +-this cannot be resting: refused before the run
CLEAR = -math.inf  # take_profit / stop_loss: remove the trigger
INVALID = -1.0  # take_profit / stop_loss: a value the Book refuses (ValueError)


class TapeArrays(NamedTuple):
    """One row per scheduled action, in run order (bar, then tape row).  Codes are -1 where
    not given or not known; ``static`` rows were refused before the run (the text is in
    :attr:`Tape.static_text`) and carry only ``step``, ``kind``, ``account``, ``row``."""
    step: np.ndarray  # i8, the bar at whose first point the action runs
    kind: np.ndarray  # i1, kernels.enums.Action
    account: np.ndarray  # i8, canonical account index (-1: none / unknown)
    contract: np.ndarray  # i8, contract index in the paths (-1: none)
    leg: np.ndarray  # i1, 0 both / 1 long / 2 short (a missing leg is 0, as parse_leg(None))
    side: np.ndarray  # i1, +1 buy / -1 sell (market, limit)
    qty: np.ndarray  # f8, base units (market, limit)
    price: np.ndarray  # f8, limit price
    amount: np.ndarray  # f8, money (add/remove margin, deposit, withdraw; 0 otherwise)
    leverage: np.ndarray  # f8 (set_leverage)
    mode: np.ndarray  # i1, margin mode (0 cross / 1 isolated) or position mode (0 one-way / 1 hedge)
    enabled: np.ndarray  # b1 (set_auto_add_margin)
    reduce_only: np.ndarray  # b1 (market, limit)
    take_profit: np.ndarray  # f8, NaN: keep; -inf: clear; -1: a value the Book refuses
    stop_loss: np.ndarray  # f8, as take_profit
    order_id: np.ndarray  # i8, cancel by id
    tag: np.ndarray  # i8, tag code: the limit's tag, or the tag a cancel names (-1: none)
    row: np.ndarray  # i8, the row in the tape as given
    static: np.ndarray  # b1, refused before the run


class TapeState(NamedTuple):
    """What the kernel keeps between the tape's bars."""
    tag_order: np.ndarray  # i8 [n_tags], order id of each tag (-1: no limit placed under it yet)
    new_row: np.ndarray  # i8 [n_limits], order row of id ids[1] + j (-1: not placed)
    old_ids: np.ndarray  # i8, ids of the book's orders at the start, sorted
    old_rows: np.ndarray  # i8, their rows
    acc_free: np.ndarray  # i8 [n_accounts], the account's next free pre-allocated order row
    ids: np.ndarray  # i8 [2], next order id, first order id of the tape
    ledger: np.ndarray  # f8 [2], realized PnL of market fills, deposits - withdrawals


@dataclass
class Tape:
    """The encoded tape and what only Python needs: the actions themselves (their raw field
    values appear in the reference's events and sentences) and the sentences of the rows
    refused before the run."""
    arrays: TapeArrays
    actions: list
    static_text: dict = field(default_factory=dict)  # row index -> reason
    n_tags: int = 0

    def bounds(self, step: int) -> tuple[int, int]:
        """Rows ``lo:hi`` of bar ``step``."""
        lo, hi = np.searchsorted(self.arrays.step, [step, step + 1])
        return int(lo), int(hi)

    @property
    def steps(self) -> list[int]:
        return np.unique(self.arrays.step).tolist()


class _Unsupported(Exception):
    """A row the run cannot take (the message says why): a contract the book has but the
    paths do not, an unhashable tag."""


# ------------------------------------------------------------- the Book's checks
# (amounts and prices: riskcore.checks, shared with the Book)
def _trigger(price) -> float:
    """A take-profit / stop-loss field as ``Book.set_tp_sl`` reads it."""
    if price is None:
        return math.nan
    if isinstance(price, str) and price == "clear" or (isinstance(price, float) and math.isnan(price)):
        return CLEAR
    if isinstance(price, (int, float, np.floating, np.integer)) and not isinstance(price, bool) \
            and math.isfinite(price) and 0 < price <= LIMIT:
        return float(price)
    return INVALID


class _IdIndex:
    """``{id: row}`` of the canonical (sorted) account ids, built on first use: a run without
    a tape never pays for it."""

    def __init__(self, ids):
        self.ids = ids
        self.index = None

    def __getitem__(self, key):
        if self.index is None:
            ids = self.ids.tolist() if hasattr(self.ids, "tolist") else list(self.ids)
            self.index = {acct: a for a, acct in enumerate(ids)}
        return self.index[key]

    def __contains__(self, key):
        try:
            self[key]
            return True
        except (KeyError, TypeError):
            return False

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


class _Encoder:
    def __init__(self, account_ids, contracts: tuple, book_contracts: tuple):
        self.acc = {acct: a for a, acct in enumerate(account_ids)} if len(account_ids) < 4096 else \
            _IdIndex(account_ids)
        self.cidx = {symbol: c for c, symbol in enumerate(contracts)}
        self.book = {symbol: None for symbol in book_contracts}
        self.tags: dict = {}

    def account(self, account) -> int:
        """``Book._account``."""
        try:
            return self.acc[account]
        except KeyError:
            raise KeyError(f"unknown account {account!r}") from None

    def contract(self, symbol) -> int:
        """``Book._contract``, then the paths' index (-1: in the book, without a path)."""
        try:
            self.book[symbol]
        except KeyError:
            raise KeyError(f"unknown contract {symbol!r}; the book has {sorted(self.book)}") from None
        return self.cidx.get(symbol, -1)

    def path(self, c: int, symbol) -> int:
        if c < 0:
            raise _Unsupported(f"contract {symbol!r} has no price path")
        return c

    def tag(self, tag) -> int:
        return self.tags.setdefault(tag, len(self.tags))

    def encode(self, out: dict, i: int, name: str, f: dict) -> None:
        """Write row ``i``; raise what the Book raises for a row it refuses before
        looking at the book's state (in the reference's order of evaluation)."""
        if name == "market":
            symbol = f["contract"]
            symbol in self.cidx  # noqa: B015 (run_action's lookup: an unhashable symbol raises here)
            qty = float(f["qty"])
            out["reduce_only"][i] = bool(f.get("reduce_only", False))
            out["account"][i] = self.account(f["account"])
            c = self.contract(symbol)
            out["side"][i] = parse_side(f["side"])
            _check_amount("quantity", qty)
            if c < 0:
                _check_price(math.nan)  # the reference prices it at NaN
            out["contract"][i] = c
            out["qty"][i] = qty
            out["leg"][i] = parse_leg(f.get("leg"))
        elif name == "limit":
            qty = float(f["qty"])
            price = float(f["price"])
            out["reduce_only"][i] = bool(f.get("reduce_only", False))
            out["account"][i] = self.account(f["account"])
            c = self.path(self.contract(f["contract"]), f["contract"])
            out["side"][i] = parse_side(f["side"])
            _check_amount("quantity", qty)
            _check_price(price)
            out["leg"][i] = parse_leg(f.get("leg"))
            out["contract"][i], out["qty"][i], out["price"][i] = c, qty, price
            if "tag" in f:
                try:
                    out["tag"][i] = self.tag(f["tag"])
                except TypeError:
                    raise _Unsupported(f"tag {f['tag']!r} is not hashable") from None
        elif name == "cancel":
            if "order_id" in f:
                order_id = int(f["order_id"])
                if not -_MAX_ID < order_id < _MAX_ID:
                    raise KeyError(f"no resting order #{order_id}")
                out["order_id"][i] = order_id
            else:
                self.tags.get(f["tag"])  # an unhashable tag raises TypeError, as in the reference
                out["tag"][i] = self.tag(f["tag"])
        elif name in ("add_margin", "remove_margin"):
            amount = float(f.get("amount", 0.0))
            _check_amount("margin to add" if name == "add_margin" else "margin to remove", amount)
            out["account"][i] = self.account(f["account"])
            out["contract"][i] = self.path(self.contract(f["contract"]), f["contract"])
            out["leg"][i] = parse_leg(f.get("leg"))
            out["amount"][i] = amount
        elif name == "set_leverage":
            leverage = float(f["leverage"])
            out["account"][i] = self.account(f["account"])
            out["contract"][i] = self.path(self.contract(f["contract"]), f["contract"])
            out["leg"][i] = parse_leg(f.get("leg"))
            if not (math.isfinite(leverage) and leverage >= 1):
                raise ValueError(f"leverage must be a number >= 1, not {leverage!r}")
            out["leverage"][i] = leverage
        elif name == "set_margin_mode":
            out["account"][i] = self.account(f["account"])
            out["mode"][i] = parse_margin_mode(f["mode"])
            out["contract"][i] = self.path(self.contract(f["contract"]), f["contract"])
        elif name == "set_position_mode":
            out["account"][i] = self.account(f["account"])
            out["mode"][i] = parse_position_mode(f["mode"])
        elif name == "set_auto_add_margin":
            out["enabled"][i] = bool(f["enabled"])
            out["account"][i] = self.account(f["account"])
            out["contract"][i] = self.path(self.contract(f["contract"]), f["contract"])
            out["leg"][i] = parse_leg(f.get("leg"))
        elif name == "set_tp_sl":
            out["account"][i] = self.account(f["account"])
            out["contract"][i] = self.path(self.contract(f["contract"]), f["contract"])
            out["leg"][i] = parse_leg(f.get("leg"))
            out["take_profit"][i] = _trigger(f.get("take_profit"))
            out["stop_loss"][i] = _trigger(f.get("stop_loss"))
        else:  # deposit, withdraw
            amount = float(f.get("amount", 0.0))
            _check_amount("deposit" if name == "deposit" else "withdrawal", amount)
            out["account"][i] = self.account(f["account"])
            out["amount"][i] = amount


_COLUMNS = {  # name: (dtype, default)
    "step": (np.int64, 0), "kind": (np.int8, 0), "account": (np.int64, -1), "contract": (np.int64, -1),
    "leg": (np.int8, 0), "side": (np.int8, 0), "qty": (np.float64, np.nan), "price": (np.float64, np.nan),
    "amount": (np.float64, 0.0), "leverage": (np.float64, np.nan), "mode": (np.int8, 0),
    "enabled": (np.bool_, False), "reduce_only": (np.bool_, False), "take_profit": (np.float64, np.nan),
    "stop_loss": (np.float64, np.nan), "order_id": (np.int64, -1), "tag": (np.int64, -1), "row": (np.int64, 0),
    "static": (np.bool_, False),
}
assert tuple(_COLUMNS) == TapeArrays._fields


def encode_tape(actions: list[ScheduledAction], account_ids, contracts: tuple,
                book_contracts: tuple | None = None) -> Tape:
    """Columns of the scheduled ``actions`` (sorted by bar, then tape row, as
    :func:`riskcore.inputs.schedule_tape` returns them).

    ``account_ids``: the kernels' accounts in canonical order (``PackMeta.account_ids``);
    ``contracts``: the paths' symbols (the kernels' contract index); ``book_contracts``: every
    symbol of the book (named by the "unknown contract" sentence; default ``contracts``).
    A row naming a contract the book has but the paths do not raises
    :class:`~riskcore.inputs.InputError`, as :func:`riskcore.simulate` does up front."""
    n = len(actions)
    out = {name: np.full(n, default, dtype) for name, (dtype, default) in _COLUMNS.items()}
    ids = account_ids if isinstance(account_ids, np.ndarray) else list(account_ids)  # listed on first use
    enc = _Encoder(ids, tuple(contracts), tuple(contracts) if book_contracts is None else tuple(book_contracts))
    static = {}
    step, kind, row, account = out["step"], out["kind"], out["row"], out["account"]
    for i, action in enumerate(actions):
        name = action.action
        step[i] = action.step
        row[i] = action.row
        kind[i] = _KIND[name]
        f = action.fields
        try:
            enc.encode(out, i, name, f)
        except (ValueError, KeyError, TypeError) as exc:
            out["static"][i] = True
            message = exc.args[0] if exc.args else str(exc)
            static[i] = f"{name}: {type(exc).__name__}: {message}"
            try:  # the event's wallet is that of the account named, if there is one
                account[i] = enc.acc.get(f.get("account"), -1)
            except TypeError:
                account[i] = -1
        except _Unsupported as exc:
            raise InputError(f"tape row {action.row}: {exc.args[0]}") from None
    if n and np.any(np.diff(step) < 0):
        raise ValueError("the actions must be sorted by bar (as schedule_tape returns them)")
    return Tape(TapeArrays(**out), list(actions), static, len(enc.tags))


# --------------------------------------------------------- room for the tape
def tape_capacity(ta: TapeArrays, bk: BookArrays) -> tuple[np.ndarray, np.ndarray]:
    """What the tape may add to the book: the keys ``(account * n_contracts + contract) * 3 + leg``
    of the position slots a market or limit row may open that the book does not have
    (sorted), and the number of limit rows per account (an upper bound on its new orders)."""
    n_acc, n_c = bk.set_mode.shape
    trade = ~ta.static & ((ta.kind == Action.MARKET) | (ta.kind == Action.LIMIT))
    if not trade.any():
        new_keys = np.zeros(0, np.int64)
    else:
        keys = np.unique((ta.account[trade] * n_c + ta.contract[trade]) * 3 + ta.leg[trade])
        s_acc = np.repeat(np.arange(n_acc, dtype=np.int64), np.diff(bk.acc_slot0))
        have = (s_acc * n_c + bk.s_contract) * 3 + bk.s_leg  # sorted: slots go by account, then (contract, leg)
        at = np.minimum(np.searchsorted(have, keys), max(have.size - 1, 0))
        new_keys = keys[~((have.size > 0) & (have[at] == keys))] if have.size else keys
    limits = ~ta.static & (ta.kind == Action.LIMIT)
    return new_keys, np.bincount(ta.account[limits], minlength=n_acc).astype(np.int64)


def grow_book(bk: BookArrays, new_slot_keys: np.ndarray, order_room: np.ndarray) -> tuple[BookArrays, np.ndarray]:
    """The same book with empty slots at ``new_slot_keys`` (each account's slots stay sorted by
    (contract, leg)) and ``order_room[a]`` dead order rows after account ``a``'s orders.
    Returns the arrays and each account's first free order row.  Vectorised."""
    n_acc, n_c = bk.set_mode.shape
    n_orders = np.diff(bk.acc_ord0)
    if not new_slot_keys.size and not order_room.any():  # nothing to add (no tape): the book as it is
        return bk, bk.acc_ord0[:-1] + n_orders
    n_old = bk.s_qty.size
    s_acc = np.repeat(np.arange(n_acc, dtype=np.int64), np.diff(bk.acc_slot0))
    keys = np.concatenate([(s_acc * n_c + bk.s_contract) * 3 + bk.s_leg, new_slot_keys.astype(np.int64)])
    dest = np.empty(keys.size, np.int64)
    dest[np.argsort(keys, kind="stable")] = np.arange(keys.size)
    old_at, new_at = dest[:n_old], dest[n_old:]
    new_leg = new_slot_keys % 3

    def slots(old, fill, dtype=None):
        arr = np.empty(keys.size, dtype or old.dtype)
        arr[old_at] = old
        arr[new_at] = fill
        return arr

    acc_slot0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(np.bincount(keys // (3 * n_c), minlength=n_acc), out=acc_slot0[1:])
    n_orders = np.diff(bk.acc_ord0)
    acc_ord0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(n_orders + order_room, out=acc_ord0[1:])
    o_acc = np.repeat(np.arange(n_acc, dtype=np.int64), n_orders)
    o_at = acc_ord0[o_acc] + (np.arange(bk.o_id.size) - bk.acc_ord0[o_acc])
    n_rows = int(acc_ord0[-1])

    def orders(old, fill):
        arr = np.full(n_rows, fill, old.dtype)
        arr[o_at] = old
        return arr

    grown = bk._replace(
        acc_slot0=acc_slot0, acc_ord0=acc_ord0,
        s_contract=slots(bk.s_contract, (new_slot_keys // 3) % n_c), s_leg=slots(bk.s_leg, new_leg),
        s_side=slots(bk.s_side, np.where(new_leg == 2, -1, 1)), s_state=slots(bk.s_state, SlotState.EMPTY),
        s_qty=slots(bk.s_qty, 0.0), s_entry=slots(bk.s_entry, 0.0), s_wiso=slots(bk.s_wiso, 0.0),
        s_tp=slots(bk.s_tp, np.nan), s_sl=slots(bk.s_sl, np.nan), s_lp=slots(bk.s_lp, np.nan),
        s_seq=slots(bk.s_seq, 0),
        o_id=orders(bk.o_id, -1), o_contract=orders(bk.o_contract, 0), o_leg=orders(bk.o_leg, 0),
        o_side=orders(bk.o_side, 1), o_qty=orders(bk.o_qty, 0.0), o_price=orders(bk.o_price, 0.0),
        o_reduce_only=orders(bk.o_reduce_only, False), o_live=orders(bk.o_live, False))
    return grown, acc_ord0[:-1] + n_orders


def prepare_tape(bk: BookArrays, tape: Tape, next_order_id: int) -> tuple[BookArrays, TapeState]:
    """The book grown for the tape, and the kernel's tape state at the start of the run."""
    new_keys, room = tape_capacity(tape.arrays, bk)
    bk, acc_free = grow_book(bk, new_keys, room)
    live = np.flatnonzero(bk.o_live)
    by_id = np.argsort(bk.o_id[live], kind="stable")
    ts = TapeState(np.full(tape.n_tags, -1, np.int64), np.full(int(room.sum()), -1, np.int64),
                   bk.o_id[live][by_id].copy(), live[by_id].astype(np.int64), acc_free,
                   np.array([next_order_id, next_order_id], np.int64), np.zeros(2))
    return bk, ts


# ------------------------------------------------------------------ the events
def _sentence(code: int, e, f, row: dict, name: str, account_ids, contracts) -> tuple[str, str]:
    """``(code, message)`` of the Book's exception for kernel refusal ``code``."""
    a = e[EvI.ACCOUNT]
    who = account_ids[a]  # the book's own id (acct.account_id, pos.account)
    raw = row.get("account")  # the id as the tape gave it (the Book's ``account`` argument)
    symbol = row.get("contract")
    r0, r1, r2, r3 = f[EvF.R0], f[EvF.R1], f[EvF.R2], f[EvF.R3]
    leg = parse_leg(row.get("leg"))
    T = TapeRefusal

    def pos_name(side, qty) -> str:
        return position_name(int(side), qty, contracts[e[EvI.CONTRACT]] if e[EvI.CONTRACT] >= 0 else symbol,
                             e[EvI.LEG] if e[EvI.LEG] >= 0 else leg, who)

    def new_order() -> str:  # the Order the limit would have placed
        return order_name(int(r0), parse_side(row["side"]), float(row["qty"]), symbol, float(row["price"]), leg)

    if code >= T.FILL:
        rc = code - T.FILL
        return REFUSAL_CODES[rc], refusal_message(rc, who, contracts[e[EvI.CONTRACT]], e[EvI.LEG], -e[EvI.SIDE],
                                                  (r0, r1, r2, r3))
    if code == T.ORDER_LEG_HEDGE:
        return "ValueError", (f"account {who!r} is in hedge mode: an order must name its leg "
                              "('long' or 'short')")
    if code == T.ORDER_LEG_ONE_WAY:
        return "ValueError", f"account {who!r} is in one-way mode: an order has no leg"
    if code == T.POS_LEG_HEDGE:
        return "ValueError", f"account {who!r} is in hedge mode: name the leg ('long' or 'short')"
    if code == T.POS_LEG_ONE_WAY:
        return "ValueError", f"account {who!r} is in one-way mode: leg must be None"
    if code == T.NO_POSITION:
        where = "" if leg == 0 else f" {LEG_NAMES[leg]} leg"
        return "no_position", f"account {who!r} has no {symbol}{where} position"
    if code == T.NOT_ISOLATED:
        return "not_isolated", (f"account {who!r}: {pos_name(r0, r1)} is in cross margin; only isolated "
                                "positions have their own margin")
    if code == T.ADD_FREE:
        return "insufficient_free_balance", (f"account {raw!r}: cannot add {float(row['amount']):g} to "
                                             f"{pos_name(r0, r1)}: the free balance is {r2:g}")
    if code == T.REMOVE_MOST:
        return "remove_too_much", (f"account {raw!r}: cannot remove {float(row['amount']):g} from "
                                   f"{pos_name(r0, r1)}: at most {r2:g} may be removed")
    if code == T.LEV_ONE_WAY_LEG:
        return "ValueError", f"account {raw!r} is in one-way mode: leverage has no legs (leg must be None)"
    if code == T.LEV_LEGS_DIFFER:
        return "cross_leverage_mismatch", (f"account {raw!r}: cross hedge legs of {symbol} must share one leverage "
                                           f"({r0:g}x on the other leg); set both with leg=None")
    if code == T.LEV_ABOVE_MAX:
        return "leverage_cap", (f"account {raw!r}: leverage {float(row['leverage']):g}x is above the {symbol} "
                                f"brackets' highest max leverage {r0:g}x")
    if code == T.LEV_CAP:
        return "leverage_cap", refusal_message(Refusal.LEVERAGE_CAP, who, contracts[e[EvI.CONTRACT]]
                                               if e[EvI.CONTRACT] >= 0 else symbol, leg, 0, (r0, r1, r2, r3))
    if code == T.LEV_MARGIN:
        return "insufficient_margin", (f"account {who!r}: leverage {float(row['leverage']):g}x on {symbol} would "
                                       f"leave initial margin uncovered (short by {r0:,.2f})")
    if code in (T.BLOCKED_POS, T.BLOCKED_ORDER):
        if name == "set_margin_mode":
            what, rcode = f"change the margin mode of {symbol}", "margin_mode_blocked"
        else:
            what, rcode = "change the position mode", "position_mode_blocked"
        if code == T.BLOCKED_POS:
            return rcode, f"account {who!r}: cannot {what}: open position {pos_name(r0, r1)}"
        blocker = order_name(int(r0), int(r3), r1, contracts[e[EvI.CONTRACT]], r2, e[EvI.LEG])
        return rcode, f"account {who!r}: cannot {what}: {blocker}"
    if code == T.CROSS_LEGS_DIFFER:
        return "cross_leverage_mismatch", (f"account {raw!r}: {symbol} legs have leverage {r0:g}x (long) and "
                                           f"{r1:g}x (short); cross hedge legs must share one leverage, set it first")
    if code == T.AUTO_CROSS:
        return "auto_add_cross", (f"account {raw!r}: auto add-margin applies to isolated positions only; "
                                  f"{symbol} is in cross margin")
    if code == T.AUTO_ONE_WAY_LEG:
        return "ValueError", f"account {raw!r} is in one-way mode: leg must be None"
    if code in (T.TP_CROSSED, T.SL_CROSSED):
        key, what = ("take_profit", "take profit") if code == T.TP_CROSSED else ("stop_loss", "stop loss")
        return "tp_sl_crossed", f"{pos_name(r0, r1)}: {what} {row[key]:g} is already reached at mark {r2:g}"
    if code in (T.TP_INVALID, T.SL_INVALID):
        key = "take_profit" if code == T.TP_INVALID else "stop_loss"
        return "ValueError", (f"{key} must be a positive price up to {LIMIT:g}, None (keep) or 'clear', "
                              f"not {row.get(key)!r}")
    if code == T.TAG_UNKNOWN:
        return "KeyError", f"no order tagged {row['tag']!r}"
    if code == T.NO_ORDER:
        return "KeyError", f"no resting order #{int(r0)}"
    if code == T.WITHDRAW_MOST:
        return "insufficient_free_balance", (f"account {raw!r}: cannot withdraw {float(row['amount']):g}, at most "
                                             f"{r0:g} is withdrawable (the free balance, capped at the wallet)")
    if code == T.LIMIT_RO_HEDGE:
        word = "sell" if leg == 1 else "buy"
        return "reduce_only_opens", f"{new_order()}: a reduce-only order on the {LEG_NAMES[leg]} leg must {word}"
    if code == T.LIMIT_NO_LEG:
        return "no_position", f"{new_order()} would close the {LEG_NAMES[leg]} leg, but there is none"
    if code == T.LIMIT_RO_NOTHING:
        what = "there is no position" if r1 == 0 else f"the position is {SIDE_NAMES[int(r1)]}"
        return "reduce_only_opens", f"{new_order()} is reduce-only, but {what} to reduce"
    if code == T.LIMIT_CLOSE_EXCEEDS:
        return "close_exceeds_position", f"{new_order()}: closing orders would exceed the {r1:g} held on the leg"
    if code == T.LIMIT_MARGIN:
        return "insufficient_margin", (f"account {who!r}: {new_order()} would leave initial margin uncovered "
                                       f"(short by {r1:,.2f})")
    return "refused", f"tape refusal {code}"


def tape_events(ints: np.ndarray, floats: np.ndarray, tape: Tape, account_ids, contracts: tuple) -> list[dict]:
    """The tape's event records (``ints [n, N_EVI]``, ``floats [n, N_EVF]``, in emission order)
    as the reference engine's event dicts (``ReferenceEngine.emit``), reasons written out.
    As the reference: fills and cancels name the book's account and contract, the other
    events the values the tape gave."""
    ids = account_ids.tolist() if isinstance(account_ids, np.ndarray) else list(account_ids)
    actions = tape.actions
    out = []
    for e, f in zip(ints.tolist(), floats.tolist()):
        r = e[EvI.IVAL]
        action = actions[r]
        name, row = action.action, action.fields
        kind = e[EvI.KIND]
        a, c, leg = e[EvI.ACCOUNT], e[EvI.CONTRACT], e[EvI.LEG]
        d = {"step": e[EvI.T], "point": e[EvI.K], "round": e[EvI.ROUND], "timestamp": None, "account": row.get("account"),
             "contract": row.get("contract"), "leg": None, "kind": EVENT_KINDS[kind], "side": 0, "qty": f[EvF.QTY],
             "price": f[EvF.PRICE], "amount": f[EvF.AMOUNT], "fee": f[EvF.FEE], "wallet": f[EvF.WALLET],
             "wallet_iso": f[EvF.WALLET_ISO], "reason": ""}
        if kind == EventKind.REFUSED:
            if e[EvI.RCODE] == TapeRefusal.STATIC:
                d["reason"] = tape.static_text[r]
            else:
                code, message = _sentence(e[EvI.RCODE], e, f, row, name, ids, contracts)
                d["reason"] = f"{name}: {code}: {message}"
        elif kind == EventKind.ACTION:
            d["reason"] = name
        else:
            d["leg"] = LEG_NAMES[leg]
            d["side"] = e[EvI.SIDE]
            if kind in (EventKind.FILL, EventKind.CANCEL):
                d["account"], d["contract"] = ids[a], contracts[c]
            if kind in (EventKind.ORDER, EventKind.CANCEL):
                d["reason"] = f"order #{int(f[EvF.R0])}"
        out.append(d)
    return out
