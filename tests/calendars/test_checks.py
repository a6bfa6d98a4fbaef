"""Each deployment check fails with its own id when wrong and passes when right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_django import Settings as SettingsWrapper

from calendars import checks, translations

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Shaped like what `secrets.token_urlsafe` generates.
GENERATED_KEY = "Zk3vQ9_xTq2LwR8mYb5NcJ1hUe7sPa4dGo6iKf0tVn-X"
GENERATED_SECRET_KEY = "q7Lm2Xr9Tz4Wb8Nk1Vd5Hs3Jy6Pc0Fg_Ua-Ee4Rt8Io2Op6As1Df5Gh9Jk3Lz7Xc"


def _ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [message.id for message in messages]


@pytest.fixture(autouse=True)
def _fresh_translation_cache() -> None:
    translations._catalog_for.cache_clear()


@pytest.mark.parametrize("key", ["", "short-key"])
def test_inbound_api_key_check_fails_when_missing_or_short(
    settings: SettingsWrapper, key: str
) -> None:
    settings.CALDAV_INBOUND_API_KEY = key
    assert _ids(checks.check_inbound_api_key()) == ["convoke.E001"]


def test_inbound_api_key_check_passes_with_a_long_key(settings: SettingsWrapper) -> None:
    settings.CALDAV_INBOUND_API_KEY = GENERATED_KEY
    assert checks.check_inbound_api_key() == []


@pytest.mark.parametrize(
    "key",
    [
        "change-me-at-least-32-characters-long-random",  # the old .env.example value
        "k" * 40,
        "replace-me-with-a-generated-value-of-48-characters",
    ],
)
def test_inbound_api_key_check_fails_when_a_placeholder(
    settings: SettingsWrapper, key: str
) -> None:
    settings.CALDAV_INBOUND_API_KEY = key
    messages = checks.check_inbound_api_key()
    assert _ids(messages) == ["convoke.E001"]
    assert "placeholder" in messages[0].msg


@pytest.mark.parametrize("key", ["change-me-to-a-long-random-value", "x" * 50])
def test_secret_key_check_fails_when_a_placeholder(settings: SettingsWrapper, key: str) -> None:
    settings.DEBUG = False
    settings.SECRET_KEY = key
    assert _ids(checks.check_secret_key()) == ["convoke.E013"]
    settings.SECRET_KEY = GENERATED_SECRET_KEY
    assert checks.check_secret_key() == []


def test_shared_cache_check_fails_with_several_web_processes_and_a_local_cache(
    settings: SettingsWrapper,
) -> None:
    settings.WEB_CONCURRENCY = 3
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    messages = checks.check_shared_cache()
    assert _ids(messages) == ["convoke.E014"]
    assert "CACHE_URL" in messages[0].hint


def test_shared_cache_check_passes_with_one_process_or_a_shared_cache(
    settings: SettingsWrapper,
) -> None:
    settings.WEB_CONCURRENCY = 1
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert checks.check_shared_cache() == []
    settings.WEB_CONCURRENCY = 3
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
        }
    }
    assert checks.check_shared_cache() == []


@pytest.mark.parametrize("url", ["", "convoke.example.org", "/relative", "ftp://x.example.org"])
def test_app_url_check_fails_when_missing_or_not_absolute(
    settings: SettingsWrapper, url: str
) -> None:
    settings.APP_URL = url
    assert _ids(checks.check_app_url()) == ["convoke.E002"]


def test_app_url_check_passes_with_an_absolute_url(settings: SettingsWrapper) -> None:
    settings.APP_URL = "https://convoke.example.org"
    assert checks.check_app_url() == []


def test_callback_host_check_fails_when_host_not_allowed(settings: SettingsWrapper) -> None:
    settings.APP_URL = "https://convoke.example.org"
    settings.ALLOWED_HOSTS = ["other.example.org"]
    messages = checks.check_callback_host_allowed()
    assert _ids(messages) == ["convoke.E003"]
    assert "convoke.example.org" in messages[0].hint


@pytest.mark.parametrize("allowed", [["convoke.example.org"], [".example.org"], ["*"]])
def test_callback_host_check_passes_when_host_allowed(
    settings: SettingsWrapper, allowed: list[str]
) -> None:
    settings.APP_URL = "https://convoke.example.org"
    settings.ALLOWED_HOSTS = allowed
    assert checks.check_callback_host_allowed() == []


def test_translations_check_passes_on_the_bundled_file(settings: SettingsWrapper) -> None:
    settings.TRANSLATIONS_JSON_PATH = PROJECT_DIR / "translations.json"
    assert checks.check_translations() == []


def test_translations_check_fails_when_file_missing(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.TRANSLATIONS_JSON_PATH = tmp_path / "nope.json"
    messages = checks.check_translations()
    assert _ids(messages) == ["convoke.E004"]
    assert "does not exist" in messages[0].msg


def test_translations_check_fails_when_file_unreadable(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    # A directory in place of the file cannot be read, whoever runs the test (even root).
    settings.TRANSLATIONS_JSON_PATH = tmp_path
    assert _ids(checks.check_translations()) == ["convoke.E004"]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'["a list"]', b'{"en": {"k": 1}}'])
def test_translations_check_fails_when_invalid(
    settings: SettingsWrapper, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "translations.json"
    path.write_bytes(content)
    settings.TRANSLATIONS_JSON_PATH = path
    assert _ids(checks.check_translations()) == ["convoke.E005"]


def _bundled() -> dict[str, dict[str, str]]:
    return json.loads((PROJECT_DIR / "translations.json").read_text())


def test_translations_check_fails_when_a_language_is_missing(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    data = _bundled()
    del data["nl"]
    path = tmp_path / "translations.json"
    path.write_text(json.dumps(data))
    settings.TRANSLATIONS_JSON_PATH = path
    messages = checks.check_translations()
    assert _ids(messages) == ["convoke.E006"]
    assert "'nl'" in messages[0].msg


def test_translations_check_fails_when_a_template_key_is_missing(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    data = _bundled()
    del data["de"]["page.footer"]
    path = tmp_path / "translations.json"
    path.write_text(json.dumps(data))
    settings.TRANSLATIONS_JSON_PATH = path
    messages = checks.check_translations()
    assert _ids(messages) == ["convoke.E007"]
    assert "'de'" in messages[0].msg and "page.footer" in messages[0].msg


def test_template_keys_are_found_by_parsing_templates() -> None:
    assert {"page.product_name", "page.footer"} <= checks.required_translation_keys()


@pytest.mark.parametrize(
    "configured",
    [
        {"MESSAGES_API_URL": "https://messages.example.org"},
        {"MESSAGES_API_URL": "https://messages.example.org", "MESSAGES_API_KEY": "k"},
        {"MESSAGES_CHANNEL_ID": "0f0e"},
    ],
)
def test_messages_check_fails_when_half_configured(
    settings: SettingsWrapper, configured: dict[str, str]
) -> None:
    settings.MESSAGES_API_URL = settings.MESSAGES_API_KEY = settings.MESSAGES_CHANNEL_ID = ""
    for name, value in configured.items():
        setattr(settings, name, value)
    assert _ids(checks.check_messages_api()) == ["convoke.E008"]


def test_messages_check_passes_when_complete_or_absent(settings: SettingsWrapper) -> None:
    settings.MESSAGES_API_URL = settings.MESSAGES_API_KEY = settings.MESSAGES_CHANNEL_ID = ""
    assert checks.check_messages_api() == []
    settings.MESSAGES_API_URL = "https://messages.example.org"
    settings.MESSAGES_API_KEY = "key"
    settings.MESSAGES_CHANNEL_ID = "0f0e"
    assert checks.check_messages_api() == []


def test_mail_route_check_fails_in_production_with_files_only(settings: SettingsWrapper) -> None:
    settings.DEBUG = False
    settings.MAIL_ROUTE = "file"
    assert _ids(checks.check_mail_route()) == ["convoke.E009"]


@pytest.mark.parametrize("route", ["smtp", "brevo"])
def test_mail_route_check_passes_with_a_real_route(settings: SettingsWrapper, route: str) -> None:
    settings.DEBUG = False
    settings.MAIL_ROUTE = route
    assert checks.check_mail_route() == []


@pytest.mark.parametrize(
    ("client_id", "secret", "webhook", "named"),
    [
        ("", "s", "https://c.example.org/webhooks/google-calendar/", "GOOGLE_CLIENT_ID"),
        ("id", "", "https://c.example.org/webhooks/google-calendar/", "GOOGLE_CLIENT_SECRET"),
        ("id", "s", "", "GOOGLE_WEBHOOK_URL"),
        ("id", "s", "http://c.example.org/webhooks/google-calendar/", "GOOGLE_WEBHOOK_URL"),
    ],
)
def test_google_check_fails_when_enabled_without_its_settings(
    settings: SettingsWrapper, client_id: str, secret: str, webhook: str, named: str
) -> None:
    settings.GOOGLE_INVITE_ENABLED = True
    settings.GOOGLE_CLIENT_ID, settings.GOOGLE_CLIENT_SECRET = client_id, secret
    settings.GOOGLE_WEBHOOK_URL = webhook
    messages = checks.check_google()
    assert _ids(messages) == ["convoke.E010"]
    assert named in messages[0].msg


def test_google_check_says_the_webhook_url_is_not_https_when_it_is_http(
    settings: SettingsWrapper,
) -> None:
    settings.GOOGLE_INVITE_ENABLED = True
    settings.GOOGLE_CLIENT_ID, settings.GOOGLE_CLIENT_SECRET = "id", "secret"
    settings.GOOGLE_WEBHOOK_URL = "http://c.example.org/webhooks/google-calendar/"
    message = checks.check_google()[0].msg
    assert "GOOGLE_WEBHOOK_URL is not an absolute https URL" in message
    assert "not set" not in message


def test_google_check_passes_when_complete_or_disabled(settings: SettingsWrapper) -> None:
    settings.GOOGLE_INVITE_ENABLED = False
    settings.GOOGLE_CLIENT_ID = ""
    assert checks.check_google() == []
    settings.GOOGLE_INVITE_ENABLED = True
    settings.GOOGLE_CLIENT_ID, settings.GOOGLE_CLIENT_SECRET = "id", "secret"
    settings.GOOGLE_WEBHOOK_URL = "https://c.example.org/webhooks/google-calendar/"
    assert checks.check_google() == []


def test_encryption_key_check_fails_on_a_malformed_key(settings: SettingsWrapper) -> None:
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"
    assert _ids(checks.check_encryption_key()) == ["convoke.E011"]


def _check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=PROJECT_DIR,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
            "DJANGO_SETTINGS_MODULE": "calendars.settings",
            "SECRET_KEY": GENERATED_SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_names_every_problem_of_a_bad_installation(tmp_path: Path) -> None:
    result = _check_deploy(
        {
            "DEBUG": "false",
            "CALDAV_INBOUND_API_KEY": "short",
            "APP_URL": "https://convoke.example.org",
            "ALLOWED_HOSTS": "elsewhere.example.org",
            "MESSAGES_API_URL": "https://messages.example.org",
            "GOOGLE_INVITE_ENABLED": "true",
            "TRANSLATIONS_JSON_PATH": str(tmp_path / "missing.json"),
            "CALDAV_SERVER_SCHEDULES": "false",
        },
        tmp_path,
    )
    assert result.returncode != 0
    for check_id in ("E001", "E003", "E004", "E008", "E009", "E010", "W001", "W002"):
        assert f"convoke.{check_id}" in result.stderr


def test_check_deploy_lists_what_to_set_when_nothing_is_set(tmp_path: Path) -> None:
    """Production mode with nothing configured: the list of what to set, no traceback."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_DIR,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
            "DEBUG": "false",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    for name in ("SECRET_KEY", "CALDAV_INBOUND_API_KEY", "FIELD_ENCRYPTION_KEY"):
        assert f"(convoke.E012) {name} is not set" in output
    assert "(convoke.E009)" in output


def test_check_deploy_finds_no_convoke_problem_on_a_good_installation(tmp_path: Path) -> None:
    result = _check_deploy(
        {
            "DEBUG": "false",
            "CALDAV_INBOUND_API_KEY": GENERATED_KEY,
            "APP_URL": "https://convoke.example.org",
            "ALLOWED_HOSTS": "convoke.example.org",
            "EMAIL_HOST": "smtp.example.org",
            "CALDAV_URL": "https://dav.example.org/",
            "CALDAV_OUTBOUND_API_KEY": "o" * 40,
        },
        tmp_path,
    )
    assert "convoke." not in result.stdout + result.stderr


def test_check_deploy_warns_that_answers_cannot_be_recorded_without_a_caldav_server(
    settings: SettingsWrapper,
) -> None:
    settings.CALDAV_URL = ""
    [warning] = checks.check_caldav_server()
    assert warning.id == "convoke.W001" and "cannot be recorded" in warning.msg
    settings.CALDAV_URL = "https://dav.example.org/"
    settings.CALDAV_OUTBOUND_API_KEY = settings.CALDAV_USERNAME = ""
    assert _ids(checks.check_caldav_server()) == ["convoke.W001"]
    settings.CALDAV_USERNAME = "convoke"
    assert checks.check_caldav_server() == []


def test_translations_check_fails_when_a_key_used_by_the_email_code_is_missing(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    code_key = sorted(translations.CODE_KEYS - checks._template_keys())[0]
    data = _bundled()
    del data["fr"][code_key]
    path = tmp_path / "translations.json"
    path.write_text(json.dumps(data))
    settings.TRANSLATIONS_JSON_PATH = path
    messages = checks.check_translations()
    assert _ids(messages) == ["convoke.E007"]
    assert "'fr'" in messages[0].msg and code_key in messages[0].msg
