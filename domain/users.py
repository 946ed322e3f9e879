"""People who act on cases, and the actor a command carries."""

from __future__ import annotations

import tomllib
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import DomainError, shown
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


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role
    write_off_limit: Decimal = Field(default=Decimal(0), ge=0)
    email: str | None = None
    language: str = Field(default="en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # of internal e-mails
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
