"""Kernels of a sharded run (riskcore/shard.py): a shard's optimistic pass, the fund's replay
and the per-step rows, so that a book split into shards gives the one-process result bit
for bit.

* :func:`shard_steps_nb` is :func:`riskcore.kernels.step_nb.run_steps_nb`'s loop for a run
  without market impact and without a tape (a sharded run refuses both), calling the same
  phase A and phase B.  Before each serial phase it records, in phase B's own order, the
  fees phase B pays into the fund and the deficits it covers (:func:`record_nb`), and at
  the end of each bar it copies the per-block step sums.  A shard runs with an ample fund,
  so that its phase B pays every deficit in full and never deleverages: the accounts then
  never read the fund's level (phase A never reads it; phase B reads it only for the
  pro-rata ratio, which is 1).
* :func:`replay_nb` replays the whole book's fund from the merged records with phase B's
  arithmetic and says at which bar it would first fall short (ratio below 1): up to there
  the shards' optimistic results are the one-process results.
* :func:`step_rows_nb` sums the per-block step sums of every shard in block order, as
  :func:`~riskcore.kernels.step_nb.end_step_nb` does, so the per-step series are the
  one-process series to the bit.

The stepping kernels are imported, not copied, except ``run_steps_nb``'s loop itself (about
thirty lines): a hook there (a recorder called before phase B) would remove that copy.
This module lives outside ``riskcore/kernels/`` so that it can change without dropping
the kernels' cache; its own cache is dropped when their sources change.  Call sites pass
the argument types ``run_steps_nb`` passes, so the shared kernels are compiled once
(``tests/test_compile.py``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numba import njit

from ..kernels.cache import sync_cache
from ..kernels.enums import AccountFlag, BlockAcc, Glob, Intrabar, SlotState
from ..kernels.options import NB, NB_INNER


def cache_folder() -> Path:
    """Where numba caches this module's kernels (beside it, or under ``NUMBA_CACHE_DIR``)."""
    here = Path(__file__).resolve()
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return here.parent / "__pycache__"
    from numba.core.caching import _CacheLocator

    return Path(root) / _CacheLocator.get_suitable_cache_subpath(str(here))


# numba keys a cached kernel on its own file only: these kernels call the stepping kernels of
# riskcore/kernels/, so their cache is dropped whenever those sources change (the same digest
# riskcore.kernels keeps for its own cache)
sync_cache([cache_folder()])

from ..kernels.step_nb import (begin_step_nb, effective_nb, end_step_nb, n_points_nb,  # noqa: E402
                               open_bar_nb, phase_a_nb, phase_b_nb, point_prices_nb, start_prices_nb)

#: record kinds, in the order phase B meets them at a point
ISO_FEE, CROSS_FEE, ISO_DEFICIT, CROSS_DEFICIT = 0, 1, 2, 3
#: columns of :func:`replay_nb`'s output (the serial columns of a step row)
SERIAL = ("insurance_fund", "bad_debt", "insurance_paid", "adl_recovered", "socialised_loss")


@njit(**NB_INNER)
def put_nb(rec_i, rec_v, n_rec, t, k, kind, value):
    i = n_rec[0]
    if i < rec_v.size:
        rec_i[i, 0] = t
        rec_i[i, 1] = k
        rec_i[i, 2] = kind
        rec_v[i] = value
    n_rec[0] = i + 1  # beyond the capacity: counted, so the caller can run again with room


@njit(**NB_INNER)
def record_nb(bk, sc, pr, t, k, rec_i, rec_v, n_rec):
    """What :func:`~riskcore.kernels.step_nb.phase_b_nb` is about to read, in its order:
    every isolated close's fee, every cross book's fee (paid into the fund), then the
    point's deficits (isolated ones, then cross ones), account by account in canonical
    order.  ``rec_i`` i8 [capacity, 3] (bar, point, kind), ``rec_v`` f8 [capacity] (USDT),
    ``n_rec`` i8 [1] the records so far (may exceed the capacity: then nothing past it
    was written).  Reads only the state."""
    size = pr.block
    n_blocks = sc.blk_nliq.size
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                if bk.s_state[p] == SlotState.LIQ_ISOLATED:
                    put_nb(rec_i, rec_v, n_rec, t, k, ISO_FEE, sc.s_lfee[p])
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            if sc.acc_flag[a] & AccountFlag.CROSS_LIQ:
                put_nb(rec_i, rec_v, n_rec, t, k, CROSS_FEE, sc.acc_xfee[a])
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            for p in range(bk.acc_slot0[a], bk.acc_slot0[a + 1]):
                if bk.s_state[p] == SlotState.LIQ_ISOLATED and sc.s_ldef[p] > 0.0:
                    put_nb(rec_i, rec_v, n_rec, t, k, ISO_DEFICIT, sc.s_ldef[p])
    for b in range(n_blocks):
        for j in range(sc.blk_nliq[b]):
            a = sc.liq_acct[b * size + j]
            flag = sc.acc_flag[a]
            if ((flag & AccountFlag.CROSS_LIQ) and sc.acc_xdef[a] > 0.0) or (
                    not (flag & AccountFlag.CROSS_LIQ) and (flag & AccountFlag.EMPTY_DEFICIT)):
                put_nb(rec_i, rec_v, n_rec, t, k, CROSS_DEFICIT, sc.acc_xdef[a])


@njit(**NB)
def shard_steps_nb(bk, ct, mk, lv, sc, ev, pr, im, t_start, t_end, rec_i, rec_v, n_rec, blk_out):
    """Step a shard's accounts through bars ``t_start`` to ``t_end - 1`` (``run_steps_nb``
    without impact or tape), recording phase B's inputs (:func:`record_nb`) and each bar's
    per-block step sums into ``blk_out`` f8 [t_end - t_start, n_blocks, N_BLOCK_ACC].
    Mutates ``bk``, ``sc``, ``ev``, ``im`` and the records."""
    n_c = ct.maker_fee.size
    prev = np.empty((n_c, 2))
    cur = np.empty((n_c, 2))
    base = np.empty((n_c, 2))
    start_prices_nb(mk, im, t_start, prev)
    n_points = n_points_nb(pr.intrabar)
    for t in range(t_start, t_end):
        begin_step_nb(sc)
        open_bar_nb(im)
        due = False
        for c in range(n_c):
            if mk.rates[t, c] != 0.0:
                due = True
        for k in range(n_points):
            point_prices_nb(mk.ohlc, t, k, pr.intrabar, base)
            effective_nb(im.shift, base, cur)
            gap = k == 0 and (t == 0 or pr.intrabar != Intrabar.CLOSE)
            last = k == n_points - 1
            funding = k == 0 and due
            band = last and not pr.impact
            ev.round[0] = 0
            phase_a_nb(bk, ct, lv, sc, ev, pr, t, k, gap, funding, np.bool_(False), band, mk.rates[t], prev, cur,
                       im.env)
            if sc.blk_nliq.sum() > 0:
                record_nb(bk, sc, pr, t, k, rec_i, rec_v, n_rec)
                phase_b_nb(bk, ct, sc, ev, pr, t, k, band, cur)
            prev[:, :] = cur
        end_step_nb(sc, t)
        blk_out[t - t_start, :, :] = sc.blk_acc
    im.last_px[:, :] = prev


@njit(**NB)
def replay_nb(rec_t, rec_k, rec_kind, rec_v, glob, t0, t1, out):
    """Replay the whole book's serial phase over bars ``t0:t1`` from the merged records
    (sorted by bar, point, kind, shard, order within the shard: phase B's order), with
    phase B's arithmetic: fees into the fund, then ``ratio = min(1, fund / total)`` and
    ``fund = max(0, fund - ratio * deficit)`` per deficit (MARGIN_RULES.md section 6).

    ``glob`` f8 [N_GLOB] the run's serial scalars at bar ``t0`` (mutated); ``out`` f8
    [t1 - t0, 5] each bar's :data:`SERIAL` columns.  Returns the first bar at which some
    point's fund would not cover its deficits in full (the shards' optimistic pass is not
    the one-process run from there), else -1."""
    n = rec_t.size
    i = 0
    for t in range(t0, t1):
        for j in range(Glob.BAD_DEBT, glob.size):
            glob[j] = 0.0
        while i < n and rec_t[i] == t:
            k = rec_k[i]
            while i < n and rec_t[i] == t and rec_k[i] == k and rec_kind[i] <= CROSS_FEE:
                glob[Glob.FUND] += rec_v[i]
                i += 1
            j0 = i
            total = 0.0
            while i < n and rec_t[i] == t and rec_k[i] == k:
                total += rec_v[i]
                i += 1
            if i > j0:
                ratio = min(1.0, glob[Glob.FUND] / total)
                if ratio < 1.0:
                    return t
                for j in range(j0, i):
                    deficit = rec_v[j]
                    paid = ratio * deficit
                    glob[Glob.FUND] = max(0.0, glob[Glob.FUND] - paid)
                    glob[Glob.BAD_DEBT] += deficit
                    glob[Glob.INSURANCE_PAID] += paid
                    recovered = 0.0
                    socialised = deficit - paid - recovered
                    glob[Glob.SOCIALISED] += socialised
                    glob[Glob.STEP_SOCIALISED] += socialised
        out[t - t0, 0] = glob[Glob.FUND]
        out[t - t0, 1] = glob[Glob.BAD_DEBT]
        out[t - t0, 2] = glob[Glob.INSURANCE_PAID]
        out[t - t0, 3] = glob[Glob.ADL_RECOVERED]
        out[t - t0, 4] = glob[Glob.STEP_SOCIALISED]
    return -1


@njit(**NB)
def step_rows_nb(blk, serial, steps, t0):
    """The step rows ``steps[t0 + w]`` (``STEP_COLUMNS[2:]``) from every block's sums
    ``blk`` f8 [n_bars, n_blocks, N_BLOCK_ACC] (the shards' blocks in order) and the
    replayed serial columns ``serial`` f8 [n_bars, 5]: the sums of
    :func:`~riskcore.kernels.step_nb.end_step_nb`, block by block from 0."""
    for w in range(blk.shape[0]):
        acc = np.zeros(blk.shape[2])
        for b in range(blk.shape[1]):
            for j in range(acc.size):
                acc[j] += blk[w, b, j]
        s = steps[t0 + w]
        s[0] = serial[w, 0]
        s[1] = acc[BlockAcc.ACCOUNTS_LIQUIDATED]
        s[2] = acc[BlockAcc.LIQUIDATIONS]
        s[3] = acc[BlockAcc.LIQUIDATED_NOTIONAL]
        s[4] = serial[w, 1]
        s[5] = serial[w, 2]
        s[6] = serial[w, 3]
        s[7] = serial[w, 4]
        s[8] = acc[BlockAcc.TOPUPS]
        s[9] = acc[BlockAcc.TOPUP_AMOUNT]
        s[10] = acc[BlockAcc.FUNDING_PAID]
        s[11] = acc[BlockAcc.OPEN_INTEREST] + acc[BlockAcc.OI_ADJUST]
