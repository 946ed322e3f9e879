"""Temporal activities: all I/O (event store, SMTP, ledger). Each one idempotent."""
