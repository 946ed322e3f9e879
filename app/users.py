"""The users file's people: adding one (``users add``). Tokens are app/tokens.py's.

The file is the operator's: a new ``[[users]]`` table is appended to its text, so everything
before it (comments, layout, the other users) stays byte for byte; the result must parse to
the same users plus the new one, or nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import tomlkit

from app.tokens import editing, read_directory, replace_file
from domain.errors import DomainError
from domain.users import User, new_user, parse_users


def _table(user: User) -> str:
    """The user as one ``[[users]]`` table, keys as the file names them (the defaults left out)."""
    table = tomlkit.table()
    table["name"] = user.name
    table["role"] = user.role.value
    table["write_off_limit"] = str(user.write_off_limit)
    if user.email is not None:
        table["email"] = user.email
    if user.language != "en":
        table["language"] = user.language
    document, users = tomlkit.document(), tomlkit.aot()
    users.append(table)
    document["users"] = users
    return tomlkit.dumps(document)


def _separator(text: str) -> str:
    """What goes between the file's text and the new table: one blank line, as between the others."""
    if not text.strip() or text.endswith("\n\n"):
        return ""
    return "\n" if text.endswith("\n") else "\n\n"


def add_user(users_path: Path, name: str, role: str, write_off_limit: str = "0", email: str | None = None,
             language: str = "en") -> dict:
    """Append ``name`` to the users file (atomically, checked by ``parse_users`` first); without a token."""
    with editing(users_path):
        return _add_user(users_path, name, role, write_off_limit, email, language)


def _add_user(users_path: Path, name: str, role: str, write_off_limit: str, email: str | None, language: str) -> dict:
    text, directory = read_directory(users_path)
    from activities.catalogue import LANGUAGES

    user = new_user(directory, name, role, write_off_limit, email, language, tuple(LANGUAGES))
    updated = text + _separator(text) + _table(user)
    after = parse_users(updated, str(users_path))  # never write a file the engine cannot read
    if after.users != (*directory.users, user):
        raise DomainError(f"{users_path}: a [[users]] table cannot be appended to this file "
                          "(are its users written as an inline array?)", "users")
    replace_file(users_path, updated)
    return {"user": user.name, "role": user.role.value, "write_off_limit": str(user.write_off_limit),
            "email": user.email, "language": user.language, "users_file": str(users_path),
            "token_command": f"users token {user.name}"}


def add_recorded(ctx, name: str, role: str, write_off_limit: str = "0", email: str | None = None,
                 language: str = "en", reason: str | None = None, actor: str | None = None) -> dict:
    """``add_user``, then ``UserAdded`` (who, when, why, what the user may do) in the user's
    administration stream. As for tokens, the file is written first and a failed append is
    reported (exit non-zero): the users file is not in the database."""
    from domain.admin import UserAdded, check_reason

    reason = check_reason(reason, required=False, default="user added")
    added = add_user(ctx.settings.users_path, name, role, write_off_limit, email, language)
    from app.adminlog import operator_actor, record  # the event store, once there is something to record
    record(ctx, "user", added["user"], UserAdded, actor or operator_actor(), reason, f"user {added['user']}",
           user=added["user"], role=added["role"], write_off_limit=added["write_off_limit"], email=added["email"],
           language=added["language"])
    return {**added, "reason": reason}
