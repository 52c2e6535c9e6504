"""Throughput with partial liquidation against whole-position liquidation (issue 12), through
``simulate()``.

The benchmark book (a case of :mod:`benchmarks.cases`, by default ``main_1M_x_1440``: a
million accounts, three million positions on Binance's BTCUSDT tiers 1-4, a day of one-minute
bars with an ~8% sell-off) runs once per venue profile after a warm-up.  Two profiles that
differ from ``binance+taker`` (Binance's rules with the taker fee as the liquidation fee) by the
liquidation procedure alone (``binance+taker+tiers``: step down a tier; ``binance+taker+slices``:
20% slices above 100,000) measure the cost of partial liquidation itself; the shipped profiles
follow, with their other switches too.  Each run's process CPU time is shown beside its wall
time: a run whose wall time is far above its CPU time over the threads was held up (another
process, or the machine's owner pausing processes for a quiet measurement).  The kernel's time comes
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
import resource
import time

from benchmarks import cases
from riskcore import simulate
from riskcore.venues import profiles as vp

# Binance's rules with the taker fee as the liquidation fee (a partial close paying the run's 1% on
# what it closes could never leave the rest safe: the fee is above the maintenance rate it frees),
# then with partial liquidation by tier or in slices: the pair differs by the procedure alone.
_TAKER = dataclasses.replace(vp.PROFILES["binance"], name="binance+taker", liquidation_fee="taker")
EXTRA = (_TAKER, dataclasses.replace(_TAKER, name="binance+taker+tiers", liquidation="tiers"),
         dataclasses.replace(_TAKER, name="binance+taker+slices", liquidation="slices",
                             slice_above=vp.PARTIAL_LIQUIDATION_ABOVE, slice_fraction=vp.SLICE_FRACTION))
PROFILES = ("binance", "binance+taker", "binance+taker+tiers", "binance+taker+slices", "bybit", "okx", "hyperliquid",
            "dydx")


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
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            r = simulate(book, paths, **base)
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            if best is None or r.timings["kernel"] < best[1]:
                best = (wall, r.timings["kernel"], cpu, r)
        wall, kernel, cpu, r = best
        liq = r.events[r.events["kind"] == "liquidation"]
        rows.append((venue, wall, kernel, cpu, len(liq), float((liq["qty"] * liq["price"]).sum()),
                     float(r.steps["bad_debt"].sum()), len(r.final.positions)))
        del r, liq
    load_after = os.getloadavg()
    print(f"case {case.name}: {case.accounts:,} accounts, {case.positions:,} positions, {case.bars:,} bars")
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average (1, 5, 15 min) before {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}")
    print(f"{'profile':<22}{'wall s':>8}{'cpu s':>8}{'kernel s':>10}{'x binance':>11}{'x whole':>9}"
          f"{'liquidations':>14}{'notional':>12}{'bad debt':>10}{'open at end':>13}")
    kernels = {v: k for v, _, k, *_ in rows}
    ref = kernels.get("binance", rows[0][2])
    for venue, wall, kernel, cpu, n, notional, debt, left in rows:
        whole = kernels.get("binance+taker") if venue.startswith("binance+taker+") else None
        ratio = f"{kernel / whole:>9.2f}" if whole else f"{'':>9}"
        print(f"{venue:<22}{wall:>8.2f}{cpu:>8.2f}{kernel:>10.2f}{kernel / ref:>11.2f}{ratio}{n:>14,}"
              f"{notional:>12.3g}{debt:>10.3g}{left:>13,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
