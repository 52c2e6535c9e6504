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
NOT_COMPILED = ("__init__.py", "engine.py")  # Python drivers: editing them leaves the kernels valid


def sync_cache() -> None:
    """Drop cached kernels compiled from other sources.

    numba keys a cached function on its own file's timestamp only, so an edit of a
    callee in another file (``account_nb.py`` called from ``step_nb.py``) would leave a
    stale kernel in use.  A digest of every kernel source is kept beside the cache; when
    it changes, the kernels' cache files are removed and recompiled on first use."""
    import hashlib
    import os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        if path.name in NOT_COMPILED:
            continue
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    stamp_value = digest.hexdigest()
    dirs = [here / "__pycache__"]
    root = os.environ.get("NUMBA_CACHE_DIR")
    if root:
        dirs += [p for p in Path(root).rglob("*") if p.is_dir() and p.name == "kernels"
                 and p.parent.name == "riskcore"]
    for folder in dirs:
        stamp = folder / "riskcore-kernels.digest"
        try:
            if stamp.exists() and stamp.read_text() == stamp_value:
                continue
            if folder.is_dir():
                for f in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
                    f.unlink(missing_ok=True)
                stamp.write_text(stamp_value)
        except OSError:  # a read-only install: numba falls back to compiling
            pass


def cache_is_warm() -> bool:
    """Whether the main kernel is in the cache beside the sources (True when the cache lives
    elsewhere, under ``NUMBA_CACHE_DIR``: it is not looked for there)."""
    import os
    from pathlib import Path

    if os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return True
    folder = Path(__file__).resolve().parent / "__pycache__"
    return any(folder.glob("step_nb.run_steps_nb-*.nbi"))
