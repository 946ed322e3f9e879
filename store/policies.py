"""Pinned policy texts: a case can always read the exact rules it was opened under."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import select

from domain.errors import DomainError
from domain.policy import Policy, parse_policy
from store.db import Database
from store.schema import policies
from store.upsert import insert_ignore


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pin(self, text: str, source: str = "policy") -> Policy:
        """Validate a policy text and keep it under its version.

        A version names one text forever: editing the file without changing
        ``version`` is refused, so running cases never change silently.
        """
        policy = parse_policy(text, source)
        with self.db.transaction() as session:
            pin_policy(session, policy, text, source)
        return policy

    def get(self, version: str) -> Policy:
        with self.db.read() as session:
            text = session.execute(select(policies.c.content).where(policies.c.version == version)).scalar_one_or_none()
        if text is None:
            raise DomainError(f"policy version {version!r} is not known", "version")
        return parse_policy(text, f"policy {version}", pinned=True)

    def versions(self) -> list[str]:
        with self.db.read() as session:
            return list(session.execute(select(policies.c.version).order_by(policies.c.recorded_at)).scalars())


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def pin_policy(session, policy: Policy, text: str, source: str) -> bool:
    """Keep ``text`` under ``policy.version`` in the caller's transaction: True when newly
    pinned, False when that version already holds this very text; refused when it holds another."""
    digest = digest_of(text)
    existing = session.execute(
        select(policies.c.digest).where(policies.c.version == policy.version)
    ).scalar_one_or_none()
    if existing is None:
        insert_ignore(session, policies, [{"version": policy.version, "digest": digest, "content": text,
                                           "recorded_at": datetime.now(timezone.utc)}], ["version"])
        return True
    if existing != digest:
        raise DomainError(
            f"{source}: version {policy.version!r} is already pinned with different rules; "
            "give the edited policy a new version",
            "version",
        )
    return False
