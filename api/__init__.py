"""HTTP entry point: the JSON API (``/api``, OpenAPI at ``/openapi.json``) and the
server-rendered supervisor console (``/console``). Thin: it authenticates, checks
the role of every request against ``app.authorization.ROLE_MATRIX`` and calls the
application services; business rules stay in ``domain``."""
