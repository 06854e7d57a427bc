"""Where the compiled core's time goes, function by function: a sampling profile of the
Numba-compiled code that py-spy and perf cannot name on their own.

Numba's JIT code has no symbols for perf (samples land in ``[JIT] tid ...`` anonymous
memory). This script runs a workload with the on-disk cache off (so every kernel is
compiled in the process and its object code is available), writes the load address and
size of every compiled function of the variant pass and the libraries it links, and
``report`` maps perf's sampled instruction addresses onto them. perf needs no hardware
counters for this (``-e cpu-clock``), so it works on this VM, where ``perf stat`` reports
cycles as "not supported".

Usage (about four minutes, most of it the cold compile)::

    perf record -e cpu-clock -F 4000 -o /tmp/jit.data -- \\
        env LIVEOPT_NUMBA_CACHE=0 .venv/bin/python benchmarks/jit_profile.py run grid /tmp/jit.syms
    .venv/bin/python benchmarks/jit_profile.py report /tmp/jit.data /tmp/jit.syms

``run grid`` is the RSI grid (1,000 variants x 100,000 1m bars, benchmark case 4);
``run ticks`` the 1m tick case (10,000 variants x 50,000 ticks, case 5).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _workload(name: str):
    import engine_process
    from workloads import bars_100k, rsi_grid_params, ticks

    from liveopt import Engine, EngineConfig
    from liveopt.optimizer import generate_variants

    if name == "grid":
        columns = engine_process.bar_columns(bars_100k())
        variants = engine_process.rsi_grid_variants(rsi_grid_params(1000))
        engine_process.warm_up()
        return lambda: Engine(engine_process.GRID_CONFIG, variants,
                              keep_records=False).on_candles(*columns)
    if name == "ticks":
        data = ticks(50_000)
        columns = tuple(data[k] for k in ("ts", "price", "size", "side"))
        variants = generate_variants(10_000, "random", 7, engine_process.ONE_MINUTE)
        config = EngineConfig(max_loss_pct=100.0, max_drawdown_pct=100.0,
                              halt_below_pct=100.0, baseline_max_drawdown_pct=100.0)
        # Compile first, so the timed run (and most samples) is the kernel at work.
        Engine(config, generate_variants(1, "random", 7, engine_process.ONE_MINUTE),
               keep_records=False).on_trades(*(c[:100] for c in columns))
        return lambda: Engine(config, variants, keep_records=False).on_trades(*columns)
    raise SystemExit(f"unknown workload {name!r}: grid or ticks")


def _function_table(out: Path) -> int:
    # Every function of the variant pass's library and of the libraries it links: load
    # address, size and name (from the object code, which exists only after a compile).
    from liveopt._core import variant_pass

    if os.environ.get("LIVEOPT_NUMBA_CACHE", "1") != "0":
        raise SystemExit("run with LIVEOPT_NUMBA_CACHE=0: cached code has no object file")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cres in variant_pass.run_events_nb.overloads.values():
            todo, seen = [cres.library], set()
            while todo:
                library = todo.pop()
                if id(library) in seen:
                    continue
                seen.add(id(library))
                todo.extend(getattr(library, "_linking_libraries", ()))
                try:
                    code = library._get_compiled_object()
                except (RuntimeError, ValueError):  # no object code of its own (runtime)
                    continue
                path = Path(tmp) / f"{len(seen)}.o"
                path.write_bytes(code)
                listing = subprocess.run(["nm", "-S", "--defined-only", str(path)],
                                         capture_output=True, text=True, check=True).stdout
                for line in listing.splitlines():
                    parts = line.split()
                    if len(parts) == 4 and parts[2] in "tT":
                        address = library.get_pointer_to_function(parts[3])
                        if address:
                            rows.append(f"{address:x} {int(parts[1], 16)} {parts[3]}")
    out.write_text("\n".join(rows) + "\n")
    return len(rows)


def _short(symbol: str) -> str:
    # "_ZN7liveopt5_core12variant_pass11_visit_barsB4v35..." -> "variant_pass._visit_bars"
    prefix = ""
    if symbol.startswith("cfunc."):
        prefix, symbol = "cfunc ", symbol[len("cfunc."):]
    if symbol.startswith("_ZN7cpython"):
        prefix, symbol = "wrapper ", "_ZN" + symbol[len("_ZN7cpython"):]
    rest, parts = symbol[3:], []
    while rest[:1].isdigit():
        digits = len(rest) - len(rest.lstrip("0123456789"))
        size = int(rest[:digits])
        parts.append(rest[digits:digits + size])
        rest = rest[digits + size:]
    return prefix + ".".join(parts[2:] or parts)


def report(perf_data: Path, table: Path) -> None:
    functions = []
    for line in table.read_text().splitlines():
        address, size, name = line.split()
        functions.append((int(address, 16), int(size), _short(name)))
    script = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "ip,dso"],
                            capture_output=True, text=True, check=True).stdout
    jit = [int(line.split()[0], 16) for line in script.splitlines()
           if "perf-" in line or "[JIT]" in line or "[unknown]" in line]
    counts: collections.Counter[str] = collections.Counter()
    for ip in jit:
        hit = next((name for start, size, name in functions if start <= ip < start + size),
                   "(other compiled code)")
        counts[hit] += 1
    total = sum(counts.values()) or 1
    print(f"{total:,} samples in compiled code")
    for name, n in counts.most_common(15):
        print(f"{n / total * 100:6.1f} %  {n:7,}  {name}")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "run":
        work = _workload(argv[1])
        start = time.perf_counter()
        work()
        print(f"{argv[1]}: {time.perf_counter() - start:.2f} s", file=sys.stderr)
        print(f"{_function_table(Path(argv[2]))} functions", file=sys.stderr)
    elif len(argv) == 3 and argv[0] == "report":
        report(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
