"""Both engines on every venue profile (issue 12): the numba kernels against the reference engine
on random books, paths, tapes and funding (hypothesis, bounded), each contract under a venue
profile; and money conserved under each profile.

The shipped profiles' partial liquidations need tiers (Bybit, OKX) or a position above 100,000
(Hyperliquid's slices), which the small random books reach only through their tiers; three test
profiles registered here slice above 500 and mix the switches otherwise unseen together
(fee to close with a fee rate of its own and pro-rata ADL; slices with a backstop; OKX's
straight-to-the-first-tier step from tier 2 with a takeover and ADL by profit).
Examples per profile: ``RISKCORE_VENUE_EXAMPLES`` (default 30).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import CONTRACTS, book_specs, build_book, build_funding, build_paths, build_tape, funding_specs, \
    path_specs, tape_specs
from test_kernel_differential import assert_same, both

from riskcore import simulate
from riskcore.enums import LEG_NAMES, Leg, MarginMode
from riskcore.venues import profiles as vp

TEST_PROFILES = (
    vp.Profile("test-slices", "test", mm_rule="half_im", liquidation="slices", slice_above=500.0,
               slice_fraction=0.2, backstop=2.0 / 3.0, liquidation_fee=0.0),
    vp.Profile("test-tiers", "test", mm_fee_to_close=True, liquidation="tiers", liquidation_fee=0.01,
               adl_policy="pro-rata"),
    vp.Profile("test-first-tier", "test", liquidation="first_tier", takeover=True, liquidation_fee="taker",
               adl_policy="pnl"),
)
for _p in TEST_PROFILES:
    if _p.name not in vp.PROFILES:
        vp.register(_p)

VENUES = list(vp.VENUE_NAMES) + [p.name for p in TEST_PROFILES]
EXAMPLES = int(os.environ.get("RISKCORE_VENUE_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
models = st.sampled_from(["close", "ohlc", "worst"])
funds = st.sampled_from([0.0, 0.0, 5.0, 1e6])
bases = st.sampled_from(["mark", "entry"])


@pytest.mark.parametrize("venue", VENUES)
@SETTINGS
@given(book_specs, path_specs, tape_specs, funding_specs, models, funds, bases)
def test_engines_agree_under_each_profile(venue, specs, path_spec, tape_spec, funding_spec, model, fund, basis):
    book = build_book(specs, venues={s: venue for s in CONTRACTS})
    ref, got = both(book, build_paths(path_spec), build_tape(tape_spec, book), build_funding(funding_spec),
                    model, fund, basis)
    assert_same(ref, got)


@SETTINGS
@given(book_specs, path_specs, funding_specs, models, funds, bases, st.sampled_from(VENUES),
       st.sampled_from(VENUES), st.booleans())
def test_engines_agree_with_mixed_profiles(specs, path_spec, funding_spec, model, fund, basis, btc, eth, sleep):
    """Each contract under its own profile (a cross book mixing them), with and without sleeping."""
    book = build_book(specs, venues={"BTCUSDT": btc, "ETHUSDT": eth})
    ref, got = both(book, build_paths(path_spec), None, build_funding(funding_spec), model, fund, basis, sleep=sleep)
    assert_same(ref, got)


@pytest.mark.parametrize("venue", VENUES)
@SETTINGS
@given(book_specs, path_specs, tape_specs, funding_specs, models, funds, bases)
def test_money_is_conserved_under_each_profile(venue, specs, path_spec, tape_spec, funding_spec, model, fund,
                                               basis):
    """Section 6: wallets + isolated wallets + fund + fees change only by realized PnL, funding,
    deposits and socialised loss, whatever the profile closes and whoever keeps the margin; the
    fund never goes below zero; every isolated position left open is short of its liquidation
    price at the last close (a partial liquidation leaves it safe)."""
    book = build_book(specs, venues={s: venue for s in CONTRACTS})
    paths = build_paths(path_spec)
    result = simulate(book, paths, liquidation_fee_rate=0.01, insurance_fund=fund, liquidation_slippage=0.002,
                      tape=build_tape(tape_spec, book), funding=build_funding(funding_spec), intrabar=model,
                      mm_basis=basis, engine="reference")
    scale = 1.0 + abs(result.ledger["money_start"]) + abs(result.ledger["realized_pnl"])
    assert abs(result.money_check()) <= 1e-9 * scale
    assert (result.steps["insurance_fund"] >= 0.0).all()
    flows = result.steps
    covered = flows["insurance_paid"] + flows["adl_recovered"] + flows["socialised_loss"]
    assert ((flows["bad_debt"] - covered).abs() <= 1e-9 * scale).all()
    final = result.book
    for acct in final.accounts.values():
        for (symbol, leg), pos in acct.positions.items():
            if acct.settings[symbol].margin_mode != MarginMode.ISOLATED:
                continue
            lp = final.liquidation_price(acct.account_id, symbol, leg=None if leg == Leg.BOTH else LEG_NAMES[leg],
                                         mm_basis=basis)
            close = float(paths[symbol]["close"].iloc[-1])
            assert not (close <= lp if pos.side > 0 else close >= lp), (venue, acct.account_id, symbol, lp, close)
