"""Signed customer links (app/links.py) and the page's rate limit (api/routes_customer.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous.timed import TimestampSigner

from api.routes_customer import RateLimit
from app.links import CustomerLinks, LinkRefused
from app.settings import Settings

DAY = timedelta(days=1)


def links(tmp_path, key: str | None = "k" * 32, url: str = "https://pay.example.com/") -> CustomerLinks:
    return CustomerLinks(Settings(data_dir=tmp_path, link_key=key, public_url=url))


def test_a_link_names_one_customer_and_starts_with_the_public_address(tmp_path):
    signer = links(tmp_path)
    url = signer.url_for("C-42")
    assert url.startswith("https://pay.example.com/c/")
    assert signer.customer_of(url.rsplit("/", 1)[1], DAY) == "C-42"


def test_an_altered_link_or_one_signed_with_another_key_is_refused(tmp_path):
    token = links(tmp_path).token_for("C-42")
    for bad in (token[:-2] + ("xx" if not token.endswith("xx") else "yy"), token + "a", "garbage",
                links(tmp_path, key="z" * 32).token_for("C-42")):
        with pytest.raises(LinkRefused) as refused:
            links(tmp_path).customer_of(bad, DAY)
        assert refused.value.reason == "invalid" and refused.value.field == "link"


def test_a_link_expires_after_the_policy_s_time(tmp_path, monkeypatch):
    signer = links(tmp_path)
    now = TimestampSigner.get_timestamp(signer._serializer.make_signer())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now - 3601)
    old = signer.token_for("C-42")
    monkeypatch.undo()
    assert signer.customer_of(old, timedelta(hours=2)) == "C-42"
    with pytest.raises(LinkRefused) as refused:
        signer.customer_of(old, timedelta(hours=1))
    assert refused.value.reason == "expired"


def test_without_a_key_every_process_of_one_data_dir_shares_a_generated_one(tmp_path):
    first = links(tmp_path, key=None).token_for("C-1")
    assert (tmp_path / "link-key").stat().st_mode & 0o777 == 0o600
    assert links(tmp_path, key=None).customer_of(first, DAY) == "C-1"
    with pytest.raises(LinkRefused):
        links(tmp_path / "other", key=None).customer_of(first, DAY)


def test_a_short_key_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="COLLECTIONS_LINK_KEY"):
        links(tmp_path, key="short")


def test_one_link_gets_a_limited_number_of_requests_a_minute():
    limit = RateLimit()
    assert all(limit.allow("t", 3, now=100.0 + i) for i in range(3))
    assert not limit.allow("t", 3, now=103.0)
    assert limit.allow("other", 3, now=103.0)
    assert limit.allow("t", 3, now=160.5)  # the first request left the window
