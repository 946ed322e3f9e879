"""The command line entry point (`python starter.py`, installed as `collections`).

Thin: parse, authenticate against `app.authorization`, call the use cases in `app/`, print.
`cli.main` holds the root Typer app and the shared helpers; `cli.dunning`, `cli.risk` and
`cli.audit` register their command groups on it when imported.
"""
