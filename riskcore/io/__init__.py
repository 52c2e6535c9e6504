"""Market data in and out: load price bars and funding rates from files, fetch Binance's archive.

* :func:`load_klines` — one contract's OHLC bars from a Binance, CCXT or Parquet file;
* :func:`load_paths` — several contracts, checked to share an interval, trimmed to a common range;
* :func:`load_funding` — funding rates per contract;
* :func:`riskcore.io.fetch.fetch` — download and cache data.binance.vision files (the module
  :mod:`riskcore.io.fetch` also holds the command-line entry points ``main_fetch`` and
  ``cli_fetch``; the function is not re-exported here so that ``riskcore.io.fetch`` stays the module).

The frames returned are the engine's input formats: ``{contract: DataFrame(timestamp, open,
high, low, close)}`` for :meth:`riskcore.PricePaths.from_frames` and ``{contract:
DataFrame(timestamp, rate)}`` for funding.
"""
from .fetch import ArchiveNotFound, ChecksumMismatch, FetchError
from .loaders import DataError, load_funding, load_klines, load_paths, parse_interval

__all__ = ["DataError", "load_klines", "load_paths", "load_funding", "parse_interval",
           "FetchError", "ArchiveNotFound", "ChecksumMismatch"]
