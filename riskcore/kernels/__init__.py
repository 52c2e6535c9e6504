"""The numba kernel engine: the reference engine's semantics over struct-of-arrays.

``run_numba(book, paths, funding_rates, actions, **params)`` packs the book, runs the
jitted kernels and unpacks into the same :class:`~riskcore.result.Result` as the
reference engine.  See ``docs/kernel.md``.
"""
from .cache import sync_cache

sync_cache()

from .engine import EventBufferOverflow, run_numba, warmup  # noqa: E402 (after the cache check)

__all__ = ["EventBufferOverflow", "run_numba", "warmup"]
