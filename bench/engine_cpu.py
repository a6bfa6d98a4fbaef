"""CPU per invitation outside parsing and rendering, in process (``python bench/engine_cpu.py``).

Issue 14's split of the delivery engine's CPU, measured in one process with
``time.process_time()`` (robust to other load, unlike wall time):

1. web: N sabre-shaped REQUESTs (``bench/sabre.py``) through ``calendars.wsgi.application``,
   called with WSGI environs built here (every middleware, the view, the store, the nudge);
   ``parse_itip`` + ``prepared_dump`` of the same bodies measured apart and subtracted;
2. worker: the batch path (``deliveries_send``, the body of ``deliveries_send_task``) over
   those deliveries to an aiosmtpd sink in a process of its own (``bench/sink.py``);
   ``email_build`` + ``email_bytes`` measured apart (per thread) and subtracted;
3. PostgreSQL: the CPU of the database's backends (``/proc/<pid>/stat`` of the
   ``pg_stat_activity`` pids) and ``pg_stat_database.xact_commit`` around each phase, and the
   statements Django sent (an execute wrapper; Django's own health check is not among them,
   its commit is).

It needs PostgreSQL and Redis: ``--postgres`` names the server (the database ``--database``
is dropped and created there: give a scratch name), ``--redis`` the broker and cache (its
database is flushed). Run it on a quiet machine, twice, before and after a change.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

import procstat  # noqa: E402  (bench/ is the script's folder)
from sabre import sabre_request  # noqa: E402

API_KEY = "bench-engine-cpu-" + "k" * 32
CALLBACK_PATH = "/api/v1.0/caldav-scheduling-callback/"


def _environment(*, postgres: str, database: str, redis: str, smtp_port: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="convoke-engine-cpu-"))
    os.environ.update(
        {
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "calendars.settings",
            "SECRET_KEY": "bench-" + "s" * 60,
            "CALDAV_INBOUND_API_KEY": API_KEY,
            "FIELD_ENCRYPTION_KEY": "Yk1xM0x2c3B1bW9yVHhUd2p2R2h6Q0ZtWlJ0Q0FrMkI=",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "APP_URL": "http://127.0.0.1",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_USE_TLS": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
            "DATABASE_URL": f"{postgres}/{database}",
            "CELERY_BROKER_URL": redis,
            "CACHE_URL": redis,
        }
    )


def _environ(body: bytes, sender: str, recipient: str) -> dict[str, Any]:
    """What gunicorn hands the application for one callback."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": CALLBACK_PATH,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "text/calendar; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_LS_API_KEY": API_KEY,
        "HTTP_X_LS_METHOD": "REQUEST",
        "HTTP_X_LS_SENDER": sender,
        "HTTP_X_LS_RECIPIENT": recipient,
    }


class Postgres:
    """The database's backends' CPU and commits, read from another database's session."""

    def __init__(self, url: str, database: str) -> None:
        import psycopg

        self.database = database
        self.stats = psycopg.connect(f"{url}/postgres", autocommit=True)

    def reading(self) -> tuple[float, int]:
        from django.db import connection

        with connection.cursor() as cursor:
            # This session's counters reach pg_stat_database at its next transaction's end.
            cursor.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.3)
        rows = self.stats.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]
        ).fetchall()
        cpu = procstat.cpu_seconds(pid for (pid,) in rows)
        row = self.stats.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [self.database]
        ).fetchone()
        assert row is not None
        return cpu, int(row[0]) - 1  # less the flush's own commit


def _thread_timed(function: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    lock = threading.Lock()

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            with lock:
                spent[0] += time.thread_time() - started

    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="callbacks (default 1000)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:55432")
    parser.add_argument("--database", default="convoke_engine_cpu")
    parser.add_argument("--redis", default="redis://127.0.0.1:6390/4")
    options = parser.parse_args()
    n = options.n

    sink = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "sink.py")], stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    words = sink.stdout.readline().split()
    try:
        _environment(
            postgres=options.postgres,
            database=options.database,
            redis=options.redis,
            smtp_port=int(words[1]),
        )
        import psycopg

        with psycopg.connect(f"{options.postgres}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {options.database} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {options.database}")
        import django

        django.setup()
        import redis
        from django.core.management import call_command
        from django.db import connection

        import invitations.services.build as build_module
        import invitations.transports.sessions as sessions_module
        from calendars.ical import Method, parse_itip
        from calendars.wsgi import application
        from invitations.prepared import prepared_dump
        from invitations.services import deliveries_send

        call_command("migrate", verbosity=0)
        redis.Redis.from_url(options.redis).flushdb()
        postgres = Postgres(options.postgres, options.database)
        statements = [0]

        def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements[0] += 1
            return execute(sql, params, many, context)

        def callback(index: int, salt: int) -> None:
            body, sender, recipient = sabre_request(index, recipient=1, salt=salt)
            status: list[str] = []
            answer = application(
                _environ(body, sender, recipient), lambda line, *_: status.append(line)
            )
            b"".join(answer)
            answer.close()
            assert status[0].startswith("202"), status

        for index in range(50):  # warm-up: imports, connections, caches
            callback(index, salt=9)
        deliveries_send(linger=0.0, renudge=False)

        bodies = [sabre_request(index, recipient=1)[0] for index in range(n)]
        started = time.process_time()
        for body in bodies:
            prepared_dump(parse_itip(body), method=Method.REQUEST)
        parse_ms = (time.process_time() - started) * 1000 / n

        cpu, commits = postgres.reading()
        with connection.execute_wrapper(counting):
            started = time.process_time()
            for index in range(n):
                callback(index, salt=0)
            web_ms = (time.process_time() - started) * 1000 / n
        web_cpu, web_commits = postgres.reading()
        web_pg_ms, web_pg_commits = (web_cpu - cpu) * 1000 / n, (web_commits - commits) / n
        web_statements = statements[0] / n

        rendering = [0.0]
        build_module.email_build = _thread_timed(build_module.email_build, rendering)
        sessions_module.email_bytes = _thread_timed(sessions_module.email_bytes, rendering)
        statements[0] = 0
        with connection.execute_wrapper(counting):
            started = time.process_time()
            summary = deliveries_send(linger=0.0, renudge=False)
            worker_ms = (time.process_time() - started) * 1000 / n
        worker_cpu, worker_commits = postgres.reading()
        assert summary.outcomes.get("sent") == n, summary
        render_ms = rendering[0] * 1000 / n
        worker_pg_ms = (worker_cpu - web_cpu) * 1000 / n
        worker_pg_commits = (worker_commits - web_commits) / n

        print(
            f"web     {web_ms:.3f} ms per callback, of which parse + prepared_dump "
            f"{parse_ms:.3f}: the rest {web_ms - parse_ms:.3f} ms; "
            f"{web_statements:.2f} statements, PostgreSQL {web_pg_ms:.3f} ms CPU and "
            f"{web_pg_commits:.2f} commits per callback"
        )
        print(
            f"worker  {worker_ms:.3f} ms per email, of which email_build + email_bytes "
            f"{render_ms:.3f}: the rest {worker_ms - render_ms:.3f} ms; "
            f"{statements[0] / n:.3f} statements ({summary.claims} claims), PostgreSQL "
            f"{worker_pg_ms:.3f} ms CPU and {worker_pg_commits:.3f} commits per email"
        )
        print(
            f"postgres {web_pg_ms + worker_pg_ms:.3f} ms CPU and "
            f"{web_pg_commits + worker_pg_commits:.2f} commits per invitation"
        )
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
