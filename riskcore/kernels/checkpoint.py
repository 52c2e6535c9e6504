"""Checkpoints of a kernel run at bar boundaries, so that a long run that was killed
resumes where it stopped, with the same result to the bit.

A checkpoint is one ``.npz`` file holding everything a run carries from one bar to the
next: the book's arrays, the scratch (fund, ledgers, per-step series, who sleeps until
when), the tape's state and its events, and the events recorded so far.  What can be
rebuilt from the inputs (the contracts' arrays, the path's summary, the packed account
ids) is rebuilt instead.  The file is written at the end of a chunk of bars (every
``every`` seconds at most), under a temporary name first and then renamed over the last
one, so a kill leaves either the previous checkpoint or the new one, never half of one.

A checkpoint belongs to one run: it records a digest of the packed book, the price and
funding arrays, the tape, the parameters and riskcore's kernel sources.  Resuming with
anything different is refused (the message names the file); a file that is not a
riskcore checkpoint is refused and left alone.  When the run finishes, its checkpoint
file is removed (only a file riskcore wrote and recognises).

Plain Python and numpy: nothing here is compiled.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import RiskcoreError

MAGIC = "riskcore-checkpoint"
VERSION = 1


class CheckpointError(RiskcoreError, ValueError):
    """A checkpoint file that cannot be used for this run (another run's, or not one)."""


def _sources() -> bytes:
    """The kernels' source files: a checkpoint of other kernel code is not resumed."""
    here = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.digest()


def run_digest(arrays, params) -> str:
    """Digest of a run's inputs: ``arrays`` (NamedTuples of arrays and arrays, in a fixed
    order) and ``params`` (JSON-able)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(_sources())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for group in arrays:
        items = group._asdict().items() if hasattr(group, "_asdict") else [("", group)]
        for name, a in items:
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


_GROUPS = ("bk", "sc", "tst", "tev", "im")


def save(path: Path, digest: str, t_done: int, state: dict, drained: list, extra: dict) -> None:
    """Write the checkpoint of a run that has done ``t_done`` bars (atomically)."""
    arrays = {}
    for group in _GROUPS:
        for name, a in state[group]._asdict().items():
            arrays[f"{group}.{name}"] = a
    if drained:
        arrays["events.ints"] = np.concatenate([i for i, _ in drained])
        arrays["events.floats"] = np.concatenate([f for _, f in drained])
    meta = {"magic": MAGIC, "version": VERSION, "digest": digest, "t_done": int(t_done), "saved": time.time(),
            **extra}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def _meta(path: Path, data) -> dict:
    try:
        meta = json.loads(str(data["meta"][()]))
    except (KeyError, ValueError, TypeError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("magic") != MAGIC:
        raise CheckpointError(f"checkpoint {path}: not a riskcore checkpoint (left as it is); name another file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path}: written by another version of riskcore (format "
                              f"{meta.get('version')}, this one reads {VERSION}); remove it or name another file")
    return meta


def load(path: Path, digest: str, state: dict) -> tuple[int, dict, list, dict] | None:
    """The saved run in ``path``, or None when there is no such file: (bars done, the
    state groups with the saved arrays, the events so far, the extra facts).  ``state``
    gives the NamedTuple types and the shapes to expect."""
    if not path.exists():
        return None
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: not a riskcore checkpoint ({exc}); left as it is") from None
    with data:
        meta = _meta(path, data)
        if meta["digest"] != digest:
            raise CheckpointError(
                f"checkpoint {path} belongs to another run (different book, paths, funding, tape, parameters "
                f"or riskcore version): remove it to start afresh, or name another file")
        out = {}
        for group in _GROUPS:
            template = state[group]
            fields = {}
            for name, a in template._asdict().items():
                saved = data[f"{group}.{name}"]
                if saved.shape != np.shape(a) or saved.dtype != np.asarray(a).dtype:
                    raise CheckpointError(f"checkpoint {path}: {group}.{name} has shape {saved.shape}, "
                                          f"this run has {np.shape(a)}; remove it or name another file")
                fields[name] = saved.copy()
            out[group] = type(template)(**fields)
        drained = []
        if "events.ints" in data:
            drained = [(data["events.ints"].copy(), data["events.floats"].copy())]
    return meta["t_done"], out, drained, meta


def remove(path: Path) -> None:
    """Remove a finished run's checkpoint (a file riskcore recognises as its own only)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            _meta(path, data)
    except (OSError, ValueError, CheckpointError):
        return
    path.unlink(missing_ok=True)
