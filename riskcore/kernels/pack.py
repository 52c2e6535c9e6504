"""Pack a book's columnar export into the kernels' struct-of-arrays, and back.

Strings live only here: account ids, contract symbols, legs, margin modes, event
kinds and reasons are mapped to and from the integer codes of
:mod:`riskcore.kernels.enums`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from ..book import Account, Book, Contract, Order, Position, Settings
from ..enums import LEG_NAMES, PositionMode
from ..result import EVENT_COLUMNS, EVENT_KINDS
from .enums import EvF, EvI, Reason, SlotState, Stage
from .margin_nb import isolated_lp_nb
from .options import NB
from .state import BookArrays, ContractArrays
from .text import REFUSAL_CODES as _REFUSAL_CODES, refusal_message  # noqa: F401 (re-exported)

_LEG_CODES = {"both": 0, "long": 1, "short": 2}
_MODE_CODES = {"cross": 0, "isolated": 1}


@dataclass
class PackMeta:
    """What the arrays do not hold: ids, symbols and the book's scalars."""
    account_ids: np.ndarray  # object [n_accounts], canonical (sorted) order
    contracts: tuple  # symbols, in the paths' order (the kernels' contract index)
    fees_collected: float
    next_order_id: int


def _sorted_ids(ids: np.ndarray) -> np.ndarray:
    values = list(ids)
    if values and isinstance(values[0], str):
        return np.array(sorted(values), dtype=object)
    arr = np.asarray(values, dtype=np.int64) if values else np.zeros(0, np.int64)
    return np.sort(arr).astype(object)


def contract_arrays(book: Book, contracts: tuple) -> ContractArrays:
    """Fee rates and padded bracket tables of the paths' contracts."""
    n_c = len(contracts)
    tables = [book.contracts[s].brackets for s in contracts]
    width = max(b.n_tiers for b in tables)
    cap = np.full((n_c, width), np.inf)
    mmr = np.zeros((n_c, width))
    cum = np.zeros((n_c, width))
    max_lev = np.zeros((n_c, width))
    for c, b in enumerate(tables):
        n = b.n_tiers
        cap[c, :n], mmr[c, :n], cum[c, :n], max_lev[c, :n] = b.notional_cap, b.mmr, b.cum, b.max_leverage
    return ContractArrays(np.array([book.contracts[s].maker_fee for s in contracts], dtype=np.float64),
                          np.array([book.contracts[s].taker_fee for s in contracts], dtype=np.float64),
                          np.array([b.n_tiers for b in tables], dtype=np.int64), cap, mmr, cum, max_lev)


def pack_frames(frames: dict, contracts: tuple, default_leverage_by_contract: np.ndarray
                ) -> tuple[BookArrays, PackMeta]:
    """The struct-of-arrays of a book's tables (:func:`riskcore.columns.book_to_frames`).

    Vectorised (no Python loop over rows).  ``default_leverage_by_contract`` is the
    leverage of never-set settings (the book's default capped by the first tier)."""
    n_c = len(contracts)
    cidx = {s: c for c, s in enumerate(contracts)}
    accounts = frames["accounts"]
    ids = _sorted_ids(accounts["account"].to_numpy(object))
    index = pd.Index(ids)
    n_acc = ids.size
    acc_pos = index.get_indexer(accounts["account"].to_numpy(object))
    wallet = np.zeros(n_acc)
    wallet[acc_pos] = accounts["wallet"].to_numpy(np.float64)

    acc_hedge = np.zeros(n_acc, np.bool_)
    acc_hedge[acc_pos] = accounts["position_mode"].to_numpy(object) == "hedge"
    set_stored = np.zeros((n_acc, n_c), np.bool_)
    set_mode = np.zeros((n_acc, n_c), np.int8)
    lev_long = np.empty((n_acc, n_c))
    lev_long[:] = default_leverage_by_contract[None, :]
    lev_short = lev_long.copy()
    auto_long = np.zeros((n_acc, n_c), np.bool_)
    auto_short = np.zeros((n_acc, n_c), np.bool_)
    st = frames["settings"]
    if len(st):
        ci = st["contract"].map(cidx).to_numpy()
        keep = ~pd.isna(ci)
        st = st[keep]
        ci = ci[keep].astype(np.int64)
        ai = index.get_indexer(st["account"].to_numpy(object))
        set_stored[ai, ci] = True
        set_mode[ai, ci] = st["margin_mode"].map(_MODE_CODES).to_numpy(np.int8)
        lev_long[ai, ci] = st["leverage_long"].to_numpy(np.float64)
        lev_short[ai, ci] = st["leverage_short"].to_numpy(np.float64)
        auto_long[ai, ci] = st["auto_add_long"].to_numpy(np.bool_)
        auto_short[ai, ci] = st["auto_add_short"].to_numpy(np.bool_)

    pos = frames["positions"]
    orders = frames["orders"]
    p_acc = index.get_indexer(pos["account"].to_numpy(object)).astype(np.int64)
    p_c = pos["contract"].map(cidx).to_numpy(np.int64) if len(pos) else np.zeros(0, np.int64)
    p_leg = pos["leg"].map(_LEG_CODES).to_numpy(np.int64) if len(pos) else np.zeros(0, np.int64)
    o_acc = index.get_indexer(orders["account"].to_numpy(object)).astype(np.int64)
    o_c = orders["contract"].map(cidx).to_numpy(np.int64) if len(orders) else np.zeros(0, np.int64)
    o_leg = orders["leg"].map(_LEG_CODES).to_numpy(np.int64) if len(orders) else np.zeros(0, np.int64)
    # one slot per (account, contract, leg) held or reachable by a resting order
    p_key = (p_acc * n_c + p_c) * 3 + p_leg
    o_key = (o_acc * n_c + o_c) * 3 + o_leg
    keys = np.unique(np.concatenate([p_key, o_key]))
    n_slots = keys.size
    s_acc = keys // (3 * n_c)
    s_contract = ((keys // 3) % n_c).astype(np.int32)
    s_leg = (keys % 3).astype(np.int8)
    acc_slot0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(np.bincount(s_acc, minlength=n_acc), out=acc_slot0[1:])
    s_state = np.zeros(n_slots, np.int8)
    s_side = np.where(s_leg == 2, -1, 1).astype(np.int8)
    s_qty = np.zeros(n_slots)
    s_entry = np.zeros(n_slots)
    s_wiso = np.zeros(n_slots)
    s_tp = np.full(n_slots, np.nan)
    s_sl = np.full(n_slots, np.nan)
    s_seq = np.zeros(n_slots, np.int64)
    if len(pos):
        at = np.searchsorted(keys, p_key)
        s_seq[at] = np.arange(len(pos))  # rows are in each account's dict order
        s_state[at] = SlotState.LIVE
        s_side[at] = pos["side"].to_numpy(np.int8)
        s_qty[at] = pos["qty"].to_numpy(np.float64)
        s_entry[at] = pos["entry_price"].to_numpy(np.float64)
        s_wiso[at] = pos["wallet_iso"].to_numpy(np.float64)
        s_tp[at] = pos["take_profit"].to_numpy(np.float64, na_value=np.nan)
        s_sl[at] = pos["stop_loss"].to_numpy(np.float64, na_value=np.nan)

    o_ids = orders["order_id"].to_numpy(np.int64)
    order = np.lexsort((o_ids, o_acc))
    acc_ord0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(np.bincount(o_acc, minlength=n_acc), out=acc_ord0[1:])
    bk = BookArrays(
        wallet, acc_slot0, acc_ord0, set_mode, lev_long, lev_short, auto_long, auto_short,
        s_contract, s_leg, s_side, s_state, s_qty, s_entry, s_wiso, s_tp, s_sl, np.full(n_slots, np.nan),
        o_ids[order].copy(), o_c[order].astype(np.int32), o_leg[order].astype(np.int8),
        orders["side"].to_numpy(np.int8)[order].copy(), orders["qty"].to_numpy(np.float64)[order].copy(),
        orders["price"].to_numpy(np.float64)[order].copy(), orders["reduce_only"].to_numpy(np.bool_)[order].copy(),
        np.ones(len(orders), np.bool_), acc_hedge, set_stored, s_seq)
    meta = PackMeta(ids, tuple(contracts), 0.0, 1)
    return bk, meta


def default_leverage(book: Book, contracts: tuple) -> np.ndarray:
    return np.array([min(book.default_leverage, float(book.contracts[s].brackets.max_leverage[0]))
                     for s in contracts])


def pack_book(book: Book, contracts: tuple) -> tuple[BookArrays, PackMeta]:
    """The book's columnar export (``book.to_frames()``), packed."""
    bk, meta = pack_frames(book.to_frames(), contracts, default_leverage(book, contracts))
    meta.fees_collected = float(book.fees_collected)
    meta.next_order_id = int(book.next_order_id)
    return bk, meta


@njit(**NB)
def init_lp_nb(bk, ct, mm_entry):
    """Cache every isolated liquidation price (NaN for cross and empty slots)."""
    for a in range(bk.acc_wallet.size):
        for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
            c = bk.s_contract[p]
            if bk.s_state[p] == SlotState.LIVE and bk.set_mode[a, c] == 1:
                bk.s_lp[p] = isolated_lp_nb(ct, c, bk.s_side[p], bk.s_qty[p], bk.s_entry[p], bk.s_wiso[p], mm_entry)
            else:
                bk.s_lp[p] = np.nan


# -------------------------------------------------------------------- unpacking
def unpack_book(base: Book, bk: BookArrays, meta: PackMeta, marks: dict, fees_collected: float,
                next_order_id: int) -> Book:
    """A new Book: ``base``'s contracts, accounts and settings, with wallets, positions and
    orders read from the arrays."""
    book = Book(default_leverage=base.default_leverage)
    for symbol, c in base.contracts.items():
        book.contracts[symbol] = Contract(symbol, c.brackets, c.maker_fee, c.taker_fee,
                                          marks.get(symbol, c.mark_price))
    book.fees_collected = float(fees_collected)
    book.next_order_id = int(next_order_id)
    index = {acct_id: a for a, acct_id in enumerate(meta.account_ids)}
    contracts = meta.contracts
    wallet = bk.acc_wallet.tolist()
    slot0, ord0 = bk.acc_slot0.tolist(), bk.acc_ord0.tolist()
    state, s_c, s_leg, s_side = bk.s_state.tolist(), bk.s_contract.tolist(), bk.s_leg.tolist(), bk.s_side.tolist()
    s_qty, s_entry, s_wiso = bk.s_qty.tolist(), bk.s_entry.tolist(), bk.s_wiso.tolist()
    s_tp, s_sl = bk.s_tp.tolist(), bk.s_sl.tolist()
    o_live, o_id, o_c, o_leg = bk.o_live.tolist(), bk.o_id.tolist(), bk.o_contract.tolist(), bk.o_leg.tolist()
    o_side, o_qty, o_price, o_ro = bk.o_side.tolist(), bk.o_qty.tolist(), bk.o_price.tolist(), bk.o_reduce_only.tolist()
    for acct_id, old in base.accounts.items():
        a = index[acct_id]
        acct = Account(acct_id, wallet[a], old.position_mode, copy.deepcopy(old.settings))
        for p in range(slot0[a], slot0[a + 1]):
            if state[p] == SlotState.LIVE:
                symbol = contracts[s_c[p]]
                acct.positions[(symbol, s_leg[p])] = Position(
                    acct_id, symbol, s_leg[p], s_side[p], s_qty[p], s_entry[p], s_wiso[p],
                    None if s_tp[p] != s_tp[p] else s_tp[p], None if s_sl[p] != s_sl[p] else s_sl[p])
        for i in range(ord0[a], ord0[a + 1]):
            if o_live[i]:
                acct.orders[o_id[i]] = Order(o_id[i], acct_id, contracts[o_c[i]], o_leg[i], o_side[i], o_qty[i],
                                             o_price[i], bool(o_ro[i]))
        book.accounts[acct_id] = acct
    return book


def unpack_modes(book: Book, bk: BookArrays, meta: PackMeta, accounts=None) -> Book:
    """Bring an :func:`unpack_book` result up to the arrays' position modes and settings (the
    tape's actions change them) for the account indices ``accounts`` (None: all), and put
    each account's positions in the arrays' dict order (``s_seq``) where it is not the
    (contract, leg) order.  Settings of contracts outside the paths are left as they are."""
    ids = meta.account_ids
    n_acc = ids.size
    todo = np.arange(n_acc) if accounts is None else np.unique(np.asarray(accounts, np.int64))
    s_acc = np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0))
    live = np.flatnonzero(bk.s_state == SlotState.LIVE)
    if live.size > 1:  # accounts whose live slots are not in s_seq order
        same = s_acc[live[1:]] == s_acc[live[:-1]]
        out_of_order = np.unique(s_acc[live[1:]][same & (bk.s_seq[live[1:]] < bk.s_seq[live[:-1]])])
    else:
        out_of_order = np.zeros(0, np.int64)
    slot0 = bk.acc_slot0
    for a in todo.tolist():
        acct = book.accounts[ids[a]]
        acct.position_mode = PositionMode.HEDGE if bk.acc_hedge[a] else PositionMode.ONE_WAY
        for c, symbol in enumerate(meta.contracts):
            if bk.set_stored[a, c]:
                acct.settings[symbol] = Settings(int(bk.set_mode[a, c]), float(bk.set_lev_long[a, c]),
                                                 float(bk.set_lev_short[a, c]), bool(bk.set_auto_long[a, c]),
                                                 bool(bk.set_auto_short[a, c]))
            else:
                acct.settings.pop(symbol, None)
    for a in out_of_order.tolist():
        acct = book.accounts[ids[a]]
        slots = [p for p in range(slot0[a], slot0[a + 1]) if bk.s_state[p] == SlotState.LIVE]
        slots.sort(key=lambda p: bk.s_seq[p])
        keys = [(meta.contracts[bk.s_contract[p]], int(bk.s_leg[p])) for p in slots]
        acct.positions = {key: acct.positions[key] for key in keys}
    return book


# ----------------------------------------------------------------------- events
def _reason(reason: int, rcode: int, ival: int, side: int, account, symbol, leg: int, r) -> str:
    if reason == Reason.NONE:
        return ""
    if reason == Reason.FUNDING_RATE:
        return f"rate {float(r[0]):g}"
    if reason == Reason.CANCEL_LIQUIDATION:
        return f"order #{ival}: liquidation"
    if reason == Reason.FUND_PAID:
        return f"insurance fund paid {float(r[0]):.10g}"
    if reason == Reason.ADL_BANKRUPT:
        return "bankrupt side"
    if reason == Reason.ADL_COUNTERPARTY:
        return "counterparty"
    code = _REFUSAL_CODES.get(rcode, "refused")
    if reason == Reason.FILL_REFUSED:
        msg = refusal_message(rcode, account, symbol, leg, -side, r)
        return f"fill of order #{ival}: {code}: {msg}"
    fired = "tp" if reason == Reason.TP_REFUSED else "sl"
    return f"{fired}: {code}: {refusal_message(rcode, account, symbol, leg, side, r)}"


def gather_events(ev) -> tuple[np.ndarray, np.ndarray]:
    """All recorded events (ints, floats) in the reference engine's order."""
    ints = np.concatenate([ev.ints[r, :ev.count[r]] for r in range(ev.count.size)])
    floats = np.concatenate([ev.floats[r, :ev.count[r]] for r in range(ev.count.size)])
    return ints, floats


def events_frame(ints: np.ndarray, floats: np.ndarray, meta: PackMeta, timestamps: np.ndarray,
                 action_events: list[dict]) -> pd.DataFrame:
    """Kernel events and the tape's events (already dicts, stage ACTIONS) as one frame,
    sorted by (step, point, stage, contract for funding, account, sequence)."""
    n = ints.shape[0]
    ids = meta.account_ids
    symbols = meta.contracts
    rows = []
    E, F = EvI, EvF
    it = ints.tolist()
    ft = floats.tolist()
    for i in range(n):
        e, f = it[i], ft[i]
        acct = ids[e[E.ACCOUNT]]
        c = e[E.CONTRACT]
        leg = e[E.LEG]
        symbol = symbols[c] if c >= 0 else None
        rows.append({
            "step": e[E.T], "point": e[E.K], "timestamp": None, "account": acct, "contract": symbol,
            "leg": LEG_NAMES[leg] if leg >= 0 else None, "kind": EVENT_KINDS[e[E.KIND]], "side": e[E.SIDE],
            "qty": f[F.QTY], "price": f[F.PRICE], "amount": f[F.AMOUNT], "fee": f[F.FEE], "wallet": f[F.WALLET],
            "wallet_iso": f[F.WALLET_ISO],
            "reason": _reason(e[E.REASON], e[E.RCODE], e[E.IVAL], e[E.SIDE], acct, symbol, leg,
                              f[F.R0:F.R3 + 1]),
            "_k": (e[E.T], e[E.K], e[E.STAGE], e[E.SUB], 0 if e[E.STAGE] == Stage.BAD_DEBT else e[E.ACCOUNT],
                   e[E.SEQ]),
        })
    for j, d in enumerate(action_events):
        row = dict(d)
        row["_k"] = (d["step"], d["point"], Stage.ACTIONS, 0, 0, j)
        rows.append(row)
    rows.sort(key=lambda r: r["_k"])
    for r in rows:
        del r["_k"]
        r["timestamp"] = pd.Timestamp(timestamps[r["step"]])
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)
