"""riskcore.malloc: glibc keeps freed arrays for reuse in the command-line process."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "import riskcore.malloc as m; print(m.tune(), m.tune())"


def _run(env_value=None) -> str:
    import os

    env = dict(os.environ)
    env.pop("RISKCORE_MALLOC", None)
    if env_value is not None:
        env["RISKCORE_MALLOC"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env,
                          check=True).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_takes_on_glibc_once_and_can_be_turned_off():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _run() == ["True", "True"]
    assert _run("default") == ["False", "False"]
    assert _run(" Default ") == ["False", "False"]


def test_cli_tunes_before_running(monkeypatch, capsys):
    import riskcore.cli as cli
    import riskcore.malloc as malloc

    calls = []
    monkeypatch.setattr(malloc, "tune", lambda: calls.append(1) or True)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == [1]
