"""docs/embedding.md's complete example runs as printed and prints what the page shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "embedding.md"
SECTION = "## A complete example"


def _blocks_of_section(kind: str) -> list[str]:
    """The fenced blocks opened by ```kind (kind "" for a plain fence) in the example's
    section, read fence by fence so that a closing fence never opens a block."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    following = text.find("\n## ", start + len(SECTION))
    lines = text[start:following if following != -1 else len(text)].splitlines(True)
    blocks: list[str] = []
    opened: str | None = None  # the info string of the open block
    body: list[str] = []
    for line in lines:
        if line.startswith("```"):
            if opened is None:
                opened, body = line[3:].strip(), []
            else:
                if opened == kind:
                    blocks.append("".join(body))
                opened = None
        elif opened is not None:
            body.append(line)
    return blocks


def _run_example() -> str:
    (code,) = _blocks_of_section("python")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "__embedding_example__"})
    return out.getvalue()


def test_the_embedding_example_runs_and_prints_the_output_the_page_shows():
    printed = _run_example()
    (shown,) = _blocks_of_section("")
    assert printed == shown


def test_the_embedding_example_uses_only_the_public_api():
    (code,) = _blocks_of_section("python")
    assert not re.search(r"\._[a-z]", code), "the example reaches into a private attribute"
    imported = set(re.findall(r"^from (liveopt[\w.]*) import", code, re.MULTILINE))
    assert imported <= {"liveopt", "liveopt.data", "liveopt.engine", "liveopt.optimizer"}
