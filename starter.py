"""Command line entry point: `python starter.py --help` (also installed as `collections`)."""

from app.cli import main

if __name__ == "__main__":
    main()
