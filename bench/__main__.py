"""Benchmarks: ``python -m bench [--quick] [--only NAME ...] [--profile] [--fresh]``.

Prints a table and writes bench/results.json. Every figure is a ratio against a
baseline measured in the same run on the same machine (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table

from bench.common import OUT, ROOT, Result

BENCHMARKS = ("throughput", "store", "reads", "sweep")  # "footprint" is measured by "sweep" (same cases);
# "simulate" runs on its own (`python -m bench --only simulate`): with it `make bench` would pass 20 minutes
RESULTS = ROOT / "bench" / "results.json"
STARTED_AT = datetime.now(timezone.utc).isoformat(timespec="seconds")


def _module(name: str):
    import importlib

    return importlib.import_module({
        "throughput": "bench.throughput", "store": "bench.store", "reads": "bench.reads",
        "footprint": "bench.sweep", "sweep": "bench.sweep", "simulate": "bench.simulate",
    }[name])


def table(results: list[Result], title: str) -> Table:
    t = Table(title=title, show_lines=False)
    for column in ("benchmark", "value", "unit", "baseline", "ratio", "target", "met", "spread / note"):
        t.add_column(column, overflow="fold")
    for r in results:
        met = "" if r.met is None else ("[green]yes[/green]" if r.met else "[red]no[/red]")
        t.add_row(r.name, f"{r.value:g}", r.unit,
                  "" if r.baseline is None else f"{r.baseline:g} {r.baseline_name}".strip(),
                  "" if r.ratio is None else f"{r.ratio:.2f}", r.target, met,
                  "; ".join(x for x in (r.spread, r.note) if x))
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest configurations (< 3 minutes)")
    parser.add_argument("--only", action="append", choices=(*BENCHMARKS, "footprint", "simulate"),
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles of the worker into bench/out/")
    parser.add_argument("--output", help="where to write the JSON results (default: bench/results.json for a "
                                         "full run of every benchmark, bench/out/results-*.json otherwise)")
    parser.add_argument("--fresh", action="store_true",
                        help="build the read-side datasets again (and time their load and rebuild) instead of "
                             "using the copies cached in bench/out/")
    args = parser.parse_args(argv)
    if args.fresh:
        import bench.dataset

        bench.dataset.FRESH = True
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    console = Console(width=max(160, Console().width))
    names = list(dict.fromkeys("sweep" if n == "footprint" else n for n in (args.only or BENCHMARKS)))
    results: list[Result] = []
    timings: dict[str, float] = {}
    failed: list[str] = []
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    args.output = args.output or str(default_output(mode, names))
    for name in names:
        console.print(f"[bold]{name}[/bold] ...", highlight=False)
        t0 = time.perf_counter()
        try:
            found = asyncio.run(_module(name).run(quick=args.quick, profile=args.profile))
        except Exception as error:  # noqa: BLE001 - reported as the benchmark's result; the others still run
            logging.exception("benchmark %s failed", name)
            found = [Result(name=f"{name}: FAILED", value=0, unit="", met=False,
                            note=f"{type(error).__name__}: {error}; logs in bench/out/tmp/")]
            failed.append(name)
        timings[name] = round(time.perf_counter() - t0, 1)
        for r in found:
            r.extra.setdefault("benchmark", name)
        results.extend(found)
        console.print(table(found, f"{name} ({timings[name]} s)"))
        write(args.output, mode, started, timings, failed, results)  # what is measured so far survives a crash
    total = round(time.perf_counter() - started, 1)
    console.print(table(results, f"bench ({mode}, {total} s)"))
    write(args.output, mode, started, timings, failed, results)
    console.print(f"wrote {args.output}", highlight=False)
    return 1 if failed else 0


def default_output(mode: str, names: list[str]):
    """The recorded results (bench/results.json, kept in the repository and quoted by
    docs/PERFORMANCE.md) are those of a full run of every benchmark: a quick or partial run
    writes beside them in bench/out/ instead of replacing them with a subset."""
    if mode == "full" and set(BENCHMARKS) <= set(names):
        return RESULTS
    return OUT / f"results-{mode}-{'-'.join(names)}.json"


def write(path: str, mode: str, started: float, timings: dict, failed: list, results: list[Result]) -> None:
    document = {
        "mode": mode,
        "started_at": STARTED_AT,
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_benchmark": timings,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "failed": failed,
        "results": [r.as_dict() for r in results],
    }
    with open(path, "w") as f:
        json.dump(document, f, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
