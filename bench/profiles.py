"""Summarise a py-spy speedscope profile: ``python -m bench.profiles FILE [--top 25] [--match TEXT]``.

Prints the functions with the most samples on the stack (inclusive) and on top (self),
as shares of all samples of every thread of the worker.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int = 25, match: str = "", idle: bool = False) -> str:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]

    def label(i: int) -> str:
        f = frames[i]
        where = f.get("file", "")
        for marker in ("site-packages/", "/main/", "lib/python3"):
            if marker in where:
                where = where.split(marker, 1)[1]
                break
        return f"{f['name']} ({where}:{f.get('line', '')})"

    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"]):
            names = [label(i) for i in stack]
            if not idle and names and any(k in names[-1] for k in ("select (", "epoll", "_wait (", "wait (threading",
                                                                      "_worker (concurrent", "poll (")):
                continue  # a thread waiting is not work
            total += weight
            for name in set(names):
                inclusive[name] += weight
            if names:
                own[names[-1]] += weight
    lines = [f"{path.name}: {total} busy samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title}")
        shown = 0
        for name, weight in counter.most_common():
            if match and match not in name:
                continue
            lines.append(f"{100 * weight / max(total, 1):5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="")
    parser.add_argument("--idle", action="store_true", help="count waiting threads too")
    args = parser.parse_args()
    print(summarise(args.path, args.top, args.match, args.idle))


if __name__ == "__main__":
    main()
