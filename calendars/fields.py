"""Model fields that keep their value encrypted in the database."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from calendars import crypto


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token; decrypted on load, encrypted on save."""

    description = "JSON encrypted with FIELD_ENCRYPTION_KEY"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return json.loads(crypto.decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return crypto.encrypt(json.dumps(value, sort_keys=True))
