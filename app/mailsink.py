"""A local SMTP sink (aiosmtpd): keeps every message it accepts, in memory and as .eml files.

Used by `up` (messages land in .data/mail/) and by the tests, which can also
make it answer 550 for chosen recipients or refuse connections entirely.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    received_at: float = field(default_factory=time.time)  # when the sink accepted it (epoch seconds)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address.lower() in self.sink.rejected_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.sink.keep(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message), envelope.content)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailSink:
    def __init__(self, directory: Path | None = None, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port()
        self.messages: list[ReceivedMail] = []
        self.rejected_recipients: set[str] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def keep(self, mail: ReceivedMail, raw: bytes) -> None:
        with self._lock:
            self.messages.append(mail)
            count = len(self.messages)
        if self.directory is not None:
            safe_id = "".join(c if c.isalnum() or c in "-." else "_" for c in mail.message_id.strip("<>"))
            (self.directory / f"{count:05d}-{safe_id}.eml").write_bytes(raw)

    def start(self) -> MailSink:
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def to(self, address: str) -> list[ReceivedMail]:
        with self._lock:
            return [m for m in self.messages if address in m.recipients]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
