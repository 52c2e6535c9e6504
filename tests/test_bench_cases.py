"""The benchmark registry drives a differential test (numbagg's pattern: one table of cases
for the tests and the benchmarks).

Every case of ``benchmarks/cases.py`` -- every variant of the ``riskcore run`` cases -- runs
at its small size (``cases.small``: the same generator, flags and seed) through
``simulate(..., engine="numba")`` and ``simulate(..., engine="reference")``; events must
agree exactly and money within 1e-9 relative (``assert_same`` of the kernel differential
tests).  The benchmarks time the same generators at full size, so what they time is what
this checks.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from test_kernel_differential import assert_same

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmarks/ ships with the source tree, not the package

from benchmarks import cases  # noqa: E402

from riskcore import simulate  # noqa: E402


def _small_runs() -> list:
    """(name, variant) of every case's small version, each distinct small run once."""
    seen, out = set(), []
    for name, case in cases.CASES.items():
        tiny = cases.small(case)
        for variant in range(case.variants if case.kind == "run" else 1):
            key = (dataclasses.replace(tiny, name="", variants=0, quick=False, on_request=False, sol=False,
                                       numpy_bars=0, dense=False), variant)
            if key not in seen:
                seen.add(key)
                out.append(pytest.param(name, variant, id=f"{name}-{variant}"))
    return out


@pytest.mark.parametrize("name, variant", _small_runs())
def test_small_case_matches_the_reference(name, variant):
    case = cases.small(cases.CASES[name])
    table, paths, params = cases.make_table(case, variant), cases.make_paths(case), cases.params(case, variant)
    ref = simulate(table, paths, engine="reference", **params)
    got = simulate(table, paths, engine="numba", **params)
    assert_same(ref, got)
    assert (got.events["kind"] == "liquidation").any()  # the case reaches the margin rules, not only the marks


def test_the_generators_are_seeded():
    case = cases.small(cases.CASES["main_1M_x_1440"])
    assert cases.make_table(case) == cases.make_table(case)
    a, b = cases.make_paths(case), cases.make_paths(case)
    assert all(a[s].equals(b[s]) for s in a)
    other = cases.make_table(dataclasses.replace(case, seed=case.seed + 1))
    assert not other.positions["qty"].equals(cases.make_table(case).positions["qty"])


def test_small_keeps_the_shape_of_its_case():
    for case in cases.CASES.values():
        tiny = cases.small(case)
        assert (tiny.kind, tiny.positions_per_account, tiny.contracts, tiny.seed, tiny.variants) == \
            (case.kind, case.positions_per_account, case.contracts, case.seed, case.variants)
        assert tiny.positions <= 240
        table, paths = cases.make_table(tiny), cases.make_paths(tiny)
        assert table.n_positions == tiny.positions and len(next(iter(paths.values()))) <= 60
