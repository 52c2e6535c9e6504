"""Tests of ``riskcore.report``: summary numbers, account outcomes, charts and the HTML page.

The hand-built case (``hand_run``) is worked out in its comments; the population runs check
that ``summarize`` agrees with aggregation of the events and steps written out here, and that
the page shows every summary number and references charts that exist.
"""
from __future__ import annotations

import math
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

from riskcore import Book, Brackets, simulate
from riskcore.populations import PopulationSpec, generate_population
from riskcore.report import (CHARTS, OUTCOME_COLUMNS, SUMMARY_COLUMNS, account_outcomes, format_value, summarize,
                             write_report)
from riskcore.synthetic import gbm_paths, inject_wick

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = pd.Timestamp("2024-01-01")
MINUTE = pd.Timedelta(minutes=1)


def approx(x, abs=1e-6):
    return pytest.approx(x, rel=1e-9, abs=abs)


# ------------------------------------------------------------------- HTML reading
class _Page(HTMLParser):
    """Collects image sources, links, script tags and the cells of the tables by id."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.hrefs: list[str] = []
        self.scripts = 0
        self.tables: dict[str, list[list[str]]] = {}
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = attrs.get("id", f"table{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def read_page(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def parse_number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def check_page(report, summary: pd.DataFrame) -> _Page:
    """report.html exists, references only existing PNGs (all of the charts), has no script or
    external resource, and shows every summary number of every variant in its column."""
    assert report.name == "report.html" and report.is_file()
    page = read_page(report)
    assert page.scripts == 0
    assert all(not h.startswith(("http:", "https:", "//")) for h in page.hrefs + page.images)
    assert sorted(page.images) == sorted(CHARTS)
    for src in page.images:
        png = report.parent / src
        assert png.is_file(), src
        data = png.read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_MAGIC, src
    rows = page.tables["summary"]
    header = rows[0]
    assert header[1:-1] == [str(v) for v in summary.index]
    shown = {row[0]: row[1:-1] for row in rows[1:]}
    assert list(shown) == list(SUMMARY_COLUMNS)
    for col in SUMMARY_COLUMNS:
        for variant, text in zip(summary.index, shown[col]):
            value = summary.loc[variant, col]
            assert text == format_value(col, value)
            if col == "liquidation_rate":
                assert parse_number(text) == pytest.approx(100 * value, abs=0.0051)
            else:
                assert parse_number(text) == pytest.approx(value, abs=0.0051)
    return page


# --------------------------------------------------------------- the hand-built case
def one_tier() -> Brackets:
    return Brackets.from_records([{"notional_floor": 0, "notional_cap": 1e9, "mmr": 0.005, "max_leverage": 100}],
                                 symbol="BTCUSDT")


def bars(rows) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": [T0 + i * MINUTE for i in range(len(rows))],
                         "open": [float(r[0]) for r in rows], "high": [float(r[1]) for r in rows],
                         "low": [float(r[2]) for r in rows], "close": [float(r[3]) for r in rows]})


def hand_book() -> Book:
    """Five accounts on BTCUSDT at 10,000 (one tier, mmr 0.5 %, no trading fees):

    a: isolated long 1 at 10x, wallet 2,000  -> wallet_iso 1,000, cross wallet 1,000
    b: cross long 0.1 at 10x, wallet 5,000
    c: isolated long 1 at 10x with auto-add, wallet 20,000 -> wallet_iso 1,000, wallet 19,000
    d: cross long 1 at 50x, wallet 250
    e: cross short 0.5 at 10x, wallet 10,000
    """
    book = Book()
    book.add_contract("BTCUSDT", one_tier(), maker_fee=0.0, taker_fee=0.0, mark_price=10_000.0)
    for acct, side, qty, wallet, mode, lev, auto in (("a", "buy", 1.0, 2_000, "isolated", 10, False),
                                                      ("b", "buy", 0.1, 5_000, "cross", 10, False),
                                                      ("c", "buy", 1.0, 20_000, "isolated", 10, True),
                                                      ("d", "buy", 1.0, 250, "cross", 50, False),
                                                      ("e", "sell", 0.5, 10_000, "cross", 10, False)):
        book.add_account(acct, wallet=wallet)
        if mode == "isolated":
            book.set_margin_mode(acct, "BTCUSDT", "isolated")
        book.set_leverage(acct, "BTCUSDT", lev)
        if auto:
            book.set_auto_add_margin(acct, "BTCUSDT", True)
        book.market_order(acct, "BTCUSDT", side, qty, 10_000.0)
    return book


# Bar 0 flat at 10,000; bar 1 gaps down to open 8,900, dips to 8,800 and closes at 9,500.
HAND_BARS = [(10_000, 10_000, 10_000, 10_000), (8_900, 9_500, 8_800, 9_500)]
# e withdraws 40 in bar 0, b deposits 100 in bar 1.
HAND_TAPE = [{"timestamp": T0, "action": "withdraw", "account": "e", "amount": 40.0},
             {"timestamp": T0 + MINUTE, "action": "deposit", "account": "b", "amount": 100.0}]


@pytest.fixture(scope="module")
def hand():
    book = hand_book()
    result = simulate(book, {"BTCUSDT": bars(HAND_BARS)}, liquidation_fee_rate=0.01, insurance_fund=30.0,
                      tape=HAND_TAPE)
    assert result.money_check() == approx(0.0)
    return book, result


def test_hand_case_summary(hand):
    # At the gap to 8,900 (bar 1, point 0):
    # c: isolated LP = (10,000 - 1,000) / 0.995 = 9,045.23 >= 8,900 -> top-up
    #    min(Q*EP/L = 1,000, free 19,000, Q*8,900 - 1,000) = 1,000 -> wallet_iso 2,000,
    #    LP = 8,000 / 0.995 = 8,040.2 < 8,800: saved.
    # a: LP 9,045.23, no auto-add -> liquidated at 8,900: equity 1,000 - 1,100 = -100, fee 0, deficit 100.
    # d: cross 250 - 1,100 < MM -> liquidated at 8,900: equity -850, fee 0, deficit 850.
    # Fund 30 pays 30 of 950 pro rata; a's shortfall 100 - 3.16 = 96.84 is ADL'd against e's short 0.5
    # at a's bankruptcy price 8,900 + 100 = 9,000: recovered 0.5 * 100 = 50.  Nothing left for d.
    # socialised = 950 - 30 - 50 = 870.
    # End equity (marks 9,500): a 1,000; b 5,000 + 100 - 50 = 5,050; c 18,000 + 2,000 - 500 = 19,500;
    # d 0; e 10,000 - 40 + 0.5 * (10,000 - 9,000) = 10,460.
    # PnL (end - start - net deposits): a -1,000, b -50, c -500, d -250, e +500 -> mean loss 1,300 / 5 = 260.
    book, result = hand
    s = summarize({"hand": result}, book)
    assert list(s.columns) == list(SUMMARY_COLUMNS) and list(s.index) == ["hand"] and s.index.name == "variant"
    row = s.loc["hand"]
    expected = {"accounts": 5, "positions": 5, "accounts_liquidated": 2, "liquidation_rate": 0.4,
                "liquidations": 2, "liquidated_notional": 17_800.0, "bad_debt": 950.0, "insurance_paid": 30.0,
                "adl_recovered": 50.0, "socialised_loss": 870.0, "adl_events": 1, "topups": 1,
                "topup_amount": 1_000.0, "mean_loss_per_account": 260.0, "insurance_fund_start": 30.0,
                "final_insurance_fund": 0.0, "accounts_saved_by_auto_add": 1}
    for col, value in expected.items():
        assert row[col] == approx(value), col
    for col in ("accounts", "positions", "accounts_liquidated", "liquidations", "adl_events", "topups",
                "accounts_saved_by_auto_add"):
        assert s[col].dtype == "int64"


def test_hand_case_outcomes(hand):
    book, result = hand
    out = account_outcomes(result, book).set_index("account")
    assert list(account_outcomes(result, book).columns) == OUTCOME_COLUMNS
    assert list(out.index) == ["a", "b", "c", "d", "e"]
    assert list(out["margin_modes"]) == ["isolated", "cross", "isolated", "cross", "cross"]
    assert list(out["auto_add"]) == [False, False, True, False, False]
    assert list(out["start_equity"]) == [approx(v) for v in (2_000, 5_000, 20_000, 250, 10_000)]
    assert list(out["net_deposits"]) == [approx(v) for v in (0, 100, 0, 0, -40)]
    assert list(out["end_equity"]) == [approx(v) for v in (1_000, 5_050, 19_500, 0, 10_460)]
    assert list(out["pnl"]) == [approx(v) for v in (-1_000, -50, -500, -250, 500)]
    assert list(out["pnl_pct"]) == [approx(v) for v in (-50, -1, -2.5, -100, 5)]
    assert list(out["liquidated"]) == [True, False, False, True, False]
    assert list(out["liquidated_notional"]) == [approx(v) for v in (8_900, 0, 0, 8_900, 0)]
    assert list(out["bad_debt"]) == [approx(v) for v in (100, 0, 0, 850, 0)]
    assert list(out["topups"]) == [0, 0, 1, 0, 0]
    assert list(out["saved_by_auto_add"]) == [False, False, True, False, False]


def test_equity_is_the_books_equity(hand):
    book, result = hand
    out = account_outcomes(result, book).set_index("account")
    start = book.accounts_frame().set_index("account")["equity"]
    end = result.book.accounts_frame().set_index("account")["equity"]
    assert list(out["start_equity"]) == [approx(v) for v in start[out.index]]
    assert list(out["end_equity"]) == [approx(v) for v in end[out.index]]


def test_hand_case_report(hand, tmp_path):
    book, result = hand
    had_pyplot = "matplotlib.pyplot" in sys.modules
    calm = simulate(book, {"BTCUSDT": bars([HAND_BARS[0]] * 2)}, liquidation_fee_rate=0.01, insurance_fund=30.0)
    assert calm.events.empty
    runs = {"gap": result, "calm <no events>": calm}
    report = write_report(tmp_path, runs, {"BTCUSDT": bars(HAND_BARS)}, book, title="Hand case & <friends>",
                          notes=["last-price klines stand in for mark prices", "a <b>note</b>"],
                          price_source="hand-written bars")
    # the charts are drawn without pyplot, so the report never picks or changes the process's backend
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules
    summary = summarize(runs, book)
    assert summary.loc["calm <no events>", "liquidations"] == 0
    assert summary.loc["calm <no events>", "mean_loss_per_account"] == approx(0.0)
    check_page(report, summary)
    text = report.read_text(encoding="utf-8")
    assert "<title>Hand case &amp; &lt;friends&gt;</title>" in text
    assert "calm &lt;no events&gt;" in text and "<no events>" not in text
    assert "a &lt;b&gt;note&lt;/b&gt;" in text
    assert "last-price klines stand in for mark prices" in text and "hand-written bars" in text
    params = {row[0]: row[1:] for row in read_page(report).tables["params"][1:]}
    assert params["liquidation_fee_rate"] == ["0.01", "0.01"]
    assert params["intrabar"] == ["ohlc", "ohlc"]


# ---------------------------------------------------------------- population runs
VARIANTS = {"cross": {"isolated_share": 0.0, "auto_add_share": 0.0},
            "isolated": {"isolated_share": 1.0, "auto_add_share": 0.0},
            "isolated+auto-add": {"isolated_share": 1.0, "auto_add_share": 1.0}}


@pytest.fixture(scope="module")
def population_runs():
    """200 accounts (same seed) in three margin variants through a GBM path with a -12% wick."""
    brackets = {"BTCUSDT": Brackets.load("BTCUSDT", "2024-10-31")}
    prices = {"BTCUSDT": 60_000.0}
    paths = inject_wick(gbm_paths(prices, 30, vol=0.8, seed=5), "BTCUSDT", at=15, depth=-0.12)
    books, runs = {}, {}
    for name, spec in VARIANTS.items():
        books[name] = generate_population(200, brackets, prices, seed=11, spec=PopulationSpec(**spec))
        runs[name] = simulate(books[name], paths, liquidation_fee_rate=0.0125, insurance_fund=500.0)
    return books, runs, paths


def test_population_summary_agrees_with_events(population_runs):
    books, runs, _ = population_runs
    s = summarize(runs, books)
    assert list(s.index) == list(VARIANTS)
    for name, result in runs.items():
        ev, steps, book = result.events, result.steps, books[name]
        liq = ev[ev["kind"] == "liquidation"]
        top = ev[ev["kind"] == "topup"]
        row = s.loc[name]
        assert row["accounts"] == 200
        assert row["positions"] == sum(len(a.positions) for a in book.accounts.values())
        assert row["accounts_liquidated"] == len(set(liq["account"]))
        assert row["liquidation_rate"] == approx(len(set(liq["account"])) / 200)
        assert row["liquidations"] == len(liq) == steps["liquidations"].sum()
        assert row["liquidated_notional"] == approx((liq["qty"] * liq["price"]).sum(), abs=1e-4)
        assert row["liquidated_notional"] == approx(steps["liquidated_notional"].sum(), abs=1e-4)
        assert row["bad_debt"] == approx(ev.loc[ev["kind"] == "bad_debt", "amount"].sum())
        assert row["topups"] == len(top)
        assert row["topup_amount"] == approx(top["amount"].sum(), abs=1e-6)
        assert row["final_insurance_fund"] == approx(result.ledger["insurance_fund"])
        assert row["bad_debt"] == approx(row["insurance_paid"] + row["adl_recovered"] + row["socialised_loss"])
        saved = set(top["account"]) - set(liq["account"])
        assert row["accounts_saved_by_auto_add"] == len(saved)
        start = book.accounts_frame().set_index("account")["equity"]
        end = result.book.accounts_frame().set_index("account")["equity"]
        assert row["mean_loss_per_account"] == approx((start - end[start.index]).mean(), abs=1e-6)
    # The variants differ as they should: a wick liquidates someone, auto-add only acts when on.
    assert s.loc["isolated", "accounts_liquidated"] > 0
    assert s.loc["cross", "topups"] == 0 and s.loc["isolated", "topups"] == 0
    assert s.loc["isolated+auto-add", "topups"] > 0
    assert s.loc["isolated+auto-add", "accounts_saved_by_auto_add"] > 0


def test_population_report(population_runs, tmp_path):
    books, runs, paths = population_runs
    out = tmp_path / "report"
    report = write_report(out, runs, paths, books, title="Wick test", notes=("synthetic GBM with a wick",),
                          price_source="riskcore.synthetic.gbm_paths(seed=5)")
    assert report == out / "report.html"
    check_page(report, summarize(runs, books))
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.html", *CHARTS])


def test_outcomes_of_population(population_runs):
    books, runs, _ = population_runs
    out = account_outcomes(runs["isolated+auto-add"], books["isolated+auto-add"])
    assert len(out) == 200 and out["account"].tolist() == list(books["isolated+auto-add"].accounts)
    assert set(out["margin_modes"]) == {"isolated"}
    assert out["auto_add"].all()
    assert out["pnl"].to_numpy() == pytest.approx((out["end_equity"] - out["start_equity"]).to_numpy())
    assert (out["saved_by_auto_add"] == ((out["topups"] > 0) & ~out["liquidated"])).all()
    assert set(account_outcomes(runs["cross"], books["cross"])["margin_modes"]) == {"cross"}


# ----------------------------------------------------------------------- edge cases
def test_bad_arguments(hand):
    book, result = hand
    with pytest.raises(ValueError, match="non-empty"):
        summarize({}, book)
    with pytest.raises(ValueError, match="no book for variant 'other'"):
        summarize({"other": result}, {"hand": book})
    with pytest.raises(TypeError, match="riskcore.Result"):
        summarize({"x": "not a result"}, book)
    with pytest.raises(TypeError, match="start_book"):
        summarize({"x": result}, "not a book")


def test_format_value():
    assert format_value("accounts", 12345) == "12,345"
    assert format_value("liquidation_rate", 0.1234) == "12.34%"
    assert format_value("bad_debt", 1234.5) == "1,234.50"
    assert format_value("mean_loss_per_account", math.nan) == "n/a"


def test_no_matplotlib_at_import():
    code = "import sys, riskcore, riskcore.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wrong_start_book_is_refused(population_runs):
    # Same seed, other isolated_share: the deposits differ (cross hedge legs share the lower
    # leverage), so the cross book is not where the isolated runs started.
    books, runs, _ = population_runs
    with pytest.raises(ValueError, match="not the book variant 'isolated' started from"):
        summarize(runs, books["cross"])
    with pytest.raises(ValueError, match="not the book the run started from"):
        account_outcomes(runs["isolated"], books["cross"])
    summarize({"isolated": runs["isolated"], "auto": runs["isolated+auto-add"]}, books["isolated"])
