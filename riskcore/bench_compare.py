"""Compare two benchmark results (the JSON ``riskcore bench`` writes) and name every regression.

``riskcore bench --compare BASELINE.json --results NEW.json [--tolerance 10%]`` compares two
files already written; ``riskcore bench --compare BASELINE.json`` runs the benchmarks first
and compares what they wrote.  A metric regresses when the new value is more than the
tolerance above the baseline's (every metric compared is a time or a memory figure: lower is
better), and by more than ``min_seconds`` for a time, so that the noise of a short case is
not a regression.  A case whose size differs between the two files (accounts, positions,
bars, variants) is not compared, and said so.  The JSON's layout: docs/kernel.md, "The
benchmark JSON".
"""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

#: the layout of the JSON; a file without "schema" is of the first layout (the same keys)
SCHEMA = 1

#: metrics compared, by kind of case: (key, unit)
METRICS = {
    "simulate": (("simulate_seconds", "s"), ("kernel_seconds", "s"), ("dense_seconds", "s"),
                 ("simulate_peak_over_inputs", "x")),
    "run": (("wall_seconds", "s"), ("kernel_seconds", "s"), ("peak_rss_bytes", "B")),
}
COMPILE_METRICS = (("cold_compile", "warmup_seconds"), ("cached_start", "warmup_seconds"))
#: what must be equal for a case's timings to be compared
SIZE_KEYS = ("accounts", "positions", "steps", "variants", "contracts")


def machine_info() -> dict:
    """The machine a benchmark ran on (the JSON's ``machine``)."""
    def meminfo_bytes() -> int | None:
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemTotal:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def cpu_model() -> str:
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()

    def os_name() -> str:
        try:
            with open("/etc/os-release") as fh:
                for line in fh:
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return platform.system()

    import numba
    import numpy
    import pandas

    from . import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(), "cpus": os.cpu_count(), "cpus_usable": usable, "memory_bytes": meminfo_bytes(),
        "os": os_name(), "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "python": platform.python_version(), "numba": numba.__version__,
        "numpy": numpy.__version__, "pandas": pandas.__version__, "riskcore": __version__,
        "threads": numba.config.NUMBA_NUM_THREADS, "threading_layer_env": numba.config.THREADING_LAYER,
    }


class BenchFileError(ValueError):
    """A benchmark JSON cannot be read or is not one; the message names the file."""


def parse_tolerance(text: str) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"--tolerance {text!r}: expected a percentage (10%) or a fraction (0.1)") from None
    if not raw.endswith("%") and value >= 1:
        raise ValueError(f"--tolerance {text!r}: a fraction below 1 (0.1), or a percentage with % (10%)")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--tolerance {text!r}: must be 0 or more")
    return value


def load(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchFileError(f"{path}: no such benchmark file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchFileError(f"{path}: not a benchmark JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise BenchFileError(f"{path}: not a benchmark JSON (no \"cases\" table)")
    if data.get("schema", 1) > SCHEMA:
        raise BenchFileError(f"{path}: written by a newer riskcore (schema {data['schema']}; this one reads "
                             f"{SCHEMA})")
    return data


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare(baseline: dict, new: dict, tolerance: float = 0.10, min_seconds: float = 0.05) -> dict:
    """Every metric both files have, with its verdict.

    Returns ``{"rows": [...], "regressions": [...], "skipped": [...]}``: a row is
    ``(case, metric, unit, baseline, new, change)``, ``change`` = new / baseline - 1; a
    regression is a row whose change is above ``tolerance`` (and, for a time, whose
    difference is above ``min_seconds``); ``skipped`` says why a case was not compared."""
    rows, regressions, skipped = [], [], []

    def check(case, metric, unit, old, now):
        old, now = _num(old), _num(now)
        if old is None or now is None:
            return
        change = now / old - 1 if old > 0 else (0.0 if now == old else math.inf)
        row = (case, metric, unit, old, now, change)
        rows.append(row)
        if change > tolerance and not (unit == "s" and now - old <= min_seconds):
            regressions.append(row)

    for name, old in baseline["cases"].items():
        now = new["cases"].get(name)
        if now is None:
            skipped.append(f"{name}: in the baseline only")
            continue
        kind = old.get("kind", "simulate")
        differ = [k for k in SIZE_KEYS if old.get(k) != now.get(k)]
        if kind != now.get("kind", "simulate") or differ:
            what = ", ".join(f"{k} {old.get(k)!r} -> {now.get(k)!r}" for k in differ) or "its kind differs"
            skipped.append(f"{name}: not the same case ({what})")
            continue
        for metric, unit in METRICS.get(kind, ()):
            check(name, metric, unit, old.get(metric), now.get(metric))
    skipped += [f"{name}: in the new results only" for name in new["cases"] if name not in baseline["cases"]]
    for step, metric in COMPILE_METRICS:
        old, now = (baseline.get("compile") or {}).get(step), (new.get("compile") or {}).get(step)
        if old and now:
            check(f"compile: {step}", metric, "s", old.get(metric), now.get(metric))
    return {"rows": rows, "regressions": regressions, "skipped": skipped}


def _value(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 1e9:,.2f} GB"
    if unit == "x":
        return f"{value:,.2f}x"
    return f"{value:,.2f} s"


def _machines(baseline: dict, new: dict) -> list[str]:
    keys = ("cpu_model", "cpus", "memory_bytes", "os", "python", "numba", "numpy", "threads")
    a, b = baseline.get("machine") or {}, new.get("machine") or {}
    differ = [k for k in keys if k in a and k in b and a[k] != b[k]]
    missing = [k for k in keys if k not in a or k not in b]
    out = []
    if differ:
        out.append("note: the machines differ (" + "; ".join(f"{k}: {a[k]} -> {b[k]}" for k in differ)
                   + "): timings may not be comparable")
    if missing:
        out.append(f"note: not recorded in both files: {', '.join(missing)}")
    for label, data in (("baseline", baseline), ("new results", new)):
        busy = sorted(n for n, c in data["cases"].items() if (_num(c.get("other_cpus")) or 0.0) > 0.2)
        if busy:
            out.append(f"note: in the {label}, other processes kept the machine busy during {', '.join(busy)}: "
                       "those timings are not meaningful")
    return out


def report(result: dict, tolerance: float, baseline_name: str, new_name: str,
           baseline: dict | None = None, new: dict | None = None) -> str:
    """The comparison as text, at most ~100 characters wide; regressions named one per line."""
    import pandas as pd

    lines = [f"benchmarks: {new_name} against the baseline {baseline_name} (tolerance {tolerance:.0%}; "
             "times and memory, lower is better)"]
    if baseline is not None and new is not None:
        lines += _machines(baseline, new)
    bad = {(r[0], r[1]) for r in result["regressions"]}
    if result["rows"]:
        frame = pd.DataFrame([{"case": c, "metric": m, "baseline": _value(o, u), "new": _value(n, u),
                               "change": f"{ch:+.1%}" if math.isfinite(ch) else "new",
                               "": "REGRESSION" if (c, m) in bad else "ok"}
                              for c, m, u, o, n, ch in result["rows"]])
        lines += ["", frame.to_string(index=False)]
    lines += [f"not compared: {s}" for s in result["skipped"]]
    if not result["rows"]:
        lines.append("no metric in common: nothing was compared")
    lines.append("")
    for c, m, u, o, n, ch in result["regressions"]:
        lines.append(f"REGRESSION: {c}: {m} {_value(o, u)} -> {_value(n, u)} ({ch:+.1%}, more than {tolerance:.0%})")
    if not result["regressions"]:
        lines.append(f"no regression: {len(result['rows'])} metric(s) of {len({r[0] for r in result['rows']})} "
                     f"case(s) within {tolerance:.0%}")
    return "\n".join(lines)
