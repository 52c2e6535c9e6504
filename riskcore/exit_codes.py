"""The exit codes of the ``riskcore`` command: one table, shown by ``riskcore --help`` and the docs."""
from __future__ import annotations

OK = 0
FAILED = 1
BAD_INPUT = 2
MISSING_DATA = 3
NETWORK = 4
REGRESSION = 5
INTERRUPTED = 130

EXIT_CODES = {
    OK: "ok: the command finished and its outputs are in place",
    FAILED: "the run failed: a full disk or too little memory (the message says which and names the folder), "
            "or a bug (a traceback); the output folder is as it was",
    BAD_INPUT: "bad input: the scenario (the message names the file and the key), a data file's contents, an "
               "argument, or an output folder that cannot be used; nothing was written",
    MISSING_DATA: "a data file is missing (the message names every place it was looked for)",
    NETWORK: "the network failed: a download (riskcore data fetch: no network, a time-out or a server error) or "
             "no Dask scheduler answering at the --cluster address; try again later",
    REGRESSION: "riskcore bench --compare: a case is slower (or uses more memory) than the baseline by more "
                "than the tolerance; the message names the case and the metric",
    INTERRUPTED: "interrupted (Ctrl-C); nothing was written (with --checkpoint, the same command resumes)",
}


def epilog(width: int = 100) -> str:
    """The exit-code table as plain text for ``--help``."""
    import textwrap

    lines = ["exit codes:"]
    for code, meaning in EXIT_CODES.items():
        lines += textwrap.wrap(meaning, width, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
    return "\n".join(lines)


def markdown() -> str:
    """The exit-code table in Markdown (docs/scenarios.md holds it; a test keeps the two in sync)."""
    rows = ["| code | meaning |", "| --- | --- |"]
    rows += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(rows)
