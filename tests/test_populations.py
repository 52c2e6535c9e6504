"""Tests of riskcore.populations: synthetic account populations.

The population is checked three ways: the tables pass ``Book.from_frames`` validation;
the numpy-built book is identical to one opened account by account through the Book
API (which refuses anything the rules forbid); and its shares and distributions match
the spec within binomial (or similarly loose) tolerances.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from riskcore import Book, Brackets
from riskcore.table import SCHEMA, BookFormatError, BookTable
from riskcore.populations import (DEFAULT_LEVERAGE_MIX, PopulationSpec, generate_population, generate_population_table,
                                  generate_population_frames, load_population)

PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}


@pytest.fixture(scope="module")
def contracts() -> dict[str, Brackets]:
    return {"BTCUSDT": Brackets.load("BTCUSDT", "2024-10-31"), "ETHUSDT": Brackets.load("ETHUSDT", "2024-10-31")}


def assert_frames_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name].reset_index(drop=True), b[name].reset_index(drop=True),
                                      check_dtype=False, obj=name)


def with_leverage(frames: dict) -> pd.DataFrame:
    """Positions with their settings, leverage and notional."""
    pos = frames["positions"].merge(frames["settings"], on=["account", "contract"], how="left", validate="m:1")
    pos["leverage"] = np.where(pos["leg"] == "short", pos["leverage_short"], pos["leverage_long"])
    pos["auto_add"] = np.where(pos["leg"] == "short", pos["auto_add_short"], pos["auto_add_long"])
    pos["notional"] = pos["qty"] * pos["entry_price"]
    return pos.merge(frames["accounts"], on="account", how="left", validate="m:1")


def within_binomial(hits: int, n: int, p: float, z: float = 4.5) -> bool:
    """``hits`` out of ``n`` is within ``z`` standard errors of the share ``p``."""
    return abs(hits / n - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-12


# ------------------------------------------------------------------ determinism and validity
def test_same_seed_same_population_and_other_seed_differs(contracts):
    a = generate_population_frames(2_000, contracts, PRICES, seed=11)
    b = generate_population_frames(2_000, contracts, PRICES, seed=11)
    c = generate_population_frames(2_000, contracts, PRICES, seed=12)
    assert_frames_equal(a, b)
    assert generate_population(300, contracts, PRICES, seed=5) == generate_population(300, contracts, PRICES, seed=5)
    assert not a["accounts"]["wallet"].equals(c["accounts"]["wallet"])
    assert not a["positions"][["account", "contract", "leg"]].equals(c["positions"][["account", "contract", "leg"]])


def test_frames_follow_the_columnar_schema_and_round_trip(contracts):
    frames = generate_population_frames(1_000, contracts, PRICES, seed=3)
    assert list(frames) == list(SCHEMA)
    table = BookTable.from_frames(frames)  # validates every table
    for name, frame in frames.items():
        assert list(frame.columns) == list(SCHEMA[name]), name
        # drawn straight in the canonical dtypes: validation changes nothing
        pd.testing.assert_frame_equal(table.frames()[name], frame, check_categorical=True)
    assert frames["orders"].empty
    assert frames["accounts"]["account"].tolist() == list(range(1_000))
    assert generate_population_table(1_000, contracts, PRICES, seed=3) == table
    book = Book.from_frames(frames)
    assert book.to_table() == table
    assert book.marks == PRICES
    assert book.fees_collected == pytest.approx(frames["positions"].eval("qty * entry_price").sum() * 0.0005)


SPECS = [
    {},
    {"hedge_share": 0.9, "isolated_share": 0.7, "auto_add_share": 0.5, "positions_per_account": (0, 5),
     "notional_sigma": 3.0},
    {"leverage_range": (1, 125), "charge_opening_fee": False, "headroom_median": 0.0,
     "notional_median": {"BTCUSDT": 1e6, "ETHUSDT": 1e5}, "maker_fee": 0.0001, "taker_fee": 0.0004},
    {"leverage_range": (1.5, 7), "leverage_integer": False, "contract_weights": {"ETHUSDT": 1.0},
     "hedge_share": 1.0, "isolated_share": 0.5, "positions_per_account": 4, "default_leverage": 10},
    {"leverage": {125: 1.0}, "notional_median": 5e6, "notional_sigma": 1.0, "notional_max": 2e8,
     "hedge_share": 0.5, "isolated_share": 0.5},
]


@pytest.mark.parametrize("spec", SPECS, ids=range(len(SPECS)))
def test_numpy_build_equals_a_build_through_the_book_api(contracts, spec):
    """The Book API refuses any invalid setting, position or uncovered margin; the numpy
    path must give exactly the same book, float for float."""
    fast = generate_population(400, contracts, PRICES, seed=21, spec=spec)
    slow = generate_population(400, contracts, PRICES, seed=21, spec=spec, method="api")
    assert fast == slow
    assert_frames_equal(fast.to_frames(), slow.to_frames())


@pytest.mark.parametrize("spec", SPECS, ids=range(len(SPECS)))
def test_every_leverage_respects_the_brackets(contracts, spec):
    frames = generate_population_frames(3_000, contracts, PRICES, seed=8, spec=spec)
    pos = with_leverage(frames)
    assert len(pos) > 0
    for symbol, brackets in contracts.items():
        p = pos[pos["contract"] == symbol]
        lev, notional = p["leverage"].to_numpy(), p["notional"].to_numpy()
        assert np.all(lev >= 1)
        assert np.all(notional <= brackets.max_notional(lev) * (1 + 1e-12))
        assert np.all(lev <= brackets.max_leverage_for(notional))
    st = frames["settings"]
    one_way_or_cross = (st.merge(frames["accounts"], on="account")["position_mode"] == "one-way").to_numpy() \
        | (st["margin_mode"] == "cross").to_numpy()
    assert np.all(st["leverage_long"].to_numpy()[one_way_or_cross] == st["leverage_short"].to_numpy()[one_way_or_cross])


def test_leverage_comes_from_the_choices_or_the_bracket_cap(contracts):
    spec = PopulationSpec(leverage={3: 1, 50: 1, 125: 1}, notional_median=200_000, notional_sigma=2.0)
    pos = with_leverage(generate_population_frames(5_000, contracts, PRICES, seed=4, spec=spec))
    caps = set()
    for b in contracts.values():
        caps |= set(b.max_leverage.tolist())
    assert set(pos["leverage"]) <= {3.0, 50.0, 125.0} | caps
    # Large notionals pushed leverage below the drawn 125x/50x for some positions.
    assert (pos["leverage"] < 50).sum() > (pos["leverage"] == 3).sum()
    # The 125x tier of BTCUSDT ends at 50k notional: no 125x position above it.
    btc = pos[pos["contract"] == "BTCUSDT"]
    assert btc.loc[btc["leverage"] == 125, "notional"].max() <= 50_000


def test_positions_are_distinct_slots_within_the_count_range(contracts):
    spec = {"positions_per_account": (1, 3), "hedge_share": 0.5}
    frames = generate_population_frames(4_000, contracts, PRICES, seed=9, spec=spec)
    pos = frames["positions"].merge(frames["accounts"], on="account")
    assert not pos.duplicated(["account", "contract", "leg"]).any()
    assert set(pos.loc[pos["position_mode"] == "one-way", "leg"]) == {"both"}
    assert set(pos.loc[pos["position_mode"] == "hedge", "leg"]) == {"long", "short"}
    hedge_legs = pos[pos["position_mode"] == "hedge"]
    assert np.all(np.where(hedge_legs["leg"] == "long", 1, -1) == hedge_legs["side"])
    counts = pos.groupby("account").size().reindex(frames["accounts"]["account"], fill_value=0)
    one_way = (frames["accounts"]["position_mode"] == "one-way").to_numpy()
    # One-way accounts have two contracts to trade: 1..2 positions; hedge accounts 1..3.
    assert counts[one_way].between(1, 2).all() and counts[~one_way].between(1, 3).all()
    assert set(counts[~one_way]) == {1, 2, 3}


# ------------------------------------------------------------------------ shares
def test_shares_match_the_spec(contracts):
    spec = PopulationSpec(long_share=0.3, hedge_share=0.25, isolated_share=0.4, auto_add_share=0.35,
                          positions_per_account=(1, 2))
    frames = generate_population_frames(20_000, contracts, PRICES, seed=1, spec=spec)
    acc, st = frames["accounts"], frames["settings"]
    assert within_binomial(int((acc["position_mode"] == "hedge").sum()), len(acc), 0.25)
    assert within_binomial(int((st["margin_mode"] == "isolated").sum()), len(st), 0.4)
    pos = with_leverage(frames)
    iso = pos[pos["margin_mode"] == "isolated"]
    assert within_binomial(int(iso["auto_add"].sum()), len(iso), 0.35)
    assert not pos.loc[pos["margin_mode"] == "cross", "auto_add"].any()
    assert (pos.loc[pos["margin_mode"] == "cross", "wallet_iso"] == 0).all()
    # One-way positions are long with probability exactly long_share.
    one_way = pos[pos["leg"] == "both"]
    assert within_binomial(int((one_way["side"] == 1).sum()), len(one_way), 0.3)


def test_long_share_of_hedge_accounts_with_one_position(contracts):
    spec = {"hedge_share": 1.0, "long_share": 0.7, "positions_per_account": 1}
    pos = generate_population_frames(10_000, contracts, PRICES, seed=2, spec=spec)["positions"]
    assert len(pos) == 10_000
    assert within_binomial(int((pos["side"] == 1).sum()), len(pos), 0.7)


def test_contract_weights_and_notional_distribution(contracts):
    spec = {"contract_weights": {"BTCUSDT": 3.0, "ETHUSDT": 1.0}, "positions_per_account": 1,
            "notional_median": {"BTCUSDT": 50_000.0, "ETHUSDT": 8_000.0}, "notional_sigma": 0.8}
    pos = with_leverage(generate_population_frames(20_000, contracts, PRICES, seed=6, spec=spec))
    assert within_binomial(int((pos["contract"] == "BTCUSDT").sum()), len(pos), 0.75)
    for symbol, median in (("BTCUSDT", 50_000.0), ("ETHUSDT", 8_000.0)):
        logs = np.log(pos.loc[pos["contract"] == symbol, "notional"])
        assert abs(np.median(logs) - math.log(median)) < 0.05
        assert logs.std() == pytest.approx(0.8, rel=0.05)
    assert (pos["entry_price"] == pos["contract"].map(PRICES)).all()


def test_wallet_leaves_the_requested_free_balance(contracts):
    spec = {"headroom_median": 0.5, "headroom_sigma": 0.0, "isolated_share": 0.5, "hedge_share": 0.3}
    book = generate_population(500, contracts, PRICES, seed=13, spec=spec)
    summary = book.accounts_frame()
    positions = book.positions_frame()
    im = positions.groupby("account")["initial_margin"].sum().reindex(summary["account"]).to_numpy()
    # Free balance = headroom x initial margin of all the account's positions (cross and isolated).
    np.testing.assert_allclose(summary["free_balance"], 0.5 * im, rtol=1e-9)
    iso = positions[positions["margin_mode"] == "isolated"]
    np.testing.assert_allclose(iso["wallet_iso"], iso["notional"] / iso["leverage"], rtol=1e-12)
    assert (summary["mmr"] < 1).all()


def test_opening_fees_are_charged_and_collected(contracts):
    frames = generate_population_frames(1_000, contracts, PRICES, seed=14)
    free = generate_population_frames(1_000, contracts, PRICES, seed=14, spec={"charge_opening_fee": False})
    fees = frames["positions"].eval("qty * entry_price").to_numpy() * 0.0005
    assert frames["meta"]["fees_collected"][0] == pytest.approx(fees.sum(), rel=1e-12)
    assert free["meta"]["fees_collected"][0] == 0.0
    # The same draws: only the cross wallets differ, and not by the fees (the deposit held them).
    assert_frames_equal({"p": frames["positions"]}, {"p": free["positions"]})
    np.testing.assert_allclose(frames["accounts"]["wallet"], free["accounts"]["wallet"], rtol=1e-9)
    assert (frames["contracts"]["taker_fee"] == 0.0005).all() and (free["contracts"]["taker_fee"] == 0.0005).all()


def test_empty_population_and_accounts_without_positions(contracts):
    book = generate_population(0, contracts, PRICES, seed=1)
    assert len(book.accounts) == 0 and set(book.contracts) == set(PRICES)
    frames = generate_population_frames(2_000, contracts, PRICES, seed=1, spec={"positions_per_account": (0, 1)})
    with_pos = set(frames["positions"]["account"])
    empty = frames["accounts"][~frames["accounts"]["account"].isin(with_pos)]
    assert within_binomial(len(empty), 2_000, 0.5)
    assert (empty["wallet"] == 0).all()
    Book.from_frames(frames)


def test_twenty_thousand_accounts_build_quickly(contracts):
    t0 = time.perf_counter()
    book = generate_population(20_000, contracts, PRICES, seed=99)
    elapsed = time.perf_counter() - t0
    print(f"\n20,000-account population: {sum(len(a.positions) for a in book.accounts.values())} positions "
          f"built and validated in {elapsed:.2f} s")
    assert len(book.accounts) == 20_000


# ------------------------------------------------------------------------ bad specs
@pytest.mark.parametrize("field, value", [
    ("positions_per_account", (3, 1)),
    ("positions_per_account", (0, 0)),
    ("positions_per_account", 1.5),
    ("contract_weights", {"BTCUSDT": -1.0}),
    ("contract_weights", {"BTCUSDT": 0.0}),
    ("leverage", {0.5: 1.0}),
    ("leverage", {10: -1}),
    ("leverage", []),
    ("leverage", "10x"),
    ("leverage_range", (5, 2)),
    ("leverage_range", (0.5, 2)),
    ("leverage_range", (2.2, 2.8)),
    ("leverage_integer", 1),
    ("notional_median", 0.0),
    ("notional_median", {"BTCUSDT": -5.0}),
    ("notional_sigma", -0.1),
    ("notional_sigma", float("nan")),
    ("notional_min", 0.0),
    ("notional_max", 1.0),
    ("long_share", 1.2),
    ("hedge_share", -0.1),
    ("isolated_share", True),
    ("auto_add_share", "half"),
    ("headroom_median", -1.0),
    ("headroom_sigma", float("inf")),
    ("maker_fee", 0.5),
    ("taker_fee", None),
    ("charge_opening_fee", "yes"),
    ("default_leverage", 0.5),
])
def test_bad_spec_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"PopulationSpec.{field}"):
        PopulationSpec(**{field: value})


def test_bad_inputs_at_generation(contracts):
    with pytest.raises(ValueError, match="no_such_field"):
        generate_population(10, contracts, PRICES, seed=1, spec={"no_such_field": 1})
    with pytest.raises(ValueError, match="PopulationSpec.contract_weights"):
        generate_population(10, contracts, PRICES, seed=1, spec={"contract_weights": {"SOLUSDT": 1.0}})
    with pytest.raises(ValueError, match="PopulationSpec.notional_median"):
        generate_population(10, contracts, PRICES, seed=1, spec={"notional_median": {"BTCUSDT": 1e4}})
    with pytest.raises(ValueError, match="ETHUSDT"):
        generate_population(10, contracts, {"BTCUSDT": 60_000.0}, seed=1)
    with pytest.raises(ValueError, match="prices"):
        generate_population(10, contracts, {**PRICES, "ETHUSDT": -1.0}, seed=1)
    with pytest.raises(ValueError, match="n_accounts"):
        generate_population(-1, contracts, PRICES, seed=1)
    with pytest.raises(ValueError, match="method"):
        generate_population(1, contracts, PRICES, seed=1, method="fast")
    with pytest.raises(TypeError):
        generate_population(1, {"BTCUSDT": "table"}, PRICES, seed=1)


def test_spec_normalises_its_inputs():
    spec = PopulationSpec(positions_per_account=2, leverage=[20, 10], contract_weights={"A": 1},
                          notional_median={"A": 1e3})
    assert spec.positions_per_account == (2, 2)
    assert spec.leverage == ((10.0, 1.0), (20.0, 1.0))
    assert spec.contract_weights == (("A", 1.0),)
    assert spec.notional_median == (("A", 1000.0),)
    assert PopulationSpec().leverage == tuple(sorted(DEFAULT_LEVERAGE_MIX))
    assert PopulationSpec.from_dict({"long_share": 0.4}) == PopulationSpec(long_share=0.4)
    hash(spec)  # frozen and hashable


# ------------------------------------------------------------------------ loading
def test_load_population_from_parquet(contracts, tmp_path):
    book = generate_population(300, contracts, PRICES, seed=31, spec={"hedge_share": 0.5, "isolated_share": 0.5})
    book.write_parquet(tmp_path / "pop")
    assert load_population(tmp_path / "pop") == book


def test_load_population_from_csv(contracts, tmp_path):
    book = generate_population(300, contracts, PRICES, seed=32, spec={"hedge_share": 0.5, "isolated_share": 0.5,
                                                                      "auto_add_share": 0.5})
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, frame in book.to_frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    assert load_population(folder) == book

    # Without orders.csv and meta.csv, and with brackets given instead of contracts/brackets.csv.
    for name in ("orders", "meta", "contracts", "brackets"):
        (folder / f"{name}.csv").unlink()
    loaded = load_population(folder, contracts=contracts)
    assert loaded.accounts == book.accounts
    assert loaded.fees_collected == 0.0 and loaded.next_order_id == 1
    with pytest.raises(BookFormatError, match="contracts.csv"):
        load_population(folder)


def test_load_population_csv_string_ids_flags_and_errors(contracts, tmp_path):
    frames = generate_population_frames(20, contracts, PRICES, seed=33, spec={"isolated_share": 1.0,
                                                                              "auto_add_share": 1.0})
    for name in ("accounts", "settings", "positions"):
        frames[name]["account"] = "user-" + frames[name]["account"].astype(str)
    frames["settings"]["auto_add_long"] = frames["settings"]["auto_add_long"].astype(int)  # 1/0 spelling
    frames["settings"]["auto_add_short"] = frames["settings"]["auto_add_short"].astype(int)
    folder = tmp_path / "named"
    folder.mkdir()
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    book = load_population(folder)
    assert set(book.accounts) == {f"user-{i}" for i in range(20)}
    assert all(st.auto_add_long for a in book.accounts.values() for st in a.settings.values())

    bad = frames["positions"].copy()
    bad.loc[3, "qty"] = -1.0
    bad.to_csv(folder / "positions.csv", index=False)
    with pytest.raises(BookFormatError, match=r"'positions' row 3, column 'qty'"):
        load_population(folder)
    with pytest.raises(FileNotFoundError):
        load_population(tmp_path / "nowhere")
