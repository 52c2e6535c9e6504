"""Every key a scenario file may hold, as a reference generated from the schema that checks them.

The tables of allowed keys and their kinds (``riskcore.scenarios.TOP_KEYS``, ``MARKET_KEYS``,
...), the ranges (``RANGES``) and the words allowed (``CHOICES``) are what
:func:`riskcore.scenarios.load_scenario` validates against.  This module adds to them what a
reader needs and the checker does not: each key's default and meaning (:data:`KEY_DOCS`), and
renders the whole as Markdown (:func:`markdown`).  ``docs/scenarios.md`` holds that text
between two markers; ``tests/test_scenario_keys.py`` fails when the two differ, or when a key
of the schema has no entry here (or an entry names no key of the schema).  ``riskcore keys``
prints it; ``python -m riskcore.scenario_keys --write`` rewrites the docs' copy.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from . import scenarios as sc

REQUIRED = "required"
NONE = "-"

#: (title, prefix of the keys as spelt in a file, the schema table) in the order of the docs
SECTIONS = (
    ("Top level", "", sc.TOP_KEYS),
    ("`[market]`", "market.", sc.MARKET_KEYS),
    ("`[market.contracts.SYMBOL]`", "market.contracts.SYMBOL.", sc.CONTRACT_KEYS),
    ("`brackets` of a contract: give one of `venue`, `file` or `tiers`", "market.contracts.SYMBOL.brackets.",
     sc.BRACKET_KEYS),
    ("`[market.contracts.SYMBOL.impact]`: market impact of liquidations (docs/cascades.md)",
     "market.contracts.SYMBOL.impact.", sc.IMPACT_KEYS),
    ("`[path]`", "path.", sc.PATH_KEYS),
    ("`[[path.wicks]]` (one table per wick)", "path.wicks[].", sc.WICK_KEYS),
    ("`[population]`", "population.", sc.POPULATION_KEYS),
    ("`[funding]`: give `file`, or `rate` (with `every_hours`)", "funding.", sc.FUNDING_KEYS),
    ("`[engine]`", "engine.", sc.ENGINE_KEYS),
    ("`[[variants]]` (one table per variant)", "variants[].", sc.VARIANT_KEYS),
    ("`[study]`: a study over many paths; `kind = \"fund-sizing\"`: the insurance fund against the probability "
     "of ADL and the socialised loss (docs/studies.md)", "study.", sc.STUDY_KEYS),
)


def _population_default(key: str) -> str:
    from .populations import PopulationSpec

    fields = {f.name: f for f in dataclasses.fields(PopulationSpec)}
    if key not in fields:
        return NONE
    value = fields[key].default
    if value is None:
        return NONE
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):  # (leverage, weight) pairs
        return "{ " + ", ".join(f"{k:g} = {w:g}" for k, w in value) + " }"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


# "section.key" (as in SECTIONS) -> (default, meaning); population defaults come from PopulationSpec
KEY_DOCS = {
    "name": ("the file's name", "the study's name: the default output folder is `reports/<name>/`"),
    "description": (NONE, "one line on what the study is; shown when a run starts"),
    "seed": ("0", "the default seed of the path and the population"),
    "market": (REQUIRED, "the market: `[market]` below"),
    "path": (REQUIRED, "the price path: `[path]` below"),
    "population": (REQUIRED, "the accounts: `[population]` below"),
    "funding": ("no funding", "funding payments: `[funding]` below"),
    "engine": ("as below", "the simulator's options: `[engine]` below"),
    "variants": ("one variant, `base`", "the variants to compare: `[[variants]]` below"),
    "grid": (NONE, "`\"section.key\" = [values]`: every variant is run with every combination of the values "
                   "(the keys allowed: below)"),
    "notes": (NONE, "sentences shown in the report"),
    "study": (NONE, "run the scenario as a study over many paths: `[study]` below"),

    "market.liquidation_fee_rate": (REQUIRED, "fee charged on liquidated notional, capped at the margin left"),
    "market.insurance_fund": ("0", "the insurance fund at the start"),
    "market.liquidation_slippage": ("0", "liquidation closes fill this fraction worse than the mark"),
    "market.impact": ("true", "false: ignore every contract's impact model (a variant without impact)"),
    "market.feedback": ("each model's own", "whether liquidations move the mark, for every impact model"),
    "market.cascade_rounds": ("20", "at most this many cascade rounds per point"),
    "market.adl_policy": ("\"binance\"", "who is auto-deleveraged when the fund runs short: ranked by Binance's "
                                         "score, by leverage, by unrealised profit, in a seeded random order, or "
                                         "pro rata (docs/simulation.md, \"ADL policies\")"),
    "market.adl_seed": ("0", "the seed of the `random` ADL policy"),
    "market.venue": ("\"binance\"", "the venue profile of every contract that names none: binance, bybit, okx, "
                                    "hyperliquid or dydx (docs/venues.md, \"Profiles\"); a grid may vary it"),
    "market.mmr_factor": ("1", "every maintenance rate of every bracket table times this (stress test)"),
    "market.max_leverage_cap": (NONE, "no bracket allows more leverage than this"),
    "market.contracts": (REQUIRED, "one `[market.contracts.SYMBOL]` table per contract"),

    "market.contracts.SYMBOL.brackets": (REQUIRED, "the contract's bracket table (keys below)"),
    "market.contracts.SYMBOL.maker_fee": ("the population's", "maker fee rate of this contract"),
    "market.contracts.SYMBOL.taker_fee": ("the population's", "taker fee rate of this contract"),
    "market.contracts.SYMBOL.venue": ("market.venue", "this contract's venue profile: the rule switches both "
                                                      "engines apply to it (docs/venues.md)"),
    "market.contracts.SYMBOL.start_price": ("required for a gbm path", "the first open of a generated path"),
    "market.contracts.SYMBOL.impact": (NONE, "the contract's market-impact model (keys below)"),
    "market.contracts.SYMBOL.impact.sigma": ("required without depth", "the contract's daily volatility, a "
                                                                         "fraction (0.03 = 3%)"),
    "market.contracts.SYMBOL.impact.daily_volume": ("required without depth", "notional traded in a day that "
                                                    "absorbs the population's liquidations (USDT)"),
    "market.contracts.SYMBOL.impact.depth": (NONE, "instead of sigma and daily_volume: the book's depth on one "
                                                   "side, [[distance, notional], ...] with both increasing (0.01 = "
                                                   "1% from the price); fills take the average distance of the "
                                                   "notional walked, the mark moves to where the walk reached"),
    "market.contracts.SYMBOL.impact.thinning": ("0", "with depth: the depth is multiplied by max(0.05, 1 - "
                                                     "thinning x |multiplier - 1|) as liquidations push the mark "
                                                     "off the path"),
    "market.contracts.SYMBOL.impact.k": ("1", "the square-root law's coefficient: impact = k * sigma * "
                                              "sqrt(notional / daily_volume)"),
    "market.contracts.SYMBOL.impact.feedback": ("true", "whether the net liquidation flow moves the mark"),
    "market.contracts.SYMBOL.impact.permanent": ("0.5", "share of a mark move that stays"),
    "market.contracts.SYMBOL.impact.half_life": ("10", "bars for the rest of a mark move to decay by half"),

    "market.contracts.SYMBOL.brackets.venue": ("\"binance\"", "a shipped table of this venue (`riskcore brackets`)"),
    "market.contracts.SYMBOL.brackets.symbol": ("the contract's", "the symbol of the table to read"),
    "market.contracts.SYMBOL.brackets.date": ("the latest", "the table in effect on this date"),
    "market.contracts.SYMBOL.brackets.file": (NONE, "a Binance leverage-bracket JSON or JSON-lines file (a data "
                                                    "file: see \"Data files\")"),
    "market.contracts.SYMBOL.brackets.tiers": (NONE, "the tiers written out: `[{notional_floor, notional_cap, mmr, "
                                                     "max_leverage}, ...]`"),

    "path.kind": (REQUIRED, "`gbm`: generated; `file`: bars read from files; `bootstrap`: blocks of real bars "
                            "resampled"),
    "path.n_steps": ("required for gbm, bootstrap", "number of bars"),
    "path.interval": ("\"1min\"", "bar length of a generated path (a pandas frequency)"),
    "path.start": ("gbm: \"2025-01-01\"", "gbm: the first bar's time; file: cut the bars before it"),
    "path.end": (NONE, "file: cut the bars after it"),
    "path.seed": ("the top-level seed", "seed of a generated or bootstrapped path"),
    "path.vol": ("0.6", "annualised volatility (one number, or one per contract)"),
    "path.drift": ("0", "annualised drift (one number, or one per contract)"),
    "path.correlation": ("0", "correlation of the contracts' moves"),
    "path.jump_rate": ("0", "jumps per year"),
    "path.jump_mean": ("0", "mean log size of a jump"),
    "path.jump_std": ("0", "standard deviation of a jump's log size"),
    "path.files": ("required for file", "one bar file per contract (Binance CSV, zipped or not; CCXT; Parquet)"),
    "path.gaps": ("\"refuse\"", "missing bars in a file: refuse the file, fill them flat, or report them"),
    "path.wicks": (NONE, "wicks injected into a generated path (keys below)"),
    "path.block": ("60", "bootstrap: bars per resampled block"),
    "path.source": ("required for bootstrap", "bootstrap: one file of real bars per contract"),
    "path.price_source": ("the file names, or \"synthetic GBM (seed N)\"", "where the prices come from, for the "
                                                                           "report"),

    "path.wicks[].contract": (REQUIRED, "the contract that wicks (one of `market.contracts`)"),
    "path.wicks[].at": (REQUIRED, "the bar of the wick (from the end when negative)"),
    "path.wicks[].depth": (REQUIRED, "signed fraction of the bar's open (-0.12: 12% down)"),
    "path.wicks[].recover": ("true", "true: back by the bar's close; false: stays; a fraction: that part of the "
                                     "way back"),

    "population.accounts": ("required, or `file`", "number of accounts drawn"),
    "population.seed": ("the top-level seed", "seed of the draw (every variant draws the same accounts)"),
    "population.file": (NONE, "read the accounts instead: a book saved by `Book.write_parquet` or a folder of "
                              "CSV tables (no other population key)"),
    "population.positions_per_account": (None, "positions per account: a number or an inclusive range [low, high]"),
    "population.contract_weights": ("equal", "relative chance of each contract"),
    "population.leverage": (None, "leverages to draw: a list, or a table leverage = weight"),
    "population.leverage_range": (None, "draw leverage log-uniformly from [low, high] instead"),
    "population.leverage_integer": (None, "round leverage drawn from `leverage_range` to whole numbers"),
    "population.notional_median": (None, "median position notional (one number, or one per contract)"),
    "population.notional_sigma": (None, "log standard deviation of the notional"),
    "population.notional_min": (None, "smallest notional"),
    "population.notional_max": (None, "largest notional (always below the contract's last bracket cap)"),
    "population.long_share": (None, "share of positions that are long"),
    "population.hedge_share": (None, "share of accounts in hedge mode"),
    "population.isolated_share": (None, "share of (account, contract) pairs in isolated margin"),
    "population.auto_add_share": (None, "share of isolated positions with auto-add-margin on"),
    "population.headroom_median": (None, "median free balance after opening, in initial margins"),
    "population.headroom_sigma": (None, "log standard deviation of the headroom"),
    "population.maker_fee": (None, "maker fee rate (a contract's `maker_fee` comes first)"),
    "population.taker_fee": (None, "taker fee rate (a contract's `taker_fee` comes first)"),
    "population.charge_opening_fee": (None, "charge the taker fee on the opening fills"),
    "population.default_leverage": (None, "the book's leverage for contracts an account never set"),

    "funding.file": (NONE, "a funding-rate history (a data file: see \"Data files\")"),
    "funding.rate": (NONE, "one funding rate per period"),
    "funding.every_hours": ("8", "hours between fundings, with `rate`"),

    "engine.intrabar": ("\"ohlc\"", "prices looked at within a bar: the close; open, low/high, close; or the "
                                    "worst for each account"),
    "engine.mm_basis": ("\"mark\"", "maintenance margin on the mark or on the entry notional"),
    "engine.engine": ("\"numba\"", "the kernels, or the pure-Python reference engine (slow; the oracle)"),
    "engine.cluster": ("this process", "where `riskcore run` runs the variants: `\"local:N\"` (N worker processes "
                                       "here), a Dask scheduler `\"tcp://HOST:PORT\"`, or `\"off\"`; `--cluster` "
                                       "comes first (docs/cluster.md)"),

    "study.kind": (REQUIRED, "the study: `fund-sizing` runs every variant once per path with an ample insurance "
                             "fund (`market.insurance_fund` must not be given) and gives, for each fund size, the "
                             "probability of ADL (exact) and the expected and tail socialised loss (approximate "
                             "after the first shortfall); writes `fund_sizing.parquet` and `fund_paths.parquet`"),
    "study.paths": ("1", "the paths: N (the seeds `path.seed`, `path.seed` + 1, ...) or `{from = FIRST, count = N}`; "
                         "more than one needs a `gbm` or `bootstrap` path, and no grid over `path.seed`"),
    "study.fund_sizes": (REQUIRED, "the insurance funds to size: a list of amounts, or `{from = LOW, to = HIGH, "
                                   "count = N, spacing = \"log\"}` (`spacing` \"log\", the default, or "
                                   "\"linear\"; at most 1,000 sizes)"),
    "study.tail": ("0.95", "level of the tail socialised loss: the mean over the worst 1 - tail of the paths "
                           "(at least one path)"),
    "study.adl_target": ("0.05", "the report names the smallest fund tested whose probability of ADL is at most "
                                 "this"),

    "variants[].name": (REQUIRED, "the variant's name (unique)"),
    "variants[].market": (NONE, "keys of `[market]` (but `contracts`) that this variant changes"),
    "variants[].population": (NONE, "keys of `[population]` that this variant changes"),
    "variants[].engine": (NONE, "keys of `[engine]` that this variant changes"),
}

_KINDS = {
    sc.NUMBER: "number", sc.INTEGER: "whole number", sc.STRING: "string", sc.BOOL: "true/false",
    "depth-table": "list of [distance, notional]",
    sc.DATE: "date (\"2025-06-19\" or 2025-06-19)", "int-or-pair": "whole number or [low, high]",
    "pair": "[low, high]", "number-or-table": "number, or table SYMBOL = number",
    "table-of-numbers": "table SYMBOL = number", "table-of-strings": "table SYMBOL = \"file\"",
    "list-of-strings": "list of strings", "leverage": "list, or table leverage = weight",
    "bool-or-fraction": "true/false or a fraction 0 to 1", "market": "table", "path": "table", "impact": "table",
    "population": "table", "funding": "table", "engine": "table", "variants": "list of tables",
    "grid": "table", "contracts": "tables", "brackets": "table", "tiers": "list of tables",
    "wicks": "list of tables", "variant-market": "table", "variant-population": "table",
    "variant-engine": "table", "study": "table", "study-kind": "\"fund-sizing\"",
    "path-count": "whole number from 1, or {from = FIRST, count = N}",
    "fund-sizes": "list of amounts from 0, or {from, to, count, spacing}",
    "venue": "string: binance, bybit, okx, hyperliquid or dydx",
}


def _type(key: str, kind: str) -> str:
    text = _KINDS[kind]
    if key in sc.RANGES and kind in (sc.NUMBER, sc.INTEGER):
        text = sc.RANGES[key][1] if kind == sc.INTEGER else f"{text}: {sc.RANGES[key][1]}"
    if key in sc.CHOICES and kind == sc.STRING:
        text = ", ".join(f'"{c}"' for c in sc.CHOICES[key])
    return text


def _default(full: str, key: str) -> str:
    default = KEY_DOCS[full][0]
    if default is None:
        default = _population_default(key)
    return default


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The reference of every key (the part of docs/scenarios.md between the markers)."""
    out = []
    for title, prefix, table in SECTIONS:
        out += [f"**{title}**", "", "| key | type, range | default | meaning |", "| --- | --- | --- | --- |"]
        for key, kind in table.items():
            full = prefix + key
            out.append(f"| `{key}` | {_cell(_type(key, kind))} | {_cell(_default(full, key))} | "
                       f"{_cell(KEY_DOCS[full][1])} |")
        out.append("")
    out += ["**`[grid]`**: the keys that may be varied, as `\"section.key\" = [values]` (each value checked "
            "as the key is above):", ""]
    out.append(", ".join(f"`{k}`" for k in sorted(sc.GRID_KEYS)))
    out += ["", "`path.seed` (a `gbm` or `bootstrap` path only) also takes a range, `{from = FIRST, count = N}`: "
                f"the seeds FIRST to FIRST + N - 1, at most {sc.MAX_PATH_COUNT:,} of them. Each seed is a path of "
                "its own; no other key of `[path]` may be varied."]
    return "\n".join(out)


def schema_keys() -> set[str]:
    """Every key of the schema, spelt as in :data:`KEY_DOCS`."""
    return {prefix + key for _, prefix, table in SECTIONS for key in table}


BEGIN = "<!-- scenario keys: generated by `python -m riskcore.scenario_keys --write`; do not edit -->"
END = "<!-- end of scenario keys -->"
EXIT_BEGIN = "<!-- exit codes: generated from riskcore/exit_codes.py; do not edit -->"
EXIT_END = "<!-- end of exit codes -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def documented(text: str, begin: str = BEGIN, end: str = END) -> str:
    """The generated part of a docs page (between ``begin`` and ``end``)."""
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n")


def write(path: Path = DOC) -> None:
    """Rewrite the generated parts of ``docs/scenarios.md``: the keys and the exit codes."""
    from . import exit_codes

    text = path.read_text(encoding="utf-8")
    for begin, end, body in ((BEGIN, END, markdown()), (EXIT_BEGIN, EXIT_END, exit_codes.markdown())):
        start, stop = text.index(begin) + len(begin), text.index(end)
        text = text[:start] + "\n" + body + "\n" + text[stop:]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        print(markdown())
