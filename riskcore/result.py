"""What a simulation returns: events, per-step series, the final book and a money ledger."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

EVENT_KINDS = ("funding", "fill", "order", "cancel", "action", "refused", "tp", "sl", "topup",
               "liquidation", "bad_debt", "adl")

EVENT_COLUMNS = ["step", "point", "timestamp", "account", "contract", "leg", "kind", "side", "qty", "price",
                 "amount", "fee", "wallet", "wallet_iso", "reason"]

STEP_COLUMNS = ["step", "timestamp", "insurance_fund", "accounts_liquidated", "liquidations",
                "liquidated_notional", "bad_debt", "insurance_paid", "adl_recovered", "socialised_loss",
                "topups", "topup_amount", "funding_paid", "open_interest"]
STEP_COUNTS = ("step", "accounts_liquidated", "liquidations", "topups")


def steps_frame(rows: list[dict]) -> pd.DataFrame:
    """Per-step rows as a frame with fixed dtypes (int64 counts, float64 money)."""
    frame = pd.DataFrame(rows, columns=STEP_COLUMNS)
    types = {c: ("int64" if c in STEP_COUNTS else "float64") for c in STEP_COLUMNS if c != "timestamp"}
    return frame.astype(types)


@dataclass
class Result:
    """The outcome of :func:`riskcore.simulate`.

    ``events``: one row per thing that happened, in the order it happened (columns
    ``EVENT_COLUMNS``; ``kind`` is one of ``EVENT_KINDS``).  ``amount`` is the money the
    event moved for the account: realized PnL of a fill, TP/SL or liquidation close, the
    top-up, the funding received (negative when paid), the deficit of a bad debt, the PnL
    of an ADL close; ``fee`` is the trading or liquidation fee.  ``wallet``/``wallet_iso`` are the cross and isolated wallets
    after the event.

    ``steps``: one row per bar (columns ``STEP_COLUMNS``), measured at the bar's end.

    ``book``: the book after the last bar.  ``ledger``: totals that account for every
    unit of money (see :meth:`money_check`).
    """
    events: pd.DataFrame
    steps: pd.DataFrame
    book: object
    params: dict = field(default_factory=dict)
    ledger: dict = field(default_factory=dict)

    def money_check(self) -> float:
        """Money in the book at the end minus what the ledger says it should be (0 up to rounding).

        wallets + isolated wallets + insurance fund + trading fees
        = the same at the start + realized PnL of all fills + funding received + deposits
          - withdrawals + bad debt socialised (a deficit nobody covered)."""
        led = self.ledger
        expected = (led["money_start"] + led["realized_pnl"] + led["funding"] + led["deposits"]
                    + led["socialised_loss"])
        return led["money_end"] - expected

    def events_of(self, kind: str) -> pd.DataFrame:
        return self.events[self.events["kind"] == kind].reset_index(drop=True)

    def __repr__(self) -> str:
        counts = self.events["kind"].value_counts().to_dict() if len(self.events) else {}
        return f"<Result: {len(self.steps)} steps, {len(self.events)} events {counts}>"
