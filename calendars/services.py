"""Writes on the shared schema. Later issues add the booking service here."""

from __future__ import annotations

import logging

from django.db import transaction

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
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                GoogleAccount.objects.select_for_update()
                .filter(pk__gt=last_pk, credentials__isnull=False)
                .only("pk", "credentials")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            GoogleAccount.objects.bulk_update(batch, ["credentials"])
        rewritten += len(batch)
        last_pk = batch[-1].pk
    logger.info("encrypted fields rotated rows=%d", rewritten)
    return rewritten
