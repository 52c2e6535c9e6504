"""Each venue's liquidation price is where its own maintenance condition binds, and its
bankruptcy price where equity is zero (bounded hypothesis strategies)."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from riskcore import venues
from riskcore.venues import bybit, dydx, hyperliquid, okx

sides = st.sampled_from([1, -1])
qtys = st.floats(0.001, 1_000.0)
prices = st.floats(1.0, 200_000.0)
leverages = st.integers(1, 20)
settings_ = settings(max_examples=200, deadline=None)


@settings_
@given(side=sides, qty=qtys, entry=prices, lev=leverages, extra=st.floats(0.0, 1e6))
def test_bybit_lp_is_where_entry_basis_mm_binds(side, qty, entry, lev, extra):
    lp = bybit.isolated_liquidation_price(side, qty, entry, lev, 0.005, extra_margin=extra)
    wallet = qty * entry / lev + extra
    if math.isnan(lp):
        assert side == 1 and wallet - qty * entry * 0.005 >= qty * entry * (1 - 1e-12)
    else:
        equity = wallet + side * qty * (lp - entry)
        assert math.isclose(equity, qty * entry * 0.005, rel_tol=1e-9, abs_tol=1e-6 * qty * entry)


@settings_
@given(side=sides, qty=qtys, entry=prices, lev=leverages, taker=st.floats(0.0, 0.001))
def test_okx_lp_is_where_mm_plus_fee_binds(side, qty, entry, lev, taker):
    m = qty * entry / lev
    lp = okx.isolated_liquidation_price(side, qty, entry, m, 0.004, taker_fee=taker)
    if not math.isnan(lp):
        equity = m + side * qty * (lp - entry)
        assert math.isclose(equity, okx.maintenance_margin(qty, lp, 0.004, taker_fee=taker), rel_tol=1e-9,
                            abs_tol=1e-6 * qty * entry)
        assert math.isclose(okx.bankruptcy_price(side, qty, entry, m), entry - side * m / qty, rel_tol=1e-12)


@settings_
@given(side=sides, qty=st.floats(0.001, 5_000.0), entry=st.floats(1_000.0, 200_000.0), lev=st.integers(1, 40))
def test_hyperliquid_lp_is_where_tiered_mm_binds(side, qty, entry, lev):
    btc = venues.load("hyperliquid", "BTC")
    m = qty * entry / lev
    lp = hyperliquid.isolated_liquidation_price(side, qty, entry, m, btc)
    if not math.isnan(lp):
        equity = m + side * qty * (lp - entry)
        assert math.isclose(equity, float(btc.maintenance_margin(qty * lp)), rel_tol=1e-9,
                            abs_tol=1e-6 * qty * entry)


@settings_
@given(size=st.floats(0.001, 1_000.0), short=st.booleans(), entry=prices, lev=st.integers(1, 20))
def test_dydx_lp_and_bp(size, short, entry, lev):
    s = -size if short else size
    equity = size * entry / lev
    lp = dydx.isolated_liquidation_price(s, entry, equity, 0.03)
    if not math.isnan(lp):
        value = equity + s * (lp - entry)
        assert math.isclose(value, dydx.maintenance_margin(s, lp, 0.03), rel_tol=1e-9, abs_tol=1e-6 * size * entry)
    bp = dydx.bankruptcy_price(s, entry, equity)
    if not math.isnan(bp):
        assert abs(equity + s * (bp - entry)) <= 1e-9 * size * entry
