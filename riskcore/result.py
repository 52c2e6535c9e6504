"""What a simulation returns: events, per-step series, the final state and a money ledger."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EVENT_KINDS = ("funding", "fill", "order", "cancel", "action", "refused", "tp", "sl", "topup",
               "liquidation", "bad_debt", "adl")

EVENT_COLUMNS = ["step", "point", "round", "timestamp", "account", "contract", "leg", "kind", "side", "qty", "price",
                 "amount", "fee", "wallet", "wallet_iso", "reason", "reason_code"]

# Short, stable codes for why an event happened (the ``reason_code`` column); ``reason``
# holds the same fact as a sentence.  Tape events use the action's name ("deposit", ...),
# "order" for a placed or cancelled order, and "<action>_refused" for a refused action.
REASON_CODES = ("", "funding_rate", "fill_refused", "tp_refused", "sl_refused", "liquidation_cancel",
                "fund_paid", "adl_bankrupt", "adl_counterparty")

STEP_COLUMNS = ["step", "timestamp", "insurance_fund", "accounts_liquidated", "liquidations",
                "liquidated_notional", "bad_debt", "insurance_paid", "adl_recovered", "socialised_loss",
                "topups", "topup_amount", "funding_paid", "open_interest"]
STEP_COUNTS = ("step", "accounts_liquidated", "liquidations", "topups")
LEG_WORDS = ("both", "long", "short")


def steps_frame(rows: list[dict]) -> pd.DataFrame:
    """Per-step rows as a frame with fixed dtypes (int64 counts, float64 money)."""
    frame = pd.DataFrame(rows, columns=STEP_COLUMNS)
    types = {c: ("int64" if c in STEP_COUNTS else "float64") for c in STEP_COLUMNS if c != "timestamp"}
    return frame.astype(types)


def steps_from_array(values: np.ndarray, timestamps: np.ndarray) -> pd.DataFrame:
    """Per-step frame from the kernels' ``[n_steps, 12]`` series (``STEP_COLUMNS[2:]``)."""
    n = values.shape[0]
    data = {"step": np.arange(n, dtype=np.int64), "timestamp": pd.to_datetime(np.asarray(timestamps)[:n])}
    for j, col in enumerate(STEP_COLUMNS[2:]):
        data[col] = values[:, j].astype(np.int64 if col in STEP_COUNTS else np.float64)
    return pd.DataFrame(data, columns=STEP_COLUMNS)


def reason_code_of(kind: str, reason: str) -> str:
    """The ``reason_code`` of an event recorded as text (the reference engine and the tape)."""
    if kind == "funding":
        return "funding_rate"
    if kind == "refused":
        if reason.startswith("fill of order"):
            return "fill_refused"
        if reason.startswith(("tp:", "sl:")):
            return reason[:2] + "_refused"
        return reason.split(":", 1)[0] + "_refused"
    if kind == "cancel":
        return "liquidation_cancel" if reason.endswith(": liquidation") else "order"
    if kind == "bad_debt":
        return "fund_paid" if reason else ""
    if kind == "adl":
        return "adl_bankrupt" if reason == "bankrupt side" else "adl_counterparty"
    if kind == "action":
        return reason
    if kind == "order":
        return "order"
    return ""


def categorical(values, categories) -> pd.Categorical:
    return pd.Categorical(values, categories=list(categories))


def events_from_records(rows: list[dict]) -> pd.DataFrame:
    """The columnar event frame of events recorded as dicts (the reference engine's)."""
    frame = pd.DataFrame(rows, columns=[c for c in EVENT_COLUMNS if c != "reason_code"])
    frame["reason_code"] = [reason_code_of(k, r) for k, r in zip(frame["kind"], frame["reason"])]
    return normalise_events(frame)


def normalise_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed dtypes: ints for step/point/side, floats for money, categoricals for words."""
    out = pd.DataFrame({
        "step": frame["step"].to_numpy(np.int64), "point": frame["point"].to_numpy(np.int64),
        "round": frame["round"].fillna(0).to_numpy(np.int64) if "round" in frame else np.zeros(len(frame), np.int64),
        "timestamp": pd.to_datetime(frame["timestamp"]),
        "account": _account_column(frame["account"]),
        "contract": frame["contract"].astype(object).where(frame["contract"].notna(), None),
        "leg": categorical(frame["leg"].astype(object).where(frame["leg"].notna(), None), LEG_WORDS),
        "kind": categorical(frame["kind"], EVENT_KINDS),
        "side": frame["side"].to_numpy(np.int64),
        **{c: frame[c].to_numpy(np.float64) for c in ("qty", "price", "amount", "fee", "wallet", "wallet_iso")},
        "reason": frame["reason"].astype(object).astype("category"),
        "reason_code": frame["reason_code"].astype(object).astype("category"),
    }, columns=EVENT_COLUMNS)
    out["contract"] = out["contract"].astype("category")
    return out


def _account_column(values: pd.Series) -> np.ndarray:
    raw = values.to_numpy(object)
    if raw.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
        return raw.astype(np.int64)
    return raw


@dataclass
class Result:
    """The outcome of :func:`riskcore.simulate`.

    ``events``: one row per thing that happened, in the order it happened (columns
    ``EVENT_COLUMNS``): ``kind`` is a categorical of ``EVENT_KINDS``, ``reason_code`` a
    short categorical code (:data:`REASON_CODES`, the tape's action names), ``reason``
    the same fact as a sentence.  ``amount`` is the money the event moved for the
    account: realized PnL of a fill, TP/SL or liquidation close, the top-up, the funding
    received (negative when paid), the deficit of a bad debt, the PnL of an ADL close;
    ``fee`` is the trading or liquidation fee.  ``wallet``/``wallet_iso`` are the cross
    and isolated wallets after the event.

    ``steps``: one row per bar (columns ``STEP_COLUMNS``), measured at the bar's end.

    ``final``: the book after the last bar as a :class:`~riskcore.table.BookTable`
    (marks at the last close).  ``book``: the same as a :class:`~riskcore.book.Book`,
    built from ``final`` the first time it is asked for (slow for millions of accounts).
    ``ledger``: totals that account for every unit of money (see :meth:`money_check`).
    ``timings``: seconds spent inside the stepping kernels (``"kernel"``; numba engine).
    """
    events: pd.DataFrame
    steps: pd.DataFrame
    final: object
    params: dict = field(default_factory=dict)
    ledger: dict = field(default_factory=dict)
    _book: object = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)  # seconds: "kernel" = inside the stepping kernels

    @property
    def book(self):
        """The final state as a :class:`~riskcore.book.Book` (built once, on first use)."""
        if self._book is None:
            from .book import Book

            self._book = Book.from_table(self.final)
        return self._book

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
        counts = self.events["kind"].value_counts()
        counts = {k: int(v) for k, v in counts.items() if v} if len(self.events) else {}
        return f"<Result: {len(self.steps)} steps, {len(self.events)} events {counts}>"
