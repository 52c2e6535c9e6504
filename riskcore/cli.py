"""The riskcore command line."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from . import exit_codes
from .exit_codes import (BAD_INPUT as EXIT_BAD_INPUT, FAILED as EXIT_FAILED, INTERRUPTED as EXIT_INTERRUPTED,
                         MISSING_DATA as EXIT_MISSING_DATA, OK as EXIT_OK)

DESCRIPTION = ("riskcore: a risk simulator for perpetual-futures margin (isolated and cross margin,\n"
               "brackets, auto-add-margin, liquidations). 'riskcore run' runs the default scenario and\n"
               "writes reports/default/report.html; 'riskcore COMMAND --help' tells more.")


def _cmd_example(args) -> int:
    from .examples import WALLET, binance_cross_example

    book, table = binance_cross_example()
    summary = book.account_summary("cross")
    shown = table.set_index("contract").T.astype(object)
    for row in shown.index:
        fmt = "{:.2%}" if row == "mmr" else ("{:,.3f}" if row == "qty" else "{:,.2f}")
        shown.loc[row] = [fmt.format(v) for v in shown.loc[row]]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("Binance's cross-margin example (MARGIN_RULES.md section 4)")
        print(f"cross wallet {WALLET:,.2f}; both positions long, other contract held at its mark\n")
        print(shown.to_string())
        print(f"\naccount: margin balance {summary['margin_balance']:,.2f}, "
              f"maintenance margin {summary['maintenance_margin']:,.2f}, "
              f"MMR {summary['mmr']:.2%}, IMR {summary['imr']:.2%}")
    worst = (table["cross_liq"] - table["binance_cross_liq"]).abs().max()
    worst = max(worst, (table["isolated_liq"] - table["binance_isolated_liq"]).abs().max())
    print(f"largest difference from Binance's published prices: {worst:.4f}")
    return 0 if worst < 0.01 else 1


def _cmd_brackets(args) -> int:
    from .brackets import Brackets

    if args.symbol is None:
        if args.date:
            raise ValueError("--date needs a symbol, e.g. riskcore brackets BTCUSDT --date 2024-08-05")
        shipped = Brackets.shipped()
        print(shipped.groupby(["venue", "symbol", "effective_date"]).size().rename("tiers").to_string())
        return 0
    table = Brackets.load(args.symbol, args.date)
    print(f"{table.symbol} brackets in effect {args.date or 'now'}: table of {table.effective_date} "
          f"({table.source})")
    with pd.option_context("display.float_format", lambda v: f"{v:,.10g}"):
        print(table.to_frame().to_string(index=False))
    return 0


def _cmd_keys(args) -> int:
    from .scenario_keys import markdown

    print(markdown())
    return EXIT_OK


def _cmd_warmup(args) -> int:
    from .kernels.compiling import warm_with_progress

    print("riskcore: compiling the numba kernels (or loading them from the cache)...", flush=True)
    info = warm_with_progress(tape=True)
    print(f"kernels ready in {info['seconds']:.1f} s")
    return 0


def _cmd_bench(args) -> int:
    import subprocess

    from . import bench_compare

    tolerance = bench_compare.parse_tolerance(args.tolerance)
    if args.results and not args.compare:
        raise ValueError("--results NEW.json goes with --compare BASELINE.json")
    if args.compare:
        baseline = bench_compare.load(args.compare)  # a bad baseline is found before a long run
    if args.results:  # compare two files already written: nothing is run
        return _compare(baseline, args.compare, bench_compare.load(args.results), args.results, tolerance,
                        args.min_seconds)
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "run.py").is_file():
        raise FileNotFoundError(f"the benchmarks ship with the source tree, not the installed package: "
                                f"no benchmarks/run.py beside {root / 'riskcore'}; run from a clone of riskcore "
                                "(comparing two files needs no clone: --compare BASELINE.json --results NEW.json)")
    out = Path(args.out).resolve() if args.out else root / "reports" / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks", "--out", str(out)] + (["--quick"] if args.quick else [])
    if args.only:
        cmd += ["--only", *args.only]
    if args.no_compile:
        cmd += ["--no-compile"]
    code = subprocess.run(cmd, cwd=root).returncode
    if code or not args.compare:
        return code
    return _compare(baseline, args.compare, bench_compare.load(out), str(out), tolerance, args.min_seconds)


def _compare(baseline: dict, baseline_name: str, new: dict, new_name: str, tolerance: float,
             min_seconds: float) -> int:
    from . import bench_compare

    result = bench_compare.compare(baseline, new, tolerance, min_seconds)
    print(bench_compare.report(result, tolerance, baseline_name, new_name, baseline, new))
    if not result["rows"]:
        raise ValueError(f"{new_name} and {baseline_name} have no case of the same size in common")
    return exit_codes.REGRESSION if result["regressions"] else EXIT_OK


# ------------------------------------------------------------------ the run's summary on a terminal
# (row label, summary column, how to show it); money in whole units of the quote currency
SUMMARY_ROWS = (
    ("accounts", "accounts", "count"),
    ("positions", "positions", "count"),
    ("accounts liquidated", "accounts_liquidated", "count-rate"),
    ("liquidations (positions)", "liquidations", "count"),
    ("liquidated notional", "liquidated_notional", "money"),
    ("mean loss per account", "mean_loss_per_account", "money2"),
    ("bad debt", "bad_debt", "money"),
    ("  paid by the insurance fund", "insurance_paid", "money"),
    ("  recovered by ADL", "adl_recovered", "money"),
    ("  socialised", "socialised_loss", "money"),
    ("ADL events", "adl_events", "count"),
    ("auto-add top-ups", "topups", "count"),
    ("  amount topped up", "topup_amount", "money"),
    ("accounts saved by auto-add", "accounts_saved_by_auto_add", "count"),
    ("insurance fund: start", "insurance_fund_start", "money"),
    ("insurance fund: end", "final_insurance_fund", "money"),
)


def _shown(value, how: str, row: pd.Series) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if how == "count":
        return f"{int(value):,}"
    if how == "count-rate":
        return f"{int(value):,} ({row['liquidation_rate']:.1%})"
    if how == "money2":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


SHOWN_VARIANTS = 12  # a terminal shows this many variants' summaries; the files hold every one


def variant_names(names: list, most: int = 6) -> str:
    """The variants' names for the start line: all of them, or the first ``most`` and a count."""
    names = [str(n) for n in names]
    if len(names) <= most + 1:
        return ", ".join(names)
    return ", ".join(names[:most]) + f" and {len(names) - most:,} more"


def summary_text(summary: pd.DataFrame, width: int = 100, most: int = SHOWN_VARIANTS) -> str:
    """The per-variant summary for a terminal: one row per metric, one column per variant,
    thousands separators, money rounded, rates as percentages; variants that do not fit in
    ``width`` characters go on to a further block.  Past ``most`` variants (a sweep over
    many paths), the first ``most`` are shown and a line says where the rest are."""
    more = len(summary) - most
    if more > 0:
        return (summary_text(summary.iloc[:most], width, most) + f"\n\n... and {more:,} more variants: every "
                "variant is in summary.parquet and report.html (and spread.parquet for a sweep over paths)")
    rows = [(label, col, how) for label, col, how in SUMMARY_ROWS if col in summary.columns]
    head = "(amounts in the quote currency)"
    labels = [head] + [label for label, _, _ in rows]
    columns = [[str(name)] + [_shown(row[col], how, row) for _, col, how in rows] for name, row in summary.iterrows()]
    return _table_text(labels, columns, width)


#: (row label, spread.parquet column, how to show it) of a sweep over paths
SPREAD_ROWS = (
    ("paths", "paths", "count"),
    ("liquidation rate: mean", "liquidation_rate_mean", "pct"),
    ("  median", "liquidation_rate_median", "pct"),
    ("  worst (path)", "liquidation_rate_worst", "pct-path"),
    ("bad debt: mean", "bad_debt_mean", "money"),
    ("  worst (path)", "bad_debt_worst", "money-path"),
    ("mean loss per account: mean", "mean_loss_per_account_mean", "money2"),
    ("  median", "mean_loss_per_account_median", "money2"),
    ("  worst (path)", "mean_loss_per_account_worst", "money2-path"),
)


def spread_text(spread: pd.DataFrame, width: int = 100) -> str:
    """A sweep's spread over its paths for a terminal (``spread.parquet``): a column per
    margin variant, the mean, median and worst of its results over the paths, the worst
    with the path that gave it."""
    labels = ["(over the paths; quote currency)"] + [label for label, _, _ in SPREAD_ROWS]
    columns = []
    for _, row in spread.iterrows():
        cells = [str(row["variant"])]
        for _, col, how in SPREAD_ROWS:
            value = row.get(col)
            kind, _, path = how.partition("-")
            if value is None or (isinstance(value, float) and math.isnan(value)):
                text = "-"
            elif kind == "pct":
                text = f"{value:.1%}"
            else:
                text = _shown(value, kind, row)
            if path and value:  # the path of a worst that is not zero
                text += f" ({row[col + '_path']})"
            cells.append(text)
        columns.append(cells)
    return _table_text(labels, columns, width)


def fund_sizing_text(curve: pd.DataFrame) -> str:
    """A fund-sizing study's curve for the terminal (``fund_sizing.parquet``): per variant, a row per
    fund size with P(ADL) and the expected and tail socialised loss."""
    level = float(curve["tail_level"].iloc[0])
    out = [f"insurance fund sizing over {int(curve['paths'].iloc[0]):,} paths: P(ADL) exact; socialised loss "
           f"approximate after the first shortfall (tail: mean of the worst {1 - level:.0%} of paths; "
           "fund_sizing.parquet)"]
    for name, c in curve.groupby("variant", sort=False):
        out.append(f"  {name}")
        out.append(f"    {'insurance fund':>18} {'P(ADL)':>8} {'expected loss':>16} {'tail loss':>16}")
        for _, r in c.iterrows():
            out.append(f"    {r['insurance_fund']:>18,.0f} {100 * r['p_adl']:>7.1f}% {r['socialised_mean']:>16,.0f} "
                       f"{r['socialised_tail']:>16,.0f}")
    return "\n".join(out)


def _table_text(labels: list, columns: list, width: int) -> str:
    """Labels down the left, a right-aligned column per entry, in blocks of ``width``."""
    label_width, gap = max(len(x) for x in labels), 3
    blocks, block, used = [], [], label_width
    for cells in columns:
        w = gap + max(len(c) for c in cells)
        if block and used + w > width:
            blocks.append(block)
            block, used = [], label_width
        block.append(cells)
        used += w
    if block:
        blocks.append(block)
    out = []
    for block in blocks:
        widths = [max(len(c) for c in cells) for cells in block]
        out.append("\n".join(labels[i].ljust(label_width) + "".join(" " * gap + cells[i].rjust(w)
                                                                      for cells, w in zip(block, widths))
                              for i in range(len(labels))))
    return "\n\n".join(out)


def _process_start() -> float | None:
    """When this process started (``time.time()`` seconds), from /proc; None elsewhere."""
    import os

    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_STARTED: float | None = None  # set by main(): the process's start for the console script


def _cmd_run(args) -> int:
    import time

    from .scenarios import default_scenario, load_scenario, run_to_folder

    started = _STARTED or time.time()  # the console script counts from the process's start (imports too)
    path = args.scenario or default_scenario()
    scenario = load_scenario(path)
    out = Path(args.out) if args.out else Path("reports") / scenario.name
    cluster = None
    engines = [scenario.config.get("engine", {})] + [v.get("engine") or {} for v in scenario.config.get("variants", [])]
    if args.cluster is not None or any("cluster" in e for e in engines):
        from .cluster import cluster_setting

        cluster = cluster_setting(scenario, args.cluster)  # None: "off"
    if cluster is not None and scenario.study is not None:
        print("riskcore: a study ([study] in the scenario) runs in this process, not on a cluster: run it without "
              "--cluster (and without engine.cluster)", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"riskcore: running {scenario.name} ({path}): {len(scenario.variants)} variant(s): "
          + variant_names([name for name, _ in scenario.variants])
          + (f", as tasks on the Dask cluster {cluster.text}" if cluster is not None else ""))
    if scenario.config.get("description"):
        print(f"  {scenario.config['description']}")
    bar = None
    compile_seconds = 0.0

    def before_run(folder):  # the inputs and the output folder are checked, the folder locked
        nonlocal compile_seconds
        if folder.foreign:
            print(f"riskcore: --force: {out} holds files riskcore did not write ({len(folder.foreign)}); its "
                  f"contents will be moved to {out.name}.before-<time> beside it, not deleted", flush=True)
        from .kernels.cache import cache_is_warm

        if cluster is not None:  # the workers load or compile the kernels (riskcore.cluster.WarmupPlugin)
            print("riskcore: starting the workers and loading the kernels on each (a first run compiles them, "
                  "under two minutes)" if cluster.is_local else f"riskcore: connecting to {cluster.text}",
                  flush=True)
        elif not cache_is_warm():  # compile every kernel once, serially, rather than some now and some later
            print("riskcore: first run: compiling the numba kernels into the cache (under a minute on two "
                  "cores; once)", flush=True)
            from .kernels.compiling import warm_with_progress

            compile_seconds = warm_with_progress(tape=False)["seconds"]

    def progress_factory(total):
        nonlocal bar
        if args.no_progress:
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, unit="bar", desc="simulating", file=sys.stderr, dynamic_ncols=True,
                   disable=None, mininterval=0.5)  # quiet when stderr is not a terminal
        return bar.update

    from .report import ChartHelper

    checkpoints = None
    if args.checkpoint:
        if scenario.study is not None:
            print("riskcore: --checkpoint applies to a scenario's variants, not to a study ([study]): its runs are "
                  "many and short; run it without --checkpoint", file=sys.stderr)
            return EXIT_BAD_INPUT
        if cluster is not None:
            print("riskcore: --checkpoint applies to a run in this process, not on a cluster (a cluster "
                  "reruns a lost variant on another worker)", file=sys.stderr)
            return EXIT_BAD_INPUT
        checkpoints = Path(args.checkpoint)
        if checkpoints.exists() and not checkpoints.is_dir():
            print(f"riskcore: --checkpoint {checkpoints} is a file: name a folder for the checkpoints",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        checkpoints.mkdir(parents=True, exist_ok=True)

    try:
        if cluster is not None:
            from . import exit_codes as codes
            from .cluster import ClusterFailed, ClusterUnreachable, run_on_cluster

            try:
                target, summary, times, price_source = run_on_cluster(
                    scenario, out, cluster, progress_factory=progress_factory, force=args.force,
                    before_run=before_run, say=lambda text: print(f"riskcore: {text}", flush=True))
            except ClusterUnreachable as exc:
                print(f"riskcore: cannot reach the cluster: {exc}; nothing was written", file=sys.stderr)
                return codes.NETWORK
            except ClusterFailed as exc:
                print(f"riskcore: the run failed on the cluster: {exc}; {out} is as it was", file=sys.stderr)
                return EXIT_FAILED
        else:
            target, summary, times, price_source = run_to_folder(scenario, out, progress_factory=progress_factory,
                                                                 force=args.force, before_run=before_run,
                                                                 chart_helper=ChartHelper.wanted(),
                                                                 checkpoint_dir=checkpoints)
    finally:
        if bar is not None:
            bar.close()
    print()
    spread_file = Path(target) / "spread.parquet"
    if spread_file.is_file():  # a sweep over paths: the spread of each margin variant, then where the rest is
        print(spread_text(pd.read_parquet(spread_file)))
        print(f"\n{len(summary):,} variants (margin variants x paths): each one's summary is in summary.parquet "
              "and report.html")
    else:
        print(summary_text(summary))
    fund_file = Path(target) / "fund_sizing.parquet"
    if fund_file.is_file():  # a fund-sizing study: its curve, after the first path's summary
        print()
        print(fund_sizing_text(pd.read_parquet(fund_file)))
    print()
    print(f"prices: {price_source}")
    total = time.time() - started
    phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in times.phases.items())
    extra = f", compile {compile_seconds:.1f} s" if compile_seconds else ""
    # the rest: starting Python and importing (the console script), reading and checking the scenario, printing
    extra += f", other {max(0.0, total - times.total - compile_seconds):.1f} s"
    print(f"wrote {target}/ (report.html, events/steps/final_*/outcomes/summary .parquet"
          + (", fund_sizing/fund_paths .parquet" if fund_file.is_file() else "") + ")")
    if cluster is not None:  # the phases of the tasks add up the workers' time, which overlaps
        print(f"time: {total:.1f} s in all; the tasks' phases summed over the workers: {phases}; the kernels' "
              f"own time {times.kernel:.1f} s (where each variant ran: {target}/cluster.json)")
        return EXIT_OK
    print(f"time: {total:.1f} s in all ({phases}{extra}; the kernels' own time {times.kernel:.1f} s)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    global _STARTED
    _STARTED = _process_start() if argv is None else None
    from . import malloc

    malloc.tune()  # freed arrays reused, not faulted in again (riskcore.malloc)
    parser = argparse.ArgumentParser(prog="riskcore", description=DESCRIPTION, epilog=exit_codes.epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"riskcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a scenario file (the default scenario when none is named) and write "
                                   "Parquet outputs and an HTML report")
    p.add_argument("scenario", nargs="?", help="a scenario .toml file (default: scenarios/default.toml)")
    p.add_argument("--out", help="output folder (default: reports/<scenario name>), replaced as a whole when it "
                                 "is empty or an earlier riskcore output; any other folder is refused")
    p.add_argument("--force", action="store_true", help="write into an --out folder that riskcore did not "
                                                        "write: its contents are moved aside to "
                                                        "NAME.before-<time>, never deleted")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", metavar="DIR", help="save each variant's state in DIR (created if missing) at "
                                                        "bar boundaries, every minute; the same command after a "
                                                        "kill resumes the variant that was running from it")
    p.add_argument("--cluster", metavar="ADDRESS", help="run the variants as tasks on a Dask cluster: local:N (N "
                                                         "worker processes here), tcp://HOST:PORT (a scheduler), "
                                                         "or off; before the scenario's [engine] cluster (needs "
                                                         "riskcore[cluster]; docs/cluster.md)")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("warmup", help="compile the numba kernels once into the cache (about a minute on a "
                                      "2-core machine; later starts load them in under a second)")
    p.set_defaults(func=_cmd_warmup)
    p = sub.add_parser("bench", help="run the kernel benchmarks (from a source clone); prints a table and writes "
                                     "reports/bench.json; --compare BASELINE.json [--results NEW.json] finds "
                                     "regressions")
    p.add_argument("--quick", action="store_true", help="small cases: a smoke test of a minute or two")
    p.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases (huge_10M_x_1440 runs only "
                                                             "when named)")
    p.add_argument("--no-compile", action="store_true", help="skip timing a cold compile and a cached start")
    p.add_argument("--out", help="where to write the JSON (default: reports/bench.json in the clone)")
    p.add_argument("--compare", metavar="BASELINE.json", help="compare the results with this earlier JSON and "
                                                               f"exit {exit_codes.REGRESSION} when a case regressed "
                                                               "(naming the case and the metric)")
    p.add_argument("--results", metavar="NEW.json", help="with --compare: compare this JSON, already written, "
                                                          "instead of running the benchmarks")
    p.add_argument("--tolerance", default="10%", help="how much slower (or bigger) than the baseline a metric "
                                                      "may be: 10%% (the default) or 0.1")
    p.add_argument("--min-seconds", type=float, default=0.05, help="a time that grew by less than this many "
                                                                   "seconds is not a regression (default 0.05)")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("data", help="market data: fetch Binance's public archive")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    from .io.fetch import add_fetch_arguments, cli_fetch

    p = add_fetch_arguments(data_sub.add_parser("fetch", help="download and verify Binance public-data files"))
    p.set_defaults(func=lambda a: cli_fetch(a.symbol, a.start, a.end, a.kind, a.interval, a.cache_dir,
                                            a.base_url))
    p = sub.add_parser("example", help="print the rule book's worked Binance example, computed by riskcore")
    p.set_defaults(func=_cmd_example)
    p = sub.add_parser("keys", help="list every key a scenario file may hold: type, range, default, meaning "
                                    "(the reference of docs/scenarios.md)")
    p.set_defaults(func=_cmd_keys)
    p = sub.add_parser("brackets", help="list the shipped bracket tables, or print one")
    p.add_argument("symbol", nargs="?", help="e.g. BTCUSDT")
    p.add_argument("--date", help="the table in effect on this date (YYYY-MM-DD)")
    p.set_defaults(func=_cmd_brackets)
    args = parser.parse_args(argv)
    from .output import OutputFolderError
    from .scenarios import MissingDataError

    try:
        return args.func(args)
    except MissingDataError as exc:
        print(f"riskcore: missing data: {exc}", file=sys.stderr)
        return EXIT_MISSING_DATA
    except (ValueError, KeyError, FileNotFoundError, OutputFolderError) as exc:
        print(f"riskcore: error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError as exc:
        print(f"riskcore: out of memory: {exc or 'the run needs more memory than this machine has'}; nothing "
              "was written", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a full disk, say: the message names the folder
        why = f"{exc.strerror}: {exc.filename}" if exc.filename else (exc.strerror or str(exc))
        print(f"riskcore: error: {why}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        hint = ""
        if getattr(args, "checkpoint", None):
            hint = f" (the variant that was running saved its state in {args.checkpoint}: the same command resumes it)"
        print(f"riskcore: interrupted; nothing was written{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
