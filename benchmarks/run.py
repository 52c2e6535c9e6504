"""Benchmarks of the numba kernel engine: ``python -m benchmarks`` or ``python benchmarks/run.py``.

Each case runs in its own process (so peak memory is the case's own) and reports:
throughput in position-steps/s (positions x bars / seconds; x4 for position-points
under the ``ohlc`` model), the same run without sleeping accounts (``dense``, some cases),
the speed-of-light loop and the naive numpy cross check, peak memory against the input
arrays (and against the inputs plus the event records the run wrote), and events recorded.  Compile
time is measured apart: a cold compile into an empty cache and a cached start.
Prints a table and writes ``reports/bench.json``.  ``--quick`` shrinks every case.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL = {
    "main_1M_x_1440": dict(accounts=1_000_000, steps=1_440, sol=True, numpy_steps=6, dense=True),
    "long_100k_x_43200": dict(accounts=100_000, steps=43_200, sol=True, numpy_steps=20),
    "scale_accounts_25k": dict(accounts=25_000, steps=720, sol=True, numpy_steps=0),
    "scale_accounts_100k": dict(accounts=100_000, steps=720, sol=True, numpy_steps=0),
    "scale_accounts_400k": dict(accounts=400_000, steps=720, sol=True, numpy_steps=0),
    "scale_steps_180": dict(accounts=100_000, steps=180, sol=False, numpy_steps=0),
    "scale_steps_2880": dict(accounts=100_000, steps=2_880, sol=False, numpy_steps=0),
}
EXTRA = {  # run only when named with --only: tens of millions of positions (about 3 GB of inputs)
    "huge_10M_x_1440": dict(accounts=10_000_000, steps=1_440, sol=False, numpy_steps=2),
}
QUICK = {
    "main_20k_x_360": dict(accounts=20_000, steps=360, sol=True, numpy_steps=10, dense=True),
    "scale_accounts_5k": dict(accounts=5_000, steps=360, sol=True, numpy_steps=0),
    "scale_steps_90": dict(accounts=20_000, steps=90, sol=False, numpy_steps=0),
}


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


def run_case(name: str, spec: dict) -> dict:
    """One case, in this process."""
    import numba
    import numpy as np

    from benchmarks import baselines, cases
    from riskcore.kernels.engine import event_rows
    from riskcore.kernels.pack import init_lp_nb
    from riskcore.kernels.state import Params, empty_events, new_levels, new_scratch
    from riskcore.kernels.step_nb import run_steps_nb

    block = 1024
    pr = Params(1, False, 0.01, 0.001, block, True)
    # load the kernels from the cache on a tiny book first: not part of the throughput
    t0 = time.perf_counter()
    tiny_bk, tiny_mk, ct = cases.make_book(64), cases.make_market(4), cases.contracts()
    init_lp_nb(tiny_bk, ct, False)
    run_steps_nb(tiny_bk, ct, tiny_mk, new_levels(tiny_mk.ohlc, pr.intrabar, ct),
                 new_scratch(tiny_bk.s_qty.size, 64, 1, 4, ct.n_tiers.size), empty_events(event_rows(), 1024),
                 pr, 0, 4, False)
    load = time.perf_counter() - t0
    baselines.speed_of_light_nb(tiny_bk, ct, tiny_mk.ohlc, block)  # compiled (or cached) before timing
    base = _rss("VmRSS")
    bk, mk = cases.make_book(spec["accounts"]), cases.make_market(spec["steps"])
    init_lp_nb(bk, ct, False)
    input_bytes = cases.nbytes(bk) + cases.nbytes(mk) + cases.nbytes(ct)
    n_acc, n_pos, n_steps = bk.acc_wallet.size, bk.s_qty.size, mk.ohlc.shape[0]
    capacity = 1 << 18
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    lv = new_levels(mk.ohlc, pr.intrabar, ct)  # part of the run: the path's summary for sleeping accounts
    sc = new_scratch(n_pos, n_acc, -(-n_acc // block), n_steps, ct.n_tiers.size)
    ev = empty_events(event_rows(), capacity)
    run_steps_nb(bk, ct, mk, lv, sc, ev, pr, 0, n_steps, False)
    seconds = time.perf_counter() - t0
    peak = _rss("VmHWM")
    record = ev.ints.shape[2] * ev.ints.itemsize + ev.floats.shape[2] * ev.floats.itemsize  # bytes per event
    out = {
        "accounts": n_acc, "positions": n_pos, "steps": n_steps, "points": 4 * n_steps, "threads": numba.get_num_threads(),
        "kernel_seconds": seconds, "position_steps_per_s": n_pos * n_steps / seconds,
        "position_points_per_s": 4 * n_pos * n_steps / seconds, "cached_load_seconds": load,
        "input_bytes": input_bytes, "peak_rss_bytes": peak, "rss_before_inputs_bytes": base,
        "peak_over_inputs": (peak - base) / input_bytes, "peak_is_exact": exact_peak,
        "peak_over_inputs_and_events": (peak - base) / (input_bytes + int(ev.count.sum()) * record),
        "events": int(ev.count.sum()), "events_overflow": int(ev.overflow.sum()),
        "liquidations": int(sc.steps[:, 2].sum()), "topups": int(sc.steps[:, 8].sum()),
        "bad_debt": float(sc.steps[:, 4].sum()), "event_buffer_bytes": ev.ints.nbytes + ev.floats.nbytes,
    }
    del sc, ev
    if spec.get("dense"):  # the same run looking at every account at every point (no sleeping)
        bk2 = cases.make_book(spec["accounts"])
        init_lp_nb(bk2, ct, False)
        sc = new_scratch(n_pos, n_acc, -(-n_acc // block), n_steps, ct.n_tiers.size)
        ev = empty_events(event_rows(), capacity)
        t0 = time.perf_counter()
        run_steps_nb(bk2, ct, mk, lv, sc, ev, pr._replace(sleep=False), 0, n_steps, False)
        dense = time.perf_counter() - t0
        out["dense_seconds"] = dense
        out["dense_position_steps_per_s"] = n_pos * n_steps / dense
        same = np.array_equal(bk.acc_wallet, bk2.acc_wallet) and np.array_equal(bk.s_qty, bk2.s_qty)
        out["dense_same_book"] = bool(same)
        del sc, ev, bk2
    if spec.get("sol"):
        bk2 = cases.make_book(spec["accounts"])
        t0 = time.perf_counter()
        baselines.speed_of_light_nb(bk2, ct, mk.ohlc, block)
        sol = time.perf_counter() - t0
        out["sol_seconds"] = sol
        out["sol_position_steps_per_s"] = n_pos * n_steps / sol
        out["kernel_vs_sol"] = sol / seconds
    if spec.get("numpy_steps"):
        k = spec["numpy_steps"]
        bk2 = cases.make_book(spec["accounts"])
        t0 = time.perf_counter()
        baselines.numpy_cross_check(bk2, ct, mk.ohlc[:k])
        npy = time.perf_counter() - t0
        out["numpy_steps_timed"] = k
        out["numpy_position_steps_per_s"] = n_pos * k / npy
        out["kernel_vs_numpy"] = out["position_steps_per_s"] / out["numpy_position_steps_per_s"]
    return out


def compile_times() -> dict:
    """Cold compile into an empty cache directory, then a cached start, each in a fresh process."""
    code = ("import time; t=time.perf_counter(); from riskcore.kernels import warmup; w=warmup();"
            "import json; print(json.dumps({'warmup': w['seconds'], 'total': time.perf_counter()-t}))")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold_compile", "cached_start"):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(res.stderr[-2000:])
            info = json.loads(res.stdout.strip().splitlines()[-1])
            out[label] = {"warmup_seconds": info["warmup"], "process_seconds": time.perf_counter() - t0}
    return out


def table(results: dict) -> str:
    cols = ["case", "accounts", "steps", "kernel s", "pos-steps/s", "no-sleep s", "SoL pos-steps/s", "% of SoL",
            "x numpy", "peak/inputs", "peak/(inputs+events)", "events", "liqs"]
    rows = [cols]
    for name, r in results["cases"].items():
        rows.append([name, f"{r['accounts']:,}", f"{r['steps']:,}", f"{r['kernel_seconds']:.1f}",
                     f"{r['position_steps_per_s']:.3g}",
                     f"{r['dense_seconds']:.1f}" if "dense_seconds" in r else "-",
                     f"{r['sol_position_steps_per_s']:.3g}" if "sol_seconds" in r else "-",
                     f"{100 * r['kernel_vs_sol']:.0f}%" if "sol_seconds" in r else "-",
                     f"{r['kernel_vs_numpy']:.0f}x" if "kernel_vs_numpy" in r else "-",
                     f"{r['peak_over_inputs']:.2f}", f"{r['peak_over_inputs_and_events']:.2f}", f"{r['events']:,}",
                     f"{r['liquidations']:,}"])
    width = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, width)) for row in rows]
    c = results["compile"]
    if c is None:
        return "\n".join(lines)
    lines.append(f"compile: cold {c['cold_compile']['warmup_seconds']:.1f}s (process "
                 f"{c['cold_compile']['process_seconds']:.1f}s), cached start {c['cached_start']['warmup_seconds']:.2f}s "
                 f"(process {c['cached_start']['process_seconds']:.1f}s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases (a smoke test)")
    parser.add_argument("--case", help="run one case in this process and print its JSON (internal)")
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    parser.add_argument("--no-compile", action="store_true", help="skip the cold-compile and cached-start timing")
    args = parser.parse_args(argv)
    specs = QUICK if args.quick else {**FULL, **EXTRA}
    if args.case:
        print(json.dumps(run_case(args.case, specs[args.case])))
        return 0
    unknown = sorted(set(args.only or ()) - set(specs))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; the cases{' of --quick' if args.quick else ''} are {sorted(specs)}")
    names = [n for n in specs if (n in args.only if args.only else n not in EXTRA)]
    from riskcore.kernels import warmup

    warmup()  # the package cache, serially, before any parallel run
    results = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                           "cpus": os.cpu_count(), "processor": platform.processor()},
               "compile": None if args.no_compile else compile_times(), "cases": {}}
    import numba
    import numpy
    results["machine"].update(numba=numba.__version__, numpy=numpy.__version__,
                              threads=numba.config.NUMBA_NUM_THREADS)
    for name in names:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--case", name] + (["--quick"] if args.quick else [])
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode:
            print(f"{name}: failed\n{res.stderr[-3000:]}", file=sys.stderr)
            return 1
        results["cases"][name] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{name}: {results['cases'][name]['kernel_seconds']:.1f}s", file=sys.stderr, flush=True)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
