"""Activity names and payloads shared by workflows and the worker.

Workflows import only this light module (pydantic models), never the
activity implementations with their database and SMTP clients.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.events import AnyEvent, Customer
from domain.money import Money

APPEND_EVENTS = "append_events"
LOAD_CASE = "load_case"
LOAD_POLICY = "load_policy"
SEND_NOTICE = "send_notice"

CONCURRENCY_ERROR = "ConcurrencyError"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class AppendRequest(_Model):
    case_id: UUID
    expected_version: int
    events: list[AnyEvent]
    metadata: dict[str, Any] = {}


class AppendReply(_Model):
    version: int
    already_appended: bool


class LoadCaseReply(_Model):
    events: list[AnyEvent]


class NoticeRequest(_Model):
    case_id: UUID
    seq: int
    level: int
    step: str
    final: bool
    invoice_id: str
    customer: Customer
    amount_due: Money
    balance: Money
    fee: Money | None
    due_date: date
    issue_date: date


class NoticeResult(_Model):
    message_id: str
    recipient: str
    delivered: bool
    permanent: bool = False
    error: str = ""
    already_sent: bool = False
