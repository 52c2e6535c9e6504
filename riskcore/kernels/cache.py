"""The kernels' on-disk cache: keep it in step with the sources, and tell whether it is warm.

Not compiled itself, so editing this file leaves the cached kernels valid.
"""
from __future__ import annotations

NOT_COMPILED = ("__init__.py", "engine.py", "cache.py")  # Python drivers: editing them leaves the kernels valid


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


ENTRY_POINTS = ("step_nb.run_steps_nb", "step_nb.funding_only_nb", "pack.init_lp_nb", "sleep_nb.levels_nb")


def cache_is_warm() -> bool:
    """Whether the kernels called from Python are all in the cache beside the sources (True
    when the cache lives elsewhere, under ``NUMBA_CACHE_DIR``: it is not looked for there)."""
    import os
    from pathlib import Path

    if os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return True
    folder = Path(__file__).resolve().parent / "__pycache__"
    return all(any(folder.glob(f"{name}-*.nbi")) for name in ENTRY_POINTS)
