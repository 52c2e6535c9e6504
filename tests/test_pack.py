"""riskcore.kernels.pack: the final table built over the kernel's own arrays."""
from __future__ import annotations

import numpy as np
import pytest

import riskcore.kernels.pack as pack


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 0.95, 1.0])
def test_compacted_is_the_kept_values_in_order(monkeypatch, chunk, share):
    monkeypatch.setattr(pack, "_COMPACT_CHUNK", chunk)
    rng = np.random.default_rng(7)
    for dtype in (np.float64, np.int8, np.int32, np.int64):
        values = (rng.random(50) * 100).astype(dtype)
        keep = rng.random(50) < share
        expected = values[keep].copy()
        out = pack._compacted(values, keep, int(keep.sum()))
        assert out.dtype == dtype and np.array_equal(out, expected)
        # most kept: a view of the array's own front; most dropped: a copy of just those
        assert np.shares_memory(out, values) == (2 * keep.sum() >= values.size)


def test_is_range():
    assert pack._is_range(np.arange(5))
    assert pack._is_range(np.arange(0))
    assert not pack._is_range(np.array([0, 2, 2]))
    assert not pack._is_range(np.array([1, 2, 3]))
    assert not pack._is_range(np.array([0, 2, 1, 3]))
    assert not pack._is_range(np.array(["0", "1"], dtype=object))


def test_simulate_leaves_the_input_table_as_it_was_and_the_final_table_owns_its_rows():
    """The kernel's arrays become the final table's columns (some positions liquidated, so
    the live ones were moved to the front); the input table is not touched."""
    import pandas as pd

    from benchmarks import cases
    from riskcore import simulate

    case = cases.small(cases.CASES["main_1M_x_1440"])
    table, paths = cases.make_table(case), cases.make_paths(case)
    before = {name: frame.copy(deep=True) for name, frame in table.frames().items()}
    result = simulate(table, paths, **cases.params(case))
    for name, frame in table.frames().items():
        pd.testing.assert_frame_equal(frame, before[name])
    final = result.final.positions
    assert 0 < len(final) < len(before["positions"])  # some closed: the live rows were moved up
    oracle = simulate(table, paths, engine="reference", **cases.params(case)).final.positions
    pd.testing.assert_frame_equal(final.reset_index(drop=True), oracle.reset_index(drop=True), check_exact=True)
