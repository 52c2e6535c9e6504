"""The ``riskcore`` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


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


def _cmd_warmup(args) -> int:
    from .kernels.compiling import warm_with_progress

    print("riskcore: compiling the numba kernels (or loading them from the cache)...", flush=True)
    info = warm_with_progress(tape=True)
    print(f"kernels ready in {info['seconds']:.1f} s")
    return 0


def _cmd_bench(args) -> int:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "run.py").is_file():
        raise FileNotFoundError(f"the benchmarks ship with the source tree, not the installed package: "
                                f"no benchmarks/run.py beside {root / 'riskcore'}; run from a clone of riskcore")
    cmd = [sys.executable, "-m", "benchmarks"] + (["--quick"] if args.quick else [])
    if args.only:
        cmd += ["--only", *args.only]
    if args.out:
        cmd += ["--out", str(Path(args.out).resolve())]
    if args.no_compile:
        cmd += ["--no-compile"]
    return subprocess.run(cmd, cwd=root).returncode


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_MISSING_DATA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _cmd_run(args) -> int:
    import time

    from .scenarios import default_scenario, load_scenario, run_to_folder

    started = time.perf_counter()
    path = args.scenario or default_scenario()
    scenario = load_scenario(path)
    out = Path(args.out) if args.out else Path("reports") / scenario.name
    print(f"riskcore: running {scenario.name} ({path}): {len(scenario.variants)} variant(s): "
          + ", ".join(name for name, _ in scenario.variants))
    bar = None
    compile_seconds = 0.0

    def before_run(folder):  # the inputs and the output folder are checked, the folder locked
        nonlocal compile_seconds
        if folder.foreign:
            print(f"riskcore: --force: {out} holds files riskcore did not write ({len(folder.foreign)}); its "
                  f"contents will be moved to {out.name}.before-<time> beside it, not deleted", flush=True)
        from .kernels.cache import cache_is_warm

        if not cache_is_warm():  # compile every kernel once, serially, rather than some now and some later
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

    try:
        target, summary, times, price_source = run_to_folder(scenario, out, progress_factory=progress_factory,
                                                             force=args.force, before_run=before_run)
    finally:
        if bar is not None:
            bar.close()
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                           lambda v: f"{v:,.4g}"):
        print(summary.to_string())
    print(f"prices: {price_source}")
    total = time.perf_counter() - started
    phases = ", ".join(f"{name} {sec:.1f} s" for name, sec in times.phases.items())
    extra = f", compile {compile_seconds:.1f} s" if compile_seconds else ""
    print(f"wrote {target}/ (report.html, events/steps/final_*/outcomes/summary .parquet)")
    print(f"time: {total:.1f} s in all ({phases}{extra}; the kernels' own time {times.kernel:.1f} s)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="riskcore", description=__doc__,
        epilog="exit codes: 0 ok, 1 the run failed (a full disk, too little memory, a bug), 2 bad input "
               "(scenario, data, arguments, an output folder that cannot be used), 3 a data file is missing, "
               "130 interrupted")
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
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("warmup", help="compile the numba kernels once into the cache (about a minute on a "
                                      "2-core machine; later starts load them in under a second)")
    p.set_defaults(func=_cmd_warmup)
    p = sub.add_parser("bench", help="run the kernel benchmarks (from a source clone); prints a table and writes "
                                     "reports/bench.json")
    p.add_argument("--quick", action="store_true", help="small cases: a smoke test of a minute or two")
    p.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases (huge_10M_x_1440 runs only "
                                                             "when named)")
    p.add_argument("--no-compile", action="store_true", help="skip timing a cold compile and a cached start")
    p.add_argument("--out", help="where to write the JSON (default: reports/bench.json in the clone)")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("data", help="market data: fetch Binance's public archive")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    from .io.fetch import add_fetch_arguments, cli_fetch

    p = add_fetch_arguments(data_sub.add_parser("fetch", help="download and verify Binance public-data files"))
    p.set_defaults(func=lambda a: cli_fetch(a.symbol, a.start, a.end, a.kind, a.interval, a.cache_dir,
                                            a.base_url))
    p = sub.add_parser("example", help="print the rule book's worked Binance example, computed by riskcore")
    p.set_defaults(func=_cmd_example)
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
        print("riskcore: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
