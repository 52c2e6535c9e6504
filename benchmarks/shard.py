"""Sharding one book (riskcore.shard) against one process on the same book.

    python -m benchmarks.shard [--accounts 200000] [--bars 1440] [--window 64] [--every 512] [--out reports/shard.json]

The book and path are the benchmark cases' generators (``benchmarks/cases.py``: three
positions per account on three contracts, a day of one-minute bars with a sell-off).  Two
funds: an ample one (1e9: no bad debt goes unpaid, the common case: the shards never wait
for each other) and none (0: every deficit is pro rata and ADL, so the run goes back to one
process at each bar with a deficit).  For each, it times

* ``one process``: ``riskcore.simulate`` on the whole book (numba threads: every core);
* ``2 shards, here``: ``simulate_sharded`` with the shards run one after the other in this
  process (what sharding costs on top of the kernels: packing, the state files, the replay);
* ``2 shards, local:2``: the same on a local Dask cluster of two worker processes with one
  thread each (started and warmed before the timing).

and reports, from ``result.timings["shard"]``: the coordinator's time per bar (merging the
records, the fund's replay, the step rows, the events, the state files' bookkeeping), the
bytes the shards' reports move per bar, the state files' bytes per checkpoint, the rollbacks
and the bars run in one process, and the workers' kernel time per account-bar (what the
100M-account plan in docs/cluster.md is scaled from).  Each timing comes with the CPUs
other processes used meanwhile (``other_cpus``): above 0.2 the timing means little.
The results are checked equal to one process (events, steps, the final table).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _equal(a, b) -> bool:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
        pd.testing.assert_frame_equal(a.steps, b.steps, check_exact=True)
        for name, frame in a.final.frames().items():
            pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                          b.final.frames()[name].reset_index(drop=True), check_exact=True)
    except AssertionError:
        return False
    return a.ledger == b.ledger


def _figures(result, bars: int, accounts: int, wall: float, others: float) -> dict:
    s = result.timings.get("shard")
    out = {"wall_seconds": round(wall, 3), "other_cpus": round(others, 2)}
    if s is None:
        out["kernel_seconds"] = round(float(result.timings.get("kernel", 0.0)), 3)
        return out
    out.update(
        windows=s["windows"], rollbacks=s["rollbacks"], bars_in_one_process=s["bars_in_one_process"],
        worker_kernel_seconds=round(s["worker_kernel_seconds"], 3),
        coordinator_seconds=round(s["coordinator_seconds"], 3),
        one_process_seconds=round(s["one_process_seconds"], 3),
        coordinator_ms_per_bar=round(1e3 * s["coordinator_seconds"] / bars, 3),
        report_bytes_per_bar=round(s["report_bytes"] / bars),
        state_files=s["state_files"], state_bytes=s["state_bytes"],
        state_bytes_per_account_file=round(s["state_bytes"] / max(1, s["state_files"]) * s["shards"] / accounts, 1),
        bars_caught_up=s["bars_caught_up"],
        kernel_ns_per_account_bar=round(1e9 * s["worker_kernel_seconds"] / (accounts * bars), 2))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--bars", type=int, default=1440)
    parser.add_argument("--window", type=int, default=64, help="bars per window")
    parser.add_argument("--every", type=int, default=512, help="bars between state files (checkpoint_every)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--no-cluster", action="store_true", help="skip the local:2 cluster")
    parser.add_argument("--out", default=str(ROOT / "reports" / "shard.json"))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from benchmarks import cases
    from benchmarks.sweep import _timed
    from riskcore import cluster, simulate
    from riskcore.kernels.engine import warmup
    from riskcore.shard import prepare_shard_workers, simulate_sharded, warm_shard

    warmup(tape=False)
    warm_shard()
    case = cases.Case("shard", args.accounts, args.bars)
    table, paths = cases.make_table(case), cases.make_paths(case)
    n_acc = len(table.accounts)
    out = {"accounts": n_acc, "positions": len(table.positions), "bars": args.bars, "window": args.window,
           "every": args.every,
           "shards": args.shards, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "runs": {}}
    client_ctx = None if args.no_cluster else cluster.connect(cluster.parse_cluster("local:2"))
    client = client_ctx.__enter__() if client_ctx is not None else None
    try:
        if client is not None:
            prepare_shard_workers(client)
            client.wait_for_workers(2, timeout=600)
        for fund in (1e9, 0.0):
            params = dict(cases.SIM_PARAMS, insurance_fund=fund)
            one, wall, others = _timed(lambda: simulate(table, paths, **params))
            row = {"one process": _figures(one, args.bars, n_acc, wall, others)}
            configs = [("2 shards, here", None)] + ([("2 shards, local:2", client)] if client is not None else [])
            for name, cl in configs:
                res, wall, others = _timed(lambda: simulate_sharded(table, paths, shards=args.shards,
                                                                    window=args.window, checkpoint_every=args.every,
                                                                    client=cl, **params))
                row[name] = _figures(res, args.bars, n_acc, wall, others)
                row[name]["equal_to_one_process"] = _equal(res, one)
                del res
            row["adl_events"] = int((one.events["kind"] == "adl").sum())
            out["runs"][f"fund={fund:g}"] = row
            del one
    finally:
        if client_ctx is not None:
            client_ctx.__exit__(None, None, None)
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
