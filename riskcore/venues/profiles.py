"""Venue profiles: the rule switches that make a contract liquidate like Bybit, OKX,
Hyperliquid or dYdX in both engines (issue 12; ``docs/venues.md``, "Profiles").

A :class:`Profile` is versioned data (its ``version``: the day VENUES.md's rules were read)
plus a small set of switches.  A contract names its profile by ``venue`` (``Book.add_contract``,
the ``contracts`` table's ``venue`` column, ``venue = "..."`` in a scenario's contract); the
default ``binance`` is riskcore's rule book and reproduces every earlier result bit for bit.

The switches (VENUES.md sections in brackets):

``mm_rule``
    ``"tiers"``: the contract's brackets as they are; ``"half_im"`` (Hyperliquid, V§5): each
    tier's rate is half the initial margin rate at its max leverage, ``0.5 / max_leverage``,
    with ``cum`` re-derived by the continuity rule.
``mm_fee_to_close``
    Maintenance margin includes the fee to close, ``taker_fee x notional`` (OKX V§3.2, Bybit's
    UTA V§2.1): every tier's rate is raised by the contract's taker fee (``cum`` unchanged: the
    continuity rule depends only on the rates' differences).
``liquidation``
    ``"whole"``: the position (or cross book) is closed in full; ``"tiers"`` (Bybit V§2.5):
    only what steps it down to a lower tier where it is safe again, one tier at a time;
    ``"first_tier"`` (OKX V§3.4, older wording): the excess over the first tier, if that makes
    it safe; ``"slices"`` (Hyperliquid V§5): a position above ``slice_above`` of notional gives up
    ``slice_fraction`` of its size.
``partial_from_tier``
    The lowest tier (from 1) in which a position is liquidated in part (OKX: 3; tiers 1-2 go
    whole); below it the whole position goes.
``backstop``
    A fraction of maintenance margin (Hyperliquid: 2/3, V§5): when the equity at the trigger is
    below it, the whole position goes, and the fund keeps all that is left of its margin.
``takeover``
    Full liquidations are taken over at the bankruptcy price (Bybit V§2.3, OKX V§3.4): the fund
    keeps all that is left of the margin instead of a fee.
``liquidation_fee``
    The fee rate on liquidated notional: ``None`` takes the run's ``liquidation_fee_rate``;
    ``"taker"`` the contract's taker fee (OKX's liquidation fee, V§3.2); or a number (dYdX's
    1.5% maximum penalty, V§6).
``adl_policy``
    ``None``: the run's ``adl_policy``; else one of :data:`riskcore.adl.POLICIES` for this
    contract's deleveraging (dYdX: ``"random"``, seeded by the run's ``adl_seed``, V§6).

What VENUES.md describes but the profiles do not switch (yet) is listed in ``docs/venues.md``:
ADL at the mark (OKX) or the previous oracle price (Hyperliquid), Bybit's funding from the
available balance first, Hyperliquid's 30 s cooldown between slices, dYdX's fillable price.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import adl as _adl
from ..brackets import Brackets
from ..errors import BracketError
from ._common import VenueError
from .hyperliquid import BACKSTOP_FRACTION, PARTIAL_LIQUIDATION_ABOVE, SLICE_FRACTION

DEFAULT_VENUE = "binance"
MM_RULES = ("tiers", "half_im")
LIQUIDATIONS = ("whole", "tiers", "slices", "first_tier")  # = the kernels' Procedure codes


@dataclass(frozen=True)
class Profile:
    """One venue's rule switches; see the module docstring.  Frozen and validated."""

    name: str
    version: str
    mm_rule: str = "tiers"
    mm_fee_to_close: bool = False
    liquidation: str = "whole"
    slice_above: float = math.inf
    slice_fraction: float = 0.0
    partial_from_tier: int = 2
    backstop: float = 0.0
    takeover: bool = False
    liquidation_fee: float | str | None = None
    adl_policy: str | None = None
    sources: str = ""

    def __post_init__(self):
        where = f"venue profile {self.name!r}"
        if self.mm_rule not in MM_RULES:
            raise VenueError(f"{where}: mm_rule must be one of {MM_RULES}, not {self.mm_rule!r}")
        if self.liquidation not in LIQUIDATIONS:
            raise VenueError(f"{where}: liquidation must be one of {LIQUIDATIONS}, not {self.liquidation!r}")
        if self.liquidation == "slices" and not (0.0 < self.slice_fraction < 1.0 and self.slice_above >= 0.0):
            raise VenueError(f"{where}: slices need 0 < slice_fraction < 1 and slice_above >= 0")
        if isinstance(self.partial_from_tier, bool) or not isinstance(self.partial_from_tier, int) \
                or self.partial_from_tier < 2:
            raise VenueError(f"{where}: partial_from_tier is a tier number of at least 2, not {self.partial_from_tier!r}")
        if not 0.0 <= self.backstop <= 1.0:
            raise VenueError(f"{where}: backstop is a fraction of maintenance margin in [0, 1], not {self.backstop!r}")
        fee = self.liquidation_fee
        if not (fee is None or fee == "taker" or (isinstance(fee, (int, float)) and not isinstance(fee, bool)
                                                  and 0.0 <= fee < 0.5)):
            raise VenueError(f"{where}: liquidation_fee must be None, 'taker' or a rate in [0, 0.5), not {fee!r}")
        if self.adl_policy is not None and self.adl_policy not in _adl.POLICIES:
            raise VenueError(f"{where}: adl_policy must be None or one of {_adl.POLICIES}, not {self.adl_policy!r}")

    @property
    def partial(self) -> bool:
        return self.liquidation != "whole"

    def fee_rate(self, run_rate: float, taker_fee: float) -> float:
        """The liquidation fee rate of a contract under this profile."""
        if self.liquidation_fee is None:
            return float(run_rate)
        if self.liquidation_fee == "taker":
            return float(taker_fee)
        return float(self.liquidation_fee)

    def maintenance_brackets(self, brackets: Brackets, taker_fee: float) -> Brackets:
        """The table the engines charge maintenance margin with: ``brackets`` itself under
        Binance's rules (the same object), else with the rates this profile's MM switches give."""
        if self.mm_rule == "tiers" and not self.mm_fee_to_close:
            return brackets
        rate = np.asarray(brackets.mmr, np.float64)
        cum = np.asarray(brackets.cum, np.float64)
        if self.mm_rule == "half_im":
            rate = 0.5 / np.asarray(brackets.max_leverage, np.float64)
            cum = None  # derived by the continuity rule
        if self.mm_fee_to_close:
            rate = rate + float(taker_fee)
        try:
            return Brackets(brackets.notional_floor, brackets.notional_cap, rate, brackets.max_leverage, cum,
                            symbol=brackets.symbol, effective_date=brackets.effective_date,
                            source=f"{brackets.source or 'table'}; MM under the {self.name} profile")
        except BracketError as exc:
            raise VenueError(f"contract {brackets.symbol!r} under venue profile {self.name!r}: {exc}") from None


VERSION = "2026-12-03"  # the day the rules were read from VENUES.md

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("binance", VERSION, sources="MARGIN_RULES.md (riskcore's rule book)"),
    Profile("bybit", VERSION, mm_fee_to_close=True, liquidation="tiers", takeover=True, liquidation_fee="taker",
            sources="VENUES.md 2.1 (UTA fee to close), 2.3 (close at BP), 2.5 (step down risk-limit tiers)"),
    Profile("okx", VERSION, mm_fee_to_close=True, liquidation="first_tier", partial_from_tier=3, takeover=True,
            liquidation_fee="taker",
            sources="VENUES.md 3.2 (MMR + taker fee), 3.4 (from tier 3, the excess over tier 1 closed; full at BP)"),
    Profile("hyperliquid", VERSION, mm_rule="half_im", liquidation="slices",
            slice_above=PARTIAL_LIQUIDATION_ABOVE, slice_fraction=SLICE_FRACTION, backstop=BACKSTOP_FRACTION,
            liquidation_fee=0.0,
            sources="VENUES.md 5 (MM = half IM at max leverage; 20% slices above 100k; backstop below 2/3 MM)"),
    Profile("dydx", VERSION, liquidation_fee=0.015, adl_policy="random",
            sources="VENUES.md 6 (penalty up to 1.5%; deleveraging of randomly chosen offsetting accounts)"),
)}
VENUE_NAMES = tuple(PROFILES)  # the shipped profiles (register() adds others to PROFILES)


def profile(venue, where: str = "") -> Profile:
    """The :class:`Profile` named ``venue`` (case and surrounding spaces ignored); a
    :class:`VenueError` naming ``where`` for an unknown one."""
    if isinstance(venue, Profile):
        return venue
    key = str(venue).strip().lower() if isinstance(venue, str) else None
    if key not in PROFILES:
        at = f"{where}: " if where else ""
        raise VenueError(f"{at}unknown venue {venue!r}; venue profiles: {list(PROFILES)}")
    return PROFILES[key]


def venue_name(venue, where: str = "") -> str:
    """The canonical name of a venue profile (validated)."""
    return profile(venue, where).name


def register(prof: Profile) -> Profile:
    """Add a profile of your own under a new name (a study's variant of a venue's rules, or a
    test's): contracts may then name it as ``venue``.  Refused for a name already taken."""
    if not isinstance(prof, Profile):
        raise VenueError(f"register takes a riskcore.venues.profiles.Profile, not {type(prof).__name__}")
    key = prof.name.strip().lower()
    if key != prof.name or not key:
        raise VenueError(f"a profile's name is lower case without surrounding spaces, not {prof.name!r}")
    if key in PROFILES:
        raise VenueError(f"venue profile {key!r} exists already")
    PROFILES[key] = prof
    return prof


def unregister(name: str) -> None:
    """Remove a profile added by :func:`register` (the shipped ones stay)."""
    if name in _SHIPPED:
        raise VenueError(f"venue profile {name!r} is shipped with riskcore and cannot be removed")
    PROFILES.pop(name, None)


_SHIPPED = frozenset(PROFILES)
