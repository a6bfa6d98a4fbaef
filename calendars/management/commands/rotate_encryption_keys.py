"""``manage.py rotate_encryption_keys``: re-encrypt stored secrets with the primary key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from calendars.services import encrypted_fields_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt OAuth credentials with the first key of FIELD_ENCRYPTION_KEY. "
        "Put the new key first (NEW,OLD), run this, then remove OLD."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = encrypted_fields_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} row(s) with the primary key."))
