"""A run's state split into shards and merged back, and a shard's state on disk.

A shard is a contiguous range of accounts in canonical order, starting at a multiple of
the kernels' block (1,024 accounts), so that its blocks are the whole book's blocks: every
per-block sum is then the one-process sum.  Its state is the kernels' own arrays
(:class:`~riskcore.kernels.state.BookArrays`, :class:`~riskcore.kernels.state.Scratch`,
:class:`~riskcore.kernels.state.MarkState`), sliced: per account, per slot, per order and
per block; offsets (``acc_slot0``, ``acc_ord0``) are rebased.  Merging the shards in order
gives back the whole book's arrays exactly.

Plain numpy: nothing here is compiled.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..kernels.checkpoint import CheckpointError
from ..kernels.state import BookArrays, MarkState, Scratch

MAGIC = "riskcore-shard-state"
VERSION = 1
_ONE = ("glob", "steps", "imp_slip")  # a whole-run scalar or series: every shard has its own


def _axis(group: str, name: str) -> str:
    """What a field is indexed by: ``acc``, ``slot``, ``ord``, ``blk``, an offset array
    (``off-slot``, ``off-ord``) or ``one`` (not split)."""
    if name == "acc_slot0":
        return "off-slot"
    if name == "acc_ord0":
        return "off-ord"
    if group == "sc" and name in _ONE:
        return "one"
    if name.startswith(("acc_", "set_")) or name == "liq_acct":
        return "acc"
    if name.startswith("s_"):
        return "slot"
    if name.startswith("o_"):
        return "ord"
    if name.startswith("blk_"):
        return "blk"
    raise AssertionError(f"unknown state field {group}.{name}")


def bounds(n_accounts: int, shards: int, block: int) -> list[int]:
    """Account boundaries ``[0, ..., n_accounts]`` of ``shards`` shards of whole blocks,
    as even as the blocks allow."""
    n_blocks = max(1, -(-n_accounts // block))
    per, extra = divmod(n_blocks, shards)
    out, b = [0], 0
    for s in range(shards):
        b += per + (1 if s < extra else 0)
        out.append(min(n_accounts, b * block))
    return out


def split(bk: BookArrays, sc: Scratch, a0: int, a1: int, block: int) -> tuple[BookArrays, Scratch]:
    """Accounts ``a0:a1`` (``a0`` a multiple of ``block``) as a shard's own arrays (copies)."""
    s0, s1 = int(bk.acc_slot0[a0]), int(bk.acc_slot0[a1])
    o0, o1 = int(bk.acc_ord0[a0]), int(bk.acc_ord0[a1])
    b0, b1 = a0 // block, -(-a1 // block)
    ranges = {"acc": (a0, a1), "slot": (s0, s1), "ord": (o0, o1), "blk": (b0, b1)}

    def cut(group, tup):
        fields = {}
        for name, a in tup._asdict().items():
            axis = _axis(group, name)
            if a is None:
                fields[name] = None
            elif axis == "one":
                fields[name] = a.copy()
            elif axis.startswith("off-"):
                lo = a[a0]
                fields[name] = (a[a0:a1 + 1] - lo).astype(a.dtype)
            else:
                lo, hi = ranges[axis]
                fields[name] = a[lo:hi].copy()
        return type(tup)(**fields)

    return cut("bk", bk), cut("sc", sc)


def merge(parts: list[tuple[BookArrays, Scratch]], one: Scratch | None = None) -> tuple[BookArrays, Scratch]:
    """The whole book's arrays from its shards' (in order).  The ``one`` fields (the fund
    and the serial sums, the per-step series) are taken from ``one`` (default: the first
    shard's)."""
    out = []
    for g, group in enumerate(("bk", "sc")):
        first = parts[0][g]
        fields = {}
        for name in first._fields:
            axis = _axis(group, name)
            arrays = [p[g]._asdict()[name] for p in parts]
            if axis == "one":
                fields[name] = (one._asdict()[name] if one is not None else arrays[0]).copy()
            elif axis.startswith("off-"):
                pieces, base = [], 0
                for a in arrays:
                    pieces.append(a[:-1] + base)
                    base += int(a[-1])
                pieces.append(np.array([base], arrays[0].dtype))
                fields[name] = np.concatenate(pieces).astype(arrays[0].dtype)
            else:
                fields[name] = np.concatenate(arrays)
        out.append(type(first)(**fields))
    return out[0], out[1]


# ------------------------------------------------------------------------ on disk
def state_file(folder: Path, shard: int, bar: int) -> Path:
    return Path(folder) / f"riskcore-shard-{shard:04d}-bar-{bar:07d}.npz"


def save(path: Path, digest: str, bar: int, bk: BookArrays, sc: Scratch, im: MarkState) -> int:
    """Write a shard's state at the start of bar ``bar`` atomically (a temporary name, then a
    rename over any older file); returns the bytes written."""
    arrays = {}
    for group, tup in (("bk", bk), ("sc", sc), ("im", im)):
        for name, a in tup._asdict().items():
            arrays[f"{group}.{name}"] = a
    arrays["meta"] = np.array(json.dumps({"magic": MAGIC, "version": VERSION, "digest": digest, "bar": int(bar)}))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def load(path: Path, digest: str, bar: int) -> tuple[BookArrays, Scratch, MarkState]:
    """A shard's state saved by :func:`save` for this run (``digest``) at ``bar``."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CheckpointError(f"shard state {path} is missing: the run's checkpoint folder was changed "
                              "while it ran; remove the folder's riskcore-shard-* files to start afresh") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"shard state {path}: not a riskcore shard state ({exc})") from None
    with data:
        try:
            meta = json.loads(str(data["meta"][()]))
        except (KeyError, ValueError):
            meta = {}
        if meta.get("magic") != MAGIC or meta.get("version") != VERSION:
            raise CheckpointError(f"shard state {path}: not a riskcore shard state of this version")
        if meta.get("digest") != digest or meta.get("bar") != bar:
            raise CheckpointError(f"shard state {path} belongs to another run or bar (expected bar {bar})")
        groups = {}
        for group, cls in (("bk", BookArrays), ("sc", Scratch), ("im", MarkState)):
            groups[group] = cls(**{name: data[f"{group}.{name}"].copy() for name in cls._fields})
    return groups["bk"], groups["sc"], groups["im"]
