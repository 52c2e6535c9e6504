"""Scenario files: a whole study described in TOML, run as a set of variants.

A scenario names the market (contracts, brackets, fees, liquidation fee, insurance
fund), the price path (a generator or data files), the population of accounts,
funding, engine options, and the variants to compare (e.g. cross vs isolated margin,
auto-add on/off, brackets x1.5, a leverage cap).  Every variant runs the *same*
accounts (the population is drawn from one seed; only the shares and settings a
variant changes differ) through the *same* path.

:func:`load_scenario` validates a file and names the key at fault;
:func:`run_scenario` runs it and writes Parquet outputs and an HTML report into a
folder, all or nothing.  See ``docs/scenarios.md`` for the keys.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import datetime
import itertools
import json
import math
import re
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._paths import data_dir
from .brackets import Brackets
from .checks import LIMIT
from .errors import RiskcoreError
from .adl import MAX_SEED as ADL_MAX_SEED
from .adl import POLICIES as ADL_POLICIES
from .impact import DEFAULT_ROUNDS
from .venues.profiles import DEFAULT_VENUE, PROFILES as VENUE_PROFILES, profile as venue_profile
from .output import OutputFolderError, OutputTarget  # noqa: F401 (OutputFolderError: part of this API)


class ScenarioError(RiskcoreError, ValueError):
    """The scenario file is invalid; the message names the file and the key."""


class MissingDataError(RiskcoreError, FileNotFoundError):
    """A data file the scenario needs is not there (e.g. ``../shared/data`` is absent)."""


# ----------------------------------------------------------------------- schema
NUMBER, INTEGER, STRING, BOOL = "number", "integer", "string", "boolean"
DATE = "date"  # a string or a TOML date
POPULATION_KEYS = {
    "accounts": INTEGER, "seed": INTEGER, "file": STRING,
    "positions_per_account": "int-or-pair", "contract_weights": "table-of-numbers", "leverage": "leverage",
    "leverage_range": "pair", "leverage_integer": BOOL, "notional_median": "number-or-table",
    "notional_sigma": NUMBER, "notional_min": NUMBER, "notional_max": NUMBER, "long_share": NUMBER,
    "hedge_share": NUMBER, "isolated_share": NUMBER, "auto_add_share": NUMBER, "headroom_median": NUMBER,
    "headroom_sigma": NUMBER, "maker_fee": NUMBER, "taker_fee": NUMBER, "charge_opening_fee": BOOL,
    "default_leverage": NUMBER,
}
MARKET_KEYS = {"liquidation_fee_rate": NUMBER, "insurance_fund": NUMBER, "liquidation_slippage": NUMBER,
               "mmr_factor": NUMBER, "max_leverage_cap": NUMBER, "contracts": "contracts",
               "impact": BOOL, "feedback": BOOL, "cascade_rounds": INTEGER, "adl_policy": STRING,
               "adl_seed": INTEGER, "venue": "venue"}
CONTRACT_KEYS = {"brackets": "brackets", "maker_fee": NUMBER, "taker_fee": NUMBER, "start_price": NUMBER,
                 "impact": "impact", "venue": "venue"}
#: a contract's market-impact model (riskcore.impact.Impact; docs/cascades.md)
IMPACT_KEYS = {"sigma": NUMBER, "daily_volume": NUMBER, "k": NUMBER, "feedback": BOOL, "permanent": NUMBER,
               "half_life": NUMBER, "depth": "depth-table", "thinning": NUMBER}
BRACKET_KEYS = {"venue": STRING, "symbol": STRING, "date": DATE, "file": STRING, "tiers": "tiers"}
PATH_KEYS = {
    "kind": STRING, "n_steps": INTEGER, "interval": STRING, "start": DATE, "end": DATE, "seed": INTEGER,
    "vol": "number-or-table", "drift": "number-or-table", "correlation": NUMBER, "jump_rate": NUMBER,
    "jump_mean": NUMBER, "jump_std": NUMBER, "files": "table-of-strings", "gaps": STRING,
    "wicks": "wicks", "block": INTEGER, "source": "table-of-strings", "price_source": STRING,
}
WICK_KEYS = {"contract": STRING, "at": INTEGER, "depth": NUMBER, "recover": "bool-or-fraction"}
FUNDING_KEYS = {"file": STRING, "rate": NUMBER, "every_hours": NUMBER}
ENGINE_KEYS = {"intrabar": STRING, "mm_basis": STRING, "engine": STRING}
# -- hook of riskcore.cluster (issue 11): where `riskcore run` runs the variants; checked and read by
# riskcore.cluster.cluster_setting, never by the simulator
ENGINE_KEYS["cluster"] = STRING
#: a study run over many paths (docs/studies.md): only kind = "fund-sizing" so far
STUDY_KEYS = {"kind": "study-kind", "paths": "path-count", "fund_sizes": "fund-sizes", "tail": NUMBER,
              "adl_target": NUMBER}
STUDY_KINDS = ("fund-sizing",)
#: at most this many fund sizes in a fund-sizing study
MAX_FUND_SIZES = 1000
VARIANT_KEYS = {"name": STRING, "market": "variant-market", "population": "variant-population",
                "engine": "variant-engine"}
TOP_KEYS = {"name": STRING, "description": STRING, "seed": INTEGER, "market": "market", "path": "path",
            "population": "population", "funding": "funding", "engine": "engine", "variants": "variants",
            "grid": "grid", "notes": "list-of-strings", "study": "study"}
#: The keys of the path a grid may vary (each value is a path of its own: "Price paths as a sweep dimension"
#: in docs/scenarios.md); only the seed, of a generated or bootstrapped path.
PATH_GRID_KEYS = {"path.seed"}
GRID_KEYS = {"market.mmr_factor", "market.max_leverage_cap", "market.liquidation_fee_rate",
             "market.insurance_fund", "market.liquidation_slippage", "market.impact", "market.feedback",
             "market.cascade_rounds", "market.adl_policy", "market.adl_seed", "market.venue", "engine.intrabar", "engine.mm_basis",
             *(f"population.{k}" for k in POPULATION_KEYS if k not in ("accounts", "file", "seed")),
             *PATH_GRID_KEYS}
#: At most this many seeds in ``"path.seed" = {from = N, count = M}`` (each is a path and a run per variant).
MAX_PATH_COUNT = 100_000

# Bounds of numbers and the words allowed, by key (a key means the same wherever it appears).
RANGES = {
    "liquidation_fee_rate": (lambda v: 0 <= v < 0.5, "a fraction from 0 to below 0.5 (e.g. 0.0125)"),
    "liquidation_slippage": (lambda v: 0 <= v < 0.5, "a fraction from 0 to below 0.5"),
    "insurance_fund": (lambda v: 0 <= v <= LIMIT, f"an amount from 0 to {LIMIT:g}"),
    "mmr_factor": (lambda v: v > 0, "a factor above 0 (1.5: every maintenance rate x1.5)"),
    "max_leverage_cap": (lambda v: v >= 1, "a leverage of at least 1"),
    "maker_fee": (lambda v: -0.01 < v < 0.1, "a plausible fee rate (a fraction, e.g. 0.0002)"),
    "taker_fee": (lambda v: -0.01 < v < 0.1, "a plausible fee rate (a fraction, e.g. 0.0005)"),
    "start_price": (lambda v: 0 < v <= LIMIT, f"a price above 0 and at most {LIMIT:g}"),
    "rate": (lambda v: -1 < v < 1, "a funding rate per period, a fraction between -1 and 1 (e.g. 0.0001)"),
    "every_hours": (lambda v: 1 / 60 <= v <= 8760, "the hours between fundings, from 1/60 to 8760 (e.g. 8)"),
    "seed": (lambda v: v >= 0, "a whole number >= 0"),
    "n_steps": (lambda v: v >= 1, "a number of bars >= 1"),
    "block": (lambda v: v >= 1, "a number of bars >= 1"),
    "accounts": (lambda v: v >= 0, "a number of accounts >= 0"),
    "cascade_rounds": (lambda v: 1 <= v <= 1000, "a number of rounds from 1 to 1000"),
    "adl_seed": (lambda v: 0 <= v <= ADL_MAX_SEED, "a whole number from 0 to 2**63 - 1"),
    "tail": (lambda v: 0 < v < 1, "a level between 0 and 1, e.g. 0.95 (the mean of the worst 5% of the paths)"),
    "adl_target": (lambda v: 0 <= v < 1, "a probability from 0 to below 1, e.g. 0.05"),
}
CHOICES = {"kind": ("gbm", "file", "bootstrap"), "gaps": ("refuse", "fill", "report"),
           "intrabar": ("close", "ohlc", "worst"), "mm_basis": ("mark", "entry"), "engine": ("numba", "reference"),
           "adl_policy": ADL_POLICIES}


def _fail(where: str, key: str, why: str):
    raise ScenarioError(f"{where}: {key}: {why}")


def _check_table(where: str, prefix: str, value, allowed: dict) -> None:
    if not isinstance(value, dict):
        _fail(where, prefix or "(top)", f"expected a table, got {type(value).__name__}")
    for key, sub in value.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in allowed:
            _fail(where, name, f"unknown key (allowed here: {', '.join(sorted(allowed))}; 'riskcore keys' "
                               "lists every key)")
        _check_leaf(where, name, key, sub, allowed[key])


def _check_leaf(where: str, name: str, key: str, v, kind: str) -> None:
    """The value of ``key`` (spelt ``name`` in the file): its type, then its range or words."""
    _check_value(where, name, v, kind)
    if key in RANGES and kind in (NUMBER, INTEGER):
        ok, what = RANGES[key]
        if not ok(v):
            _fail(where, name, f"must be {what}, not {v!r}")
    if key in CHOICES and kind == STRING and v not in CHOICES[key]:
        _fail(where, name, f"must be one of {', '.join(repr(c) for c in CHOICES[key])}, not {v!r}")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(where: str, name: str, v, kind: str) -> None:
    if kind == NUMBER and not _is_num(v):
        _fail(where, name, f"expected a number, got {v!r}")
    elif kind == INTEGER and not (isinstance(v, int) and not isinstance(v, bool)):
        _fail(where, name, f"expected a whole number, got {v!r}")
    elif kind == DATE and not isinstance(v, (str, datetime.date)):
        _fail(where, name, f"expected a date (\"2025-06-19\" or 2025-06-19), got {v!r}")
    elif kind == "bool-or-fraction" and not (isinstance(v, bool) or (_is_num(v) and 0 <= v <= 1)):
        _fail(where, name, f"expected true, false or a fraction from 0 to 1, got {v!r}")
    elif kind == STRING and not isinstance(v, str):
        _fail(where, name, f"expected a string, got {v!r}")
    elif kind == "venue" and not (isinstance(v, str) and v.strip().lower() in VENUE_PROFILES):
        _fail(where, name, f"unknown venue {v!r}; venue profiles: {', '.join(VENUE_PROFILES)} (docs/venues.md)")
    elif kind == BOOL and not isinstance(v, bool):
        _fail(where, name, f"expected true or false, got {v!r}")
    elif kind == "pair" and not (isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v)):
        _fail(where, name, f"expected two numbers [low, high], got {v!r}")
    elif kind == "int-or-pair" and not (isinstance(v, int) or (isinstance(v, list) and len(v) == 2
                                                                and all(isinstance(x, int) for x in v))):
        _fail(where, name, f"expected a whole number or [low, high], got {v!r}")
    elif kind == "number-or-table" and not (_is_num(v) or (isinstance(v, dict)
                                                            and all(_is_num(x) for x in v.values()))):
        _fail(where, name, f"expected a number or a table of numbers per contract, got {v!r}")
    elif kind == "table-of-numbers" and not (isinstance(v, dict) and all(_is_num(x) for x in v.values())):
        _fail(where, name, f"expected a table of numbers, got {v!r}")
    elif kind == "table-of-strings" and not (isinstance(v, dict) and v and all(isinstance(x, str)
                                                                                for x in v.values())):
        _fail(where, name, f"expected a table of file names per contract, got {v!r}")
    elif kind == "depth-table" and not (isinstance(v, list) and v and all(
            isinstance(x, list) and len(x) == 2 and all(_is_num(y) for y in x) for x in v)):
        _fail(where, name, f"expected a list of [distance, notional] levels, e.g. [[0.001, 5e6], [0.01, 4e7]], "
                           f"got {v!r}")
    elif kind == "list-of-strings" and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        _fail(where, name, f"expected a list of strings, got {v!r}")
    elif kind == "leverage":
        if not ((isinstance(v, list) and all(_is_num(x) for x in v))
                or (isinstance(v, dict) and all(_is_num(x) for x in v.values()))):
            _fail(where, name, f"expected a list of leverages or a table leverage -> weight, got {v!r}")
        for key in v if isinstance(v, dict) else ():
            try:
                ok = float(key) >= 1 and math.isfinite(float(key))
            except ValueError:
                ok = False
            if not ok:
                _fail(where, f"{name}.{key}",
                      f"{key!r} is not a leverage (a number >= 1, e.g. {{ 10 = 0.5, 20 = 0.5 }})")
    elif kind == "market":
        _check_table(where, name, v, MARKET_KEYS)
    elif kind == "variant-market":
        _check_table(where, name, v, {k: t for k, t in MARKET_KEYS.items() if k != "contracts"})
    elif kind == "contracts":
        if not isinstance(v, dict) or not v:
            _fail(where, name, "expected at least one [market.contracts.SYMBOL] table")
        for symbol, spec in v.items():
            _check_table(where, f"{name}.{symbol}", spec, CONTRACT_KEYS)
            if "brackets" not in spec:
                _fail(where, f"{name}.{symbol}.brackets", "required (e.g. {venue = \"binance\", date = ...})")
    elif kind == "impact":
        _check_table(where, name, v, IMPACT_KEYS)
        from .impact import ImpactError, model

        try:
            model(v, "")
        except ImpactError as exc:
            _fail(where, name, str(exc).replace("impact: ", "").replace("impact.", ""))
    elif kind == "brackets":
        _check_table(where, name, v, BRACKET_KEYS)
        given = [k for k in ("tiers", "file", "venue") if k in v]
        if len(given) > 1:
            _fail(where, name, f"give one of tiers, file or venue, not {' and '.join(given)}")
    elif kind == "tiers":
        if not (isinstance(v, list) and v and all(isinstance(t, dict) for t in v)):
            _fail(where, name, "expected a list of tier tables")
    elif kind == "path":
        _check_table(where, name, v, PATH_KEYS)
    elif kind == "wicks":
        if not isinstance(v, list):
            _fail(where, name, "expected a list of [[path.wicks]] tables")
        for i, w in enumerate(v):
            _check_table(where, f"{name}[{i}]", w, WICK_KEYS)
    elif kind in ("population", "variant-population"):
        _check_table(where, name, v, POPULATION_KEYS)
    elif kind == "funding":
        _check_table(where, name, v, FUNDING_KEYS)
    elif kind == "study":
        _check_table(where, name, v, STUDY_KEYS)
    elif kind == "study-kind":
        if v not in STUDY_KINDS:
            _fail(where, name, f"must be one of {', '.join(repr(c) for c in STUDY_KINDS)}, not {v!r}")
    elif kind == "path-count":
        if isinstance(v, dict):
            _seed_range(where, name, v)
        elif not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_PATH_COUNT):
            _fail(where, name, f"expected a number of paths from 1 to {MAX_PATH_COUNT:,} or {{from = FIRST_SEED, "
                               f"count = N}}, got {v!r}")
    elif kind == "fund-sizes":
        fund_sizes(where, name, v)
    elif kind in ("engine", "variant-engine"):
        _check_table(where, name, v, ENGINE_KEYS)
    elif kind == "variants":
        if not isinstance(v, list) or not v:
            _fail(where, name, "expected a non-empty list of [[variants]] tables")
        for i, var in enumerate(v):
            _check_table(where, f"{name}[{i}]", var, VARIANT_KEYS)
            if "name" not in var:
                _fail(where, f"{name}[{i}].name", "required")
    elif kind == "grid":
        if not isinstance(v, dict):
            _fail(where, name, "expected a table of 'section.key' = [values]")
        for key, values in v.items():
            if key.startswith("path.") and key not in GRID_KEYS:
                _fail(where, f"{name}.\"{key}\"", f"cannot be varied: of the path's keys, a grid varies only "
                                                   f"{', '.join(sorted(PATH_GRID_KEYS))} (each seed is a path of "
                                                   "its own); write one scenario per value of the other keys")
            if key not in GRID_KEYS:
                _fail(where, f"{name}.\"{key}\"", f"cannot be varied (allowed: {', '.join(sorted(GRID_KEYS))}; "
                                                   "'riskcore keys' lists every key)")
            if key == "path.seed" and isinstance(values, dict):
                _seed_range(where, f"{name}.\"{key}\"", values)
                continue
            if not isinstance(values, list) or not values:
                _fail(where, f"{name}.\"{key}\"", "expected a non-empty list of values"
                      + (" or {from = FIRST, count = N}" if key == "path.seed" else ""))
            section, leaf = key.split(".", 1)
            kinds = {"market": MARKET_KEYS, "engine": ENGINE_KEYS, "population": POPULATION_KEYS,
                     "path": PATH_KEYS}[section]
            for i, value in enumerate(values):
                _check_leaf(where, f"{name}.\"{key}\"[{i}]", leaf, value, kinds[leaf])
            if key in PATH_GRID_KEYS:
                twice = sorted({x for x in values if values.count(x) > 1})
                if twice:
                    _fail(where, f"{name}.\"{key}\"", f"{twice[0]!r} is listed more than once (each value is "
                                                       "one path)")


def _seed_range(where: str, name: str, spec: dict) -> list[int]:
    """The seeds of ``{from = FIRST, count = N}``: FIRST, FIRST + 1, ..., N of them."""
    for key in spec:
        if key not in ("from", "count"):
            _fail(where, f"{name}.{key}", "unknown key (a range of seeds is {from = FIRST, count = N})")
    for key in ("from", "count"):
        if key not in spec:
            _fail(where, f"{name}.{key}", "required (a range of seeds is {from = FIRST, count = N})")
    first, count = spec["from"], spec["count"]
    _check_leaf(where, f"{name}.from", "seed", first, INTEGER)
    _check_value(where, f"{name}.count", count, INTEGER)
    if not 1 <= count <= MAX_PATH_COUNT:
        _fail(where, f"{name}.count", f"must be a number of paths from 1 to {MAX_PATH_COUNT:,}, not {count!r}")
    return list(range(first, first + count))


def fund_sizes(where: str, name: str, spec) -> list[float]:
    """The fund sizes of ``study.fund_sizes``: a list of amounts, or ``{from, to, count,
    spacing}`` (``spacing`` "log", the default, or "linear"); sorted, each from 0 to the
    largest amount riskcore takes."""
    if isinstance(spec, dict):
        for key in spec:
            if key not in ("from", "to", "count", "spacing"):
                _fail(where, f"{name}.{key}", "unknown key (a range of fund sizes is {from = LOW, to = HIGH, "
                                              "count = N, spacing = \"log\" or \"linear\"})")
        for key in ("from", "to", "count"):
            if key not in spec:
                _fail(where, f"{name}.{key}", "required (a range of fund sizes is {from = LOW, to = HIGH, "
                                              "count = N})")
        for key in ("from", "to"):
            _check_leaf(where, f"{name}.{key}", "insurance_fund", spec[key], NUMBER)
        _check_value(where, f"{name}.count", spec["count"], INTEGER)
        if not 2 <= spec["count"] <= MAX_FUND_SIZES:
            _fail(where, f"{name}.count", f"must be from 2 to {MAX_FUND_SIZES}, not {spec['count']!r}")
        spacing = spec.get("spacing", "log")
        if spacing not in ("log", "linear"):
            _fail(where, f"{name}.spacing", f"must be 'log' or 'linear', not {spacing!r}")
        low, high = float(spec["from"]), float(spec["to"])
        if not low < high:
            _fail(where, f"{name}.to", f"must be above {name}.from ({low:g}), not {high:g}")
        if spacing == "log" and low <= 0:
            _fail(where, f"{name}.from", "must be above 0 with spacing = 'log' (or use spacing = 'linear', or "
                                         "list the sizes)")
        space = np.geomspace if spacing == "log" else np.linspace
        return [float(x) for x in space(low, high, spec["count"])]
    if not isinstance(spec, list) or not spec:
        _fail(where, name, "expected a non-empty list of fund sizes, or {from = LOW, to = HIGH, count = N}")
    if len(spec) > MAX_FUND_SIZES:
        _fail(where, name, f"at most {MAX_FUND_SIZES} fund sizes, not {len(spec)}")
    for i, value in enumerate(spec):
        _check_leaf(where, f"{name}[{i}]", "insurance_fund", value, NUMBER)
    twice = sorted({x for x in spec if spec.count(x) > 1})
    if twice:
        _fail(where, name, f"{twice[0]!r} is listed more than once")
    return sorted(float(x) for x in spec)


@dataclass(frozen=True)
class FundSizingStudy:
    """A validated ``[study]`` of kind "fund-sizing" (docs/studies.md)."""
    seeds: tuple  # the path seeds, one path each
    sizes: tuple  # fund sizes, ascending
    tail: float = 0.95  # level of the tail columns
    adl_target: float = 0.05  # the findings name the smallest fund with P(ADL) at most this
    kind: str = "fund-sizing"


def _study(where: str, config: dict, variants: list) -> FundSizingStudy | None:
    """The scenario's ``[study]`` checked against the rest of the file (None without one)."""
    spec = config.get("study")
    if spec is None:
        return None
    for key in ("kind", "fund_sizes"):
        if key not in spec:
            _fail(where, f"study.{key}", "required" + (" (\"fund-sizing\")" if key == "kind" else
                                                       " (a list of amounts, or {from, to, count})"))
    why = ("a fund-sizing study runs every path with an ample insurance fund and reads the fund sizes from "
           "study.fund_sizes")
    if "insurance_fund" in config["market"]:
        _fail(where, "market.insurance_fund", f"{why}: remove it")
    for i, v in enumerate(config.get("variants", [])):
        if "insurance_fund" in (v.get("market") or {}):
            _fail(where, f"variants[{i}].market.insurance_fund", f"{why}: remove it")
    grid = config.get("grid", {})
    if "market.insurance_fund" in grid:
        _fail(where, "grid.\"market.insurance_fund\"", f"{why}: list the sizes there instead")
    if "path.seed" in grid:
        _fail(where, "grid.\"path.seed\"", "a fund-sizing study draws its paths itself: give study.paths "
                                           "(a number of paths, or {from = FIRST_SEED, count = N})")
    paths = spec.get("paths", 1)
    kind = config["path"]["kind"]
    if isinstance(paths, dict):
        seeds = _seed_range(where, "study.paths", paths)
    else:
        first = config["path"].get("seed", config.get("seed", 0))
        seeds = list(range(first, first + paths))
    if len(seeds) > 1 and kind == "file":
        _fail(where, "study.paths", "a path read from files (path.kind = 'file') is one path: several paths need "
                                    "a 'gbm' or 'bootstrap' path (or study.paths = 1)")
    sizes = fund_sizes(where, "study.fund_sizes", spec["fund_sizes"])
    return FundSizingStudy(tuple(seeds), tuple(sizes), float(spec.get("tail", 0.95)),
                           float(spec.get("adl_target", 0.05)))


# -------------------------------------------------------------------- scenario
@dataclass
class Scenario:
    """A validated scenario: its raw settings and where it came from."""
    path: Path
    config: dict
    variants: list[tuple[str, dict]] = field(default_factory=list)  # (name, merged config)
    #: variant -> the label of its path when the grid varies the path (``"path.seed=3"``), else empty
    path_labels: dict[str, str] = field(default_factory=dict)
    #: variant -> its name without the path's label (``"cross [mmr_factor=1.5]"``), when the grid varies the path
    base_names: dict[str, str] = field(default_factory=dict)
    #: the ``[study]`` (a fund-sizing study: :func:`run_study_to_folder`), None for a plain scenario
    study: FundSizingStudy | None = None

    @property
    def name(self) -> str:
        return self.config.get("name") or self.path.stem


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_scenario(path) -> Scenario:
    """Read and validate a scenario file; expand its variants and grid."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ScenarioError(f"{where}: no such scenario file")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{where}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset "
                            f"{exc.start}); save the scenario file as UTF-8") from None
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    _check_table(where, "", config, TOP_KEYS)
    for section in ("market", "path", "population"):
        if section not in config:
            _fail(where, section, "required section is missing")
    if "liquidation_fee_rate" not in config["market"]:
        _fail(where, "market.liquidation_fee_rate", "required (no silent default for a margin rate)")
    if "contracts" not in config["market"]:
        _fail(where, "market.contracts", "required")
    kind = config["path"].get("kind")
    if kind is None:
        _fail(where, "path.kind", "required: 'gbm', 'file' or 'bootstrap'")
    if kind == "file" and "files" not in config["path"]:
        _fail(where, "path.files", "required when path.kind = 'file'")
    if kind in ("gbm", "bootstrap") and "n_steps" not in config["path"]:
        _fail(where, "path.n_steps", f"required when path.kind = '{kind}'")
    if kind == "bootstrap" and "source" not in config["path"]:
        _fail(where, "path.source", "required when path.kind = 'bootstrap'")
    if "accounts" not in config["population"] and "file" not in config["population"]:
        _fail(where, "population.accounts", "required (or population.file)")
    contracts = config["market"]["contracts"]
    if kind == "gbm":
        for symbol, c in contracts.items():
            if "start_price" not in c:
                _fail(where, f"market.contracts.{symbol}.start_price", "required for a gbm path")
    for i, wick in enumerate(config["path"].get("wicks", [])):
        for key in ("contract", "at", "depth"):
            if key not in wick:
                _fail(where, f"path.wicks[{i}].{key}", "required")
        if wick["contract"] not in contracts:
            _fail(where, f"path.wicks[{i}].contract", f"{wick['contract']!r} is not in market.contracts")
    if kind in ("file", "bootstrap"):
        section = "files" if kind == "file" else "source"
        files = config["path"].get(section, {})
        for symbol in contracts:
            if symbol not in files:
                _fail(where, f"market.contracts.{symbol}", f"has no price file in path.{section} (every contract "
                                                            "needs one; remove the contract or add its file)")
        for symbol in files:
            if symbol not in contracts:
                _fail(where, f"path.{section}.{symbol}", "is not in market.contracts")
    funding = config.get("funding", {})
    if funding and ("file" in funding) == ("rate" in funding):
        _fail(where, "funding", "give either file (a funding history) or rate (with every_hours), not "
                                + ("both" if funding.get("file") else "neither"))
    if "file" in funding and "every_hours" in funding:
        _fail(where, "funding.every_hours", "goes with funding.rate; a funding file has its own times")
    base = {k: v for k, v in config.items() if k not in ("variants", "grid")}
    variants = [(v["name"], _merge(base, {k: x for k, x in v.items() if k != "name"}))
                for v in config.get("variants", [{"name": "base"}])]
    grid = config.get("grid", {})
    for key in PATH_GRID_KEYS & set(grid):
        if kind == "file":
            _fail(where, f"grid.\"{key}\"", "a path read from files (path.kind = 'file') has nothing to vary; "
                                            "a grid over path.seed needs a 'gbm' or 'bootstrap' path")
        if isinstance(grid[key], dict):  # {from, count}: written out, so that every later step sees a list
            grid[key] = _seed_range(where, f"grid.\"{key}\"", grid[key])
    path_labels, base_names = {}, {}
    if grid:
        expanded = []
        keys = list(grid)
        for name, cfg in variants:
            for combo in itertools.product(*(grid[k] for k in keys)):
                c = copy.deepcopy(cfg)
                labels, path_label = [], []
                for key, value in zip(keys, combo):
                    section, leaf = key.split(".", 1)
                    c.setdefault(section, {})[leaf] = value
                    # a path key is named in full: "seed" alone could be the population's
                    (path_label if key in PATH_GRID_KEYS else labels).append(
                        f"{key if key in PATH_GRID_KEYS else leaf}={value}")
                full = f"{name} [{', '.join(labels + path_label)}]"
                expanded.append((full, c))
                if path_label:
                    path_labels[full] = ", ".join(path_label)
                    base_names[full] = f"{name} [{', '.join(labels)}]" if labels else name
        variants = expanded
    names = [n for n, _ in variants]
    if len(set(names)) != len(names):
        _fail(where, "variants", f"variant names must be unique: {names}")
    tables = [c["impact"] for c in config["market"]["contracts"].values() if "impact" in c]
    feedback = {bool(t.get("feedback", True)) for t in tables}
    for name, cfg in variants:
        market = cfg["market"]
        for key in ("impact", "feedback"):
            if market.get(key) and not tables:
                _fail(where, f"market.{key}", f"is true (variant {name!r}) but no contract has an impact model: "
                                             "add a [market.contracts.SYMBOL.impact] table (docs/cascades.md)")
        if tables:  # the settings in effect, written out (the report compares the variants by them)
            market.setdefault("impact", True)
            if not market["impact"]:
                market.setdefault("feedback", False)
            elif len(feedback) == 1:
                market.setdefault("feedback", next(iter(feedback)))
    for name, cfg in variants:
        ignored = sorted(set(cfg["population"]) - {"file"}) if "file" in cfg["population"] else []
        if ignored:
            _fail(where, f"population.{ignored[0]}", f"has no effect with population.file (variant {name!r}): the "
                                                     "accounts are read from the file, not drawn")
    return Scenario(path, config, variants, path_labels, base_names, _study(where, config, variants))


# ---------------------------------------------------------------- building
def data_search_path() -> list[Path]:
    """The folders searched, by file name, for a data file that is not at its path: those of
    ``$RISKCORE_DATA_PATH`` (separated by ``os.pathsep``), then the shared data beside the
    project (``../shared/data`` next to a checkout)."""
    import os

    folders = [Path(f).expanduser() for f in os.environ.get("RISKCORE_DATA_PATH", "").split(os.pathsep) if f]
    return folders + [Path(__file__).resolve().parents[2] / "shared" / "data"]


def _candidates(scenario: Scenario, relative: str) -> list[Path]:
    """Where a data file named in a scenario is looked for, in order (docs/scenarios.md, "Data
    files"): an absolute path as it is; a relative one from the scenario file's folder, then
    from the current folder, then its file name in each folder of :func:`data_search_path`."""
    path = Path(relative).expanduser()
    if path.is_absolute():
        return [path]
    out = [(scenario.path.parent / path).resolve(), (Path.cwd() / path).resolve()]
    out += [(folder / path.name).resolve() for folder in data_search_path()]
    return list(dict.fromkeys(out))


def _resolve(scenario: Scenario, relative: str) -> Path:
    """The first of :func:`_candidates` that exists, else the first (the documented place)."""
    candidates = _candidates(scenario, relative)
    return next((c for c in candidates if c.exists()), candidates[0])


def _not_found(scenario: Scenario, relative: str) -> str:
    """Why a data file was not found: every place looked, and whether the shared data is here."""
    import os

    looked = "; ".join(f"{i}) {c}" for i, c in enumerate(_candidates(scenario, relative), 1))
    shared = data_search_path()[-1]
    note = (f"the shared data folder {shared} holds no file of that name" if shared.is_dir()
            else f"the shared data folder {shared} is not on this machine")
    env = "" if os.environ.get("RISKCORE_DATA_PATH") else "; RISKCORE_DATA_PATH (folders to search) is not set"
    return f"{relative!r} not found; looked in {looked} ({note}{env})"


def _brackets(scenario: Scenario, symbol: str, spec: dict, market: dict) -> Brackets:
    where = f"{scenario.path}: market.contracts.{symbol}.brackets"
    try:
        if "tiers" in spec:
            table = Brackets.from_records(spec["tiers"], symbol=symbol)
        elif "file" in spec:
            if not _resolve(scenario, spec["file"]).exists():
                raise MissingDataError(f"{where}.file: {_not_found(scenario, spec['file'])}")
            table = Brackets.from_binance_file(_resolve(scenario, spec["file"]), spec.get("symbol", symbol),
                                               spec.get("date"))
        else:
            table = Brackets.load(spec.get("symbol", symbol), spec.get("date"), spec.get("venue", "binance"))
    except MissingDataError:
        raise
    except FileNotFoundError as exc:
        raise MissingDataError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    factor, cap = market.get("mmr_factor", 1.0), market.get("max_leverage_cap")
    if factor != 1.0 or cap is not None:
        try:
            table = table.scaled(factor, cap)
        except ValueError as exc:
            keys = [f"market.{k} = {market[k]!r}" for k in ("mmr_factor", "max_leverage_cap") if k in market]
            raise ScenarioError(f"{scenario.path}: {', '.join(keys)}: {exc}") from None
    return table


def _all_brackets(scenario: Scenario, cfg: dict) -> dict[str, Brackets]:
    market = cfg["market"]
    return {s: _brackets(scenario, s, c["brackets"], market) for s, c in market["contracts"].items()}


def _population_spec(scenario: Scenario, cfg: dict):
    """(accounts, seed, PopulationSpec) of a variant that draws its population."""
    from .populations import PopulationSpec

    pop = dict(cfg["population"])
    n = pop.pop("accounts")
    seed = pop.pop("seed", cfg.get("seed", 0))
    for key in ("positions_per_account", "leverage_range"):
        if isinstance(pop.get(key), list):
            pop[key] = tuple(pop[key])
    if isinstance(pop.get("leverage"), dict):
        pop["leverage"] = {float(k): v for k, v in pop["leverage"].items()}
    for symbol, c in cfg["market"]["contracts"].items():
        for fee in ("maker_fee", "taker_fee"):
            if fee in c:
                pop.setdefault(fee, c[fee])
    try:
        return n, seed, PopulationSpec(**pop)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{scenario.path}: population: {exc}") from None


def check_variants(scenario: Scenario) -> None:
    """Build what every variant needs that costs little (bracket tables, population specs), so
    that a bad value in any variant is found before anything runs."""
    for name, cfg in scenario.variants:
        try:
            _all_brackets(scenario, cfg)
            _check_venues(scenario, cfg)
            if "file" not in cfg["population"]:
                _population_spec(scenario, cfg)
        except ScenarioError as exc:
            if len(scenario.variants) == 1:
                raise
            raise ScenarioError(f"{exc} (in variant {name!r})") from None


def build_paths(scenario: Scenario, cfg: dict, *, loaded: dict | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """The price paths a scenario describes, and a sentence saying where they come from.
    ``loaded``, a dict kept by the caller, holds the real bars a bootstrap read, by file, so
    that the paths of many seeds read each file once."""
    from . import synthetic
    from .io import load_klines, load_paths

    spec = cfg["path"]
    contracts = cfg["market"]["contracts"]
    seed = spec.get("seed", cfg.get("seed", 0))
    kind = spec["kind"]
    where = f"{scenario.path}: path"
    if kind == "gbm":
        starts = {symbol: c["start_price"] for symbol, c in contracts.items()}
        try:
            paths = synthetic.gbm_paths(starts, spec["n_steps"], interval=spec.get("interval", "1min"),
                                        start=spec.get("start", "2025-01-01"), vol=spec.get("vol", 0.6),
                                        drift=spec.get("drift", 0.0), correlation=spec.get("correlation", 0.0),
                                        jump_rate=spec.get("jump_rate", 0.0), jump_mean=spec.get("jump_mean", 0.0),
                                        jump_std=spec.get("jump_std", 0.0), seed=seed)
            for wick in spec.get("wicks", []):
                paths = synthetic.inject_wick(paths, wick["contract"], wick["at"], wick["depth"],
                                              wick.get("recover", True))
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        except MemoryError as exc:
            raise ScenarioError(f"{where}.n_steps: {exc}") from None
        _check_paths(paths, where)
        source = spec.get("price_source", f"synthetic GBM (seed {seed})")
        return paths, source
    if kind == "file":
        files = {symbol: _resolve(scenario, f) for symbol, f in spec["files"].items()}
    else:
        files = {symbol: _resolve(scenario, f) for symbol, f in spec["source"].items()}
    names = spec["files"] if kind == "file" else spec["source"]
    missing = [f"{where}.{'files' if kind == 'file' else 'source'}.{s}: {_not_found(scenario, names[s])}"
               for s, p in files.items() if not p.exists()]
    if missing:
        raise MissingDataError("\n".join(missing))
    try:
        if kind == "file":
            paths = load_paths(files, gaps=spec.get("gaps", "refuse"))
        else:
            loaded = {} if loaded is None else loaded
            for p in files.values():
                if p not in loaded:
                    loaded[p] = load_klines(p, gaps="fill")
            real = {s: loaded[p] for s, p in files.items()}
            paths = synthetic.bootstrap_paths(real if len(real) > 1 else next(iter(real.values())),
                                              spec["n_steps"], block=spec.get("block", 60), seed=seed,
                                              **({} if len(real) > 1 else {"contract": next(iter(real))}))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    except MemoryError as exc:
        raise ScenarioError(f"{where}.n_steps: {exc}") from None
    start, end = spec.get("start"), spec.get("end")
    if start or end:
        lo, hi = (_time(scenario, f"path.{key}", value) for key, value in (("start", start), ("end", end)))
        for symbol, frame in paths.items():
            keep = np.ones(len(frame), dtype=bool)
            if lo is not None:
                keep &= frame["timestamp"].to_numpy() >= lo.to_datetime64()
            if hi is not None:
                keep &= frame["timestamp"].to_numpy() <= hi.to_datetime64()
            paths[symbol] = frame[keep].reset_index(drop=True)
            if not len(paths[symbol]):
                _fail(str(scenario.path), "path.start", f"no {symbol} bars between {start} and {end}")
    _check_paths(paths, where)
    names = ", ".join(p.name for p in files.values())
    default = f"{'bootstrap of ' if kind == 'bootstrap' else ''}{names}"
    return paths, spec.get("price_source", default)


def path_key(cfg: dict) -> str:
    """What a variant's path is built from (:func:`build_paths`): its ``[path]`` table, the
    top-level seed (the path's default seed) and the contracts' start prices.  Variants with
    the same key run through the same bars."""
    starts = {s: c.get("start_price") for s, c in cfg["market"]["contracts"].items()}
    return json.dumps([cfg["path"], cfg.get("seed", 0), starts], sort_keys=True, default=str)


@dataclass
class PathSet:
    """The distinct price paths of a scenario's variants, each built once."""
    frames: dict  # path key -> {contract: bars}
    sources: dict  # path key -> where its prices come from
    labels: dict  # path key -> its label ("path.seed=3"; "" when the grid does not vary the path)
    of: dict  # variant -> its path key

    def __len__(self) -> int:
        return len(self.frames)

    def paths(self, variant: str) -> dict:
        return self.frames[self.of[variant]]

    def bars(self, variant: str) -> int:
        return len(next(iter(self.paths(variant).values())))

    @property
    def first(self) -> tuple[dict, str]:
        key = next(iter(self.frames))
        return self.frames[key], self.sources[key]

    def price_source(self, scenario: Scenario) -> str:
        """One sentence for every path: the first's when there is one, else what they share
        and the seeds (``synthetic GBM, 8 paths (path.seed 1 to 8)``)."""
        if len(self) == 1:
            return self.first[1]
        spec = scenario.config["path"]
        seeds = [int(json.loads(k)[0].get("seed", json.loads(k)[1])) for k in self.frames]
        if "price_source" in spec:
            what = spec["price_source"]
        elif spec["kind"] == "gbm":
            what = "synthetic GBM"
        else:
            what = "bootstrap of " + ", ".join(Path(f).name for f in spec["source"].values())
        return f"{what}, {len(self)} paths (path.seed {_seeds_text(seeds)})"

    def sweep(self, scenario: Scenario):
        """The :class:`riskcore.report.PathSweep` of the report (None for one path)."""
        from .report import PathSweep

        if len(self) < 2:
            return None
        label = {k: self.labels[k] or f"path {i + 1}" for i, k in enumerate(self.frames)}
        return PathSweep(paths={label[k]: f for k, f in self.frames.items()},
                         path_of={v: label[k] for v, k in self.of.items()},
                         base_of={v: scenario.base_names.get(v, v) for v in self.of},
                         description=self.price_source(scenario))


def _seeds_text(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]} to {seeds[-1]}"
    shown = ", ".join(str(x) for x in seeds[:6])
    return shown + (f", ... ({len(seeds)} in all)" if len(seeds) > 6 else "")


def build_all_paths(scenario: Scenario) -> PathSet:
    """Every variant's price path, each distinct one built once (variants that share their path
    settings share the bars), in the scenario's order: building them all checks them all before
    anything runs.  Every path is held until the report is written: a day of one-minute bars is
    about 60 kB per contract, so a hundred paths take a few megabytes."""
    frames, sources, labels, of = {}, {}, {}, {}
    loaded: dict = {}  # the real bars of a bootstrap, read once for every seed
    for name, cfg in scenario.variants:
        key = path_key(cfg)
        if key not in frames:
            label = scenario.path_labels.get(name, "")
            try:
                frames[key], sources[key] = build_paths(scenario, cfg, loaded=loaded)
            except ScenarioError as exc:
                if not label:
                    raise
                raise ScenarioError(f"{exc} (the path of {label})") from None
            labels[key] = label
        of[name] = key
    return PathSet(frames, sources, labels, of)


def _time(scenario: Scenario, key: str, value) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        _fail(str(scenario.path), key, f"{value!r} is not a time (e.g. \"2025-10-10T18:31\")")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _check_paths(paths: dict, where: str) -> None:
    """The simulator's own check of the bars (prices positive, finite and at most 1e15; one
    timeline), made here so that the error says which scenario key or file they came from."""
    from .inputs import InputError, PricePaths

    try:
        PricePaths.from_frames(paths)
    except InputError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _check_venues(scenario: Scenario, cfg: dict) -> None:
    """Partial liquidation and market impact do not go together (``simulate`` refuses them)."""
    if not impact_models(cfg):
        return
    partial = [s for s, v in contract_venues(cfg).items() if venue_profile(v).partial]
    if partial:
        raise ScenarioError(f"{scenario.path}: market.contracts.{partial[0]}: the venue profile "
                            f"{contract_venues(cfg)[partial[0]]!r} liquidates in parts, which market impact does not "
                            "support yet: drop the impact table (or set market.impact = false), or use a profile "
                            "that liquidates whole positions")


def contract_venues(cfg: dict) -> dict[str, str]:
    """Each contract's venue profile: its own ``venue``, else ``market.venue``, else binance."""
    market = cfg["market"]
    default = market.get("venue", DEFAULT_VENUE)
    return {s: str(c.get("venue", default)).strip().lower() for s, c in market["contracts"].items()}


def _with_venues(table, cfg: dict, scenario: Scenario):
    venues = contract_venues(cfg)
    if all(v == DEFAULT_VENUE for v in venues.values()) and (table.contracts["venue"] == DEFAULT_VENUE).all():
        return table
    contracts = table.contracts.copy()
    contracts["venue"] = pd.Series([venues.get(s, v) for s, v in zip(contracts["contract"], contracts["venue"])],
                                   dtype=object)
    for symbol, venue, fee in zip(contracts["contract"], contracts["venue"], contracts["taker_fee"]):
        try:
            venue_profile(venue).maintenance_brackets(table.bracket_tables[symbol], float(fee))
        except ValueError as exc:
            raise ScenarioError(f"{scenario.path}: market.contracts.{symbol}.venue = {venue!r}: {exc}") from None
    return table.replace(contracts=contracts)


def build_book(scenario: Scenario, cfg: dict, paths: dict[str, pd.DataFrame]):
    """The population of the variant as a :class:`~riskcore.book.Book` (see :func:`build_table`)."""
    from .book import Book

    return Book.from_table(build_table(scenario, cfg, paths))


def build_table(scenario: Scenario, cfg: dict, paths: dict[str, pd.DataFrame]):
    """The population of the variant as a :class:`~riskcore.table.BookTable`, drawn straight
    into the table (or read from ``population.file``), opened at each contract's first
    open price."""
    from .populations import generate_population_table, load_population_table

    brackets = _all_brackets(scenario, cfg)
    where = f"{scenario.path}: population"
    if "file" in cfg["population"]:
        if not _resolve(scenario, cfg["population"]["file"]).exists():
            raise MissingDataError(f"{where}.file: {_not_found(scenario, cfg['population']['file'])}")
        try:
            return _with_venues(load_population_table(_resolve(scenario, cfg["population"]["file"]),
                                                      contracts=brackets), cfg, scenario)
        except FileNotFoundError as exc:
            raise MissingDataError(f"{where}.file: {exc}") from None
        except ValueError as exc:
            raise ScenarioError(f"{where}.file: {exc}") from None
    n, seed, spec = _population_spec(scenario, cfg)
    prices = {s: float(paths[s]["open"].iloc[0]) for s in brackets if s in paths}
    try:
        return _with_venues(generate_population_table(n, {s: brackets[s] for s in prices}, prices, seed=seed,
                                                      spec=spec), cfg, scenario)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    except MemoryError as exc:
        raise ScenarioError(f"{where}.accounts: {exc}") from None


def build_funding(scenario: Scenario, cfg: dict, paths: dict[str, pd.DataFrame]):
    from .io import load_funding

    spec = cfg.get("funding")
    if not spec:
        return None
    if "file" in spec:
        path = _resolve(scenario, spec["file"])
        if not path.exists():
            raise MissingDataError(f"{scenario.path}: funding.file: {_not_found(scenario, spec['file'])}")
        try:
            return {s: f for s, f in load_funding(path).items() if s in paths}
        except ValueError as exc:
            raise ScenarioError(f"{scenario.path}: funding.file: {exc}") from None
    rate, every = spec["rate"], pd.Timedelta(hours=spec.get("every_hours", 8.0))
    out = {}
    for symbol, frame in paths.items():
        first, last = frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]
        times = pd.date_range(first.ceil(every), last, freq=every)
        out[symbol] = pd.DataFrame({"timestamp": times, "rate": rate})
    return out


# --------------------------------------------------------------------- running
@dataclass
class ScenarioRun:
    scenario: Scenario
    paths: dict
    price_source: str
    books: dict  # variant -> starting BookTable
    results: dict  # variant -> Result
    seconds: float
    path_set: PathSet | None = None  # every variant's path (``paths`` is the first variant's)


PHASES = ("build", "simulate", "read-outs", "write", "report")
STUDY_PHASE = "study"  # a fund-sizing study's own work (fund flows, the curve): RunTimes adds it when used


@dataclass
class RunTimes:
    """Seconds spent in each phase of a scenario run (summed over variants)."""
    phases: dict = field(default_factory=lambda: {p: 0.0 for p in PHASES})
    kernel: float = 0.0  # of "simulate": the kernels' own time (packing and unpacking excluded)

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def _simulate(scenario: Scenario, cfg: dict, table, paths: dict, funding, tick, checkpoint=None):
    from .simulate import simulate

    market, engine = cfg["market"], cfg.get("engine", {})
    extra = {} if checkpoint is None else {"checkpoint": checkpoint, "checkpoint_every": CHECKPOINT_EVERY}
    impact = impact_models(cfg)
    if impact:
        extra.update(impact=impact, cascade_rounds=market.get("cascade_rounds", DEFAULT_ROUNDS))
    for key in ("adl_policy", "adl_seed"):
        if key in market:
            extra[key] = market[key]
    return simulate(table, paths, liquidation_fee_rate=market["liquidation_fee_rate"],
                    insurance_fund=market.get("insurance_fund", 0.0),
                    liquidation_slippage=market.get("liquidation_slippage", 0.0), funding=funding,
                    intrabar=engine.get("intrabar", "ohlc"), mm_basis=engine.get("mm_basis", "mark"),
                    engine=engine.get("engine", "numba"), progress=tick, **extra)


CHECKPOINT_EVERY = 60.0  # seconds between a variant's checkpoints (riskcore run --checkpoint)


def impact_models(cfg: dict) -> dict:
    """A variant's impact models by contract (``{symbol: Impact}``; empty with
    ``market.impact = false`` or no ``[market.contracts.SYMBOL.impact]`` table);
    ``market.feedback`` overrides each table's own ``feedback``."""
    import dataclasses

    from .impact import Impact

    market = cfg["market"]
    if not market.get("impact", True):
        return {}
    out = {}
    for symbol, c in market["contracts"].items():
        if "impact" in c:
            spec = Impact(**c["impact"])
            if "feedback" in market:
                spec = dataclasses.replace(spec, feedback=bool(market["feedback"]))
            out[symbol] = spec
    return out


def checkpoint_file(folder: Path, name: str) -> Path:
    """The checkpoint file of variant ``name`` in ``folder``: a readable, file-name-safe
    form of the name and a short digest of it (two names never share a file)."""
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(name)).strip("._")[:80] or "variant"
    return Path(folder) / f"{safe}-{hashlib.sha1(str(name).encode()).hexdigest()[:8]}.ckpt"


def _ticker(advance):
    done = [0]

    def tick(bars):
        if advance is not None:
            advance(bars - done[0])
        done[0] = bars
    return tick


def run_scenario(scenario: Scenario | str | Path, progress_factory=None) -> ScenarioRun:
    """Run every variant and keep every result in memory (for the API; ``riskcore run``
    uses :func:`run_to_folder`, which holds one variant's result at a time).
    ``progress_factory(total_bars)`` may return a callable taking the number of bars to add."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    check_variants(scenario)
    started = time.perf_counter()
    books, results = {}, {}
    advance = None
    path_set = build_all_paths(scenario)
    for name, cfg in scenario.variants:
        paths = path_set.paths(name)
        table = build_table(scenario, cfg, paths)
        funding = build_funding(scenario, cfg, paths)
        if advance is None and progress_factory is not None:
            advance = progress_factory(sum(path_set.bars(n) for n, _ in scenario.variants))
        books[name] = table
        results[name] = _simulate(scenario, cfg, table, paths, funding, _ticker(advance))
    paths, _ = path_set.first
    return ScenarioRun(scenario, paths, path_set.price_source(scenario), books, results,
                       time.perf_counter() - started, path_set)


def write_outputs(run: ScenarioRun, out_dir, *, force: bool = False) -> Path:
    """Write a :class:`ScenarioRun`'s Parquet outputs and HTML report into ``out_dir``, all
    or nothing, under the rules of :func:`run_to_folder`."""
    with _OutputFolder(out_dir, force=force) as out:
        for name, result in run.results.items():
            out.add_variant(name, result, run.books[name])
        out.finish(run.scenario, run.paths, run.price_source, run.seconds, run.path_set)
    return Path(out_dir)


def run_to_folder(scenario: Scenario | str | Path, out_dir, progress_factory=None, *, force: bool = False,
                  before_run=None, chart_helper: bool = False,
                  checkpoint_dir=None) -> tuple[Path, pd.DataFrame, RunTimes, str]:
    """Run every variant one after another and write the outputs into ``out_dir``.

    Each variant's result is written (events, steps, final positions and accounts) and
    digested for the summary and report as soon as it is done, then dropped, so memory
    holds one variant's result at a time.  Everything is written into a temporary folder
    beside ``out_dir`` that replaces it at the end: a failed run leaves ``out_dir`` as it
    was.

    Each variant runs through its own path: variants whose path settings are the same share
    one, built once (a grid over ``path.seed`` gives each seed its path; see
    :func:`build_all_paths`).  The inputs (every variant's brackets and population, every
    path) and the output folder are checked before anything is simulated.  ``out_dir`` must be empty, absent
    or an earlier riskcore output (:mod:`riskcore.output`); ``force=True`` moves any other
    folder aside instead of refusing it (:class:`~riskcore.output.OutputFolderError`).
    ``before_run(folder)``, when given, is called once the checks pass and the folder is
    locked, before the first variant runs (``riskcore run`` compiles the kernels there).
    ``chart_helper=True`` starts a :class:`~riskcore.report.ChartHelper` process at once,
    which draws half of the report's charts at the end (``riskcore run`` does on two cores
    or more; the script calling this must then guard its top level with
    ``if __name__ == "__main__":``, as any use of multiprocessing's spawn needs).
    ``checkpoint_dir``: each variant's kernel run saves its state there (one file per
    variant, :func:`checkpoint_file`, every :data:`CHECKPOINT_EVERY` seconds); the same
    command after a kill resumes the variant that was running from its checkpoint (the
    variants before it run again; each file is removed when its variant finishes).
    Returns (folder, summary, phase times, price source)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if scenario.study is not None:  # a fund-sizing study: every variant over the study's paths
        return run_study_to_folder(scenario, out_dir, progress_factory, force=force, before_run=before_run,
                                   chart_helper=chart_helper)
    check_variants(scenario)
    times = RunTimes()
    started = time.perf_counter()
    advance = None
    t0 = time.perf_counter()
    path_set = build_all_paths(scenario)
    price_source = path_set.price_source(scenario)
    times.add("build", time.perf_counter() - t0)
    with _OutputFolder(out_dir, times, force) as out:
        if chart_helper:
            from .report import ChartHelper

            out.chart_helper = ChartHelper()
        if before_run is not None:
            before_run(out.place)
        for name, cfg in scenario.variants:
            t0 = time.perf_counter()
            paths = path_set.paths(name)
            table = build_table(scenario, cfg, paths)
            funding = build_funding(scenario, cfg, paths)
            times.add("build", time.perf_counter() - t0)
            if advance is None and progress_factory is not None:
                advance = progress_factory(sum(path_set.bars(n) for n, _ in scenario.variants))
            t0 = time.perf_counter()
            ckpt = None if checkpoint_dir is None else checkpoint_file(checkpoint_dir, name)
            result = _simulate(scenario, cfg, table, paths, funding, _ticker(advance), ckpt)
            times.add("simulate", time.perf_counter() - t0)
            times.kernel += float(result.timings.get("kernel", 0.0))
            out.add_variant(name, result, table)
            del result
        summary = out.finish(scenario, path_set.first[0], price_source, time.perf_counter() - started, path_set)
    return Path(out_dir), summary, times, price_source


# ------------------------------------------------------------------ studies
#: The tables a fund-sizing study adds to a run's folder.
STUDY_TABLES = ("fund_sizing.parquet", "fund_paths.parquet")


def _study_cfg(cfg: dict, seed: int) -> dict:
    """A variant's settings on the path of ``seed``, with an ample insurance fund."""
    from .studies import AMPLE_FUND

    out = copy.deepcopy(cfg)
    out["path"]["seed"] = seed
    out["market"]["insurance_fund"] = AMPLE_FUND
    return out


def run_study_to_folder(scenario: Scenario, out_dir, progress_factory=None, *, force: bool = False,
                        before_run=None, chart_helper: bool = False) -> tuple[Path, pd.DataFrame, RunTimes, str]:
    """Run a fund-sizing study (``[study] kind = "fund-sizing"``, docs/studies.md) into ``out_dir``.

    Every variant runs once through each of the study's paths (``study.paths``, the seeds of
    a ``gbm`` or ``bootstrap`` path) with an ample insurance fund
    (:data:`riskcore.studies.AMPLE_FUND`); each run is reduced at once to its fund flows
    (:func:`riskcore.studies.fund_flows`) and dropped, but for the first path's, whose full
    outputs (events, steps, final book, outcomes) and report sections are written as for a
    plain scenario.  From the flows, :func:`riskcore.studies.fund_sizing` makes each variant's
    curve over ``study.fund_sizes``: ``fund_sizing.parquet`` (a row per variant and size) and
    ``fund_paths.parquet`` (a row per variant and path: the fund it needs, where, its
    deficits and fees); the report gets its "Insurance-fund sizing" section.  The folder's
    rules are those of :func:`run_to_folder`.  Returns (folder, summary of the first path's
    variants, phase times, price source)."""
    from . import report, studies

    study = scenario.study
    check_variants(scenario)
    times = RunTimes()
    started = time.perf_counter()
    t0 = time.perf_counter()
    runs = [(name, seed, _study_cfg(cfg, seed)) for seed in study.seeds for name, cfg in scenario.variants]
    frames, sources, loaded = {}, {}, {}
    for name, seed, cfg in runs:  # every path built (and so checked) before anything runs
        key = path_key(cfg)
        if key not in frames:
            try:
                frames[key], sources[key] = build_paths(scenario, cfg, loaded=loaded)
            except ScenarioError as exc:
                if len(study.seeds) == 1:
                    raise
                raise ScenarioError(f"{exc} (the path of seed {seed})") from None
    first_key = path_key(runs[0][2])
    price_source = sources[first_key]
    if len(study.seeds) > 1:
        spec = scenario.config["path"]
        what = spec.get("price_source") or ("synthetic GBM" if spec["kind"] == "gbm" else
                                            "bootstrap of " + ", ".join(Path(f).name for f in spec["source"].values()))
        price_source = f"{what}, {len(study.seeds)} paths (path.seed {_seeds_text(list(study.seeds))})"
    times.add("build", time.perf_counter() - t0)
    flows: dict = {name: {} for name, _ in scenario.variants}
    tables: dict = {}  # population key -> BookTable: the accounts are the same on every path
    advance = None
    with _OutputFolder(out_dir, times, force) as out:
        if chart_helper:
            out.chart_helper = report.ChartHelper()
        if before_run is not None:
            before_run(out.place)
        for i, (name, seed, cfg) in enumerate(runs):
            t0 = time.perf_counter()
            paths = frames[path_key(cfg)]
            pop = json.dumps([cfg["population"], cfg["market"], cfg.get("seed", 0),
                              {s: float(f["open"].iloc[0]) for s, f in paths.items()}], sort_keys=True, default=str)
            if pop not in tables:
                tables[pop] = build_table(scenario, cfg, paths)
            table = tables[pop]
            funding = build_funding(scenario, cfg, paths)
            times.add("build", time.perf_counter() - t0)
            if advance is None and progress_factory is not None:
                advance = progress_factory(sum(len(next(iter(frames[path_key(c)].values()))) for _, _, c in runs))
            t0 = time.perf_counter()
            result = _simulate(scenario, cfg, table, paths, funding, _ticker(advance))
            times.add("simulate", time.perf_counter() - t0)
            times.kernel += float(result.timings.get("kernel", 0.0))
            t0 = time.perf_counter()
            flows[name][seed] = studies.fund_flows(result)
            times.add("study", time.perf_counter() - t0)
            if i < len(scenario.variants):  # the first path: its full outputs and the report's sections
                out.add_variant(name, result, table)
            del result
        t0 = time.perf_counter()
        curve, per_path = fund_sizing_tables(scenario, flows)
        with out._writing():
            _parquet(curve, out.tmp / STUDY_TABLES[0])
            _parquet(per_path, out.tmp / STUDY_TABLES[1])
        out.study = report.FundSizingReport(curve=curve, paths=per_path, tail=study.tail,
                                            adl_target=study.adl_target, description=price_source)
        times.add("study", time.perf_counter() - t0)
        summary = out.finish(scenario, frames[first_key], price_source, time.perf_counter() - started)
    return Path(out_dir), summary, times, price_source


def fund_sizing_tables(scenario: Scenario, flows: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of a fund-sizing study from each variant's fund flows by path seed
    (``{variant: {seed: fund_flows frame}}``): the curve (``variant`` and the columns of
    :data:`riskcore.studies.FUND_SIZING_COLUMNS`, a row per size) and the paths (``variant``,
    ``seed``, ``fund_needed``, ``step``, ``point``, ``deficits``, ``fees``)."""
    from .studies import fund_needed, fund_sizing

    study = scenario.study
    curves, paths = [], []
    for name, by_seed in flows.items():
        curve = fund_sizing(by_seed, study.sizes, tail=study.tail)
        curve.insert(0, "variant", name)
        curves.append(curve)
        need = fund_needed(by_seed).reset_index().rename(columns={"run": "seed"})
        need.insert(0, "variant", name)
        paths.append(need)
    return pd.concat(curves, ignore_index=True), pd.concat(paths, ignore_index=True)


_EVENT_TEXT = ("contract", "leg", "kind", "reason", "reason_code")


class _OutputFolder:
    """The outputs of a run, written variant by variant into a temporary folder that
    replaces the target at the end (or is removed on failure).  Which folders may be
    replaced, the lock and the leftovers of killed runs: :mod:`riskcore.output`."""

    def __init__(self, target, times: RunTimes | None = None, force: bool = False):
        self.target = Path(target)
        self.place = OutputTarget(target, force)
        self.times = times or RunTimes()
        self.writers: dict = {}
        self.digests: dict = {}
        self.pending: list = []  # Parquet writes of the last variant, running on the writer thread
        self.chart_helper = None  # a report.ChartHelper, when the run has one
        self.study = None  # a report.FundSizingReport, for a fund-sizing study's section

    def __enter__(self):
        self.place.__enter__()
        self.tmp = self.place.tmp
        # One writer thread: a variant's Parquet files are encoded and written (pyarrow, GIL
        # released) while the main thread goes on with the report or the next variant.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskcore-write")
        return self

    def __exit__(self, kind, exc, tb):
        try:
            try:
                if kind is None:
                    self._wait()
            finally:
                self.pool.shutdown(wait=True, cancel_futures=True)  # nothing writes into a removed folder
                if self.chart_helper is not None:
                    self.chart_helper.close()
                for writer in self.writers.values():
                    writer.close()
        finally:
            self.place.__exit__(kind, exc, tb)
        return False

    def _wait(self) -> None:
        """Wait for the writes in flight; the first failure is raised (naming the folder)."""
        pending, self.pending = self.pending, []
        t0 = time.perf_counter()
        with self._writing():
            for future in pending:
                future.result()
        self.times.add("write", time.perf_counter() - t0)

    @contextlib.contextmanager
    def _writing(self):
        """An error of the file system while writing names the folder (a full disk, say)."""
        try:
            yield
        except OSError as exc:
            raise OSError(exc.errno, f"writing the outputs into {self.target} failed ({exc.strerror or exc}); "
                                     f"{self.target} is as it was") from exc

    def _append(self, file: str, frame: pd.DataFrame, variant: str) -> None:
        """Append ``frame`` with a ``variant`` column to ``file`` (on the writer thread)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _arrow(frame)
        table = table.append_column("variant", pa.array([variant], pa.string()).take(np.zeros(len(frame), np.int32)))
        writer = self.writers.get(file)
        if writer is None:
            text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
            writer = self.writers[file] = pq.ParquetWriter(self.tmp / file, table.schema, use_dictionary=text)
        elif table.schema != writer.schema:
            table = table.cast(writer.schema)
        writer.write_table(table)

    def add_variant(self, name: str, result, start_table) -> None:
        t0 = time.perf_counter()
        tables, self.digests[name] = variant_outputs(name, result, start_table)
        self.times.add("read-outs", time.perf_counter() - t0)
        self._wait()  # the previous variant's files (one variant's outputs in memory at a time)
        t0 = time.perf_counter()
        for file, frame in tables.items():
            self.pending.append(self.pool.submit(self._append, file, frame, name))
        self.times.add("write", time.perf_counter() - t0)

    def finish(self, scenario: Scenario, paths: dict, price_source: str, seconds: float,
               path_set: PathSet | None = None) -> pd.DataFrame:
        """Write the summary, the report, ``scenario.toml`` and ``run.json`` and put the folder in
        place.  ``paths`` are the first variant's bars; ``path_set``, every variant's (a report
        over several paths when they differ)."""
        with self._writing():
            return self._finish(scenario, paths, price_source, seconds, path_set)

    def _finish(self, scenario: Scenario, paths: dict, price_source: str, seconds: float,
                path_set: PathSet | None = None) -> pd.DataFrame:
        from . import __version__, report

        t0 = time.perf_counter()
        summary = report.summarize(self.digests)
        _parquet(summary.reset_index(), self.tmp / "summary.parquet")
        sweep = path_set.sweep(scenario) if path_set is not None else None
        if sweep is not None:  # several paths: the spread of each margin variant's results over them
            _parquet(report.spread_table(summary, sweep), self.tmp / "spread.parquet")
        self.times.add("write", time.perf_counter() - t0)
        t0 = time.perf_counter()
        notes = list(scenario.config.get("notes", []))
        report.write_report(self.tmp, self.digests, paths, title=scenario.name, notes=notes,
                            price_source=price_source, description=scenario.config.get("description", ""),
                            seed=scenario.config.get("seed", 0), settings=dict(scenario.variants),
                            chart_helper=self.chart_helper, sweep=sweep,
                            **({"fund_sizing": self.study} if self.study is not None else {}))
        self.times.add("report", time.perf_counter() - t0)
        self._wait()  # the last variant's files, written while the report was drawn
        t0 = time.perf_counter()
        for writer in self.writers.values():
            writer.close()
        self.writers = {}
        shutil.copyfile(scenario.path, self.tmp / "scenario.toml")
        facts = {
            "scenario": str(scenario.path), "name": scenario.name, "variants": list(self.digests),
            "seconds": round(seconds, 3), "phases": {k: round(v, 3) for k, v in self.times.phases.items()},
            "price_source": price_source, "params": {k: d.params for k, d in self.digests.items()},
        }
        if path_set is not None and len(path_set) > 1:  # which path each variant ran through
            facts["paths"] = {v: path_set.labels[path_set.of[v]] for v in self.digests}
        (self.tmp / "run.json").write_text(json.dumps(facts, indent=2, default=str))
        self.place.commit(version=__version__, scenario=scenario.name)
        self.times.add("write", time.perf_counter() - t0)
        return summary


#: The Parquet tables of a run, one row group per variant (``variant`` column added).
OUTPUT_TABLES = ("events.parquet", "steps.parquet", "final_positions.parquet", "final_accounts.parquet",
                 "outcomes.parquet")


def variant_outputs(name: str, result, start_table) -> tuple[dict, object]:
    """One variant's output tables (``{file: frame}`` for :data:`OUTPUT_TABLES`, without the
    ``variant`` column) and its :class:`~riskcore.report.VariantDigest`: the final book's
    read-outs, the account outcomes (end equity taken from those read-outs) and the digest
    of the report.  The local run and the cluster's tasks both make them here."""
    from . import readouts, report

    views = readouts.readouts(result.final.frames())
    positions, accounts = views["positions"], views["accounts"]
    outcomes = report._account_outcomes(result, start_table, name, end_equity=accounts[["account", "equity"]])
    digest = report.digest(result, start_table, name, outcomes)
    tables = dict(zip(OUTPUT_TABLES, (result.events, result.steps, positions, accounts, outcomes)))
    return tables, digest


def _arrow(frame: pd.DataFrame):
    """An Arrow table of a result frame with one schema for every variant: categoricals as
    dictionary<int32, string>, text as strings, mixed-type object columns (account ids,
    None legs) as strings."""
    import pyarrow as pa

    arrays = []
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.int32)
            arrays.append(pa.DictionaryArray.from_arrays(
                pa.array(codes, mask=codes < 0), pa.array([str(c) for c in s.cat.categories], pa.string())))
            continue
        if s.dtype == object or str(s.dtype) == "str":
            try:
                arrays.append(pa.array(s, type=pa.string(), from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: spell each value
                arrays.append(pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                                        for v in s.tolist()], pa.string()))
            continue
        arrays.append(pa.array(s.to_numpy()))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.copy()
    for col in frame.columns:  # mixed-type object columns (account ids, None legs) as strings
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                                        else str(v))
    frame.to_parquet(path, index=False)


def scenarios_dir() -> Path:
    """The scenarios shipped with riskcore."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_scenarios", here.parent / "scenarios"):
        if candidate.is_dir():
            return candidate
    return data_dir().parent / "scenarios"


def default_scenario() -> Path:
    return scenarios_dir() / "default.toml"
