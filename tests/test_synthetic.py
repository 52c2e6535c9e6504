"""Tests of riskcore.synthetic: GBM/jump paths, injected wicks and block-bootstrapped paths.

Every path must be valid simulator input (``PricePaths.from_frames`` accepts it), be
reproducible from its seed, and have the statistics it was asked for within loose
bounds.  The bootstrap is also run on real Binance bars from ``../shared/data`` when
that folder is present.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskcore import PricePaths
from riskcore.synthetic import bootstrap_paths, gbm_paths, inject_wick

MINUTES_PER_YEAR = 365 * 24 * 60
BTC_1M = "BTCUSDT_PERP_1m_20250525T1033_20250624T1031_last_ccxt_baseline.csv.gz"
ETH_1M = "ETHUSDT_PERP_1m_20250525T1033_20250624T1032_last_ccxt_baseline.csv.gz"


def assert_valid(paths: dict, n_steps: int, start="2025-01-01", interval="1min") -> None:
    """OHLC consistency, positive prices, continuity, one shared timeline of the right length."""
    PricePaths.from_frames(paths)  # the simulators' own validation
    expected = pd.date_range(pd.Timestamp(start), periods=n_steps, freq=pd.Timedelta(interval)).to_numpy()
    for symbol, frame in paths.items():
        assert list(frame.columns) == ["timestamp", "open", "high", "low", "close"], symbol
        assert len(frame) == n_steps
        np.testing.assert_array_equal(frame["timestamp"].to_numpy(), expected)
        o, h, l, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
        assert np.all(np.isfinite(frame[["open", "high", "low", "close"]].to_numpy()))
        assert np.all(l > 0)
        assert np.all(h >= np.maximum(o, c)) and np.all(l <= np.minimum(o, c))
        np.testing.assert_array_equal(o[1:], c[:-1])  # each bar opens at the previous close


def log_returns(frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(frame["close"].to_numpy()))


def assert_frames_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])


# ----------------------------------------------------------------------------- GBM
def test_gbm_is_deterministic_by_seed():
    kw = dict(vol=0.8, correlation=0.5, jump_rate=1000.0, jump_mean=-0.01, jump_std=0.02)
    a = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 2_000, seed=7, **kw)
    b = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 2_000, seed=7, **kw)
    c = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 2_000, seed=8, **kw)
    assert_frames_equal(a, b)
    assert not np.allclose(a["BTCUSDT"]["close"], c["BTCUSDT"]["close"])


def test_gbm_paths_are_valid_on_one_timeline():
    paths = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}, 3_000, interval="5min",
                      start="2024-03-01 12:00", vol=[0.5, 0.8, 1.2], jump_rate=2_000.0, jump_mean=-0.02,
                      jump_std=0.03, seed=1)
    assert_valid(paths, 3_000, start="2024-03-01 12:00", interval="5min")
    assert [p["open"].iloc[0] for p in paths.values()] == [60_000.0, 3_000.0, 150.0]
    # Intrabar extremes come from sub-steps: most bars have a range wider than |open - close|.
    f = paths["ETHUSDT"]
    wider = (f["high"] - f["low"]) > (f["close"] - f["open"]).abs() * (1 + 1e-9)
    assert wider.mean() > 0.9
    # One sub-step per bar: high and low are just max/min of open and close.
    one = gbm_paths({"X": 10.0}, 500, substeps=1, seed=3)["X"]
    np.testing.assert_array_equal(one["high"], np.maximum(one["open"], one["close"]))
    np.testing.assert_array_equal(one["low"], np.minimum(one["open"], one["close"]))


def test_gbm_start_accepts_a_time_zone():
    paths = gbm_paths({"X": 1.0}, 10, start=pd.Timestamp("2025-06-01 02:00", tz="Europe/Berlin"), seed=1)
    assert paths["X"]["timestamp"].iloc[0] == pd.Timestamp("2025-06-01 00:00")


def test_gbm_realised_vol_and_correlation_match_the_request():
    vols = {"BTCUSDT": 0.5, "ETHUSDT": 0.9}
    paths = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 30_000, vol=vols, correlation=0.7,
                      substeps=4, seed=3)
    r = {s: log_returns(f) for s, f in paths.items()}
    for s, vol in vols.items():
        realised = r[s].std() * math.sqrt(MINUTES_PER_YEAR)
        assert realised == pytest.approx(vol, rel=0.2)
        assert realised == pytest.approx(vol, rel=0.03)  # about 7 standard errors with 30k bars
    assert np.corrcoef(r["BTCUSDT"], r["ETHUSDT"])[0, 1] == pytest.approx(0.7, abs=0.05)


def test_gbm_correlation_matrix_and_perfect_correlation():
    corr = [[1.0, -0.6, 0.2], [-0.6, 1.0, 0.0], [0.2, 0.0, 1.0]]
    paths = gbm_paths({"A": 1.0, "B": 1.0, "C": 1.0}, 20_000, vol=1.0, correlation=corr, substeps=2, seed=5)
    r = np.array([log_returns(f) for f in paths.values()])
    np.testing.assert_allclose(np.corrcoef(r), corr, atol=0.05)
    same = gbm_paths({"A": 100.0, "B": 100.0}, 500, vol=0.7, correlation=1.0, seed=5)
    np.testing.assert_allclose(same["A"]["close"], same["B"]["close"], rtol=1e-9)


def test_gbm_drift_moves_the_log_price():
    # Zero vol: the log price grows by (drift - vol^2/2) per year exactly.
    paths = gbm_paths({"X": 100.0}, 1_440, vol=0.0, drift=0.365, seed=1)["X"]
    # 1,440 one-minute bars = 1 day = 1/365 year: log growth 0.365 / 365 = 0.001.
    assert math.log(paths["close"].iloc[-1] / 100.0) == pytest.approx(0.001, rel=1e-9)


def test_gbm_jumps_add_the_expected_variance_and_common_jumps_coincide():
    # Merton: annual log variance = vol^2 + rate * (mean^2 + std^2).
    rate, jm, js = 365 * 24.0, -0.01, 0.02
    paths = gbm_paths({"A": 100.0}, 30_000, vol=0.5, jump_rate=rate, jump_mean=jm, jump_std=js, substeps=4, seed=2)
    r = log_returns(paths["A"])
    expected = math.sqrt(0.25 + rate * (jm ** 2 + js ** 2))
    assert r.std() * math.sqrt(MINUTES_PER_YEAR) == pytest.approx(expected, rel=0.2)
    # No diffusion: only jumps move the price; with common jumps both contracts jump in the same bars.
    jumps = gbm_paths({"A": 100.0, "B": 50.0}, 5_000, vol=0.0, jump_rate=rate * 10, jump_mean=-0.001,
                      jump_std=0.01, common_jumps=True, seed=4)
    moved = [np.abs(log_returns(f)) > 1e-12 for f in jumps.values()]
    assert moved[0].sum() > 100
    np.testing.assert_array_equal(moved[0], moved[1])
    apart = gbm_paths({"A": 100.0, "B": 50.0}, 5_000, vol=0.0, jump_rate=rate * 10, jump_mean=-0.001,
                      jump_std=0.01, seed=4)
    moved = [np.abs(log_returns(f)) > 1e-12 for f in apart.values()]
    assert (moved[0] != moved[1]).any()


@pytest.mark.parametrize("kwargs, words", [
    ({"contracts": {}}, "contracts"),
    ({"contracts": {"A": -1.0}}, "start price"),
    ({"n_steps": 0}, "n_steps"),
    ({"vol": -0.1}, "vol"),
    ({"vol": {"A": 0.5}}, "no value for contract"),
    ({"vol": {"A": 0.5, "B": 0.5, "C": 0.5}}, "unknown contract"),
    ({"drift": float("nan")}, "drift"),
    ({"correlation": 1.5}, "correlation"),
    ({"correlation": -0.8, "contracts": {"A": 1.0, "B": 1.0, "C": 1.0}}, "correlation"),
    ({"correlation": [[1.0, 0.5], [0.4, 1.0]]}, "symmetric"),
    ({"correlation": [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]}, "shape"),
    ({"contracts": {"A": 1.0, "B": 1.0, "C": 1.0},
      "correlation": [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]}, "positive semi-definite"),
    ({"jump_rate": -1.0}, "jump_rate"),
    ({"jump_std": -0.1}, "jump_std"),
    ({"jump_rate": {"A": 1.0, "B": 2.0}, "common_jumps": True}, "common_jumps"),
    ({"interval": "0min"}, "interval"),
    ({"interval": "soon"}, "interval"),
    ({"start": "not a date"}, "start"),
    ({"substeps": 0}, "substeps"),
])
def test_gbm_bad_inputs_raise_value_error(kwargs, words):
    args = {"contracts": {"A": 1.0, "B": 2.0}, "n_steps": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        gbm_paths(args.pop("contracts"), args.pop("n_steps"), seed=1, **args)


# --------------------------------------------------------------------------- wicks
@pytest.fixture(scope="module")
def base_paths():
    return gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 200, vol=0.5, seed=11)


def test_down_wick_recovers_and_touches_nothing_else(base_paths):
    before = {k: v.copy() for k, v in base_paths.items()}
    hit = inject_wick(base_paths, "BTCUSDT", at=50, depth=-0.2)
    assert_frames_equal(base_paths, before)  # the input is not modified
    assert_valid(hit, 200)
    old, new = base_paths["BTCUSDT"], hit["BTCUSDT"]
    assert new["low"].iloc[50] == pytest.approx(0.8 * old["open"].iloc[50], rel=1e-12)
    changed = (new != old).any(axis=1)
    assert changed.tolist() == [i == 50 for i in range(200)]
    assert (new.drop(columns="low") == old.drop(columns="low")).all().all()
    pd.testing.assert_frame_equal(hit["ETHUSDT"], base_paths["ETHUSDT"])


def test_up_wick_raises_the_high(base_paths):
    hit = inject_wick(base_paths, "ETHUSDT", at=-1, depth=0.15)
    assert_valid(hit, 200)
    old, new = base_paths["ETHUSDT"], hit["ETHUSDT"]
    assert new["high"].iloc[-1] == pytest.approx(1.15 * old["open"].iloc[-1], rel=1e-12)
    assert (new["low"] == old["low"]).all() and (new["close"] == old["close"]).all()


def test_a_wick_shallower_than_the_bar_changes_nothing(base_paths):
    f = base_paths["BTCUSDT"]
    tiny = (f["low"].iloc[10] / f["open"].iloc[10] - 1) / 2  # half as deep as the bar already went
    hit = inject_wick(base_paths, "BTCUSDT", 10, tiny)
    pd.testing.assert_frame_equal(hit["BTCUSDT"], f)


def test_crash_without_recovery_shifts_the_rest_of_the_path(base_paths):
    hit = inject_wick(base_paths, ["BTCUSDT", "ETHUSDT"], at="2025-01-01 01:40:30", depth=-0.3, recover=False)
    assert_valid(hit, 200)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        old, new = base_paths[symbol], hit[symbol]
        i = 100  # 01:40 is the 101st one-minute bar; 01:40:30 falls inside it
        o = old["open"].iloc[i]
        assert new["close"].iloc[i] == pytest.approx(0.7 * o, rel=1e-12)
        assert new["low"].iloc[i] == new["close"].iloc[i]
        pd.testing.assert_frame_equal(new.iloc[:i], old.iloc[:i])
        factor = 0.7 * o / old["close"].iloc[i]
        np.testing.assert_allclose(new[["open", "high", "low", "close"]].iloc[i + 1:],
                                   old[["open", "high", "low", "close"]].iloc[i + 1:] * factor, rtol=1e-12)


def test_partial_recovery(base_paths):
    hit = inject_wick(base_paths, "BTCUSDT", 30, -0.1, recover=0.5)
    assert_valid(hit, 200)
    old, new = base_paths["BTCUSDT"], hit["BTCUSDT"]
    o, c = old["open"].iloc[30], old["close"].iloc[30]
    assert new["low"].iloc[30] == pytest.approx(0.9 * o, rel=1e-12)
    assert new["close"].iloc[30] == pytest.approx(0.9 * o + 0.5 * (c - 0.9 * o), rel=1e-12)


@pytest.mark.parametrize("kwargs, words", [
    ({"depth": -1.0}, "depth"),
    ({"depth": 0.0}, "depth"),
    ({"depth": float("nan")}, "depth"),
    ({"contract": "SOLUSDT"}, "SOLUSDT"),
    ({"at": 200}, "outside"),
    ({"at": "2024-12-31"}, "before the first bar"),
    ({"at": "2025-02-01"}, "after the last bar"),
    ({"recover": 1.5}, "recover"),
])
def test_inject_wick_bad_inputs(base_paths, kwargs, words):
    args = {"contract": "BTCUSDT", "at": 5, "depth": -0.1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        inject_wick(base_paths, **args)


# ----------------------------------------------------------------------- bootstrap
def fake_real(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """Bars with distinct returns, so every bootstrapped bar can be traced back to its source."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.001, n)
    o = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)[:-1]]) + rng.normal(0, 1e-4, n))  # small gaps
    c = o * np.exp(r)
    h = np.maximum(o, c) * np.exp(rng.exponential(0.0005, n))
    l = np.minimum(o, c) * np.exp(-rng.exponential(0.0005, n))
    t = 1_700_000_000_000 + 60_000 * np.arange(n)
    return pd.DataFrame({"open_time": t, "open": o, "high": h, "low": l, "close": c, "volume": 1.0})


def test_bootstrap_is_deterministic_and_valid():
    real = fake_real()
    a = bootstrap_paths(real, 1_000, block=50, seed=1, contract="X")
    assert_frames_equal(a, bootstrap_paths(real, 1_000, block=50, seed=1, contract="X"))
    assert not np.allclose(a["X"]["close"], bootstrap_paths(real, 1_000, block=50, seed=2, contract="X")["X"]["close"])
    assert_valid(a, 1_000)
    assert a["X"]["open"].iloc[0] == real["open"].iloc[0]
    b = bootstrap_paths(real, 123, block=50, seed=1, contract="X", start_price=5.0, interval="5min",
                        start="2024-01-01")
    assert_valid(b, 123, start="2024-01-01", interval="5min")
    assert b["X"]["open"].iloc[0] == 5.0


def test_bootstrap_resamples_whole_blocks_of_real_bars():
    real = fake_real()
    block = 40
    out = bootstrap_paths(real, 1_000, block=block, seed=3, contract="X")["X"]
    r_real = np.log(real["close"] / real["open"]).to_numpy()
    u_real = np.log(real["high"] / real["open"]).to_numpy()
    d_real = np.log(real["low"] / real["open"]).to_numpy()
    r = np.log(out["close"] / out["open"]).to_numpy()
    u = np.log(out["high"] / out["open"]).to_numpy()
    d = np.log(out["low"] / out["open"]).to_numpy()
    # Each generated bar is a real bar: find it by its (distinct) return.
    src = np.array([int(np.argmin(np.abs(r_real - x))) for x in r])
    np.testing.assert_allclose(r, r_real[src], atol=1e-12)
    np.testing.assert_allclose(u, u_real[src], atol=1e-12)
    np.testing.assert_allclose(d, d_real[src], atol=1e-12)
    # ... in runs of `block` consecutive real bars.
    steps = np.diff(src)
    inside = np.arange(1, 1_000) % block != 0
    assert np.all(steps[inside] == 1)
    assert np.any(steps[~inside] != 1)


def test_bootstrap_of_several_contracts_keeps_their_co_movement():
    a = fake_real(seed=1)
    b = a.copy()
    b[["open", "high", "low", "close"]] *= 0.5  # the same moves at half the price
    b = b.iloc[5:]  # a shorter history: aligned on the common times
    out = bootstrap_paths({"A": a, "B": b}, 800, block=30, seed=4)
    assert_valid(out, 800)
    np.testing.assert_allclose(np.log(out["A"]["close"] / out["A"]["open"]),
                               np.log(out["B"]["close"] / out["B"]["open"]), atol=1e-12)
    assert out["B"]["open"].iloc[0] == b["open"].iloc[0]


@pytest.mark.parametrize("kwargs, words", [
    ({"block": 0}, "block"),
    ({"block": 10_000}, "block"),
    ({"n_steps": 0}, "n_steps"),
    ({"start_price": -1.0}, "start_price"),
])
def test_bootstrap_bad_inputs(kwargs, words):
    args = {"n_steps": 100, "block": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        bootstrap_paths(fake_real(), args.pop("n_steps"), seed=1, **args)


def test_bootstrap_rejects_bad_real_bars():
    real = fake_real()
    real.loc[7, "low"] = 0.0
    with pytest.raises(ValueError, match="row 7, column 'low'"):
        bootstrap_paths(real, 10, seed=1)
    with pytest.raises(ValueError, match="missing column"):
        bootstrap_paths(real.drop(columns="high"), 10, seed=1)
    with pytest.raises(ValueError, match="time column"):
        bootstrap_paths({"A": fake_real().drop(columns="open_time"), "B": fake_real()}, 10, seed=1)


# ------------------------------------------------------------- bootstrap on real bars
@pytest.fixture(scope="module")
def btc_real(shared_data):
    path = shared_data / BTC_1M
    if not path.exists():
        pytest.skip(f"{BTC_1M} not present")
    return pd.read_csv(path)


def test_bootstrap_of_real_btc_bars_keeps_their_statistics(btc_real):
    out = bootstrap_paths(btc_real, 20_000, block=60, seed=5, contract="BTCUSDT")
    assert_valid(out, 20_000)
    f = out["BTCUSDT"]
    assert f["open"].iloc[0] == btc_real["open"].iloc[0]
    r_real = np.log(btc_real["close"] / btc_real["open"])
    r = np.log(f["close"] / f["open"])
    assert r.std() == pytest.approx(r_real.std(), rel=0.15)
    range_real = np.log(btc_real["high"] / btc_real["low"])
    rng = np.log(f["high"] / f["low"])
    assert rng.median() == pytest.approx(range_real.median(), rel=0.1)
    assert rng.mean() == pytest.approx(range_real.mean(), rel=0.15)


def test_bootstrap_of_real_btc_and_eth_keeps_their_correlation(btc_real, shared_data):
    path = shared_data / ETH_1M
    if not path.exists():
        pytest.skip(f"{ETH_1M} not present")
    eth = pd.read_csv(path)
    out = bootstrap_paths({"BTCUSDT": btc_real, "ETHUSDT": eth}, 10_000, block=120, seed=6)
    assert_valid(out, 10_000)
    real = btc_real.merge(eth, on="open_time", suffixes=("_b", "_e"))
    rho_real = np.corrcoef(np.log(real["close_b"] / real["open_b"]), np.log(real["close_e"] / real["open_e"]))[0, 1]
    rho = np.corrcoef(np.log(out["BTCUSDT"]["close"] / out["BTCUSDT"]["open"]),
                      np.log(out["ETHUSDT"]["close"] / out["ETHUSDT"]["open"]))[0, 1]
    assert rho == pytest.approx(rho_real, abs=0.1)
