"""A sweep on a local Dask cluster: 16 tasks on 1 worker against 2 workers (riskcore.cluster).

    python -m benchmarks.sweep [--accounts 30000] [--bars 360] [--repeat 1] [--out reports/sweep.json]

The study is 16 variants (two margin setups times eight maintenance-rate factors) of one
population through one synthetic path.  Each configuration starts its own
``LocalCluster`` of worker processes with one thread each, warms them (not timed: the
kernels come from the numba cache, run ``riskcore warmup`` once before), then times

* ``tasks``: submitting the 16 tasks until the last result is back (each task builds,
  simulates, reads out and writes its Parquet parts), the part a cluster spreads;
* ``run``: the whole ``run_on_cluster`` into a fresh folder, which adds what the client does
  alone (the summary, the report of 16 variants, the commit of the folder).

Configurations: 1 worker with 1 numba thread, 2 workers with 1 numba thread each (the
speed-up is the ratio of these two), and 1 worker with as many numba threads as cores (the
kernels' own parallelism, for comparison).  Each timing comes with how many CPUs' worth of
time other processes used meanwhile (``other_cpus``, from /proc/stat less this process and
its children): on a busy machine the speed-up means little.  Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTORS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8)

STUDY = """
name = "sweep-bench"
seed = 11

[market]
liquidation_fee_rate = 0.0125
insurance_fund = 100_000.0
liquidation_slippage = 0.001

[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }}
start_price = 60_000.0

[market.contracts.ETHUSDT]
brackets = {{ venue = "binance", symbol = "ETHUSDT", date = "2025-06-19" }}
start_price = 3_000.0

[path]
kind = "gbm"
n_steps = {bars}
vol = 0.8
correlation = 0.8

[[path.wicks]]
contract = "BTCUSDT"
at = {wick}
depth = -0.1

[population]
accounts = {accounts}
positions_per_account = [1, 2]
leverage = {{ 5 = 0.2, 10 = 0.3, 20 = 0.3, 50 = 0.2 }}
headroom_median = 0.5

[[variants]]
name = "cross"
population = {{ isolated_share = 0.0 }}

[[variants]]
name = "isolated + auto-add"
population = {{ isolated_share = 1.0, auto_add_share = 1.0 }}

[grid]
"market.mmr_factor" = [{factors}]
"""


def _cpu_seconds() -> tuple[float, float, float]:
    """(busy CPU-seconds of the machine, of this process and its children, wall clock)."""
    import psutil

    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    busy = (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)) / os.sysconf("SC_CLK_TCK")
    me = psutil.Process()
    ours = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            t = p.cpu_times()
            ours += t.user + t.system
        except psutil.Error:
            pass
    return busy, ours, time.perf_counter()


def _timed(fn):
    before = _cpu_seconds()
    value = fn()
    after = _cpu_seconds()
    wall = after[2] - before[2]
    # our children that ended meanwhile are not counted in ``after``: clamp at 0
    others = max(0.0, (after[0] - before[0]) - (after[1] - before[1]))
    return value, wall, others / wall


def measure(scenario, workers: int, numba_threads: int, repeat: int, run: bool) -> dict:
    from riskcore import cluster

    spec = cluster.ClusterSpec(f"local:{workers}", workers=workers)
    t0 = time.perf_counter()
    with cluster.connect(spec) as client:
        infos = cluster.prepare_workers(client)
        start = time.perf_counter() - t0
        tasks, others = [], []
        for _ in range(repeat):
            folder = Path(tempfile.mkdtemp(prefix="riskcore-sweep-"))
            try:
                for file in cluster.TABLES:
                    (folder / file).mkdir()
                specs = cluster.task_specs(scenario, folder, numba_threads)
                results, wall, busy = _timed(lambda: cluster._run_tasks(client, specs, cluster.run_task, None))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            assert [r.compiled for r in results] == [0] * len(specs), "a task compiled kernels"
            tasks.append(wall)
            others.append(busy)
        out = {"workers": workers, "threads_per_worker": 1, "numba_threads": numba_threads,
               "start_and_warm_seconds": round(start, 3), "tasks_seconds": [round(t, 3) for t in tasks],
               "tasks_other_cpus": [round(b, 2) for b in others],
               "task_phases_summed": {k: round(sum(r.phases[k] for r in results), 3) for k in cluster.TASK_PHASES},
               "tasks_per_worker": _per_worker(results),
               "kernels_compiled_at_warmup": sum(i["warm"].get("compiled", 0) for i in infos.values())}
        if run:
            folder = Path(tempfile.mkdtemp(prefix="riskcore-sweep-run-"))
            try:
                _, wall, busy = _timed(lambda: cluster.run_on_cluster(scenario, folder / "out", None, client=client,
                                                                      numba_threads=numba_threads))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            out.update(run_seconds=round(wall, 3), run_other_cpus=round(busy, 2))
    return out


def _per_worker(results) -> dict:
    counts: dict = {}
    for r in results:
        counts[str(r.pid)] = counts.get(str(r.pid), 0) + 1
    return counts


def table(results: dict) -> str:
    rows = [("workers x numba threads", "tasks (s)", "other CPUs", "whole run (s)", "other CPUs")]
    for r in results["configs"]:
        rows.append((f"{r['workers']} x {r['numba_threads']}", " / ".join(f"{t:.1f}" for t in r["tasks_seconds"]),
                     " / ".join(f"{b:.2f}" for b in r["tasks_other_cpus"]),
                     f"{r['run_seconds']:.1f}" if "run_seconds" in r else "-",
                     f"{r['run_other_cpus']:.2f}" if "run_other_cpus" in r else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    s = results["speedup"]
    lines.append(f"speed-up of 2 workers over 1 (1 numba thread each): tasks {s['tasks']:.2f}x"
                 + (f", whole run {s['run']:.2f}x" if s.get("run") else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=30_000, help="accounts per variant (default 30,000)")
    parser.add_argument("--bars", type=int, default=360, help="one-minute bars (default 360)")
    parser.add_argument("--repeat", type=int, default=1, help="time the tasks this many times per configuration")
    parser.add_argument("--no-run", action="store_true", help="time only the tasks, not the whole run")
    parser.add_argument("--out", default=str(ROOT / "reports" / "sweep.json"), help="the JSON written")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.bars < 20 or args.repeat < 1:
        parser.error("--accounts must be >= 1, --bars >= 20, --repeat >= 1")

    import dask
    import numba

    from riskcore.bench_compare import machine_info
    from riskcore.cluster import ensure_warm
    from riskcore.scenarios import load_scenario

    ensure_warm()  # compile into the cache once, here, before the workers load it
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep-bench.toml"
        path.write_text(STUDY.format(bars=args.bars, wick=args.bars * 2 // 3, accounts=args.accounts,
                                     factors=", ".join(str(f) for f in FACTORS)), encoding="utf-8")
        scenario = load_scenario(path)
        assert len(scenario.variants) == 16
        cores = os.cpu_count() or 1
        configs = [(1, 1), (2, 1), (1, cores)]
        results = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": sys.argv[1:],
                   "machine": machine_info(), "versions": {"dask": dask.__version__, "numba": numba.__version__},
                   "threading_layer": None, "case": {"tasks": 16, "accounts": args.accounts, "bars": args.bars},
                   "configs": []}
        for workers, threads in configs:
            print(f"{workers} worker(s) x {threads} numba thread(s)...", file=sys.stderr, flush=True)
            results["configs"].append(measure(scenario, workers, threads, args.repeat, not args.no_run))
    one, two = results["configs"][0], results["configs"][1]
    results["speedup"] = {"tasks": round(min(one["tasks_seconds"]) / min(two["tasks_seconds"]), 3)}
    if "run_seconds" in one:
        results["speedup"]["run"] = round(one["run_seconds"] / two["run_seconds"], 3)
    try:
        results["threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
