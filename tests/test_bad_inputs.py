"""A catalogue of bad inputs, through the API and the ``riskcore`` command.

Each one is refused before anything is simulated, with a message that names what is wrong
and where (the file, the key, the table, row and column, the value); the command exits 2
for bad input and 3 for a missing data file (riskcore/cli.py), prints no traceback, and
leaves the output folder as it was.  The fragments each message must hold are what a
reader needs to find the fault (the key as written in the file, the value), chosen by
hand, not copied from the code.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskcore import Book, Brackets, simulate
from riskcore.cli import main
from riskcore.errors import BracketError
from riskcore.inputs import InputError
from riskcore.io import load_klines
from riskcore.populations import PopulationSpec, generate_population_table, load_population_table
from riskcore.scenarios import MissingDataError, ScenarioError, run_to_folder
from riskcore.synthetic import gbm_paths
from riskcore.table import BookFormatError, BookTable

SMALL = textwrap.dedent("""
    name = "small"
    seed = 3

    [market]
    liquidation_fee_rate = 0.01
    insurance_fund = 1000.0

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }
    start_price = 60000.0

    [path]
    kind = "gbm"
    n_steps = 10
    vol = 0.5

    [population]
    accounts = 5
    positions_per_account = 1
""")
GBM = 'kind = "gbm"\nn_steps = 10\nvol = 0.5\n'
CONTRACT = 'start_price = 60000.0\n'
ETH = '\n[market.contracts.ETHUSDT]\nbrackets = { venue = "binance", symbol = "ETHUSDT" }\n'


def sub(old: str, new: str) -> tuple:
    """An edit of SMALL: ``old`` replaced by ``new`` (edits add up with +)."""
    return ((old, new),)


def add(text: str) -> tuple:
    """An edit of SMALL: ``text`` appended."""
    return ((None, text),)


def files(name: str, more: str = "") -> tuple:
    """The edit that reads the path from data file ``name`` (written by :func:`write_data`)."""
    return sub(GBM, f'kind = "file"\n{more}[path.files]\nBTCUSDT = "{name}"\n')


# id, edit of SMALL, exit code, fragments the message must hold (besides the scenario file's name)
SCENARIO_CASES = [
    # the file itself
    ("not-toml", sub("vol = 0.5", "vol = "), 2, ["not valid TOML", "line"]),
    ("not-utf8", sub('name = "small"', 'name = "caf\udce9"'), 2, ["UTF-8", "offset"]),
    ("unknown-top-key", sub("seed = 3", "seed = 3\nsede = 1"), 2, ["sede", "unknown key"]),
    ("unknown-market-key", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nfee = 0.1"), 2, ["market.fee"]),
    ("name-not-string", sub('name = "small"', "name = 5"), 2, ["name", "5"]),
    ("notes-not-list", sub("seed = 3", 'seed = 3\nnotes = "one"'), 2, ["notes", "list of strings"]),
    ("no-market", sub("[market]\n", "[markets]\n"), 2, ["markets"]),
    # seeds, counts and sizes
    ("seed-negative", sub("seed = 3", "seed = -1"), 2, ["seed", "-1"]),
    ("seed-fraction", sub("seed = 3", "seed = 1.5"), 2, ["seed", "1.5"]),
    ("path-seed-negative", sub("vol = 0.5", "vol = 0.5\nseed = -7"), 2, ["path.seed", "-7"]),
    ("population-seed-negative", sub("accounts = 5", "accounts = 5\nseed = -2"), 2, ["population.seed", "-2"]),
    ("accounts-negative", sub("accounts = 5", "accounts = -5"), 2, ["population.accounts", "-5"]),
    ("accounts-text", sub("accounts = 5", 'accounts = "many"'), 2, ["population.accounts", "many"]),
    ("accounts-too-many", sub("accounts = 5", "accounts = 1_000_000_000_000"), 2,
     ["population.accounts", "1,000,000,000,000", "memory"]),
    ("n-steps-too-many", sub("n_steps = 10", "n_steps = 1_000_000_000_000"), 2, ["n_steps", "1,000,000,000,000"]),
    ("n-steps-zero", sub("n_steps = 10", "n_steps = 0"), 2, ["path.n_steps", "0"]),
    ("n-steps-missing", sub("n_steps = 10\n", ""), 2, ["path.n_steps", "required"]),
    # market numbers
    ("fee-rate-missing", sub("liquidation_fee_rate = 0.01\n", ""), 2, ["market.liquidation_fee_rate", "required"]),
    ("fee-rate-too-big", sub("liquidation_fee_rate = 0.01", "liquidation_fee_rate = 0.9"), 2,
     ["market.liquidation_fee_rate", "0.9"]),
    ("slippage-negative", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nliquidation_slippage = -0.1"),
     2, ["market.liquidation_slippage", "-0.1"]),
    ("insurance-fund-huge", sub("insurance_fund = 1000.0", "insurance_fund = 1e300"), 2,
     ["market.insurance_fund", "1e+300"]),
    ("insurance-fund-true", sub("insurance_fund = 1000.0", "insurance_fund = true"), 2,
     ["market.insurance_fund", "True"]),
    ("mmr-factor-negative", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nmmr_factor = -1"), 2,
     ["market.mmr_factor", "-1"]),
    ("mmr-factor-nan", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nmmr_factor = nan"), 2,
     ["market.mmr_factor", "nan"]),
    ("mmr-factor-too-big", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nmmr_factor = 50.0"), 2,
     ["market.mmr_factor", "50"]),
    ("leverage-cap-below-1", sub("insurance_fund = 1000.0", "insurance_fund = 1000.0\nmax_leverage_cap = 0.5"), 2,
     ["market.max_leverage_cap", "0.5"]),
    # contracts and brackets
    ("no-contracts", sub('[market.contracts.BTCUSDT]\nbrackets = { venue = "binance", symbol = "BTCUSDT", '
                         'date = "2025-06-19" }\nstart_price = 60000.0\n', ""), 2, ["market.contracts"]),
    ("start-price-huge", sub(CONTRACT, "start_price = 1e308\n"), 2, ["market.contracts.BTCUSDT.start_price",
                                                                     "1e+308"]),
    ("start-price-zero", sub(CONTRACT, "start_price = 0.0\n"), 2, ["market.contracts.BTCUSDT.start_price", "0"]),
    ("start-price-missing", sub(CONTRACT, ""), 2, ["market.contracts.BTCUSDT.start_price", "required"]),
    ("taker-fee-half", sub(CONTRACT, CONTRACT + "taker_fee = 0.5\n"), 2, ["market.contracts.BTCUSDT.taker_fee",
                                                                         "0.5"]),
    ("brackets-missing", sub('brackets = { venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }\n', ""), 2,
     ["market.contracts.BTCUSDT.brackets", "required"]),
    ("brackets-date-not-a-date", sub('date = "2025-06-19"', 'date = "yesterday-ish"'), 2,
     ["market.contracts.BTCUSDT.brackets", "yesterday-ish"]),
    ("brackets-unknown-venue", sub('venue = "binance"', 'venue = "okx"'), 2,
     ["market.contracts.BTCUSDT.brackets", "okx"]),
    ("brackets-two-sources", sub('venue = "binance",', 'venue = "binance", file = "b.json",'), 2,
     ["market.contracts.BTCUSDT.brackets", "file", "venue"]),
    ("brackets-tier-mmr", sub('{ venue = "binance", symbol = "BTCUSDT", date = "2025-06-19" }',
                              "{ tiers = [{ notional_floor = 0, notional_cap = 1e9, mmr = 1.5, max_leverage = 10 }] }"),
     2, ["market.contracts.BTCUSDT.brackets", "tier 1", "1.5"]),
    ("brackets-file-missing", sub('venue = "binance",', 'file = "nowhere.json",'), 3, ["nowhere.json"]),
    # the path
    ("kind-unknown", sub('kind = "gbm"', 'kind = "random"'), 2, ["path.kind", "random"]),
    ("kind-missing", sub('kind = "gbm"\n', ""), 2, ["path.kind", "required"]),
    ("vol-text", sub("vol = 0.5", 'vol = "high"'), 2, ["path.vol", "high"]),
    ("vol-negative", sub("vol = 0.5", "vol = -1.0"), 2, ["path", "vol of BTCUSDT", "not -1.0"]),
    ("vol-infinite", sub("vol = 0.5", "vol = inf"), 2, ["path.vol", "inf"]),
    ("interval-not-a-time", sub("vol = 0.5", 'vol = 0.5\ninterval = "fortnightly-ish"'), 2,
     ["path", "interval", "fortnightly-ish"]),
    ("wick-after-the-path", add('[[path.wicks]]\ncontract = "BTCUSDT"\nat = 500\ndepth = -0.2\n'), 2,
     ["path", "at=500"]),
    ("wick-before-the-path", add('[[path.wicks]]\ncontract = "BTCUSDT"\nat = -11\ndepth = -0.2\n'), 2,
     ["path", "at=-11"]),
    ("wick-unknown-contract", add('[[path.wicks]]\ncontract = "ETHUSDT"\nat = 5\ndepth = -0.2\n'), 2,
     ["path.wicks[0].contract", "ETHUSDT"]),
    ("wick-no-depth", add('[[path.wicks]]\ncontract = "BTCUSDT"\nat = 5\n'), 2, ["path.wicks[0].depth", "required"]),
    ("wick-recover-text", add('[[path.wicks]]\ncontract = "BTCUSDT"\nat = 5\ndepth = -0.2\nrecover = "yes"\n'), 2,
     ["path.wicks[0].recover", "yes"]),
    ("file-missing", files("nowhere.csv"), 3, ["nowhere.csv"]),
    ("file-price-huge", files("huge.csv"), 2, ["huge.csv", "line 5", "high", "1e+308"]),
    ("file-price-text", files("text.csv"), 2, ["text.csv", "line 5", "high", "'abc'"]),
    ("file-start-not-a-time", files("bars.csv", 'start = "whenever"\n'), 2, ["path.start", "whenever"]),
    ("file-gaps-word", files("bars.csv", 'gaps = "ignore"\n'), 2, ["path.gaps", "ignore"]),
    ("file-contract-without-bars", files("bars.csv") + sub(CONTRACT, CONTRACT + ETH), 2,
     ["market.contracts.ETHUSDT", "path.files"]),
    ("file-bars-of-an-unknown-contract", files("bars.csv") + sub('BTCUSDT = "bars.csv"',
                                                                 'BTCUSDT = "bars.csv"\nETHUSDT = "bars.csv"'), 2,
     ["path.files.ETHUSDT", "market.contracts"]),
    # funding
    ("funding-every-zero", add("[funding]\nrate = 0.0001\nevery_hours = 0\n"), 2, ["funding.every_hours", "0"]),
    ("funding-every-negative", add("[funding]\nrate = 0.0001\nevery_hours = -8\n"), 2,
     ["funding.every_hours", "-8"]),
    ("funding-rate-implausible", add("[funding]\nrate = 2.0\n"), 2, ["funding.rate", "2.0"]),
    ("funding-without-rate", add("[funding]\nevery_hours = 8\n"), 2, ["funding", "rate"]),
    ("funding-file-missing", add('[funding]\nfile = "nowhere-funding.csv"\n'), 3, ["nowhere-funding.csv"]),
    # the population
    ("leverage-key-not-a-number", sub("positions_per_account = 1", "positions_per_account = 1\nleverage = { x = 1.0 }"),
     2, ["population.leverage.x", "'x'"]),
    ("leverage-below-1", sub("positions_per_account = 1", "positions_per_account = 1\nleverage = [0.5]"), 2,
     ["population", "leverage", "0.5"]),
    ("long-share-above-1", sub("positions_per_account = 1", "positions_per_account = 1\nlong_share = 1.5"), 2,
     ["population", "long_share", "1.5"]),
    ("positions-range-reversed", sub("positions_per_account = 1", "positions_per_account = [3, 1]"), 2,
     ["population", "positions_per_account", "(3, 1)"]),
    ("population-file-and-accounts", sub("accounts = 5", 'accounts = 5\nfile = "pop"'), 2,
     ["population.accounts", "population.file"]),
    ("population-file-missing", sub("accounts = 5\npositions_per_account = 1", 'file = "no-such-pop"'), 3,
     ["population.file", "no-such-pop"]),
    ("population-file-side", sub("accounts = 5\npositions_per_account = 1", 'file = "side15"'), 2,
     ["population.file", "'positions'", "row 0", "'side'", "1.5"]),
    # engine, variants, grid
    ("intrabar-word", add('[engine]\nintrabar = "bogus"\n'), 2, ["engine.intrabar", "bogus"]),
    ("variant-engine-word", add('[[variants]]\nname = "a"\nengine = { mm_basis = "x" }\n'), 2,
     ["variants[0].engine.mm_basis", "'x'"]),
    ("variant-without-name", add('[[variants]]\npopulation = { isolated_share = 1.0 }\n'), 2, ["variants[0].name"]),
    ("variant-names-twice", add('[[variants]]\nname = "a"\n[[variants]]\nname = "a"\n'), 2, ["variants", "unique"]),
    ("variant-share-above-1", add('[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n'
                                  'population = { isolated_share = 1.5 }\n'), 2, ["isolated_share", "1.5", "'b'"]),
    ("variant-mmr-factor-zero", add('[[variants]]\nname = "a"\nmarket = { mmr_factor = 0.0 }\n'), 2,
     ["variants[0].market.mmr_factor", "0.0"]),
    ("grid-unknown-key", add('[grid]\n"path.vol" = [0.1]\n'), 2, ['grid."path.vol"', "cannot be varied"]),
    ("grid-bad-value", add('[grid]\n"market.mmr_factor" = [1.0, -1.0]\n'), 2, ['grid."market.mmr_factor"[1]', "-1"]),
    ("grid-bad-word", add('[grid]\n"engine.intrabar" = ["bogus"]\n'), 2, ['grid."engine.intrabar"[0]', "bogus"]),
    ("grid-empty", add('[grid]\n"market.mmr_factor" = []\n'), 2, ['grid."market.mmr_factor"', "non-empty"]),
]


def write_data(folder: Path) -> None:
    """The data files the cases read: ten good 1-minute bars, the same with a price of
    1e308 or a word in line 5 (the header is line 1), and a population whose first
    position has side 1.5."""
    t0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC in epoch milliseconds
    lines = ["open_time,open,high,low,close,volume"] + [f"{t0 + i * 60_000},60000,60100,59900,60050,1"
                                                        for i in range(10)]
    (folder / "bars.csv").write_text("\n".join(lines) + "\n")
    for name, high in (("huge.csv", "1e308"), ("text.csv", "abc")):
        bad = list(lines)
        bad[4] = f"{t0 + 3 * 60_000},60000,{high},59900,60050,1"
        (folder / name).write_text("\n".join(bad) + "\n")
    table = generate_population_table(2, {"BTCUSDT": Brackets.load("BTCUSDT", "2025-06-19")},
                                      {"BTCUSDT": 60_000.0}, seed=1, spec={"positions_per_account": 1})
    frames = table.frames(plain=True)
    positions = frames["positions"].astype({"side": float})
    positions.loc[0, "side"] = 1.5
    frames["positions"] = positions
    from riskcore.table import write_parquet

    write_parquet(frames, folder / "side15")


def scenario_text(edit) -> str:
    text = SMALL
    for old, new in edit:
        assert old is None or old in text, old
        text = text + new if old is None else text.replace(old, new)
    return text


def write_scenario(folder: Path, edit) -> Path:
    path = folder / "s.toml"
    text = scenario_text(edit)
    if "\udce9" in text:  # a Latin-1 byte where UTF-8 is expected
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        path.write_text(text)
    return path


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """An earlier riskcore output of SMALL: what each case's output folder holds before it."""
    folder = tmp_path_factory.mktemp("previous")
    scenario = folder / "small.toml"
    scenario.write_text(SMALL)
    out, _, _, _ = run_to_folder(scenario, folder / "out")
    return out


@pytest.fixture
def case_folder(tmp_path, previous):
    write_data(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    before = snapshot(out)
    entries = sorted(p.name for p in tmp_path.iterdir())
    yield tmp_path, out
    assert snapshot(out) == before, "the output folder changed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "s.toml") == entries, "something was left beside it"


CASE_PARAMS = [pytest.param(edit, code, names, id=name) for name, edit, code, names in SCENARIO_CASES]


def test_the_catalogue_is_large_and_its_cases_distinct():
    assert len(SCENARIO_CASES) + len(API_CASES) + len(CLI_CASES) >= 60
    texts = [scenario_text(c[1]) for c in SCENARIO_CASES]
    assert len(set(texts)) == len(texts) and SMALL not in texts


@pytest.mark.parametrize("edit, code, names", CASE_PARAMS)
def test_bad_scenario_through_the_cli(case_folder, capsys, edit, code, names):
    folder, out = case_folder
    scenario = write_scenario(folder, edit)
    assert main(["run", str(scenario), "--out", str(out), "--no-progress"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert str(scenario) in err, err
    for name in names:
        assert name in err, (name, err)


@pytest.mark.parametrize("edit, code, names", CASE_PARAMS)
def test_bad_scenario_through_the_api(case_folder, edit, code, names):
    folder, out = case_folder
    scenario = write_scenario(folder, edit)
    with pytest.raises(MissingDataError if code == 3 else ScenarioError) as info:
        run_to_folder(scenario, out)
    message = str(info.value)
    assert str(scenario) in message
    for name in names:
        assert name in message, (name, message)


# ------------------------------------------------------------------------- the API
BTC = Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                            symbol="BTCUSDT")


def book() -> Book:
    """One contract, one account (alice, 10,000 USDT) long 0.1 BTC at 60,000."""
    b = Book()
    b.add_contract("BTCUSDT", BTC)
    b.add_account("alice", wallet=10_000)
    b.market_order("alice", "BTCUSDT", "buy", 0.1, price=60_000)
    return b


def bars(cells: dict | None = None) -> dict:
    """Three 1-minute bars of BTCUSDT around 60,000, with ``{(row, column): value}`` changed."""
    frame = pd.DataFrame({"timestamp": [0, 60_000, 120_000], "open": [60_000.0] * 3, "high": [60_100.0] * 3,
                          "low": [59_900.0] * 3, "close": [60_000.0] * 3})
    for (row, column), value in (cells or {}).items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return {"BTCUSDT": frame}


def run(paths=None, **kwargs):
    args = {"liquidation_fee_rate": 0.01, "engine": "reference", **kwargs}
    return simulate(book(), bars() if paths is None else paths, **args)


def frames_with(table: str, column: str, value) -> dict:
    frames = book().to_frames()
    frame = frames[table].astype({column: object}).copy()
    frame.loc[0, column] = value
    frames[table] = frame
    return frames


def population(n=3, price=60_000.0, **spec):
    return generate_population_table(n, {"BTCUSDT": BTC}, {"BTCUSDT": price}, seed=1, spec=spec or None)


# id, call (given the folder of data files), exception, fragments of the message
API_CASES = [
    ("book-default-leverage-inf", lambda d: Book(default_leverage=float("inf")), ValueError,
     ["default_leverage", "inf"]),
    ("book-default-leverage-true", lambda d: Book(default_leverage=True), ValueError, ["default_leverage", "True"]),
    ("book-wallet-huge", lambda d: Book().add_account("bob", wallet=1e308), ValueError, ["wallet", "1e+308"]),
    ("book-wallet-negative", lambda d: Book().add_account("bob", wallet=-1.0), ValueError, ["wallet", "-1.0"]),
    ("book-wallet-nan", lambda d: Book().add_account("bob", wallet=float("nan")), ValueError, ["wallet", "nan"]),
    ("book-account-id-bool", lambda d: Book().add_account(True), TypeError, ["account id", "bool"]),
    ("book-deposit-huge", lambda d: book().deposit("alice", 1e308), ValueError, ["deposit", "1e+308"]),
    ("book-order-price-huge", lambda d: book().market_order("alice", "BTCUSDT", "buy", 1e-9, price=1e308),
     ValueError, ["price", "1e+308"]),
    ("book-order-qty-zero", lambda d: book().market_order("alice", "BTCUSDT", "buy", 0, price=60_000), ValueError,
     ["quantity", "0"]),
    ("book-limit-price-negative", lambda d: book().limit_order("alice", "BTCUSDT", "buy", 0.1, price=-5.0),
     ValueError, ["price", "-5.0"]),
    ("book-mark-huge", lambda d: book().set_marks(BTCUSDT=1e308), ValueError, ["mark price of BTCUSDT", "1e+308"]),
    ("book-take-profit-huge", lambda d: book().set_tp_sl("alice", "BTCUSDT", take_profit=1e20), ValueError,
     ["take_profit", "1e+15", "1e+20"]),
    ("book-stop-loss-negative", lambda d: book().set_tp_sl("alice", "BTCUSDT", stop_loss=-1.0), ValueError,
     ["stop_loss", "-1.0"]),
    ("book-mark-unknown-contract", lambda d: book().set_marks(ETHUSDT=3_000.0), KeyError, ["ETHUSDT"]),
    ("book-leverage-below-1", lambda d: book().set_leverage("alice", "BTCUSDT", 0.5), ValueError,
     ["leverage", "0.5"]),
    ("book-taker-fee-half", lambda d: Book().add_contract("ETHUSDT", BTC, taker_fee=0.5), ValueError,
     ["ETHUSDT", "taker_fee", "0.5"]),
    ("simulate-fund-true", lambda d: run(insurance_fund=True), InputError, ["insurance_fund", "True"]),
    ("simulate-fund-huge", lambda d: run(insurance_fund=1e308), InputError, ["insurance_fund", "1e+308"]),
    ("simulate-fee-rate", lambda d: run(liquidation_fee_rate=0.7), InputError, ["liquidation_fee_rate", "0.7"]),
    ("simulate-intrabar", lambda d: run(intrabar="bogus"), InputError, ["intrabar", "bogus"]),
    ("simulate-price-huge", lambda d: run(bars({(1, "high"): 1e308})), InputError,
     ["path of BTCUSDT", "row 1", "'high'", "1e+308"]),
    ("simulate-price-text", lambda d: run(bars({(2, "open"): "abc"})), InputError,
     ["path of BTCUSDT", "row 2", "'open'", "'abc'"]),
    ("simulate-high-below-open", lambda d: run(bars({(0, "high"): 59_000.0})), InputError,
     ["path of BTCUSDT", "row 0", "'high'", "59000.0", "60000.0"]),
    ("simulate-path-of-an-unknown-contract", lambda d: run({"ETHUSDT": bars()["BTCUSDT"]}), InputError,
     ["ETHUSDT"]),
    ("simulate-funding-rate", lambda d: run(funding={"BTCUSDT": pd.DataFrame({"timestamp": [0], "rate": [5.0]})}),
     InputError, ["funding of BTCUSDT", "'rate'", "5.0"]),
    ("simulate-tape-action", lambda d: run(tape=[{"timestamp": 0, "action": "explode"}]), InputError,
     ["tape row 0", "'explode'"]),
    ("simulate-not-a-book", lambda d: run_book_text(), TypeError, ["book", "str"]),
    ("brackets-date", lambda d: Brackets.load("BTCUSDT", "yesterday-ish"), BracketError, ["date", "yesterday-ish"]),
    ("brackets-symbol", lambda d: Brackets.load("NOPEUSDT"), BracketError, ["NOPEUSDT"]),
    ("brackets-tier-mmr", lambda d: Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e6, "mmr": 1.5,
                                                            "max_leverage": 10}]), BracketError, ["tier 1", "1.5"]),
    ("brackets-scaled-negative", lambda d: BTC.scaled(-1.0), BracketError, ["mmr_factor", "-1.0"]),
    ("table-side", lambda d: BookTable.from_frames(frames_with("positions", "side", 1.5)), BookFormatError,
     ["'positions'", "row 0", "'side'", "1.5"]),
    ("table-wallet-huge", lambda d: BookTable.from_frames(frames_with("accounts", "wallet", 1e308)), BookFormatError,
     ["'accounts'", "row 0", "'wallet'", "1e+308"]),
    ("table-qty-text", lambda d: BookTable.from_frames(frames_with("positions", "qty", "lots")), BookFormatError,
     ["'positions'", "row 0", "'qty'", "'lots'"]),
    ("population-spec-share", lambda d: PopulationSpec(long_share=1.5), ValueError, ["long_share", "1.5"]),
    ("population-too-many", lambda d: population(10 ** 12), MemoryError, ["n_accounts", "1,000,000,000,000"]),
    ("population-price-huge", lambda d: population(price=1e308), ValueError, ["BTCUSDT", "1e+308"]),
    ("population-seed", lambda d: generate_population_table(3, {"BTCUSDT": BTC}, {"BTCUSDT": 6e4}, seed=-1),
     ValueError, ["seed", "-1"]),
    ("population-file-side", lambda d: load_population_table(d / "side15"), BookFormatError, ["'side'", "1.5"]),
    ("gbm-seed", lambda d: gbm_paths({"BTCUSDT": 6e4}, 10, seed=-1), ValueError, ["seed", "-1"]),
    ("gbm-too-many-bars", lambda d: gbm_paths({"BTCUSDT": 6e4}, 10 ** 12, seed=1), ValueError,
     ["n_steps", "1,000,000,000,000"]),
    ("gbm-start-huge", lambda d: gbm_paths({"BTCUSDT": 1e308}, 10, seed=1), ValueError, ["BTCUSDT", "1e+308"]),
    ("klines-price-huge", lambda d: load_klines(d / "huge.csv"), InputError, ["huge.csv", "line 5", "'high'",
                                                                             "1e+308"]),
]


def run_book_text():
    return simulate("alice's book", bars(), liquidation_fee_rate=0.01)


@pytest.mark.parametrize("call, error, names", [pytest.param(*c[1:], id=c[0]) for c in API_CASES])
def test_bad_input_through_the_api(tmp_path, call, error, names):
    write_data(tmp_path)
    with pytest.raises(error) as info:
        call(tmp_path)
    message = str(info.value.args[0]) if info.value.args else str(info.value)
    for name in names:
        assert name in message, (name, message)


# ------------------------------------------------------------------------- the command
CLI_CASES = [
    ("no-such-scenario", ["run", "{dir}/missing.toml"], 2, ["missing.toml", "no such scenario file"]),
    ("scenario-is-a-folder", ["run", "{dir}"], 2, ["no such scenario file"]),
    ("brackets-date", ["brackets", "BTCUSDT", "--date", "yesterday-ish"], 2, ["yesterday-ish"]),
    ("brackets-date-without-symbol", ["brackets", "--date", "2024-01-01"], 2, ["--date"]),
]


@pytest.mark.parametrize("argv, code, names", [pytest.param(*c[1:], id=c[0]) for c in CLI_CASES])
def test_bad_arguments_through_the_cli(tmp_path, capsys, argv, code, names):
    assert main([a.format(dir=tmp_path) for a in argv]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    assert list(tmp_path.iterdir()) == []


def test_unknown_option_is_refused_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--outt", "x"])
    assert info.value.code == 2
    assert "--outt" in capsys.readouterr().err


def test_prices_are_accepted_up_to_1e15():
    """1e15 is the largest price a path may hold; the next float above it is refused."""
    assert run(bars({(1, "high"): 1e15})).steps.shape[0] == 3
    with pytest.raises(InputError, match=r"row 1, column 'high': price 1000000000000000\.1\d* is above 1e\+15"):
        run(bars({(1, "high"): float(np.nextafter(1e15, 2e15))}))


def test_valid_inputs_once_refused_are_accepted(tmp_path):
    """A TOML date (not a string) for a bracket table's date, and a fraction for a wick's
    ``recover`` (as ``inject_wick`` takes it), are valid scenario values."""
    from riskcore.scenarios import build_paths, check_variants, load_scenario

    wick = '[[path.wicks]]\ncontract = "BTCUSDT"\nat = 5\ndepth = -0.5\nrecover = 0.5\n'
    plain = load_scenario(write_scenario(tmp_path, sub('"2025-06-19"', "2025-06-19")))
    check_variants(plain)
    assert plain.variants[0][1]["market"]["contracts"]["BTCUSDT"]["brackets"]["date"].isoformat() == "2025-06-19"
    hit = load_scenario(write_scenario(tmp_path, add(wick)))
    before = build_paths(plain, plain.variants[0][1])[0]["BTCUSDT"].iloc[5]
    after = build_paths(hit, hit.variants[0][1])[0]["BTCUSDT"].iloc[5]
    # the wick reaches half the bar's open; recovering half-way from there to the old close
    # closes at open/2 + (close - open/2)/2 = open/4 + close/2
    assert after["low"] == pytest.approx(before["open"] * 0.5)
    assert after["close"] == pytest.approx(before["open"] / 4 + before["close"] / 2)


def _no_accounts(cfg, paths, funding):
    assert cfg["population"]["accounts"] == 0


def _wick_on_the_last_bar(cfg, paths, funding):
    last = paths["BTCUSDT"].iloc[-1]
    assert last["low"] == pytest.approx(last["open"] * 0.8)  # depth -0.2 from the bar's open


def _half_hourly_funding(cfg, paths, funding):
    times = funding["BTCUSDT"]["timestamp"]
    assert (times.diff().dropna() == pd.Timedelta(minutes=30)).all() and len(times) >= 1
    assert (funding["BTCUSDT"]["rate"] == -0.0001).all()


@pytest.mark.parametrize("edit, check", [
    (sub("accounts = 5", "accounts = 0"), _no_accounts),  # an empty study runs
    (add('[[path.wicks]]\ncontract = "BTCUSDT"\nat = -1\ndepth = -0.2\n'), _wick_on_the_last_bar),  # the last bar
    (add("[funding]\nrate = -0.0001\nevery_hours = 0.5\n"), _half_hourly_funding)])
def test_valid_edge_values_pass_the_checks(tmp_path, edit, check):
    from riskcore.scenarios import build_funding, build_paths, check_variants, load_scenario

    scenario = load_scenario(write_scenario(tmp_path, edit))
    check_variants(scenario)
    cfg = scenario.variants[0][1]
    paths, _ = build_paths(scenario, cfg)
    check(cfg, paths, build_funding(scenario, cfg, paths))
