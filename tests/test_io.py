"""Tests of riskcore.io: the data loaders and the Binance archive fetcher.

The fixtures in tests/fixtures/io are six made-up 1-minute bars (see make_fixtures.py there)
written in every supported format; each loader must give the same frame.  Bad files are
written by the tests themselves so that the line numbers asserted are visible here.
The fetcher is tested against a local HTTP server on 127.0.0.1; nothing touches the internet.
Real-data tests read ../shared/data and are skipped when it is absent.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskcore.inputs import InputError, PricePaths, funding_by_step
from riskcore.io import DataError, load_funding, load_klines, load_paths, parse_interval
from riskcore.io import fetch as fetch_mod
from riskcore.io.fetch import ArchiveNotFound, ChecksumMismatch, FetchError, archive_files, fetch, main_fetch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "io"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

T0 = pd.Timestamp("2024-01-01 00:00:00")
BARS = np.array([  # the bars of every fixture (make_fixtures.py), typed again here
    (100.0, 101.5, 99.5, 101.0),
    (101.0, 102.0, 100.5, 101.5),
    (101.5, 101.5, 98.0, 98.5),
    (98.5, 99.0, 97.5, 98.8),
    (98.8, 100.2, 98.6, 100.0),
    (100.0, 100.5, 99.8, 100.25),
])
HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"


def expected_frame() -> pd.DataFrame:
    frame = pd.DataFrame(BARS, columns=["open", "high", "low", "close"])
    frame.insert(0, "timestamp", pd.date_range(T0, periods=6, freq="1min").as_unit("ns"))
    return frame


def binance_line(ms: int, o, h, l, c) -> str:
    return f"{ms},{o},{h},{l},{c},1.0,{ms + 59999},100.0,5,0.5,50.0,0"


def write_csv(tmp_path: Path, name: str, bars, header: bool = True, interval_ms: int = 60000,
              stamps=None) -> Path:
    """A Binance-format CSV of ``bars`` (o, h, l, c) starting at T0; line 1 is the header."""
    ms0 = int(T0.value // 10**6)
    stamps = stamps if stamps is not None else [ms0 + interval_ms * k for k in range(len(bars))]
    lines = ([HEADER] if header else []) + [binance_line(t, *b) for t, b in zip(stamps, bars)]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def good_bars(n: int = 6):
    return [tuple(b) for b in BARS[:n]]


def raises_at(path_or_paths, *fragments, **kw):
    """load_klines must raise DataError whose message holds every fragment."""
    with pytest.raises(DataError) as info:
        load_klines(path_or_paths, **kw)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------------------------- formats
FORMAT_FILES = [
    "binance_klines_header.csv",
    "binance_klines_noheader.csv.gz",
    "BTCUSDT-1m-2024-01-01.zip",
    "BTCUSDT-1m-2024-01-01-markPriceKlines-noheader.zip",
    "binance_klines_microseconds.csv",
    "ccxt_ohlcv.csv.gz",
    "ccxt_ohlcv_timestamp.csv",
    "ccxt_ohlcv.json",
    "ohlcv.parquet",
]


@pytest.mark.parametrize("name", FORMAT_FILES)
def test_every_format_gives_the_same_bars(name):
    frame = load_klines(FIXTURES / name, "BTCUSDT")
    pd.testing.assert_frame_equal(frame, expected_frame())
    assert str(frame["timestamp"].dtype) == "datetime64[ns]"
    assert frame.attrs["interval"] == pd.Timedelta("1min")
    assert frame.attrs["gaps"] == [] and frame.attrs["filled"] == 0
    assert frame.attrs["contract"] == "BTCUSDT"
    assert frame.attrs["source"] == str(FIXTURES / name)
    paths = PricePaths.from_frames({"BTCUSDT": frame})  # the engine takes it as it is
    assert paths.n_steps == 6 and paths.ohlc[2, 0, 2] == 98.0


def test_microsecond_timestamps_are_detected():
    text = (FIXTURES / "binance_klines_microseconds.csv").read_text()
    assert text.split(",", 1)[0] == "1704067200000000"  # 16 digits: µs
    assert load_klines(FIXTURES / "binance_klines_microseconds.csv")["timestamp"].iloc[0] == T0


def test_feather_and_gzipped_json_and_iso_times(tmp_path):
    frame = pd.DataFrame(BARS, columns=["open", "high", "low", "close"])
    frame.insert(0, "date", pd.date_range(T0, periods=6, freq="1min", tz="UTC"))  # freqtrade's layout
    frame.to_feather(tmp_path / "bars.feather")
    pd.testing.assert_frame_equal(load_klines(tmp_path / "bars.feather"), expected_frame())
    rows = json.loads((FIXTURES / "ccxt_ohlcv.json").read_text())
    (tmp_path / "bars.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))
    pd.testing.assert_frame_equal(load_klines(tmp_path / "bars.json.gz"), expected_frame())
    iso = "timestamp,open,high,low,close\n" + "".join(
        f"{T0 + pd.Timedelta(minutes=k)}+00:00,{o},{h},{l},{c}\n" for k, (o, h, l, c) in enumerate(BARS))
    (tmp_path / "iso.csv").write_text(iso)
    pd.testing.assert_frame_equal(load_klines(tmp_path / "iso.csv"), expected_frame())


def test_several_files_are_one_series(tmp_path):
    ms0 = int(T0.value // 10**6)
    a = write_csv(tmp_path, "a.csv", good_bars(3))
    b = write_csv(tmp_path, "b.csv", good_bars()[3:], header=False,
                  stamps=[ms0 + 60000 * k for k in range(3, 6)])
    frame = load_klines([a, b])
    pd.testing.assert_frame_equal(frame, expected_frame())
    assert frame.attrs["source"] == [str(a), str(b)]
    # in the wrong order: the first bar of a.csv comes before the last of b.csv
    raises_at([b, a], "a.csv", "line 2", "'open_time'", "earlier")


def test_multi_contract_file_needs_a_contract(tmp_path):
    lines = ["symbol,open_time,open,high,low,close"]
    ms0 = int(T0.value // 10**6)
    for sym in ("AAAUSDT", "BBBUSDT"):
        lines += [f"{sym},{ms0 + 60000 * k},{o},{h},{l},{c}" for k, (o, h, l, c) in enumerate(BARS)]
    path = tmp_path / "multi.csv"
    path.write_text("\n".join(lines) + "\n")
    pd.testing.assert_frame_equal(load_klines(path, "BBBUSDT"), expected_frame())
    raises_at(path, "multi.csv", "several contracts", "AAAUSDT", "BBBUSDT")
    raises_at(path, "multi.csv", "'CCCUSDT'", "'symbol'", contract="CCCUSDT")


# ----------------------------------------------------------------------------- bad files
def test_high_below_open_close_names_file_line_column(tmp_path):
    bars = good_bars()
    bars[2] = (101.5, 101.0, 98.0, 98.5)  # high 101.0 < open 101.5; data row 3 = line 4
    raises_at(write_csv(tmp_path, "bad_high.csv", bars), "bad_high.csv", "line 4", "column 'high'",
              "below max(open, close)")


def test_low_above_open_close_names_file_line_column(tmp_path):
    bars = good_bars()
    bars[1] = (101.0, 102.0, 101.2, 101.5)  # low 101.2 > open 101.0; line 3
    raises_at(write_csv(tmp_path, "bad_low.csv", bars), "bad_low.csv", "line 3", "column 'low'",
              "above min(open, close)")


@pytest.mark.parametrize("cell, what", [("-1.0", "not positive"), ("0", "not positive"), ("nan", "missing"),
                                        ("", "missing"), ("inf", "not finite")])
def test_bad_prices_name_file_line_column(tmp_path, cell, what):
    bars = good_bars()
    bars[4] = (98.8, 100.2, 98.6, cell)  # line 6
    raises_at(write_csv(tmp_path, "bad_price.csv", bars), "bad_price.csv", "line 6", "column 'close'", what)


def test_text_in_a_price_cell(tmp_path):
    bars = good_bars()
    bars[0] = ("abc", 101.5, 99.5, 101.0)
    raises_at(write_csv(tmp_path, "text.csv", bars), "text.csv", "line 2", "column 'open'", "'abc' is not a number")


def test_duplicate_timestamp(tmp_path):
    ms0 = int(T0.value // 10**6)
    stamps = [ms0, ms0 + 60000, ms0 + 120000, ms0 + 120000, ms0 + 180000, ms0 + 240000]
    raises_at(write_csv(tmp_path, "dup.csv", good_bars(), stamps=stamps), "dup.csv", "line 5",
              "column 'open_time'", "duplicate")


def test_unsorted_timestamps(tmp_path):
    ms0 = int(T0.value // 10**6)
    stamps = [ms0 + 60000 * k for k in (0, 1, 3, 2, 4, 5)]
    raises_at(write_csv(tmp_path, "unsorted.csv", good_bars(), stamps=stamps), "unsorted.csv", "line 5",
              "column 'open_time'", "earlier than the previous row's")


def test_the_earliest_problem_is_reported_with_a_count(tmp_path):
    bars = good_bars()
    bars[4] = (98.8, 98.0, 98.6, 100.0)  # high too low at line 6
    bars[3] = (98.5, 99.0, 97.5, -5)     # bad close at line 5
    bars[5] = (100.0, 100.5, 99.8, -1)   # and at line 7
    raises_at(write_csv(tmp_path, "two.csv", bars), "two.csv", "line 5", "column 'close'", "(2 rows have this problem)")


def test_no_header_names_column_by_position(tmp_path):
    bars = good_bars()
    bars[2] = (101.5, 101.0, 98.0, 98.5)  # no header: data row 3 is line 3
    raises_at(write_csv(tmp_path, "nohdr.csv", bars, header=False), "nohdr.csv", "line 3", "column 3 (high)")


def test_blank_lines_keep_line_numbers(tmp_path):
    path = write_csv(tmp_path, "blank.csv", good_bars())
    lines = path.read_text().splitlines()
    lines.insert(2, "")  # a blank line 3: the bad row below moves to line 6
    bad = lines[5].split(",")
    bad[2] = "90"  # high of the 4th bar below its open 98.5
    lines[5] = ",".join(bad)
    path.write_text("\n".join(lines) + "\n")
    raises_at(path, "blank.csv", "line 6", "column 'high'")


def test_json_and_parquet_name_rows(tmp_path):
    rows = json.loads((FIXTURES / "ccxt_ohlcv.json").read_text())
    rows[2][3] = 200.0  # low above open: entry 3
    (tmp_path / "bad.json").write_text(json.dumps(rows))
    raises_at(tmp_path / "bad.json", "bad.json", "row 3", "column 4 (low)", "above min(open, close)")
    frame = pd.read_parquet(FIXTURES / "ohlcv.parquet")
    frame.loc[4, "open"] = np.nan
    frame.to_parquet(tmp_path / "bad.parquet")
    raises_at(tmp_path / "bad.parquet", "bad.parquet", "row 5", "column 'open'", "missing")


def test_zip_and_gzip_errors_name_the_archive_and_member(tmp_path):
    bars = good_bars()
    bars[1] = (101.0, 100.0, 100.5, 101.5)
    text = write_csv(tmp_path, "x.csv", bars).read_text()
    with zipfile.ZipFile(tmp_path / "BTCUSDT-1m-2024-01-01.zip", "w") as zf:
        zf.writestr("BTCUSDT-1m-2024-01-01.csv", text)
    raises_at(tmp_path / "BTCUSDT-1m-2024-01-01.zip", "BTCUSDT-1m-2024-01-01.zip (member BTCUSDT-1m-2024-01-01.csv)",
              "line 3", "column 'high'")
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(text.encode()))
    raises_at(tmp_path / "x.csv.gz", "x.csv.gz", "line 3", "column 'high'")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        zf.writestr("a.csv", text)
        zf.writestr("b.csv", text)
    raises_at(tmp_path / "two.zip", "two.zip", "exactly one file")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(text.encode())[:30])
    raises_at(tmp_path / "broken.gz", "broken.gz", "gzip")


def test_unreadable_and_incomplete_files(tmp_path):
    raises_at(tmp_path / "nope.csv", "nope.csv", "no such file")
    (tmp_path / "empty.csv").write_text("")
    raises_at(tmp_path / "empty.csv", "empty.csv", "empty")
    (tmp_path / "only_header.csv").write_text(HEADER + "\n")
    raises_at(tmp_path / "only_header.csv", "only_header.csv", "no bars")
    (tmp_path / "no_high.csv").write_text("open_time,open,low,close\n1704067200000,1,1,1\n")
    raises_at(tmp_path / "no_high.csv", "no_high.csv", "'high'")
    (tmp_path / "seconds.csv").write_text("1704067200,1,1,1,1\n1704067260,1,1,1,1\n")
    raises_at(tmp_path / "seconds.csv", "seconds.csv", "line 1", "column 1 (open_time)", "neither epoch milliseconds")
    (tmp_path / "badtime.csv").write_text("open_time,open,high,low,close\n1704067200000,1,1,1,1\nsoon,1,1,1,1\n")
    raises_at(tmp_path / "badtime.csv", "badtime.csv", "line 3", "column 'open_time'", "'soon'")
    with pytest.raises(InputError, match="gaps must be one of"):
        load_klines(FIXTURES / "binance_klines_header.csv", gaps="ignore")


# ---------------------------------------------------------------------------------- gaps
def gappy(tmp_path) -> Path:
    """Bars at minutes 0, 1, 4, 5, 6, 8: gaps of 2 bars (2, 3) and 1 bar (7)."""
    ms0 = int(T0.value // 10**6)
    stamps = [ms0 + 60000 * k for k in (0, 1, 4, 5, 6, 8)]
    return write_csv(tmp_path, "gappy.csv", good_bars(), stamps=stamps)


def test_gaps_refused_naming_the_first_and_the_count(tmp_path):
    raises_at(gappy(tmp_path), "gappy.csv", "line 4", "column 'open_time'", "2024-01-01 00:02:00",
              "2024-01-01 00:03:00", "(2 missing)", "2 gap(s), 3 missing bar(s)", "gaps='fill'")


def test_gaps_reported(tmp_path):
    frame = load_klines(gappy(tmp_path), gaps="report")
    assert len(frame) == 6 and frame.attrs["filled"] == 0
    gaps = frame.attrs["gaps"]
    assert [(g["start"], g["end"], g["missing"], g["line"]) for g in gaps] == [
        (T0 + pd.Timedelta("2min"), T0 + pd.Timedelta("3min"), 2, 4),
        (T0 + pd.Timedelta("7min"), T0 + pd.Timedelta("7min"), 1, 7),
    ]
    assert gaps[0]["file"].endswith("gappy.csv")


def test_gaps_filled_with_flat_bars_at_the_previous_close(tmp_path):
    frame = load_klines(gappy(tmp_path), gaps="fill")
    assert len(frame) == 9 and frame.attrs["filled"] == 3 and len(frame.attrs["gaps"]) == 2
    assert (frame["timestamp"] == pd.date_range(T0, periods=9, freq="1min")).all()
    # minutes 2 and 3 repeat the close of minute 1 (bar 2: 101.5); minute 7 the close of minute 6 (98.6..100.0)
    for minute, price in ((2, 101.5), (3, 101.5), (7, 100.0)):
        assert frame.iloc[minute, 1:].tolist() == [price] * 4
    assert frame.iloc[4, 1:].tolist() == list(BARS[2])  # real bars unchanged


def test_interval_given_or_off_grid(tmp_path):
    path = FIXTURES / "binance_klines_header.csv"
    assert load_klines(path, interval="1m").attrs["interval"] == pd.Timedelta("1min")
    raises_at(path, "line 3", "column 'open_time'", "shorter than the 5m interval (given)", interval="5m")
    ms0 = int(T0.value // 10**6)
    stamps = [ms0 + 60000 * k for k in (0, 1, 2, 3, 4)] + [ms0 + 60000 * 5 + 30000]
    raises_at(write_csv(tmp_path, "offgrid.csv", good_bars(), stamps=stamps), "offgrid.csv", "line 7",
              "not a multiple of the 1m interval")
    assert parse_interval("8h") == pd.Timedelta(hours=8)
    with pytest.raises(DataError, match="months"):
        parse_interval("1M")


# ------------------------------------------------------------------------------ load_paths
def shifted(tmp_path, name, minutes, n=6, interval_ms=60000):
    ms0 = int(T0.value // 10**6) + minutes * 60000
    return write_csv(tmp_path, name, [tuple(BARS[k % 6]) for k in range(n)],
                     stamps=[ms0 + interval_ms * k for k in range(n)], interval_ms=interval_ms)


def test_load_paths_trims_to_the_common_range(tmp_path):
    a = shifted(tmp_path, "a.csv", 0)  # minutes 0..5
    b = shifted(tmp_path, "b.csv", 2)  # minutes 2..7
    paths = load_paths({"AAAUSDT": a, "BBBUSDT": b})
    assert list(paths) == ["AAAUSDT", "BBBUSDT"]
    for frame in paths.values():
        assert frame["timestamp"].tolist() == list(pd.date_range(T0 + pd.Timedelta("2min"), periods=4, freq="1min"))
    assert paths["AAAUSDT"].attrs["trimmed"] == (2, 0) and paths["BBBUSDT"].attrs["trimmed"] == (0, 2)
    assert paths["AAAUSDT"]["low"].tolist() == [98.0, 97.5, 98.6, 99.8]
    assert PricePaths.from_frames(paths).n_steps == 4


def test_load_paths_refuses_mismatched_intervals(tmp_path):
    a = shifted(tmp_path, "one_minute.csv", 0)
    b = shifted(tmp_path, "five_minutes.csv", 0, interval_ms=300000)
    with pytest.raises(DataError) as info:
        load_paths({"AAAUSDT": a, "BBBUSDT": b})
    message = str(info.value)
    for fragment in ("AAAUSDT", "one_minute.csv", "1m", "BBBUSDT", "five_minutes.csv", "5m"):
        assert fragment in message


def test_load_paths_refuses_disjoint_or_offset_series(tmp_path):
    with pytest.raises(DataError, match="do not overlap"):
        load_paths({"AAAUSDT": shifted(tmp_path, "a.csv", 0), "BBBUSDT": shifted(tmp_path, "b.csv", 60)})
    five = 300000
    with pytest.raises(DataError, match="do not have the same bars"):
        load_paths({"AAAUSDT": shifted(tmp_path, "c.csv", 0, interval_ms=five),
                    "BBBUSDT": shifted(tmp_path, "d.csv", 2, interval_ms=five)})
    with pytest.raises(DataError, match="non-empty"):
        load_paths({})


# --------------------------------------------------------------------------------- funding
def test_funding_shared_layout():
    funding = load_funding(FIXTURES / "funding_shared.csv.gz")
    assert list(funding) == ["BTCUSDT", "ETHUSDT"]
    btc = funding["BTCUSDT"]
    assert btc.columns.tolist() == ["timestamp", "rate"]
    assert btc["timestamp"].tolist() == list(pd.date_range(T0, periods=3, freq="8h"))
    assert btc["rate"].tolist() == [0.0001, 0.0002, 0.0003]
    only = load_funding(FIXTURES / "funding_shared.csv.gz", contracts=["ETHUSDT"])
    assert list(only) == ["ETHUSDT"] and only["ETHUSDT"]["rate"].iloc[2] == -0.00015
    with pytest.raises(DataError) as info:
        load_funding(FIXTURES / "funding_shared.csv.gz", contracts=["BTCUSDT", "SOLUSDT"])
    assert "SOLUSDT" in str(info.value) and "ETHUSDT" in str(info.value) and "funding_shared" in str(info.value)


def test_funding_binance_archive_layout(tmp_path):
    funding = load_funding(FIXTURES / "BTCUSDT-fundingRate-2024-01.zip")
    assert list(funding) == ["BTCUSDT"]  # read from the file name
    assert funding["BTCUSDT"]["rate"].tolist() == [0.0001, 0.0002, 0.0003]
    # feeds the engine: the funding at 00:00 lands on the first bar
    paths = PricePaths.from_frames({"BTCUSDT": load_klines(FIXTURES / "binance_klines_header.csv")})
    rates = funding_by_step(funding, paths)
    assert rates[0, 0] == 0.0001 and rates[1:].sum() == 0.0
    # a file whose name does not say the contract
    (tmp_path / "rates.csv").write_text("calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,0.0001\n")
    assert list(load_funding(tmp_path / "rates.csv", contracts="XRPUSDT")) == ["XRPUSDT"]
    with pytest.raises(DataError, match="no symbol column"):
        load_funding(tmp_path / "rates.csv")


def test_funding_errors_name_file_line_column(tmp_path):
    head = "calc_time,funding_interval_hours,last_funding_rate\n"
    (tmp_path / "BTCUSDT-fundingRate-2024-02.csv").write_text(head + "1706745600000,8,0.0001\n1706774400000,8,1.5\n")
    with pytest.raises(DataError) as info:
        load_funding(tmp_path / "BTCUSDT-fundingRate-2024-02.csv")
    for fragment in ("BTCUSDT-fundingRate-2024-02.csv", "line 3", "column 'last_funding_rate'", "plausible"):
        assert fragment in str(info.value)
    (tmp_path / "dup.csv").write_text("symbol,funding_time,funding_rate\nBTCUSDT,1706745600000,0.0001\n"
                                      "ETHUSDT,1706745600000,0.0001\nBTCUSDT,1706745600000,0.0002\n")
    with pytest.raises(DataError) as info:
        load_funding(tmp_path / "dup.csv")
    for fragment in ("dup.csv", "line 4", "column 'funding_time'", "duplicate", "BTCUSDT"):
        assert fragment in str(info.value)
    (tmp_path / "nohdr.csv").write_text("1706745600000,8,0.0001\n")
    with pytest.raises(DataError, match="header"):
        load_funding(tmp_path / "nohdr.csv")


# ------------------------------------------------------------------------------ real data
def shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_real_binance_crash_window():
    frame = load_klines(shared("BTCUSDT_PERP_1m_20251010T1831_20251010T2253_last.csv.gz"), "BTCUSDT")
    assert len(frame) == 263 and frame.attrs["interval"] == pd.Timedelta("1min")
    assert frame["low"].min() == 101516.5
    assert frame.loc[frame["low"].idxmin(), "timestamp"] == pd.Timestamp("2025-10-10 21:20")
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-10-10 18:31")


def test_real_ccxt_baseline_and_common_range():
    btc = shared("BTCUSDT_PERP_1m_20250525T1033_20250624T1031_last_ccxt_baseline.csv.gz")
    sol = shared("SOLUSDT_PERP_1m_20250525T1035_20250624T1033_last_ccxt_baseline.csv.gz")
    frame = load_klines(btc)
    assert len(frame) == 43199 and frame["low"].min() == 98115.4
    paths = load_paths({"BTCUSDT": btc, "SOLUSDT": sol})
    # common range 2025-05-25 10:35 .. 2025-06-24 10:31 (both ends included)
    assert len(paths["BTCUSDT"]) == len(paths["SOLUSDT"]) == 43199 - 2  # BTC loses 10:33-10:34, SOL 10:32-10:33
    assert paths["SOLUSDT"]["timestamp"].iloc[0] == pd.Timestamp("2025-05-25 10:35")


def test_real_five_minute_files_have_one_interval_and_mismatch_the_one_minute():
    btc5 = shared("BTCUSDT_PERP_5m_20250919T0000_20251027T1450_last_ccxt.csv.gz")
    eth5 = shared("ETHUSDT_PERP_5m_20250927T0000_20251027T1450_last_ccxt.csv.gz")
    paths = load_paths({"BTCUSDT": btc5, "ETHUSDT": eth5})
    assert paths["BTCUSDT"]["timestamp"].iloc[0] == pd.Timestamp("2025-09-27")
    assert len(paths["ETHUSDT"]) == 8819
    with pytest.raises(DataError, match="1m bars but ETHUSDT .* has 5m bars"):
        load_paths({"BTCUSDT": shared("BTCUSDT_PERP_1m_20251010T1831_20251010T2253_last.csv.gz"), "ETHUSDT": eth5})


def test_real_funding_and_mark_klines():
    funding = load_funding(shared("funding_rates_binance_usdm_2025.csv.gz"))
    assert {k: len(v) for k, v in funding.items()} == {"BTCUSDT": 444, "ETHUSDT": 420, "SOLUSDT": 329,
                                                        "XRPUSDT": 329, "DOGEUSDT": 89}
    mark = shared("markprice_8h_binance_usdm_2025.csv.gz")
    with pytest.raises(DataError, match="260 missing"):
        load_klines(mark, "BTCUSDT")
    frame = load_klines(mark, "BTCUSDT", gaps="report")
    assert len(frame) == 444 and [g["missing"] for g in frame.attrs["gaps"]] == [260]
    assert frame.attrs["interval"] == pd.Timedelta("8h")


# --------------------------------------------------------------------------------- fetcher
def day_zip(day: str, hours: range = range(24)) -> bytes:
    """A daily 1h klines zip as data.binance.vision ships it (header row, 12 columns)."""
    t0 = int(pd.Timestamp(day).value // 10**6)
    lines = [HEADER] + [binance_line(t0 + 3600_000 * h, 100.0, 101.0, 99.0, 100.5) for h in hours]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"BTCUSDT-1h-{day}.csv", "\n".join(lines) + "\n")
    return buf.getvalue()


class Archive:
    """A fake data.binance.vision on 127.0.0.1 serving a temporary folder; counts requests."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        archive = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                archive.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def put(self, relpath: str, data: bytes, checksum: str | None = None) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = checksum or hashlib.sha256(data).hexdigest()
        (path.parent / (path.name + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def archive(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = Archive(tmp_path / "server")
    for day in ("2024-03-01", "2024-03-02"):
        server.put(f"data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-{day}.zip", day_zip(day))
    yield server
    server.close()


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_fetch_downloads_verifies_caches_and_loads(archive, tmp_path):
    cache = tmp_path / "cache"
    lines = []
    paths = fetch("btcusdt", "2024-03-01", "2024-03-02", interval="1h", cache_dir=cache, base_url=archive.url,
                  progress=lines.append)
    rel = "data/futures/um/daily/klines/BTCUSDT/1h"
    assert paths == [cache / rel / "BTCUSDT-1h-2024-03-01.zip", cache / rel / "BTCUSDT-1h-2024-03-02.zip"]
    assert len(archive.requests) == 4  # a checksum and a zip per day
    assert files_in(cache) == sorted(paths + [p.with_name(p.name + ".CHECKSUM") for p in paths])  # no temp files
    assert lines[0].startswith("[1/2] BTCUSDT-1h-2024-03-01.zip: downloaded")
    frame = load_klines(paths, "BTCUSDT")
    assert len(frame) == 48 and frame.attrs["interval"] == pd.Timedelta("1h") and frame.attrs["gaps"] == []
    # second call: served from the cache, no request at all
    lines.clear()
    assert fetch("BTCUSDT", "2024-03-01", "2024-03-02", interval="1h", cache_dir=cache, base_url=archive.url,
                 progress=lines.append) == paths
    assert len(archive.requests) == 4
    assert lines == ["[1/2] BTCUSDT-1h-2024-03-01.zip: cached", "[2/2] BTCUSDT-1h-2024-03-02.zip: cached"]
    # a cached file that was damaged is fetched again
    paths[0].write_bytes(b"damaged")
    fetch("BTCUSDT", "2024-03-01", interval="1h", end="2024-03-01", cache_dir=cache, base_url=archive.url)
    served = archive.root / "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-01.zip"
    assert len(archive.requests) == 6 and paths[0].read_bytes() == served.read_bytes()


def test_fetch_refuses_a_checksum_mismatch_and_leaves_nothing(archive, tmp_path):
    archive.put("data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-03.zip", day_zip("2024-03-03"),
                checksum="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch) as info:
        fetch("BTCUSDT", "2024-03-03", "2024-03-03", interval="1h", cache_dir=cache, base_url=archive.url)
    assert "BTCUSDT-1h-2024-03-03.zip" in str(info.value) and archive.url in str(info.value)
    assert "2024-03-03" in str(info.value)
    assert files_in(cache) == []


def test_fetch_404_names_the_url_and_date(archive, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ArchiveNotFound) as info:
        fetch("BTCUSDT", "2024-03-02", "2024-03-04", interval="1h", cache_dir=cache, base_url=archive.url)
    url = f"{archive.url}/data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-03.zip"
    assert info.value.date == "2024-03-03" and info.value.url.startswith(url)
    assert url in str(info.value) and "2024-03-03" in str(info.value) and "404" in str(info.value)
    assert len(files_in(cache)) == 2  # the day before was kept (zip + checksum)


def test_fetch_rejects_bad_requests_without_touching_the_network(archive, tmp_path):
    kw = dict(cache_dir=tmp_path / "cache", base_url=archive.url)
    with pytest.raises(FetchError, match="end 2024-03-01 is before start 2024-03-02"):
        fetch("BTCUSDT", "2024-03-02", "2024-03-01", **kw)
    with pytest.raises(FetchError, match="unknown kind 'trades'"):
        fetch("BTCUSDT", "2024-03-01", "2024-03-01", kind="trades", **kw)
    with pytest.raises(FetchError, match="unknown interval '7m'"):
        fetch("BTCUSDT", "2024-03-01", "2024-03-01", interval="7m", **kw)
    with pytest.raises(FetchError, match="not a date"):
        fetch("BTCUSDT", "2024-02-30", "2024-03-01", **kw)
    assert archive.requests == []


def test_archive_layout_and_monthly_funding(archive, tmp_path):
    files = archive_files("BTCUSDT", "2023-12-15", "2024-02-01", kind="fundingRate", base_url="https://x")
    assert [f.date for f in files] == ["2023-12", "2024-01", "2024-02"]
    assert files[1].url == "https://x/data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"
    mark = archive_files("ETHUSDT", "2024-01-31", "2024-02-01", kind="markPriceKlines", interval="1m")
    assert mark[1].url == ("https://data.binance.vision/data/futures/um/daily/markPriceKlines/ETHUSDT/1m/"
                           "ETHUSDT-1m-2024-02-01.zip")
    archive.put("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
                (FIXTURES / "BTCUSDT-fundingRate-2024-01.zip").read_bytes())
    paths = fetch("BTCUSDT", "2024-01-05", "2024-01-20", kind="fundingRate", cache_dir=tmp_path / "c",
                  base_url=archive.url)
    assert len(paths) == 1 and load_funding(paths)["BTCUSDT"]["rate"].iloc[0] == 0.0001


def test_main_fetch_prints_progress_and_exit_codes(archive, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RISKCORE_CACHE", str(tmp_path / "envcache"))
    assert fetch_mod.default_cache_dir() == tmp_path / "envcache"
    argv = ["BTCUSDT", "--start", "2024-03-01", "--end", "2024-03-02", "--interval", "1h", "--base-url", archive.url]
    assert main_fetch(argv) == 0
    out = capsys.readouterr().out
    assert "[1/2] BTCUSDT-1h-2024-03-01.zip: downloaded" in out and "[2/2]" in out and "done: 2 file(s)" in out
    assert len(files_in(tmp_path / "envcache")) == 4
    assert main_fetch(argv[:3] + ["--interval", "1h", "--base-url", archive.url]) == 0  # --end defaults to --start
    assert "cached" in capsys.readouterr().out
    assert main_fetch(["BTCUSDT", "--start", "2024-03-09", "--interval", "1h", "--base-url", archive.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("riskcore: error:") and "BTCUSDT-1h-2024-03-09.zip" in err and "2024-03-09" in err
