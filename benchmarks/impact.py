"""Throughput with market impact on against off (issue 13), through ``simulate()``.

The same book and path (a case of :mod:`benchmarks.cases`, by default the benchmark book
``main_1M_x_1440``) run three times after a warm-up: without impact, with impact on the
fills only, and with impact and feedback (cascade rounds).  ``daily_volume`` is a multiple
of the book's open interest (``--volume``, default 2: perpetual futures trade about one
to three times their open interest a day); the printout gives each run's wall and kernel time, the
liquidations, the cascade rounds and the ratio to the run without impact.

    python -m benchmarks.impact [--case NAME]
"""
from __future__ import annotations

import argparse
import platform
import time


from benchmarks import cases
from riskcore import simulate


def open_interest(table) -> float:
    pos = table.positions
    return float((pos["qty"].to_numpy() * pos["entry_price"].to_numpy()).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="main_1M_x_1440")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each setting (the best is shown)")
    ap.add_argument("--volume", type=float, default=2.0,
                    help="daily_volume as a multiple of the book's open interest (default 2: perpetuals trade "
                         "about one to three times their open interest a day)")
    args = ap.parse_args(argv)
    case = cases.CASES[args.case]
    table, paths = cases.make_table(case), cases.make_paths(case)
    oi = open_interest(table)
    base = cases.params(case)
    impact = {"sigma": 0.04, "daily_volume": args.volume * oi, "k": 1.0, "permanent": 0.5, "half_life": 10}
    settings = [("off", {}), ("fills only", {"impact": dict(impact, feedback=False)}),
                ("fills + feedback", {"impact": impact})]
    head = {s: f.iloc[:5] for s, f in paths.items()}  # the same argument types: compiles / loads the cache
    simulate(table, head, **base, impact=impact)
    rows = []
    for name, extra in settings:
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            r = simulate(table, paths, **base, **extra)
            wall = time.perf_counter() - start
            if best is None or wall < best[0]:
                best = (wall, r.timings["kernel"], r)
        wall, kernel, r = best
        ev = r.events
        liq = ev[ev["kind"] == "liquidation"]
        rows.append((name, wall, kernel, len(liq), float((liq["qty"] * liq["price"]).sum()),
                     int((liq["round"] > 0).sum()), int(ev["round"].max()) if len(ev) else 0,
                     float(r.steps["bad_debt"].sum())))
        del r, ev, liq
    print(f"case {case.name}: {case.accounts:,} accounts, {case.positions:,} positions, {case.bars:,} bars; "
          f"impact sigma 0.04, daily_volume {args.volume * oi:.3g} ({args.volume:g} x the book's open interest), k 1, "
          f"permanent 0.5, half-life 10")
    print(f"machine: {platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores, "
          f"Python {platform.python_version()}")
    head = f"{'impact':<18}{'wall s':>9}{'kernel s':>10}{'x off':>8}{'liquidations':>14}{'notional':>12}" \
           f"{'in rounds':>11}{'max round':>11}{'bad debt':>12}"
    print(head)
    off_kernel = rows[0][2]
    for name, wall, kernel, n, notional, in_rounds, deepest, debt in rows:
        print(f"{name:<18}{wall:>9.2f}{kernel:>10.2f}{kernel / off_kernel:>8.2f}{n:>14,}{notional:>12.3g}"
              f"{in_rounds:>11,}{deepest:>11}{debt:>12.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
