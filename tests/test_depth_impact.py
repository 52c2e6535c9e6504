"""Market impact from a depth table, and depth that thins out in stress (riskcore.impact).

The walk through a book computed by hand; hand-worked fills and a cascade round in both
engines (the book and path of ``test_impact.py``); both engines against each other on
random books with depth tables (hypothesis, bounded), sleeping accounts exact; the
scenario TOML; the errors a user gets."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from strategies import book_specs, build_book, build_funding, build_paths, funding_specs, path_specs
from test_impact import ENGINES, _ref_and_numba, gap_path, three_longs
from test_kernel_differential import SETTINGS, assert_same, seeded_book

from riskcore import simulate
from riskcore.scenarios import impact_models, load_scenario
from riskcore.impact import MAX_IMPACT, Impact, ImpactError, depth_walk
from riskcore.inputs import InputError, PricePaths
from riskcore.kernels import run_numba

BOOK = ((0.001, 1e6), (0.005, 5e6))  # 1M within 0.1% of the price, 5M within 0.5%


def walk(q, book=BOOK, g=1.0):
    dist = [d for d, _ in book]
    cum = [n for _, n in book]
    return depth_walk(q, dist, cum, len(book), g)


def test_walking_the_book_by_hand():
    # within the first level: the distance grows linearly from 0 to 0.001 over the first 1M
    assert walk(5e5) == pytest.approx((0.0005, 0.00025), rel=1e-12)
    # 3M: the first 1M averages 0.0005 (area 500); then 0.001 + (0.004 / 4M) * 2M = 0.003,
    # the next 2M averaging 0.002 (area 4,000): average 4,500 / 3M = 0.0015
    assert walk(3e6) == pytest.approx((0.003, 0.0015), rel=1e-12)
    # 7M: beyond the last level along the last stretch's slope (1e-9 per USDT): 0.007;
    # areas 500 + 12,000 + 0.5 * (0.005 + 0.007) * 2M = 24,500: average 0.0035
    assert walk(7e6) == pytest.approx((0.007, 0.0035), rel=1e-12)
    # half the depth: 5e5 now reaches the first level
    assert walk(5e5, g=0.5) == pytest.approx((0.001, 0.0005), rel=1e-12)
    assert walk(0.0) == (0.0, 0.0)
    assert walk(1e30) == (MAX_IMPACT, MAX_IMPACT)


# a and b of three_longs() gap to 17,000 and sell 34,000 into this book: 17,000 within 0.1%,
# then 0.009 more over the next 153,000: 34,000 reaches 0.001 + 0.009 * 17,000 / 153,000 = 0.002,
# averaging (0.5 * 0.001 * 17,000 + 0.5 * (0.001 + 0.002) * 17,000) / 34,000 = 0.001
DEPTH = dict(depth=[[0.001, 17_000.0], [0.01, 170_000.0]])


@pytest.mark.parametrize("engine", ENGINES)
def test_fills_take_the_average_distance_walked(engine):
    r = simulate(three_longs(), gap_path(), liquidation_fee_rate=0.0, engine=engine,
                 impact=dict(DEPTH, feedback=False))
    liq = r.events[r.events["kind"] == "liquidation"]
    assert liq["account"].tolist() == ["a", "b"]
    assert liq["price"].tolist() == pytest.approx([17_000 * 0.999] * 2, rel=1e-12)
    assert r.book.contracts["BTCUSDT"].mark_price == 17_000.0


@pytest.mark.parametrize("thinning", [0.0, 100.0])
@pytest.mark.parametrize("engine", ENGINES)
def test_the_mark_moves_to_where_the_walk_reached_and_the_book_thins(engine, thinning):
    r = simulate(three_longs(), gap_path(), liquidation_fee_rate=0.0, engine=engine,
                 impact=dict(DEPTH, feedback=True, permanent=1.0, thinning=thinning))
    liq = r.events[r.events["kind"] == "liquidation"]
    # round 0: the mark moves to 17,000 * (1 - 0.002) = 16,966, through c's LP (16,998);
    # round 1: c sells 16,998 at its LP into a book thinned to g = max(0.05, 1 - thinning * 0.002)
    g = max(0.05, 1 - thinning * 0.002)
    x1 = 17_000 * g
    if 16_998 <= x1:
        reached = 0.001 * 16_998 / x1
        area = 0.5 * reached * 16_998
    else:  # g = 0.8: 13,600 within 0.1%, then 0.009 over the next 136,000 - 13,600
        reached = 0.001 + 0.009 / (170_000 * g - x1) * (16_998 - x1)
        area = 0.5 * 0.001 * x1 + 0.5 * (0.001 + reached) * (16_998 - x1)
    average = area / 16_998
    assert liq["account"].tolist() == ["a", "b", "c"]
    assert liq["round"].tolist() == [0, 0, 1]
    assert liq["price"].tolist() == pytest.approx([16_983.0, 16_983.0, 16_998 * (1 - average)], rel=1e-12)
    assert r.book.contracts["BTCUSDT"].mark_price == pytest.approx(17_000 * (1 - 0.002 - reached), rel=1e-12)


def test_thinning_makes_the_same_flow_cost_more():
    kw = dict(liquidation_fee_rate=0.0, engine="numba")
    calm, thin = (simulate(three_longs(), gap_path(), impact=dict(DEPTH, permanent=1.0, thinning=x), **kw)
                  for x in (0.0, 100.0))
    price = {name: r.events[r.events["kind"] == "liquidation"]["price"].tolist()[-1] for name, r in
             (("calm", calm), ("thin", thin))}
    assert price["thin"] < price["calm"]


# ------------------------------------------------------- the engines agree with depth tables
depths = st.builds(lambda n1, n2, feedback, permanent, half_life, thinning: dict(
    depth=[[0.001, n1], [0.02, n1 + n2]], feedback=feedback, permanent=permanent, half_life=half_life,
    thinning=thinning),
    st.sampled_from([10.0, 1e3, 1e5]), st.sampled_from([1e2, 1e4, 1e6]), st.booleans(),
    st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 2.0]), st.sampled_from([0.0, 5.0, 200.0]))


@settings(SETTINGS, max_examples=100)
@given(book_specs, path_specs, funding_specs, st.sampled_from(["close", "ohlc", "worst"]),
       st.sampled_from([0.0, 5.0, 1e6]), depths, st.integers(1, 4))
def test_random_books_with_depth_tables_match_the_reference(specs, path_spec, funding_spec, model, fund, impact,
                                                            rounds):
    ref, got = _ref_and_numba(build_book(specs), build_paths(path_spec), build_funding(funding_spec), model, fund,
                              impact, rounds)
    assert_same(ref, got)


@pytest.mark.parametrize("seed", range(4))
def test_seeded_books_with_depth_tables_match_and_sleep_exactly(seed):
    book, paths, funding = seeded_book(seed, 40)
    model = ["close", "ohlc", "worst"][seed % 3]
    impact = dict(depth=[[0.002, 2e3], [0.02, 5e4]], permanent=0.5, half_life=3.0, thinning=20.0)
    ref, got = _ref_and_numba(book, paths, funding, model, 0.0, impact, block=7)
    assert (got.events["round"] > 0).any() or seed % 3 == 0  # cascades happen (but not always under close)
    assert_same(ref, got)
    pp = PricePaths.from_frames(paths)
    from riskcore.inputs import funding_by_step

    awake = run_numba(book, pp, funding_by_step(funding, pp), None, liquidation_fee_rate=0.01,
                      liquidation_slippage=0.002, intrabar=model, block=7, sleep=False,
                      impact={s: Impact(**impact) for s in pp.contracts})
    assert got.events.equals(awake.events) and got.steps.equals(awake.steps)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("impact, message", [
    (dict(depth=[[0.001, 1e6]], sigma=0.02), r"either a depth table or sigma"),
    (dict(depth=[]), r"depth must be a list of \[distance, notional\] levels"),
    (dict(depth=[[0.001, 1e6], [0.001, 2e6]]), r"depth\[1\] = \[0.001, 2000000.0\]: distances and notionals must "
                                               r"both increase"),
    (dict(depth=[[0.01, 1e6], [0.02, 5e5]]), r"depth\[1\].*both increase"),
    (dict(depth=[[0.0, 1e6]]), r"depth\[0\]: the distance 0.0 must be a fraction above 0"),
    (dict(depth=[[0.6, 1e6]]), r"depth\[0\]: the distance 0.6"),
    (dict(depth=[[0.01, -5.0]]), r"depth\[0\]: the notional -5.0 must be above 0"),
    (dict(depth=[[0.01]]), r"depth\[0\] must be a pair"),
    (dict(depth=[[0.01, 1e6]], thinning=-1), r"thinning must be a number >= 0"),
    ({"BTCUSDT": dict(depth=[[0.01, "x"]])}, r"impact\.BTCUSDT\.depth\[0\] must be a pair"),
])
def test_bad_depth_tables_are_refused_naming_the_level(impact, message):
    with pytest.raises(InputError, match=message):
        simulate(three_longs(), gap_path(), liquidation_fee_rate=0.0, impact=impact)


def test_a_depth_table_with_partial_liquidation_is_refused():
    from riskcore import BookTable

    frames = three_longs().to_table().frames()
    frames["contracts"] = frames["contracts"].assign(venue="bybit")
    with pytest.raises(InputError, match="market impact with partial liquidation is not supported"):
        simulate(BookTable.from_frames(frames), gap_path(), liquidation_fee_rate=0.0, impact=DEPTH)


def test_depth_table_dataclass():
    spec = Impact(depth=[[0.001, 1e6], [0.01, 1e7]], thinning=3)
    assert spec.depth == ((0.001, 1e6), (0.01, 1e7)) and spec.coef == 0.0 and spec.active
    hash(spec)  # frozen and hashable, as a scenario's models are compared
    with pytest.raises(ImpactError, match="sigma is missing"):
        Impact()


def test_a_depth_table_in_a_scenario(tmp_path):
    from test_scenarios import SMALL, write

    table = ("[market.contracts.BTCUSDT.impact]\ndepth = [[0.001, 5e4], [0.02, 2e6]]\nthinning = 10\n"
             "permanent = 1.0\n")
    text = SMALL.replace("start_price = 60000.0\n", "start_price = 60000.0\n" + table)
    scenario = load_scenario(write(tmp_path, text))
    models = impact_models(scenario.variants[0][1])
    assert models == {"BTCUSDT": Impact(depth=((0.001, 5e4), (0.02, 2e6)), thinning=10, permanent=1.0)}
    out = tmp_path / "out"
    from riskcore.cli import main

    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    assert 'id="cascades"' in (out / "report.html").read_text()
