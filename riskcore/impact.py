"""Market impact of liquidations and the endogenous mark price (liquidation cascades).

Without impact, a liquidation fills at its trigger price moved by the run's slippage and
never moves the price.  With an :class:`Impact` on a contract, two things change
(``docs/cascades.md`` has the model, its parameters and its limits):

* **execution**: the liquidations of one side at one point (one cascade round) sell, or
  buy, their total notional ``Q`` (at the trigger prices) into the book, and each of them
  fills ``I(Q) = min(MAX_IMPACT, k * sigma * sqrt(Q / daily_volume))`` worse than its
  trigger, on top of the slippage (the square-root law of market impact).  With a
  ``depth`` table instead (the order book's cumulative notional within each distance of
  the price), the flow walks the book: each fill takes the average distance of the
  notional walked (:func:`depth_walk`), and the book can thin out in stress
  (``thinning``: the depth is multiplied by ``max(MIN_DEPTH, 1 - thinning * |m - 1|)``,
  ``m`` the mark's multiplier below);
* **feedback** (``feedback=True``): the net flow ``N`` (notional of longs liquidated minus
  shorts liquidated) moves the mark by ``I(|N|)`` against the side sold (with a depth
  table: to the distance the walk reached): a fraction
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
MIN_DEPTH = 0.05  # a depth table never thins below 5% of its depth
MAX_LEVELS = 64  # levels of a depth table
DEFAULT_ROUNDS = 20


class ImpactError(RiskcoreError, ValueError):
    """An impact specification that cannot be used; the message names the contract and field."""


@dataclass(frozen=True)
class Impact:
    """The impact model of one contract.

    Either the square-root law:

    ``k``: its coefficient (of order 1 in empirical studies);
    ``sigma``: the contract's daily volatility, as a fraction (0.03 = 3%);
    ``daily_volume``: the notional traded in a day (USDT) that absorbs the flow;

    or a depth table (then without ``sigma`` and ``daily_volume``):

    ``depth``: ``[(distance, notional), ...]``: the notional (USDT) resting on one side of
    the book within each distance of the price (a fraction: 0.01 = 1%), both increasing;
    ``thinning``: how the depth thins out in stress: it is multiplied by
    ``max(MIN_DEPTH, 1 - thinning * |m - 1|)``, ``m`` the mark's multiplier (so ``10``:
    a mark pushed 5% off the path by liquidations leaves half the depth);

    and for both:

    ``feedback``: whether the net liquidation flow moves the mark (the cascade);
    ``permanent``: the share of a mark move that stays (0 to 1);
    ``half_life``: bars for the rest to decay by half (0: gone at the next bar).
    """
    sigma: float | None = None
    daily_volume: float | None = None
    k: float = 1.0
    feedback: bool = True
    permanent: float = 0.5
    half_life: float = 10.0
    depth: tuple | None = None
    thinning: float = 0.0

    def __post_init__(self):
        if self.depth is not None and not isinstance(self.depth, tuple):
            try:  # a list of [distance, notional] pairs, as TOML gives it: kept as tuples (hashable)
                object.__setattr__(self, "depth", tuple(tuple(level) for level in self.depth))
            except TypeError:
                pass  # check() names what is wrong
        check(self, "")

    @property
    def active(self) -> bool:
        """Whether the model moves any fill: a square-root law with ``k * sigma > 0``, or a depth table."""
        return self.depth is not None or self.coef > 0.0

    @property
    def coef(self) -> float:
        """``k * sigma`` of the square-root law (0 with a depth table)."""
        return 0.0 if self.depth is not None else float(self.k) * float(self.sigma)

    @property
    def decay(self) -> float:
        """What is left of the transient shift after one bar."""
        return 0.0 if self.half_life == 0 else float(0.5 ** (1.0 / float(self.half_life)))


FIELDS = {"sigma": "the contract's daily volatility as a fraction (e.g. 0.03)",
          "daily_volume": "the notional traded in a day, in USDT (e.g. 2e10)",
          "k": "the square-root law's coefficient (e.g. 1.0)",
          "feedback": "true to let liquidations move the mark (a cascade), false for fills only",
          "permanent": "the share of a mark move that stays, from 0 to 1",
          "half_life": "bars for the rest of a mark move to decay by half (0: one bar)",
          "depth": "the book's depth on one side: [[distance, notional], ...], both increasing "
                   "(e.g. [[0.001, 5e6], [0.01, 4e7]])",
          "thinning": "how fast the depth thins as liquidations push the mark off the path (0: never)"}


def check(spec: Impact, where: str) -> None:
    """Raise :class:`ImpactError` naming the field when a value is out of range."""
    at = f"impact{where}"

    def number(name, ok, what):
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
            raise ImpactError(f"{at}.{name} must be {what}, not {v!r}")

    if spec.depth is None:
        for name in ("sigma", "daily_volume"):
            if getattr(spec, name) is None:
                raise ImpactError(f"{at}.{name} is missing: give sigma and daily_volume (the square-root law), "
                                  "or a depth table")
        number("sigma", lambda v: 0 <= v <= 10, "a daily volatility from 0 to 10 (a fraction)")
        number("daily_volume", lambda v: v > 0, "a positive notional (USDT)")
    else:
        given = [name for name in ("sigma", "daily_volume") if getattr(spec, name) is not None]
        if given:
            raise ImpactError(f"{at}: give either a depth table or {' and '.join(given)} (the square-root law), "
                              "not both")
        _check_depth(spec.depth, at)
    number("k", lambda v: 0 <= v <= 100, "a coefficient from 0 to 100")
    number("permanent", lambda v: 0 <= v <= 1, "a share from 0 to 1")
    number("half_life", lambda v: v >= 0, "a number of bars >= 0")
    number("thinning", lambda v: 0 <= v <= 1e6, "a number >= 0 (0: the depth never thins)")
    if not isinstance(spec.feedback, (bool, np.bool_)):
        raise ImpactError(f"{at}.feedback must be true or false, not {spec.feedback!r}")


def _check_depth(depth, at: str) -> None:
    def ok(v) -> bool:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)

    if not isinstance(depth, tuple) or not depth:
        raise ImpactError(f"{at}.depth must be a list of [distance, notional] levels, at least one, "
                          f"not {depth!r}")
    if len(depth) > MAX_LEVELS:
        raise ImpactError(f"{at}.depth has {len(depth)} levels; at most {MAX_LEVELS}")
    last = (0.0, 0.0)
    for i, level in enumerate(depth):
        if not (isinstance(level, tuple) and len(level) == 2 and ok(level[0]) and ok(level[1])):
            raise ImpactError(f"{at}.depth[{i}] must be a pair [distance, notional] of numbers, not {list(level)!r}")
        distance, notional = float(level[0]), float(level[1])
        if not 0 < distance <= MAX_IMPACT:
            raise ImpactError(f"{at}.depth[{i}]: the distance {level[0]!r} must be a fraction above 0 and at most "
                              f"{MAX_IMPACT} (0.01 = 1% from the price)")
        if not notional > 0:
            raise ImpactError(f"{at}.depth[{i}]: the notional {level[1]!r} must be above 0 (USDT)")
        if i and not (distance > last[0] and notional > last[1]):
            raise ImpactError(f"{at}.depth[{i}] = {list(level)!r}: distances and notionals must both increase "
                              f"(the level before is {list(depth[i - 1])!r})")
        last = (distance, notional)


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
    if missing and "depth" not in spec:
        raise ImpactError(f"impact{where}: missing {missing} ({'; '.join(FIELDS[f] for f in missing)}), "
                          "or give a depth table")
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
    depth_n: np.ndarray  # i8, levels of the depth table (0: the square-root law)
    depth_dist: np.ndarray  # f8 [n, levels], the levels' distances
    depth_cum: np.ndarray  # f8 [n, levels], the notional within each distance
    thinning: np.ndarray  # f8


def arrays(specs: Mapping[str, Impact], contracts) -> ImpactArrays:
    n = len(contracts)
    levels = max([len(s.depth) for s in specs.values() if s.depth is not None], default=1)
    out = ImpactArrays(np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, np.int64),
                       np.zeros((n, levels)), np.zeros((n, levels)), np.zeros(n))
    for c, symbol in enumerate(contracts):
        spec = specs.get(symbol)
        if spec is None:
            continue
        out.coef[c] = spec.coef
        if spec.depth is None:
            out.volume[c] = float(spec.daily_volume)
        else:
            out.depth_n[c] = len(spec.depth)
            for i, (distance, notional) in enumerate(spec.depth):
                out.depth_dist[c, i] = float(distance)
                out.depth_cum[c, i] = float(notional)
            out.thinning[c] = float(spec.thinning)
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


def thinned(thinning: float, m: float) -> float:
    """The share of a depth table left when the mark's multiplier is ``m``."""
    return max(MIN_DEPTH, 1.0 - thinning * abs(m - 1.0))


def depth_walk(q: float, dist, cum, n: int, g: float) -> tuple[float, float]:
    """Walk notional ``q`` through a book with ``cum[i] * g`` resting within ``dist[i]`` of
    the price (levels ``0 .. n-1``; linear between the price and the first level and
    between levels, and beyond the last level along the last stretch's slope).  Returns
    ``(reached, average)``: the distance the walk reached (where the mark moves) and the
    average distance of the notional walked (what each fill takes), both at most
    :data:`MAX_IMPACT`."""
    if not q > 0.0:
        return 0.0, 0.0
    x0 = 0.0
    d0 = 0.0
    area = 0.0
    slope = 0.0
    for i in range(n):
        x1 = cum[i] * g
        d1 = dist[i]
        slope = (d1 - d0) / (x1 - x0)
        if q <= x1:
            d = d0 + slope * (q - x0)
            area += 0.5 * (d0 + d) * (q - x0)
            return min(MAX_IMPACT, d), min(MAX_IMPACT, area / q)
        area += 0.5 * (d0 + d1) * (x1 - x0)
        x0 = x1
        d0 = d1
    d = d0 + slope * (q - x0)
    area += 0.5 * (d0 + d) * (q - x0)
    return min(MAX_IMPACT, d), min(MAX_IMPACT, area / q)


def impact_of(q: float, a: ImpactArrays, c: int, m: float) -> tuple[float, float]:
    """``(reached, average)`` of a flow ``q`` on contract ``c`` when its mark's multiplier
    is ``m``: both the square-root law's ``fraction`` without a depth table."""
    n = int(a.depth_n[c])
    if n == 0:
        f = fraction(q, float(a.coef[c]), float(a.volume[c]))
        return f, f
    return depth_walk(q, a.depth_dist[c], a.depth_cum[c], n, thinned(float(a.thinning[c]), m))


def multiplier(perm: float, trans: float) -> float:
    """The mark's multiplier of the exogenous price from the permanent and transient shifts."""
    return max(MIN_MULTIPLIER, (1.0 + perm) + trans)
