"""The canonical columnar book: validation names table, row and column; canonical dtypes;
round trips through the Book, Arrow and Parquet; no import circle."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskcore import Book, BookFormatError, BookTable, Brackets
from riskcore.populations import generate_population_table

ONE_TIER = [{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}]


def small_book() -> Book:
    book = Book()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        book.add_contract(symbol, Brackets.from_records(ONE_TIER, symbol=symbol), mark_price=100.0)
    book.add_account("a", wallet=10_000)
    book.set_margin_mode("a", "BTCUSDT", "isolated")
    book.set_leverage("a", "BTCUSDT", 10)
    book.market_order("a", "BTCUSDT", "buy", 5, price=100.0)
    book.add_account("b", wallet=5_000, position_mode="hedge")
    book.market_order("b", "ETHUSDT", "sell", 2, price=100.0, leg="short")
    book.market_order("b", "ETHUSDT", "buy", 1, price=100.0, leg="long")
    book.limit_order("b", "BTCUSDT", "buy", 1, 90.0, leg="long")
    return book


def plain(book: Book) -> dict:
    return book.to_frames()


def test_canonical_dtypes_and_round_trips(tmp_path):
    book = small_book()
    table = book.to_table()
    assert isinstance(table.positions["contract"].dtype, pd.CategoricalDtype)
    assert list(table.positions["contract"].cat.categories) == ["BTCUSDT", "ETHUSDT"]
    assert list(table.positions["leg"].cat.categories) == ["both", "long", "short"]
    assert table.positions["side"].dtype == np.int8
    assert Book.from_table(table) == book
    assert BookTable.from_frames(table.frames()) == table  # canonical: validation changes nothing
    assert BookTable.from_frames(table.frames(plain=True)) == table
    assert BookTable.from_arrow(table.to_arrow()) == table
    table.write_parquet(tmp_path / "book")
    assert BookTable.read_parquet(tmp_path / "book") == table
    assert Book.read_parquet(tmp_path / "book") == book


def test_int_account_ids_are_int64():
    table = generate_population_table(50, {"BTCUSDT": Brackets.load("BTCUSDT")}, {"BTCUSDT": 60_000.0}, seed=1)
    assert table.accounts["account"].dtype == np.int64
    assert table.positions["account"].dtype == np.int64


def edit(table: str, row: int, column: str, value):
    frames = plain(small_book())
    frame = frames[table].copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    frames[table] = frame
    return frames


@pytest.mark.parametrize("table, row, column, value, message", [
    ("positions", 0, "side", 1.5, "must be +1 or -1"),
    ("positions", 1, "qty", 0.0, "must be > 0"),
    ("positions", 0, "qty", True, "not a number"),
    ("positions", 0, "entry_price", "abc", "not a number"),
    ("positions", 0, "entry_price", 1e308, "outside the range"),
    ("positions", 0, "entry_price", np.inf, "not a finite number"),
    ("positions", 0, "contract", "DOGEUSDT", "unknown contract"),
    ("positions", 0, "account", "zz", "unknown account"),
    ("positions", 0, "leg", "long", "is one-way"),
    ("positions", 1, "leg", "both", "is in hedge mode"),
    ("positions", 0, "wallet_iso", np.inf, "not a finite number"),
    ("positions", 1, "wallet_iso", 5.0, "a cross position has no isolated wallet"),
    ("accounts", 1, "account", "a", "listed twice"),
    ("accounts", 0, "position_mode", "sideways", "not one of"),
    ("accounts", 0, "wallet", np.nan, "not a finite number"),
    ("settings", 0, "auto_add_long", "yes", "must be true or false"),
    ("settings", 0, "margin_mode", "portfolio", "not one of"),
    ("orders", 0, "order_id", 99, "must be an int from 1"),
    ("orders", 0, "side", 0, "must be +1 (buy) or -1 (sell)"),
    ("orders", 0, "price", -5.0, "must be > 0"),
    ("contracts", 0, "taker_fee", 0.5, "plausible fee rate"),
])
def test_validation_names_table_row_and_column(table, row, column, value, message):
    with pytest.raises(BookFormatError, match=rf"table '{table}' row {row}, column '{column}': .*{re.escape(message)}"):
        BookTable.from_frames(edit(table, row, column, value))


def test_duplicate_position_and_leverage_cap():
    frames = plain(small_book())
    frames["positions"] = pd.concat([frames["positions"], frames["positions"].iloc[[0]]], ignore_index=True)
    with pytest.raises(BookFormatError, match=r"table 'positions' row 3, column 'leg': a second position"):
        BookTable.from_frames(frames)
    frames = plain(small_book())
    frames["settings"].loc[0, ["leverage_long", "leverage_short"]] = 500.0
    with pytest.raises(BookFormatError, match=r"table 'settings' row 0, column 'leverage_long': above the BTCUSDT "
                                              r"brackets' highest max leverage 100"):
        BookTable.from_frames(frames)


def test_missing_table_and_column_are_named():
    frames = plain(small_book())
    del frames["orders"]
    with pytest.raises(BookFormatError, match="no 'orders' table"):
        BookTable.from_frames(frames)
    frames = plain(small_book())
    frames["positions"] = frames["positions"].drop(columns="qty")
    with pytest.raises(BookFormatError, match=r"table 'positions' lacks column\(s\) \['qty'\]"):
        BookTable.from_frames(frames)


def test_bad_brackets_name_the_contract():
    frames = plain(small_book())
    frames["brackets"].loc[0, "mmr"] = 2.0
    with pytest.raises(BookFormatError, match="table 'brackets', contract 'BTCUSDT'"):
        BookTable.from_frames(frames)


def test_validation_is_vectorised_on_a_big_table():
    """A million positions validate without a Python loop over rows (bounded by wall time
    only loosely: the old per-row validation took minutes)."""
    table = generate_population_table(300_000, {"BTCUSDT": Brackets.load("BTCUSDT")}, {"BTCUSDT": 60_000.0},
                                      seed=2, spec={"positions_per_account": 3, "hedge_share": 1.0})
    frames = table.frames()
    frames["positions"] = frames["positions"].copy()
    frames["positions"].loc[len(frames["positions"]) - 1, "qty"] = -1.0
    with pytest.raises(BookFormatError, match=rf"table 'positions' row {len(frames['positions']) - 1}, "
                                              r"column 'qty'"):
        BookTable.from_frames(frames)


PACKAGE = Path(__file__).resolve().parents[1] / "riskcore"


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """riskcore modules imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    module = ".".join(("riskcore",) + path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("riskcore"):
                found.add(name)
                found.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("riskcore"))
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("riskcore",) + (parts[:-1] if parts[-1] == "__init__" else parts))
        out[name] = path
    return out


def test_no_import_circle_between_modules():
    """Module-level imports between riskcore's modules form no cycle (packages' __init__
    files, which only re-export, are left out)."""
    modules = _modules()
    graph = {m: {i for i in _imports(p, True) if i in modules and i != m and p.name != "__init__.py"}
             for m, p in modules.items() if p.name != "__init__.py"}
    state: dict = {}
    circles: list = []

    def visit(m, stack):
        state[m] = 1
        for n in graph.get(m, ()):
            if state.get(n) == 1:
                circles.append(" -> ".join(stack + [m, n]))
            elif n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
    assert len(graph) > 20  # the walk saw the package
    assert circles == [], circles


def test_kernels_and_table_never_import_book_or_reference_at_module_level():
    for path in list((PACKAGE / "kernels").glob("*.py")) + [PACKAGE / "table.py", PACKAGE / "readouts.py"]:
        bad = {i for i in _imports(path, True) if i.startswith(("riskcore.book", "riskcore.reference"))}
        assert not bad, (path.name, bad)


def test_kernels_never_import_book_or_reference_at_all():
    for path in (PACKAGE / "kernels").glob("*.py"):
        bad = {i for i in _imports(path, False) if i.startswith(("riskcore.book", "riskcore.reference"))}
        assert not bad, (path.name, bad)


def test_booleans_and_infinities_are_not_numbers():
    from riskcore import InputError, simulate

    with pytest.raises(ValueError, match="default_leverage"):
        Book(default_leverage=float("inf"))
    with pytest.raises(ValueError, match="default_leverage"):
        Book(default_leverage=True)
    book = small_book()
    bars = pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=2, freq="1min"), "open": 100.0,
                         "high": 100.0, "low": 100.0, "close": 100.0})
    with pytest.raises(InputError, match="insurance_fund"):
        simulate(book, {"BTCUSDT": bars, "ETHUSDT": bars}, liquidation_fee_rate=0.01, insurance_fund=True)
