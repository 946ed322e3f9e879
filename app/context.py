"""Wiring: one place that builds the database, stores and Temporal client from Settings."""

from __future__ import annotations

from functools import cached_property

from typing import TYPE_CHECKING

from app.settings import Settings
from domain.errors import DomainError
from domain.policy import Policy
from domain.policy import Role
from domain.users import Actor, UserDirectory, parse_users
from store.db import Database
from store.ledger import Ledger
from store.policies import PolicyStore

if TYPE_CHECKING:
    from temporalio.client import Client

    from store.event_store import EventStore


def data_converter(settings: Settings):
    """The pydantic converter with payload encryption (keys: COLLECTIONS_PAYLOAD_KEYS, see app/codec.py)."""
    from app.codec import encrypted_converter, resolve_keys

    keys = settings.payload_keys.get_secret_value() if settings.payload_keys else None
    return encrypted_converter(resolve_keys(keys, settings.data_dir))


async def connect(settings: Settings, runtime=None) -> Client:
    from temporalio.client import Client

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
    )


def smtp_settings(settings: Settings):
    """The SMTP settings of customer notices and internal notifications alike."""
    from activities.notices import SmtpSettings

    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        sender=settings.mail_from,
        message_domain=settings.message_domain,
    )


class Context:
    """Lazily built collaborators; cheap to create, used by CLI, API and worker."""

    def __init__(self, settings: Settings | None = None, client: Client | None = None) -> None:
        self.settings = settings or Settings()
        self._client = client

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def store(self) -> EventStore:
        from store.event_store import EventStore  # imported when used: commands that only read projections skip it

        return EventStore(self.db)

    @cached_property
    def policies(self) -> PolicyStore:
        return PolicyStore(self.db)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db)

    @cached_property
    def users(self) -> UserDirectory:
        return self.read_users()

    def read_users(self) -> UserDirectory:
        """The users file as it is now (not cached: for long-running processes)."""
        path = self.settings.users_path
        if not path.is_file():
            raise DomainError(f"users file {path} not found (set COLLECTIONS_USERS)", "users")
        return parse_users(path.read_text(encoding="utf-8"), str(path))

    def policy(self) -> Policy:
        """The active policy file, validated and pinned under its version."""
        path = self.settings.policy_path
        if not path.is_file():
            raise DomainError(f"policy file {path} not found (set COLLECTIONS_POLICY)", "policy")
        return self.policies.pin(path.read_text(encoding="utf-8"), str(path))

    def actor(self, name: str | None) -> Actor:
        """The person a command acts as: --as, else COLLECTIONS_USER, else the first collector."""
        name = name or self.settings.default_user
        if name:
            return self.users.get(name).actor()
        collector = next((u for u in self.users.users if u.role == Role.collector), None)
        if collector is None:
            raise DomainError("no user given; pass --as NAME or set COLLECTIONS_USER", "as")
        return collector.actor()

    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client
