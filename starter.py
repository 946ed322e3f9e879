"""Command line entry point: `python starter.py --help` (also installed as `collections`)."""

import os
import sys

from cli.main import run


def main() -> None:
    code = run()
    # Leave without interpreter finalization: the Temporal client's native runtime
    # threads can still call into Python during it, which crashes at exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
