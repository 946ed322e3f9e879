"""Signed, expiring links to a customer's self-service page (no account needed).

A link is ``COLLECTIONS_PUBLIC_URL/c/<token>``; the token names one customer and the moment it
was issued, signed with ``COLLECTIONS_LINK_KEY`` by itsdangerous (HMAC-SHA256). A changed token
fails its signature; a token older than the policy's ``[self_service] link_valid_for`` is expired.
With no key set, a development key is generated into ``<data dir>/link-key`` (mode 0600), so the
worker (which writes the links into notices) and the web server (which checks them) agree.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.settings import Settings
from domain.errors import DomainError

KEY_FILE = "link-key"
SALT = "collections-engine/customer-link/v1"


class LinkRefused(DomainError):
    """A link that does not open the page: altered, expired or revoked (the message says which)."""

    def __init__(self, message: str, reason: str, customer_id: str | None = None) -> None:
        super().__init__(message, "link")
        self.reason = reason
        self.customer_id = customer_id  # known when the signature holds (expired, revoked)


def link_key(settings: Settings) -> str:
    configured = settings.link_key.get_secret_value() if settings.link_key is not None else ""
    if configured:
        if len(configured) < 16:
            raise DomainError("COLLECTIONS_LINK_KEY must be at least 16 characters long", "COLLECTIONS_LINK_KEY")
        return configured
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it meanwhile
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class CustomerLinks:
    def __init__(self, settings: Settings) -> None:
        self.public_url = settings.public_url.rstrip("/")
        self._serializer = URLSafeTimedSerializer(link_key(settings), salt=SALT)

    def token_for(self, customer_id: str) -> str:
        return self._serializer.dumps({"c": customer_id})

    def url_for(self, customer_id: str) -> str:
        return f"{self.public_url}/c/{self.token_for(customer_id)}"

    def customer_of(self, token: str, valid_for: timedelta) -> str:
        """The customer a token names, or ``LinkRefused``."""
        return self.opened(token, valid_for)[0]

    def opened(self, token: str, valid_for: timedelta | None) -> tuple[str, datetime]:
        """The customer a token names and when it was issued (to the second), or ``LinkRefused``.
        ``valid_for`` None: the signature alone is checked, not the age."""
        max_age = max(1, int(valid_for.total_seconds())) if valid_for is not None else None
        try:
            data, issued = self._serializer.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired as error:
            named = error.payload.get("c") if isinstance(error.payload, dict) else None
            raise LinkRefused("this link has expired; use the link in our latest message", "expired",
                              named if isinstance(named, str) else None) from None
        except BadSignature:
            raise LinkRefused("this link is not valid; use the link exactly as it appears in our message",
                              "invalid") from None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            raise LinkRefused("this link is not valid", "invalid")
        return data["c"], issued
