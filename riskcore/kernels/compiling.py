"""What a cold start compiles, and a progress line while it does.

numba compiles a kernel when something first calls it, and its callees while it types the
caller, so a run's first call compiles a whole tree of kernels at once.  This module knows
that tree without compiling anything: :func:`kernels_to_compile` reads the kernels'
sources for the calls between them (kernels marked ``inline="always"`` are typed inside
their callers and never compiled on their own), and :class:`CompileProgress` listens to
numba's compile events to say which kernel is compiling, how many are done of how many,
and for how long.

Not compiled itself (see :data:`riskcore.kernels.cache.NOT_COMPILED`).
"""
from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import time
from collections.abc import Callable, Iterable

from numba.core import event

def is_kernel(obj) -> bool:
    from numba.core.registry import CPUDispatcher

    return isinstance(obj, CPUDispatcher) and (obj.py_func.__module__ or "").startswith("riskcore")


def _callees(kernel) -> list:
    """The kernels ``kernel``'s source names (resolved in its own module's globals)."""
    func = kernel.py_func
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return [func.__globals__[n] for n in sorted(names) if is_kernel(func.__globals__.get(n))]


def kernels_to_compile(entries: Iterable) -> list[str]:
    """The kernels (``module.name``) a first call of ``entries`` (jitted functions) compiles:
    every jitted function they reach, except those inlined into their callers."""
    seen: dict[str, object] = {}
    stack = list(entries)
    while stack:
        kernel = stack.pop()
        key = f"{kernel.py_func.__module__}.{kernel.py_func.__name__}"
        if key in seen:
            continue
        seen[key] = kernel
        stack.extend(_callees(kernel))
    return sorted(k for k, kernel in seen.items() if kernel.targetoptions.get("inline", "never") != "always")


class CompileProgress(event.Listener):
    """Reports each riskcore kernel numba starts compiling: ``report(done, total, name,
    seconds)``, where ``done`` counts the kernels finished before this one and ``seconds``
    is the time since the listener was installed.  Use as a context manager."""

    def __init__(self, total: int, report: Callable[[int, int, str, float], None]):
        self.total = total
        self.report = report
        self.done = 0
        self.start = time.perf_counter()

    def _is_ours(self, ev) -> bool:
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        return module.startswith("riskcore")

    def on_start(self, ev):
        if self._is_ours(ev):
            self.report(self.done, self.total, ev.data["dispatcher"].py_func.__name__,
                        time.perf_counter() - self.start)

    def on_end(self, ev):
        if self._is_ours(ev):
            self.done += 1

    def __enter__(self):
        self.start = time.perf_counter()
        event.register("numba:compile", self)
        return self

    def __exit__(self, *exc):
        event.unregister("numba:compile", self)
        return False


def line_printer(stream=None) -> Callable[[int, int, str, float], None]:
    """A ``report`` for :class:`CompileProgress` that keeps one status line up to date on a
    terminal (``compiling kernels: 12/41 phase_a_nb, 23 s``) and, elsewhere (a log), prints
    a line about every ten seconds."""
    stream = stream if stream is not None else sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    last = [-1e9]

    def report(done: int, total: int, name: str, seconds: float) -> None:
        shown = min(done + 1, total)
        text = f"compiling kernels: {shown} of at most {total}, {name}, {seconds:.0f} s"
        if tty:
            stream.write("\r" + text.ljust(72)[:100])
            stream.flush()
        elif seconds - last[0] >= 10.0:
            last[0] = seconds
            stream.write(text + "\n")
            stream.flush()

    return report


def warm_with_progress(tape: bool = True, stream=None) -> dict:
    """:func:`riskcore.kernels.warmup` with a progress line on ``stream`` (stderr) while
    kernels compile, closed by a line saying how many compiled and how long it took."""
    stream = stream if stream is not None else sys.stderr
    info = warm_in_two(tape=tape, progress=line_printer(stream))
    if info["compiled"]:
        end = "\r" if getattr(stream, "isatty", lambda: False)() else ""
        stream.write(f"{end}kernels compiled in {info['seconds']:.1f} s".ljust(72) + "\n")
        stream.flush()
    return info


def _helper_compile() -> None:
    """The helper process of :func:`warm_in_two`: compile, into the shared cache, the kernels
    the main process reaches last (the stages an account runs after its limit fills,
    the wake-up bands, the serial phase, the read-outs), each for the argument types the
    main process will ask for, so the main process finds them there.  A signature that
    drifts from the main process's only costs time: ``tests/test_compile.py`` checks them."""
    from numba import types

    from .. import readouts
    from .account_nb import cross_check_nb, isolated_nb, liquidate_nb, tp_sl_nb
    from .engine import warm_inputs, warm_run
    from .sleep_nb import wake_bar_nb
    from .step_nb import phase_b_nb

    book, paths, rates, _ = warm_inputs()
    run = warm_run(book, paths, rates)
    of = numba_typeof
    i8, b1, grid = types.int64, types.boolean, types.float64[:, ::1]
    bk, ct, sc, ev, pr = of(run.bk), of(run.ct), of(run.sc), of(run.ev), of(run.pr)
    # in the order the main process reaches them from the end: it types run_steps_nb's calls
    # depth first in source order (account_point_nb's checks, then the wake-up bands, then
    # phase_b_nb), and the read-outs after the run
    stage = (bk, ct, sc, ev, pr, i8, i8, i8, i8, i8, b1, grid, grid)  # (..., a, b, row, t, k, gap, prev, cur)
    tp_sl_nb.compile(stage)
    isolated_nb.compile(stage)
    cross_check_nb.compile((bk, ct, sc, i8, b1, grid, grid))
    liquidate_nb.compile((bk, ct, sc, ev, pr, i8, i8, i8, i8, i8, grid))
    wake_bar_nb.compile((bk, ct, of(run.lv), grid, i8, i8, grid, grid))
    phase_b_nb.compile((bk, ct, sc, ev, pr, i8, i8, b1, grid))
    readouts.readouts(book.frames())


def numba_typeof(value):
    import numba

    return numba.typeof(value)


def warm_in_two(tape: bool = True, progress=None) -> dict:
    """:func:`riskcore.kernels.warmup`, with a helper process compiling part of the kernels
    into the same cache meanwhile (on a machine with two cores or more): the kernels
    the main process needs last are ready when it reaches them, so a cold start takes
    about half as long.  The helper only saves time: whatever it has not cached when the
    main process needs it, the main process compiles itself, so the result is the same
    if the helper fails or is slow.  Returns :func:`warmup`'s dict."""
    import os
    import subprocess

    from .engine import warmup

    helper = None
    if (os.cpu_count() or 1) >= 2 and os.environ.get("NUMBA_DISABLE_JIT") != "1":
        code = "from riskcore.kernels.compiling import _helper_compile; _helper_compile()"
        helper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        info = warmup(tape=tape, progress=progress)
    finally:
        if helper is not None and helper.poll() is None:  # the main process has all it needs
            helper.kill()  # (numba writes each cache file whole, by a rename)
            helper.wait()
    return info
