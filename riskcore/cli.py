"""The ``riskcore`` command line."""
from __future__ import annotations

import argparse
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("example", help="print the rule book's worked Binance example, computed by riskcore")
    p.set_defaults(func=_cmd_example)
    p = sub.add_parser("brackets", help="list the shipped bracket tables, or print one")
    p.add_argument("symbol", nargs="?", help="e.g. BTCUSDT")
    p.add_argument("--date", help="the table in effect on this date (YYYY-MM-DD)")
    p.set_defaults(func=_cmd_brackets)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"riskcore: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
