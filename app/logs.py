"""Logging for the worker and the stack: plain text, or one JSON object per line.

``COLLECTIONS_LOG_FORMAT=json`` gives structured lines that carry the case id
whenever the record concerns a case: given explicitly (``extra={"case_id": ...}``,
as the activities do) or derived from the Temporal workflow id (``[prefix]case-<invoice>``)
that the SDK's workflow and activity loggers attach.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from domain.decider import case_uuid

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _case_from_workflow_id(workflow_id: str | None) -> str | None:
    if not workflow_id:
        return None
    _, sep, invoice_id = workflow_id.partition("case-")
    return str(case_uuid(invoice_id)) if sep and invoice_id else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        temporal = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None) or {}
        body: dict = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        case_id = getattr(record, "case_id", None) or _case_from_workflow_id(temporal.get("workflow_id"))
        if case_id:
            body["case_id"] = str(case_id)
        for key in ("workflow_id", "run_id", "activity_type", "attempt", "workflow_type"):
            if key in temporal:
                body[key] = temporal[key]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in body and not key.startswith("temporal_") and key != "case_id":
                body[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
