"""A cursor on which PostgreSQL keeps the statements it runs prepared, per connection.

The scheduling callback's store runs one statement per callback (:mod:`scheduling.services`);
parsing and planning it on every callback was most of PostgreSQL's CPU per callback (issue 14).
"""

from __future__ import annotations

import functools
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper


@functools.cache
def _prepared_cursor_class() -> type:
    """Django's server-binding psycopg cursor, preparing what it executes (the backend module
    is imported on PostgreSQL only)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):  # type: ignore[misc,valid-type]
        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            options.setdefault("prepare", True)
            return super().execute(query, params, **options)  # type: ignore[misc]

        def _send_query_prepared(self, name: bytes, pgq: Any, **options: Any) -> None:
            # psycopg keeps the statement it sent (for Django's query log, which shows it
            # with its $n placeholders) on every path but this one (psycopg 3.3).
            self._query = pgq
            super()._send_query_prepared(name, pgq, **options)  # type: ignore[misc]

    return PreparedCursor


def prepared_cursor(*, database: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor of ``database``'s connection (a Django cursor: query logging and execute
    wrappers see its statements) on which PostgreSQL keeps the statements it ran prepared.

    Django's psycopg cursors merge the parameters into the text client-side, so PostgreSQL
    parses and plans every callback's statement anew; with server-side binding and
    ``prepare=True`` it does so once per connection (psycopg keeps the statement prepared,
    under its own name, until the connection closes; a new connection prepares it again).
    PostgreSQL's CPU per callback: 0.60 -> 0.40 ms (2,000 sabre callbacks, issue 14). Django
    leaves psycopg's preparing off (``prepare_threshold`` None) for connection poolers; the
    settings turn it on for explicit requests only (Django's own cursors bind client-side and
    never prepare). Behind a pooler in transaction mode (PgBouncer before 1.21, or without
    ``max_prepared_statements``), a statement prepared on one server connection is unknown on
    the next: set ``DB_PREPARED_STATEMENTS=false`` (``settings.DATABASE_PREPARED_STATEMENTS``).
    """
    database.ensure_connection()
    with database.wrap_database_errors:
        raw = _prepared_cursor_class()(database.connection)
    if database.queries_logged:
        return database.make_debug_cursor(raw)
    return database.make_cursor(raw)
