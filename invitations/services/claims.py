"""Claiming deliveries for sending: one statement, whatever the number of deliveries.

A claim moves deliveries to ``sending`` (``attempts + 1``, ``claimed_at`` now) and returns
them (every field but the body, which is read only when needed) in one
``UPDATE ... RETURNING``. Two workers never claim the same delivery:

- PostgreSQL: the rows are chosen by a sub-select ``FOR UPDATE SKIP LOCKED``, so concurrent
  claims take different rows without waiting for each other; a row another transaction
  moved meanwhile is re-checked against ``status`` before it is updated.
- SQLite: one writer at a time (``IMMEDIATE`` transactions), and the update is conditional
  on the status, so a row taken by an earlier claim is not taken again.

:func:`deliveries_claim` takes the oldest ``pending`` deliveries (new ones: a worker sending
the outbox in batches); :func:`delivery_claim` takes one delivery by id when it is
``pending`` or ``failed`` (a retry the sweep or an operator asked for).
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from invitations.models import CLAIMABLE_STATUSES, Delivery, DeliveryStatus


def _returned(prefix: str, *, body: bool) -> str:
    """The columns a claim returns: a batch leaves out the body (the worker renders from the
    stored parse and reads the body, a deferred field, only for a delivery without one)."""
    quote = connection.ops.quote_name
    return ", ".join(
        f"{prefix}{quote(str(field.column))}"
        for field in Delivery._meta.concrete_fields
        if body or field.name != "body"
    )


def _claim(
    where: str, params: list[object], *, limit: int | None, body: bool = False
) -> list[Delivery]:
    """Claim the deliveries matching ``where`` (oldest first, at most ``limit``). Only
    constants and quoted names are formatted into the SQL; values are parameters."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    limited = " LIMIT %s" if limit is not None else ""
    changes = (
        "status = %s, attempts = attempts + 1, claimed_at = %s, next_attempt_at = NULL, "
        "updated_at = %s"
    )
    chosen = f"SELECT id FROM {table} WHERE {where} ORDER BY id{limited}"  # noqa: S608
    claim = [DeliveryStatus.SENDING, now, now]
    if connection.features.has_select_for_update_skip_locked:
        # Chosen once and locked (a materialized CTE: as a sub-select of the UPDATE, the
        # planner may run the choice again for each row and take more than the limit), then
        # updated by primary key.
        sql = (
            f"WITH chosen AS MATERIALIZED ({chosen} FOR UPDATE SKIP LOCKED) "  # noqa: S608
            f"UPDATE {table} AS claimed SET {changes} FROM chosen "
            f"WHERE claimed.id = chosen.id RETURNING {_returned('claimed.', body=body)}"
        )
        values = [*params, *([limit] if limit is not None else []), *claim]
    else:
        # SQLite: one writer at a time; the update re-checks the condition.
        sql = f"UPDATE {table} SET {changes} WHERE id IN ({chosen}) AND {where} RETURNING {_returned('', body=body)}"  # noqa: S608, E501
        values = [*claim, *params, *([limit] if limit is not None else []), *params]
    rows = list(Delivery.objects.raw(sql, values))
    rows.sort(key=lambda delivery: delivery.pk)
    return rows


def deliveries_claim(*, limit: int) -> list[Delivery]:
    """Claim up to ``limit`` of the oldest pending deliveries (one statement)."""
    if limit <= 0:
        return []
    return _claim("status = %s", [DeliveryStatus.PENDING], limit=limit)


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Claim one pending or failed delivery (one statement); None when it is not claimable
    (sent, dead, skipped, or being sent by another worker right now)."""
    statuses = ", ".join(["%s"] * len(CLAIMABLE_STATUSES))
    claimed = _claim(
        f"id = %s AND status IN ({statuses})",
        [delivery_id, *CLAIMABLE_STATUSES],
        limit=None,
        body=True,
    )
    return claimed[0] if claimed else None
