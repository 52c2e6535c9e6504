"""The README's worked example runs and prints exactly the output shown under it."""
import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_prints_what_it_shows():
    text = README.read_text()
    found = re.search(r"```python\n(.*?)```\s*\nprints\s*\n\s*```text\n(.*?)```", text, flags=re.S)
    assert found, "the README's example must be a python block followed by 'prints' and a text block"
    code, shown = found.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == shown.strip()
