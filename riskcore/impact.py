"""Market impact of liquidations and the endogenous mark price (liquidation cascades).

Without impact, a liquidation fills at its trigger price moved by the run's slippage and
never moves the price.  With an :class:`Impact` on a contract, two things change
(``docs/cascades.md`` has the model, its parameters and its limits):

* **execution**: the liquidations of one side at one point (one cascade round) sell, or
  buy, their total notional ``Q`` (at the trigger prices) into the book, and each of them
  fills ``I(Q) = min(MAX_IMPACT, k * sigma * sqrt(Q / daily_volume))`` worse than its
  trigger, on top of the slippage (the square-root law of market impact);
* **feedback** (``feedback=True``): the net flow ``N`` (notional of longs liquidated minus
  shorts liquidated) moves the mark by ``I(|N|)`` against the side sold: a fraction
  ``permanent`` stays, the rest decays by half every ``half_life`` bars.  The given price
  path is the exogenous price; the mark the book sees is ``path * m`` with
  ``m = max(MIN_MULTIPLIER, 1 + P + T)`` (``P`` the permanent, ``T`` the transient shift).
  After a move the same point is looked at again (a *cascade round*) until a round
  liquidates nothing, or ``cascade_rounds`` rounds have run.

Both engines compute these numbers with the same operations in the same order, so they
agree to the last bit; :func:`fraction` is the formula they share (written out again in
the kernels, which import no Python logic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np

from .errors import RiskcoreError

MAX_IMPACT = 0.5  # at most half the price in one round: the law is not meant for more
MIN_MULTIPLIER = 0.01  # the mark never falls below 1% of the exogenous price
DEFAULT_ROUNDS = 20


class ImpactError(RiskcoreError, ValueError):
    """An impact specification that cannot be used; the message names the contract and field."""


@dataclass(frozen=True)
class Impact:
    """The impact model of one contract.

    ``k``: the square-root law's coefficient (of order 1 in empirical studies);
    ``sigma``: the contract's daily volatility, as a fraction (0.03 = 3%);
    ``daily_volume``: the notional traded in a day (USDT) that absorbs the flow;
    ``feedback``: whether the net liquidation flow moves the mark (the cascade);
    ``permanent``: the share of a mark move that stays (0 to 1);
    ``half_life``: bars for the rest to decay by half (0: gone at the next bar).
    """
    sigma: float
    daily_volume: float
    k: float = 1.0
    feedback: bool = True
    permanent: float = 0.5
    half_life: float = 10.0

    def __post_init__(self):
        check(self, "")

    @property
    def coef(self) -> float:
        return float(self.k) * float(self.sigma)

    @property
    def decay(self) -> float:
        """What is left of the transient shift after one bar."""
        return 0.0 if self.half_life == 0 else float(0.5 ** (1.0 / float(self.half_life)))


FIELDS = {"sigma": "the contract's daily volatility as a fraction (e.g. 0.03)",
          "daily_volume": "the notional traded in a day, in USDT (e.g. 2e10)",
          "k": "the square-root law's coefficient (e.g. 1.0)",
          "feedback": "true to let liquidations move the mark (a cascade), false for fills only",
          "permanent": "the share of a mark move that stays, from 0 to 1",
          "half_life": "bars for the rest of a mark move to decay by half (0: one bar)"}


def check(spec: Impact, where: str) -> None:
    """Raise :class:`ImpactError` naming the field when a value is out of range."""
    at = f"impact{where}"

    def number(name, ok, what):
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
            raise ImpactError(f"{at}.{name} must be {what}, not {v!r}")

    number("sigma", lambda v: 0 <= v <= 10, "a daily volatility from 0 to 10 (a fraction)")
    number("daily_volume", lambda v: v > 0, "a positive notional (USDT)")
    number("k", lambda v: 0 <= v <= 100, "a coefficient from 0 to 100")
    number("permanent", lambda v: 0 <= v <= 1, "a share from 0 to 1")
    number("half_life", lambda v: v >= 0, "a number of bars >= 0")
    if not isinstance(spec.feedback, (bool, np.bool_)):
        raise ImpactError(f"{at}.feedback must be true or false, not {spec.feedback!r}")


def parse(impact, contracts) -> dict[str, Impact]:
    """``simulate``'s ``impact=`` argument as ``{symbol: Impact}``: None, one :class:`Impact`
    (or a dict of its fields) for every contract, or a mapping symbol -> Impact / dict."""
    if impact is None:
        return {}
    if isinstance(impact, Impact):
        return {s: impact for s in contracts}
    if not isinstance(impact, Mapping):
        raise ImpactError(f"impact must be an Impact, a dict of its fields or a dict by contract, "
                          f"not {type(impact).__name__}")
    if any(key in FIELDS for key in impact) and not any(key in contracts for key in impact):
        # the fields of one model, for every contract
        return {s: model(impact, "") for s in contracts}
    out = {}
    for symbol, spec in impact.items():
        if symbol not in contracts:
            raise ImpactError(f"impact given for contract {symbol!r}, which has no price path "
                              f"(paths: {list(contracts)})")
        out[symbol] = model(spec, f".{symbol}")
    return out


def model(spec, where: str) -> Impact:
    if isinstance(spec, Impact):
        return spec
    if not isinstance(spec, Mapping):
        raise ImpactError(f"impact{where} must be a table of {sorted(FIELDS)}, not {type(spec).__name__}")
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ImpactError(f"impact{where}: unknown field(s) {unknown}; known: {sorted(FIELDS)}")
    missing = [f for f in ("sigma", "daily_volume") if f not in spec]
    if missing:
        raise ImpactError(f"impact{where}: missing {missing} ({'; '.join(FIELDS[f] for f in missing)})")
    try:
        return Impact(**spec)
    except ImpactError as exc:
        raise ImpactError(str(exc).replace("impact.", f"impact{where}.", 1)) from None


class ImpactArrays(NamedTuple):
    """Per contract, what the kernels need (all zeros: no impact)."""
    coef: np.ndarray  # f8, k * sigma
    volume: np.ndarray  # f8, daily volume (1 where no impact)
    permanent: np.ndarray  # f8, share of a mark move that stays (0 without feedback)
    transient: np.ndarray  # f8, 1 - permanent (0 without feedback)
    decay: np.ndarray  # f8, transient shift kept per bar


def arrays(specs: Mapping[str, Impact], contracts) -> ImpactArrays:
    n = len(contracts)
    out = ImpactArrays(np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n))
    for c, symbol in enumerate(contracts):
        spec = specs.get(symbol)
        if spec is None:
            continue
        out.coef[c] = spec.coef
        out.volume[c] = float(spec.daily_volume)
        if spec.feedback:
            out.permanent[c] = float(spec.permanent)
            out.transient[c] = 1.0 - float(spec.permanent)
        out.decay[c] = spec.decay
    return out


def fraction(q: float, coef: float, volume: float) -> float:
    """The square-root law: how much worse than the trigger a flow of notional ``q`` fills."""
    if not q > 0.0:
        return 0.0
    return min(MAX_IMPACT, coef * math.sqrt(q / volume))


def multiplier(perm: float, trans: float) -> float:
    """The mark's multiplier of the exogenous price from the permanent and transient shifts."""
    return max(MIN_MULTIPLIER, (1.0 + perm) + trans)
