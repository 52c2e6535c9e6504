"""Synthetic books and paths for the benchmarks, generated directly as struct-of-arrays.

A book of ``n_accounts`` accounts with one position on each of three contracts: 30% of
accounts in hedge mode, each (account, contract) cross or isolated at random, 20% of the
isolated ones with auto-add-margin, leverage 5-20x, notionals spanning several tiers of
Binance's BTCUSDT brackets, 10% of positions with a stop-loss, 10% with a take-profit,
10% of accounts with a resting limit order.  Paths: one-minute bars of a random walk
(about 4% a day) with a sell-off of ~8% over an hour on the first contract.
"""
from __future__ import annotations

import numpy as np

from riskcore import Book, Brackets
from riskcore.kernels.pack import contract_arrays
from riskcore.kernels.state import BookArrays, Market

CONTRACTS = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
START = 100.0


def contracts():
    book = Book()
    table = Brackets.load("BTCUSDT")
    for symbol in CONTRACTS:
        book.add_contract(symbol, table)
    return contract_arrays(book, CONTRACTS)


def make_book(n_accounts: int, seed: int = 0) -> BookArrays:
    rng = np.random.default_rng(seed)
    n_c = len(CONTRACTS)
    n = n_accounts * n_c
    hedge = rng.random(n_accounts) < 0.3
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    leg = np.where(np.repeat(hedge, n_c), np.where(side > 0, 1, 2), 0).astype(np.int8)
    isolated = rng.random((n_accounts, n_c)) < 0.5
    auto = isolated & (rng.random((n_accounts, n_c)) < 0.2)
    lev = rng.choice(np.array([5.0, 10.0, 20.0]), size=(n_accounts, n_c))
    qty = np.exp(rng.uniform(np.log(10.0), np.log(2_000.0), n))
    entry = START * (1 + rng.normal(0, 0.01, n))
    flat_lev = lev.ravel()
    iso = isolated.ravel()
    wiso = np.where(iso, qty * entry / flat_lev, 0.0)
    cross_im = np.where(iso, 0.0, qty * entry / flat_lev).reshape(n_accounts, n_c).sum(axis=1)
    wallet = cross_im * rng.uniform(1.05, 2.5, n_accounts) + 50.0
    tp = np.where(rng.random(n) < 0.1, entry * (1 + side * 0.05), np.nan)
    sl = np.where(rng.random(n) < 0.1, entry * (1 - side * 0.04), np.nan)
    has_order = rng.random(n_accounts) < 0.1
    o_acc = np.flatnonzero(has_order)
    first = o_acc * n_c  # the order rests on contract 0, on the position's leg and side
    o_side = side[first]
    o_price = START * (1 - o_side * 0.02)
    acc_ord0 = np.zeros(n_accounts + 1, np.int64)
    np.cumsum(has_order, out=acc_ord0[1:])
    return BookArrays(
        wallet, np.arange(0, n + 1, n_c, dtype=np.int64), acc_ord0, isolated.astype(np.int8), lev, lev.copy(),
        auto, auto.copy(), np.tile(np.arange(n_c, dtype=np.int32), n_accounts), leg, side,
        np.ones(n, np.int8), qty, entry, wiso, tp, sl, np.full(n, np.nan),
        np.arange(1, o_acc.size + 1, dtype=np.int64), np.zeros(o_acc.size, np.int32), leg[first].copy(),
        o_side.copy(), qty[first] * 0.5, o_price, np.zeros(o_acc.size, np.bool_), np.ones(o_acc.size, np.bool_),
        hedge.copy(), np.ones((n_accounts, n_c), np.bool_), np.tile(np.arange(n_c, dtype=np.int64), n_accounts))


def make_market(n_steps: int, seed: int = 1) -> Market:
    rng = np.random.default_rng(seed)
    n_c = len(CONTRACTS)
    ret = rng.normal(0, 0.0012, (n_steps, n_c))
    crash = np.zeros(n_steps)
    mid = n_steps // 2
    span = max(1, min(60, n_steps // 4))
    crash[mid:mid + span] = np.log(0.92) / span
    ret[:, 0] += crash
    close = START * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([np.full((1, n_c), START), close[:-1]])
    wick = np.abs(rng.normal(0, 0.0008, (n_steps, n_c, 2)))
    high = np.maximum(open_, close) * (1 + wick[..., 0])
    low = np.minimum(open_, close) * (1 - wick[..., 1])
    ohlc = np.ascontiguousarray(np.stack([open_, high, low, close], axis=2))
    return Market(ohlc, np.zeros((n_steps, n_c)), np.full((n_c, 2), START))


def nbytes(arrays) -> int:
    return int(sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)))
