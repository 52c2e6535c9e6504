"""The output folder of a run: whose it is, one run at a time, leftovers, the swap.

The rules (``docs/scenarios.md``, "The output folder"):

* A folder is replaced only when it is empty or holds an earlier riskcore output: its
  manifest (``manifest.json``, written last) lists every file in it.  Any other folder is
  refused; ``force`` moves its contents aside to ``NAME.before-<time>`` beside it instead.
  A file that is not riskcore's is never deleted: an earlier output is removed file by
  file from its manifest, and a folder that still holds something after that is moved
  aside, not deleted.
* Everything is checked before the run: the target is (or can become) a folder, its parent
  can be written (a temporary folder and a file in it are made there at once).
* One run per folder at a time: ``.NAME.lock`` beside the folder is locked (``flock``; the
  system releases it when the process ends, however it ends).  A second run is refused,
  naming the first one's process id.
* Under the lock, the leftovers of runs that were killed while writing (``.NAME.tmp-*``
  folders, ``.NAME.old-PID`` folders) are cleaned up.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .errors import RiskcoreError

try:
    import fcntl
except ImportError:  # Windows has no flock: there, two runs into one folder are not kept apart
    fcntl = None

MANIFEST = "manifest.json"


class OutputFolderError(RiskcoreError):
    """The output folder cannot be used (not riskcore's, not writable, or in use); nothing
    was written and nothing was deleted."""


def _listing(folder: Path) -> list[str]:
    """Every file under ``folder``, as sorted relative paths (folders end in '/' when empty)."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [str(rel / f) for f in files]
        out += [str(rel / d) for d in dirs if (Path(root) / d).is_symlink()]  # not walked into
        if not dirs and not files and root != str(folder):
            out.append(f"{rel}/")
    return sorted(out)


def _manifest_files(folder: Path) -> set[str] | None:
    """The files an earlier riskcore output lists in its manifest (None: no riskcore manifest)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("written_by") != "riskcore" \
            or not isinstance(manifest.get("files"), list):
        return None
    inside = {str(f) for f in manifest["files"] if isinstance(f, str) and not Path(f).is_absolute()
              and ".." not in Path(f).parts}  # never a name outside the folder
    return inside | {MANIFEST}


def foreign_files(folder: Path) -> list[str]:
    """The files in ``folder`` that an earlier riskcore run did not write (all of them when it
    has no manifest); empty when the folder may be replaced."""
    present = _listing(folder)
    ours = _manifest_files(folder)
    return present if ours is None else [f for f in present if f not in ours]


def _remove_ours(folder: Path) -> bool:
    """Delete the files ``folder``'s manifest lists, then the folder if nothing else is left in
    it.  True when the folder is gone."""
    for name in sorted(_manifest_files(folder) or (), reverse=True):
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for root, _dirs, _files in sorted(os.walk(folder), key=lambda w: -len(w[0])):  # empty sub-folders
        try:
            os.rmdir(root)
        except OSError:
            pass
    return not folder.exists()


def _aside(folder: Path) -> Path:
    """A free name beside ``folder`` to move its contents to."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = folder.with_name(f"{folder.name}.before-{stamp}")
    n = 2
    while name.exists():
        name, n = folder.with_name(f"{folder.name}.before-{stamp}-{n}"), n + 1
    return name


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class OutputTarget:
    """The folder a run writes: ``with OutputTarget(folder, force) as target:`` checks it, locks
    it, cleans up leftovers and makes ``target.tmp`` to write into; ``target.commit()`` puts
    the outputs in place.  Leaving the block without committing removes ``target.tmp``;
    leaving it releases the lock."""

    def __init__(self, folder, force: bool = False):
        self.given = Path(folder)
        self.folder = self.given.resolve()
        self.force = force
        self.tmp: Path | None = None
        self.foreign: list[str] = []  # files in the folder riskcore did not write (only with force)
        self.moved_aside: Path | None = None  # where such a folder went
        self._lock_fd = None

    @property
    def _lock_path(self) -> Path:
        return self.folder.with_name(f".{self.folder.name}.lock")

    def __enter__(self) -> "OutputTarget":
        folder = self.folder
        if not folder.name:
            raise OutputFolderError(f"{self.given}: the root of the file system cannot be an output folder")
        above = next((p for p in folder.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise OutputFolderError(f"{self.given}: {above} is a file, not a folder; choose an output folder "
                                    "elsewhere")
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"{self.given}: cannot create the folder {folder.parent}: {_why(exc)}") from None
        if folder.exists() and not folder.is_dir():
            raise OutputFolderError(f"{self.given} is a file, not a folder: riskcore writes a folder of outputs "
                                    "and will not replace a file; choose another output folder")
        self._lock()
        try:
            self._clean_leftovers()
            self._judge()
            try:
                self.tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
                (self.tmp / MANIFEST).write_text("{}\n", encoding="utf-8")  # a file can be written too
            except OSError as exc:
                raise OutputFolderError(f"{self.given}: cannot write into {folder.parent}: {_why(exc)}") from None
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, kind, exc, tb):
        self._discard()
        return False

    # ------------------------------------------------------------------ checks
    def _lock(self) -> None:
        path = self._lock_path
        while fcntl is not None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputFolderError(f"{self.given}: cannot write into {path.parent}: {_why(exc)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "a process"
                os.close(fd)
                raise OutputFolderError(f"{self.given}: another riskcore run ({holder}) is writing this folder "
                                        f"(lock {path}); wait for it to end or choose another output folder") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its last holder removed while we waited for it
                os.ftruncate(fd, 0)
                os.write(fd, f"process {os.getpid()}".encode())
                self._lock_fd = fd
                return
            os.close(fd)

    def _clean_leftovers(self) -> None:
        """Temporary folders of runs killed while writing, and earlier outputs a killed run
        had moved aside to swap them (removed from their manifest, or kept if anything
        else is in them)."""
        name = re.escape(self.folder.name)
        tmp = re.compile(rf"\.{name}\.tmp-[a-z0-9_]{{8}}")
        old = re.compile(rf"\.{name}\.old-\d+")
        for path in self.folder.parent.iterdir():
            if not path.is_dir() or path.is_symlink():
                continue
            if tmp.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)
            elif old.fullmatch(path.name) and not _remove_ours(path):
                os.replace(path, _aside(self.folder))

    def _judge(self) -> None:
        """Refuse a folder whose files riskcore did not write (unless ``force``)."""
        if not self.folder.exists():
            return
        foreign = self.foreign = foreign_files(self.folder)
        if foreign and not self.force:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            whose = "holds files an earlier riskcore run did not write" if (self.folder / MANIFEST).exists() \
                else f"was not written by riskcore (no {MANIFEST})"
            raise OutputFolderError(f"{self.given} {whose}: {shown}. Refusing to replace it, which would delete "
                                    "them: choose another output folder, empty this one, or pass --force "
                                    f"(force=True) to move its contents aside to {self.folder.name}.before-<time>")
        if not os.access(self.folder, os.W_OK):
            raise OutputFolderError(f"{self.given}: cannot replace it: no write permission")

    # ------------------------------------------------------------------ commit
    def commit(self, **about) -> None:
        """Write the manifest (the files in ``tmp`` and ``about``), then put ``tmp`` in place of
        the folder.  The folder it replaces loses only the files its manifest lists; if
        anything else is left in it (a folder taken with ``force``, a file put there during
        the run), it is moved aside to ``NAME.before-<time>``."""
        files = [f for f in _listing(self.tmp) if f != MANIFEST]
        manifest = {"written_by": "riskcore", **about, "files": files}
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it private; outputs are ordinary files
        folder = self.folder
        if not folder.exists():
            os.replace(self.tmp, folder)
            self.tmp = None
            return
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
        try:
            os.replace(self.tmp, folder)
        except BaseException:
            os.replace(old, folder)
            raise
        self.tmp = None
        if not _remove_ours(old):
            self.moved_aside = _aside(folder)
            os.replace(old, self.moved_aside)

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self._lock_fd is not None:
            try:
                self._lock_path.unlink()
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None
