"""Small books for the sharding tests (tests/test_shard*.py): seeded, a few thousand accounts
(a shard is at least one block of 1,024), and a gap down that leaves bad debt."""
from __future__ import annotations

import numpy as np
import pandas as pd

from riskcore import BookTable
from riskcore.brackets import Brackets
from riskcore.table import contract_frames

TIERS = [{"notional_floor": 0, "notional_cap": 50_000, "mmr": 0.004, "max_leverage": 125},
         {"notional_floor": 50_000, "notional_cap": 1e12, "mmr": 0.01, "max_leverage": 50}]


def crash_book(n_accounts: int = 3_000, seed: int = 0, bankrupt_until: int | None = None) -> BookTable:
    """``n_accounts`` accounts on AAA and BBB (start price 100): high-leverage longs, cross and
    isolated, among the first ``bankrupt_until`` accounts (default: the first two thirds),
    and low-leverage shorts (the ADL counterparties) everywhere, some holding both
    contracts, some with a resting order, a take-profit or a stop-loss."""
    rng = np.random.default_rng(seed)
    bankrupt_until = (2 * n_accounts) // 3 if bankrupt_until is None else bankrupt_until
    contracts, brackets = contract_frames({s: Brackets.from_records(TIERS, symbol=s) for s in ("AAA", "BBB")},
                                          {"AAA": 100.0, "BBB": 100.0})
    ids = np.arange(1, n_accounts + 1)
    accounts, settings, positions, orders = [], [], [], []
    next_order = 1
    for i, a in enumerate(ids):
        long_side = i < bankrupt_until and rng.random() < 0.8
        lev = float(rng.choice([10.0, 25.0, 50.0, 100.0])) if long_side else float(rng.choice([2.0, 3.0, 5.0]))
        iso = bool(rng.random() < 0.3)
        both = bool(rng.random() < 0.3)
        held = ["AAA", "BBB"] if both else [str(rng.choice(["AAA", "BBB"]))]
        wallet = 0.0
        for c in held:
            qty = float(np.round(rng.uniform(0.5, 20.0), 3))
            margin = qty * 100.0 / lev
            side = 1 if long_side else -1
            settings.append({"account": a, "contract": c, "margin_mode": "isolated" if iso else "cross",
                             "leverage_long": lev, "leverage_short": lev, "auto_add_long": False,
                             "auto_add_short": False})
            tp = float(100.0 * (1 - side * 0.03)) if rng.random() < 0.05 else np.nan
            sl = float(100.0 * (1 - side * 0.04)) if rng.random() < 0.05 else np.nan
            positions.append({"account": a, "contract": c, "leg": "both", "side": side, "qty": qty,
                              "entry_price": float(np.round(rng.uniform(99.0, 101.0), 2)),
                              "wallet_iso": margin if iso else 0.0, "take_profit": tp, "stop_loss": sl})
            wallet += margin * (rng.uniform(0.05, 0.3) if long_side else rng.uniform(1.0, 3.0))
            if rng.random() < 0.05:
                orders.append({"order_id": next_order, "account": a, "contract": c, "leg": "both", "side": -side,
                               "qty": float(qty / 2), "price": float(100.0 * (1 + side * 0.02)),
                               "reduce_only": True})
                next_order += 1
        accounts.append({"account": a, "wallet": float(np.round(wallet, 2)), "position_mode": "one-way"})
    return BookTable.from_frames({
        "meta": pd.DataFrame({"format_version": [1], "default_leverage": [20.0], "fees_collected": [0.0],
                              "next_order_id": [next_order]}),
        "contracts": contracts, "brackets": brackets,
        "accounts": pd.DataFrame(accounts), "settings": pd.DataFrame(settings),
        "positions": pd.DataFrame(positions),
        "orders": pd.DataFrame(orders, columns=["order_id", "account", "contract", "leg", "side", "qty", "price",
                                                "reduce_only"]),
    })


def crash_paths(n_bars: int = 90, seed: int = 1, gaps=((30, 0.93), (60, 0.96))) -> dict[str, pd.DataFrame]:
    """Bars of AAA and BBB: a small random walk from 100 with gaps down (bar, factor): the
    high-leverage longs go through their bankruptcy prices."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=n_bars, freq="1min")
    out = {}
    for j, symbol in enumerate(("AAA", "BBB")):
        steps = rng.normal(0.0, 0.001, n_bars)
        factor = np.ones(n_bars)
        for bar, f in gaps:
            factor[bar:] *= f if j == 0 else (1 + (f - 1) * 0.8)
        close = 100.0 * np.exp(np.cumsum(steps)) * factor
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n_bars))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n_bars))
        out[symbol] = pd.DataFrame({"timestamp": stamps, "open": open_, "high": high, "low": low, "close": close})
    return out
