"""Where `python -m bench` writes: only a full run of every benchmark replaces the recorded
bench/results.json; a quick or partial run (`make bench-quick`, `--only`) writes beside it."""

from __future__ import annotations

from bench.__main__ import BENCHMARKS, RESULTS, default_output
from bench.common import OUT


def test_only_a_full_run_of_every_benchmark_replaces_the_recorded_results():
    assert default_output("full", list(BENCHMARKS)) == RESULTS
    assert default_output("quick", list(BENCHMARKS)) == OUT / "results-quick-throughput-store-reads-sweep.json"
    assert default_output("full", ["throughput"]) == OUT / "results-full-throughput.json"
    assert default_output("quick", ["simulate"]).parent == OUT
