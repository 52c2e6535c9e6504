"""The cases: one registry drives the benchmarks and the differential test (numbagg's pattern).

:data:`CASES` maps a name to a :class:`Case`: a seeded description of a book and a price
path.  ``make_table(case)`` gives the book as a :class:`riskcore.BookTable` and
``make_paths(case)`` the mark-price bars per contract, both drawn with numpy straight
into the columnar tables (no ``Book`` objects: a table of 3.3 million accounts builds in
seconds).  ``small(case)`` is the same generator at a size the pure-Python reference
engine runs in a moment: ``tests/test_bench_cases.py`` runs every case's small version
through both engines and demands identical events, and ``benchmarks/run.py`` times the
full-size version through the public API.

Two kinds of case:

``simulate``
    A synthetic book: ``positions_per_account`` positions per account on distinct
    contracts (of ``contracts``, each with Binance's current BTCUSDT brackets), 30% of
    accounts in hedge mode, each (account, contract) cross or isolated at random, 20% of
    the isolated ones with auto-add-margin, leverage 5, 10 or 20x, notionals log-uniform
    from 2,000 to 5,000,000 USDT (tiers 1-4 of the brackets), wallets 1.05-2.5x the cross
    initial margin, 10% of positions with a stop-loss, 10% with a take-profit, 10% of
    accounts with a resting limit order on their first position's contract.  Paths: one-
    minute bars of a random walk (about 4% a day) with a sell-off of ~8% over up to an
    hour on the first contract.  Timed as ``simulate()`` on the table, the kernel alone
    on the same table packed, a numpy baseline and the speed-of-light loop.
``run``
    ``riskcore run`` end to end on a scenario file (:func:`scenario_text`): ``accounts``
    accounts with one BTCUSDT position each (the scenario population generator), on the
    real 2025-10-10 crash bars when ``../shared/data`` is beside the checkout, else a
    272-bar synthetic GBM path with a 12% wick; ``variants`` of cross / isolated /
    isolated + auto-add / cross with brackets x1.5.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskcore import BookTable, Brackets
from riskcore.table import contract_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
#: the real crash windows a run case can take its bars from: (file, the shipped bracket table's date,
#: the 60 bars of its small version: the window's steepest sell-off)
CRASHES = {
    "2025-10-10": ("BTCUSDT_PERP_1m_20251010T1831_20251010T2253_last.csv.gz", "2025-10-10", (130, 190)),  # 263 bars
    "2020-03-12": ("BTCUSDT_PERP_1m_20200312T1718_20200313T0258_last.csv.gz", "2022-05-21", (329, 389)),  # 580 bars
}
CRASH_FILE = SHARED_DATA / CRASHES["2025-10-10"][0]
SYNTHETIC_BARS = 272  # the e2e path when the crash file is absent
SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT", "GGGUSDT", "HHHUSDT")
START = 100.0
SIM_PARAMS = dict(liquidation_fee_rate=0.01, liquidation_slippage=0.001, insurance_fund=0.0, intrabar="ohlc")
RUN_VARIANTS = (  # (name, TOML inline tables of the variant), the first ``variants`` of a run case
    ("cross", 'population = { isolated_share = 0.0 }'),
    ("isolated", 'population = { isolated_share = 1.0, auto_add_share = 0.0 }'),
    ("isolated + auto-add", 'population = { isolated_share = 1.0, auto_add_share = 1.0 }'),
    ("cross, brackets x1.5", 'population = { isolated_share = 0.0 }\nmarket = { mmr_factor = 1.5 }'),
)


@dataclass(frozen=True)
class Case:
    """A seeded benchmark case.  ``kind`` ``"simulate"`` or ``"run"`` (see the module doc)."""
    name: str
    accounts: int
    bars: int  # run cases: the synthetic path's length (the crash file has its own)
    positions_per_account: int = 3
    contracts: int = 3
    seed: int = 0
    kind: str = "simulate"
    variants: int = 1  # run cases: how many of RUN_VARIANTS
    sol: bool = False  # time the speed-of-light loops
    numpy_bars: int = 0  # time the numpy baseline on this many bars (0: not at all)
    dense: bool = False  # time the kernel again without sleeping accounts
    quick: bool = False  # one of the ``--quick`` cases
    on_request: bool = False  # run only when named with ``--only``
    window: tuple | None = None  # run cases: only bars [start, end) of the path (small versions)
    crash: str = "2025-10-10"  # run cases: the real bars (a key of CRASHES), when ../shared/data has them

    @property
    def crash_file(self) -> Path:
        return SHARED_DATA / CRASHES[self.crash][0]

    @property
    def positions(self) -> int:
        return self.accounts * self.positions_per_account


def _registry(*cases: Case) -> dict[str, Case]:
    out = {}
    for case in cases:
        assert case.name not in out, case.name
        assert case.positions_per_account <= case.contracts <= len(SYMBOLS), case.name
        out[case.name] = case
    return out


CASES = _registry(
    # the full set (``python -m benchmarks``)
    Case("main_1M_x_1440", 1_000_000, 1_440, sol=True, numpy_bars=6, dense=True),
    Case("long_100k_x_43200", 100_000, 43_200, sol=True, numpy_bars=20),
    Case("scale_accounts_25k", 25_000, 720, sol=True),
    Case("scale_accounts_100k", 100_000, 720, sol=True),
    Case("scale_accounts_400k", 400_000, 720, sol=True),
    Case("scale_steps_180", 100_000, 180),
    Case("scale_steps_2880", 100_000, 2_880),
    Case("simulate_10M_x_1440", 3_333_334, 1_440),  # 10,000,002 positions
    Case("run_1M_x1", 1_000_000, SYNTHETIC_BARS, 1, 1, seed=11, kind="run", variants=1),
    Case("run_1M_x4", 1_000_000, SYNTHETIC_BARS, 1, 1, seed=11, kind="run", variants=4),
    # the same on a longer real crash window (2020-03-12, 580 one-minute bars)
    Case("run_1M_x1_580", 1_000_000, SYNTHETIC_BARS, 1, 1, seed=11, kind="run", variants=1, crash="2020-03-12"),
    # only when named: 30 million positions (about 3 GB of table, several times that at peak)
    Case("huge_10M_x_1440", 10_000_000, 1_440, numpy_bars=2, on_request=True),
    # ``--quick``: the same generators, small
    Case("main_20k_x_360", 20_000, 360, sol=True, numpy_bars=10, dense=True, quick=True),
    Case("scale_accounts_5k", 5_000, 360, sol=True, quick=True),
    Case("scale_steps_90", 20_000, 90, quick=True),
    Case("simulate_100k_x_360", 33_334, 360, quick=True),
    Case("run_20k_x1", 20_000, SYNTHETIC_BARS, 1, 1, seed=11, kind="run", variants=1, quick=True),
    Case("run_20k_x4", 20_000, SYNTHETIC_BARS, 1, 1, seed=11, kind="run", variants=4, quick=True),
    # more shapes for the differential test and ad-hoc runs (``--only``)
    Case("one_position_8_contracts", 100_000, 1_440, 1, 8, seed=3, sol=True, on_request=True),
    Case("eight_positions_8_contracts", 100_000, 360, 8, 8, seed=4, sol=True, on_request=True),
)


SMALL_RUN_WINDOW = (130, 190)  # the sell-off of the 2025-10-10 window (and the synthetic path's wick)


def small(case: Case) -> Case:
    """A tiny version of ``case`` (same generator, flags and seed) for the differential test:
    30 accounts (more when a contract would hold only a few positions) and 40 bars; a run
    case keeps 24 accounts and 60 bars around the crash (its window's in :data:`CRASHES`, else
    :data:`SMALL_RUN_WINDOW`, the synthetic path's wick)."""
    if case.kind == "run":
        window = CRASHES[case.crash][2] if case.crash_file.is_file() else SMALL_RUN_WINDOW
        return dataclasses.replace(case, name=f"{case.name}.small", accounts=24, window=window)
    accounts = 30 * -(-case.contracts // case.positions_per_account)
    return dataclasses.replace(case, name=f"{case.name}.small", accounts=min(case.accounts, accounts),
                               bars=min(case.bars, 40))


def selection(quick: bool, only=None) -> dict[str, Case]:
    """The cases a run covers: the full or ``--quick`` set, or the ones named in ``only``."""
    pool = {n: c for n, c in CASES.items() if c.quick == quick}
    if only:
        return {n: CASES[n] for n in only}
    return {n: c for n, c in pool.items() if not c.on_request}


# ------------------------------------------------------------------ simulate cases
def contract_tables(n_contracts: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``contracts`` and ``brackets`` tables: Binance's BTCUSDT brackets on every contract."""
    table = Brackets.load("BTCUSDT")
    symbols = SYMBOLS[:n_contracts]
    return contract_frames({s: table for s in symbols}, {s: START for s in symbols})


def _category(codes: np.ndarray, categories) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(categories))


def synthetic_frames(n_accounts: int, positions_per_account: int, n_contracts: int, seed: int) -> dict:
    """The tables of a ``simulate`` case's book (see the module doc), drawn with numpy."""
    rng = np.random.default_rng(seed)
    k, n_c = positions_per_account, n_contracts
    n = n_accounts * k
    account = np.repeat(np.arange(n_accounts, dtype=np.int64), k)
    if k == n_c:
        contract = np.tile(np.arange(n_c, dtype=np.int8), n_accounts)
    else:  # k distinct contracts per account, in contract order
        contract = np.sort(np.argsort(rng.random((n_accounts, n_c)), axis=1)[:, :k], axis=1).ravel().astype(np.int8)
    hedge = rng.random(n_accounts) < 0.3
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    leg = np.where(np.repeat(hedge, k), np.where(side > 0, 1, 2), 0).astype(np.int8)
    isolated = rng.random(n) < 0.5
    auto = isolated & (rng.random(n) < 0.2)
    lev = rng.choice(np.array([5.0, 10.0, 20.0]), size=n)
    notional = np.exp(rng.uniform(np.log(2e3), np.log(5e6), n))
    qty = notional / START
    entry = START * (1 + rng.normal(0, 0.01, n))
    margin = qty * entry / lev
    wallet_iso = np.where(isolated, margin, 0.0)
    cross_im = np.bincount(account, np.where(isolated, 0.0, margin), minlength=n_accounts)
    wallet = cross_im * rng.uniform(1.05, 2.5, n_accounts) + 50.0
    tp = np.where(rng.random(n) < 0.1, entry * (1 + side * 0.05), np.nan)
    sl = np.where(rng.random(n) < 0.1, entry * (1 - side * 0.04), np.nan)
    has_order = rng.random(n_accounts) < 0.1
    first = np.flatnonzero(has_order) * k  # the account's first position: same contract, leg and side
    n_orders = first.size
    contracts, brackets = contract_tables(n_c)
    symbols = SYMBOLS[:n_c]
    return {
        "meta": pd.DataFrame({"format_version": [1], "default_leverage": [20.0], "fees_collected": [0.0],
                              "next_order_id": [n_orders + 1]}),
        "contracts": contracts, "brackets": brackets,
        "accounts": pd.DataFrame({"account": np.arange(n_accounts, dtype=np.int64), "wallet": wallet,
                                  "position_mode": _category(hedge.astype(np.int8), ("one-way", "hedge"))}),
        "settings": pd.DataFrame({"account": account, "contract": _category(contract, symbols),
                                  "margin_mode": _category(isolated.astype(np.int8), ("cross", "isolated")),
                                  "leverage_long": lev, "leverage_short": lev, "auto_add_long": auto,
                                  "auto_add_short": auto}),
        "positions": pd.DataFrame({"account": account, "contract": _category(contract, symbols),
                                   "leg": _category(leg, ("both", "long", "short")), "side": side, "qty": qty,
                                   "entry_price": entry, "wallet_iso": wallet_iso, "take_profit": tp,
                                   "stop_loss": sl}),
        "orders": pd.DataFrame({"order_id": np.arange(1, n_orders + 1, dtype=np.int64), "account": account[first],
                                "contract": _category(contract[first], symbols),
                                "leg": _category(leg[first], ("both", "long", "short")), "side": side[first],
                                "qty": qty[first] * 0.5, "price": START * (1 - side[first] * 0.02),
                                "reduce_only": np.zeros(n_orders, np.bool_)}),
    }


def synthetic_paths(n_bars: int, n_contracts: int, seed: int) -> dict[str, pd.DataFrame]:
    """One-minute bars per contract: a random walk, the first contract selling off mid-way."""
    rng = np.random.default_rng(seed + 1_000_003)
    n_c = n_contracts
    ret = rng.normal(0, 0.0012, (n_bars, n_c))
    mid, span = n_bars // 2, max(1, min(60, n_bars // 4))
    ret[mid:mid + span, 0] += np.log(0.92) / span
    close = START * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([np.full((1, n_c), START), close[:-1]])
    wick = np.abs(rng.normal(0, 0.0008, (n_bars, n_c, 2)))
    high = np.maximum(open_, close) * (1 + wick[..., 0])
    low = np.minimum(open_, close) * (1 - wick[..., 1])
    stamps = pd.date_range("2025-01-01", periods=n_bars, freq="1min")
    return {s: pd.DataFrame({"timestamp": stamps, "open": open_[:, c], "high": high[:, c], "low": low[:, c],
                             "close": close[:, c]}) for c, s in enumerate(SYMBOLS[:n_c])}


# ----------------------------------------------------------------------- run cases
def scenario_text(case: Case) -> str:
    """The scenario file of a ``run`` case (absolute data paths: it may be written anywhere)."""
    brackets_date = "2025-10-10"
    if case.crash_file.is_file():
        path = (f'[path]\nkind = "file"\ngaps = "refuse"\n\n[path.files]\nBTCUSDT = "{case.crash_file}"\n')
        contract_extra = ""
        brackets_date = CRASHES[case.crash][1]
    else:
        path = (f'[path]\nkind = "gbm"\nn_steps = {case.bars}\ninterval = "1min"\nstart = "2025-10-10 18:31"\n'
                f'vol = 0.8\n\n[[path.wicks]]\ncontract = "BTCUSDT"\nat = {case.bars // 2}\ndepth = -0.12\n'
                f'recover = true\n')
        contract_extra = "start_price = 121_000.0\n"
    variants = "\n".join(f'[[variants]]\nname = "{name}"\n{body}\n' for name, body in RUN_VARIANTS[:case.variants])
    return f"""# generated by benchmarks/cases.py for the case {case.name}
name = "{case.name}"
seed = {case.seed}

[market]
liquidation_fee_rate = 0.0125
insurance_fund = 50_000.0
liquidation_slippage = 0.001

[market.contracts.BTCUSDT]
brackets = {{ venue = "binance", symbol = "BTCUSDT", date = "{brackets_date}" }}
{contract_extra}
{path}
[population]
accounts = {case.accounts}
positions_per_account = 1
notional_median = 10_000.0
leverage = {{ 3 = 0.15, 5 = 0.2, 10 = 0.3, 20 = 0.2, 50 = 0.1, 100 = 0.05 }}
headroom_median = 0.5
hedge_share = 0.0

[engine]
intrabar = "ohlc"

{variants}"""


def write_scenario(case: Case, folder) -> Path:
    path = Path(folder) / f"{case.name}.toml"
    path.write_text(scenario_text(case))
    return path


def _scenario(case: Case, variant: int):
    from riskcore.scenarios import build_paths, load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        scenario = load_scenario(write_scenario(case, tmp))
        cfg = scenario.variants[variant][1]
        paths, _ = build_paths(scenario, cfg)
    if case.window is not None:
        start, end = case.window
        paths = {s: frame.iloc[start:end].reset_index(drop=True) for s, frame in paths.items()}
    return scenario, cfg, paths


def run_params(case: Case, variant: int = 0) -> dict:
    """``simulate()``'s parameters for a run case's variant, as ``riskcore run`` passes them."""
    _, cfg, _ = _scenario(case, variant)
    market, engine = cfg["market"], cfg.get("engine", {})
    return dict(liquidation_fee_rate=market["liquidation_fee_rate"], insurance_fund=market.get("insurance_fund", 0.0),
                liquidation_slippage=market.get("liquidation_slippage", 0.0), intrabar=engine.get("intrabar", "ohlc"),
                mm_basis=engine.get("mm_basis", "mark"))


# --------------------------------------------------------------------- the API
def make_table(case: Case, variant: int = 0) -> BookTable:
    """The case's book as a validated table (a run case: the population of ``variant``)."""
    if case.kind == "run":
        from riskcore.scenarios import build_table

        scenario, cfg, paths = _scenario(case, variant)
        return build_table(scenario, cfg, paths)
    return BookTable.from_frames(synthetic_frames(case.accounts, case.positions_per_account, case.contracts,
                                                  case.seed))


def make_paths(case: Case) -> dict[str, pd.DataFrame]:
    """The case's mark-price bars per contract."""
    if case.kind == "run":
        return _scenario(case, 0)[2]
    return synthetic_paths(case.bars, case.contracts, case.seed)


def params(case: Case, variant: int = 0) -> dict:
    """Keyword arguments of ``simulate()`` for the case."""
    return run_params(case, variant) if case.kind == "run" else dict(SIM_PARAMS)


def frame_bytes(frames) -> int:
    """Bytes held by DataFrames (``deep``: object columns counted by their contents)."""
    return int(sum(f.memory_usage(index=True, deep=True).sum() for f in frames))


def table_bytes(table: BookTable) -> int:
    return frame_bytes([table.contracts, table.brackets, table.accounts, table.settings, table.positions,
                        table.orders])
