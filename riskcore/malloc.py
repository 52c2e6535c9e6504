"""Keep freed array memory in the process for reuse (glibc), for the command line.

A run allocates and frees many arrays of a few MB to a few tens of MB (a column of a
million accounts is 8 MB).  By default glibc serves each from a fresh ``mmap`` and
returns it to the system when freed, so the next array of that size is faulted in page
by page again: on a virtual machine that page faulting was half the time of drawing a
million-account population (0.8 s of 1.3 s measured on the 2-core CI machine).

:func:`tune` asks glibc (``mallopt``) to serve blocks up to 32 MB from its heap and to
keep up to 1 GB of freed heap for reuse instead of trimming it.  Results are the same
to the bit (only where the memory comes from changes); the resident size may stay
higher after a big array is freed, and the peak is about the same.  ``riskcore`` calls
it at start; a library user may call it too.  Elsewhere (musl, macOS, Windows) it does
nothing.  ``RISKCORE_MALLOC=default`` in the environment keeps glibc's defaults.

:func:`release` is the opposite, for a process that did not :func:`tune`: it hands the
heap's free pages back to the system (``malloc_trim``).  :func:`riskcore.simulate` calls
it before a run, so that what building the book left free on the heap (a third of the
book's size for ten million positions) is not held through the run.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune", "release"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_tuned = False


def tune() -> bool:
    """Apply the settings above once per process; True when glibc took all of them."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get("RISKCORE_MALLOC", "").strip().lower() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _tuned = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    return _tuned


def release() -> bool:
    """Return the heap's free memory to the system (glibc ``malloc_trim``); nothing after
    :func:`tune` (that process keeps freed memory on purpose) or off glibc.  True when
    glibc gave memory back."""
    if _tuned or os.environ.get("RISKCORE_MALLOC", "").strip().lower() == "default" \
            or not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return trim(0) == 1
