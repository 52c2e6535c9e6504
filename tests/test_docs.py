"""The code examples of the docs pages (docs/*.md) and the README run and print what they show.

Convention for examples in Markdown:

* a fenced block opened with ```python is an example; every one of them is run;
* when the next thing after it is a fenced block opened with ```text, that block is the output
  the example prints.  Blank lines may separate the two, and so may one line that says
  ``prints`` or ``Output:`` (case and a trailing colon do not matter);
* the examples of one file run in order in one namespace, so a later block may use what an
  earlier one defined; each file starts from a fresh namespace;
* printed and shown output are compared line by line, ignoring trailing whitespace on each line
  and blank lines at the end;
* other blocks (```bash, ```console, ```text on their own, ...) are not run, and neither is a
  python block whose line just before the opening fence is the comment ``<!-- not run -->``
  (invisible on the rendered page): use it only for a sketch that cannot run as it stands,
  e.g. one that reads files the reader has to supply.
"""
from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

FENCE = re.compile(r"^```\s*([\w+-]*)[^`]*$")
OUTPUT_LEAD = re.compile(r"^\s*(prints|output)\s*:?\s*$", re.IGNORECASE)
NOT_RUN = "<!-- not run -->"


@dataclass
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    end: int  # 0-based index of the line after the closing fence


@dataclass
class Example:
    code: str
    line: int
    shown: str | None  # None: the example shows no output


def fenced_blocks(lines: list[str]) -> list[Block]:
    blocks, i = [], 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i >= len(lines):
            raise AssertionError(f"line {start + 1}: a ``` block is never closed")
        blocks.append(Block(opened.group(1).lower(), "".join(lines[start + 1:i]), start + 1, i + 1))
        i += 1
    return blocks


def examples(path: Path) -> list[Example]:
    """The python blocks of a Markdown file, each with the text block that shows its output."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    blocks = fenced_blocks(lines)
    by_start = {b.line - 1: b for b in blocks}
    found = []
    for block in blocks:
        if block.lang != "python":
            continue
        if block.line >= 2 and lines[block.line - 2].strip() == NOT_RUN:
            continue
        shown = None
        j, lead_seen = block.end, False
        while j < len(lines):
            if not lines[j].strip():
                j += 1
            elif not lead_seen and OUTPUT_LEAD.match(lines[j]):
                lead_seen = True
                j += 1
            else:
                break
        after = by_start.get(j)
        if after is not None and after.lang == "text":
            shown = after.text
        found.append(Example(block.text, block.line, shown))
    return found


def normalise(text: str) -> list[str]:
    out = [line.rstrip() for line in text.splitlines()]
    while out and not out[-1]:
        out.pop()
    return out


def test_the_convention_finds_examples():
    """Guard against a parser that silently finds nothing."""
    counted = {p.name: sum(e.shown is not None for e in examples(p)) for p in PAGES}
    assert counted["README.md"] >= 1
    assert counted["simulation.md"] >= 5
    assert sum(counted.values()) >= 20


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_print_what_they_show(page, tmp_path):
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # an example that writes files writes them here
    try:
        for example in examples(page):
            where = f"{page.name}, example at line {example.line}"
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(example.code, f"{page.name}:{example.line}", "exec"), namespace)
            if example.shown is None:
                continue
            got, shown = normalise(out.getvalue()), normalise(example.shown)
            if got != shown:
                diff = "\n".join(difflib.unified_diff(shown, got, "shown", "printed", lineterm=""))
                pytest.fail(f"{where} prints something else than it shows:\n{diff}")
    finally:
        os.chdir(cwd)
