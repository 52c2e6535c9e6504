"""The struct-of-arrays state the kernels run on (NamedTuples of numpy arrays).

Accounts are in canonical order (sorted ids), so account ``a`` of the kernel is the
``a``-th smallest id.  Each account owns a contiguous range of position *slots*
(``acc_slot0[a]:acc_slot0[a+1]``), one per (contract, leg) it holds or may open
through a resting order, sorted by (contract, leg): the reference engine's
position order.  A slot is empty, live or liquidated at the current point
(:data:`~riskcore.kernels.enums.SlotState`).  Orders are grouped by account the
same way (``acc_ord0``) and sorted by order id.  A tape may need slots and order rows
that the book does not have yet: :func:`riskcore.kernels.tape.grow_book` adds them, as
empty slots and dead order rows, before the run.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BookArrays(NamedTuple):
    # accounts [n_accounts]
    acc_wallet: np.ndarray  # f8, cross wallet (USDT)
    acc_slot0: np.ndarray  # i8 [n_accounts + 1], slot offsets
    acc_ord0: np.ndarray  # i8 [n_accounts + 1], order offsets
    # settings [n_accounts, n_contracts]
    set_mode: np.ndarray  # i1, 0 cross / 1 isolated
    set_lev_long: np.ndarray  # f8
    set_lev_short: np.ndarray  # f8
    set_auto_long: np.ndarray  # b1
    set_auto_short: np.ndarray  # b1
    # position slots [n_slots]
    s_contract: np.ndarray  # i4
    s_leg: np.ndarray  # i1, 0 both / 1 long / 2 short
    s_side: np.ndarray  # i1, +1 / -1
    s_state: np.ndarray  # i1, SlotState
    s_qty: np.ndarray  # f8, base units
    s_entry: np.ndarray  # f8, average entry price
    s_wiso: np.ndarray  # f8, isolated wallet (0 under cross)
    s_tp: np.ndarray  # f8, take profit (NaN: none)
    s_sl: np.ndarray  # f8, stop loss (NaN: none)
    s_lp: np.ndarray  # f8, cached isolated liquidation price (NaN: none / cross)
    # orders [n_orders]
    o_id: np.ndarray  # i8
    o_contract: np.ndarray  # i4
    o_leg: np.ndarray  # i1
    o_side: np.ndarray  # i1, +1 buy / -1 sell
    o_qty: np.ndarray  # f8
    o_price: np.ndarray  # f8
    o_reduce_only: np.ndarray  # b1
    o_live: np.ndarray  # b1
    # what only the tape's actions read or change (kernels/actions_nb.py)
    acc_hedge: np.ndarray  # b1 [n_accounts], position mode: hedge (True) / one-way
    set_stored: np.ndarray  # b1 [n_accounts, n_contracts], the Book holds a Settings entry
    s_seq: np.ndarray  # i8 [n_slots], opening order of the account's live positions (the
    #                    Book's dict order: a position closed to flat and reopened goes last)


class ContractArrays(NamedTuple):
    maker_fee: np.ndarray  # f8 [n_contracts]
    taker_fee: np.ndarray  # f8 [n_contracts]
    n_tiers: np.ndarray  # i8 [n_contracts]
    cap: np.ndarray  # f8 [n_contracts, max_tiers], notional caps (padded with inf)
    mmr: np.ndarray  # f8 [n_contracts, max_tiers]
    cum: np.ndarray  # f8 [n_contracts, max_tiers]
    max_lev: np.ndarray  # f8 [n_contracts, max_tiers] (padded with 0)
    # the contract's venue profile (riskcore/venues/profiles.py); mmr and cum above are already
    # the profile's maintenance table (Contract.mm_brackets)
    liq_fee: np.ndarray  # f8 [n_contracts] liquidation fee rate
    procedure: np.ndarray  # i8 [n_contracts] Procedure code: whole / tiers / slices
    slice_above: np.ndarray  # f8 [n_contracts] notional above which a position is sliced
    slice_fraction: np.ndarray  # f8 [n_contracts] share of the size one slice closes
    partial_from: np.ndarray  # i8 [n_contracts] lowest tier (from 1) liquidated in part
    backstop: np.ndarray  # f8 [n_contracts] fraction of MM below which the fund takes all (0: off)
    takeover: np.ndarray  # b1 [n_contracts] full liquidations leave the fund all that is left
    adl_policy: np.ndarray  # i8 [n_contracts] AdlPolicy code of its deleveraging


class Market(NamedTuple):
    ohlc: np.ndarray  # f8 [n_steps, n_contracts, 4] mark-price bars
    rates: np.ndarray  # f8 [n_steps, n_contracts] funding rate due at the bar's first point
    init_prev: np.ndarray  # f8 [n_contracts, 2] prices before the first point (the book's marks)


class Params(NamedTuple):
    intrabar: int  # Intrabar code
    mm_entry: bool  # mm_basis == "entry"
    fee_rate: float  # liquidation fee rate
    slippage: float  # liquidation slippage
    block: int  # accounts per parallel block
    sleep: bool = True  # skip accounts sure to be quiet until their wake bar (sleep_nb.py)
    impact: bool = False  # some contract has market impact: liquidations settle after each round's flow
    rounds: int = 20  # cascade rounds per point at most
    adl_policy: int = 0  # AdlPolicy code: the index of the name in riskcore.adl.POLICIES
    adl_seed: int = 0  # the random ADL policy's seed


class Scratch(NamedTuple):
    s_lpx: np.ndarray  # f8 [n_slots] trigger, then execution price, of a liquidation at this point
    s_lfee: np.ndarray  # f8 [n_slots] isolated liquidation fee; ADL ranking key in the serial phase
    s_ldef: np.ndarray  # f8 [n_slots] isolated deficit (> 0) at this point
    acc_flag: np.ndarray  # i1 [n_accounts] AccountFlag bits at this point
    acc_xfee: np.ndarray  # f8 [n_accounts] cross liquidation fee at this point
    acc_xdef: np.ndarray  # f8 [n_accounts] cross deficit at this point
    acc_last_liq: np.ndarray  # i8 [n_accounts] last step with a liquidation (accounts_liquidated)
    blk_acc: np.ndarray  # f8 [n_blocks, N_BLOCK_ACC] the step's per-block sums
    blk_ledger: np.ndarray  # f8 [n_blocks, N_LEDGER] the run's per-block totals
    blk_nliq: np.ndarray  # i8 [n_blocks] accounts of the block with a liquidation/deficit at this point
    liq_acct: np.ndarray  # i8 [n_accounts] those accounts, at block_start + j
    glob: np.ndarray  # f8 [N_GLOB] fund, serial ledger, serial step sums
    steps: np.ndarray  # f8 [n_steps, 12] per-step series (STEP_COLUMNS[2:])
    acc_wake: np.ndarray  # i8 [n_accounts] first bar at which the account must be looked at
    blk_wake: np.ndarray  # i8 [n_blocks] the smallest acc_wake of the block
    blk_q: np.ndarray  # f8 [n_blocks, n_contracts, 2] live quantity by view (open interest)
    blk_band: np.ndarray  # f8 [n_blocks, n_contracts, 3] wake_bar_nb's scratch
    imp_slip: np.ndarray  # f8 [n_contracts, 2] the impact the fills of this round's liquidations take


class Levels(NamedTuple):
    """The path summarised for :func:`riskcore.kernels.sleep_nb.first_exit_nb`."""
    pt_lo: np.ndarray  # f8 [n_steps, n_contracts] lowest point of the bar (model's points, both views)
    pt_hi: np.ndarray  # f8 [n_steps, n_contracts] highest
    l1_lo: np.ndarray  # f8 [ceil(n_steps / 64), n_contracts]
    l1_hi: np.ndarray
    l2_lo: np.ndarray  # f8 [ceil(n_steps / 4096), n_contracts]
    l2_hi: np.ndarray
    mmr_max: np.ndarray  # f8 [n_contracts] highest mmr of the table
    jump: np.ndarray  # f8 [n_contracts] sum of MM jumps at tier boundaries


class Events(NamedTuple):
    """Bounded event buffers, one row per worker thread plus one for the serial phase."""
    ints: np.ndarray  # i4 [n_rows, capacity, N_EVI]
    floats: np.ndarray  # f8 [n_rows, capacity, N_EVF]
    count: np.ndarray  # i8 [n_rows]
    overflow: np.ndarray  # i8 [n_rows] events that did not fit
    round: np.ndarray  # i8 [1] the cascade round events are recorded in


def empty_events(n_rows: int, capacity: int) -> Events:
    from .enums import N_EVF, N_EVI
    return Events(np.zeros((n_rows, capacity, N_EVI), np.int32), np.zeros((n_rows, capacity, N_EVF)),
                  np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64), np.zeros(1, np.int64))


def new_scratch(n_slots: int, n_accounts: int, n_blocks: int, n_steps: int, n_contracts: int) -> Scratch:
    from .enums import N_BLOCK_ACC, N_GLOB, N_LEDGER
    return Scratch(np.zeros(n_slots), np.zeros(n_slots), np.zeros(n_slots), np.zeros(n_accounts, np.int8),
                   np.zeros(n_accounts), np.zeros(n_accounts), np.full(n_accounts, -1, np.int64),
                   np.zeros((n_blocks, N_BLOCK_ACC)), np.zeros((n_blocks, N_LEDGER)),
                   np.zeros(n_blocks, np.int64), np.zeros(n_accounts, np.int64), np.zeros(N_GLOB),
                   np.zeros((n_steps, 12)), np.zeros(n_accounts, np.int64), np.zeros(n_blocks, np.int64),
                   np.zeros((n_blocks, n_contracts, 2)), np.zeros((n_blocks, n_contracts, 3)),
                   np.zeros((n_contracts, 2)))


class MarkState(NamedTuple):
    """Market impact (riskcore/impact.py) and the mark it moves: the parameters per contract
    and the run's state.  Apart from the Scratch so that the per-account kernels, which
    never read it, are not handed its arrays."""
    coef: np.ndarray  # f8 [n_contracts] k * sigma of the square-root law (0: no impact)
    volume: np.ndarray  # f8 [n_contracts] daily volume
    perm: np.ndarray  # f8 [n_contracts] share of a mark move that stays (0: no feedback)
    trans: np.ndarray  # f8 [n_contracts] share that decays
    decay: np.ndarray  # f8 [n_contracts] transient shift kept per bar
    flow: np.ndarray  # f8 [n_contracts, 2] notional liquidated at this round, by view (longs sold, shorts bought)
    shift: np.ndarray  # f8 [n_contracts, 2] the mark's permanent and transient shift (impact.multiplier)
    env: np.ndarray  # f8 [n_contracts, 2] the multipliers every sleeping account's bands allow for
    last_px: np.ndarray  # f8 [n_contracts, 2] the prices the last bar run ended at
    depth_n: np.ndarray  # i8 [n_contracts] levels of the depth table (0: the square-root law)
    depth_dist: np.ndarray  # f8 [n_contracts, levels] the levels' distances from the price
    depth_cum: np.ndarray  # f8 [n_contracts, levels] the notional resting within each
    thinning: np.ndarray  # f8 [n_contracts] how the depth thins as the mark leaves the path


def mark_state(specs, contracts) -> MarkState:
    """The :class:`MarkState` at the start of a run (``specs``: ``{symbol: Impact}``)."""
    from ..impact import arrays

    a = arrays(specs or {}, contracts)
    n = len(contracts)
    return MarkState(a.coef, a.volume, a.permanent, a.transient, a.decay, np.zeros((n, 2)), np.zeros((n, 2)),
                     np.ones((n, 2)), np.zeros((n, 2)), a.depth_n, a.depth_dist, a.depth_cum, a.thinning)


def new_levels(ohlc: np.ndarray, intrabar: int, ct: ContractArrays) -> Levels:
    """The path's :class:`Levels` for the intrabar model ``intrabar`` (an Intrabar code)."""
    from .sleep_nb import L1, L2, contract_levels, levels_nb

    n_t, n_c = ohlc.shape[0], ohlc.shape[1]
    lv = Levels(np.empty((n_t, n_c)), np.empty((n_t, n_c)), np.empty(((n_t >> L1) + 1, n_c)),
                np.empty(((n_t >> L1) + 1, n_c)), np.empty(((n_t >> L2) + 1, n_c)), np.empty(((n_t >> L2) + 1, n_c)),
                *contract_levels(ct))
    levels_nb(ohlc, intrabar, lv.pt_lo, lv.pt_hi, lv.l1_lo, lv.l1_hi, lv.l2_lo, lv.l2_hi)
    return lv


def wake_all(sc: Scratch, t: int) -> None:
    """Every account awake from bar ``t``."""
    sc.acc_wake[:] = t
    sc.blk_wake[:] = t


def resize_slots(sc: Scratch, n_slots: int) -> Scratch:
    """The same scratch with per-slot arrays for a new slot count (after a repack)."""
    return sc._replace(s_lpx=np.zeros(n_slots), s_lfee=np.zeros(n_slots), s_ldef=np.zeros(n_slots))
