"""A fund-sizing curve: 100 bootstrap paths x 100,000 accounts, 10 fund sizes.

``python -m benchmarks.fund_sizing [--paths 100] [--accounts 100000] [--out FILE] [--public-only | --direct-only]``

Each path is a moving-block bootstrap (30-bar blocks) of the 2025-10-10 crash bars in
``../shared/data`` (263 one-minute bars; a GBM path with a 15% wick stands in, and the JSON
says so, when that folder is absent).  One population is drawn once at the path's start
price; every path runs it through ``simulate()`` with an ample insurance fund, and
:func:`riskcore.studies.fund_needed` / :func:`~riskcore.studies.adl_curve` turn the runs
into the probability of ADL for ten fund sizes (issue 13: "a 10-point fund-sizing curve
over 100 bootstrap paths x 100,000 accounts runs in <= 2 minutes").  Times: drawing the
population, the paths, the simulations (with the kernels' own time), the study.

Then the public path: the same study as a scenario (``[study] kind = "fund-sizing"``, the
same population keys and seed, the same bootstrap, ``paths``, ``fund_sizes``) run by
:func:`riskcore.scenarios.run_to_folder` as ``riskcore run`` calls it (a chart helper on two
cores), writing the whole output folder (the first path's outputs, fund_sizing.parquet,
report.html) into a temporary folder: its wall time and phases, and whether its curve is
the direct one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CRASH = ROOT.parent / "shared" / "data" / "BTCUSDT_PERP_1m_20251010T1831_20251010T2253_last.csv.gz"
LEVERAGE = {3: 0.15, 5: 0.2, 10: 0.3, 20: 0.2, 50: 0.1, 100: 0.05}  # the crash scenarios' mix
FEE_RATE = 0.0125


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fund_sizing", description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--slippage", type=float, default=0.01,
                        help="liquidation slippage (default 1%%: without market impact, which riskcore does not "
                             "model yet, the crash scenarios' 0.1%% leaves no deficit and the curve is flat)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "fund_sizing.json"))
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--public-only", action="store_true", help="only the scenario run through run_to_folder")
    only.add_argument("--direct-only", action="store_true", help="only the direct simulate() loop")
    args = parser.parse_args(argv)
    PARAMS = dict(liquidation_fee_rate=FEE_RATE, liquidation_slippage=args.slippage)

    from riskcore import Brackets, simulate, studies
    from riskcore.io import load_klines
    from riskcore.populations import generate_population_table
    from riskcore.synthetic import bootstrap_paths, gbm_paths, inject_wick

    if args.public_only:
        out = {"paths": args.paths, "accounts": args.accounts, "liquidation_slippage": args.slippage,
               "public": public(args, None),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()}}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.out}")
        return 0
    started = time.perf_counter()
    times = {}
    t0 = time.perf_counter()
    if CRASH.is_file():
        real = load_klines(CRASH, "BTCUSDT")
        source = f"bootstrap of {CRASH.name} ({len(real)} bars, blocks of 30)"
        n_steps, start_price = len(real), float(real["open"].iloc[0])
    else:
        real = None
        n_steps, start_price = 263, 120_000.0
        source = "GBM with a 15% wick (the shared crash data is absent)"
    brackets = {"BTCUSDT": Brackets.load("BTCUSDT", "2025-10-10")}
    table = generate_population_table(args.accounts, brackets, {"BTCUSDT": start_price}, seed=11,
                                      spec={"leverage": LEVERAGE, "headroom_median": 0.5, "notional_median": 10_000.0})
    times["population"] = time.perf_counter() - t0

    def path(seed: int):
        if real is not None:
            return bootstrap_paths(real, n_steps, block=30, seed=seed, start_price=start_price, contract="BTCUSDT")
        paths = gbm_paths({"BTCUSDT": start_price}, n_steps, vol=1.0, seed=seed)
        return inject_wick(paths, "BTCUSDT", at=n_steps // 2, depth=-0.15)

    simulate(table, path(0), insurance_fund=studies.AMPLE_FUND, **PARAMS)  # kernels loaded, first calls made
    results, kernel, paths_s, sim_s = {}, 0.0, 0.0, 0.0
    needed = []
    study_s = 0.0
    for seed in range(args.paths):
        t0 = time.perf_counter()
        p = path(seed)
        paths_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        result = simulate(table, p, insurance_fund=studies.AMPLE_FUND, **PARAMS)
        sim_s += time.perf_counter() - t0
        kernel += float(result.timings["kernel"])
        t0 = time.perf_counter()
        needed.append(studies.fund_needed({seed: result}))
        study_s += time.perf_counter() - t0
        del result
    import pandas as pd

    t0 = time.perf_counter()
    needed = pd.concat(needed)
    sizes = np.geomspace(1e4, 1e9, 10)
    curve = studies.adl_curve(needed, sizes)
    study_s += time.perf_counter() - t0
    times.update(paths=paths_s, simulate=sim_s, kernels=kernel, study=study_s)
    wall = time.perf_counter() - started
    out = {
        "paths": args.paths, "accounts": args.accounts, "bars": n_steps, "price_source": source,
        "liquidation_slippage": args.slippage,
        "wall_seconds": wall, "seconds": times, "target_seconds": 120.0,
        "fund_needed": {"min": float(needed["fund_needed"].min()), "median": float(needed["fund_needed"].median()),
                        "max": float(needed["fund_needed"].max()),
                        "paths_needing_a_fund": int((needed["fund_needed"] > 0).sum())},
        "curve": curve.to_dict("records"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    print(f"fund sizing: {args.paths} paths x {args.accounts:,} accounts x {n_steps} bars ({source}; "
          f"liquidation slippage {args.slippage:g})")
    print(f"  {wall:.1f} s in all (target 120 s): population {times['population']:.1f} s, paths {paths_s:.1f} s, "
          f"simulate {sim_s:.1f} s (kernels {kernel:.1f} s), study {study_s:.2f} s")
    print(f"  fund needed to avoid ADL: median {out['fund_needed']['median']:,.0f}, "
          f"max {out['fund_needed']['max']:,.0f}; {out['fund_needed']['paths_needing_a_fund']} of {args.paths} "
          f"paths draw the fund below its start")
    print(curve.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    if not args.direct_only:
        out["public"] = public(args, curve)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


SCENARIO = """
name = "fund-sizing-benchmark"
seed = 11
[study]
kind = "fund-sizing"
paths = {{ from = 0, count = {paths} }}
fund_sizes = {{ from = 1e4, to = 1e9, count = 10 }}
[market]
liquidation_fee_rate = {fee}
liquidation_slippage = {slippage}
[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "2025-10-10" }}
{start}
[path]
{path}
[population]
accounts = {accounts}
leverage = {{ 3 = 0.15, 5 = 0.2, 10 = 0.3, 20 = 0.2, 50 = 0.1, 100 = 0.05 }}
headroom_median = 0.5
notional_median = 10000.0
"""


def public(args, direct_curve) -> dict:
    """The study through the public path: a scenario file run by run_to_folder, as `riskcore run`
    runs it (kernels already compiled: the cache is warm after the direct loop, or warmed here)."""
    import tempfile

    import pandas as pd

    from riskcore.kernels.cache import cache_is_warm
    from riskcore.report import ChartHelper
    from riskcore.scenarios import load_scenario, run_to_folder

    if CRASH.is_file():
        path = (f'kind = "bootstrap"\nn_steps = 263\nblock = 30\nsource = {{ BTCUSDT = "{CRASH}" }}')
        start = ""
    else:  # as the direct loop: GBM with a 15% wick at the middle bar
        path = ('kind = "gbm"\nn_steps = 263\nvol = 1.0\n[[path.wicks]]\ncontract = "BTCUSDT"\nat = 131\n'
                'depth = -0.15\nrecover = true')
        start = "start_price = 120000.0"
    text = SCENARIO.format(paths=args.paths, fee=FEE_RATE, slippage=args.slippage, start=start, path=path,
                           accounts=args.accounts)
    with tempfile.TemporaryDirectory() as folder:
        scenario_file = Path(folder) / "fund-sizing-benchmark.toml"
        scenario_file.write_text(text)
        if not cache_is_warm():
            from riskcore.kernels.compiling import warm_with_progress

            warm_with_progress(tape=False)
        t0 = time.perf_counter()
        scenario = load_scenario(scenario_file)
        target, _, phases, source = run_to_folder(scenario, Path(folder) / "out",
                                                  chart_helper=ChartHelper.wanted())
        wall = time.perf_counter() - t0
        curve = pd.read_parquet(Path(target) / "fund_sizing.parquet")
        files = sorted(p.name for p in Path(target).iterdir())
    same = None
    if direct_curve is not None:
        same = bool(np.array_equal(curve["paths_with_adl"].to_numpy(), direct_curve["runs_with_adl"].to_numpy()))
    print(f"public path (a [study] scenario through run_to_folder, as `riskcore run`): {wall:.1f} s in all "
          f"(target 120 s): " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.phases.items())
          + f"; the kernels' own time {phases.kernel:.1f} s")
    print(f"  {source}; wrote {len(files)} files ({', '.join(f for f in files if not f.endswith('.png'))})")
    if same is not None:
        print(f"  P(ADL) the same as the direct loop's at every size: {'yes' if same else 'NO'}")
    print(curve[["insurance_fund", "paths_with_adl", "p_adl", "socialised_mean", "socialised_tail"]]
          .to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    return {"wall_seconds": wall, "seconds": phases.phases, "kernels": phases.kernel, "price_source": source,
            "same_p_adl_as_direct": same, "curve": curve.drop(columns=["variant"]).to_dict("records")}


if __name__ == "__main__":
    raise SystemExit(main())
