"""The one place that sets numba options for riskcore's kernels.

* ``cache=True``: compiled kernels are written next to the sources (or under
  ``NUMBA_CACHE_DIR``); run :func:`riskcore.kernels.warmup` once, serially, before
  parallel use (parallel cache writes race).
* ``fastmath=False``: money math must follow IEEE order exactly, so the kernel's
  sums match the reference engine's bit for bit where their order is the same.
* ``error_model="numpy"``: a division by zero gives inf/NaN instead of raising (the
  reference engine guards every division it relies on).
* ``nogil=True``: a kernel may run beside other Python threads.

Compile time: numba compiles a called kernel once per distinct tuple of argument types,
and counts a constant argument (``0``, ``True``, a module-level code) as its own literal
type, an ``int8`` read from an array as another, a ``prange`` index as ``uint64`` after
the loop is outlined.  A kernel called three ways is compiled three times, with all its
callees.  So kernels take indices as ``int64`` and flags as ``bool``: a call site passes
``np.int64(...)`` / ``np.bool_(...)`` where the value is a constant or comes from a narrow
array, and small leaves are inlined (``NB_INLINE``).  ``riskcore bench`` reports the
cold compile and how many kernels it compiled.
"""
NB = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)
NB_PARALLEL = dict(NB, parallel=True)
#: small leaves (a lookup, an event record): inlined into each caller, so they are never
#: compiled on their own, once per distinct tuple of argument types
NB_INLINE = dict(NB, inline="always")
#: kernels called only from other kernels: no wrapper to call them from Python (the wrapper
#: unboxes every array of every NamedTuple argument, and costs a compile of its own)
NB_INNER = dict(NB, no_cpython_wrapper=True, no_cfunc_wrapper=True)
NB_PARALLEL_INNER = dict(NB_PARALLEL, no_cpython_wrapper=True, no_cfunc_wrapper=True)

