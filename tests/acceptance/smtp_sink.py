"""A stand-alone SMTP sink for the acceptance tests: every message it accepts is written to
DIRECTORY as NNNNN.eml; a recipient whose address starts with "bounce" is refused with a
permanent 550, as a server refuses an unknown mailbox (test infrastructure, not project code:
the project's own sink only runs inside `starter.py up`).

    python tests/acceptance/smtp_sink.py DIRECTORY PORT

Prints "ready" once it listens; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class WriteEml:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address.lower().startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        with self.lock:
            number = next(self.numbers)
        # the envelope recipients first (Bcc is not in the message), then the message as sent
        header = "".join(f"X-Envelope-To: {r}\r\n" for r in envelope.rcpt_tos).encode()
        partial = self.directory / f".{number:05d}.eml.part"
        partial.write_bytes(header + envelope.content)
        os.replace(partial, self.directory / f"{number:05d}.eml")  # readers never see half a message
        return "250 Message accepted for delivery"


def main() -> None:
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(WriteEml(directory), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
