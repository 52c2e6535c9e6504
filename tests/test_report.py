"""Tests of ``riskcore.report``: summary numbers, account outcomes, charts and the HTML page.

The hand-built case (``hand_run``) is worked out in its comments; the population runs check
that ``summarize`` agrees with aggregation of the events and steps written out here, and that
the page shows every summary number and references charts that exist.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import riskcore.report as report_module
from riskcore import Book, Brackets, simulate
from riskcore.populations import PopulationSpec, generate_population
from riskcore.report import (CHARTS, MODES, OUTCOME_COLUMNS, SECTION_CHARTS, SECTIONS, SUMMARY_COLUMNS,
                             account_outcomes, distance_table, format_value, leverage_table, loss_buckets, short_money,
                             summarize, write_report)
from riskcore.synthetic import gbm_paths, inject_wick

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = pd.Timestamp("2024-01-01")
MINUTE = pd.Timedelta(minutes=1)


def approx(x, abs=1e-6):
    return pytest.approx(x, rel=1e-9, abs=abs)


# ------------------------------------------------------------------- HTML reading
class _Page(HTMLParser):
    """Collects image sources, links, script tags, element ids, the text of list items and
    the cells of the tables by id."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.hrefs: list[str] = []
        self.ids: list[str] = []
        self.items: list[str] = []
        self._item = None
        self.scripts = 0
        self.external = 0  # <link>, <iframe>, <object>, <embed>, <audio>, <video>, <source> elements
        self.tables: dict[str, list[list[str]]] = {}
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag in ("link", "iframe", "object", "embed", "audio", "video", "source"):
            self.external += 1
        if tag == "li":
            self._item = ""
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
        if tag == "li" and self._item is not None:
            self.items.append(" ".join(self._item.split()))
            self._item = None
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
        if self._item is not None:
            self._item += data


def read_page(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def parse_number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def check_page(report, summary: pd.DataFrame) -> _Page:
    """report.html exists, has every section, references only existing PNGs (all of the
    charts) that load as images of a sensible size, has no script or external resource,
    and shows every summary number of every variant in its column, with its unit."""
    import matplotlib.image as mpimg

    assert report.name == "report.html" and report.is_file()
    page = read_page(report)
    assert page.scripts == 0 and page.external == 0
    assert "url(" not in report.read_text(encoding="utf-8")  # no resource pulled in by the CSS
    assert all(h.startswith("#") for h in page.hrefs)  # links only within the page
    assert all(not s.startswith(("http:", "https:", "//", "data:")) for s in page.images)
    for section in SECTIONS:
        assert section in page.ids, section
    for table in ("summary", "by-leverage", "by-distance", "params"):
        assert table in page.tables, table
    # every chart, and those of the sections the runs call for (Cascades, Auto-deleveraging)
    assert sorted(set(page.images) - set(SECTION_CHARTS)) == sorted(CHARTS)
    for src in page.images:
        png = report.parent / src
        assert png.is_file(), src
        data = png.read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_MAGIC, src
        image = mpimg.imread(png)
        height, width = image.shape[:2]
        assert width >= 800 and 200 <= height <= 4000, (src, image.shape)
        assert image[..., :3].std() > 0.01, src  # not a blank canvas
    rows = page.tables["summary"]
    groups, header = rows[0], rows[1]
    assert header[0] == "metric" and header[1] == "unit" and header[-1] == "meaning"
    assert header[2:-1] == [str(v) for v in summary.index]
    assert all(g in MODES for g in groups if g)
    shown = {row[0]: row[2:-1] for row in rows[2:]}
    units = {row[0]: row[1] for row in rows[2:]}
    assert list(shown) == list(SUMMARY_COLUMNS)
    assert units["bad_debt"] == "USDT" and units["mean_loss_per_account"] == "USDT"
    assert units["liquidation_rate"] == "% of accounts" and units["accounts_liquidated"] == "accounts"
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
    page = read_page(report)
    # both variants start from the same book with the same settings: nothing differs but the path
    assert "params-diff" not in page.tables
    params = {row[0]: row[1:] for row in page.tables["params"][1:]}
    assert params["liquidation_fee_rate"] == ["0.01"]
    assert params["intrabar"] == ["ohlc"]
    assert params["accounts' margin mode"] == ["cross 60%, isolated 20%, isolated + auto-add 20%"]
    assert params["leverage"] == ["10x, 50x"]
    assert params["positions per account"] == ["one"]
    assert params["BTCUSDT maintenance rates (first tiers)"] == ["0.5%"]
    # the title block: no description given, so the title is the heading; no seed given
    assert "<h1>Hand case &amp; &lt;friends&gt;</h1>" in text
    assert "2024-01-01 00:00 to 00:02 UTC (2 min, 2 bars of 1 min)" in text
    assert "not given" in text and ">0.1.0<" in text
    # bad debt, so no note that explains its absence; the finding gives the amounts
    assert "No variant has bad debt" not in text
    assert any(item.startswith("Bad debt in gap: 950.00 USDT (insurance fund paid 30.00, auto-deleveraging "
                               "recovered 50.00, socialised 870.00)") for item in page.items)


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


def test_chart_helper_draws_the_same_report(population_runs, tmp_path):
    """Half of the charts drawn by the helper process: the same files, byte for byte; a
    helper that died meanwhile leaves its charts to this process."""
    from riskcore.report import ChartHelper

    books, runs, paths = population_runs
    kw = dict(title="Wick test", price_source="riskcore.synthetic.gbm_paths(seed=5)")
    write_report(tmp_path / "here", runs, paths, books, **kw)
    with ChartHelper() as helper:
        write_report(tmp_path / "helped", runs, paths, books, chart_helper=helper, **kw)
        pid = next(iter(helper.pool._processes))
        os.kill(pid, signal.SIGKILL)
        helper.pool._processes[pid].join()
        write_report(tmp_path / "orphaned", runs, paths, books, chart_helper=helper, **kw)
    here = {p.name: p.read_bytes() for p in (tmp_path / "here").iterdir()}
    assert sorted(here) == sorted(["report.html", *CHARTS])
    for other in ("helped", "orphaned"):
        assert {p.name: p.read_bytes() for p in (tmp_path / other).iterdir()} == here, other


def test_a_chart_failing_in_the_helper_fails_the_report(population_runs, tmp_path):
    from riskcore.report import ChartHelper

    books, runs, paths = population_runs
    broken = {name: dataclasses.replace(report_module.digest(r, books[name]), pnl_pct="not numbers")
              for name, r in runs.items()}
    styles = report_module._styles(broken, [])
    with pytest.raises((TypeError, ValueError)) as here:
        report_module._draw_charts([("_chart_outcomes", (tmp_path / "o.png", broken, styles))], [], None)
    with ChartHelper() as helper, pytest.raises(type(here.value)) as there:
        report_module._draw_charts([("_chart_outcomes", (tmp_path / "o.png", broken, styles))], [], helper)
    assert str(there.value) == str(here.value)


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


# ------------------------------------------------------ accounts by leverage, distance, loss
def test_hand_case_new_outcome_columns(hand):
    # Start positions: a, b, c, e at 10x and d at 50x, one each.  Liquidation prices at the
    # start (mark 10,000, mmr 0.5%, cum 0):
    # a, c: isolated long 1, wallet_iso 1,000: LP = (10,000 - 1,000) / 0.995 = 9,045.226 -> 9.5477%
    # b: cross long 0.1, wallet 5,000: LP = (5,000 - 1,000) / (0.1 * 0.005 - 0.1) < 0 -> none (inf)
    # d: cross long 1, wallet 250: LP = (250 - 10,000) / (0.005 - 1) = 9,798.995 -> 2.01005%
    # e: cross short 0.5, wallet 10,000: LP = (10,000 + 5,000) / (0.5 * 1.005) = 29,850.746
    #    -> -1 * (10,000 - 29,850.746) / 10,000 = 198.507%
    book, result = hand
    out = account_outcomes(result, book).set_index("account")
    assert list(out["positions"]) == [1, 1, 1, 1, 1]
    assert list(out["leverage"]) == [10.0, 10.0, 10.0, 50.0, 10.0]
    dist = out["liquidation_distance"]
    assert dist["a"] == approx(1 - 9_000 / 0.995 / 10_000) and dist["c"] == approx(dist["a"])
    assert math.isinf(dist["b"])
    assert dist["d"] == approx(1 - 9_750 / 0.995 / 10_000)
    assert dist["e"] == approx(15_000 / 0.5025 / 10_000 - 1)


def test_hand_case_by_leverage(hand):
    # (mode, leverage): accounts, liquidated, mean loss (pnl: a -1,000, b -50, c -500, d -250, e +500)
    # cross 10x: b, e -> 2, 0, -(-50 + 500) / 2 = -225 (a mean gain)
    # cross 50x: d -> 1, 1, 250;  isolated 10x: a -> 1, 1, 1,000;  isolated + auto-add 10x: c -> 1, 0, 500
    book, result = hand
    lev = leverage_table({"gap": result}, book)
    got = [(r.mode, r.label, r.accounts, r.liquidated, round(r.mean_loss, 6), r.lost_all) for r in lev.itertuples()]
    assert got == [("cross", "10x", 2, 0, -225.0, 0), ("cross", "50x", 1, 1, 250.0, 1),
                   ("isolated", "10x", 1, 1, 1_000.0, 0), ("isolated + auto-add", "10x", 1, 0, 500.0, 0)]
    assert list(lev["liquidation_rate"]) == [0.0, 1.0, 1.0, 0.0]
    assert set(lev["variant"]) == {"gap"}


def test_hand_case_by_distance_and_losses(hand):
    # distances (previous test): d 2.0% -> "2% to 5%"; a, c 9.5% -> "5% to 10%"; e 198.5% -> "50% or more";
    # b -> never.  Liquidated: a and d.
    book, result = hand
    dist = distance_table({"gap": result}, book).set_index("distance")
    assert list(dist.index) == ["under 1%", "1% to 2%", "2% to 5%", "5% to 10%", "10% to 20%", "20% to 50%",
                                "50% or more", "never (no liquidation price)"]
    assert list(dist["accounts"]) == [0, 0, 1, 2, 0, 0, 1, 1]
    assert list(dist["liquidated"]) == [0, 0, 1, 1, 0, 0, 0, 0]
    assert list(dist["share"]) == [approx(v) for v in (0, 0, 0.2, 0.4, 0, 0, 0.2, 0.2)]
    assert dist.loc["5% to 10%", "liquidation_rate"] == approx(0.5)
    assert math.isnan(dist.loc["under 1%", "liquidation_rate"])
    assert dist.loc["5% to 10%", "mean_loss"] == approx((1_000 + 500) / 2)
    # PnL %: a -50, b -1, c -2.5, d -100, e +5 -> gained 1 (e), lost under 10% 2 (b, c), 10-50% none
    # (a lost exactly 50%: the 50-99% bucket holds -50), 50-99% 1 (a), 99% or more 1 (d)
    out = account_outcomes(result, book)
    assert list(loss_buckets(out["pnl_pct"].to_numpy())) == [1, 2, 0, 1, 1]
    from riskcore.report import digest

    d = digest(result, book)
    # losses: a 1,000, b 50, c 500, d 250, e -500 -> gained or flat 1 (e), up to 100: b, 100-1k: a, c, d
    assert list(d.loss_counts) == [1, 1, 3, 0, 0, 0]
    assert d.loss_stats["losers"] == 4 and d.loss_stats["total_loss"] == approx(1_800.0)
    assert d.loss_stats["top10_share"] == approx(1_000 / 1_800)  # the top 10% of 5 accounts: one account
    assert d.profile["mode"] == "mixed" and d.profile["max_positions_per_account"] == 1
    assert d.profile["max_distance_liquidated"] == approx(1 - 9_000 / 0.995 / 10_000)  # a
    assert d.profile["min_distance_survived"] == approx(1 - 9_000 / 0.995 / 10_000)  # c, before its top-up


def test_leverage_ranges_when_many_leverages():
    # Thirteen cross accounts at 1x..13x through a flat bar: more than twelve distinct leverages, so
    # ranges whose upper edge is included: up to 2x {1, 2}, 2-3x {3}, 3-5x {4, 5}, 5-10x {6..10},
    # 10-20x {11, 12, 13}; nobody liquidated, nobody lost anything.
    book = Book()
    book.add_contract("BTCUSDT", one_tier(), maker_fee=0.0, taker_fee=0.0, mark_price=10_000.0)
    for lev in range(1, 14):
        acct = f"x{lev}"
        book.add_account(acct, wallet=1_000)
        book.set_leverage(acct, "BTCUSDT", lev)
        book.market_order(acct, "BTCUSDT", "buy", 0.01, 10_000.0)
    result = simulate(book, {"BTCUSDT": bars([HAND_BARS[0]])}, liquidation_fee_rate=0.01)
    lev = leverage_table({"flat": result}, book)
    assert list(lev["label"]) == ["up to 2x", "2-3x", "3-5x", "5-10x", "10-20x"]
    assert list(lev["accounts"]) == [2, 1, 2, 5, 3]
    assert list(lev["liquidated"]) == [0] * 5 and list(lev["mean_loss"]) == [approx(0.0)] * 5
    assert set(lev["mode"]) == {"cross"}


def test_short_money():
    assert short_money(1.2e7, "USDT") == "12M USDT"
    assert short_money(10_000_000, "USDT") == "10M USDT"
    assert short_money(4_548_905.81, "USDT") == "4.55M USDT"
    assert short_money(269_101.15) == "269k"
    assert short_money(950.0, "USDT") == "950 USDT"
    assert short_money(0.0, "USDT") == "0"
    assert short_money(-2.5e9) == "-2.5B"


def test_population_findings(population_runs, tmp_path):
    books, runs, paths = population_runs
    summary = summarize(runs, books)
    report = write_report(tmp_path, runs, paths, books, title="Wick test")
    page = read_page(report)
    liq = summary["accounts_liquidated"]
    # the variants are grouped by the margin mode their accounts hold
    assert page.tables["summary"][0][1:-1] == ["cross", "isolated", "isolated + auto-add"]
    a, b = int(liq["isolated+auto-add"]), int(liq["isolated"])
    assert b > a > 0
    change = (b - a) / b
    pct = f"{change:.0%}" if change >= 0.01 else f"{change:.1%}"
    assert any(item.startswith(f"Isolated + auto-add liquidated {pct} fewer accounts than isolated "
                               f"({a:,} against {b:,})") for item in page.items), page.items
    first = page.items[0]
    assert first.startswith(f"Accounts liquidated, of 200: isolated {b:,} ({b / 200:.1%})")
    no_debt = float(summary["bad_debt"].sum()) == 0.0
    assert any(i.startswith("No variant has bad debt") for i in page.items) == no_debt
    # the parameter table shows what differs: the accounts' margin mode
    diff = {row[0]: row[1:] for row in page.tables["params-diff"][1:]}
    assert diff["accounts' margin mode"] == ["cross, every account", "isolated, every account",
                                             "isolated + auto-add, every account"]
    # leverage rows by variant: every account appears once per variant
    lev = leverage_table(runs, books)
    assert lev.groupby("variant")["accounts"].sum().to_dict() == {n: 200 for n in VARIANTS}
    assert lev.groupby("variant")["liquidated"].sum().to_dict() == liq.to_dict()
    rows = page.tables["by-leverage"]
    assert [r[0] for r in rows[2:]] == list(lev.drop_duplicates("leverage")["label"])


# --------------------------------------------------------------- a scenario's report
CRASH = textwrap.dedent("""
    name = "mini-crash"
    description = "A one-hour crash on made-up bars: cross vs isolated vs isolated with auto-add-margin"
    seed = 5
    notes = ["made-up bars dated 2021-05-19"]

    [market]
    liquidation_fee_rate = 0.0125
    insurance_fund = 10_000.0
    liquidation_slippage = 0.001

    [market.contracts.BTCUSDT]
    brackets = { venue = "binance", symbol = "BTCUSDT", date = "2022-05-21" }

    [path]
    kind = "file"
    gaps = "refuse"

    [path.files]
    BTCUSDT = "bars.parquet"

    [population]
    accounts = 400
    positions_per_account = 1
    leverage = { 5 = 0.3, 20 = 0.4, 50 = 0.3 }
    hedge_share = 0.0

    [[variants]]
    name = "cross"
    population = { isolated_share = 0.0 }

    [[variants]]
    name = "isolated"
    population = { isolated_share = 1.0, auto_add_share = 0.0 }

    [[variants]]
    name = "isolated + auto-add"
    population = { isolated_share = 1.0, auto_add_share = 1.0 }

    [grid]
    "market.mmr_factor" = [1.0, 1.5]
""")


def crash_bars() -> pd.DataFrame:
    """Sixty one-minute bars from 2021-05-19 12:00: flat at 40,000, a fall to 32,000 over bars
    20-29 (each bar's low 0.5% under its close), then a partial recovery."""
    close = np.concatenate([np.full(20, 40_000.0), np.linspace(39_200.0, 32_000.0, 10),
                            np.linspace(32_500.0, 36_000.0, 30)])
    open_ = np.concatenate([[40_000.0], close[:-1]])
    return pd.DataFrame({"timestamp": pd.date_range("2021-05-19 12:00", periods=60, freq="1min"),
                         "open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.995, "close": close})


@pytest.fixture(scope="module")
def crash_report(tmp_path_factory):
    from riskcore.scenarios import run_to_folder

    folder = tmp_path_factory.mktemp("crash")
    crash_bars().to_parquet(folder / "bars.parquet", index=False)
    (folder / "crash.toml").write_text(CRASH)
    out, summary, times, _ = run_to_folder(folder / "crash.toml", folder / "out")
    return out / "report.html", summary, times


def test_scenario_report_has_every_section(crash_report):
    report, summary, _ = crash_report
    check_page(report, summary)


def test_scenario_title_block(crash_report):
    import riskcore

    report, summary, _ = crash_report
    text = report.read_text(encoding="utf-8")
    assert "<title>mini-crash</title>" in text
    assert "<h1>A one-hour crash on made-up bars: cross vs isolated vs isolated with auto-add-margin</h1>" in text
    meta = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text))
    assert meta["scenario"] == "mini-crash"
    assert meta["period"] == "2021-05-19 12:00 to 13:00 UTC (1 h, 60 bars of 1 min)"
    assert meta["riskcore"] == riskcore.__version__
    assert meta["seed"] == "5"
    assert meta["engine"] == "numba intrabar=ohlc mm_basis=mark"
    assert meta["accounts"] == "400 in each of 6 variants"
    assert meta["brackets"] == "BTCUSDT: table observed 2022-05-21 (a stand-in, see below)"
    # 2021-05-19 to 2022-05-21: 367 days
    assert ('<p class="warning">Stand-in brackets: BTCUSDT uses the bracket table observed on 2022-05-21, '
            "367 days after this scenario&#x27;s first bar (2021-05-19).") in text
    assert "made-up bars dated 2021-05-19" in text


def test_scenario_parameters_show_what_differs(crash_report):
    report, _, _ = crash_report
    page = read_page(report)
    diff = {row[0]: row[1:] for row in page.tables["params-diff"][1:]}
    names = page.tables["params-diff"][0][1:]
    assert names == [f"{v} [mmr_factor={f}]" for v in ("cross", "isolated", "isolated + auto-add")
                     for f in ("1.0", "1.5")]
    assert diff["market.mmr_factor"] == ["1.0", "1.5"] * 3
    assert diff["population.isolated_share"] == ["0.0", "0.0", "1.0", "1.0", "1.0", "1.0"]
    assert diff["accounts' margin mode"] == [f"{m}, every account" for m in ("cross", "isolated",
                                                                             "isolated + auto-add")
                                             for _ in (1, 2)]
    # BTCUSDT 2022-05-21 tiers start at 0.4%; x1.5 gives 0.6%
    assert [v.split(",")[0] for v in diff["BTCUSDT maintenance rates (first tiers)"]] == ["0.4%", "0.6%"] * 3
    same = {row[0]: row[1] for row in page.tables["params"][1:]}
    assert same["leverage"] == "5x, 20x, 50x"
    assert same["population.leverage"] == "5: 0.3, 20: 0.4, 50: 0.3"
    assert "market.mmr_factor" not in same and "accounts' margin mode" not in same


def test_scenario_findings_and_modelling_notes(crash_report):
    report, summary, _ = crash_report
    page = read_page(report)
    s = summary["accounts_liquidated"]
    cross, iso, auto = (int(s[f"{v} [mmr_factor=1.0]"]) for v in ("cross", "isolated", "isolated + auto-add"))
    assert iso > cross > 0
    # one position per account: cross and isolated + auto-add liquidate at the same price
    assert cross == auto
    assert summary.loc["cross [mmr_factor=1.0]", "mean_loss_per_account"] == approx(
        summary.loc["isolated + auto-add [mmr_factor=1.0]", "mean_loss_per_account"])
    items = page.items
    assert any(i.startswith("Cross and isolated + auto-add gave identical results") for i in items), items
    assert any(i.startswith("Cross and isolated + auto-add are identical because every account holds one "
                            "position") for i in items)
    change = (iso - auto) / iso
    assert any(i.startswith(f"Isolated + auto-add liquidated {change:.0%} fewer accounts than isolated "
                            f"({auto:,} against {iso:,} with mmr_factor=1.0;") for i in items), items
    assert float(summary["bad_debt"].sum()) == 0.0
    assert any(i.startswith("No variant has bad debt, and this follows from the model") and "0.1%" in i
               for i in items)
    # the leverage table shows every leverage once, in order
    rows = page.tables["by-leverage"]
    assert [r[0] for r in rows[2:]] == ["5x", "20x", "50x"]


def test_scenario_report_time_is_recorded(crash_report):
    _, _, times = crash_report
    assert 0.0 < times.phases["report"] < 60.0


def test_event_window():
    from riskcore.report import VariantDigest, _event_window

    def run(notional):
        n = len(notional)
        steps = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="1min"),
                              "liquidations": (np.asarray(notional) > 0).astype(float),
                              "liquidated_notional": np.asarray(notional, float)})
        return VariantDigest(steps, {}, {}, {}, None, np.array([]))

    # 300 bars: 10 at bar 100, 100 at each of bars 150-155, 5 at bar 250; total 615, 80% = 492:
    # the shortest run holding it is 5 bars, 150-154 (500), padded by (30 - 5 + 1) // 2 = 13 on
    # each side to at least 30 bars: bars 137-167, holding 600 / 615.
    notional = np.zeros(300)
    notional[100], notional[150:156], notional[250] = 10.0, 100.0, 5.0
    w = _event_window({"a": run(notional), "b": run(notional)})
    assert (w.first, w.last) == (137, 167) and w.share == approx(600 / 615)
    assert w.start == np.datetime64("2024-01-01T02:17") and w.end == np.datetime64("2024-01-01T02:48")
    assert _event_window({"a": run(np.zeros(300))}) is None
    # liquidations everywhere, twice as heavy in bars 200-259: the 80% run is too long, so the
    # 60 bars holding the most, padded by 3 on each side
    spread = np.ones(300)
    spread[200:260] = 2.0
    w = _event_window({"a": run(spread)})
    assert (w.first, w.last) == (197, 262)
    # a run too short to need a zoom
    assert _event_window({"a": run(np.ones(40))}) is None


# ------------------------------------------------------------------ several price paths (PathSweep)
def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_spread_table_by_hand():
    """Two margin variants over three paths; the numbers are worked out here."""
    from riskcore.report import PathSweep, spread_table

    names = [f"{b} [path.seed={k}]" for b in ("cross", "isolated") for k in (1, 2, 3)]
    summary = pd.DataFrame({"liquidation_rate": [0.1, 0.3, 0.2, 0.5, 0.5, 0.4],
                            "bad_debt": [0.0, 0.0, 0.0, 10.0, 40.0, 40.0],
                            "mean_loss_per_account": [5.0, -1.0, 2.0, 7.0, 9.0, math.nan]},
                           index=pd.Index(names, name="variant"))
    sweep = PathSweep(paths={f"path.seed={k}": {} for k in (1, 2, 3)},
                      path_of={n: n.split("[")[1].rstrip("]") for n in names},
                      base_of={n: n.split(" [")[0] for n in names})
    got = spread_table(summary, sweep).set_index("variant")
    assert list(got.index) == ["cross", "isolated"] and list(got["paths"]) == [3, 3]
    cross, iso = got.loc["cross"], got.loc["isolated"]
    assert cross["liquidation_rate_mean"] == approx(0.2) and cross["liquidation_rate_median"] == approx(0.2)
    assert cross["liquidation_rate_worst"] == 0.3 and cross["liquidation_rate_worst_path"] == "path.seed=2"
    assert cross["liquidation_rate_best"] == 0.1
    assert cross["mean_loss_per_account_mean"] == approx(2.0) and cross["mean_loss_per_account_worst"] == 5.0
    assert iso["bad_debt_mean"] == approx(30.0) and iso["bad_debt_median"] == 40.0
    assert iso["bad_debt_worst_path"] == "path.seed=2"  # a tie: the first path that gave it
    assert iso["liquidation_rate_worst_path"] == "path.seed=1"
    assert iso["mean_loss_per_account_mean"] == approx(8.0)  # the NaN left out
    assert iso["mean_loss_per_account_worst_path"] == "path.seed=2"
    with pytest.raises(ValueError, match="'other'"):
        spread_table(pd.concat([summary, summary.iloc[:1].rename(index={names[0]: "other"})]), sweep)


def test_a_sweep_of_one_path_changes_nothing(population_runs, tmp_path):
    from riskcore.report import PathSweep

    books, runs, paths = population_runs
    kw = dict(title="Wick test", price_source="riskcore.synthetic.gbm_paths(seed=5)")
    write_report(tmp_path / "plain", runs, paths, books, **kw)
    one = PathSweep({"path.seed=5": paths}, {n: "path.seed=5" for n in runs}, {n: n for n in runs})
    write_report(tmp_path / "one", runs, paths, books, sweep=one, **kw)
    plain = {p.name: p.read_bytes() for p in (tmp_path / "plain").iterdir()}
    assert {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()} == plain


def test_a_report_over_a_hundred_paths_stays_readable(population_runs, tmp_path):
    """300 variants (three margin variants on each of 100 paths): the charts keep the size of a
    three-variant report, the price chart draws the paths, the title says how many, and the
    spread table has a row per margin variant.  The digests of the one real path stand in for
    every path's (the report takes them as given), so the numbers of the spread are known."""
    from riskcore.report import PATH_CHARTS, PathSweep

    books, runs, paths = population_runs
    digests = {n: report_module.digest(r, books[n], n) for n, r in runs.items()}
    many = {f"path.seed={k}": (paths if k == 1 else gbm_paths({"BTCUSDT": 60_000.0}, 30, vol=0.8, seed=k))
            for k in range(1, 101)}
    every, path_of, base_of = {}, {}, {}
    for label in many:
        for n, d in digests.items():
            every[f"{n} [{label}]"] = d
            path_of[f"{n} [{label}]"], base_of[f"{n} [{label}]"] = label, n
    out = tmp_path / "many"
    report = write_report(out, every, paths, title="Many paths", price_source="gbm, 100 paths",
                          sweep=PathSweep(many, path_of, base_of, "gbm, 100 paths"))
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.html", *CHARTS, *PATH_CHARTS])
    for png in [*CHARTS, *PATH_CHARTS]:
        width, height = _png_size(out / png)
        assert width <= 1400 and height <= 1200, (png, width, height)
    page = read_page(report)
    assert "spread" in page.ids
    rows = page.tables["spread-table"][2:]
    assert [r[0] for r in rows] == list(VARIANTS)
    summary = summarize(runs, books)
    for r, name in zip(rows, VARIANTS):  # every path gave the same numbers: mean = median = worst
        assert r[1] == "100"
        rate = f"{100 * summary.loc[name, 'liquidation_rate']:.2f}%"
        assert r[2] == r[3] == rate and r[4].startswith(rate) and r[4].endswith("path.seed=1")
    text = report.read_text(encoding="utf-8")
    assert "<dt>paths</dt><dd>100 (path.seed=1, path.seed=2, path.seed=3, ...); shown in detail: path.seed=1</dd>" \
        in text
    # the sections per variant show the first path's three variants only
    assert len(page.tables["summary"][1]) == 2 + 3 + 1
