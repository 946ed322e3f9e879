"""Activity options shared by the workflows: timeouts and retries."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities.contracts import CONCURRENCY_ERROR

# Event-store activities: quick retries; a concurrency error cannot succeed by retrying.
APPEND_TIMEOUT = timedelta(seconds=30)
STORE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10),
                          non_retryable_error_types=[CONCURRENCY_ERROR])

# SMTP: backs off to every five minutes during an outage, until the policy gives up.
SMTP_TIMEOUT = timedelta(seconds=60)
SMTP_HEARTBEAT = timedelta(seconds=10)  # a notice on a worker that died is retried after this
SMTP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=5))
