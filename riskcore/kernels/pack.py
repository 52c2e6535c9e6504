"""Pack the canonical columnar book (:class:`~riskcore.table.BookTable`) into the kernels'
struct-of-arrays, and back; render the kernels' event records as a columnar frame.

Plain Python and numpy (nothing here is compiled, so editing it keeps the kernel cache).
Strings live only here and in :mod:`riskcore.result`: account ids, contract symbols,
legs, margin modes, event kinds and reasons are mapped to and from the integer codes of
:mod:`riskcore.kernels.enums`.  Everything is vectorised: no Python loop runs over
accounts, positions or events (except events that carry a sentence of their own, such
as refusals, which are few).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..result import EVENT_COLUMNS, EVENT_KINDS, LEG_WORDS, REASON_CODES, events_from_records
from ..table import MARGIN_MODES as MARGIN_WORDS, POSITION_MODES as POSITION_WORDS, BookTable
from .enums import EvF, EvI, Reason, SlotState, Stage
from .state import BookArrays, ContractArrays
from .text import REFUSAL_CODES as _REFUSAL_CODES, refusal_message  # noqa: F401 (re-exported)


@dataclass
class PackMeta:
    """What the arrays do not hold: ids, symbols and the book's scalars."""
    account_ids: np.ndarray  # [n_accounts] ids in canonical (sorted) order: int64, or object for str ids
    account_rows: np.ndarray  # i8 [n_accounts] row of kernel account a in the table's accounts frame
    contracts: tuple  # symbols, in the paths' order (the kernels' contract index)
    fees_collected: float
    next_order_id: int


def contract_arrays(table: BookTable, contracts: tuple, fee_rate: float = 0.0, adl_policy: int = 0) -> ContractArrays:
    """Fee rates and padded bracket tables of the paths' contracts, with their venue profiles'
    switches: the maintenance table each profile charges (``Profile.maintenance_brackets``),
    the liquidation fee rate (``fee_rate``, the run's, unless the profile sets its own), the
    procedure and the ADL policy (``adl_policy``, the run's code, unless the profile sets one)."""
    from ..adl import policy_code
    from ..venues.profiles import LIQUIDATIONS, profile

    n_c = len(contracts)
    fees = table.contracts.set_index("contract")
    profiles = [profile(fees.loc[s, "venue"]) for s in contracts]
    taker = fees.loc[list(contracts), "taker_fee"].to_numpy(np.float64)
    tables = [prof.maintenance_brackets(table.bracket_tables[s], float(taker[c]))
              for c, (s, prof) in enumerate(zip(contracts, profiles))]
    width = max(b.n_tiers for b in tables)
    cap = np.full((n_c, width), np.inf)
    mmr = np.zeros((n_c, width))
    cum = np.zeros((n_c, width))
    max_lev = np.zeros((n_c, width))
    for c, b in enumerate(tables):
        n = b.n_tiers
        cap[c, :n], mmr[c, :n], cum[c, :n], max_lev[c, :n] = b.notional_cap, b.mmr, b.cum, b.max_leverage
    return ContractArrays(fees.loc[list(contracts), "maker_fee"].to_numpy(np.float64), taker,
                          np.array([b.n_tiers for b in tables], dtype=np.int64), cap, mmr, cum, max_lev,
                          np.array([prof.fee_rate(fee_rate, float(taker[c])) for c, prof in enumerate(profiles)],
                                   np.float64),
                          np.array([LIQUIDATIONS.index(prof.liquidation) for prof in profiles], np.int64),
                          np.array([prof.slice_above for prof in profiles], np.float64),
                          np.array([prof.slice_fraction for prof in profiles], np.float64),
                          np.array([prof.partial_from_tier for prof in profiles], np.int64),
                          np.array([prof.backstop for prof in profiles], np.float64),
                          np.array([prof.takeover for prof in profiles], np.bool_),
                          np.array([adl_policy if prof.adl_policy is None else policy_code(prof.adl_policy)
                                    for prof in profiles], np.int64))


def default_leverage(table: BookTable, contracts: tuple) -> np.ndarray:
    """Leverage of never-set settings: the book's default capped by the first tier."""
    return np.array([min(table.default_leverage, float(table.bracket_tables[s].max_leverage[0])) for s in contracts])


def _kernel_codes(cat: pd.Series, contracts: tuple) -> np.ndarray:
    """A table's contract categorical as kernel contract indices (-1: no path)."""
    cidx = {s: c for c, s in enumerate(contracts)}
    lookup = np.array([cidx.get(s, -1) for s in cat.cat.categories] + [-1], np.int64)
    return lookup[cat.cat.codes.to_numpy()]


def _account_index(table: BookTable) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    ids = table.accounts["account"].to_numpy()
    if ids.dtype == object or ids.dtype.kind in "US":
        ids = ids.astype(object)
        rows = np.array(sorted(range(ids.size), key=ids.__getitem__), dtype=np.int64)
    else:
        rows = np.argsort(ids, kind="stable")
    sorted_ids = ids[rows]
    return sorted_ids, rows, pd.Index(sorted_ids)


def _accounts_of(index: pd.Index, ids) -> np.ndarray:
    values = ids.to_numpy()
    if index.dtype == object:
        values = values.astype(object)
    if index.is_monotonic_increasing and index.dtype.kind == "i" and len(index) and \
            index[0] == 0 and index[-1] == len(index) - 1:
        return values.astype(np.int64)  # ids 0..n-1: the id is the index
    return index.get_indexer(values).astype(np.int64)


def _slot_keys(index: pd.Index, pos: pd.DataFrame, contracts: tuple) -> np.ndarray:
    """Each position's slot key ``(account * n_contracts + contract) * 3 + leg`` (negative:
    a contract without a path), built in place in one int64 array."""
    n_c = len(contracts)
    key = _accounts_of(index, pos["account"])
    c = _kernel_codes(pos["contract"], contracts)
    key *= n_c
    key += c
    key *= 3
    key += pos["leg"].cat.codes.to_numpy()
    key[c < 0] = -1
    return key


def pack_table(table: BookTable, contracts: tuple) -> tuple[BookArrays, PackMeta]:
    """The struct-of-arrays of a validated table, for the contracts ``contracts`` (the
    paths' order).  Vectorised: no Python loop over rows."""
    n_c = len(contracts)
    ids, rows, index = _account_index(table)
    n_acc = ids.size
    wallet = table.accounts["wallet"].to_numpy(np.float64)[rows]

    acc_hedge = table.accounts["position_mode"].cat.codes.to_numpy()[rows] == 1
    set_stored = np.zeros((n_acc, n_c), np.bool_)
    set_mode = np.zeros((n_acc, n_c), np.int8)
    lev_long = np.empty((n_acc, n_c))
    lev_long[:] = default_leverage(table, contracts)[None, :]
    lev_short = lev_long.copy()
    auto_long = np.zeros((n_acc, n_c), np.bool_)
    auto_short = np.zeros((n_acc, n_c), np.bool_)
    st = table.settings
    if len(st):
        ci = _kernel_codes(st["contract"], contracts)
        keep = ci >= 0
        ci = ci[keep]
        ai = _accounts_of(index, st["account"])[keep]
        set_stored[ai, ci] = True
        set_mode[ai, ci] = st["margin_mode"].cat.codes.to_numpy()[keep]
        lev_long[ai, ci] = st["leverage_long"].to_numpy(np.float64)[keep]
        lev_short[ai, ci] = st["leverage_short"].to_numpy(np.float64)[keep]
        auto_long[ai, ci] = st["auto_add_long"].to_numpy(np.bool_)[keep]
        auto_short[ai, ci] = st["auto_add_short"].to_numpy(np.bool_)[keep]

    pos = table.positions
    orders = table.orders
    # one slot per (account, contract, leg) held or reachable by a resting order; the
    # temporaries are let go as soon as they are used (a 10M-position book: 80 MB each)
    p_key = _slot_keys(index, pos, contracts)
    o_acc = _accounts_of(index, orders["account"])
    o_c = _kernel_codes(orders["contract"], contracts)
    o_leg = orders["leg"].cat.codes.to_numpy().astype(np.int64)
    if (p_key < 0).any() or (o_c < 0).any():
        raise ValueError("a position or order is on a contract without a price path")
    direct = not len(orders) and bool(np.all(p_key[1:] > p_key[:-1]))  # the table is in slot order already
    if direct:
        keys = p_key
    else:
        o_key = (o_acc * n_c + o_c) * 3 + o_leg
        keys = np.sort(np.concatenate([p_key, o_key])) if len(orders) else np.sort(p_key)
        del o_key
        if len(orders):  # one slot per key (a sort and a comparison: faster than np.unique's hash here)
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    n_slots = keys.size
    acc_slot0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(np.bincount(keys // (3 * n_c), minlength=n_acc), out=acc_slot0[1:])
    s_contract = ((keys // 3) % n_c).astype(np.int32)
    s_leg = (keys % 3).astype(np.int8)
    if direct:  # every slot is a position, in the table's order: plain copies of its columns
        del keys, p_key
        s_state = np.full(n_slots, SlotState.LIVE, np.int8)
        s_side = pos["side"].to_numpy(np.int8).copy()
        s_qty, s_entry, s_wiso, s_tp, s_sl = (pos[c].to_numpy(np.float64).copy() for c in (
            "qty", "entry_price", "wallet_iso", "take_profit", "stop_loss"))
        s_seq = np.arange(n_slots, dtype=np.int64)
    else:
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
            del keys, p_key
            s_seq[at] = np.arange(len(pos))  # the table's row order: each account's positions in the Book's dict order
            s_state[at] = SlotState.LIVE
            s_side[at] = pos["side"].to_numpy(np.int8)
            s_qty[at] = pos["qty"].to_numpy(np.float64)
            s_entry[at] = pos["entry_price"].to_numpy(np.float64)
            s_wiso[at] = pos["wallet_iso"].to_numpy(np.float64)
            s_tp[at] = pos["take_profit"].to_numpy(np.float64)
            s_sl[at] = pos["stop_loss"].to_numpy(np.float64)
            del at

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
    meta = PackMeta(ids, rows, tuple(contracts), float(table.fees_collected), int(table.next_order_id))
    return bk, meta


def money_of(table: BookTable, fund: float) -> float:
    """Wallets + isolated wallets + fund + fees: the money a run starts or ends with."""
    return (float(table.accounts["wallet"].to_numpy(np.float64).sum())
            + float(table.positions["wallet_iso"].to_numpy(np.float64).sum()) + fund + float(table.fees_collected))


# -------------------------------------------------------------------- unpacking
def unpack_table(base: BookTable, bk: BookArrays, meta: PackMeta, marks: dict, fees_collected: float,
                 next_order_id: int, with_tape: bool = False) -> BookTable:
    """A new table: ``base``'s contracts and accounts with wallets, positions and orders read
    from the arrays and the contracts' marks set to ``marks``.  ``with_tape``: the tape may
    have changed position modes and settings, and reopened positions, so those are read
    from the arrays too (settings of contracts without a path stay as in ``base``) and each
    account's positions are put in the Book's dict order (``s_seq``).

    ``bk``'s slot arrays are used up: without a tape or orders, the live slots are moved to
    their front and the table's columns are views of them (no copy of the positions)."""
    n_acc = meta.account_ids.size
    wallet = np.empty(n_acc)
    wallet[meta.account_rows] = bk.acc_wallet
    accounts = base.accounts.copy()
    accounts["wallet"] = wallet
    symbols = base.symbols
    to_table = np.array([symbols.index(s) for s in meta.contracts], np.int64)
    settings = base.settings
    if with_tape:
        hedge = np.empty(n_acc, np.int8)
        hedge[meta.account_rows] = bk.acc_hedge
        accounts["position_mode"] = pd.Categorical.from_codes(hedge, categories=list(POSITION_WORDS))
        settings = _settings_of(base, bk, meta, to_table)

    is_live = bk.s_state == SlotState.LIVE
    same_codes = np.array_equal(to_table, np.arange(to_table.size))
    if with_tape or bk.o_id.size:  # positions may have opened or reopened: by account, then the Book's dict order
        s_owner = np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0))
        live = np.flatnonzero(is_live)
        live = live[np.lexsort((bk.s_seq[live], s_owner[live]))]
        s_acc = s_owner[live]
        del s_owner
        account = meta.account_ids[s_acc]
        columns = {name: getattr(bk, name)[live] for name in _SLOT_COLUMNS}
    else:  # slots in account order already: the live ones moved to the front of the kernel's own arrays
        n_live = int(np.count_nonzero(is_live))
        columns = {name: _compacted(getattr(bk, name), is_live, n_live) for name in _SLOT_COLUMNS}
        account = _compacted(np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0)), is_live, n_live)
        if not _is_range(meta.account_ids):
            account = meta.account_ids[account]
    del is_live
    contract = columns.pop("s_contract")
    positions = pd.DataFrame({
        "account": account,
        "contract": pd.Categorical.from_codes(contract if same_codes else to_table[contract].astype(np.int32),
                                              categories=symbols),
        "leg": pd.Categorical.from_codes(columns.pop("s_leg"), categories=list(LEG_WORDS)),
        "side": columns.pop("s_side"), "qty": columns.pop("s_qty"), "entry_price": columns.pop("s_entry"),
        "wallet_iso": columns.pop("s_wiso"), "take_profit": columns.pop("s_tp"), "stop_loss": columns.pop("s_sl")},
        copy=False)
    del account, contract
    o_live = np.flatnonzero(bk.o_live)
    o_acc = np.repeat(np.arange(n_acc), np.diff(bk.acc_ord0))[o_live]
    orders = pd.DataFrame({
        "order_id": bk.o_id[o_live], "account": meta.account_ids[o_acc],
        "contract": pd.Categorical.from_codes(to_table[bk.o_contract[o_live]].astype(np.int32), categories=symbols),
        "leg": pd.Categorical.from_codes(bk.o_leg[o_live].astype(np.int8), categories=list(LEG_WORDS)),
        "side": bk.o_side[o_live].astype(np.int8), "qty": bk.o_qty[o_live], "price": bk.o_price[o_live],
        "reduce_only": bk.o_reduce_only[o_live].astype(np.bool_)})
    if meta.account_ids.dtype == object:
        positions["account"] = positions["account"].astype(base.accounts["account"].dtype)
        orders["account"] = orders["account"].astype(base.accounts["account"].dtype)
    contracts = base.contracts.copy()
    contracts["mark_price"] = [float(marks[s]) if s in marks else m
                               for s, m in zip(contracts["contract"], contracts["mark_price"])]
    return base.replace(contracts=contracts, accounts=accounts, settings=settings, positions=positions,
                        orders=orders, fees_collected=float(fees_collected), next_order_id=int(next_order_id))


_SLOT_COLUMNS = ("s_contract", "s_leg", "s_side", "s_qty", "s_entry", "s_wiso", "s_tp", "s_sl")
_COMPACT_CHUNK = 1 << 20


def _compacted(values: np.ndarray, keep: np.ndarray, n_keep: int) -> np.ndarray:
    """``values[keep]`` written over the front of ``values`` itself (chunk by chunk: no copy
    of the whole array), returned as a view of that front.  ``values`` is the kernel's
    scratch, free to reuse; when most of it was dropped the front is copied out so that the
    table does not hold the rest."""
    if n_keep == values.size:
        return values
    at = 0
    for lo in range(0, values.size, _COMPACT_CHUNK):
        part = values[lo:lo + _COMPACT_CHUNK][keep[lo:lo + _COMPACT_CHUNK]]  # a copy: safe to write below lo
        values[at:at + part.size] = part
        at += part.size
    front = values[:n_keep]
    return front.copy() if 2 * n_keep < values.size else front


def _is_range(ids: np.ndarray) -> bool:
    """The account ids are the ints 0 .. n-1 in order (a row is its own id)."""
    return ids.dtype.kind == "i" and (ids.size == 0 or (ids[0] == 0 and ids[-1] == ids.size - 1
                                                         and bool(np.all(ids[1:] > ids[:-1]))))


def _settings_of(base: BookTable, bk: BookArrays, meta: PackMeta, to_table: np.ndarray) -> pd.DataFrame:
    """The settings rows the arrays hold (``set_stored``), in account order, and ``base``'s
    rows for contracts without a path."""
    a, c = np.nonzero(bk.set_stored)
    ours = pd.DataFrame({
        "account": meta.account_ids[a],
        "contract": pd.Categorical.from_codes(to_table[c].astype(np.int32), categories=base.symbols),
        "margin_mode": pd.Categorical.from_codes(bk.set_mode[a, c].astype(np.int8), categories=list(MARGIN_WORDS)),
        "leverage_long": bk.set_lev_long[a, c], "leverage_short": bk.set_lev_short[a, c],
        "auto_add_long": bk.set_auto_long[a, c].astype(np.bool_),
        "auto_add_short": bk.set_auto_short[a, c].astype(np.bool_)})
    if meta.account_ids.dtype == object:
        ours["account"] = ours["account"].astype(base.accounts["account"].dtype)
    other = base.settings[~base.settings["contract"].isin(meta.contracts).to_numpy()]
    return pd.concat([ours, other], ignore_index=True) if len(other) else ours


# ----------------------------------------------------------------------- events
# kernel Reason code -> REASON_CODES entry
_REASON_CODE = {Reason.NONE: "", Reason.FUNDING_RATE: "funding_rate", Reason.FILL_REFUSED: "fill_refused",
                Reason.TP_REFUSED: "tp_refused", Reason.SL_REFUSED: "sl_refused",
                Reason.CANCEL_LIQUIDATION: "liquidation_cancel", Reason.FUND_PAID: "fund_paid",
                Reason.ADL_BANKRUPT: "adl_bankrupt", Reason.ADL_COUNTERPARTY: "adl_counterparty"}


def _reason(reason: int, rcode: int, ival: int, side: int, account, symbol, leg: int, r) -> str:
    """The sentence of one kernel event (the reference engine's ``reason`` text)."""
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
    """All recorded events (ints, floats), buffer row after buffer row."""
    ints = np.concatenate([ev.ints[r, :ev.count[r]] for r in range(ev.count.size)])
    floats = np.concatenate([ev.floats[r, :ev.count[r]] for r in range(ev.count.size)])
    return ints, floats


def _reason_text(ints: np.ndarray, floats: np.ndarray, meta: PackMeta) -> pd.Categorical:
    """The ``reason`` sentences, rendered once per distinct sentence: funding by its rate,
    the fixed ADL words as they are, and one at a time only for the events that carry their
    own numbers (refusals, cancels, fund payments)."""
    n = ints.shape[0]
    reason = ints[:, EvI.REASON]
    words = {"": 0}  # sentence -> its code (built as codes: no Python object per event)
    codes = np.zeros(n, np.int64)

    def code_of(sentence: str) -> int:
        return words.setdefault(sentence, len(words))

    fund = np.flatnonzero(reason == Reason.FUNDING_RATE)
    if fund.size:
        rates, inv = np.unique(floats[fund, EvF.R0], return_inverse=True)
        codes[fund] = np.array([code_of(f"rate {r:g}") for r in rates], np.int64)[inv]
    for r, sentence in ((Reason.ADL_BANKRUPT, "bankrupt side"), (Reason.ADL_COUNTERPARTY, "counterparty")):
        at = reason == r
        if at.any():
            codes[at] = code_of(sentence)
    rest = np.flatnonzero((reason != Reason.NONE) & (reason != Reason.FUNDING_RATE)
                          & (reason != Reason.ADL_BANKRUPT) & (reason != Reason.ADL_COUNTERPARTY))
    for i in rest.tolist():
        e, f = ints[i], floats[i]
        c, leg = int(e[EvI.CONTRACT]), int(e[EvI.LEG])
        codes[i] = code_of(_reason(int(e[EvI.REASON]), int(e[EvI.RCODE]), int(e[EvI.IVAL]), int(e[EvI.SIDE]),
                                   _plain_id(meta.account_ids[e[EvI.ACCOUNT]]), meta.contracts[c] if c >= 0 else None,
                                   leg, f[EvF.R0:EvF.R3 + 1]))
    # categories sorted, as pd.Categorical(text) orders them; only the sentences that occur
    present = np.zeros(len(words), bool)
    present[codes] = True
    sentences = np.array(list(words), dtype=object)
    keep = np.flatnonzero(present)
    order = np.argsort(sentences[keep].astype(str), kind="stable")
    remap = np.full(len(words), -1, np.int64)
    remap[keep[order]] = np.arange(keep.size)
    return pd.Categorical.from_codes(remap[codes].astype(np.int32), categories=list(sentences[keep[order]]))


def _plain_id(value):
    return int(value) if isinstance(value, np.integer) else value


def events_frame(ints: np.ndarray, floats: np.ndarray, meta: PackMeta, timestamps: np.ndarray,
                 action_events: list[dict]) -> pd.DataFrame:
    """Kernel events and the tape's events (dicts, stage ACTIONS) as one columnar frame,
    sorted by (step, point, cascade round, stage, sub-stage, account -- 0 in the serial bad-debt stage --,
    sequence), stably: the reference engine's order."""
    stage = ints[:, EvI.STAGE].astype(np.int64)
    keys = [ints[:, EvI.T].astype(np.int64), ints[:, EvI.K].astype(np.int64), ints[:, EvI.ROUND].astype(np.int64),
            stage,
            ints[:, EvI.SUB].astype(np.int64),
            np.where(stage == Stage.BAD_DEBT, 0, ints[:, EvI.ACCOUNT]).astype(np.int64),
            ints[:, EvI.SEQ].astype(np.int64)]
    del stage
    if not action_events:  # sort the records, then build the frame once
        order = np.lexsort(keys[::-1])
        del keys
        frame = _kernel_frame(ints, floats, meta, order)
    else:
        tape = events_from_records(action_events)
        m = len(tape)
        keys = [np.concatenate([k, extra]) for k, extra in zip(keys, (
            tape["step"].to_numpy(np.int64), tape["point"].to_numpy(np.int64), np.zeros(m, np.int64),
            np.full(m, Stage.ACTIONS, np.int64),
            np.zeros(m, np.int64), np.zeros(m, np.int64), np.arange(m, dtype=np.int64)))]
        frame = _concat_events(_kernel_frame(ints, floats, meta), tape)
        frame = frame.take(np.lexsort(keys[::-1])).reset_index(drop=True)
    frame["timestamp"] = pd.to_datetime(np.asarray(timestamps)[frame["step"].to_numpy()])
    return frame


def _kernel_frame(ints: np.ndarray, floats: np.ndarray, meta: PackMeta, order=None) -> pd.DataFrame:
    """The kernel's records as event columns, in their order, or in ``order`` (taken column
    by column: the records are never copied whole)."""
    if order is None:
        order = slice(None)
    i = lambda field: ints[order, field]  # noqa: E731
    f = lambda field: floats[order, field]  # noqa: E731
    symbols = list(meta.contracts)
    categories = list(REASON_CODES)
    code_of = np.array([categories.index(_REASON_CODE.get(r, "")) for r in range(max(_REASON_CODE) + 1)], np.int32)
    reason = _reason_text(ints, floats, meta)
    return pd.DataFrame({
        "step": i(EvI.T).astype(np.int64), "point": i(EvI.K).astype(np.int64),
        "round": i(EvI.ROUND).astype(np.int64), "timestamp": None,
        "account": meta.account_ids[i(EvI.ACCOUNT)],
        "contract": pd.Categorical.from_codes(i(EvI.CONTRACT).astype(np.int32), categories=symbols),
        "leg": pd.Categorical.from_codes(i(EvI.LEG).astype(np.int8), categories=list(LEG_WORDS)),
        "kind": pd.Categorical.from_codes(i(EvI.KIND).astype(np.int8), categories=list(EVENT_KINDS)),
        "side": i(EvI.SIDE).astype(np.int64),
        "qty": f(EvF.QTY), "price": f(EvF.PRICE), "amount": f(EvF.AMOUNT),
        "fee": f(EvF.FEE), "wallet": f(EvF.WALLET), "wallet_iso": f(EvF.WALLET_ISO),
        "reason": pd.Categorical.from_codes(reason.codes[order], dtype=reason.dtype),
        "reason_code": pd.Categorical.from_codes(code_of[i(EvI.REASON)], categories=categories),
    }, columns=EVENT_COLUMNS)


def _concat_events(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two event frames as one, with the union of each categorical column's categories."""
    out = {}
    for col in EVENT_COLUMNS:
        x, y = a[col], b[col]
        if isinstance(x.dtype, pd.CategoricalDtype) or isinstance(y.dtype, pd.CategoricalDtype):
            cats = list(dict.fromkeys([*_cats(x), *_cats(y)]))
            out[col] = pd.Categorical(np.concatenate([x.astype(object).to_numpy(), y.astype(object).to_numpy()]),
                                      categories=cats)
        elif col == "account":
            values = np.concatenate([x.to_numpy(object), y.to_numpy(object)])
            out[col] = values.astype(np.int64) if x.dtype.kind == "i" and y.dtype.kind == "i" else values
        else:
            out[col] = np.concatenate([x.to_numpy(), y.to_numpy()])
    return pd.DataFrame(out, columns=EVENT_COLUMNS)


def _cats(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return [v for v in pd.unique(s.astype(object)) if v is not None and v == v]
