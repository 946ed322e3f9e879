"""docker-compose.yml cannot run here (no Docker engine); check it is complete and consistent."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_is_valid_and_complete():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgresql", "temporal", "temporal-ui", "mailpit", "worker", "web", "migrate"} <= set(services)
    worker_env = services["worker"]["environment"]
    for variable in ("COLLECTIONS_DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "COLLECTIONS_TASK_QUEUE",
                     "SMTP_HOST", "SMTP_PORT", "COLLECTIONS_POLICY", "COLLECTIONS_USERS"):
        assert variable in worker_env, variable
    assert worker_env["COLLECTIONS_DATABASE_URL"].startswith("postgresql+psycopg://")
    # the worker's own: a stalled worker exits for compose to restart it as a new process
    assert worker_env["COLLECTIONS_WATCHDOG_RESTARTS"] == "0"
    assert services["worker"]["restart"] == "unless-stopped"
    assert services["web"]["environment"] == {k: v for k, v in worker_env.items() if k != "COLLECTIONS_WATCHDOG_RESTARTS"}
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_variable_the_compose_file_sets_is_a_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {alias for field in Settings.model_fields.values()
             for alias in getattr(field.validation_alias, "choices", [])}
    for name in compose["services"]["worker"]["environment"]:
        assert name in known, f"{name} is not read by app/settings.py"


def test_the_image_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "store", "activities", "workflows", "app", "api", "templates", "policies"):
        assert f"COPY {package} ./{package}" in dockerfile, package
