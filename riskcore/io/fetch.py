"""Download Binance USDⓈ-M futures files from the public data archive (data.binance.vision).

Files are fetched one per day (``klines``, ``markPriceKlines``, ``indexPriceKlines``,
``premiumIndexKlines``) or one per month (``fundingRate``)::

    {base}/data/futures/um/daily/{kind}/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM-DD}.zip
    {base}/data/futures/um/monthly/fundingRate/{SYMBOL}/{SYMBOL}-fundingRate-{YYYY-MM}.zip

Each zip has a sibling ``<zip>.CHECKSUM`` holding ``"<sha256>  <file name>"``.  A download
is kept only when its SHA-256 matches; it is written to the cache atomically (a temporary
file in the cache folder, then :func:`os.replace`) together with its checksum file, under the
same relative path as on the server.  Files already in the cache whose hash still matches
their stored checksum are not downloaded again.

The cache folder is ``$RISKCORE_CACHE`` when set, else ``~/.cache/riskcore``.

Only the standard library is used (:mod:`urllib.request`, :mod:`hashlib`).  The returned zips
can be read with :func:`riskcore.io.load_klines` and :func:`riskcore.io.load_funding`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import exit_codes
from ..errors import RiskcoreError

__all__ = ["BASE_URL", "KINDS", "INTERVALS", "FetchError", "NetworkError", "ArchiveNotFound", "ChecksumMismatch",
           "ArchiveFile", "archive_files", "default_cache_dir", "fetch", "add_fetch_arguments", "cli_fetch", "main_fetch"]

BASE_URL = "https://data.binance.vision"
DAILY_KINDS = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
MONTHLY_KINDS = ("fundingRate",)
KINDS = DAILY_KINDS + MONTHLY_KINDS
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]+(_[0-9]+)?$")
_CHUNK = 1 << 16
_USER_AGENT = "riskcore-fetch (+https://data.binance.vision)"


class FetchError(RiskcoreError, ValueError):
    """A download could not be done or its request is malformed; the message says which and why."""


class NetworkError(FetchError):
    """The archive could not be reached: no network, a time-out, a refused connection or a
    server error that outlasted the retries.  Nothing is wrong with the request: try again later."""


class ArchiveNotFound(FetchError):
    """The archive has no file for this symbol and date (HTTP 404).

    Attributes
    ----------
    url : str
        The address asked for.
    date : str
        The day (``YYYY-MM-DD``) or month (``YYYY-MM``) of the file.
    """

    def __init__(self, message: str, url: str, date: str):
        super().__init__(message)
        self.url = url
        self.date = date


class ChecksumMismatch(FetchError):
    """A downloaded file's SHA-256 differs from the archive's ``.CHECKSUM``; the file was deleted."""


@dataclass(frozen=True)
class ArchiveFile:
    """One file of the archive.

    Attributes
    ----------
    date : str
        ``YYYY-MM-DD`` for daily files, ``YYYY-MM`` for monthly ones.
    url : str
        The zip's address (its checksum is ``url + ".CHECKSUM"``).
    relpath : str
        Its path below the archive's root, also its path below the cache folder.
    """
    date: str
    url: str
    relpath: str

    @property
    def name(self) -> str:
        """The zip's file name."""
        return self.relpath.rsplit("/", 1)[-1]


def default_cache_dir() -> Path:
    """The cache folder: ``$RISKCORE_CACHE`` when set, else ``~/.cache/riskcore``.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("RISKCORE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "riskcore"


def _date(value, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas.Timestamp
        return value.date()
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise FetchError(f"{what} {value!r} is not a date (use YYYY-MM-DD)") from None


def archive_files(symbol: str, start, end, kind: str = "klines", interval: str = "1m",
                  base_url: str = BASE_URL) -> list[ArchiveFile]:
    """The archive files covering ``start`` to ``end``, both included.

    Parameters
    ----------
    symbol : str
        A USDⓈ-M futures symbol, e.g. ``"BTCUSDT"`` (upper-cased).
    start, end : str, datetime.date or datetime.datetime
        First and last day (``YYYY-MM-DD``).  For ``fundingRate`` every month touched is
        included.
    kind : str, default "klines"
        One of :data:`KINDS`.
    interval : str, default "1m"
        One of :data:`INTERVALS`; ignored for ``fundingRate``.
    base_url : str, default "https://data.binance.vision"
        The archive's root.

    Returns
    -------
    list of ArchiveFile
        In date order.

    Raises
    ------
    FetchError
        For an unknown kind or interval, a malformed symbol or date, or ``end`` before ``start``.
    """
    if kind not in KINDS:
        raise FetchError(f"unknown kind {kind!r}; expected one of {list(KINDS)}")
    sym = str(symbol).strip().upper()
    if not _SYMBOL_RE.match(sym):
        raise FetchError(f"symbol {symbol!r} is not a Binance futures symbol (e.g. BTCUSDT)")
    if kind in DAILY_KINDS and interval not in INTERVALS:
        raise FetchError(f"unknown interval {interval!r} for {kind}; expected one of {list(INTERVALS)}")
    first, last = _date(start, "start"), _date(end, "end")
    if last < first:
        raise FetchError(f"end {last} is before start {first}")
    base = str(base_url).rstrip("/")
    out = []
    if kind in MONTHLY_KINDS:
        y, m = first.year, first.month
        while (y, m) <= (last.year, last.month):
            label = f"{y:04d}-{m:02d}"
            rel = f"data/futures/um/monthly/{kind}/{sym}/{sym}-{kind}-{label}.zip"
            out.append(ArchiveFile(label, f"{base}/{rel}", rel))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        day = first
        while day <= last:
            label = day.isoformat()
            rel = f"data/futures/um/daily/{kind}/{sym}/{interval}/{sym}-{interval}-{label}.zip"
            out.append(ArchiveFile(label, f"{base}/{rel}", rel))
            day += dt.timedelta(days=1)
    return out


# ------------------------------------------------------------------------------ HTTP
def _open(url: str, timeout: float, retries: int, date: str, what: str):
    """urlopen with a few retries on connection errors and 5xx; 404 -> ArchiveNotFound."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    for attempt in range(retries + 1):
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise ArchiveNotFound(
                    f"{url}: not found (HTTP 404): the archive has no {what} for {date} (the symbol may not "
                    "have been listed then, or the file is not published yet: daily files appear the day "
                    "after, monthly ones after the month ends)", url, date) from None
            if exc.code < 500:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason} (file of {date})") from None
            if attempt == retries:
                raise NetworkError(f"{url}: HTTP {exc.code} {exc.reason} (file of {date}): the server failed "
                                   f"{retries + 1} time(s); try again later") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == retries:
                reason = getattr(exc, "reason", exc)
                raise NetworkError(f"{url}: could not download the file of {date} ({reason}): no network, or "
                                   "the archive cannot be reached from this machine") from None
        time.sleep(0.5 * 2 ** attempt)
    raise AssertionError("unreachable")


def _parse_checksum(text: str, url: str, expected_name: str) -> str:
    parts = text.split()
    if not parts or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
        raise FetchError(f"{url}: not a checksum file (expected '<sha256>  <file name>', got {text[:100]!r})")
    if len(parts) > 1 and parts[1].lstrip("*") != expected_name:
        raise FetchError(f"{url}: the checksum is for {parts[1]!r}, not {expected_name!r}")
    return parts[0].lower()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cached(target: Path, checksum_path: Path) -> bool:
    """True when ``target`` and its checksum file exist and agree."""
    if not (target.is_file() and checksum_path.is_file()):
        return False
    try:
        expected = _parse_checksum(checksum_path.read_text(encoding="utf-8", errors="replace"),
                                   str(checksum_path), target.name)
    except FetchError:
        return False
    return _sha256_file(target) == expected


def _write_atomic(target: Path, data: bytes, tmp_dir: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".riskcore-", suffix=".part", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download(item: ArchiveFile, kind: str, symbol: str, cache: Path, timeout: float, retries: int) -> int:
    """Fetch one zip and its checksum, verify, and move them into the cache; returns the size."""
    what = f"{kind} file of {symbol}"
    checksum_url = item.url + ".CHECKSUM"
    with _open(checksum_url, timeout, retries, item.date, what) as response:
        checksum_text = response.read(4096).decode("utf-8", errors="replace")
    expected = _parse_checksum(checksum_text, checksum_url, item.name)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".riskcore-", suffix=".part", dir=cache)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as fh, _open(item.url, timeout, retries, item.date, what) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        got = digest.hexdigest()
        if got != expected:
            raise ChecksumMismatch(f"{item.url}: SHA-256 {got} does not match the archive's checksum {expected} "
                                   f"(file of {item.date}); the download was deleted")
        target = cache / item.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _write_atomic(target.with_name(target.name + ".CHECKSUM"), checksum_text.encode("utf-8"), cache)
        return size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(symbol: str, start, end, kind: str = "klines", interval: str = "1m", cache_dir=None,
          base_url: str = BASE_URL, *, progress=None, timeout: float = 60.0, retries: int = 2) -> list[Path]:
    """Download archive files for ``start`` to ``end`` into the cache and return their paths.

    Parameters
    ----------
    symbol : str
        A USDⓈ-M futures symbol, e.g. ``"BTCUSDT"``.
    start, end : str, datetime.date or datetime.datetime
        First and last day, both included (``YYYY-MM-DD``).  For ``fundingRate`` (monthly
        files) every month touched is fetched.
    kind : {"klines", "markPriceKlines", "fundingRate", "indexPriceKlines", "premiumIndexKlines"}
        What to fetch; default ``"klines"`` (last-price bars).
    interval : str, default "1m"
        Bar interval, one of :data:`INTERVALS`; ignored for ``fundingRate``.
    cache_dir : str or os.PathLike, optional
        Where files are kept; :func:`default_cache_dir` when not given.  Files land at the
        same relative path as on the server (``data/futures/um/daily/klines/...``).
    base_url : str, default "https://data.binance.vision"
        The archive's root (a mirror, or a local server in tests).
    progress : callable, optional
        Called with one line of text per file (``"[2/3] BTCUSDT-1m-2025-10-10.zip: cached"``).
    timeout : float, default 60
        Seconds to wait on the network per request.
    retries : int, default 2
        Extra attempts after a connection error or an HTTP 5xx (not after a 404).

    Returns
    -------
    list of pathlib.Path
        The local zips, in date order; pass them to :func:`riskcore.io.load_klines` (or
        :func:`riskcore.io.load_funding`).

    Raises
    ------
    ArchiveNotFound
        HTTP 404 for a file; the message names the URL and the date.  Files fetched
        before it stay in the cache.
    ChecksumMismatch
        A download's SHA-256 differs from its ``.CHECKSUM``; the download is deleted.
    FetchError
        Unknown kind or interval, bad dates (or ``end`` before ``start``), other HTTP or
        network failures.
    """
    items = archive_files(symbol, start, end, kind, interval, base_url)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    sym = str(symbol).strip().upper()
    paths = []
    for n, item in enumerate(items, 1):
        target = cache / item.relpath
        if _cached(target, target.with_name(target.name + ".CHECKSUM")):
            status = "cached"
        else:
            size = _download(item, kind, sym, cache, timeout, retries)
            status = f"downloaded {size:,} bytes, SHA-256 verified"
        if progress is not None:
            progress(f"[{n}/{len(items)}] {item.name}: {status}")
        paths.append(target)
    return paths


# ------------------------------------------------------------------------------- CLI
def add_fetch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``riskcore data fetch`` to ``parser``.

    Adds ``symbol`` (positional), ``--start`` (required), ``--end`` (defaults to the start),
    ``--kind``, ``--interval``, ``--cache-dir`` and ``--base-url``; the parsed names match
    the parameters of :func:`cli_fetch`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)parser to extend.

    Returns
    -------
    argparse.ArgumentParser
        The same parser.
    """
    parser.add_argument("symbol", help="USDⓈ-M futures symbol, e.g. BTCUSDT")
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--end", help="last day, YYYY-MM-DD, included (default: the start day)")
    parser.add_argument("--kind", default="klines", choices=KINDS,
                        help="what to fetch (default: klines, i.e. last-price bars; fundingRate is monthly)")
    parser.add_argument("--interval", default="1m", choices=INTERVALS, help="bar interval (default: 1m)")
    parser.add_argument("--cache-dir", dest="cache_dir", default=None,
                        help="where to keep the files (default: $RISKCORE_CACHE or ~/.cache/riskcore)")
    parser.add_argument("--base-url", dest="base_url", default=BASE_URL,
                        help=f"archive root (default: {BASE_URL})")
    return parser


def cli_fetch(symbol: str, start, end=None, kind: str = "klines", interval: str = "1m", cache_dir=None,
              base_url: str = BASE_URL, *, out=None, err=None) -> int:
    """Run a fetch for the command line: print one progress line per file, then a summary.

    Parameters
    ----------
    symbol, start, end, kind, interval, cache_dir, base_url
        As in :func:`fetch`; ``end`` defaults to ``start``.
    out, err : file-like, optional
        Where progress and errors are printed (``sys.stdout`` and ``sys.stderr``).

    Returns
    -------
    int
        The exit status (:mod:`riskcore.exit_codes`): 0 on success, 4 on a
        :class:`NetworkError` (printed as ``riskcore: network error: ...``), 2 on any other
        :class:`FetchError` (``riskcore: error: ...``), 130 when interrupted.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    end = start if end is None else end
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        items = archive_files(symbol, start, end, kind, interval, base_url)
        say(f"fetching {len(items)} {kind} file(s) of {str(symbol).upper()} from {base_url} into {cache}")
        paths = fetch(symbol, start, end, kind, interval, cache, base_url, progress=say)
    except NetworkError as exc:
        print(f"riskcore: network error: {exc}", file=err)
        return exit_codes.NETWORK
    except FetchError as exc:
        print(f"riskcore: error: {exc}", file=err)
        return exit_codes.BAD_INPUT
    except KeyboardInterrupt:
        print("riskcore: interrupted", file=err)
        return 130
    folder = paths[0].parent if paths else cache
    say(f"done: {len(paths)} file(s) in {folder}")
    return 0


def main_fetch(argv=None) -> int:
    """``riskcore data fetch SYMBOL --start DATE [--end DATE] [--kind ...] [--interval ...]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``data fetch``; ``sys.argv[1:]`` when not given.

    Returns
    -------
    int
        The exit status (see :func:`cli_fetch`).
    """
    parser = add_fetch_arguments(argparse.ArgumentParser(
        prog="riskcore data fetch",
        description="Download Binance USDⓈ-M futures files from data.binance.vision, verify their SHA-256 "
                    "and keep them in a local cache."))
    args = parser.parse_args(argv)
    return cli_fetch(args.symbol, args.start, args.end, args.kind, args.interval, args.cache_dir, args.base_url)


if __name__ == "__main__":
    sys.exit(main_fetch())
