"""Payload encryption for everything the engine hands to Temporal (AES-256-GCM).

Workflow inputs, Update arguments and replies, activity inputs and results and
failure messages carry customer names, e-mail addresses and amounts. Temporal
stores them in its history; with this codec it stores only ciphertext:

* every payload is serialised, then sealed with AES-GCM under a random 96-bit
  nonce; the key id travels in the payload's metadata (``encryption-key-id``) and
  is bound to the ciphertext as associated data, so a payload cannot be moved
  under another key id unnoticed;
* failures use ``DefaultFailureConverterWithEncodedAttributes``: messages and stack
  traces go into an encoded (hence encrypted) payload, history keeps "Encoded failure";
* **rotation**: ``COLLECTIONS_PAYLOAD_KEYS="k2:<base64>,k1:<base64>"``. The first key
  encrypts, every listed key decrypts. Put a new key first, keep the old ones until
  no running case or retained history needs them, then drop them;
* payloads that were never encrypted (histories from before encryption was
  switched on) decode unchanged, so switching it on does not break running cases.

With no COLLECTIONS_PAYLOAD_KEYS the embedded default generates one key into
``<data dir>/payload-keys`` (mode 0600, logged once when created): demo data is
encrypted too, and every process started with the same data dir (stack, CLI,
worker) shares it. Production sets the variable from its secret store; the file is
then never read. (Logged at INFO, not WARNING: the CLI's stderr carries nothing but
one error line.)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from domain.errors import DomainError

log = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
CIPHER = b"AES-GCM"
KEY_ID = "encryption-key-id"
KEYS_ENV = "COLLECTIONS_PAYLOAD_KEYS"
KEY_FILE = "payload-keys"
_AAD_PREFIX = b"collections-engine/payload/v1:"


class PayloadKeyError(DomainError):
    """A key list that cannot be used (the message says what to fix)."""


@dataclass(frozen=True)
class PayloadKeys:
    """Ordered keys: the first encrypts, all decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise PayloadKeyError("at least one key is needed", KEYS_ENV)
        ids = [kid for kid, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise PayloadKeyError("duplicate key id", KEYS_ENV)

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    def get(self, kid: str) -> bytes | None:
        return next((key for k, key in self.keys if k == kid), None)

    @property
    def ids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    @classmethod
    def parse(cls, text: str) -> PayloadKeys:
        """``kid:base64key[,kid:base64key...]``; keys are 16, 24 or 32 bytes (AES-128/192/256)."""
        keys = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            kid, sep, encoded = item.partition(":")
            kid = kid.strip()
            if not sep or not kid or not kid.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(kid) > 64:
                raise PayloadKeyError("each entry must be KEY_ID:BASE64_KEY (key id: letters, digits, - _ .)", KEYS_ENV)
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"key {kid!r} is not valid base64", KEYS_ENV) from None
            if len(key) not in (16, 24, 32):
                raise PayloadKeyError(f"key {kid!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32", KEYS_ENV)
            keys.append((kid, key))
        return cls(tuple(keys))

    @staticmethod
    def generate_entry(kid: str | None = None) -> str:
        """A new ``kid:base64`` entry (32 random bytes), e.g. for rotation."""
        kid = kid or f"k{secrets.token_hex(4)}"
        return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: PayloadKeys) -> None:
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        kid, key = self.keys.current
        cipher = AESGCM(key)
        sealed = []
        for payload in payloads:
            nonce = secrets.token_bytes(12)
            data = cipher.encrypt(nonce, payload.SerializeToString(), _AAD_PREFIX + kid.encode())
            sealed.append(Payload(
                metadata={"encoding": ENCODING, KEY_ID: kid.encode(), "encryption-cipher": CIPHER},
                data=nonce + data,
            ))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                opened.append(payload)  # written before encryption was on: readable as is
                continue
            kid = payload.metadata.get(KEY_ID, b"").decode()
            key = self.keys.get(kid)
            if key is None:
                raise ValueError(
                    f"payload encrypted with key id {kid!r}, which is not among the configured keys "
                    f"({', '.join(self.keys.ids)}); add it back to {KEYS_ENV}"
                )
            nonce, data = payload.data[:12], payload.data[12:]
            plain = AESGCM(key).decrypt(nonce, data, _AAD_PREFIX + kid.encode())
            inner = Payload()
            inner.ParseFromString(plain)
            opened.append(inner)
        return opened


def _key_file_entry(data_dir: Path) -> str:
    """Read the development key file, creating it atomically (0600) when absent."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(PayloadKeys.generate_entry("dev1") + "\n")
        try:
            os.link(temp, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            temp.unlink()
        # INFO, not WARNING: a CLI command prints nothing but its result or one error line.
        log.info("generated a development payload key in %s; set %s in production", path, KEYS_ENV)
    return path.read_text(encoding="utf-8").strip()


def resolve_keys(configured: str | None, data_dir: Path) -> PayloadKeys:
    """Keys from the environment (``configured``), else the generated development key."""
    if configured and configured.strip():
        return PayloadKeys.parse(configured)
    log.debug("%s is not set: payloads are encrypted with the development key in %s", KEYS_ENV, data_dir / KEY_FILE)
    return PayloadKeys.parse(_key_file_entry(data_dir))


def encrypted_converter(keys: PayloadKeys, base: DataConverter | None = None) -> DataConverter:
    """The pydantic data converter with encryption and encoded failure attributes."""
    if base is None:
        from temporalio.contrib.pydantic import pydantic_data_converter

        base = pydantic_data_converter
    return dataclasses.replace(
        base, payload_codec=EncryptionCodec(keys), failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )
