"""CPU per notice of building its message: ``python -m bench.notice_cpu [--rounds 7] [--profile]``.

What the notice activity does on the worker's CPU for every notice before the SMTP session
sends it, measured in this process (``time.process_time``): rendering the notice (Jinja2 and
Babel, ``NoticeRenderer.render``), building its message (``build_message``) and making the
bytes that go after DATA (for an ``email.message.EmailMessage``, what aiosmtplib's
``send_message`` does: the envelope read from the headers and the message flattened).

The notices are the benchmark's first notice (friendly, one invoice, with the customer's
self-service link), one per language, each to a customer whose name is in that language's
script; plus a final notice with a 40 KB PDF attached (fixed bytes: rendering the PDF is not
measured). Baseline, measured in the same run: a minimal plain-text ``EmailMessage`` (From,
To, Subject, one ASCII body of the same size as the notice's two bodies) with the standard
library's default policy, built and flattened the same way. Figures are medians of the
rounds, in microseconds per notice; the ratio is notice / baseline (lower is cheaper).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, datetime, timezone
from email.message import EmailMessage
from uuid import UUID

from activities.contracts import NoticeRequest
from activities.notices import SmtpSettings, message_id_for
from activities.rendering import NoticeRenderer, build_message
from domain.events import Customer
from domain.money import Money

NAMES = {  # a customer per language, named in its script
    "en": ("Acme Supplies Ltd", "USD"), "de": ("Müller & Söhne GmbH", "EUR"), "fr": ("Société Générale d'Équipement", "EUR"),
    "es": ("Peña y Núñez S.L.", "EUR"), "zh-CN": ("深圳华强电子有限公司", "CNY"), "ja": ("株式会社山田製作所", "JPY"),
}
SENT_AT = datetime(2026, 2, 10, 9, 30, tzinfo=timezone.utc)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 160  # 40 KB of binary


def notices() -> list[NoticeRequest]:
    made = []
    for i, (language, (name, currency)) in enumerate(NAMES.items()):
        amount = "123450" if currency == "JPY" else "1234.50"
        made.append(NoticeRequest(
            case_id=UUID(int=i + 1), seq=1, level=1, step="friendly", final=False, invoice_id=f"INV-20{i:03d}",
            customer=Customer(customer_id=f"C-{i}", name=name, email=f"ap{i}@customer.test", country="DE",
                              language=language),
            amount_due=Money.of(amount, currency), balance=Money.of(amount, currency), fee=None,
            due_date=date(2026, 2, 4), issue_date=date(2026, 1, 5),
        ))
    return made


def final_notice() -> NoticeRequest:
    return notices()[1].model_copy(update={"seq": 3, "level": 3, "step": "final", "final": True,
                                           "fee": Money.of("40.00", "EUR"), "issued_on": date(2026, 3, 1)})


def wire(message) -> bytes:
    """The bytes after DATA: an ``EmailMessage`` the way aiosmtplib's ``send_message`` makes them
    (envelope from the headers, flattened), else the message's own ``data``."""
    if isinstance(message, EmailMessage):
        from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

        extract_sender(message), extract_recipients(message)
        return flatten_message(message)
    return message.data


def notice_message(renderer: NoticeRenderer, request: NoticeRequest, smtp: SmtpSettings,
                   attachments: list[tuple[str, bytes]] = ()) -> bytes:
    return wire(build_message(
        renderer.render([request]), message_id=message_id_for(request.case_id, request.seq, smtp.message_domain),
        sender=smtp.sender, recipient_name=request.customer.name, recipient_email=request.customer.email,
        sent_at=SENT_AT, attachments=attachments,
    ))


def baseline_message(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "ar@collections.local"
    message["To"] = "ap@customer.test"
    message["Subject"] = "Payment reminder"
    message.set_content(("x" * 71 + "\n") * (size // 72))
    return wire(message)


def per_call(fn, count: int) -> float:
    """CPU microseconds per call of ``fn`` over ``count`` calls."""
    started = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notice_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=300, help="messages of each kind per round")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the notices instead")
    args = parser.parse_args(argv)

    smtp = SmtpSettings()
    renderer = NoticeRenderer(link_for=lambda customer: f"https://pay.collections.local/c/{customer}?t=" + "k" * 43)
    requests = notices()
    final = final_notice()
    letter = [(f"final-notice-{final.invoice_id}-3.pdf", PDF)]
    rendered = [renderer.render([r]) for r in requests]
    size = round(statistics.mean(len(n.text.encode()) + len(n.html.encode()) for n in rendered))

    def all_languages() -> None:
        for request in requests:
            notice_message(renderer, request, smtp)

    def render_only() -> None:
        for request in requests:
            renderer.render([request])

    kinds = {
        "baseline": (lambda: baseline_message(size), 1),
        "render": (render_only, len(requests)),
        "notice": (all_languages, len(requests)),
        "final+pdf": (lambda: notice_message(renderer, final, smtp, letter), 1),
    }
    for fn, _ in kinds.values():  # warm: templates compiled, locale data loaded
        fn()
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(lambda: [all_languages() for _ in range(args.count // len(requests) + 1)])
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        return 0

    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):  # interleaved, so a noisy moment hits every kind alike
        for kind, (fn, per) in kinds.items():
            samples[kind].append(per_call(fn, max(1, args.count // per)) / per)
    med = {kind: statistics.median(values) for kind, values in samples.items()}
    print(f"CPU per message, median of {args.rounds} rounds of {args.count} (microseconds; ratio to the baseline "
          f"of the same run)")
    print(f"  baseline: minimal plain-text EmailMessage, {size} bytes of body, default policy: "
          f"{med['baseline']:.0f} us  (rounds {min(samples['baseline']):.0f}-{max(samples['baseline']):.0f})")
    for kind, label in (("notice", "notice, rendered + built + bytes, mean of 6 languages"),
                        ("render", "  of it rendering (Jinja2, Babel)"),
                        ("final+pdf", "final notice + 40 KB PDF attached, de")):
        print(f"  {label}: {med[kind]:.0f} us  ratio {med[kind] / med['baseline']:.2f}  "
              f"(rounds {min(samples[kind]):.0f}-{max(samples[kind]):.0f})")
    built = med["notice"] - med["render"]
    print(f"  notice without its rendering (building + bytes): {built:.0f} us  ratio {built / med['baseline']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
