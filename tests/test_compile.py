"""What a cold start compiles (riskcore/kernels/compiling.py), and that it compiles each kernel once.

numba compiles a kernel once per distinct tuple of argument types; a constant or an
``int8`` passed where another caller passes an ``int64`` compiles the kernel (and all its
callees) again.  The kernels were compiled up to four times each before the call sites
were made to agree; these tests keep it that way.
"""
from __future__ import annotations

import io
import os
import pickle

import pytest
from numba import njit

from riskcore.kernels import account_nb, actions_nb, step_nb
from riskcore.kernels.cache import numba_cache_folder
from riskcore.kernels.compiling import CompileProgress, kernels_to_compile, line_printer
from riskcore.kernels.engine import warmup, warmup_entries

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def test_kernels_to_compile_follows_the_calls_and_skips_inlined_leaves():
    core = kernels_to_compile([step_nb.run_steps_nb])
    names = {k.rsplit(".", 1)[1] for k in core}
    # reached through phase_a_nb -> block_point_nb -> account_point_nb -> liquidate_nb
    assert {"run_steps_nb", "phase_a_nb", "block_point_nb", "account_point_nb", "liquidate_nb",
            "phase_b_nb", "deleverage_nb", "wake_bar_nb", "mm_nb"} <= names
    # inlined into their callers: never compiled on their own
    assert not names & {"emit_nb", "lev_nb", "find_slot_nb", "view_nb", "closing_direction_nb"}
    # the tape's kernels are not reached from the stepping kernels
    assert "apply_tape_nb" not in names and "market_nb" not in names
    with_tape = kernels_to_compile([step_nb.run_steps_nb, actions_nb.apply_tape_nb])
    assert {"riskcore.kernels.actions_nb.apply_tape_nb", "riskcore.kernels.actions_nb.market_nb"} <= set(with_tape)
    assert set(core) < set(with_tape)


def test_warmup_entries_leave_the_tape_out_unless_asked():
    plain = warmup_entries(tape=False)
    assert step_nb.run_steps_nb in plain and actions_nb.apply_tape_nb not in plain
    assert step_nb.funding_only_nb not in plain
    full = warmup_entries(tape=True)
    assert actions_nb.apply_tape_nb in full and step_nb.funding_only_nb in full
    assert account_nb.init_lp_nb in plain


@pytest.mark.skipif(JIT_OFF, reason="nothing compiles with NUMBA_DISABLE_JIT=1")
def test_progress_reports_each_riskcore_kernel_as_it_starts():
    def double(x):
        return 2 * x

    def quadruple(x):
        return double_nb(double_nb(x))

    double.__module__ = quadruple.__module__ = "riskcore.tests_progress"  # counted as ours
    double_nb = njit(double)
    quadruple_nb = njit(quadruple)
    seen = []
    with CompileProgress(2, lambda done, total, name, seconds: seen.append((done, total, name))) as watch:
        assert quadruple_nb(3) == 12
    assert seen == [(0, 2, "quadruple"), (0, 2, "double")]  # the callee starts inside its caller
    assert watch.done == 2


def test_line_printer_on_a_log_prints_about_every_ten_seconds():
    out = io.StringIO()
    report = line_printer(out)
    report(0, 40, "init_lp_nb", 0.0)
    report(1, 40, "n_points_nb", 3.0)  # too soon after the last line
    report(9, 40, "phase_a_nb", 12.5)
    assert out.getvalue().splitlines() == ["compiling kernels: 1 of at most 40, init_lp_nb, 0 s",
                                           "compiling kernels: 10 of at most 40, phase_a_nb, 12 s"]


def test_line_printer_on_a_terminal_rewrites_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    report = line_printer(out)
    report(0, 3, "a_nb", 0.0)
    report(1, 3, "b_nb", 0.4)
    assert out.getvalue().count("\r") == 2 and "\n" not in out.getvalue()
    assert out.getvalue().rstrip().endswith("compiling kernels: 2 of at most 3, b_nb, 0 s")


def _signatures(index_path) -> int:
    with open(index_path, "rb") as f:
        pickle.load(f)  # numba's cache format version
        _, overloads = pickle.loads(f.read())
    return len(overloads)


@pytest.mark.skipif(JIT_OFF, reason="nothing compiles with NUMBA_DISABLE_JIT=1")
def test_every_cached_kernel_was_compiled_for_one_tuple_of_argument_types():
    """The package's cache (filled by the warm-up, and by every test run so far): one
    signature per kernel.  Two would mean two call sites disagree on an argument's type (a
    literal, an int8 or a uint64 prange index) and the kernel and its callees compile twice."""
    warmup(tape=True)
    folder = numba_cache_folder()
    indexes = sorted(folder.glob("*.nbi"))
    assert indexes, f"no cached kernels in {folder}"
    twice = {p.name: n for p in indexes if (n := _signatures(p)) > 1}
    assert twice == {}
