"""Prometheus metrics of a worker (or the embedded stack).

Two endpoints, both opt-in (empty address: nothing is served):

* ``COLLECTIONS_METRICS_ADDRESS`` (e.g. ``127.0.0.1:9464``), served by prometheus_client:
  the domain counters of ``activities.metrics`` (cases opened, cases closed by
  outcome, notices sent / failed / rejected, events appended, approval decisions),
  gauges read from the projections at scrape time (approvals pending and overdue by
  kind and tier, open cases by status) and the usual process metrics;
* ``COLLECTIONS_SDK_METRICS_ADDRESS`` (e.g. ``127.0.0.1:9465``): the Temporal SDK's own
  runtime metrics (workflow/activity task latencies, poller counts, sticky cache...),
  exported by its Rust core through a ``Runtime`` with a ``PrometheusConfig``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from store.db import Database
from store.schema import approvals, case_summary

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


class ProjectionCollector:
    """Gauges computed from the read models when Prometheus scrapes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self):
        pending = GaugeMetricFamily("collections_approvals_pending", "Approvals waiting for a decision",
                                    labels=["kind", "tier"])
        overdue = GaugeMetricFamily("collections_approvals_overdue", "Pending approvals past their SLA",
                                    labels=["kind", "tier"])
        cases = GaugeMetricFamily("collections_cases", "Cases by status (from the case summary)", labels=["status"])
        up = GaugeMetricFamily("collections_projection_scrape_ok", "1 when the projections could be read")
        try:
            now = datetime.now(timezone.utc)
            with self.db.read() as session:
                grouped = session.execute(
                    select(approvals.c.kind, approvals.c.tier, func.count())
                    .where(approvals.c.status == "pending").group_by(approvals.c.kind, approvals.c.tier)
                ).all()
                late = session.execute(
                    select(approvals.c.kind, approvals.c.tier, func.count())
                    .where(approvals.c.status == "pending", approvals.c.sla_due_at < now)
                    .group_by(approvals.c.kind, approvals.c.tier)
                ).all()
                statuses = session.execute(
                    select(case_summary.c.status, func.count()).group_by(case_summary.c.status)
                ).all()
            for kind, tier, count in grouped:
                pending.add_metric([kind, tier], count)
            for kind, tier, count in late:
                overdue.add_metric([kind, tier], count)
            for status, count in statuses:
                cases.add_metric([status], count)
            up.add_metric([], 1)
        except Exception as error:  # a scrape must not fail because the database is away
            log.warning("metrics: projections unreadable: %s", error)
            up.add_metric([], 0)
        yield from (pending, overdue, cases, up)


_served: dict[str, object] = {}


def serve_metrics(address: str, db: Database) -> None:
    """Serve domain + process metrics at http://ADDRESS/metrics (once per process)."""
    if not address or address in _served:
        return
    import activities.metrics  # noqa: F401  registers the counters

    host, port = split_address(address)
    collector = ProjectionCollector(db)
    REGISTRY.register(collector)
    _served[address] = start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics at http://%s:%d/metrics", host, port)


def sdk_runtime(address: str):
    """A Temporal runtime exporting SDK metrics to Prometheus at ADDRESS (None: the default runtime)."""
    if not address:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    host, port = split_address(address)
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))
