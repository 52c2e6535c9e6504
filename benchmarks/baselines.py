"""What the kernel is measured against: the speed of light and a naive numpy loop.

The speed of light (:func:`speed_of_light`)
-------------------------------------------
The fastest dense loop we can write for the work every account must at least do at
every point: at each of the four points of every bar (``ohlc`` model), each account's
cross excess ``wallet + sum(uPnL) - sum(MM)`` over all of its positions, with the
maintenance margin of each position from its tier (the tier ``tier_nb`` finds: the
first cap at or above the notional, the last tier above every cap), and a count of the
points where the excess is not positive.  No account is skipped (no sleeping), no early
exit, parallel over blocks of accounts (``prange``).  The breach counts are returned so
that nothing is optimised away.

Why it is the yardstick: it is the kernel's cross check (``scan_block_nb``, the loop
that runs for every awake account at every point) stripped of everything else and laid
out for speed, so it runs near the machine's limit for touching every position at every
point.  A kernel at 100% of it does the whole model as fast as a dense loop does the
least part of it; above 100% the kernel is winning by *not* looking (sleeping accounts),
which is the point of ``sleep_nb.py``.

How it is laid out (measured: ``python -m benchmarks --layouts CASE`` compares the layouts):

* ``prices[n_contracts, n_points]``: every point's price per contract, contiguous in time.
* positions sorted by account, contiguous 1-D arrays: ``contract``, ``side * qty``,
  ``qty``, ``entry`` (only live positions), ``pos0[n_accounts + 1]`` offsets.
* ``prange`` over blocks of accounts; inside a block, tiles of ``tile`` points (a tile of
  prices stays in L1 while every account of the block reads it); for each account, one
  excess accumulator per point of the tile, and for each position a loop over the
  tile's points that LLVM vectorises (AVX2).  The tier is looked up once per position
  and tile from the tile's price range (the tier is monotone in the notional); only
  when the range straddles a cap is it searched point by point, from the range's
  lowest tier (across one cap, a select between the two tiers, which still vectorises).
  The tier at every point is therefore exactly ``tier_nb``'s, and so is the arithmetic of
  each position's uPnL and MM.

What it omits (the kernel does all of these): isolated positions' own checks (every
position counts as cross here), TP/SL and resting-order triggers, funding, liquidations
and their events, the insurance fund and ADL, open interest, per-step series and the
wake bars of sleeping accounts; it never writes to the book.

``constant rate``: the same loop with ``MM = notional * mmr`` at one rate (no tiers) -
the minimal loop of the issue (4.1e8 position-steps/s on 1M x 3 x 1440 x 4 points).

``numpy_cross_check``: a naive numpy vectorisation of the cross check: a Python loop over
points, each a handful of whole-array operations over all positions.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from riskcore.kernels.options import NB, NB_PARALLEL

TILE = 512  # points per tile: 512 x 8 B x contracts of prices, in L1 for a few contracts
BLOCK = 256  # accounts per parallel work item


class SolBook(NamedTuple):
    """The book laid out for the speed-of-light loop (live positions only, account order)."""
    wallet: np.ndarray  # f8 [n_accounts]
    pos0: np.ndarray  # i8 [n_accounts + 1]
    contract: np.ndarray  # i8 [n_positions]
    sq: np.ndarray  # f8 [n_positions] side * qty (uPnL = sq * (price - entry), as the kernel's product)
    qty: np.ndarray  # f8 [n_positions]
    entry: np.ndarray  # f8 [n_positions]


class SolTiers(NamedTuple):
    n_tiers: np.ndarray  # i8 [n_contracts]
    cap: np.ndarray  # f8 [n_contracts, max_tiers]
    mmr: np.ndarray
    cum: np.ndarray


def sol_book(bk) -> SolBook:
    """From the kernel's packed :class:`~riskcore.kernels.state.BookArrays` (live slots)."""
    from riskcore.kernels.enums import SlotState

    live = bk.s_state == SlotState.LIVE
    n_acc = bk.acc_wallet.size
    owner = np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0))
    pos0 = np.zeros(n_acc + 1, np.int64)
    np.cumsum(np.bincount(owner[live], minlength=n_acc), out=pos0[1:])
    qty = bk.s_qty[live].copy()
    return SolBook(bk.acc_wallet.copy(), pos0, bk.s_contract[live].astype(np.int64), bk.s_side[live] * qty, qty,
                   bk.s_entry[live].copy())


def sol_tiers(ct) -> SolTiers:
    return SolTiers(ct.n_tiers.copy(), ct.cap.copy(), ct.mmr.copy(), ct.cum.copy())


def point_prices(ohlc: np.ndarray) -> np.ndarray:
    """``[n_contracts, 4 * n_steps]``: the ``ohlc`` model's points (``bar_points``) in time order."""
    o, h, lo, c = (ohlc[:, :, i] for i in range(4))
    up = c >= o
    pts = np.stack([o, np.where(up, lo, h), np.where(up, h, lo), c], axis=1)  # [n_steps, 4, n_contracts]
    return np.ascontiguousarray(pts.reshape(-1, ohlc.shape[1]).T)


# ------------------------------------------------------------------ the yardstick
# The parallel loops below contain no array expressions outside their ``prange``: numba
# would run each as a parallel region of its own (a launch and a barrier apiece).  The
# caller allocates ``out`` (breaches per account, added to) and the tile ranges come
# from a serial function.
@njit(**NB)
def tile_ranges_nb(prices, tile):
    """Lowest and highest price of each contract in each tile of ``tile`` points."""
    n_c, n_pts = prices.shape
    n_tiles = (n_pts + tile - 1) // tile
    lo = np.empty((n_tiles, n_c))
    hi = np.empty((n_tiles, n_c))
    for j in range(n_tiles):
        for c in range(n_c):
            row = prices[c, j * tile:min(n_pts, j * tile + tile)]
            lo[j, c] = row.min()
            hi[j, c] = row.max()
    return lo, hi


@njit(**NB)
def _tier(n_tiers, cap, c, notional, i):
    """``tier_nb`` searching from tier ``i`` (a tier known to be at or below the answer)."""
    n = n_tiers[c]
    while i < n - 1 and cap[c, i] < notional:
        i += 1
    return i


@njit(**NB_PARALLEL)
def sol_tiered_nb(bk, tr, prices, tile, block, out):
    """Breaches per account of the cross check at every point; see the module docstring."""
    wallet, pos0, contract, sq, qty, entry = bk
    n_tiers, cap, mmr, cum = tr
    n_acc = wallet.size
    n_c, n_pts = prices.shape
    n_tiles = (n_pts + tile - 1) // tile
    lo, hi = tile_ranges_nb(prices, tile)
    n_blocks = (n_acc + block - 1) // block
    for b in prange(n_blocks):
        ex = np.empty(tile)
        a1 = min(n_acc, b * block + block)
        for j in range(n_tiles):
            t0 = j * tile
            m = min(n_pts, t0 + tile) - t0
            for a in range(b * block, a1):
                w = wallet[a]
                for i in range(m):
                    ex[i] = w
                for p in range(pos0[a], pos0[a + 1]):
                    c = contract[p]
                    q, s, e = qty[p], sq[p], entry[p]
                    px = prices[c, t0:t0 + m]
                    k_lo = _tier(n_tiers, cap, c, q * lo[j, c], 0)
                    k_hi = _tier(n_tiers, cap, c, q * hi[j, c], k_lo)
                    if k_lo == k_hi:  # one tier all tile long: a straight vector loop
                        r, d = mmr[c, k_lo], cum[c, k_lo]
                        for i in range(m):
                            x = px[i]
                            ex[i] += s * (x - e) - (q * x * r - d)
                    elif k_hi == k_lo + 1:  # across one cap: a select, still a vector loop
                        edge, r0, d0, r1, d1 = cap[c, k_lo], mmr[c, k_lo], cum[c, k_lo], mmr[c, k_hi], cum[c, k_hi]
                        for i in range(m):
                            x = px[i]
                            notional = q * x
                            up = edge < notional
                            ex[i] += s * (x - e) - (notional * (r1 if up else r0) - (d1 if up else d0))
                    else:
                        for i in range(m):
                            x = px[i]
                            notional = q * x
                            k = _tier(n_tiers, cap, c, notional, k_lo)
                            ex[i] += s * (x - e) - (notional * mmr[c, k] - cum[c, k])
                n = 0
                for i in range(m):
                    n += ex[i] <= 0.0
                out[a] += n


@njit(**NB_PARALLEL)
def sol_constant_nb(bk, rate, prices, tile, block, out):
    """The same loop at one maintenance-margin rate (no tiers): the issue's minimal loop."""
    wallet, pos0, contract, sq, qty, entry = bk
    n_acc = wallet.size
    n_pts = prices.shape[1]
    n_tiles = (n_pts + tile - 1) // tile
    n_blocks = (n_acc + block - 1) // block
    for b in prange(n_blocks):
        ex = np.empty(tile)
        a1 = min(n_acc, b * block + block)
        for j in range(n_tiles):
            t0 = j * tile
            m = min(n_pts, t0 + tile) - t0
            for a in range(b * block, a1):
                w = wallet[a]
                for i in range(m):
                    ex[i] = w
                for p in range(pos0[a], pos0[a + 1]):
                    q, s, e = qty[p], sq[p], entry[p]
                    px = prices[contract[p], t0:t0 + m]
                    for i in range(m):
                        x = px[i]
                        ex[i] += s * (x - e) - q * x * rate
                n = 0
                for i in range(m):
                    n += ex[i] <= 0.0
                out[a] += n


# --------------------------------------------------- other layouts, for comparison
@njit(**NB_PARALLEL)
def sol_scalar_nb(bk, tr, prices, tile, block, out):
    """Layout B: tiles as above, but points outer and positions inner for each account,
    the tier searched from tier 0 at every point exactly as the kernel does (scalar)."""
    wallet, pos0, contract, sq, qty, entry = bk
    n_tiers, cap, mmr, cum = tr
    n_acc = wallet.size
    n_pts = prices.shape[1]
    n_tiles = (n_pts + tile - 1) // tile
    n_blocks = (n_acc + block - 1) // block
    for b in prange(n_blocks):
        a1 = min(n_acc, b * block + block)
        for j in range(n_tiles):
            t0 = j * tile
            t1 = min(n_pts, t0 + tile)
            for a in range(b * block, a1):
                n = 0
                for t in range(t0, t1):
                    excess = wallet[a]
                    for p in range(pos0[a], pos0[a + 1]):
                        c = contract[p]
                        x = prices[c, t]
                        notional = qty[p] * x
                        k = _tier(n_tiers, cap, c, notional, 0)
                        excess += sq[p] * (x - entry[p])
                        excess -= notional * mmr[c, k] - cum[c, k]
                    n += excess <= 0.0
                out[a] += n


@njit(**NB_PARALLEL)
def sol_folded_nb(bk, tr, prices, tile, block, out):
    """Layout C: the yardstick's loop with each position's excess folded into one line per
    tile, ``(s - q * mmr) * x + (cum - s * e)``: one multiply-add per position and point
    (a different rounding from the kernel's, so not quite the same work; for comparison)."""
    wallet, pos0, contract, sq, qty, entry = bk
    n_tiers, cap, mmr, cum = tr
    n_acc = wallet.size
    n_c, n_pts = prices.shape
    n_tiles = (n_pts + tile - 1) // tile
    lo, hi = tile_ranges_nb(prices, tile)
    n_blocks = (n_acc + block - 1) // block
    for b in prange(n_blocks):
        ex = np.empty(tile)
        a1 = min(n_acc, b * block + block)
        for j in range(n_tiles):
            t0 = j * tile
            m = min(n_pts, t0 + tile) - t0
            for a in range(b * block, a1):
                w = wallet[a]
                for i in range(m):
                    ex[i] = w
                for p in range(pos0[a], pos0[a + 1]):
                    c = contract[p]
                    q, s, e = qty[p], sq[p], entry[p]
                    px = prices[c, t0:t0 + m]
                    k_lo = _tier(n_tiers, cap, c, q * lo[j, c], 0)
                    k_hi = _tier(n_tiers, cap, c, q * hi[j, c], k_lo)
                    if k_lo == k_hi:
                        slope, level = s - q * mmr[c, k_lo], cum[c, k_lo] - s * e
                        for i in range(m):
                            ex[i] += slope * px[i] + level
                    elif k_hi == k_lo + 1:
                        edge, r0, d0, r1, d1 = cap[c, k_lo], mmr[c, k_lo], cum[c, k_lo], mmr[c, k_hi], cum[c, k_hi]
                        s0, l0, s1, l1 = s - q * r0, d0 - s * e, s - q * r1, d1 - s * e
                        for i in range(m):
                            x = px[i]
                            up = edge < q * x
                            ex[i] += (s1 if up else s0) * x + (l1 if up else l0)
                    else:
                        for i in range(m):
                            x = px[i]
                            notional = q * x
                            k = _tier(n_tiers, cap, c, notional, k_lo)
                            ex[i] += s * (x - e) - (notional * mmr[c, k] - cum[c, k])
                n = 0
                for i in range(m):
                    n += ex[i] <= 0.0
                out[a] += n


@njit(**NB_PARALLEL)
def _points_outer_point_nb(bk, tr, prices, t, block, out):
    wallet, pos0, contract, sq, qty, entry = bk
    n_tiers, cap, mmr, cum = tr
    n_acc = wallet.size
    for b in prange((n_acc + block - 1) // block):
        for a in range(b * block, min(n_acc, b * block + block)):
            excess = wallet[a]
            for p in range(pos0[a], pos0[a + 1]):
                c = contract[p]
                x = prices[c, t]
                notional = qty[p] * x
                k = _tier(n_tiers, cap, c, notional, 0)
                excess += sq[p] * (x - entry[p])
                excess -= notional * mmr[c, k] - cum[c, k]
            out[a] += excess <= 0.0


@njit(**NB)
def sol_points_outer_nb(bk, tr, prices, tile, block, out):
    """Layout D (the kernel's loop order, the old yardstick's): points outermost, a parallel
    pass over every account at each point (``tile`` unused)."""
    for t in range(prices.shape[1]):
        _points_outer_point_nb(bk, tr, prices, t, block, out)


LAYOUTS = {"A: tiled, vector over points (the yardstick)": sol_tiered_nb,
           "B: tiled, scalar, tier searched from 0 at every point": sol_scalar_nb,
           "C: as A, each position's excess folded into one line": sol_folded_nb,
           "D: points outer (the kernel's loop order)": sol_points_outer_nb}


def _tiny(tr: SolTiers):
    sb = SolBook(np.full(3, 100.0), np.array([0, 1, 2, 3]), np.zeros(3, np.int64), np.array([1.0, -1.0, 2.0]),
                 np.array([1.0, 1.0, 2.0]), np.full(3, 100.0))
    return sb, np.full((tr.n_tiers.size, 16), 100.0)


def warm() -> None:
    """Compile (or load from the cache) the speed-of-light loops, serially."""
    from riskcore import Brackets

    b = Brackets.load("BTCUSDT")
    n = b.n_tiers
    tr = SolTiers(np.array([n]), np.asarray(b.notional_cap, np.float64)[None, :].copy(),
                  np.asarray(b.mmr, np.float64)[None, :].copy(), np.asarray(b.cum, np.float64)[None, :].copy())
    sb, prices = _tiny(tr)
    speed_of_light(sb, tr, prices, 8, 2)
    speed_of_light(sb, tr, prices, 8, 2, sol_folded_nb)
    speed_of_light_constant(sb, 0.004, prices, 8, 2)


def speed_of_light(sb: SolBook, tr: SolTiers, prices: np.ndarray, tile: int = TILE, block: int = BLOCK,
                   layout=sol_tiered_nb) -> np.ndarray:
    """Breaches per account: points where the cross excess was not positive."""
    out = np.zeros(sb.wallet.size, np.int64)
    layout(sb, tr, prices, tile, block, out)
    return out


def speed_of_light_constant(sb: SolBook, rate: float, prices: np.ndarray, tile: int = TILE,
                            block: int = BLOCK) -> np.ndarray:
    out = np.zeros(sb.wallet.size, np.int64)
    sol_constant_nb(sb, float(rate), prices, tile, block, out)
    return out


# ------------------------------------------------------------------------- numpy
def numpy_cross_check(bk, ct, ohlc) -> int:
    """The cross check of every account at every ``ohlc`` point, vectorised over positions."""
    n_acc = bk.acc_wallet.size
    owner = np.repeat(np.arange(n_acc), np.diff(bk.acc_slot0))
    cross = bk.set_mode[owner, bk.s_contract] == 0
    contract = bk.s_contract[cross]
    qty, side, entry = bk.s_qty[cross], bk.s_side[cross].astype(np.float64), bk.s_entry[cross]
    who = owner[cross]
    breaches = 0
    for t in range(ohlc.shape[0]):
        o, h, lo, cl = (ohlc[t, :, i] for i in range(4))
        up = cl >= o
        for px in (o, np.where(up, lo, h), np.where(up, h, lo), cl):
            price = px[contract]
            notional = qty * price
            upnl = side * qty * (price - entry)
            tier = np.empty(contract.size, np.int64)
            for c in range(ohlc.shape[1]):
                m = contract == c
                tier[m] = np.minimum(np.searchsorted(ct.cap[c, :ct.n_tiers[c]], notional[m]), ct.n_tiers[c] - 1)
            mm = notional * ct.mmr[contract, tier] - ct.cum[contract, tier]
            excess = bk.acc_wallet + np.bincount(who, upnl - mm, minlength=n_acc)
            breaches += int(np.count_nonzero(excess <= 0.0))
    return breaches


def threads() -> int:
    return numba.get_num_threads()


# ------------------------------------------------- python -m benchmarks.baselines
def compare_layouts(case_name: str = "main_20k_x_360", repeat: int = 5) -> dict:
    """Seconds (best of ``repeat``) of each layout on a case; checks they agree."""
    from benchmarks import cases
    from riskcore.inputs import PricePaths
    from riskcore.kernels.pack import contract_arrays, pack_table

    case = cases.CASES[case_name]
    table, paths = cases.make_table(case), PricePaths.from_frames(cases.make_paths(case))
    bk, _ = pack_table(table, tuple(paths.contracts))
    sb, tr = sol_book(bk), sol_tiers(contract_arrays(table, tuple(paths.contracts)))
    prices = point_prices(paths.ohlc)
    tiny, tiny_prices = _tiny(tr)
    out, want = {}, None
    for name, fn in LAYOUTS.items():
        speed_of_light(tiny, tr, tiny_prices, 8, 2, fn)  # compile or load
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            got = speed_of_light(sb, tr, prices, TILE, BLOCK, fn)
            best = min(best, time.perf_counter() - t0)
        want = got if want is None else want
        if "folded" not in name:  # (rounding may differ there)
            assert np.array_equal(got, want), name
        out[name] = best
    speed_of_light_constant(tiny, 0.005, tiny_prices, 8, 2)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        speed_of_light_constant(sb, 0.005, prices)
        best = min(best, time.perf_counter() - t0)
    out["constant rate"] = best
    return {"case": case_name, "positions": int(sb.qty.size), "points": int(prices.shape[1]),
            "threads": threads(), "seconds": out,
            "position_steps_per_s": {k: sb.qty.size * prices.shape[1] / 4 / v for k, v in out.items()}}

