"""Build the Cython extensions of ``liveopt._core``.

Every ``.pyx`` under ``src/liveopt/_core`` becomes one extension module. All Cython
directives live here, in one place. ``LIVEOPT_CYTHON_ANNOTATE=1`` writes the HTML
annotation next to each module, to see where Python overhead remains on the hot path.
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from Cython.Compiler import Options
from setuptools import Extension, setup

Options.warning_errors = True

COMPILER_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": False,  # indices are validated at the Python boundary
    "wraparound": False,
    "cdivision": True,  # divisors are timeframe lengths checked > 0 at construction
    "initializedcheck": False,
    "embedsignature": True,
}

extensions = [
    Extension(
        name=".".join(path.with_suffix("").parts[1:]),
        sources=[str(path)],
        extra_compile_args=["-O3"],
    )
    for path in sorted(Path("src/liveopt/_core").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        annotate=os.environ.get("LIVEOPT_CYTHON_ANNOTATE") == "1",
    ),
)
