"""Settings as a deployer meets them: production passes ``check --deploy``, the demo needs no environment."""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables that would leak the test run's configuration into the child process.
INHERITED = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "REDIS_URL")


def child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED and not k.startswith("DJANGO_")}
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def random_secret(length: int = 50) -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def test_production_passes_check_deploy_without_warnings() -> None:
    env = child_env(DJANGO_ENV="production", DJANGO_SECRET_KEY=random_secret(), DJANGO_ALLOWED_HOSTS="crm.example.com")

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output.upper()
    assert "no issues" in output


@pytest.mark.skipif((REPO_ROOT / ".env").exists(), reason="a local .env could supply DJANGO_SECRET_KEY")
def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = child_env(DJANGO_ENV="production", DJANGO_ALLOWED_HOSTS="crm.example.com")

    result = run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "debug": settings.DEBUG,
    "secure_cookies": settings.SESSION_COOKIE_SECURE,
    "hosts": settings.ALLOWED_HOSTS,
}))
"""


@pytest.mark.skipif((REPO_ROOT / ".env").exists(), reason="a local .env would feed the child process settings")
def test_default_settings_are_the_embedded_demo() -> None:
    env = child_env(DJANGO_SETTINGS_MODULE="leadcrm.settings")

    result = run(["-c", PRINT_SETTINGS], env)

    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["eager"] is True
    assert settings["debug"] is True
    assert "127.0.0.1" in settings["hosts"]


@pytest.mark.skipif((REPO_ROOT / ".env").exists(), reason="a local .env would feed the child process settings")
def test_production_settings_are_locked_down() -> None:
    env = child_env(
        DJANGO_SETTINGS_MODULE="leadcrm.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=random_secret(),
        DJANGO_ALLOWED_HOSTS="crm.example.com,www.crm.example.com",
    )

    result = run(["-c", PRINT_SETTINGS], env)

    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["debug"] is False
    assert settings["secure_cookies"] is True
    assert settings["hosts"] == ["crm.example.com", "www.crm.example.com"]
