"""Acceptance: notices in the customer's language (docs/LANGUAGES.md) through the command line and
the real stack. Invoices of a German, a French, a Spanish and a Japanese customer are imported and
opened as cases (the customer's ``language`` column of the import); every notice of the ladder
(friendly, firm, final) reaches the SMTP sink in that language, with the self-service link sentence,
the interest and compensation lines (EU customers) and amounts and dates in the language's formats;
the final notice's PDF letter is in the same language."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.acceptance.stack import FAST_POLICY, ROOT, eventually

TODAY = datetime.now(timezone.utc).date()
DUE = TODAY - timedelta(days=20)
NBSP, NNBSP = "\u00a0", "\u202f"
MONTHS = {
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(),
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split(),
}
DE_DUE = f"fällig am {DUE.day}. {MONTHS['de'][DUE.month - 1]} {DUE.year}"
FR_DUE = f"échue le {DUE.day}{'er' if DUE.day == 1 else ''} {MONTHS['fr'][DUE.month - 1]} {DUE.year}"
ES_DUE = f"vencida el {DUE.day} de {MONTHS['es'][DUE.month - 1]} de {DUE.year}"

# What a reader of each language expects: the subjects of the three steps, a sentence of the text,
# the self-service link sentence, the interest line, and how the fixed EUR 40 and the invoice's
# amount look (1234.56 EUR before interest; JPY 123456 has no minor unit and no interest).
EXPECTED = {
    "de": {"customer": "C-DE-9", "country": "DE", "currency": "EUR", "amount": "1234.56",
           "subjects": ("Zahlungserinnerung: Rechnung LANG-DE-1 ist fällig", "2. Mahnung: Zahlung für Rechnung LANG-DE-1",
                        "Letzte Mahnung: Rechnung LANG-DE-1 erheblich überfällig"),
           "text": "Sehr geehrte Damen und Herren,", "link": "Ihre offenen Rechnungen einsehen",
           "interest": "davon Verzugszinsen bis zum", "compensation": f"Verzugspauschale für Beitreibungskosten: 40,00{NBSP}€",
           "money": re.compile(rf"\b1\.2\d\d,\d\d{NBSP}€ offen"), "date": DE_DUE,
           "letter": "Letzte Mahnung",
           "within": "innerhalb der nächsten 1 Sekunde"},
    "fr": {"customer": "C-FR-9", "country": "FR", "currency": "EUR", "amount": "1234.56",
           "subjects": (f"Rappel amiable{NBSP}: facture LANG-FR-1 échue",
                        f"Deuxième relance{NBSP}: paiement en retard pour la facture LANG-FR-1",
                        f"Dernière relance{NBSP}: facture LANG-FR-1 gravement en retard"),
           "text": "Madame, Monsieur,", "link": "Consultez vos factures ouvertes",
           "interest": "dont intérêts de retard au", "compensation": f"indemnité forfaitaire pour frais de recouvrement{NBSP}: 40,00{NBSP}€",
           "money": re.compile(rf"1{NNBSP}2\d\d,\d\d{NBSP}€ restant dû"), "date": FR_DUE,
           "letter": "Dernière relance",
           "within": f"sous 1{NBSP}seconde"},
    "es": {"customer": "C-ES-9", "country": "ES", "currency": "EUR", "amount": "1234.56",
           "subjects": ("Recordatorio de pago: factura LANG-ES-1 vencida", "Segundo recordatorio: pago pendiente de la factura LANG-ES-1",
                        "Último aviso: factura LANG-ES-1 con un retraso considerable"),
           "text": "Estimados señores:", "link": "Consulten sus facturas pendientes",
           "interest": "de los cuales intereses de demora hasta el", "compensation": f"indemnización por costes de cobro: 40,00{NBSP}€",
           "money": re.compile(rf"1\.2\d\d,\d\d{NBSP}€ pendiente"), "date": ES_DUE,
           "letter": "Último aviso",
           "within": "en un plazo de 1 segundo"},
    "ja": {"customer": "C-JP-9", "country": "JP", "currency": "JPY", "amount": "123456",
           "subjects": ("お支払いのお願い：請求書 LANG-JA-1 の支払期日が過ぎております",
                        "再督促：請求書 LANG-JA-1 のお支払いが遅延しております",
                        "最終督促：請求書 LANG-JA-1 のお支払いが大幅に遅延しております"),
           "text": "御中", "link": "未払いの請求書の確認", "interest": None, "compensation": None,
           "money": re.compile(r"未払額 ￥123,456"), "date": f"支払期日 {DUE.year}年{DUE.month}月{DUE.day}日",
           "letter": "LANG-JA-1",
           "within": "1 秒以内"},
}


def row(language: str) -> str:
    e = EXPECTED[language]
    invoice = f"LANG-{language.upper()}-1"
    return (f"{invoice},{e['customer']},{e['customer']} Handels AG,ap@{e['customer'].lower()}.test,{e['country']},"
            f"{language},{e['currency']},{e['amount']},{DUE - timedelta(days=30)},{DUE},A")


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    policy = tmp_path_factory.mktemp("languages-policy") / "policy.toml"
    section = (ROOT / "tests" / "data" / "interest.toml").read_text()
    policy.write_text(FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-languages"')
                      + "\n" + section)
    ledger = ledger_for(policy=policy)
    ledger.import_invoices([row(language) for language in EXPECTED])
    for language in EXPECTED:
        ledger.ok("case", "open", f"LANG-{language.upper()}-1")
    return ledger


@pytest.mark.parametrize("language", list(EXPECTED))
def test_every_notice_of_the_ladder_reaches_the_customer_in_their_language(ledger, language):
    e = EXPECTED[language]
    address = f"ap@{e['customer'].lower()}.test"
    mails = eventually(lambda: (lambda found: found if len(found) >= 3 else None)(ledger.mails(address)), 120,
                       f"three notices to {address}")
    mails = sorted(mails, key=lambda m: m.path.name)[:3]
    for mail, subject in zip(mails, e["subjects"]):
        assert mail.subject.startswith(subject), (mail.subject, subject)
        assert mail.message["Content-Language"] == language
        text = mail.text
        assert e["text"] in text and e["link"] in text and ledger.url in text, text
        assert e["money"].search(text), text
        assert e["date"] in text, text
        if e["interest"]:
            assert e["interest"] in text and e["compensation"] in text, text
        else:
            assert "Verzugszinsen" not in text and "interest" not in text, text
        assert "Dear " not in text and "outstanding" not in text, text  # nothing left in English
        html = mail.message.get_body(("html",)).get_content()
        assert f'<html lang="{language}">' in html and e["link"] in html, html

    from pypdf import PdfReader

    final = mails[2]
    # the time it gives is the policy's after_final (1 s under the test ladder), not a fixed 7 days
    assert e["within"] in final.text, final.text
    pdfs = [part for part in final.message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1, final.message
    letter = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdfs[0].get_content())).pages).split())
    assert e["letter"] in letter and "Final notice" not in letter, letter
