"""Rotation of the key that encrypts stored secrets (``manage.py rotate_encryption_keys``)."""

from __future__ import annotations

import logging

from calendars.batching import keyset_batches
from calendars.models import GoogleAccount

logger = logging.getLogger(__name__)

ROTATION_BATCH_SIZE = 200


def encrypted_fields_rotate(*, batch_size: int = ROTATION_BATCH_SIZE) -> int:
    """Re-encrypt every stored secret with the first key of ``FIELD_ENCRYPTION_KEY``.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    Each batch is decrypted with whichever key matches and written back encrypted with the
    primary key, in two queries per batch. Returns the number of rows rewritten.
    """
    rewritten = 0
    accounts = (
        GoogleAccount.objects.select_for_update()
        .filter(credentials__isnull=False)
        .only("pk", "credentials")
    )
    for batch in keyset_batches(accounts, batch_size=batch_size, atomic=True):
        GoogleAccount.objects.bulk_update(batch, ["credentials"])
        rewritten += len(batch)
    logger.info("encrypted fields rotated rows=%d", rewritten)
    return rewritten
