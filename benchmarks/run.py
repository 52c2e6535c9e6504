"""Benchmarks of riskcore through its public API: ``python -m benchmarks`` (or ``riskcore bench``).

The cases are :data:`benchmarks.cases.CASES`, the registry the differential test
(``tests/test_bench_cases.py``) runs too.  Each case runs in its own process, so its
peak memory is its own.

A ``simulate`` case reports, in one process:

(a) ``simulate()`` on the case's :class:`~riskcore.BookTable`: wall time, the kernels' own
    time inside it (``result.timings["kernel"]``), wall / kernel, and peak RSS over the
    input (the table's columns plus the price frames; peak = ``VmHWM`` after resetting it
    through ``/proc/self/clear_refs``, less the RSS before the inputs were built);
(b) the kernel alone (``run_steps_nb``) on the same table packed by ``pack_table``:
    position-steps/s (positions x bars / seconds; x4 for position-points under ``ohlc``),
    and for some cases again without sleeping accounts (``no-sleep``), checked to end in
    the same book;
(c) a naive numpy cross check on a few bars (``x numpy``);
(d) the speed-of-light loop of :mod:`benchmarks.baselines` (the fastest dense loop we
    have for the cross check of every account at every point), its constant-rate twin
    (``sol_const_*``) and, in the JSON only, the same loop with each position's excess
    folded into one multiply-add (``sol_folded_*``: faster, rounded differently);
    ``kernel_vs_sol`` = SoL seconds / kernel seconds (the table prints it as %).

A ``run`` case runs ``riskcore run`` end to end (``riskcore.cli.main`` in a fresh process,
kernels in the on-disk cache) on a generated scenario file, and reports the phases,
the total, the kernels' own time and total / kernel.

Compile time is measured apart: a cold compile into an empty cache and a cached start.
Prints tables and writes ``reports/bench.json``.  ``--quick`` runs the small cases;
``--only`` names cases (any of the registry); ``--layouts`` compares the speed-of-light
loop's layouts on one case.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rss(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _nbytes(arrays) -> int:
    import numpy as np

    return int(sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)))


def _best(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------ simulate cases
def simulate_case(case) -> dict:
    """(a)-(d) of the module docstring, in this process."""
    import numba
    import numpy as np

    from benchmarks import baselines, cases
    from riskcore import simulate
    from riskcore.inputs import PricePaths
    from riskcore.kernels.account_nb import init_lp_nb
    from riskcore.kernels.engine import DEFAULT_BLOCK, INTRABAR_CODES, event_rows, market_arrays
    from riskcore.kernels.enums import Glob
    from riskcore.kernels.pack import contract_arrays, pack_table
    from riskcore.kernels.state import Params, empty_events, mark_state, new_levels, new_scratch
    from riskcore.kernels.step_nb import run_steps_nb

    params = cases.params(case)
    # load every kernel from the cache, and make the first calls, on the case's small version
    t0 = time.perf_counter()
    tiny = cases.small(case)
    simulate(cases.make_table(tiny), cases.make_paths(tiny), **params)
    load = time.perf_counter() - t0
    baselines.warm()

    base = _rss("VmRSS")
    t0 = time.perf_counter()
    table, paths = cases.make_table(case), cases.make_paths(case)
    build = time.perf_counter() - t0
    input_bytes = cases.table_bytes(table) + cases.frame_bytes(paths.values())
    n_acc, n_pos = table.n_accounts, table.n_positions
    n_steps = len(next(iter(paths.values())))

    # (a) simulate() on the table
    gc.collect()
    exact = _reset_peak()
    t0 = time.perf_counter()
    result = simulate(table, paths, **params)
    wall = time.perf_counter() - t0
    peak = _rss("VmHWM")
    inside = float(result.timings["kernel"])
    steps = result.steps
    out = {
        "kind": "simulate", "accounts": n_acc, "positions": n_pos, "contracts": case.contracts, "steps": n_steps,
        "points": 4 * n_steps, "threads": numba.get_num_threads(), "build_seconds": build,
        "cached_load_seconds": load, "simulate_seconds": wall, "simulate_kernel_seconds": inside,
        "simulate_over_kernel": wall / inside, "simulate_position_steps_per_s": n_pos * n_steps / wall,
        "input_bytes": input_bytes, "rss_before_inputs_bytes": base, "simulate_peak_rss_bytes": peak,
        "simulate_peak_over_inputs": (peak - base) / input_bytes, "peak_is_exact": exact,
        "events": len(result.events), "liquidations": int(steps["liquidations"].sum()),
        "topups": int(steps["topups"].sum()), "bad_debt": float(steps["bad_debt"].sum()),
    }
    del result, steps
    gc.collect()

    # (b) the kernel alone on the same table, packed
    base = _rss("VmRSS")
    pp = PricePaths.from_frames(paths)
    contracts = tuple(pp.contracts)
    ct = contract_arrays(table, contracts)
    rates = np.zeros((n_steps, len(contracts)))
    mk = market_arrays(table, pp, rates, params["intrabar"])
    pr = Params(INTRABAR_CODES[params["intrabar"]], params.get("mm_basis", "mark") == "entry",
                float(params["liquidation_fee_rate"]), float(params["liquidation_slippage"]), DEFAULT_BLOCK, True)

    def packed():
        bk, _ = pack_table(table, contracts)
        init_lp_nb(bk, ct, pr.mm_entry)
        return bk

    def kernel(bk, sleep: bool):
        n_blocks = -(-n_acc // pr.block)
        sc = new_scratch(bk.s_qty.size, n_acc, n_blocks, n_steps, len(contracts))
        sc.glob[Glob.FUND] = params["insurance_fund"]
        # one call over every bar (no chunks): room for one event per position and funding bar
        n_funding = int(np.count_nonzero(np.any(rates != 0.0, axis=1)))
        ev = empty_events(event_rows(), 65_536 + bk.s_qty.size * (n_funding + 1) // max(1, event_rows() - 1))
        t0 = time.perf_counter()
        done = run_steps_nb(bk, ct, mk, lv, sc, ev, pr._replace(sleep=sleep), mark_state({}, contracts), 0, n_steps,
                            False)
        if done != n_steps:  # stopped early: a buffer row half full (never with the room given here)
            raise RuntimeError(f"the kernel stopped at bar {done} of {n_steps}: its event buffers were too small")
        return time.perf_counter() - t0, sc, ev

    bk = packed()
    t0 = time.perf_counter()
    lv = new_levels(mk.ohlc, pr.intrabar, ct)  # the path's summary for sleeping accounts
    levels = time.perf_counter() - t0
    arrays = _nbytes(bk) + _nbytes(mk) + _nbytes(ct) + _nbytes(lv)
    exact = _reset_peak()
    seconds, sc, ev = kernel(bk, True)
    peak = _rss("VmHWM")
    out.update({
        "kernel_seconds": seconds, "levels_seconds": levels, "position_steps_per_s": n_pos * n_steps / seconds,
        "position_points_per_s": 4 * n_pos * n_steps / seconds, "kernel_input_bytes": arrays,
        "kernel_peak_over_inputs": (peak - base) / arrays, "kernel_peak_is_exact": exact,
        "kernel_peak_over_inputs_and_events": (peak - base) / (arrays + int(ev.count.sum()) * (
            ev.ints.shape[2] * ev.ints.itemsize + ev.floats.shape[2] * ev.floats.itemsize)),
        "kernel_events": int(ev.count.sum()), "events_overflow": int(ev.overflow.sum()),
        "event_buffer_bytes": ev.ints.nbytes + ev.floats.nbytes,
    })
    del sc, ev
    if case.dense:  # the same run looking at every account at every point (no sleeping)
        bk2 = packed()
        dense, sc, ev = kernel(bk2, False)
        out["dense_seconds"] = dense
        out["dense_position_steps_per_s"] = n_pos * n_steps / dense
        out["dense_same_book"] = bool(np.array_equal(bk.acc_wallet, bk2.acc_wallet)
                                      and np.array_equal(bk.s_qty, bk2.s_qty) and np.array_equal(bk.s_wiso, bk2.s_wiso))
        del sc, ev, bk2
    del bk
    gc.collect()

    # (c) numpy, on a few bars
    if case.numpy_bars:
        k = min(case.numpy_bars, n_steps)
        bk = packed()
        npy = _best(lambda: baselines.numpy_cross_check(bk, ct, mk.ohlc[:k]))
        out["numpy_steps_timed"] = k
        out["numpy_position_steps_per_s"] = n_pos * k / npy
        out["kernel_vs_numpy"] = out["position_steps_per_s"] / out["numpy_position_steps_per_s"]
        del bk
    # (d) the speed of light, tiered and at one rate
    out["simulate_over_kernel_alone"] = out["simulate_seconds"] / seconds
    if case.sol:
        sb = baselines.sol_book(packed())
        tr = baselines.sol_tiers(ct)
        prices = baselines.point_prices(mk.ohlc)
        repeat = 3 if n_pos * n_steps <= 2e8 else 1  # best of a few when each run is short
        sol = _best(lambda: baselines.speed_of_light(sb, tr, prices), repeat)
        const = _best(lambda: baselines.speed_of_light_constant(sb, float(ct.mmr[0, 0]), prices), repeat)
        folded = _best(lambda: baselines.speed_of_light(sb, tr, prices, layout=baselines.sol_folded_nb), repeat)
        out.update({
            "sol_seconds": sol, "sol_position_steps_per_s": n_pos * n_steps / sol, "kernel_vs_sol": sol / seconds,
            "sol_const_seconds": const, "sol_const_position_steps_per_s": n_pos * n_steps / const,
            "kernel_vs_sol_const": const / seconds,
            "sol_folded_seconds": folded, "sol_folded_position_steps_per_s": n_pos * n_steps / folded,
            "kernel_vs_sol_folded": folded / seconds,
        })
        if "dense_seconds" in out:
            out["dense_vs_sol"] = sol / out["dense_seconds"]
    return out


# ----------------------------------------------------------------------- run cases
TIME_LINE = re.compile(r"time: ([\d.]+) s in all \((.*); the kernels' own time ([\d.]+) s\)")


def run_e2e_case(case) -> dict:
    """``riskcore run`` on the case's scenario file, in this (fresh) process."""
    from benchmarks import cases
    import riskcore.cli as cli
    import riskcore.scenarios as scenarios

    seen = {}
    run_to_folder = scenarios.run_to_folder

    def recording(*args, **kwargs):  # the same call; keeps the phase times at full precision
        ret = run_to_folder(*args, **kwargs)
        seen["times"] = ret[2]
        return ret

    with tempfile.TemporaryDirectory() as tmp:
        scenario = cases.write_scenario(case, tmp)
        target = Path(tmp) / "out"
        printed = io.StringIO()
        scenarios.run_to_folder = recording
        try:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(printed):
                code = cli.main(["run", str(scenario), "--out", str(target), "--no-progress"])
            wall = time.perf_counter() - t0
        finally:
            scenarios.run_to_folder = run_to_folder
        text = printed.getvalue()
        if code != 0:
            raise RuntimeError(f"riskcore run exited with {code}:\n{text[-3000:]}")
        run_json = json.loads((target / "run.json").read_text())
        sizes = {p.name: p.stat().st_size for p in target.iterdir() if p.suffix == ".parquet"}
    times = seen["times"]
    match = TIME_LINE.search(text)
    prices = next((line for line in text.splitlines() if line.startswith("prices: ")), "")
    return {
        "kind": "run", "accounts": case.accounts, "positions": case.positions, "variants": case.variants,
        "price_source": prices[len("prices: "):], "wall_seconds": wall, "phases": dict(times.phases),
        "run_json_phases": run_json.get("phases"), "kernel_seconds": times.kernel,
        "total_over_kernel": wall / times.kernel if times.kernel else None,
        "cli_line": match.group(0) if match else None,
        "cli_total_seconds": float(match.group(1)) if match else None,
        "peak_rss_bytes": _rss("VmHWM"), "parquet_bytes": sizes,
    }


def _cpu_seconds() -> tuple[float, float, float]:
    """(busy CPU-seconds of the whole machine, of this process, wall clock) so far."""
    import resource

    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    busy = (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)) / os.sysconf("SC_CLK_TCK")
    me = resource.getrusage(resource.RUSAGE_SELF)
    return busy, me.ru_utime + me.ru_stime, time.perf_counter()


def run_case(name: str) -> dict:
    """One case, in this process, with how busy the rest of the machine was meanwhile
    (``other_cpus``: CPUs' worth of time other processes used; a busy machine makes the
    parallel kernels' timings meaningless, see ``table``)."""
    import numba

    from benchmarks import cases

    case = cases.CASES[name]
    before = _cpu_seconds()
    out = run_e2e_case(case) if case.kind == "run" else simulate_case(case)
    after = _cpu_seconds()
    wall = after[2] - before[2]
    others = max(0.0, (after[0] - before[0]) - (after[1] - before[1]))
    out.update(other_cpus=others / wall, threading_layer=numba.threading_layer())
    return out


def compile_times() -> dict:
    """Each in a fresh process, in one empty cache directory: the cold compile a first
    ``riskcore run`` does (the kernels of a run without a tape, with the helper process of
    ``warm_in_two``), then the tape's kernels on top of it, then a cached start."""
    steps = {"cold_compile": "from riskcore.kernels.compiling import warm_in_two as f; w=f(tape=False)",
             "cold_compile_tape": "from riskcore.kernels import warmup as f; w=f(tape=True)",
             "cached_start": "from riskcore.kernels import warmup as f; w=f(tape=True)"}
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label, call in steps.items():
            code = (f"import time; t=time.perf_counter(); {call}; import json; "
                    "print(json.dumps({'warmup': w['seconds'], 'compiled': w['compiled'], "
                    "'total': time.perf_counter()-t}))")
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(res.stderr[-2000:])
            info = json.loads(res.stdout.strip().splitlines()[-1])
            out[label] = {"warmup_seconds": info["warmup"], "process_seconds": time.perf_counter() - t0,
                          "kernels_compiled": info["compiled"]}
    return out


# ------------------------------------------------------------------------ printing
def _grid(rows: list[list[str]], left: int = 1) -> list[str]:
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, width)))
            for row in rows]


def _s(value) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 10 else f"{value:.1f}")


def _rate(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def table(results: dict) -> str:
    sims = {n: r for n, r in results["cases"].items() if r.get("kind", "simulate") == "simulate"}
    runs = {n: r for n, r in results["cases"].items() if r.get("kind") == "run"}
    lines = []
    if sims:
        lines.append("simulate() on a table, the kernel alone on it packed, and the baselines "
                     "(rates in position-steps/s: positions x bars / seconds)")
        rows = [["case", "accounts", "positions", "bars", "simulate s", "its kernel s", "wall/kernel",
                 "wall/alone", "peak/inputs", "kernel s", "kernel rate", "no-sleep s", "SoL rate", "kernel/SoL",
                 "SoL 1-rate rate", "x numpy", "events", "liqs"]]
        for name, r in sims.items():
            rows.append([
                name, f"{r['accounts']:,}", f"{r['positions']:,}", f"{r['steps']:,}", _s(r["simulate_seconds"]),
                _s(r["simulate_kernel_seconds"]), f"{r['simulate_over_kernel']:.2f}",
                f"{r['simulate_over_kernel_alone']:.2f}",
                f"{r['simulate_peak_over_inputs']:.2f}", _s(r["kernel_seconds"]), _rate(r["position_steps_per_s"]),
                _s(r.get("dense_seconds")), _rate(r.get("sol_position_steps_per_s")),
                f"{100 * r['kernel_vs_sol']:.3g}%" if "kernel_vs_sol" in r else "-",
                _rate(r.get("sol_const_position_steps_per_s")),
                f"{r['kernel_vs_numpy']:.0f}x" if "kernel_vs_numpy" in r else "-", f"{r['events']:,}",
                f"{r['liquidations']:,}"])
        lines += _grid(rows)
        lines += ["  wall/kernel: simulate()'s wall over the kernels' time inside it; wall/alone: over the kernel "
                  "run alone on the packed table (kernel s)",
                  "  peak/inputs: peak RSS during simulate() less the RSS before the inputs were built, over the "
                  "table's columns + the price frames",
                  "  kernel/SoL: the speed-of-light loop's seconds over the kernel's (100% = the whole model as fast "
                  "as the dense cross check; more = faster, by sleeping); SoL 1-rate: the same loop at one MM rate"]
    if runs:
        if lines:
            lines.append("")
        lines.append("riskcore run, end to end (one fresh process per case, kernels in the cache)")
        phases = list(next(iter(runs.values()))["phases"])
        rows = [["case", "accounts", "variants", "total s", *phases, "kernel s", "total/kernel", "peak RSS GB",
                 "process s"]]
        for name, r in runs.items():
            rows.append([name, f"{r['accounts']:,}", str(r["variants"]), _s(r["wall_seconds"]),
                         *(_s(r["phases"].get(p)) for p in phases), _s(r["kernel_seconds"]),
                         f"{r['total_over_kernel']:.2f}" if r["total_over_kernel"] else "-",
                         f"{r['peak_rss_bytes'] / 1e9:.2f}", _s(r.get("process_seconds"))])
        lines += _grid(rows)
        source = next(iter(runs.values()))["price_source"]
        lines.append(f"  prices: {source}; total: riskcore.cli.main(['run', ...]) in the process; process: "
                     "the whole process, interpreter start and imports included")
    busy = max((r.get("other_cpus", 0.0) for r in results["cases"].values()), default=0.0)
    if busy > 0.2:
        lines.append(f"WARNING: other processes kept {busy:.1f} CPUs busy during a case: the parallel kernels' "
                     "timings are not meaningful (numba's OpenMP workers spin-wait at every point, and under "
                     "contention a point can take milliseconds; OMP_WAIT_POLICY=passive softens it)")
    c = results.get("compile")
    if c is not None:
        cold, tape, cached = c["cold_compile"], c.get("cold_compile_tape"), c["cached_start"]
        lines.append(f"compile: cold (a first riskcore run) {cold['warmup_seconds']:.1f}s (process "
                     f"{cold['process_seconds']:.1f}s, {cold.get('kernels_compiled', '?')} kernels here, the rest in "
                     f"a helper process)"
                     + (f", the tape's kernels {tape['warmup_seconds']:.1f}s more" if tape else "")
                     + f", cached start {cached['warmup_seconds']:.2f}s (process {cached['process_seconds']:.1f}s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def _commit() -> str | None:
    """The clone's commit (with "+changes" when its files differ from it), or None."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main(argv=None) -> int:
    from benchmarks import cases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small cases (a smoke test)")
    parser.add_argument("--case", help="run one case in this process and print its JSON (internal)")
    parser.add_argument("--only", nargs="*", help="case names to run (any case of the registry)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    parser.add_argument("--no-compile", action="store_true", help="skip the cold-compile and cached-start timing")
    parser.add_argument("--layouts", nargs="?", const="main_20k_x_360", metavar="CASE",
                        help="compare the speed-of-light loop's layouts on one case and exit")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case)))
        return 0
    if args.list:
        for name, c in cases.CASES.items():
            tag = "quick" if c.quick else ("on request" if c.on_request else "full")
            bars = ((f"the {c.crash} crash bars" if c.crash_file.is_file() else f"{c.bars:,} synthetic bars")
                    if c.kind == "run"
                    else f"{c.bars:,} bars")
            print(f"{name:28s} {tag:10s} {c.kind:8s} {c.accounts:>12,} accounts x {c.positions_per_account} "
                  f"positions, {c.contracts} contracts, {bars}" + (f", {c.variants} variant(s)"
                                                                  if c.kind == "run" else ""))
        return 0
    if args.layouts:
        from benchmarks import baselines

        if args.layouts not in cases.CASES:
            parser.error(f"unknown case {args.layouts!r}")
        print(json.dumps(baselines.compare_layouts(args.layouts), indent=2))
        return 0
    unknown = sorted(set(args.only or ()) - set(cases.CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; the cases are {sorted(cases.CASES)}")
    specs = cases.selection(args.quick, args.only)
    from riskcore.kernels import warmup

    warmup()  # the package cache, serially, before any parallel run
    from benchmarks import baselines

    baselines.warm()  # the speed-of-light loops' cache too
    from riskcore.bench_compare import SCHEMA, machine_info

    results = {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": sys.argv[1:],
               "commit": _commit(), "machine": machine_info(),
               "compile": None if args.no_compile else compile_times(), "cases": {}}
    for name in specs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--case", name]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        process = time.perf_counter() - t0
        if res.returncode:
            print(f"{name}: failed\n{res.stderr[-3000:]}", file=sys.stderr)
            return 1
        r = results["cases"][name] = json.loads(res.stdout.strip().splitlines()[-1])
        r["process_seconds"] = process
        if r["kind"] == "run":
            print(f"{name}: riskcore run {r['wall_seconds']:.1f}s, kernels {r['kernel_seconds']:.1f}s",
                  file=sys.stderr, flush=True)
        else:
            print(f"{name}: simulate {r['simulate_seconds']:.1f}s, kernel {r['kernel_seconds']:.1f}s",
                  file=sys.stderr, flush=True)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
