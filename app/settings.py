"""One settings object, read from the environment (documented in README)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".data"), validation_alias=AliasChoices("COLLECTIONS_DATA_DIR"))
    database_url: str = Field("", validation_alias=AliasChoices("COLLECTIONS_DATABASE_URL"))
    temporal_address: str = Field("localhost:7233", validation_alias=AliasChoices("TEMPORAL_ADDRESS"))
    temporal_namespace: str = Field("default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE"))
    task_queue: str = Field("collections", validation_alias=AliasChoices("COLLECTIONS_TASK_QUEUE"))
    # Lets several ledgers (or test runs) share one Temporal namespace without id clashes.
    workflow_id_prefix: str = Field("", validation_alias=AliasChoices("COLLECTIONS_WORKFLOW_ID_PREFIX"))
    command_timeout: float = Field(30.0, validation_alias=AliasChoices("COLLECTIONS_COMMAND_TIMEOUT"))
    smtp_host: str = Field("127.0.0.1", validation_alias=AliasChoices("SMTP_HOST"))
    smtp_port: int = Field(1025, validation_alias=AliasChoices("SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=AliasChoices("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=AliasChoices("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(False, validation_alias=AliasChoices("SMTP_STARTTLS"))
    mail_from: str = Field(
        "Accounts Receivable <ar@collections.local>", validation_alias=AliasChoices("COLLECTIONS_MAIL_FROM")
    )
    message_domain: str = Field("collections.local", validation_alias=AliasChoices("COLLECTIONS_MESSAGE_DOMAIN"))
    payment_instructions: str = Field(
        "Please pay by bank transfer, quoting the invoice numbers.",
        validation_alias=AliasChoices("COLLECTIONS_PAYMENT_INSTRUCTIONS"))  # printed on statements of account
    policy_path: Path = Field(PROJECT_DIR / "policies" / "default.toml", validation_alias=AliasChoices("COLLECTIONS_POLICY"))
    users_path: Path = Field(PROJECT_DIR / "config" / "users.toml", validation_alias=AliasChoices("COLLECTIONS_USERS"))
    default_user: str | None = Field(None, validation_alias=AliasChoices("COLLECTIONS_USER"))
    # Signs console session cookies; unset: a random key per process (sign-ins end on restart).
    session_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("COLLECTIONS_SESSION_SECRET"))
    # Customer self-service links (app/links.py): the key that signs them, and the web server's
    # public address they start with. No key: a development key generated into <data dir>/link-key.
    link_key: SecretStr | None = Field(None, validation_alias=AliasChoices("COLLECTIONS_LINK_KEY"))
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=AliasChoices("COLLECTIONS_PUBLIC_URL"))
    # Payload encryption keys "kid:base64[,kid:base64...]": the first encrypts, all decrypt (app/codec.py).
    # Unset: a development key generated into <data dir>/payload-keys.
    payload_keys: SecretStr | None = Field(None, validation_alias=AliasChoices("COLLECTIONS_PAYLOAD_KEYS"))
    # Prometheus: domain metrics (and the worker's process metrics) at host:port/metrics; SDK metrics
    # (Temporal's Rust core) at their own address. Empty: not served.
    metrics_address: str = Field("", validation_alias=AliasChoices("COLLECTIONS_METRICS_ADDRESS"))
    sdk_metrics_address: str = Field("", validation_alias=AliasChoices("COLLECTIONS_SDK_METRICS_ADDRESS"))
    log_format: str = Field("text", validation_alias=AliasChoices("COLLECTIONS_LOG_FORMAT"))  # text | json
    # Workflow code in Temporal's sandbox (on) or not (off: about a quarter less worker CPU per case,
    # docs/PERFORMANCE.md; the tests and the replay check run sandboxed either way).
    workflow_sandbox: bool = Field(True, validation_alias=AliasChoices("COLLECTIONS_WORKFLOW_SANDBOX"))
    # Case workflows a worker keeps in memory between their steps (about 300 KB each,
    # sandboxed). 400 took a worker with 10,000 open cases to 313 / 328 MB through a month-end
    # wave (the SDK's 1000 to 400 MB). 250 keeps it under 300 MB (275 / 285 MB) but made a wave
    # of 200 cases with their mailboxes take 1.7 times as long (their steps no longer fit and
    # are replayed): set it lower only for many thousands of open cases; docs/PERFORMANCE.md.
    max_cached_workflows: int = Field(400, ge=0, validation_alias=AliasChoices("COLLECTIONS_MAX_CACHED_WORKFLOWS"))
    # Workflow tasks a worker runs at once (the SDK's default is 100). Each runs on a thread of
    # its own, and a task that has not yielded within 2 s of wall-clock time is failed as a
    # deadlock by the SDK, which a CPU-starved worker can trip. With 100, a month-end burst on
    # starved CPUs stalled the worker in 2 of 7 runs, with 20 in none of 13 (docs/PERFORMANCE.md).
    max_concurrent_workflow_tasks: int = Field(
        20, ge=2, validation_alias=AliasChoices("COLLECTIONS_MAX_CONCURRENT_WORKFLOW_TASKS"))
    # Liveness watchdog of a worker (app/watchdog.py): when its task queue has had workflow tasks
    # waiting and the worker has not polled for them for this many seconds, it is stalled: its
    # stacks are logged and it is replaced: `python worker.py` by a new image of its process
    # (worker.replace_process), the embedded stack by a new worker in its process (0: no watchdog).
    # Never less than 15 s (app/waiting.POLLER_VIEW_LAG): the server shows a worker's polls late.
    watchdog_stall_after: float = Field(120.0, ge=0, validation_alias=AliasChoices("COLLECTIONS_WATCHDOG_STALL_AFTER"))
    # How often the watchdog looks at the task queue (seconds).
    watchdog_interval: float = Field(10.0, gt=0, validation_alias=AliasChoices("COLLECTIONS_WATCHDOG_INTERVAL"))
    # Replacements allowed within an hour (counted across a process's new images); one more stall
    # and the process exits with status 70 for its supervisor (docker compose, systemd) to
    # restart it. 0: exit at the first stall.
    watchdog_restarts: int = Field(3, ge=0, validation_alias=AliasChoices("COLLECTIONS_WATCHDOG_RESTARTS"))

    # The dispatcher of the general outbox (app/subscribers.py, docs/EVENTS.md): how often the
    # worker looks for events to push (seconds; 0: the worker does not dispatch), the most events
    # in one POST, the wait after a first failed POST (doubled after each next one, at most the
    # cap) and how long one POST may take.
    subscribers_interval: float = Field(2.0, ge=0, validation_alias=AliasChoices("COLLECTIONS_SUBSCRIBERS_INTERVAL"))
    subscribers_batch: int = Field(100, ge=1, le=1000, validation_alias=AliasChoices("COLLECTIONS_SUBSCRIBERS_BATCH"))
    subscribers_backoff: float = Field(5.0, gt=0, validation_alias=AliasChoices("COLLECTIONS_SUBSCRIBERS_BACKOFF"))
    subscribers_backoff_cap: float = Field(900.0, gt=0,
                                           validation_alias=AliasChoices("COLLECTIONS_SUBSCRIBERS_BACKOFF_CAP"))
    subscribers_timeout: float = Field(10.0, gt=0, validation_alias=AliasChoices("COLLECTIONS_SUBSCRIBERS_TIMEOUT"))

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'collections.db').as_posix()}"
        return self

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"
