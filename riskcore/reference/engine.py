"""The reference engine: MARGIN_RULES.md sections 6 to 8 written out in order.

It is the executable specification the numba kernel must agree with, so it is
written to be read: one object per position (the :class:`~riskcore.book.Book`'s own),
explicit loops, one method per stage of a point.

A run steps every bar of the price paths through its intrabar points
(:func:`riskcore.inputs.bar_points`).  At each point, in this order:

1. funding that is due (first point of a bar only);
2. scheduled actions of the tape (first point of a bar only);
3. resting limit orders that the price reached, then take-profits and stop-losses;
4. isolated positions whose mark reached the liquidation price: auto-add-margin
   top-ups, repeated while the price keeps crossing the moved liquidation price;
5. the cross check of every account: margin balance <= maintenance margin (MMR >= 100%);
6. liquidations: resting orders in scope cancelled, positions closed at the trigger
   price (or the point's price after a gap) moved by the slippage and, with market
   impact (:mod:`riskcore.impact`), by the impact of the point's liquidation flow on
   their side; fee to the fund;
7. bad debt: the insurance fund pays every deficit of the point pro rata;
8. what it cannot pay is auto-deleveraged against opposite positions at the bankrupt
   position's bankruptcy price, in the order of the run's ADL policy (or pro rata,
   :mod:`riskcore.adl`); anything left is socialised loss.

With feedback on, the point's net liquidation flow then moves the mark, and stages 3 to
8 run again at the moved price (a cascade round), until a round liquidates nothing or
the bound on rounds is reached.  The mark is the path's price times a multiplier that
the flow moves (a permanent and a decaying transient part).

Accounts are visited in sorted id order and positions by (contract, leg), so the
outcome does not depend on the order of the book's rows.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import adl as adlp
from .. import impact as im
from .. import margin as fm
from ..book import Account, Book, Position
from ..enums import LEG_NAMES, Leg, MarginMode
from ..errors import Refused
from ..inputs import PricePaths, ScheduledAction, bar_points
from ..result import STEP_COLUMNS, Result, events_from_records, steps_frame

LONG_VIEW, SHORT_VIEW = 0, 1


def view_of(side: int) -> int:
    """Which column of a point's prices a position (or order) of this side sees."""
    return LONG_VIEW if side > 0 else SHORT_VIEW


def beyond(side: int, price: float, level: float) -> bool:
    """Has the price reached a level that is adverse for this side (long: at or below)?"""
    if math.isnan(level):
        return False
    return price <= level if side > 0 else price >= level


class ReferenceEngine:
    """One run of the reference engine over a private copy of the book."""

    def __init__(self, book: Book, paths: PricePaths, funding: np.ndarray, tape: list[ScheduledAction], *,
                 liquidation_fee_rate: float, insurance_fund: float, liquidation_slippage: float,
                 intrabar: str, mm_basis: str, impact: dict | None = None,
                 cascade_rounds: int = im.DEFAULT_ROUNDS, adl_policy: str = adlp.DEFAULT_POLICY,
                 adl_seed: int = 0):
        self.book = book
        self.paths = paths
        self.funding = funding
        self.tape = tape
        self.fee_rate = liquidation_fee_rate
        self.fund = insurance_fund
        self.slippage = liquidation_slippage
        self.intrabar = intrabar
        self.mm_basis = mm_basis
        self.cidx = {symbol: c for c, symbol in enumerate(paths.contracts)}
        self.impact = im.arrays(impact or {}, paths.contracts)
        self.rounds = cascade_rounds
        self.adl_policy = adl_policy
        self.adl_seed = adl_seed
        # the contracts' venue profiles (riskcore.venues.profiles): MM table, fee rate, ADL policy
        contracts = {symbol: book.contracts[symbol] for symbol in paths.contracts}
        self.profile = {symbol: c.profile for symbol, c in contracts.items()}
        self.mm_table = {symbol: c.mm_brackets for symbol, c in contracts.items()}
        self.liq_fee = {symbol: self.profile[symbol].fee_rate(liquidation_fee_rate, c.taker_fee)
                        for symbol, c in contracts.items()}
        self.policy = {symbol: self.profile[symbol].adl_policy or adl_policy for symbol in contracts}
        self.perm = [0.0] * len(self.cidx)  # the mark's permanent shift per contract
        self.trans = [0.0] * len(self.cidx)  # ... and its transient shift
        self.slip = [[0.0, 0.0] for _ in self.cidx]  # impact per (contract, view) at this round
        self.round = 0
        self.events: list[dict] = []
        self.steps: list[dict] = []
        self.tags: dict = {}  # tape tag -> order id
        self.ledger = {"realized_pnl": 0.0, "funding": 0.0, "deposits": 0.0, "socialised_loss": 0.0}
        self.t = self.k = 0
        self.timestamp = None
        self.bar: dict = {}

    # ------------------------------------------------------------------ helpers
    def accounts(self) -> list[Account]:
        return [self.book.accounts[a] for a in sorted(self.book.accounts)]

    def positions(self, acct: Account) -> list[Position]:
        return sorted(acct.positions.values(), key=lambda p: (self.cidx[p.contract], p.leg))

    def price(self, prices: np.ndarray, contract: str, side: int) -> float:
        return float(prices[self.cidx[contract], view_of(side)])

    def settings(self, pos: Position):
        return self.book.accounts[pos.account].settings[pos.contract]

    def is_isolated(self, pos: Position) -> bool:
        return self.settings(pos).margin_mode == MarginMode.ISOLATED

    def marks(self, prices: np.ndarray) -> dict:
        return {symbol: float(prices[c, LONG_VIEW]) for symbol, c in self.cidx.items()}

    def emit(self, kind: str, account=None, contract=None, leg=None, side=0, qty=np.nan, price=np.nan,
             amount=0.0, fee=0.0, wallet_iso=np.nan, reason=""):
        acct = self.book.accounts.get(account)
        self.events.append({
            "step": self.t, "point": self.k, "round": self.round, "timestamp": self.timestamp, "account": account,
            "contract": contract, "leg": None if leg is None else LEG_NAMES[leg], "kind": kind, "side": side,
            "qty": qty, "price": price, "amount": amount, "fee": fee,
            "wallet": acct.wallet if acct is not None else np.nan, "wallet_iso": wallet_iso, "reason": reason,
        })

    def cross_state(self, acct: Account, prices: np.ndarray) -> tuple[float, float, float]:
        """(uPnL, maintenance margin, initial margin) of the account's cross positions, each
        valued at the price its side sees."""
        upnl = mm = im = 0.0
        for pos in self.positions(acct):
            if self.is_isolated(pos):
                continue
            px = self.price(prices, pos.contract, pos.side)
            notional = pos.qty * px
            upnl += pos.side * pos.qty * (px - pos.entry_price)
            mm += float(self.mm_table[pos.contract].maintenance_margin(notional))
            im += notional / self.settings(pos).leverage(pos.leg, pos.side)
        return upnl, mm, im

    def free_balance(self, acct: Account, prices: np.ndarray, doomed: list | None = None) -> float:
        """Section 3: cross wallet + cross uPnL - cross IM - order margin, floored at 0.

        ``doomed``: positions already marked for liquidation at this point.  Their scope's
        resting orders are cancelled first (section 6), so they hold no margin any more."""
        upnl, _, im = self.cross_state(acct, prices)
        gone = {(p.contract, p.leg) for p, _ in (doomed or ()) if p.account == acct.account_id}
        order_margin = sum(opening * o.price / acct.settings[o.contract].leverage(o.leg, o.side)
                           for o, opening in self.book._opening_orders(acct) if (o.contract, o.leg) not in gone)
        return max(0.0, acct.wallet + upnl - im - order_margin)

    def liquidation_price(self, pos: Position, qty: float | None = None, wallet_iso: float | None = None) -> float:
        """The isolated position's liquidation price (or that of ``qty`` of it backed by ``wallet_iso``)."""
        return fm.isolated_liquidation_price_one(pos.side, pos.qty if qty is None else qty, pos.entry_price,
                                                 pos.wallet_iso if wallet_iso is None else wallet_iso,
                                                 self.mm_table[pos.contract], self.mm_basis)

    # --------------------------------------------------------------------- run
    def run(self, progress=None) -> Result:
        book = self.book
        money_start = self.money()
        first = bar_points(self.paths.ohlc[0], self.intrabar)[0]
        prev = first.copy()
        for c, symbol in enumerate(self.paths.contracts):  # the run starts from the book's marks
            mark = book.contracts[symbol].mark_price
            if mark is not None:
                prev[c, :] = mark
        continuous_model = self.intrabar == "close"
        for t in range(self.paths.n_steps):
            self.t, self.timestamp = t, pd.Timestamp(self.paths.timestamps[t])
            self.bar = {key: 0 if key in ("accounts_liquidated", "liquidations", "topups") else 0.0
                        for key in STEP_COLUMNS[2:]}
            self.bar_accounts: set = set()
            for c in range(len(self.trans)):  # the transient shift of the mark decays bar by bar
                self.trans[c] *= float(self.impact.decay[c])
            for k, base in enumerate(bar_points(self.paths.ohlc[t], self.intrabar)):
                self.k = k
                gap = k == 0 and (t == 0 or not continuous_model)
                prev = self.point(prev, base, gap)
            self.record_step(prev)
            if progress is not None:
                progress(t + 1)
        for symbol, c in self.cidx.items():  # the last close (times the mark's multiplier)
            book.contracts[symbol].mark_price = float(prev[c, LONG_VIEW])
        self.ledger.update(money_start=money_start, money_end=self.money(), insurance_fund=self.fund,
                           trading_fees=book.fees_collected)
        events = events_from_records(self.events)
        steps = steps_frame(self.steps)
        return Result(events, steps, book.to_table(), ledger=self.ledger, _book=book)

    def money(self) -> float:
        book = self.book
        return (sum(a.wallet for a in book.accounts.values())
                + sum(p.wallet_iso for a in book.accounts.values() for p in a.positions.values())
                + self.fund + book.fees_collected)

    def effective(self, base: np.ndarray) -> np.ndarray:
        """The mark the book sees: the path's prices ``base`` times each contract's multiplier."""
        cur = base.copy()
        for c in range(cur.shape[0]):
            m = im.multiplier(self.perm[c], self.trans[c])
            cur[c, 0] = base[c, 0] * m
            cur[c, 1] = base[c, 1] * m
        return cur

    def point(self, prev: np.ndarray, base: np.ndarray, gap: bool) -> np.ndarray:
        """One point, cascade rounds included; returns the prices it ended at."""
        self.round = 0
        cur = self.effective(base)
        for symbol, c in self.cidx.items():
            self.book.contracts[symbol].mark_price = float(cur[c, LONG_VIEW])
        if self.k == 0:
            self.settle_funding(cur)
            self.run_actions(cur)
        while True:
            self.fill_limit_orders(prev, cur, gap)
            self.trigger_tp_sl(prev, cur, gap)
            isolated = self.check_isolated(prev, cur, gap)
            cross = self.check_cross(prev, cur, gap)
            flow = self.liquidation_flow(isolated, cross)
            for c in range(len(flow)):
                m = im.multiplier(self.perm[c], self.trans[c])
                for v in (0, 1):  # each fill takes the average impact of its side's flow
                    self.slip[c][v] = im.impact_of(flow[c][v], self.impact, c, m)[1]
            deficits = self.liquidate(isolated, cross, cur)
            self.cover_bad_debt(deficits, cur)
            if not self.move_mark(flow):
                return cur
            prev, cur, gap = cur, self.effective(base), False
            for symbol, c in self.cidx.items():
                self.book.contracts[symbol].mark_price = float(cur[c, LONG_VIEW])
            if self.round + 1 >= self.rounds:  # the bound: the next point looks at the moved mark
                return cur
            self.round += 1

    def liquidation_flow(self, isolated: list[tuple], cross: list[tuple]) -> list[list[float]]:
        """Notional at the trigger prices of the positions liquidated at this round, per
        contract and view (0: longs, sold; 1: shorts, bought), summed account by account in
        id order and each account's positions by (contract, leg)."""
        trigger = {id(p): px for p, px in isolated}
        for _, doomed in cross:
            trigger.update((id(p), px) for p, px in doomed)
        flow = [[0.0, 0.0] for _ in self.cidx]
        if not trigger:
            return flow
        for acct in self.accounts():
            for pos in self.positions(acct):
                px = trigger.get(id(pos))
                if px is not None:
                    flow[self.cidx[pos.contract]][view_of(pos.side)] += pos.qty * px
        return flow

    def move_mark(self, flow: list[list[float]]) -> bool:
        """Feedback: the net flow (sold minus bought) moves each contract's mark by the
        impact of its size; returns whether any mark moved."""
        moved = False
        for c, (sold, bought) in enumerate(flow):
            share = float(self.impact.permanent[c]), float(self.impact.transient[c])
            net = sold - bought
            if net == 0.0 or share == (0.0, 0.0):
                continue
            # the mark moves to where the net flow reached (the same as the fills' impact under
            # the square-root law; with a depth table, the walk's last level, beyond its average)
            size = im.impact_of(abs(net), self.impact, c, im.multiplier(self.perm[c], self.trans[c]))[0]
            if size == 0.0:
                continue
            move = -size if net > 0.0 else size
            self.perm[c] += share[0] * move
            self.trans[c] += share[1] * move
            moved = True
        return moved

    # ---------------------------------------------------------------- 1. funding
    def settle_funding(self, cur: np.ndarray) -> None:
        """Section 7: payment = side * qty * mark * rate, from/to the wallet that backs the position."""
        for symbol, c in self.cidx.items():
            rate = self.funding[self.t, c]
            if rate == 0.0:
                continue
            for acct in self.accounts():
                for pos in self.positions(acct):
                    if pos.contract != symbol:
                        continue
                    received = -pos.side * pos.qty * float(cur[c, LONG_VIEW]) * rate
                    if self.is_isolated(pos):
                        pos.wallet_iso += received
                    else:
                        acct.wallet += received
                    self.ledger["funding"] += received
                    self.bar["funding_paid"] -= received
                    self.emit("funding", acct.account_id, symbol, pos.leg, pos.side, pos.qty,
                              float(cur[c, LONG_VIEW]), received, wallet_iso=pos.wallet_iso, reason=f"rate {rate:g}")

    # ------------------------------------------------------------ 2. the tape
    def run_actions(self, cur: np.ndarray) -> None:
        marks = self.marks(cur)
        while self.tape and self.tape[0].step == self.t:
            action = self.tape.pop(0)
            f = action.fields
            try:
                self.run_action(action.action, f, marks, cur)
            except (Refused, ValueError, KeyError, TypeError) as exc:
                code = getattr(exc, "code", type(exc).__name__)
                message = exc.args[0] if exc.args else str(exc)
                self.emit("refused", f.get("account"), f.get("contract"), None, 0,
                          reason=f"{action.action}: {code}: {message}")

    def run_action(self, name: str, f: dict, marks: dict, cur: np.ndarray) -> None:
        book = self.book
        acct_id, symbol, leg = f.get("account"), f.get("contract"), f.get("leg")
        if name == "market":
            px = float(cur[self.cidx[symbol], LONG_VIEW]) if symbol in self.cidx else float("nan")
            fill = book.market_order(acct_id, symbol, f["side"], float(f["qty"]), px, leg=leg,
                                     reduce_only=bool(f.get("reduce_only", False)), marks=marks)
            self.record_fill("fill", fill)
        elif name == "limit":
            order_id = book.limit_order(acct_id, symbol, f["side"], float(f["qty"]), float(f["price"]), leg=leg,
                                        reduce_only=bool(f.get("reduce_only", False)), marks=marks)
            if "tag" in f:
                self.tags[f["tag"]] = order_id
            order = book.accounts[acct_id].orders[order_id]
            self.emit("order", acct_id, symbol, order.leg, order.side, order.qty, order.price,
                      reason=f"order #{order_id}")
        elif name == "cancel":
            order_id = int(f["order_id"]) if "order_id" in f else self.tags.get(f["tag"])
            if order_id is None:
                raise KeyError(f"no order tagged {f['tag']!r}")
            order = book.cancel_order(order_id)
            self.emit("cancel", order.account, order.contract, order.leg, order.side, order.qty, order.price,
                      reason=f"order #{order_id}")
        else:
            amount = float(f.get("amount", 0.0))
            if name == "add_margin":
                book.add_margin(acct_id, symbol, amount, leg=leg, marks=marks)
            elif name == "remove_margin":
                book.remove_margin(acct_id, symbol, amount, leg=leg, marks=marks)
            elif name == "set_leverage":
                book.set_leverage(acct_id, symbol, float(f["leverage"]), leg=leg, marks=marks)
            elif name == "set_margin_mode":
                book.set_margin_mode(acct_id, symbol, f["mode"])
            elif name == "set_position_mode":
                book.set_position_mode(acct_id, f["mode"])
            elif name == "set_auto_add_margin":
                book.set_auto_add_margin(acct_id, symbol, bool(f["enabled"]), leg=leg)
            elif name == "set_tp_sl":
                book.set_tp_sl(acct_id, symbol, take_profit=f.get("take_profit"), stop_loss=f.get("stop_loss"),
                               leg=leg, marks=marks)
            elif name == "deposit":
                book.deposit(acct_id, amount)
                self.ledger["deposits"] += amount
            elif name == "withdraw":
                book.withdraw(acct_id, amount, marks=marks)
                self.ledger["deposits"] -= amount
            self.emit("action", acct_id, symbol, None, 0, amount=amount, reason=name)

    def record_fill(self, kind: str, fill) -> None:
        self.ledger["realized_pnl"] += fill.realized_pnl
        pos = self.book.accounts[fill.account].positions.get((fill.contract, fill.leg))
        self.emit(kind, fill.account, fill.contract, fill.leg, fill.side, fill.qty, fill.price, fill.realized_pnl,
                  fill.fee, wallet_iso=pos.wallet_iso if pos is not None else 0.0)

    # ------------------------------------------------- 3. limit orders, TP and SL
    def fill_limit_orders(self, prev: np.ndarray, cur: np.ndarray, gap: bool) -> None:
        """Orders are visited account by account (sorted ids), each account's by order id.
        A buy fills once the price it sees is at or below its limit, a sell at or above.  The
        fill is at the limit when the price crossed it inside the point's segment, at the
        point's price when it was already through (a gap, or an order placed past the market)."""
        orders = [o for a in self.accounts() for o in sorted(a.orders.values(), key=lambda o: o.order_id)]
        marks = self.marks(cur)
        for order in orders:
            c = self.cidx[order.contract]
            now, before = float(cur[c, view_of(order.side)]), float(prev[c, view_of(order.side)])
            if order.side * (now - order.price) > 0:
                continue
            crossed = not gap and order.side * (before - order.price) > 0
            px = order.price if crossed else now
            try:
                fill = self.book.fill_order(order.order_id, px, marks=marks)
            except Refused as exc:
                self.book.cancel_order(order.order_id)
                self.emit("refused", order.account, order.contract, order.leg, order.side, order.qty, px,
                          reason=f"fill of order #{order.order_id}: {exc.code}: {exc}")
                continue
            self.record_fill("fill", fill)

    def trigger_tp_sl(self, prev: np.ndarray, cur: np.ndarray, gap: bool) -> None:
        """Section 5: a trigger fires when the mark the position sees crosses it; the whole
        position closes at the trigger (or at the point's price after a gap), taker fee."""
        marks = self.marks(cur)
        for acct in self.accounts():
            for pos in self.positions(acct):
                now = self.price(cur, pos.contract, pos.side)
                before = self.price(prev, pos.contract, pos.side)
                fired = None
                if pos.stop_loss is not None and pos.side * (now - pos.stop_loss) <= 0:
                    fired, level = "sl", pos.stop_loss
                elif pos.take_profit is not None and pos.side * (now - pos.take_profit) >= 0:
                    fired, level = "tp", pos.take_profit
                if fired is None:
                    continue
                crossed = not gap and (pos.side * (before - level) > 0 if fired == "sl"
                                       else pos.side * (before - level) < 0)
                px = level if crossed else now
                try:
                    fill = self.book.market_order(acct.account_id, pos.contract, -pos.side, pos.qty, px,
                                                  leg=None if pos.leg == Leg.BOTH else pos.leg, reduce_only=True,
                                                  marks=marks)
                except Refused as exc:  # an isolated close beyond bankruptcy: the liquidation check takes it
                    self.emit("refused", acct.account_id, pos.contract, pos.leg, pos.side, pos.qty, px,
                              reason=f"{fired}: {exc.code}: {exc}")
                    continue
                self.record_fill(fired, fill)

    # ------------------------------------------------------- 4. isolated checks
    def check_isolated(self, prev: np.ndarray, cur: np.ndarray, gap: bool) -> list[tuple]:
        """Section 3: when the mark reaches an isolated position's liquidation price, top it up
        if it opted in (``min(Q*EP/L, free balance)``, never past ``Q*mark``) and look again;
        liquidate when no top-up is possible.  Returns ``(position, trigger price)`` pairs."""
        doomed = []
        for acct in self.accounts():
            for pos in self.positions(acct):
                if not self.is_isolated(pos):
                    continue
                now = self.price(cur, pos.contract, pos.side)
                before = self.price(prev, pos.contract, pos.side)
                lp = self.liquidation_price(pos)
                if not beyond(pos.side, now, lp):
                    continue
                touch = lp if (not gap and not beyond(pos.side, before, lp)) else now
                st = self.settings(pos)
                while True:
                    amount = 0.0
                    if st.auto_add(pos.leg, pos.side):
                        amount = min(pos.qty * pos.entry_price / st.leverage(pos.leg, pos.side),
                                     self.free_balance(acct, cur, doomed),
                                     max(0.0, pos.qty * touch - pos.wallet_iso))
                    # A top-up too small to move the price (e.g. capped at 1x leverage) ends the loop.
                    if amount <= 1e-9 * pos.qty * pos.entry_price:
                        doomed.append((pos, touch))
                        break
                    acct.wallet -= amount
                    pos.wallet_iso += amount
                    self.bar["topups"] += 1
                    self.bar["topup_amount"] += amount
                    self.emit("topup", acct.account_id, pos.contract, pos.leg, pos.side, pos.qty, touch, amount,
                              wallet_iso=pos.wallet_iso)
                    lp = self.liquidation_price(pos)
                    if not beyond(pos.side, now, lp):
                        break
                    touch = lp if not gap else now
        return doomed

    # ---------------------------------------------------------- 5. cross check
    def check_cross(self, prev: np.ndarray, cur: np.ndarray, gap: bool) -> list[tuple]:
        """Section 4: the cross book of an account liquidates when its margin balance is at or
        below its maintenance margin.  The trigger moment is found exactly on the point's
        segment (prices moving linearly from the previous point); returns
        ``(account, [(position, trigger price), ...])`` pairs."""
        doomed = []
        for acct in self.accounts():
            cross = [p for p in self.positions(acct) if not self.is_isolated(p)]
            if not cross:
                if acct.wallet < 0.0:  # e.g. a stop-loss that gapped through: a deficit, nothing to close
                    doomed.append((acct, []))
                continue
            ends = [(self.price(prev, p.contract, p.side), self.price(cur, p.contract, p.side)) for p in cross]
            if self.cross_excess(acct, cross, [b for _, b in ends]) > 0.0:
                continue
            lam = 1.0 if gap else self.cross_trigger(acct, cross, ends)
            doomed.append((acct, [(p, a + lam * (b - a)) for p, (a, b) in zip(cross, ends)]))
        return doomed

    def cross_excess(self, acct: Account, cross: list[Position], prices: list[float]) -> float:
        """Margin balance minus maintenance margin of the cross book at these prices."""
        excess = acct.wallet
        for pos, px in zip(cross, prices):
            excess += pos.side * pos.qty * (px - pos.entry_price)
            excess -= float(self.mm_table[pos.contract].maintenance_margin(pos.qty * px))
        return excess

    def cross_trigger(self, acct: Account, cross: list[Position], ends: list[tuple]) -> float:
        """The first lambda in [0, 1] where the excess reaches 0 along the segment.  The excess is
        linear between the lambdas where some position crosses a tier edge, so each piece is
        solved exactly.  Returns 1 (the point's prices) when the book was already under water at
        the segment's start, e.g. after funding charged at this point."""
        breaks = {1.0}
        for pos, (a, b) in zip(cross, ends):
            if a == b:
                continue
            for cap in self.mm_table[pos.contract].notional_cap[:-1]:
                lam = (cap / pos.qty - a) / (b - a)
                if 0.0 < lam < 1.0:
                    breaks.add(float(lam))
        lo, f_lo = 0.0, self.cross_excess(acct, cross, [a for a, _ in ends])
        if f_lo <= 0.0:  # under water before the move (funding, an action): like a gap
            return 1.0
        for hi in sorted(breaks):
            f_hi = self.cross_excess(acct, cross, [a + hi * (b - a) for a, b in ends])
            if f_hi <= 0.0:
                return lo + (hi - lo) * f_lo / (f_lo - f_hi)
            lo, f_lo = hi, f_hi
        return 1.0  # not reached: the excess at lambda = 1 is <= 0

    # ---------------------------------------------------------- 6. liquidation
    def liquidate(self, isolated: list[tuple], cross: list[tuple], cur: np.ndarray) -> list[dict]:
        """Section 6: close every doomed scope, isolated ones first, then cross books.  Fees go to
        the fund.  Returns the deficits left to cover, one per scope that ended below zero.

        The contract's venue profile (:mod:`riskcore.venues.profiles`) decides how much is
        closed: the whole scope, or (``liquidation`` other than "whole") only a part that
        leaves it safe at the point's prices (:meth:`partial_isolated`, :meth:`partial_cross`);
        a backstop or a takeover gives the fund all that is left of the margin."""
        deficits = []
        for pos, trigger in isolated:
            acct = self.book.accounts[pos.account]
            self.cancel_orders(acct, lambda o: o.contract == pos.contract and o.leg == pos.leg)
            prof = self.profile[pos.contract]
            rate = self.liq_fee[pos.contract]
            backstop = prof.backstop > 0.0 and self.backstopped(
                pos.wallet_iso + pos.side * pos.qty * (trigger - pos.entry_price),
                float(self.mm_table[pos.contract].maintenance_margin(pos.qty * trigger)), prof.backstop)
            if prof.partial and not backstop:
                keep = self.partial_isolated(pos, trigger, self.price(cur, pos.contract, pos.side))
                if keep > 0.0:
                    self.reduce_isolated(acct, pos, trigger, keep, rate)
                    continue
            closes = self.close_positions(acct, [(pos, trigger)])
            equity = pos.wallet_iso + closes[0]["realized"]
            pos.wallet_iso = 0.0
            if backstop or prof.takeover:  # the fund keeps what is left
                fee = max(0.0, equity)
            else:
                fee = min(rate * closes[0]["notional"], max(0.0, equity))
            self.fund += fee
            remaining = equity - fee
            if remaining >= 0.0:
                acct.wallet += remaining
            self.emit_liquidations(acct, closes, fee)
            if remaining < 0.0:
                deficits.append({"account": acct, "closes": closes, "deficit": -remaining, "isolated": True})
        for acct, doomed in cross:
            if not doomed:  # a negative wallet and no cross position (e.g. a stop-loss gapped through)
                if acct.wallet < 0.0:  # what an isolated remainder of this point did not make good
                    deficits.append({"account": acct, "closes": [], "deficit": -acct.wallet, "isolated": False})
                continue
            self.cancel_orders(acct, lambda o: acct.settings[o.contract].margin_mode == MarginMode.CROSS)
            profiles = [self.profile[p.contract] for p, _ in doomed]
            threshold = max(prof.backstop for prof in profiles)
            backstop = False
            if threshold > 0.0:
                equity_at = acct.wallet
                mm_at = 0.0
                for pos, trigger in doomed:
                    equity_at += pos.side * pos.qty * (trigger - pos.entry_price)
                    mm_at += float(self.mm_table[pos.contract].maintenance_margin(pos.qty * trigger))
                backstop = self.backstopped(equity_at, mm_at, threshold)
            if not backstop and any(prof.partial for prof in profiles):
                if self.partial_cross(acct, doomed, cur):
                    continue
            closes = self.close_positions(acct, doomed)
            equity = acct.wallet + sum(c["realized"] for c in closes)
            if backstop or any(prof.takeover for prof in profiles):
                fee = max(0.0, equity)
            else:
                fee = min(self.fee_sum(closes), max(0.0, equity))
            self.fund += fee
            acct.wallet = equity - fee
            self.emit_liquidations(acct, closes, fee)
            if acct.wallet < 0.0:
                deficits.append({"account": acct, "closes": closes, "deficit": -acct.wallet, "isolated": False})
        return deficits

    @staticmethod
    def backstopped(equity: float, mm: float, fraction: float) -> bool:
        """Hyperliquid's backstop (VENUES.md section 5): equity at the trigger below ``fraction``
        of the maintenance margin there."""
        return equity < fraction * mm

    def fee_sum(self, closes: list[dict]) -> float:
        """The liquidation fee of a cross book's closes before the cap: ``rate x notional``
        summed, or (every close at one rate, as under a single profile) ``rate x total``."""
        rates = [self.liq_fee[c["position"].contract] for c in closes]
        if all(r == rates[0] for r in rates):
            return rates[0] * sum(c["notional"] for c in closes)
        total = 0.0
        for r, c in zip(rates, closes):
            total += r * c["notional"]
        return total

    def exec_price(self, pos: Position, trigger: float) -> float:
        """The trigger moved by the slippage and the impact of this round's flow on its side."""
        return trigger * (1.0 - pos.side * (self.slippage + self.slip[self.cidx[pos.contract]][view_of(pos.side)]))

    def keep_candidates(self, pos: Position, trigger: float, level: int) -> float:
        """The quantity a partial liquidation at ``level`` (1, 2, ...) keeps of a position:
        under "tiers" the most that fits the tier ``level`` below the one holding its notional at
        the trigger (never below the first tier), under "first_tier" the most that fits the
        first tier, under "slices" what one slice leaves of a position above the size; the
        whole quantity when the procedure does not reduce it (a position in a tier below the
        profile's ``partial_from_tier``, say)."""
        prof = self.profile[pos.contract]
        if prof.liquidation in ("tiers", "first_tier"):
            table = self.mm_table[pos.contract]
            b = int(table.tier_index(pos.qty * trigger))
            if b + 1 < prof.partial_from_tier:
                return pos.qty
            j = 0 if prof.liquidation == "first_tier" else max(0, b - level)
            keep = float(table.notional_cap[j]) / trigger
            return keep if keep < pos.qty else pos.qty
        if prof.liquidation == "slices" and pos.qty * trigger > prof.slice_above:
            return pos.qty * (1.0 - prof.slice_fraction)
        return pos.qty

    def levels(self, pos: Position, trigger: float) -> int:
        """How many partial steps the procedure offers for this position."""
        prof = self.profile[pos.contract]
        if prof.liquidation in ("tiers", "first_tier"):
            b = int(self.mm_table[pos.contract].tier_index(pos.qty * trigger))
            if b + 1 < prof.partial_from_tier:
                return 0
            return 1 if prof.liquidation == "first_tier" else b
        if prof.liquidation == "slices" and pos.qty * trigger > prof.slice_above:
            return 1
        return 0

    def partial_isolated(self, pos: Position, trigger: float, now: float) -> float:
        """The quantity a partial liquidation keeps of an isolated position, 0 when none helps:
        the first step (tier by tier downward, or one slice) after which the position, its
        wallet having taken the close's PnL and fee, is no longer beyond its liquidation price
        at the point's price ``now``."""
        x = self.exec_price(pos, trigger)
        rate = self.liq_fee[pos.contract]
        for level in range(1, self.levels(pos, trigger) + 1):
            keep = self.keep_candidates(pos, trigger, level)
            if not keep < pos.qty:
                continue
            q = pos.qty - keep
            wallet = pos.wallet_iso + pos.side * q * (x - pos.entry_price) - rate * (q * x)
            if not beyond(pos.side, now, self.liquidation_price(pos, keep, wallet)):
                return keep
        return 0.0

    def reduce_isolated(self, acct: Account, pos: Position, trigger: float, keep: float, rate: float) -> None:
        """Close ``pos.qty - keep`` of an isolated position at the execution price; its wallet
        takes the PnL and pays the fee (to the fund); the rest stays open."""
        x = self.exec_price(pos, trigger)
        q = pos.qty - keep
        realized = pos.side * q * (x - pos.entry_price)
        notional = q * x
        fee = rate * notional
        pos.wallet_iso = pos.wallet_iso + realized - fee
        pos.qty = keep
        self.fund += fee
        self.ledger["realized_pnl"] += realized
        self.bar_accounts.add(acct.account_id)
        self.bar["liquidations"] += 1
        self.bar["liquidated_notional"] += notional
        self.emit("liquidation", acct.account_id, pos.contract, pos.leg, pos.side, q, x, realized, fee,
                  wallet_iso=pos.wallet_iso)

    def partial_cross(self, acct: Account, doomed: list[tuple], cur: np.ndarray) -> bool:
        """A partial liquidation of a cross book: at level 1, 2, ... every position steps down
        (:meth:`keep_candidates`); the first level after which the book, its wallet having taken
        the closes' PnL and fees, is above maintenance margin at the point's prices is done.
        Returns whether one was (False: the whole book goes)."""
        n_levels = max(self.levels(pos, trigger) for pos, trigger in doomed)
        cross = [p for p, _ in doomed]
        now = [self.price(cur, p.contract, p.side) for p in cross]
        for level in range(1, n_levels + 1):
            keeps = [self.keep_candidates(pos, trigger, level) for pos, trigger in doomed]
            if all(not k < pos.qty for k, (pos, _) in zip(keeps, doomed)):
                continue
            closes = []
            for (pos, trigger), keep in zip(doomed, keeps):
                if keep < pos.qty:
                    x = self.exec_price(pos, trigger)
                    q = pos.qty - keep
                    closes.append({"position": pos, "price": x, "qty": q, "keep": keep,
                                   "realized": pos.side * q * (x - pos.entry_price), "notional": q * x})
            fee = self.fee_sum(closes)
            wallet = acct.wallet + sum(c["realized"] for c in closes) - fee
            held = [(pos.qty, pos) for pos in cross]
            old_wallet = acct.wallet
            for c in closes:
                c["position"].qty = c["keep"]
            acct.wallet = wallet
            safe = self.cross_excess(acct, cross, now) > 0.0
            if not safe:
                for qty, pos in held:
                    pos.qty = qty
                acct.wallet = old_wallet
                continue
            self.fund += fee
            total = sum(c["notional"] for c in closes)
            self.bar_accounts.add(acct.account_id)
            self.bar["liquidations"] += len(closes)
            self.bar["liquidated_notional"] += total
            for c in closes:
                pos = c["position"]
                self.ledger["realized_pnl"] += c["realized"]
                share = fee * c["notional"] / total if total > 0 else 0.0
                self.emit("liquidation", acct.account_id, pos.contract, pos.leg, pos.side, c["qty"], c["price"],
                          c["realized"], share, wallet_iso=0.0)
            return True
        return False

    def cancel_orders(self, acct: Account, in_scope) -> None:
        for order in sorted(acct.orders.values(), key=lambda o: o.order_id):
            if in_scope(order):
                del acct.orders[order.order_id]
                self.emit("cancel", acct.account_id, order.contract, order.leg, order.side, order.qty, order.price,
                          reason=f"order #{order.order_id}: liquidation")

    def close_positions(self, acct: Account, doomed: list[tuple]) -> list[dict]:
        """Take the positions off the book at their trigger prices moved by the slippage and
        the impact of this round's flow on their side."""
        closes = []
        for pos, trigger in doomed:
            px = trigger * (1.0 - pos.side * (self.slippage + self.slip[self.cidx[pos.contract]][view_of(pos.side)]))
            realized = pos.side * pos.qty * (px - pos.entry_price)  # settled by the caller
            del acct.positions[(pos.contract, pos.leg)]
            self.ledger["realized_pnl"] += realized
            closes.append({"position": pos, "price": px, "realized": realized, "notional": pos.qty * px})
        self.bar_accounts.add(acct.account_id)
        self.bar["liquidations"] += len(closes)
        self.bar["liquidated_notional"] += sum(c["notional"] for c in closes)
        return closes

    def emit_liquidations(self, acct: Account, closes: list[dict], fee: float) -> None:
        total = sum(c["notional"] for c in closes)
        for c in closes:
            pos = c["position"]
            share = fee * c["notional"] / total if total > 0 else 0.0
            self.emit("liquidation", acct.account_id, pos.contract, pos.leg, pos.side, pos.qty, c["price"],
                      c["realized"], share, wallet_iso=0.0)

    # ------------------------------------------------------ 7-8. bad debt, ADL
    def cover_bad_debt(self, deficits: list[dict], cur: np.ndarray) -> None:
        """The fund pays every deficit of the point in the same proportion (so the order of the
        accounts does not matter); the rest is recovered by ADL where it can be."""
        if not deficits:
            return
        total = sum(d["deficit"] for d in deficits)
        ratio = min(1.0, self.fund / total)
        ranking = None
        for d in deficits:
            acct, deficit = d["account"], d["deficit"]
            paid = ratio * deficit
            self.fund = max(0.0, self.fund - paid)
            self.bar["bad_debt"] += deficit
            self.bar["insurance_paid"] += paid
            self.emit("bad_debt", acct.account_id, amount=deficit, reason=f"insurance fund paid {paid:.10g}")
            shortfall = deficit - paid
            recovered = 0.0
            if shortfall > 0.0 and d["closes"]:
                if ranking is None:
                    ranking = self.adl_ranking(cur, exclude={x["account"].account_id for x in deficits})
                recovered = self.deleverage(d, shortfall, ranking, cur)
            socialised = deficit - paid - recovered
            self.ledger["socialised_loss"] += socialised
            self.bar["socialised_loss"] += socialised
            if not d["isolated"]:
                acct.wallet = 0.0

    def adl_ranking(self, cur: np.ndarray, exclude: set) -> dict:
        """Opposite-side candidates per (contract, side), first to be closed first: sorted by
        :meth:`adl_key` (smallest first), ties in the canonical order of accounts and positions."""
        ranking: dict = {}
        order = 0
        for a, acct in enumerate(self.accounts()):
            if acct.account_id in exclude:
                continue
            upnl_x, _, _ = self.cross_state(acct, cur)
            for pos in self.positions(acct):
                px = self.price(cur, pos.contract, pos.side)
                upnl = pos.side * pos.qty * (px - pos.entry_price)
                notional = pos.qty * px
                if self.is_isolated(pos):
                    margin, equity = pos.wallet_iso, pos.wallet_iso + upnl
                else:
                    margin = notional / self.settings(pos).leverage(pos.leg, pos.side)
                    equity = acct.wallet + upnl_x
                key = self.adl_key(a, pos, upnl, notional, margin, equity)
                ranking.setdefault((pos.contract, pos.side), []).append((key, order, pos))
                order += 1
        return {key: [p for *_, p in sorted(items, key=lambda x: (x[0], x[1]))] for key, items in ranking.items()}

    def adl_key(self, a: int, pos: Position, upnl: float, notional: float, margin: float, equity: float) -> float:
        """The sort key of a candidate under the run's ADL policy (smallest goes first):

        * binance: ``-score``, the score PnL% x effective leverage in profit and PnL% /
          effective leverage otherwise (PnL% = uPnL / margin, effective leverage =
          notional / equity); -inf, last, without equity or margin;
        * leverage: ``-notional / equity``; last without equity;
        * pnl: ``-uPnL``;
        * random: :func:`riskcore.adl.random_key` of (seed, step, point, ``a`` the account's
          index in sorted-id order, contract index, leg);
        * pro-rata: 0 for all (the canonical order; :meth:`deleverage` closes a fraction of each).
        """
        policy = self.policy[pos.contract]
        if policy == "binance":
            if equity <= 0.0 or margin <= 0.0:
                score = -math.inf
            else:
                pnl_pct, eff_lev = upnl / margin, notional / equity
                score = pnl_pct * eff_lev if pnl_pct > 0 else pnl_pct / eff_lev
            return -score
        if policy == "leverage":
            return -(notional / equity) if equity > 0.0 else math.inf
        if policy == "pnl":
            return -upnl
        if policy == "random":
            return adlp.random_key(self.adl_seed, self.t, self.k, a, self.cidx[pos.contract], pos.leg)
        return 0.0

    def deleverage(self, d: dict, shortfall: float, ranking: dict, cur: np.ndarray) -> float:
        """Section 6: recover ``shortfall`` from the ranked opposite positions.

        The deficit is attributed to the scope's positions in proportion to their losses at
        the liquidation fill, ``max(0, -side * Q * (fill - EP))`` (to notional when none
        lost): a position with share ``d_i`` has the bankruptcy price ``fill + side * d_i / Q``,
        and ``shortfall / deficit * d_i`` of it is to be recovered on its contract.  Each
        counterparty closes at that price, bounded so that it never realises a loss (an
        isolated one never returns less than nothing to its cross wallet; a cross one never
        gives up more than its cross book's excess over maintenance margin).  What the bound
        leaves moves down the ranking; at most ``Q`` units are matched.  Returns the money
        recovered; the caller socialises the rest.

        Pro rata (``adl_policy="pro-rata"``), each counterparty closes at most the same
        fraction ``f`` of its quantity (:meth:`pro_rata_fraction`), under the same bounds;
        what the cross bound keeps a counterparty from giving is not asked of the others."""
        deficit = d["deficit"]
        share = shortfall / deficit
        closes = d["closes"]
        acct = d["account"]
        weights = [max(0.0, -c["position"].side * c["position"].qty * (c["price"] - c["position"].entry_price))
                   for c in closes]
        total = sum(weights)
        if not total > 0.0:  # no position lost at its fill: by notional
            weights = [c["notional"] for c in closes]
            total = sum(weights)
        recovered = 0.0
        for c, weight in zip(closes, weights):
            if not weight > 0.0:
                continue
            pos = c["position"]
            side, x = pos.side, c["price"]
            part = deficit * (weight / total)
            bp = x + side * part / pos.qty
            left = share * part
            matched = gain = 0.0
            candidates = ranking.get((pos.contract, -side), [])
            fraction = 1.0
            if self.policy[pos.contract] == "pro-rata":
                fraction = self.pro_rata_fraction(candidates, side, x, bp, pos.qty, left)
            for other in candidates:
                if left <= 0.0 or matched >= pos.qty:
                    break
                if other.qty <= 0.0:
                    continue
                px = self.adl_price(other, bp)
                per_unit = side * (px - x)
                if not per_unit > 0.0:
                    continue
                q = min(fraction * other.qty, pos.qty - matched)
                if not self.is_isolated(other):  # never below maintenance margin: cost <= excess
                    cost = other.side * (self.price(cur, other.contract, other.side) - px)
                    if cost > 0.0:
                        oacct = self.book.accounts[other.account]
                        cross = [p for p in self.positions(oacct) if not self.is_isolated(p)]
                        excess = self.cross_excess(oacct, cross, [self.price(cur, p.contract, p.side)
                                                                  for p in cross])
                        q = min(q, max(0.0, excess) / cost)
                if not q > 0.0:
                    continue
                if q * per_unit >= left:
                    q = left / per_unit
                    money = left
                else:
                    money = q * per_unit
                self.close_counterparty(other, q, px)
                left -= money
                matched += q
                gain += money
            if matched > 0.0:
                recovered += gain
                self.ledger["realized_pnl"] += gain
                self.emit("adl", acct.account_id, pos.contract, pos.leg, side, matched, x + side * gain / matched,
                          gain, reason="bankrupt side")
        self.bar["adl_recovered"] += recovered
        if not d["isolated"]:  # an isolated deficit never touched the cross wallet
            acct.wallet += recovered
        return recovered

    def pro_rata_fraction(self, candidates: list, side: int, x: float, bp: float, qty: float,
                          left: float) -> float:
        """The share ``f`` of its quantity every eligible counterparty gives up: eligible are
        the candidates that can give something at their ADL price (``side * (price - x) > 0``,
        :meth:`adl_price`).  ``f = min(1, qty / U, left / M)``, with ``U`` their quantity and
        ``M`` what all of it would recover: at most the bankrupt quantity is matched and at
        most ``left`` recovered.  0 when nobody is eligible."""
        units = money = 0.0
        for other in candidates:
            if other.qty <= 0.0:
                continue
            per_unit = side * (self.adl_price(other, bp) - x)
            if per_unit > 0.0:
                units += other.qty
                money += other.qty * per_unit
        if not money > 0.0:
            return 0.0
        return min(1.0, qty / units, left / money)

    def adl_price(self, pos: Position, bp: float) -> float:
        """The price a counterparty closes at: the bankrupt position's ``bp``, unless that would
        make it realise a loss (worse than its entry) or, isolated, return less than nothing
        to its cross wallet (worse than its own bankruptcy price, when funding left its
        isolated wallet below zero); then that limit."""
        side = pos.side
        limit = pos.entry_price
        if self.is_isolated(pos) and pos.wallet_iso < 0.0:
            limit = pos.entry_price - side * pos.wallet_iso / pos.qty
        return bp if side * (bp - limit) >= 0.0 else limit

    def close_counterparty(self, pos: Position, qty: float, price: float) -> None:
        acct = self.book.accounts[pos.account]
        realized = pos.side * qty * (price - pos.entry_price)
        if self.is_isolated(pos):
            released = pos.wallet_iso * (qty / pos.qty)
            pos.wallet_iso -= released
            acct.wallet += released
        acct.wallet += realized
        pos.qty -= qty
        if pos.qty <= 1e-12 * qty:
            if self.is_isolated(pos):
                acct.wallet += pos.wallet_iso
                pos.wallet_iso = 0.0
            pos.qty = 0.0
            del acct.positions[(pos.contract, pos.leg)]
        self.ledger["realized_pnl"] += realized
        self.emit("adl", acct.account_id, pos.contract, pos.leg, pos.side, qty, price, realized,
                  wallet_iso=pos.wallet_iso, reason="counterparty")

    # ----------------------------------------------------------------- per step
    def record_step(self, close: np.ndarray) -> None:
        oi = float(sum(p.qty * self.price(close, p.contract, p.side)
                       for a in self.book.accounts.values() for p in a.positions.values()))
        self.steps.append({"step": self.t, "timestamp": self.timestamp, **self.bar,
                           "accounts_liquidated": len(self.bar_accounts), "insurance_fund": self.fund,
                           "open_interest": oi})
