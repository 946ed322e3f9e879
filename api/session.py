"""Console sessions: a signed cookie (HMAC-SHA256), HttpOnly, SameSite=Lax, Secure
over HTTPS; and a per-session CSRF token that every console POST must carry.

The cookie holds the user's name, a fingerprint of their token hash (issuing a
new token ends old sessions), the CSRF token, the language and flash messages.
Nothing in it is secret, but nobody can forge or alter it without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection

COOKIE = "ce_session"
MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: bytes, max_age: int = MAX_AGE) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self.secret = secret
        self.max_age = max_age

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self.secret, text.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, data: dict, now: float | None = None) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        signed = f"{payload}.{int(now if now is not None else time.time())}"
        return f"{signed}.{self._sign(signed)}"

    def loads(self, value: str | None, now: float | None = None) -> dict | None:
        """The session, or None when the cookie is missing, altered or expired."""
        if not value or value.count(".") != 2:
            return None
        payload, stamp, signature = value.split(".")
        if not hmac.compare_digest(self._sign(f"{payload}.{stamp}"), signature):
            return None
        try:
            issued = int(stamp)
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        current = now if now is not None else time.time()
        if not isinstance(data, dict) or issued > current + 60 or current - issued > self.max_age:
            return None
        return data


class Session(dict):
    """A dict that remembers whether it changed (then the cookie is re-sent)."""

    def __init__(self, data: dict | None = None, fresh: bool = False) -> None:
        super().__init__(data or {})
        self.modified = fresh

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.modified = True

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self.modified = True

    def pop(self, key, *default):
        self.modified = self.modified or key in self
        return super().pop(key, *default)

    def reset(self, **data) -> None:
        """A new session (sign-in, sign-out): new CSRF token, nothing carried over but ``data``."""
        self.clear()
        self.update({"csrf": secrets.token_urlsafe(32), **data})
        self.modified = True

    @property
    def csrf(self) -> str:
        return self["csrf"]

    def flash(self, message: str, kind: str = "ok") -> None:
        self["flash"] = [*self.get("flash", []), [kind, message]]

    def take_flashes(self) -> list[list[str]]:
        return self.pop("flash", [])


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.get("csrf", ""), submitted)


def same_origin(conn: HTTPConnection) -> bool:
    """A browser sends Origin on a POST; when it names another site, refuse."""
    origin = conn.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = conn.headers.get("host", "")
    return urlsplit(origin).netloc == host


class SessionMiddleware:
    """Loads the console session into ``request.state.session`` and writes the cookie
    back when it changed. Only ``/console`` paths get a session; the JSON API uses
    bearer tokens and never reads this cookie."""

    def __init__(self, app, codec: SessionCodec, prefix: str = "/console") -> None:
        self.app = app
        self.codec = codec
        self.prefix = prefix

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        data = self.codec.loads(conn.cookies.get(COOKIE))
        session = Session(data)
        if data is None or "csrf" not in session:
            session.reset()
        scope.setdefault("state", {})["session"] = session
        secure = conn.url.scheme == "https"

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start" and session.modified:
                headers = MutableHeaders(scope=message)
                flags = f"Path=/; Max-Age={self.codec.max_age}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
                headers.append("Set-Cookie", f"{COOKIE}={self.codec.dumps(dict(session))}; {flags}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)
