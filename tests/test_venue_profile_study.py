"""``riskcore.venues.study``: runs of one book under different venue profiles, compared.

The runs are test_venue_profiles.py's Hyperliquid slices case (numbers worked there): a 2 BTC
isolated long sliced by 0.4 at 91,139.24 in bar 1, then liquidated whole (1.6 at 90,850.83)
in bar 2.  Under Binance's rules the table's 0.4% applies and bar 1 does not reach the LP.
"""
from __future__ import annotations

import pytest
from test_venue_profiles import ONE_TIER, one_account, run

from riskcore.venues.study import VENUE_OUTCOME_COLUMNS, venue_differences, venue_outcomes

ONE_BAR = ((100_000, 100_000, 91_000, 95_000),)
TWO_BARS = ONE_BAR + ((95_000, 95_000, 90_000, 90_000),)


def test_outcomes_count_partial_and_whole_liquidations():
    runs = {venue: run(one_account(ONE_TIER, venue, qty=2.0), *rows, engine="reference", fee=0.01)
            for venue, rows in (("binance", ONE_BAR), ("hyperliquid", ONE_BAR))}
    runs["hyperliquid, two bars"] = run(one_account(ONE_TIER, "hyperliquid", qty=2.0), *TWO_BARS,
                                        engine="reference", fee=0.01)
    out = venue_outcomes(runs)
    assert list(out.columns) == list(VENUE_OUTCOME_COLUMNS)
    assert out["venues"].tolist() == ["binance", "hyperliquid", "hyperliquid"]
    # Binance (mmr 0.4%): LP (20,000 - 200,000) / (2 x 0.004 - 2) = 90,361.45, below bar 1's low
    # of 91,000: nothing is liquidated
    assert out.loc["binance", ["liquidations", "positions_liquidated", "open_positions_end"]].tolist() == [0, 0, 1]
    # Hyperliquid, bar 1: one slice of 0.4 at 91,139.24 (notional 36,455.70), the position reduced
    assert out.loc["hyperliquid", ["liquidations", "positions_liquidated", "positions_closed_out",
                                   "positions_reduced", "open_positions_end"]].tolist() == [1, 1, 0, 1, 1]
    assert out.loc["hyperliquid", "liquidated_qty"] == pytest.approx(0.4)
    assert out.loc["hyperliquid", "liquidated_notional"] == pytest.approx(0.4 * 91_139.2405, abs=0.01)
    assert out.loc["hyperliquid", "liquidation_fees"] == 0.0
    # two bars: the slice, then the 1.6 left at 90,850.83: closed out
    two = out.loc["hyperliquid, two bars"]
    assert [two["liquidations"], two["positions_closed_out"], two["positions_reduced"]] == [2, 1, 0]
    assert two["liquidated_notional"] == pytest.approx(0.4 * 91_139.2405 + 1.6 * 90_850.8252, abs=0.01)
    assert two["bad_debt"] == 0.0 and two["adl_positions_hit"] == 0

    diff = venue_differences(runs)
    assert diff.attrs["base"] == "binance"
    assert diff.loc["hyperliquid, two bars", "liquidations_vs_base"] == 2
    assert diff.loc["binance", "liquidated_notional_vs_base"] == 0.0
    with pytest.raises(KeyError, match="base run 'nope'"):
        venue_differences(runs, base="nope")


def test_the_report_compares_venues_only_when_they_differ(tmp_path):
    """riskcore run on a grid over market.venue: the report gets a Venues section whose table
    holds each variant's venue_outcomes (read back from the run's own events here)."""
    import pandas as pd
    from test_scenarios import SMALL, write

    from riskcore.cli import main

    text = SMALL + '\n[grid]\n"market.venue" = ["binance", "okx"]\n'
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    html = (out / "report.html").read_text()
    assert 'id="venues"' in html and 'href="#venues"' in html and 'id="venue-table"' in html
    table = html.split('id="venue-table"')[1].split("</table>")[0]
    assert "okx" in table and "binance" in table
    events = pd.read_parquet(out / "events.parquet")
    n_liq = events[events["kind"] == "liquidation"].groupby("variant", observed=True).size()
    assert n_liq.sum() > 0
    for variant, count in n_liq.items():  # each variant's count of liquidation closes is in the table
        assert f"{count:,}" in table
    plain = tmp_path / "plain"
    assert main(["run", str(write(tmp_path, SMALL, "p.toml")), "--out", str(plain), "--no-progress"]) == 0
    assert 'id="venues"' not in (plain / "report.html").read_text()
