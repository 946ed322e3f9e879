"""API tokens: issued once, stored only as a salted hash in the users file; revoked by removing it.

A token is 256 random bits, so a fast keyed hash is enough (no password
stretching needed): ``hmac-sha256$<salt hex>$<digest hex>`` where the digest is
HMAC-SHA256(key=salt, message=token). Verifying compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tomlkit
from filelock import FileLock, Timeout

from domain.errors import DomainError
from domain.users import User, UserDirectory, parse_users

TOKEN_PREFIX = "ce_"
SCHEME = "hmac-sha256"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.new(salt, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def verify_token(token: str, token_hash: str | None) -> bool:
    """True when ``token`` is the one ``token_hash`` was made from."""
    if not token or not token_hash:
        return False
    try:
        scheme, salt_hex, digest = token_hash.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    expected = hmac.new(salt, token.encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


def user_for_token(directory: UserDirectory, token: str) -> User | None:
    for user in directory.users:
        if verify_token(token, user.token_hash):
            return user
    return None


def token_fingerprint(user: User) -> str:
    """Changes whenever the user's token is re-issued: sessions signed in with the old one end."""
    return hashlib.sha256((user.token_hash or "").encode()).hexdigest()[:16]


def audit_fingerprint(token_hash: str) -> str:
    """What the audit trail shows of a stored hash (ApiTokenIssued, ApiTokenRevoked): tells two
    tokens apart and pairs a revocation with its issuance, and reveals nothing of the token."""
    return hashlib.sha256(b"audit:" + token_hash.encode()).hexdigest()[:16]


def read_directory(users_path: Path) -> tuple[str, UserDirectory]:
    """The users file's text and the users it holds."""
    if not users_path.is_file():
        raise DomainError(f"users file {users_path} not found (set COLLECTIONS_USERS)", "users")
    text = users_path.read_text(encoding="utf-8")
    return text, parse_users(text, str(users_path))


def _user(directory: UserDirectory, name: str) -> User:
    try:
        return directory.get(name)
    except DomainError:
        known = ", ".join(u.name for u in directory.users)
        raise DomainError(f"unknown user {name!r} (the users file has {known})", "name") from None


EDIT_WAIT_S = 30.0  # another edit takes milliseconds; this long means a command is stuck holding the file


@contextmanager
def editing(users_path: Path, wait: float = EDIT_WAIT_S) -> Iterator[None]:
    """One edit of the users file at a time, across processes (the CLI, the API, the console):
    each edit reads the file inside, so none is made on a copy another has replaced since.
    The lock is a hidden file beside the users file (its directory is written to anyway)."""
    lock = FileLock(users_path.with_name(f".{users_path.name}.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise DomainError(f"{users_path} is being changed by another command (waited {wait:.0f} s); "
                          "try again", "users") from None
    try:
        yield
    finally:
        lock.release()


def issue_token(users_path: Path, name: str) -> dict:
    """Give ``name`` a new token: its hash replaces the old one in the users file
    (comments and layout are kept) and the token itself is returned, once."""
    with editing(users_path):
        return _issue_token(users_path, name)


def _issue_token(users_path: Path, name: str) -> dict:
    text, directory = read_directory(users_path)
    user = _user(directory, name)
    token = new_token()
    token_hash = hash_token(token)
    document = tomlkit.parse(text)
    for table in document["users"]:
        if table.get("name") == name:
            table["token_hash"] = token_hash
    updated = tomlkit.dumps(document)
    parse_users(updated, str(users_path))  # never write a file the engine cannot read
    replace_file(users_path, updated)
    return {"user": user.name, "role": user.role.value, "token": token, "users_file": str(users_path),
            "fingerprint": audit_fingerprint(token_hash)}


def issue_recorded(ctx, name: str, reason: str | None = None, actor: str | None = None) -> dict:
    """``issue_token``, then ``ApiTokenIssued`` (who, when, why; never the token) in the user's
    administration stream. The users file is not in the database, so the two cannot share a
    transaction: the file is written first, and a failed append is reported (exit non-zero)."""
    from app.adminlog import operator_actor, record
    from domain.admin import ApiTokenIssued, check_reason

    reason = check_reason(reason, required=False, default="API token issued")
    issued = issue_token(ctx.settings.users_path, name)
    record(ctx, "user", issued["user"], ApiTokenIssued, actor or operator_actor(), reason, f"user {issued['user']}",
           user=issued["user"], role=issued["role"], fingerprint=issued["fingerprint"])
    return issued


def revoke_token(users_path: Path, name: str) -> dict:
    """Take ``name``'s token away: its hash leaves the users file (comments and layout are kept),
    so the token stops working at once (CLI, API) and console sessions signed in with it end
    (``token_fingerprint`` changes). Refused when the user has no token: nothing to revoke."""
    with editing(users_path):
        return _revoke_token(users_path, name)


def _revoke_token(users_path: Path, name: str) -> dict:
    text, directory = read_directory(users_path)
    user = _user(directory, name)
    if not user.token_hash:
        raise DomainError(f"user {name!r} has no token (nothing to revoke; `users list` shows who has one)", "name")
    document = tomlkit.parse(text)
    for table in document["users"]:
        if table.get("name") == name and "token_hash" in table:
            del table["token_hash"]
    updated = tomlkit.dumps(document)
    # never write a file the engine cannot read, nor one that still holds the token
    if parse_users(updated, str(users_path)).get(name).token_hash is not None:
        raise DomainError(f"{users_path}: the token of {name!r} could not be removed", "users")
    replace_file(users_path, updated)
    return {"user": user.name, "role": user.role.value, "users_file": str(users_path),
            "fingerprint": audit_fingerprint(user.token_hash)}


def revoke_recorded(ctx, name: str, reason: str | None, actor: str | None = None) -> dict:
    """``revoke_token``, then ``ApiTokenRevoked`` (who, when, why, which token) in the user's
    administration stream; the reason is required. The file is written first, as by ``issue_recorded``:
    the token stops working even when the append then fails (reported, exit non-zero)."""
    from app.adminlog import operator_actor, record
    from domain.admin import ApiTokenRevoked, check_reason

    reason = check_reason(reason)
    revoked = revoke_token(ctx.settings.users_path, name)
    record(ctx, "user", revoked["user"], ApiTokenRevoked, actor or operator_actor(), reason, f"user {revoked['user']}",
           user=revoked["user"], role=revoked["role"], fingerprint=revoked["fingerprint"])
    return {**revoked, "reason": reason}


def replace_file(path: Path, text: str) -> None:
    """Write atomically: readers see the old file or the new one, never half of it."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
