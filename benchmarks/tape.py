"""Time the tape path: market orders spread over bars on a large book, through ``run_numba``.

``python benchmarks/tape.py [--accounts 100000] [--orders 100000] [--bars 100]``

The book: ``accounts`` one-way accounts, one in three with a cross long BTCUSDT.  The tape:
``orders`` market orders (buy/sell, 0.1-8 units, random accounts and contracts), spread
evenly over ``bars`` one-minute bars, given as ``ScheduledAction`` rows (what
``schedule_tape`` returns).  Reports the run with the tape, the same run without it (the
difference is the tape's cost), and the time spent in ``_Run.apply_actions`` (the bars'
actions) and, where the engine has them, in encoding the tape and writing its events.
Runs against whichever riskcore is first on ``sys.path`` (e.g. an older checkout on
``PYTHONPATH``), so the same script times the code before and after a change.  The kernels
are warmed (compiled or loaded) first and not timed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __name__ == "__main__" and __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parents[1]))


def make_case(n_accounts: int, n_orders: int, n_bars: int, seed: int = 0):
    from riskcore import Book, Brackets
    from riskcore.inputs import PricePaths, ScheduledAction

    rng = np.random.default_rng(seed)
    book = Book()
    table = Brackets.load("BTCUSDT")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        book.add_contract(symbol, table, mark_price=100.0)
    wallets = rng.uniform(200.0, 2_000.0, n_accounts)
    for a in range(n_accounts):
        book.add_account(a, wallet=float(wallets[a]))
    for a in range(0, n_accounts, 3):
        book.market_order(a, "BTCUSDT", "buy", float(rng.uniform(0.5, 5.0)), 100.0)
    stamps = pd.date_range("2025-01-01", periods=n_bars, freq="1min")
    frames = {}
    for c, symbol in enumerate(("BTCUSDT", "ETHUSDT")):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n_bars)))
        open_ = np.concatenate([[100.0], close[:-1]])
        frames[symbol] = pd.DataFrame({"timestamp": stamps, "open": open_, "high": np.maximum(open_, close) * 1.001,
                                       "low": np.minimum(open_, close) * 0.999, "close": close})
    paths = PricePaths.from_frames(frames)
    steps = np.sort(np.arange(n_orders) % n_bars)
    accts = rng.integers(0, n_accounts, n_orders)
    contract = rng.integers(0, 2, n_orders)
    side = rng.choice(["buy", "sell"], n_orders)
    qty = rng.uniform(0.1, 8.0, n_orders)
    actions = [ScheduledAction(int(steps[i]), i, "market", {"account": int(accts[i]),
                                                              "contract": ("BTCUSDT", "ETHUSDT")[contract[i]],
                                                              "side": str(side[i]), "qty": float(qty[i])})
               for i in range(n_orders)]
    return book, paths, actions


def timed(owner, name: str, box: dict):
    """Wrap ``owner.name`` to add its wall time to ``box[name]``."""
    fn = getattr(owner, name, None)
    if fn is None:
        return

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            box[name] = box.get(name, 0.0) + time.perf_counter() - t0

    setattr(owner, name, wrapper)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--bars", type=int, default=100)
    parser.add_argument("--intrabar", default="ohlc")
    args = parser.parse_args(argv)

    import riskcore
    from riskcore.kernels import engine, run_numba, warmup

    warmup()
    t0 = time.perf_counter()
    book, paths, actions = make_case(args.accounts, args.orders, args.bars)
    build = time.perf_counter() - t0
    rates = np.zeros((paths.n_steps, paths.n_contracts))
    kw = dict(liquidation_fee_rate=0.01, intrabar=args.intrabar)
    run_numba(book, paths.head(2), rates[:2], [a for a in actions if a.step < 2], **kw)  # warm this case's types

    t0 = time.perf_counter()
    plain = run_numba(book, paths, rates, [], **kw)
    no_tape = time.perf_counter() - t0

    box: dict = {}
    timed(engine._Run, "apply_actions", box)
    timed(engine._Run, "tape_results", box)
    for name in ("encode_tape", "prepare_tape"):
        timed(engine, name, box)
    t0 = time.perf_counter()
    result = run_numba(book, paths, rates, actions, **kw)
    with_tape = time.perf_counter() - t0
    out = {
        "riskcore": str(Path(riskcore.__file__).parent), "accounts": args.accounts, "orders": args.orders,
        "bars": args.bars, "intrabar": args.intrabar, "build_book_s": round(build, 2),
        "run_without_tape_s": round(no_tape, 2), "run_with_tape_s": round(with_tape, 2),
        "tape_cost_s": round(with_tape - no_tape, 2), **{f"{k}_s": round(v, 3) for k, v in box.items()},
        "events": len(result.events), "events_without_tape": len(plain.events),
        "fills": int((result.events["kind"] == "fill").sum()),
        "refused": int((result.events["kind"] == "refused").sum()),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
