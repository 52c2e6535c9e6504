"""Synthetic mark-price paths: seeded generators of OHLC bars for stress runs.

Every generator returns the simulators' path format (see :mod:`riskcore.inputs`):
``{contract: DataFrame(timestamp, open, high, low, close)}``, all contracts on one
timeline of bar open times (``datetime64[ns]``, UTC, naive), with ``open`` equal to
the previous bar's ``close``, ``high >= max(open, close)``, ``low <= min(open, close)``
and every price positive.

* :func:`gbm_paths` -- correlated geometric Brownian motion with optional Merton
  jumps, each bar built from several sub-steps so that its high and low are the
  extremes of a path actually travelled.
* :func:`inject_wick` -- put a wick (a spike that recovers by the close) or a crash
  (one that does not) into one bar of a path.
* :func:`bootstrap_paths` -- a moving-block bootstrap of real bars.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .checks import LIMIT, rng as _rng

__all__ = ["gbm_paths", "inject_wick", "bootstrap_paths"]

OHLC = ("open", "high", "low", "close")
YEAR = pd.Timedelta(days=365)  # crypto perpetuals trade around the clock
_CHUNK = 1 << 20  # random numbers drawn per chunk (bounds memory on long paths)


# ------------------------------------------------------------------------- helpers
def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _interval(interval) -> pd.Timedelta:
    try:
        step = pd.Timedelta(interval)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"interval {interval!r} is not a time span (e.g. '1min', '5min', '1h'): {exc}") from None
    if pd.isna(step) or step <= pd.Timedelta(0):
        raise ValueError(f"interval must be positive, not {interval!r}")
    return step


def _start(start) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"start {start!r} is not a time: {exc}") from None
    if pd.isna(ts):
        raise ValueError(f"start {start!r} is not a time")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _timeline(start, n_steps: int, interval) -> np.ndarray:
    step = _interval(interval)
    t0 = _start(start)
    if (n_steps - 1) * step.value > pd.Timestamp.max.value - t0.value:
        raise ValueError(f"n_steps = {n_steps:,} bars of {step} from {t0} end after {pd.Timestamp.max}, the last "
                         "time pandas can hold")
    return (t0.value + np.arange(n_steps, dtype=np.int64) * step.value).astype("datetime64[ns]")


def _n_steps(n_steps) -> int:
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, not {n_steps!r}")
    return int(n_steps)


def _per_contract(name: str, value, symbols: list, *, low: float | None = None, low_open: bool = False,
                  high: float | None = None) -> np.ndarray:
    """A scalar, a {contract: value} mapping or a sequence in contract order, as an array."""
    if _is_number(value):
        arr = np.full(len(symbols), float(value))
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - set(symbols))
        missing = [s for s in symbols if s not in value]
        if unknown or missing:
            raise ValueError(f"{name}: " + (f"unknown contract(s) {unknown}; " if unknown else "")
                             + (f"no value for contract(s) {missing}" if missing else ""))
        arr = np.array([value[s] for s in symbols], dtype=np.float64) \
            if all(_is_number(value[s]) for s in symbols) else None
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == len(symbols) \
            and all(_is_number(v) for v in value):
        arr = np.array(value, dtype=np.float64)
    else:
        arr = None
    if arr is None:
        raise ValueError(f"{name} must be a number, a {{contract: number}} mapping or a sequence of "
                         f"{len(symbols)} numbers, not {value!r}")
    for s, v in zip(symbols, arr):
        if not math.isfinite(v) or (low is not None and (v <= low if low_open else v < low)) \
                or (high is not None and v > high):
            bound = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
            bound += "" if high is None else f" and <= {high:g}"
            raise ValueError(f"{name} of {s} must be a finite number{bound}, not {float(v)!r}")
    return arr


def _start_prices(contracts) -> tuple[list, np.ndarray]:
    if not isinstance(contracts, Mapping) or not contracts:
        raise ValueError("contracts must be a non-empty {contract: start price} mapping")
    symbols = list(contracts)
    for s in symbols:
        if not isinstance(s, str) or not s:
            raise ValueError(f"contract symbol must be a non-empty string, not {s!r}")
    return symbols, _per_contract("start price", dict(contracts), symbols, low=0.0, low_open=True, high=LIMIT)


def _correlation_factor(correlation, n: int) -> np.ndarray:
    """A matrix ``L`` with ``L @ L.T`` the correlation matrix."""
    if _is_number(correlation):
        rho = float(correlation)
        low = -1.0 / (n - 1) if n > 1 else -1.0
        if not (math.isfinite(rho) and low - 1e-12 <= rho <= 1.0):
            raise ValueError(f"correlation {correlation!r} must lie in [{low:g}, 1] for {n} contracts")
        corr = np.full((n, n), rho)
        np.fill_diagonal(corr, 1.0)
    else:
        try:
            corr = np.array(correlation, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"correlation must be a number or an {n}x{n} matrix, not {correlation!r}") from None
        if corr.shape != (n, n):
            raise ValueError(f"correlation matrix has shape {corr.shape}, expected ({n}, {n}) (one row per contract)")
        if not np.all(np.isfinite(corr)) or np.any(np.abs(corr) > 1.0):
            raise ValueError("correlation matrix entries must be finite and within [-1, 1]")
        if not np.allclose(corr, corr.T, atol=1e-12):
            raise ValueError("correlation matrix must be symmetric")
        if not np.allclose(np.diag(corr), 1.0):
            raise ValueError("correlation matrix must have 1 on its diagonal")
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(corr)
        if vals.min() < -1e-9:
            raise ValueError(f"correlation matrix is not positive semi-definite (eigenvalue {vals.min():.3g})") from None
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _make_frames(symbols: list, stamps: np.ndarray, ohlc: np.ndarray) -> dict[str, pd.DataFrame]:
    """``ohlc[t, c, :]`` as frames, with high/low widened to hold open and close exactly."""
    o, h, l, c = (ohlc[..., i] for i in range(4))
    h = np.maximum(h, np.maximum(o, c))
    l = np.minimum(l, np.minimum(o, c))
    out = {}
    for j, s in enumerate(symbols):
        out[s] = pd.DataFrame({"timestamp": stamps, "open": o[:, j], "high": h[:, j], "low": l[:, j],
                               "close": c[:, j]})
    return out


# ----------------------------------------------------------------------------- GBM
def gbm_paths(contracts: Mapping[str, float], n_steps: int, *, interval="1min", start="2025-01-01",
              vol=0.6, drift=0.0, correlation=0.0, jump_rate=0.0, jump_mean=0.0, jump_std=0.0,
              common_jumps: bool = False, substeps: int = 16, seed) -> dict[str, pd.DataFrame]:
    """Correlated geometric Brownian motion paths with optional jumps, as OHLC bars.

    Each bar is ``substeps`` steps of the log price
    ``d log S = (drift - vol**2 / 2) dt + vol dW + J dN`` where ``W`` are Brownian motions
    correlated by ``correlation`` and ``N`` is a Poisson process of rate ``jump_rate``
    whose jumps ``J`` are normal in log price (Merton's model; the drift is not
    compensated for jumps).  A bar opens at the previous close; its high and low are the
    extremes over its sub-steps (so they understate the continuous path's range a little,
    less with more sub-steps).

    Parameters
    ----------
    contracts : mapping of str to float
        Contracts and their start prices (the first bar's open).
    n_steps : int
        Number of bars.
    interval : str or Timedelta, default "1min"
        Bar length; a year is 365 days of bars (perpetuals trade around the clock).
    start : str or Timestamp, default "2025-01-01"
        Open time of the first bar (read as UTC when it has no time zone).
    vol : float, mapping or sequence, default 0.6
        Annualised volatility of the diffusion, for all contracts or per contract.
    drift : float, mapping or sequence, default 0.0
        Annualised drift ``mu`` (the expected simple return rate of the diffusion).
    correlation : float or matrix, default 0.0
        Correlation of the contracts' Brownian motions: one number for every pair or a
        full symmetric positive semi-definite matrix in contract order.
    jump_rate : float, mapping or sequence, default 0.0
        Expected jumps per year (0: no jumps).
    jump_mean, jump_std : float, mapping or sequence, default 0.0
        Mean and standard deviation of one jump's log-price size (-0.1 is about -9.5%).
    common_jumps : bool, default False
        Jumps arrive at the same times for every contract (a market-wide shock; each
        contract draws its own size); otherwise each contract has its own arrivals.
    substeps : int, default 16
        Sub-steps per bar.
    seed : int, numpy SeedSequence or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same paths.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{contract: DataFrame(timestamp, open, high, low, close)}`` with ``n_steps`` rows.

    Examples
    --------
    >>> paths = gbm_paths({"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}, 1_440, vol=0.7,
    ...                   correlation=0.8, seed=1)
    >>> list(paths["BTCUSDT"].columns)
    ['timestamp', 'open', 'high', 'low', 'close']
    """
    symbols, s0 = _start_prices(contracts)
    n_steps = _n_steps(n_steps)
    if isinstance(substeps, (bool, np.bool_)) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be an int >= 1, not {substeps!r}")
    if not isinstance(common_jumps, (bool, np.bool_)):
        raise ValueError(f"common_jumps must be True or False, not {common_jumps!r}")
    n_c = len(symbols)
    sig = _per_contract("vol", vol, symbols, low=0.0)
    mu = _per_contract("drift", drift, symbols)
    lam = _per_contract("jump_rate", jump_rate, symbols, low=0.0)
    jm = _per_contract("jump_mean", jump_mean, symbols)
    js = _per_contract("jump_std", jump_std, symbols, low=0.0)
    if common_jumps and np.unique(lam).size > 1:
        raise ValueError("jump_rate must be the same for every contract when common_jumps is True")
    chol = _correlation_factor(correlation, n_c)
    dt = (_interval(interval) / YEAR) / substeps
    step_mean = (mu - 0.5 * sig ** 2) * dt
    step_sd = sig * math.sqrt(dt)
    jumps = bool(np.any(lam > 0))

    rng = _rng(seed)
    try:
        stamps = _timeline(start, n_steps, interval)
        ohlc = np.empty((n_steps, n_c, 4))
    except MemoryError:
        raise MemoryError(f"n_steps = {n_steps:,}: that many bars of {n_c} contract(s) do not fit in memory") \
            from None
    last = np.log(s0)
    per_chunk = max(1, _CHUNK // (substeps * n_c))
    for b0 in range(0, n_steps, per_chunk):
        m = min(per_chunk, n_steps - b0)
        z = rng.standard_normal((m * substeps, n_c)) @ chol.T
        incr = step_mean + step_sd * z
        if jumps:
            count = rng.poisson(lam[0] * dt, size=(m * substeps, 1)) if common_jumps \
                else rng.poisson(lam * dt, size=(m * substeps, n_c))
            count = np.broadcast_to(count, incr.shape)
            size = rng.standard_normal(incr.shape)
            incr = incr + count * jm + js * np.sqrt(count) * size
        path = (last + np.cumsum(incr, axis=0)).reshape(m, substeps, n_c)
        close = path[:, -1, :]
        opens = np.vstack([last[None, :], close[:-1]])
        ohlc[b0:b0 + m, :, 0] = opens
        ohlc[b0:b0 + m, :, 1] = np.maximum(opens, path.max(axis=1))
        ohlc[b0:b0 + m, :, 2] = np.minimum(opens, path.min(axis=1))
        ohlc[b0:b0 + m, :, 3] = close
        last = close[-1].copy()
    prices = np.exp(ohlc)
    prices[0, :, 0] = s0  # the first open is the start price exactly
    return _make_frames(symbols, stamps, prices)


# --------------------------------------------------------------------------- wicks
def _bar_index(frame: pd.DataFrame, at, contract: str) -> int:
    n = len(frame)
    if isinstance(at, (int, np.integer)) and not isinstance(at, (bool, np.bool_)):
        i = int(at) + (n if at < 0 else 0)
        if not 0 <= i < n:
            raise ValueError(f"at={at!r} is outside the path of {contract} ({n} bars)")
        return i
    try:
        when = _start(at)
    except ValueError:
        raise ValueError(f"at must be a bar index (int) or a time, not {at!r}") from None
    stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    i = int(np.searchsorted(stamps, np.datetime64(when.value, "ns"), side="right")) - 1
    if i < 0:
        raise ValueError(f"at={at!r} is before the first bar of {contract} ({pd.Timestamp(stamps[0])})")
    if i == n - 1 and n > 1 and when.value - stamps[-1].astype(np.int64) > np.diff(stamps[-2:]).astype(np.int64)[0]:
        raise ValueError(f"at={at!r} is after the last bar of {contract} ({pd.Timestamp(stamps[-1])})")
    return i


def inject_wick(paths: Mapping[str, pd.DataFrame], contract: str | Sequence[str], at, depth: float,
                recover: bool | float = True) -> dict[str, pd.DataFrame]:
    """Put a wick or a crash into one bar of a path.

    The bar's extreme is moved to ``open * (1 + depth)`` (unless it already reaches
    further): ``depth = -0.2`` is a wick 20% below the bar's open (its low), ``+0.2``
    one 20% above it (its high).  With ``recover=True`` the price comes back and the bar
    closes where it did, so the rest of the path is unchanged.  With ``recover=False``
    it is a crash: the bar closes at the extreme and every later bar is scaled by the
    same factor, so the path carries on from the new level.  A number between 0 and 1
    recovers that fraction of the way back to the old close.

    Parameters
    ----------
    paths : mapping of str to pandas.DataFrame
        ``{contract: DataFrame(timestamp, open, high, low, close)}``; not modified.
    contract : str or sequence of str
        The contract(s) to hit (several: the same move in each, at the same bar).
    at : int or time
        The bar: an index (negative counts from the end) or a time, taken as the bar
        whose interval holds it.
    depth : float
        Signed size of the move as a fraction of the bar's open, in ``(-1, inf)``, not 0.
    recover : bool or float, default True
        ``True`` (1.0): a wick that recovers by the close; ``False`` (0.0): a crash that
        stays; in between: a partial recovery.

    Returns
    -------
    dict of str to pandas.DataFrame
        New frames (copies); the contracts not named are copied unchanged.

    Examples
    --------
    >>> paths = gbm_paths({"BTCUSDT": 60_000.0}, 100, seed=1)
    >>> hit = inject_wick(paths, "BTCUSDT", at=50, depth=-0.2)
    >>> bool(hit["BTCUSDT"].low[50] <= 0.8 * hit["BTCUSDT"].open[50] * (1 + 1e-12))
    True
    """
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError("paths must be a non-empty {contract: DataFrame} mapping")
    names = [contract] if isinstance(contract, str) else list(contract)
    if not names:
        raise ValueError("contract must name at least one contract")
    for name in names:
        if name not in paths:
            raise ValueError(f"contract {name!r} is not in the paths ({list(paths)})")
    if not (_is_number(depth) and math.isfinite(float(depth)) and float(depth) > -1.0 and float(depth) != 0.0):
        raise ValueError(f"depth must be a signed fraction in (-1, inf) other than 0 (-0.2: 20% down), not {depth!r}")
    depth = float(depth)
    if isinstance(recover, (bool, np.bool_)):
        r = 1.0 if recover else 0.0
    elif _is_number(recover) and 0.0 <= float(recover) <= 1.0:
        r = float(recover)
    else:
        raise ValueError(f"recover must be True, False or a fraction in [0, 1], not {recover!r}")
    out = {k: v.copy() for k, v in paths.items()}
    for name in names:
        frame = out[name]
        missing = [c for c in ("timestamp",) + OHLC if c not in frame.columns]
        if missing:
            raise ValueError(f"path of {name}: missing column(s) {missing}")
        i = _bar_index(frame, at, name)
        values = frame[list(OHLC)].to_numpy(dtype=np.float64, copy=True)
        o, h, l, c = values[i]
        extreme = o * (1.0 + depth)
        new_close = extreme + r * (c - extreme)
        if r < 1.0 and new_close != c:
            continuous = i + 1 < len(values) and values[i + 1, 0] == c
            values[i + 1:] *= new_close / c
            if continuous:  # keep the next open equal to this close, exactly
                values[i + 1, 0] = new_close
                values[i + 1, 1] = max(values[i + 1, 1], new_close)
                values[i + 1, 2] = min(values[i + 1, 2], new_close)
            c = new_close
        if depth < 0:
            l = min(l, extreme, o, c)
            h = max(h, o, c)
        else:
            h = max(h, extreme, o, c)
            l = min(l, o, c)
        values[i] = (o, h, l, c)
        for j, col in enumerate(OHLC):
            frame[col] = values[:, j]
    return out


# ----------------------------------------------------------------------- bootstrap
def _real_bars(frame: pd.DataFrame, where: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(timestamps or None, [n, 4] OHLC) of a frame of real bars, sorted by time."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{where}: expected a DataFrame of bars, got {type(frame).__name__}")
    missing = [c for c in OHLC if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}")
    stamps = None
    for col in ("timestamp", "open_time"):
        if col in frame.columns:
            raw = frame[col]
            stamps = pd.to_datetime(raw, unit="ms", utc=True) if raw.dtype.kind in "iuf" \
                else pd.to_datetime(raw, utc=True)
            break
    else:
        if isinstance(frame.index, pd.DatetimeIndex):
            stamps = pd.Series(frame.index).dt.tz_localize("UTC") if frame.index.tz is None \
                else pd.Series(frame.index)
    values = frame[list(OHLC)].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ValueError(f"{where}: row {row}, column {OHLC[col]!r}: {values[row, col]!r} is not a positive price")
    if stamps is None:
        return None, values
    if stamps.isna().any():
        raise ValueError(f"{where}: row {int(stamps.isna().to_numpy().argmax())}: missing timestamp")
    ns = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    order = np.argsort(ns, kind="stable")
    ns, values = ns[order], values[order]
    if np.any(np.diff(ns.astype(np.int64)) == 0):
        row = int(np.argmax(np.diff(ns.astype(np.int64)) == 0)) + 1
        raise ValueError(f"{where}: duplicate timestamp {pd.Timestamp(ns[row])}")
    return ns, values


def bootstrap_paths(real: pd.DataFrame | Mapping[str, pd.DataFrame], n_steps: int, *, block: int = 60, seed,
                    start_price: float | Mapping[str, float] | None = None, contract: str = "SYNTH",
                    interval=None, start="2025-01-01") -> dict[str, pd.DataFrame]:
    """A moving-block bootstrap of real bars, reassembled into consistent OHLC paths.

    Each real bar is reduced to its open-to-close log return ``r = log(close/open)`` and
    its excursions ``u = log(high/open) >= max(r, 0)`` and ``d = log(low/open) <= min(r, 0)``
    (gaps between a close and the next open are dropped).  Blocks of ``block``
    consecutive bars are drawn uniformly from the real series (with replacement) and
    concatenated to ``n_steps`` bars; the path then opens at ``start_price`` and each bar
    opens at the previous close: ``close = open * exp(r)``, ``high = open * exp(u)``,
    ``low = open * exp(d)``.  Within a block the real sequence of moves (volatility
    clustering, a crash and its rebound) is kept.

    Several contracts (a mapping of frames) are bootstrapped together: their bars are
    aligned on common timestamps and every block is taken from the same real times for
    all of them, which keeps their co-movement.

    Parameters
    ----------
    real : pandas.DataFrame or mapping of str to DataFrame
        Real bars with columns ``open, high, low, close`` and a time column
        ``timestamp`` or ``open_time`` (integers are epoch milliseconds) or a
        DatetimeIndex.  A mapping needs times (to align the contracts).
    n_steps : int
        Number of bars to generate.
    block : int, default 60
        Block length in bars (at most the number of real bars).
    seed : int, numpy SeedSequence or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same paths.
    start_price : float or mapping, optional
        Open of the first bar; default each contract's first real open.
    contract : str, default "SYNTH"
        Name of the path when ``real`` is a single frame.
    interval : str or Timedelta, optional
        Bar length of the output; default the median spacing of the real bars (1 minute
        when they have no times).
    start : str or Timestamp, default "2025-01-01"
        Open time of the first generated bar.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{contract: DataFrame(timestamp, open, high, low, close)}`` with ``n_steps`` rows.
    """
    n_steps = _n_steps(n_steps)
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block must be an int >= 1, not {block!r}")
    if isinstance(real, pd.DataFrame):
        if not isinstance(contract, str) or not contract:
            raise ValueError(f"contract must be a non-empty string, not {contract!r}")
        stamps, values = _real_bars(real, f"real bars of {contract}")
        symbols, blocks = [contract], [values]
    elif isinstance(real, Mapping) and real:
        symbols = list(real)
        parsed = [_real_bars(real[s], f"real bars of {s}") for s in symbols]
        if any(ts is None for ts, _ in parsed):
            raise ValueError("bootstrapping several contracts needs a time column in every frame (to align them)")
        common = parsed[0][0]
        for ts, _ in parsed[1:]:
            common = np.intersect1d(common, ts)
        if common.size == 0:
            raise ValueError("the real frames share no timestamp")
        blocks = [vals[np.isin(ts, common)] for ts, vals in parsed]
        stamps = common
    else:
        raise ValueError("real must be a DataFrame of bars or a non-empty {contract: DataFrame} mapping")
    n_real = blocks[0].shape[0]
    if n_real < 2 and block > 1:
        raise ValueError(f"real has {n_real} bar(s): too few to bootstrap")
    if block > n_real:
        raise ValueError(f"block ({block}) is longer than the real series ({n_real} bars)")
    if interval is None:
        interval = pd.Timedelta(int(np.median(np.diff(stamps.astype(np.int64)))), "ns") \
            if stamps is not None and stamps.size > 1 else pd.Timedelta("1min")
    out_stamps = _timeline(start, n_steps, interval)
    if start_price is None:
        s0 = np.array([b[0, 0] for b in blocks])
    else:
        s0 = _per_contract("start_price", start_price, symbols, low=0.0, low_open=True)

    rng = _rng(seed)
    n_blocks = -(-n_steps // block)
    first = rng.integers(0, n_real - block + 1, size=n_blocks)
    idx = (first[:, None] + np.arange(block)[None, :]).ravel()[:n_steps]

    ohlc = np.empty((n_steps, len(symbols), 4))
    for j, vals in enumerate(blocks):
        o, h, l, c = (vals[:, i] for i in range(4))
        r = np.log(c / o)
        u = np.maximum(np.log(h / o), np.maximum(r, 0.0))
        d = np.minimum(np.log(l / o), np.minimum(r, 0.0))
        r, u, d = r[idx], u[idx], d[idx]
        log_close = math.log(s0[j]) + np.cumsum(r)
        log_open = np.concatenate([[math.log(s0[j])], log_close[:-1]])
        ohlc[:, j, 0] = np.exp(log_open)
        ohlc[:, j, 1] = np.exp(log_open + u)
        ohlc[:, j, 2] = np.exp(log_open + d)
        ohlc[:, j, 3] = np.exp(log_close)
        ohlc[0, j, 0] = s0[j]
    return _make_frames(symbols, out_stamps, ohlc)
