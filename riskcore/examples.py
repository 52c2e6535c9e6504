"""Worked examples from the rule book, built with the public API.

``binance_cross_example()`` rebuilds Binance's published cross-margin example
(MARGIN_RULES.md section 4): one account with a BTCUSDT and an ETHUSDT long, and
the cross and isolated liquidation prices Binance gives for them.
"""
from __future__ import annotations

import pandas as pd

from .book import Book
from .brackets import Brackets

WALLET = 1_535_443.01
POSITIONS = {  # contract: (qty, entry price, mark price)
    "BTCUSDT": (109.488, 32_481.98, 31_967.27),
    "ETHUSDT": (3_683.979, 1_456.84, 1_335.18),
}
PUBLISHED = {  # Binance's figures: (cross LP, isolated LP with the whole wallet as margin)
    "BTCUSDT": (26_316.89, 18_778.73),
    "ETHUSDT": (1_153.26, 1_114.78),
}


def example_brackets() -> dict[str, Brackets]:
    """BTCUSDT: Binance's 2021 table (shipped, observed 2022-05-21).  ETHUSDT: any table whose
    tier holding 1.2M-5M has (10%, 135,365) reproduces Binance's figures; this one has
    0.5% up to 1,424,894.74 and 10% above."""
    eth = Brackets.from_records(
        [{"notional_floor": 0.0, "notional_cap": 1_424_894.74, "mmr": 0.005, "max_leverage": 100},
         {"notional_floor": 1_424_894.74, "notional_cap": 1e10, "mmr": 0.10, "max_leverage": 5}],
        symbol="ETHUSDT", source="two-tier table matching Binance's example")
    return {"BTCUSDT": Brackets.load("BTCUSDT", "2022-05-21"), "ETHUSDT": eth}


def binance_cross_example() -> tuple[Book, pd.DataFrame]:
    """The example as a book (one cross account and two isolated ones) and a table comparing
    riskcore's liquidation prices with Binance's published ones."""
    book = Book()
    for symbol, brackets in example_brackets().items():
        book.add_contract(symbol, brackets, maker_fee=0.0, taker_fee=0.0)
    book.add_account("cross", wallet=WALLET)
    leverage = {"BTCUSDT": 20, "ETHUSDT": 5}
    for symbol, (qty, entry, _) in POSITIONS.items():
        book.set_leverage("cross", symbol, leverage[symbol])
        book.market_order("cross", symbol, "buy", qty, price=entry)
        # The isolated variant: the same position alone, with the whole wallet as its margin.
        name = f"isolated {symbol}"
        book.add_account(name, wallet=WALLET)
        book.set_margin_mode(name, symbol, "isolated")
        book.set_leverage(name, symbol, leverage[symbol])
        book.market_order(name, symbol, "buy", qty, price=entry)
        book.add_margin(name, symbol, book.free_balance(name))
    book.set_marks({symbol: mark for symbol, (_, _, mark) in POSITIONS.items()})
    frame = book.positions_frame()
    rows = []
    for symbol in POSITIONS:
        cross = frame[(frame.account == "cross") & (frame.contract == symbol)].iloc[0]
        iso = frame[frame.account == f"isolated {symbol}"].iloc[0]
        rate, cum = book.contracts[symbol].brackets.mmr_cum(cross.notional)
        rows.append({
            "contract": symbol, "qty": cross.qty, "entry": cross.entry_price, "mark": cross.mark_price,
            "mmr": float(rate), "cum": float(cum), "maint_margin": cross.maintenance_margin,
            "upnl": cross.unrealized_pnl,
            "cross_liq": cross.liquidation_price, "binance_cross_liq": PUBLISHED[symbol][0],
            "isolated_wallet": iso.wallet_iso,
            "isolated_liq": iso.liquidation_price, "binance_isolated_liq": PUBLISHED[symbol][1],
        })
    return book, pd.DataFrame(rows)
