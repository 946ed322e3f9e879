"""Outgoing messages: the standard library's legacy ``email.mime`` classes (policy compat32),
flattened once to the bytes that go after DATA.

An ``email.message.EmailMessage`` with the default policy parses every header as it is set and
refolds it through the header registry when aiosmtplib flattens the message: with
``set_content`` that was over a millisecond of worker CPU per notice (docs/PERFORMANCE.md,
section 1). The legacy classes keep headers as strings or ``email.header.Header`` objects and
fold them without re-parsing (a value that is not ASCII, such as a subject, in RFC 2047 encoded
words). Bodies are in UTF-8, base64 (``email.charset``'s choice for UTF-8), so a message is 7-bit
clean whatever the server offers, and a boundary beginning with ``=_`` can occur in no body
(base64 has no ``_``): nothing a customer writes can end a part.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.utils import formataddr

_WIRE = email_policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class Mail:
    """A message ready for the SMTP session: its envelope and its bytes."""

    sender: str  # MAIL FROM
    recipients: tuple[str, ...]  # RCPT TO
    data: bytes  # after DATA, CRLF line ends
    utf8: bool = False  # an address is not ASCII: the server must offer SMTPUTF8 (RFC 6531)

    async def send(self, client) -> None:
        """Sends it in ``client``'s session (an ``aiosmtplib.SMTP``): MAIL, RCPT, DATA."""
        options = ["SMTPUTF8", "BODY=8BITMIME"] if self.utf8 else []  # aiosmtplib refuses if SMTPUTF8 is not offered
        await client.sendmail(self.sender, list(self.recipients), self.data, mail_options=options)


def address_header(field: str, name: str, address: str, utf8: bool = False) -> str | Header:
    """The value of the header ``field`` (``From``, ``To``): an ASCII name quoted by ``formataddr``
    when it holds specials (compat32 folds it at its spaces and keeps the quotes); any other name in
    RFC 2047 encoded words, as many as fit the lines (Python 3.11's registry reads a space between
    two of them: CPython gh-128110). With ``utf8`` (SMTPUTF8), the name and address as they are."""
    if utf8:
        return str(Address(display_name=name, addr_spec=address))
    if name.isascii():
        return formataddr((name, address))
    header = Header(name, "utf-8", header_name=field)  # its first line leaves room for "To: "
    header.append(f"<{address}>", "us-ascii")
    return header


def flatten(message: Message, utf8: bool = False) -> bytes:
    """The bytes after DATA, CRLF line ends. With ``utf8`` the headers are written in UTF-8
    (the SMTPUTF8 policy, as aiosmtplib's ``send_message`` did); compat32 would encode them."""
    out = io.BytesIO()
    BytesGenerator(out, policy=email_policy.SMTPUTF8 if utf8 else _WIRE, mangle_from_=False).flatten(message)
    return out.getvalue()


def boundaries(message_id: str) -> tuple[str, str]:
    """Two boundaries, neither a prefix of the other, the same for every attempt at a message
    (a retry sends the same bytes)."""
    token = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
    return f"=_a{token}", f"=_m{token}"
