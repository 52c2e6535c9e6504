"""The one place that sets numba options for riskcore's kernels.

* ``cache=True``: compiled kernels are written next to the sources (or under
  ``NUMBA_CACHE_DIR``); run :func:`riskcore.kernels.warmup` once, serially, before
  parallel use (parallel cache writes race).
* ``fastmath=False``: money math must follow IEEE order exactly, so the kernel's
  sums match the reference engine's bit for bit where their order is the same.
* ``error_model="numpy"``: a division by zero gives inf/NaN instead of raising (the
  reference engine guards every division it relies on).
* ``nogil=True``: a kernel may run beside other Python threads.
"""
NB = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)
NB_PARALLEL = dict(NB, parallel=True)

