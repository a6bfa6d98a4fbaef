"""Encryption at rest for secrets such as OAuth credentials.

``FIELD_ENCRYPTION_KEY`` holds one or more comma-separated Fernet keys. The first key
encrypts; every key decrypts, so a new key can be put first and old rows re-encrypted with
:func:`calendars.services.encrypted_fields_rotate` before the old key is dropped.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _fernet_for(keys: str) -> MultiFernet:
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty.")
    try:
        return MultiFernet([Fernet(part) for part in parts])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must hold comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        ) from exc


def fernet() -> MultiFernet:
    """The MultiFernet for the keys configured now (read at call time)."""
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt a stored secret with any key in FIELD_ENCRYPTION_KEY"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first (primary) key."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt a stored secret with any key in FIELD_ENCRYPTION_KEY"
        ) from exc
