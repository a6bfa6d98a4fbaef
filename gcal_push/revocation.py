"""Google revoked a grant: the one place that records it (docs/architecture.md).

Whoever meets ``invalid_grant`` first calls :func:`google_account_revoked_record`: the
bookings (through the core's ``google_grant_revoked`` hook), the sync and the channel runs
(through :func:`google_calendars_revoked`, when they know calendars rather than accounts).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from calendars.models import Calendar, GoogleAccount
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from invitations.services.bookings import google_revoked_email_store

logger = logging.getLogger(__name__)


def google_account_revoked_record(*, account_id: int) -> bool:
    """Google refused the grant (``invalid_grant``): the one place that records it.

    Once, whoever notices first: the account and its calendars are marked disconnected,
    their channels stopped here (Google cannot stop them without a grant; they expire there
    and the webhook ignores them) and their syncs called off, and the subscriber's email is
    stored in the outbox, all in one transaction. Returns whether this call recorded it.
    """
    now = timezone.now()
    with transaction.atomic():
        account = (
            GoogleAccount.objects.select_for_update()
            .select_related("owner")
            .filter(pk=account_id)
            .first()
        )
        if account is None or account.revoked:
            return False
        account.revoked = True
        account.revoked_at = now
        account.credentials = None
        account.save(update_fields=["revoked", "revoked_at", "credentials", "updated_at"])
        Calendar.objects.filter(google_account_id=account_id).update(
            connected=False, updated_at=now
        )
        calendar_ids = list(
            Calendar.objects.filter(google_account_id=account_id).values_list("pk", flat=True)
        )
        _watching_stop(calendar_ids, now=now)
        google_revoked_email_store(account=account)
    logger.warning(
        "google grant revoked account=%s calendars=%d; calendars disconnected",
        account_id,
        len(calendar_ids),
    )
    return True


def google_calendars_revoked(calendar_ids: set[int]) -> None:
    """The channel runs and the sync met ``invalid_grant`` for these calendars: record the
    revocation of their accounts, and stop watching the calendars themselves."""
    if not calendar_ids:
        return
    account_ids = sorted(
        set(
            Calendar.objects.filter(
                pk__in=list(calendar_ids), google_account__isnull=False
            ).values_list("google_account_id", flat=True)
        )
    )
    for account_id in account_ids:
        google_account_revoked_record(account_id=account_id)
    with transaction.atomic():
        _watching_stop(list(calendar_ids), now=timezone.now())


def _watching_stop(calendar_ids: list[int], *, now: dt.datetime) -> None:
    GoogleCalendarChannel.objects.live().filter(calendar_id__in=calendar_ids).update(
        state=ChannelState.STOPPED, stopped_at=now
    )
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar_id=pk) for pk in calendar_ids], ignore_conflicts=True
    )
    GoogleCalendarSyncState.objects.filter(pk__in=calendar_ids).update(
        grant_revoked_at=now, dirty=False, sync_pending=False, pending_since=None
    )
