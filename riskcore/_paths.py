"""Where the data the project ships lives (``data/`` in a checkout, ``riskcore/_data`` in a wheel)."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The folder of shipped data; ``RISKCORE_DATA`` overrides it."""
    env = os.environ.get("RISKCORE_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data", here.parent / "data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"riskcore's data folder was not found (looked in {here / '_data'} and {here.parent / 'data'}); "
        "set RISKCORE_DATA to its path"
    )
