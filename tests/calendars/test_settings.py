"""Settings defaults and production refusals, each read in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "DATABASE_ENGINE": settings.DATABASES["default"]["ENGINE"],
    "DATABASE_NAME": str(settings.DATABASES["default"]["NAME"]),
    "DATABASE_OPTIONS": settings.DATABASES["default"].get("OPTIONS", {}),
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CELERY_BROKER_CONFIGURED": settings.CELERY_BROKER_CONFIGURED,
    "MAIL_ROUTE": settings.MAIL_ROUTE,
    "MAILERS": settings.MAILERS,
    "CALLBACK_MAX_BYTES": settings.CALLBACK_MAX_BYTES,
    "RETIRED_VARIABLES_SET": list(settings.RETIRED_VARIABLES_SET),
    "CALENDAR_ITIP_ENABLED": settings.CALENDAR_ITIP_ENABLED,
    "GOOGLE_INVITE_ENABLED": settings.GOOGLE_INVITE_ENABLED,
    "GOOGLE_TOKEN_URI": settings.GOOGLE_TOKEN_URI,
    "GOOGLE_AUTH_URI": settings.GOOGLE_AUTH_URI,
    "GOOGLE_API_ENDPOINT": settings.GOOGLE_API_ENDPOINT,
    "TRANSLATIONS_JSON_PATH": str(settings.TRANSLATIONS_JSON_PATH),
    "APP_URL": settings.APP_URL,
    "deprecated_email_settings": [
        name for name in ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_FILE_PATH")
        if settings.is_overridden(name)
    ],
}))
"""


def _settings_in(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "calendars.settings",
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _read(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    result = _settings_in(env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_give_the_embedded_setup_when_debug(tmp_path: Path) -> None:
    values = _read({"DEBUG": "true"}, tmp_path)
    assert values["DATABASE_ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASE_NAME"] == str(PROJECT_DIR / "var" / "convoke.sqlite3")
    assert values["DATABASE_OPTIONS"] == {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    assert values["CELERY_BROKER_URL"] == "filesystem://"
    assert values["CELERY_BROKER_CONFIGURED"] is False
    assert values["MAIL_ROUTE"] == "file"
    assert values["MAILERS"] == {
        "default": {
            "BACKEND": "calendars.mail_files.EmailBackend",
            "OPTIONS": {"file_path": str(PROJECT_DIR / "var" / "mail")},
        }
    }
    assert values["CALLBACK_MAX_BYTES"] == 1024 * 1024
    assert values["RETIRED_VARIABLES_SET"] == []
    assert values["CALENDAR_ITIP_ENABLED"] is True
    assert values["GOOGLE_INVITE_ENABLED"] is False
    assert values["GOOGLE_TOKEN_URI"] == "https://oauth2.googleapis.com/token"
    assert values["GOOGLE_AUTH_URI"] == "https://accounts.google.com/o/oauth2/auth"
    assert values["GOOGLE_API_ENDPOINT"] == "https://www.googleapis.com/calendar/v3/"
    assert values["TRANSLATIONS_JSON_PATH"] == str(PROJECT_DIR / "translations.json")
    assert values["deprecated_email_settings"] == []


def test_production_mode_is_refused_without_each_secret(tmp_path: Path) -> None:
    result = _settings_in({"DEBUG": "false"}, tmp_path)
    assert result.returncode != 0
    for name in ("SECRET_KEY", "CALDAV_INBOUND_API_KEY", "FIELD_ENCRYPTION_KEY"):
        assert name in result.stderr


def test_production_mode_names_only_the_missing_secret(tmp_path: Path) -> None:
    result = _settings_in(
        {"DEBUG": "false", "SECRET_KEY": "x" * 50, "CALDAV_INBOUND_API_KEY": "k" * 40},
        tmp_path,
    )
    assert result.returncode != 0
    refusal = result.stderr.strip().splitlines()[-1]
    assert "FIELD_ENCRYPTION_KEY" in refusal
    assert "SECRET_KEY" not in refusal.split("without")[1].split(".")[0]


def test_production_mode_starts_with_every_secret(tmp_path: Path) -> None:
    values = _read(
        {
            "DEBUG": "false",
            "SECRET_KEY": "x" * 50,
            "CALDAV_INBOUND_API_KEY": "k" * 40,
            "FIELD_ENCRYPTION_KEY": "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=",
        },
        tmp_path,
    )
    assert values["DEBUG"] is False


def test_smtp_route_when_email_host_is_set(tmp_path: Path) -> None:
    values = _read(
        {
            "DEBUG": "true",
            "EMAIL_HOST": "smtp.example.org",
            "EMAIL_PORT": "2525",
            "EMAIL_HOST_USER": "relay",
            "EMAIL_HOST_PASSWORD": "relay-password",
            "EMAIL_USE_TLS": "false",
        },
        tmp_path,
    )
    assert values["MAIL_ROUTE"] == "smtp"
    mailer = values["MAILERS"]["default"]  # type: ignore[index]
    assert mailer["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert mailer["OPTIONS"] == {
        "host": "smtp.example.org",
        "port": 2525,
        "username": "relay",
        "password": "relay-password",
        "use_tls": False,
        "timeout": 30,
    }
    assert values["deprecated_email_settings"] == []


def test_brevo_route_wins_when_its_key_is_set(tmp_path: Path) -> None:
    values = _read(
        {"DEBUG": "true", "EMAIL_HOST": "smtp.example.org", "BREVO_API_KEY": "xkeysib-test"},
        tmp_path,
    )
    assert values["MAIL_ROUTE"] == "brevo"
    mailer = values["MAILERS"]["default"]  # type: ignore[index]
    assert mailer["BACKEND"] == "anymail.backends.brevo.EmailBackend"


def test_database_and_broker_urls_are_read(tmp_path: Path) -> None:
    values = _read(
        {
            "DEBUG": "true",
            "DATABASE_URL": "postgres://convoke:pw@127.0.0.1:5432/convoke",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
        },
        tmp_path,
    )
    assert values["DATABASE_ENGINE"] == "django.db.backends.postgresql"
    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert values["CELERY_BROKER_CONFIGURED"] is True


def test_a_retired_variable_still_set_is_named(tmp_path: Path) -> None:
    values = _read({"DEBUG": "true", "CALDAV_SERVER_SCHEDULES": "true"}, tmp_path)
    assert values["RETIRED_VARIABLES_SET"] == ["CALDAV_SERVER_SCHEDULES"]


@pytest.mark.parametrize("flag", ["CALENDAR_ITIP_ENABLED"])
def test_boolean_flags_are_read(tmp_path: Path, flag: str) -> None:
    values = _read({"DEBUG": "true", flag: "false"}, tmp_path)
    assert values[flag] is False
