"""Shared benchmark plumbing: report sections printed in pytest's terminal summary.

A benchmark module fills ``terminal_sections[title] = [lines]`` (typically from the
finalizer of a module-scoped fixture, once every benchmark of the module has run); the
lines are printed after pytest-benchmark's own table, so they are not lost to capturing.
"""

import pytest

_SECTIONS = pytest.StashKey[dict[str, list[str]]]()


@pytest.fixture(scope="session")
def terminal_sections(pytestconfig):
    """``dict`` of section title -> lines, printed at the end of the run."""
    return pytestconfig.stash.setdefault(_SECTIONS, {})


def pytest_terminal_summary(terminalreporter, config):
    for title, lines in config.stash.get(_SECTIONS, {}).items():
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)
