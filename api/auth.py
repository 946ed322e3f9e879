"""Who is calling: bearer tokens for the JSON API, checked against the users file.

The users file is re-read when it changes, so a token issued with
``users token NAME`` works (and the old one stops working) without a restart.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from app.authorization import ROLE_MATRIX, allowed
from app.tokens import user_for_token
from domain.errors import DomainError
from domain.policy import Role
from domain.users import User, UserDirectory, parse_users


class UserBook:
    """The users file, cached until its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._directory: UserDirectory | None = None

    def directory(self) -> UserDirectory:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise DomainError(f"users file {self.path} not found (set COLLECTIONS_USERS)", "users") from None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp or self._directory is None:
                self._directory = parse_users(self.path.read_text(encoding="utf-8"), str(self.path))
                self._stamp = stamp
            return self._directory

    def by_token(self, token: str) -> User | None:
        return user_for_token(self.directory(), token)

    def get(self, name: str) -> User | None:
        return next((u for u in self.directory().users if u.name == name), None)


bearer = HTTPBearer(auto_error=False, description="An API token issued with `python starter.py users token NAME`.")


def api_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "missing bearer token (send 'Authorization: Bearer <token>')", headers=challenge)
    user = request.app.state.users.by_token(credentials.credentials)
    if user is None:
        raise ApiError(401, "invalid or revoked token", headers=challenge)
    return user


def forbid(action: str, user: User) -> ApiError:
    roles = " or ".join(r.value for r in Role if r in ROLE_MATRIX.get(action, ()))
    return ApiError(403, f"{user.name} is {article(user.role.value)}: only {article(roles)} may call {action}", "role")


def article(words: str) -> str:
    """``words`` with its indefinite article: a collector, an integration."""
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


@lru_cache(maxsize=None)
def permit(action: str):
    """A dependency: the calling user, when their role may perform ``action``.
    One callable per action, so FastAPI runs the check once per request."""
    if action not in ROLE_MATRIX:
        raise KeyError(f"{action} is not in ROLE_MATRIX")

    def check(user: User = Depends(api_user)) -> User:
        if not allowed(action, user.role):
            raise forbid(action, user)
        return user

    check.action = action  # lets tests find which action guards a route
    return check
