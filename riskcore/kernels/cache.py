"""The kernels' on-disk cache: keep it in step with the sources, and tell whether it is warm.

Not compiled itself, so editing this file leaves the cached kernels valid.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

NOT_COMPILED = ("__init__.py", "engine.py", "cache.py", "compiling.py", "pack.py", "tape.py", "text.py")  # Python drivers:
# editing them leaves the kernels valid


def sync_cache(folders=None) -> None:
    """Drop cached kernels compiled from other sources (in ``folders``; by default the
    package's ``__pycache__`` and numba's folder for it under ``NUMBA_CACHE_DIR``).

    numba keys a cached function on its own file's timestamp only, so an edit of a
    callee in another file (``account_nb.py`` called from ``step_nb.py``) would leave a
    stale kernel in use.  A digest of every kernel source is kept beside the cache; when
    it changes, the kernels' cache files are removed and recompiled on first use."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        if path.name in NOT_COMPILED:
            continue
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    stamp_value = digest.hexdigest()
    if folders is not None:
        dirs = [Path(f) for f in folders]
    else:
        dirs = list(dict.fromkeys([here / "__pycache__", numba_cache_folder()]))
    for folder in dirs:
        stamp = folder / "riskcore-kernels.digest"
        try:
            if stamp.exists() and stamp.read_text() == stamp_value:
                continue
            for f in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
                f.unlink(missing_ok=True)
            # stamp even a folder that does not exist yet: the kernels compiled into it next
            # are from these sources (without the stamp, the next process would drop them)
            folder.mkdir(parents=True, exist_ok=True)
            stamp.write_text(stamp_value)
        except OSError:  # a read-only install: numba falls back to compiling
            pass


ENTRY_POINTS = ("step_nb.run_steps_nb", "account_nb.init_lp_nb", "sleep_nb.levels_nb")
TAPE_ENTRY_POINTS = ("step_nb.funding_only_nb", "actions_nb.apply_tape_nb")


def cache_is_warm(tape: bool = False) -> bool:
    """Whether the kernels called from Python (with ``tape``, also those that apply a tape)
    are all in numba's cache (beside the sources, or under ``NUMBA_CACHE_DIR``); True when
    nothing is compiled (``NUMBA_DISABLE_JIT=1``)."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return True
    folder = numba_cache_folder()
    names = ENTRY_POINTS + (TAPE_ENTRY_POINTS if tape else ())
    return all(any(folder.glob(f"{name}-*.nbi")) for name in names)


def numba_cache_folder():
    """Where numba caches this package's kernels: ``__pycache__`` beside the sources, or its
    own folder for them under ``NUMBA_CACHE_DIR`` when that is set."""
    here = Path(__file__).resolve().parent
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return here / "__pycache__"
    from numba.core.caching import _CacheLocator

    return Path(root) / _CacheLocator.get_suitable_cache_subpath(str(here / "step_nb.py"))
