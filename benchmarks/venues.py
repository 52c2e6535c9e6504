"""Throughput with partial liquidation against whole-position liquidation (issue 12), through
``simulate()``.

The benchmark book (a case of :mod:`benchmarks.cases`, by default ``main_1M_x_1440``: a
million accounts, three million positions on Binance's BTCUSDT tiers 1-4, a day of one-minute
bars with an ~8% sell-off) runs once per venue profile after a warm-up.  Two profiles that
differ from Binance's rules by the liquidation procedure alone (``binance+tiers``: step down a
tier; ``binance+slices``: 20% slices above 100,000) measure the cost of partial liquidation
itself; the shipped profiles follow, with their other switches too.  The kernel's time comes
from ``simulate()``'s own timing (``Result.timings["kernel"]``); the printout gives each run's
wall and kernel time, the liquidations, what was liquidated and the kernel ratio to Binance's
whole-position run, and the machine's load average before and after (other engineers share it).

    python -m benchmarks.venues [--case NAME] [--repeat N]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

from benchmarks import cases
from riskcore import simulate
from riskcore.venues import profiles as vp

EXTRA = (dataclasses.replace(vp.PROFILES["binance"], name="binance+tiers", liquidation="tiers"),
         dataclasses.replace(vp.PROFILES["binance"], name="binance+slices", liquidation="slices",
                             slice_above=vp.PARTIAL_LIQUIDATION_ABOVE, slice_fraction=vp.SLICE_FRACTION))
PROFILES = ("binance", "binance+tiers", "binance+slices", "bybit", "okx", "hyperliquid", "dydx")


def with_venue(table, venue: str):
    contracts = table.contracts.copy()
    contracts["venue"] = venue
    return table.replace(contracts=contracts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="main_1M_x_1440")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each profile (the fastest kernel is shown)")
    ap.add_argument("--only", nargs="*", default=None, help="profiles to run (default: all)")
    args = ap.parse_args(argv)
    for prof in EXTRA:
        if prof.name not in vp.PROFILES:
            vp.register(prof)
    case = cases.CASES[args.case]
    table, paths = cases.make_table(case), cases.make_paths(case)
    base = cases.params(case)
    head = {s: f.iloc[:5] for s, f in paths.items()}  # the same argument types: compiles / loads the cache
    simulate(table, head, **base)
    load_before = os.getloadavg()
    rows = []
    for venue in args.only or PROFILES:
        book = with_venue(table, venue)
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            r = simulate(book, paths, **base)
            wall = time.perf_counter() - start
            if best is None or r.timings["kernel"] < best[1]:
                best = (wall, r.timings["kernel"], r)
        wall, kernel, r = best
        liq = r.events[r.events["kind"] == "liquidation"]
        rows.append((venue, wall, kernel, len(liq), float((liq["qty"] * liq["price"]).sum()),
                     float(r.steps["bad_debt"].sum()), len(r.final.positions)))
        del r, liq
    load_after = os.getloadavg()
    print(f"case {case.name}: {case.accounts:,} accounts, {case.positions:,} positions, {case.bars:,} bars")
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average (1, 5, 15 min) before {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}")
    print(f"{'profile':<16}{'wall s':>9}{'kernel s':>10}{'x binance':>11}{'liquidations':>14}{'notional':>12}"
          f"{'bad debt':>12}{'open at end':>13}")
    ref = next((k for v, _, k, *_ in rows if v == "binance"), rows[0][2])
    for venue, wall, kernel, n, notional, debt, left in rows:
        print(f"{venue:<16}{wall:>9.2f}{kernel:>10.2f}{kernel / ref:>11.2f}{n:>14,}{notional:>12.3g}{debt:>12.3g}"
              f"{left:>13,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
