"""Markdown table of a results file, for docs/PERFORMANCE.md:
``python -m bench.report [bench/results.json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.__main__ import RESULTS


def markdown(document: dict) -> str:
    lines = [
        f"{document['mode']} run, {document['started_at']}, {document['seconds'] / 60:.1f} min "
        f"({', '.join(f'{k} {v / 60:.1f}' for k, v in document['seconds_per_benchmark'].items())}); "
        f"{document['machine']['cpus']} CPUs, Python {document['machine']['python']}",
        "",
        "| benchmark | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in document["results"]:
        base = "" if r.get("baseline") is None else f"{r['baseline']:g} {r.get('baseline_name', '')}".strip()
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        met = {True: "yes", False: "**no**"}.get(r.get("met"), "")
        lines.append(f"| {r['name']} | {r['value']:g} {r['unit']} | {base} | {ratio} | {r.get('target', '')} | {met} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    sys.stdout.write(markdown(json.loads(path.read_text())))
