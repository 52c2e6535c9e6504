"""Property tests of the book: random action sequences (hypothesis, bounded).

Oracles are written independently of the book's bookkeeping: a round trip to flat
realizes the sum of the fills' cash flows minus fees; money is conserved; refused
actions change nothing; the columnar export round-trips; liquidation prices are
where equity meets maintenance margin.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from riskcore import Book, Brackets, Refused, margin

TWO_TIERS = [
    {"notional_floor": 0, "notional_cap": 50_000, "mmr": 0.01, "max_leverage": 50},
    {"notional_floor": 50_000, "notional_cap": 1e12, "mmr": 0.02, "max_leverage": 20},
]
CONTRACTS = ("BTCUSDT", "ETHUSDT")
ACCOUNTS = (1, 2, 3)

prices = st.floats(min_value=50.0, max_value=200.0, allow_nan=False)
quantities = st.floats(min_value=0.01, max_value=50.0, allow_nan=False)
contract = st.sampled_from(CONTRACTS)
account = st.sampled_from(ACCOUNTS)
# "auto" picks a leg that fits the account's position mode (most actions should be valid);
# the explicit ones are sometimes wrong on purpose.
leg = st.sampled_from(["auto", "auto", "auto", "auto", None, "long", "short"])
side = st.sampled_from(["buy", "sell"])

market = st.tuples(st.just("market_order"), account, contract, side, quantities, prices, leg, st.booleans())
actions = st.one_of(
    market, market, market,
    st.tuples(st.just("set_margin_mode"), account, contract, st.just("isolated")),
    st.tuples(st.just("limit_order"), account, contract, side, quantities, prices, leg, st.booleans()),
    st.tuples(st.just("fill_order"), st.integers(1, 30)),
    st.tuples(st.just("cancel_order"), st.integers(1, 30)),
    st.tuples(st.just("set_leverage"), account, contract, st.sampled_from([1, 2, 5, 10, 20, 50, 60]), leg),
    st.tuples(st.just("set_margin_mode"), account, contract, st.sampled_from(["cross", "isolated"])),
    st.tuples(st.just("set_position_mode"), account, st.sampled_from(["one-way", "hedge"])),
    st.tuples(st.just("add_margin"), account, contract, st.floats(1.0, 5_000.0), leg),
    st.tuples(st.just("remove_margin"), account, contract, st.floats(1.0, 5_000.0), leg),
    st.tuples(st.just("set_auto_add_margin"), account, contract, st.booleans(), leg),
    st.tuples(st.just("set_marks"), contract, prices),
    st.tuples(st.just("deposit"), account, st.floats(1.0, 10_000.0)),
    st.tuples(st.just("withdraw"), account, st.floats(1.0, 10_000.0)),
    st.tuples(st.just("set_tp_sl"), account, contract, st.one_of(st.none(), prices),
              st.one_of(st.none(), prices), leg),
)


def new_book(wallet: float = 20_000.0) -> Book:
    book = Book()
    for symbol in CONTRACTS:
        book.add_contract(symbol, Brackets.from_records(TWO_TIERS, symbol=symbol),
                          maker_fee=0.0002, taker_fee=0.0005, mark_price=100.0)
    for a in ACCOUNTS:
        book.add_account(a, wallet=wallet)
    return book


class Ledger:
    """Money that entered or left the book from outside, and PnL realized inside it."""

    def __init__(self, book: Book):
        self.start = total_money(book)
        self.deposits = 0.0
        self.realized = 0.0


def total_money(book: Book) -> float:
    return (sum(a.wallet for a in book.accounts.values())
            + sum(p.wallet_iso for a in book.accounts.values() for p in a.positions.values())
            + book.fees_collected)


def resolve_leg(book: Book, action: tuple) -> tuple:
    """Replace an "auto" leg with one that fits the account's position mode."""
    if "auto" not in action:
        return action
    name, acct = action[0], action[1]
    if book.accounts[acct].position_mode == 0:
        chosen = None
    elif name in ("market_order", "limit_order"):
        chosen = "long" if (action[3] == "buy") != (action[-1] is True) else "short"
    else:
        chosen = "long" if (book.position(acct, action[2], "long") is not None) else "short"
    return tuple(chosen if a == "auto" else a for a in action)


def apply(book: Book, action: tuple, ledger: Ledger) -> None:
    name, *args = resolve_leg(book, action)
    if name == "market_order":
        acct, sym, sd, qty, px, lg, ro = args
        fill = book.market_order(acct, sym, sd, qty, px, leg=lg, reduce_only=ro)
        ledger.realized += fill.realized_pnl
    elif name == "limit_order":
        acct, sym, sd, qty, px, lg, ro = args
        book.limit_order(acct, sym, sd, qty, px, leg=lg, reduce_only=ro)
    elif name == "fill_order":
        fill = book.fill_order(args[0])
        ledger.realized += fill.realized_pnl
    elif name == "cancel_order":
        book.cancel_order(args[0])
    elif name == "set_leverage":
        book.set_leverage(*args[:3], leg=args[3])
    elif name == "set_margin_mode":
        book.set_margin_mode(*args)
    elif name == "set_position_mode":
        book.set_position_mode(*args)
    elif name == "add_margin":
        book.add_margin(*args[:3], leg=args[3])
    elif name == "remove_margin":
        book.remove_margin(*args[:3], leg=args[3])
    elif name == "set_auto_add_margin":
        book.set_auto_add_margin(*args[:3], leg=args[3])
    elif name == "set_marks":
        book.set_marks({args[0]: args[1]})
    elif name == "deposit":
        book.deposit(*args)
        ledger.deposits += args[1]
    elif name == "withdraw":
        book.withdraw(*args)
        ledger.deposits -= args[1]
    elif name == "set_tp_sl":
        book.set_tp_sl(args[0], args[1], take_profit=args[2], stop_loss=args[3], leg=args[4])
    else:  # pragma: no cover
        raise AssertionError(name)


# Per-account set-up applied before the random actions, so that every mix of
# position mode, margin mode, leverage and auto-add is reached.
account_setup = st.tuples(
    st.sampled_from(["one-way", "hedge"]),
    st.sampled_from(["cross", "isolated"]), st.sampled_from(["cross", "isolated"]),
    st.sampled_from([2, 10, 20]), st.booleans())
setups = st.tuples(account_setup, account_setup, account_setup)


def setup_actions(setup) -> list[tuple]:
    out = []
    for acct, (pmode, btc_mode, eth_mode, lev, auto) in zip(ACCOUNTS, setup):
        out.append(("set_position_mode", acct, pmode))
        for sym, mode in zip(CONTRACTS, (btc_mode, eth_mode)):
            out.append(("set_margin_mode", acct, sym, mode))
            out.append(("set_leverage", acct, sym, lev, None))
            if mode == "isolated":
                out.append(("set_auto_add_margin", acct, sym, auto, None))
    return out


def run(actions_list, setup=None) -> tuple[Book, Ledger, int]:
    book = new_book()
    ledger = Ledger(book)
    refused = 0
    for action in (setup_actions(setup) if setup else []) + list(actions_list):
        before = book.copy()
        try:
            apply(book, action, ledger)
        except (Refused, ValueError, KeyError) as exc:
            refused += 1
            assert book == before, f"{action} raised {exc!r} but changed the book"
    return book, ledger, refused


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(setups, st.lists(actions, min_size=5, max_size=40))
def test_refused_actions_change_nothing_and_money_is_conserved(setup, action_list):
    book, ledger, _ = run(action_list, setup)
    expected = ledger.start + ledger.deposits + ledger.realized
    assert math.isclose(total_money(book), expected, rel_tol=1e-12, abs_tol=1e-6)


@SETTINGS
@given(setups, st.lists(actions, min_size=5, max_size=40))
def test_columns_round_trip_is_the_identity(setup, action_list):
    book, _, _ = run(action_list, setup)
    assert Book.from_frames(book.to_frames()) == book
    assert Book.from_arrow(book.to_arrow()) == book


def test_parquet_round_trip(tmp_path):
    book, _, _ = run([("set_position_mode", 2, "hedge"), ("set_margin_mode", 2, "BTCUSDT", "isolated"),
                      ("market_order", 2, "BTCUSDT", "buy", 3.0, 100.0, "long", False),
                      ("market_order", 2, "BTCUSDT", "sell", 1.0, 100.0, "short", False),
                      ("limit_order", 1, "ETHUSDT", "buy", 2.0, 90.0, None, False),
                      ("set_tp_sl", 2, "BTCUSDT", 150.0, 60.0, "long")])
    book.write_parquet(tmp_path / "book")
    assert Book.read_parquet(tmp_path / "book") == book


fills = st.lists(st.tuples(st.sampled_from([1, -1]), quantities, prices), min_size=1, max_size=12)


@SETTINGS
@given(fills, prices, st.sampled_from(["cross", "isolated"]), st.sampled_from(["one-way", "hedge"]),
       st.sampled_from([1, 5, 20]))
def test_round_trip_to_flat_realizes_the_cash_flows_minus_fees(trades, exit_price, mode, position_mode,
                                                                leverage):
    book = Book()
    book.add_contract("BTCUSDT", Brackets.from_records([TWO_TIERS[0] | {"notional_cap": 1e12}]),
                      maker_fee=0.0002, taker_fee=0.0005)
    book.add_account("a", wallet=1e9, position_mode=position_mode)  # room for the extra margin
    book.set_margin_mode("a", "BTCUSDT", mode)
    book.set_leverage("a", "BTCUSDT", leverage)
    cash = fees = 0.0
    net = {"long": 0.0, "short": 0.0, None: 0.0}
    for sign, qty, px in trades:
        if position_mode == "hedge":  # buys open the long leg, sells open the short leg
            lg = "long" if sign > 0 else "short"
        else:
            lg = None
        book.market_order("a", "BTCUSDT", sign, qty, px, leg=lg)
        net[lg] += sign * qty
        if mode == "isolated" and book.position("a", "BTCUSDT", lg) is not None:
            # back the leg fully, so that no later price is beyond its bankruptcy price
            book.add_margin("a", "BTCUSDT", 1e6, leg=lg)
        cash -= sign * qty * px
        fees += 0.0005 * qty * px
    for lg, size in net.items():
        if size != 0.0:
            close_leg = lg
            book.market_order("a", "BTCUSDT", -1 if size > 0 else 1, abs(size), exit_price, leg=close_leg)
            cash += size * exit_price
            fees += 0.0005 * abs(size) * exit_price
    account = book.accounts["a"]
    assert not account.positions
    gross = sum(q * p for _, q, p in trades) + 1.0
    assert math.isclose(account.wallet, 1e9 + cash - fees, rel_tol=0, abs_tol=1e-9 * (1e9 + gross))
    assert math.isclose(book.fees_collected, fees, rel_tol=1e-9)


@SETTINGS
@given(setups, st.lists(actions, min_size=5, max_size=40))
def test_liquidation_prices_are_where_equity_meets_maintenance(setup, action_list):
    book, _, _ = run(action_list, setup)
    frame = book.positions_frame()
    for row in frame.itertuples():
        lp = row.liquidation_price
        if math.isnan(lp):
            continue
        brackets = book.contracts[row.contract].brackets
        if row.margin_mode == "isolated":
            equity = row.wallet_iso + row.side * row.qty * (lp - row.entry_price)
            mm = margin.maintenance_margin(row.qty * lp, brackets)
            assert math.isclose(equity, mm, rel_tol=1e-7, abs_tol=1e-6)
        else:
            summary = book.account_summary(row.account, marks={row.contract: lp})
            assert math.isclose(summary["margin_balance"], summary["maintenance_margin"],
                                rel_tol=1e-7, abs_tol=1e-6)


def test_random_sequences_do_reach_every_state():
    """Guard against a vacuous generator: a fixed sequence of the strategy's actions opens
    isolated, cross and hedge positions, rests orders and gets refusals."""
    seq = [("set_margin_mode", 1, "BTCUSDT", "isolated"),
           ("market_order", 1, "BTCUSDT", "buy", 10.0, 100.0, None, False),
           ("market_order", 1, "ETHUSDT", "sell", 10.0, 100.0, None, False),
           ("set_position_mode", 3, "hedge"),
           ("market_order", 3, "ETHUSDT", "buy", 5.0, 100.0, "long", False),
           ("limit_order", 2, "ETHUSDT", "buy", 5.0, 90.0, None, False),
           ("set_margin_mode", 1, "BTCUSDT", "cross")]
    book, _, refused = run(seq)
    modes = set(book.positions_frame()["margin_mode"])
    assert modes == {"cross", "isolated"}
    assert refused == 1
    assert len(book.orders(2)) == 1


@pytest.mark.parametrize("bad", ["up", 0, 1.5, True])
def test_side_must_be_known(bad):
    book = new_book()
    with pytest.raises(ValueError, match="side"):
        book.market_order(1, "BTCUSDT", bad, 1.0, 100.0)
