"""OAuth credentials are encrypted at rest and survive key rotation."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from pytest_django import Settings as SettingsWrapper

from calendars import crypto
from calendars.models import GoogleAccount
from tests.factories import GoogleAccountFactory

pytestmark = pytest.mark.django_db

SECRET_REFRESH = "1//refresh-token-that-must-never-be-stored-in-clear"


def _raw_credentials(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendars_googleaccount WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_credentials_are_not_readable_in_the_database() -> None:
    account = GoogleAccountFactory(credentials={"refresh_token": SECRET_REFRESH, "token": "ya29.x"})
    raw = _raw_credentials(account.pk)
    assert SECRET_REFRESH not in raw
    assert "refresh_token" not in raw
    assert GoogleAccount.objects.get(pk=account.pk).credentials["refresh_token"] == SECRET_REFRESH


def test_credentials_survive_key_rotation(settings: SettingsWrapper) -> None:
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old_key
    account = GoogleAccountFactory(credentials={"refresh_token": SECRET_REFRESH})
    before = _raw_credentials(account.pk)

    settings.FIELD_ENCRYPTION_KEY = f"{new_key},{old_key}"
    assert GoogleAccount.objects.get(pk=account.pk).credentials["refresh_token"] == SECRET_REFRESH
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 1 row(s)" in out.getvalue()
    after = _raw_credentials(account.pk)
    assert after != before

    settings.FIELD_ENCRYPTION_KEY = new_key
    assert GoogleAccount.objects.get(pk=account.pk).credentials["refresh_token"] == SECRET_REFRESH


def test_reading_with_a_foreign_key_raises_a_clear_error(settings: SettingsWrapper) -> None:
    account = GoogleAccountFactory()
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        GoogleAccount.objects.get(pk=account.pk)
