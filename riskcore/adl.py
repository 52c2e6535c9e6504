"""Auto-deleveraging policies: who gives up a position when the insurance fund runs short.

MARGIN_RULES.md section 6 ranks the opposite-side positions of a bankrupt position's
contract as Binance does and closes them in that order at the bankruptcy price.  This
module names the alternatives a study may compare (``docs/simulation.md``, "ADL
policies"); both engines apply them with the same rules and the same arithmetic:

* ``"binance"`` (the default): PnL% x effective leverage in profit, PnL% / effective
  leverage at a loss, highest first (positions with no equity last);
* ``"leverage"``: effective leverage (notional / equity), highest first (no equity last);
* ``"pnl"``: unrealised profit in money, highest first;
* ``"random"``: a seeded random order: the key of a position is :func:`adl_hash` of
  ``(seed, step, point, account index in sorted-id order, contract index, leg)``;
* ``"pro-rata"``: no order: every eligible position gives up the same fraction of its
  quantity (:func:`pro_rata_fraction` in each engine).

Ties keep the canonical order (accounts by id, positions by contract and leg).  The
kernels see the policy as its index in :data:`POLICIES` (``kernels.enums.AdlPolicy``).
"""
from __future__ import annotations

from .inputs import InputError

POLICIES = ("binance", "leverage", "pnl", "random", "pro-rata")
DEFAULT_POLICY = "binance"
MAX_SEED = 2 ** 63 - 1

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment and multipliers (Steele, Lea, Flood 2014)
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def policy_code(policy) -> int:
    """The kernels' code of a policy name; an :class:`InputError` naming the allowed ones."""
    if isinstance(policy, str) and policy in POLICIES:
        return POLICIES.index(policy)
    raise InputError(f"adl_policy must be one of {', '.join(repr(p) for p in POLICIES)}, not {policy!r}")


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"adl_seed must be a whole number from 0 to 2**63 - 1, not {seed!r}")
    return seed


def splitmix64(x: int) -> int:
    """One step of splitmix64 on a 64-bit unsigned integer."""
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def adl_hash(seed: int, step: int, point: int, account: int, contract: int, leg: int) -> int:
    """A 64-bit hash of a candidate position at a point: each field in turn is mixed in
    with splitmix64.  ``account`` is the account's index in sorted-id order, ``contract``
    the contract's index in the run's paths, ``leg`` 0 both / 1 long / 2 short.  The
    kernels' twin is ``kernels.adl_nb.adl_hash_nb`` (bit-identical)."""
    h = splitmix64(seed)
    for value in (step, point, account, contract, leg):
        h = splitmix64(h ^ value)
    return h


def random_key(seed: int, step: int, point: int, account: int, contract: int, leg: int) -> float:
    """The random policy's sort key (smallest first): the hash's top 53 bits, which a
    float holds exactly."""
    return float(adl_hash(seed, step, point, account, contract, leg) >> 11)
