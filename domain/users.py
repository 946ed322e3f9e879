"""People who act on cases, and the actor a command carries."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import DomainError, shown
from domain.inputs import check_email
from domain.money import parse_amount
from domain.policy import Role, _first_error

SYSTEM = "system"
CUSTOMER_PREFIX = "customer:"  # a customer acting through the self-service link: customer:<customer_id>


class Actor(BaseModel):
    """Who issues a command. The entry point resolves it from the users file."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=100)
    role: Role | None = None  # None for the engine itself (timers, sweeps) and for a customer
    write_off_limit: Decimal = Decimal(0)

    @property
    def is_system(self) -> bool:
        """The engine itself: no role, and not a customer acting through the self-service link."""
        return self.role is None and not self.is_customer

    @property
    def is_customer(self) -> bool:
        return self.role is None and self.name.startswith(CUSTOMER_PREFIX)


SYSTEM_ACTOR = Actor(name=SYSTEM)


NAME_PATTERN = r"^[A-Za-z0-9._@-]+$"
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    role: Role
    write_off_limit: Decimal = Field(default=Decimal(0), ge=0)
    email: str | None = None
    language: str = Field(default="en", pattern=LANGUAGE_PATTERN)  # of internal e-mails
    token_hash: str | None = None  # set by `users token`; never the token itself

    def actor(self) -> Actor:
        return Actor(name=self.name, role=self.role, write_off_limit=self.write_off_limit)


class UserDirectory(BaseModel):
    model_config = ConfigDict(frozen=True)

    users: tuple[User, ...]

    def get(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        raise DomainError(f"unknown user {shown(name)}", "as")


def parse_users(text: str, source: str = "users") -> UserDirectory:
    try:
        directory = UserDirectory.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise DomainError(f"{source}: not valid TOML: {error}") from None
    except ValidationError as error:
        raise DomainError(f"{source}: {_first_error(error)}") from None
    names = [u.name for u in directory.users]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DomainError(f"{source}: duplicate user name(s) {', '.join(duplicates)}")
    return directory


def new_user(directory: UserDirectory, name: str, role: str, write_off_limit: str = "0", email: str | None = None,
             language: str = "en", languages: tuple[str, ...] = ()) -> User:
    """A person to add to ``directory``, each value checked with an error naming its field
    (the users file's keys): a name nobody has yet (nor in other letter case: 'Demo-Manager'
    beside 'demo-manager' is a second login an auditor reads as the same person), a known role,
    a limit of zero or more (none for an integration: it approves nothing), an address internal
    e-mails can be sent to, one of ``languages`` (the catalogues shipped) when given."""
    name = (name or "").strip()
    if not re.fullmatch(NAME_PATTERN, name) or len(name) > 100:
        raise DomainError(f"{shown(name)} is not a user name (1 to 100 letters, digits and . _ @ -)", "name")
    same = next((u.name for u in directory.users if u.name.casefold() == name.casefold()), None)
    if same is not None:
        raise DomainError(f"a user {same!r} already exists" + ("" if same == name else " (names differ only in "
                          "letter case)"), "name")
    roles = [r.value for r in Role]
    if role not in roles:
        raise DomainError(f"{shown(role)} is not a role ({', '.join(roles[:-1])} or {roles[-1]})", "role")
    limit = parse_amount(write_off_limit, "write_off_limit")
    if limit < 0:
        raise DomainError(f"must not be negative (got {limit})", "write_off_limit")
    limit = limit if limit else Decimal(0)  # "-0" is 0
    if limit and role == Role.integration.value:
        raise DomainError("an integration approves nothing: its write-off limit must be 0", "write_off_limit")
    if email is not None:
        email = check_email(email.strip(), "email")
    if not re.fullmatch(LANGUAGE_PATTERN, language or ""):
        raise DomainError(f"{shown(language)} is not a language tag (en, de, zh-CN...)", "language")
    if languages and language not in languages:
        raise DomainError(f"{shown(language)} is not a language the e-mails are written in ({', '.join(languages)})",
                          "language")
    return User(name=name, role=Role(role), write_off_limit=limit, email=email, language=language)
