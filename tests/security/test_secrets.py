"""Secrets come from the environment only, and are never printed or committed."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

from pydantic import SecretStr

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_FIELDS = ("smtp_password", "session_secret", "payload_keys")
# The one committed key: encrypts the replay-test histories, protects nothing else.
TEST_ONLY = {"tests/histories/payload-keys"}


def test_secrets_are_read_from_the_environment_and_masked(monkeypatch):
    key = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("COLLECTIONS_SESSION_SECRET", "cookie-secret-value")
    monkeypatch.setenv("COLLECTIONS_PAYLOAD_KEYS", key)
    settings = Settings()
    for name in SECRET_FIELDS:
        assert isinstance(getattr(settings, name), SecretStr), name
    assert settings.smtp_password.get_secret_value() == "hunter2-smtp"
    assert settings.payload_keys.get_secret_value() == key
    shown = repr(settings) + str(settings) + str(settings.model_dump()) + settings.model_dump_json()
    for secret in ("hunter2-smtp", "cookie-secret-value", key.split(":")[1]):
        assert secret not in shown


def test_no_secret_has_a_default_in_the_code():
    for name in SECRET_FIELDS:
        assert Settings.model_fields[name].default is None, name


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True, timeout=60).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        listed = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts]
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "payload key entry": re.compile(r"\b[\w.-]{1,64}:[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])"),
    "password assignment": re.compile(r"(?i)\b(smtp_password|password)\s*[=:]\s*[\"'][^\"'{}$<>]{6,}[\"']"),
    "plain API token": re.compile(r"(?m)^\s*token\s*=\s*\""),
}


def test_nothing_secret_is_committed():
    found = []
    for path in _tracked_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative in TEST_ONLY or path.suffix in {".png", ".ico", ".woff", ".woff2"} or path.stat().st_size > 2_000_000:
            continue
        if relative.startswith("tests/"):  # tests build throw-away keys and passwords at run time
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for what, pattern in PATTERNS.items():
            if pattern.search(text):
                found.append(f"{relative}: {what}")
    assert not found, found


def test_the_users_file_keeps_only_token_hashes():
    text = (ROOT / "config" / "users.toml").read_text()
    assert not re.search(r"(?m)^\s*token\s*=", text)
    for line in re.findall(r"(?m)^\s*token_hash\s*=\s*\"([^\"]*)\"", text):
        assert len(line) >= 32  # a hash, not a short secret
