"""Walking a large table in batches by primary key (docs/style.md rule 16): the one loop.

Each batch is one query, ``pk > last seen ORDER BY pk LIMIT n``: memory stays flat whatever
the number of rows, every batch costs the same, and rows that change behind the cursor are
neither skipped nor repeated (unlike ``OFFSET``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import QuerySet


def keyset_batches(
    queryset: QuerySet[Any],
    *,
    batch_size: int,
    fields: tuple[str, ...] = (),
    atomic: bool = False,
) -> Iterator[list[Any]]:
    """Yield the rows of ``queryset`` in batches of at most ``batch_size``, by primary key.

    Rows are model instances, or with ``fields`` value tuples (one field: the bare values,
    ``fields=("pk",)`` the primary keys); ``pk`` is selected with them in any case. With ``atomic``,
    each batch is read and handled by the caller's loop body inside one transaction (for a
    ``select_for_update`` queryset): the transaction commits when the loop asks for the next
    batch, and rolls back if the body raises.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last_pk: Any = None
    while True:
        with transaction.atomic() if atomic else contextlib.nullcontext():
            page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
            page = page.order_by("pk")
            if fields:
                names = fields if fields[0] == "pk" else ("pk", *fields)
                rows = list(page.values_list(*names)[:batch_size])
                if not rows:
                    return
                last_pk = rows[-1][0]
                kept = rows if names == fields else [row[1:] for row in rows]
                batch: list[Any] = [row[0] for row in kept] if len(fields) == 1 else kept
            else:
                batch = list(page[:batch_size])
                if not batch:
                    return
                last_pk = batch[-1].pk
            yield batch
