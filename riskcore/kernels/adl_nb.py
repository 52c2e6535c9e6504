"""ADL policies in the kernels (:mod:`riskcore.adl`): sort keys and the random policy's hash.

Twins: :func:`adl_key_nb` <-> ``ReferenceEngine.adl_key``, :func:`adl_hash_nb` <->
``riskcore.adl.adl_hash``.  The hash is splitmix64 on unsigned 64-bit words; numpy warns
when an unsigned scalar product wraps (and ``NUMBA_DISABLE_JIT=1`` runs these functions on
numpy scalars), so the wrapping arithmetic is done on 32-bit halves, where no operation
overflows, and gives the reference's ``& (2**64 - 1)`` results bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .enums import AdlPolicy
from .options import NB, NB_INLINE

M32 = np.uint64(0xFFFFFFFF)
S11 = np.uint64(11)
S27 = np.uint64(27)
S30 = np.uint64(30)
S31 = np.uint64(31)
S32 = np.uint64(32)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


@njit(**NB_INLINE)
def add64_nb(a, b):
    """``(a + b) mod 2**64`` of two uint64 words, by 32-bit halves."""
    lo = (a & M32) + (b & M32)
    hi = ((a >> S32) + (b >> S32) + (lo >> S32)) & M32
    return (hi << S32) | (lo & M32)


@njit(**NB_INLINE)
def mul64_nb(a, b):
    """``(a * b) mod 2**64`` of two uint64 words: ``a0 b0 + 2**32 (a1 b0 + a0 b1)``, the
    ``2**64 a1 b1`` term gone; every partial product is below ``2**64``."""
    a0 = a & M32
    a1 = a >> S32
    b0 = b & M32
    b1 = b >> S32
    lo = a0 * b0
    mid = ((a1 * b0) & M32) + ((a0 * b1) & M32)
    hi = ((lo >> S32) + mid) & M32
    return (hi << S32) | (lo & M32)


@njit(**NB_INLINE)
def splitmix64_nb(x):
    """``riskcore.adl.splitmix64``."""
    z = add64_nb(x, GOLDEN)
    z = mul64_nb(z ^ (z >> S30), MIX1)
    z = mul64_nb(z ^ (z >> S27), MIX2)
    return z ^ (z >> S31)


@njit(**NB)
def adl_hash_nb(seed, t, k, a, c, leg):
    """``riskcore.adl.adl_hash``: the fields (all >= 0) mixed in one after the other."""
    h = splitmix64_nb(np.uint64(seed))
    h = splitmix64_nb(h ^ np.uint64(t))
    h = splitmix64_nb(h ^ np.uint64(k))
    h = splitmix64_nb(h ^ np.uint64(a))
    h = splitmix64_nb(h ^ np.uint64(c))
    h = splitmix64_nb(h ^ np.uint64(leg))
    return h


@njit(**NB_INLINE)
def adl_key_nb(policy, seed, t, k, a, c, leg, upnl, notional, margin, equity):
    """``ReferenceEngine.adl_key``: the sort key of a candidate (smallest first) under
    ``policy`` (an :data:`AdlPolicy` code), from the position's uPnL, notional and margin,
    and the equity backing it; ``a`` the account, ``c`` the contract, ``leg`` its code."""
    if policy == AdlPolicy.BINANCE:
        if equity <= 0.0 or margin <= 0.0:
            score = -math.inf
        else:
            pnl_pct = upnl / margin
            eff_lev = notional / equity
            score = pnl_pct * eff_lev if pnl_pct > 0 else pnl_pct / eff_lev
        return -score
    if policy == AdlPolicy.LEVERAGE:
        if equity > 0.0:
            return -(notional / equity)
        return math.inf
    if policy == AdlPolicy.PNL:
        return -upnl
    if policy == AdlPolicy.RANDOM:
        return np.float64(adl_hash_nb(seed, t, k, a, c, leg) >> S11)
    return 0.0
