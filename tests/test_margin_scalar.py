"""The scalar isolated liquidation price used in the simulators' loops equals the array one exactly."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from riskcore import Brackets, margin as m


@pytest.mark.parametrize("basis", ["mark", "entry"])
def test_scalar_equals_vectorized_on_many_positions(basis):
    brackets = Brackets.load("BTCUSDT", "2024-10-31")
    rng = np.random.default_rng(0)
    n = 5_000
    side = rng.choice([1, -1], n)
    qty = rng.uniform(0.001, 500, n)
    entry = rng.uniform(1_000, 100_000, n)
    wallet = rng.uniform(0, 2, n) * qty * entry / rng.choice([1, 5, 20, 100], n)
    vec = m.isolated_liquidation_price(side, qty, entry, wallet, brackets, mm_basis=basis)
    one = np.array([m.isolated_liquidation_price_one(int(s), float(q), float(e), float(w), brackets, basis)
                    for s, q, e, w in zip(side, qty, entry, wallet)])
    assert np.array_equal(np.isnan(vec), np.isnan(one))
    assert np.array_equal(vec[~np.isnan(vec)], one[~np.isnan(one)])  # bit for bit


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, -1]), st.floats(0.0, 1e3), st.floats(1.0, 1e5), st.floats(0.0, 1e7),
       st.sampled_from(["mark", "entry"]))
def test_scalar_equals_vectorized_property(side, qty, entry, wallet, basis):
    brackets = Brackets.load("ETHUSDT")
    vec = m.isolated_liquidation_price(side, qty, entry, wallet, brackets, mm_basis=basis)
    one = m.isolated_liquidation_price_one(side, qty, entry, wallet, brackets, basis)
    assert (np.isnan(vec) and np.isnan(one)) or vec == one
