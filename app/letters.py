"""`case letter`: a notice's PDF letter rendered again from what its ReminderSent recorded,
checked against the SHA-256 of the bytes that were attached (activities/letters.py)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from activities.contracts import NoticeRequest
from activities.letters import LetterRenderer, letter_name, sha256
from app.context import Context
from domain import events as ev
from domain.errors import DomainError
from domain.money import Money


def reproduce(ctx: Context, case_id: str, invoice_id: str, seq: int, out: Path | None) -> dict:
    sent = [e for e in ctx.store.load(UUID(case_id)) if isinstance(e, ev.ReminderSent) and e.seq == seq]
    if not sent:
        raise DomainError(f"case {invoice_id} sent no notice {seq}", "seq")
    event = sent[0]
    if event.letter is None or event.letter_sha256 is None:
        raise DomainError(f"notice {seq} of case {invoice_id} ({event.step}) went out without a PDF letter "
                          f"(only final notices have one)", "seq")
    letter = dict(event.letter)
    credit = [Money.model_validate(c) for c in letter.pop("credit", [])]  # what the letter stated, if any
    request = NoticeRequest.model_validate(letter)
    data = LetterRenderer().pdf(request, credit)
    path = out or Path(letter_name(request))
    path.write_bytes(data)
    digest = sha256(data)
    return {"case_id": case_id, "invoice_id": invoice_id, "seq": seq, "file": str(path), "bytes": len(data),
            "sha256": digest, "sent_sha256": event.letter_sha256, "same": digest == event.letter_sha256}
