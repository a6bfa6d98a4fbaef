"""Real Celery workers for tests of the "acknowledge now, work later" contract.

The suite runs tasks eagerly (tests/settings.py). These helpers switch that off for one test
and route our tasks to a queue of that test's own, so that workers of parallel test
processes never take each other's tasks:

- ``inprocess_celery_worker``: ``celery.contrib.testing.worker.start_worker`` in a thread of
  the test process, on whatever broker the settings name (the embedded filesystem broker
  by default, Redis in CI's second pass).
- :class:`WorkerProcess`: ``celery -A calendars worker`` as a subprocess with the test's
  environment and database, which a test can kill with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from calendars.celery import app

PROJECT_DIR = Path(__file__).resolve().parents[2]
OUR_TASKS = "invitations.tasks.*"


@contextlib.contextmanager
def tasks_routed_to(queue: str, pattern: str = "*") -> Iterator[str]:
    """Publish the tasks matching ``pattern`` for real (not eagerly) to ``queue``."""
    previous_eager = app.conf.task_always_eager
    previous_routes = app.conf.task_routes
    app.conf.task_always_eager = False
    app.conf.task_routes = {pattern: {"queue": queue}}
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)
    try:
        yield queue
    finally:
        app.conf.task_always_eager = previous_eager
        app.conf.task_routes = previous_routes
        app.amqp.flush_routes()
        app.amqp.__dict__.pop("router", None)


@contextlib.contextmanager
def isolated_task_queue() -> Iterator[str]:
    """Publish our tasks for real (not eagerly) to a queue used by this test only."""
    with tasks_routed_to(f"test-{uuid.uuid4().hex[:12]}", OUR_TASKS) as queue:
        yield queue


@contextlib.contextmanager
def worker_thread(queue: str, *, shutdown_timeout: float = 30.0) -> Iterator[None]:
    """A real Celery worker, a thread of this process, consuming ``queue``."""
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=shutdown_timeout,
        queues=[queue],
    ):
        yield


@pytest.fixture
def inprocess_celery_worker(transactional_db: None) -> Iterator[str]:
    """A real worker thread consuming this test's queue; yields the queue name."""
    with isolated_task_queue() as queue, worker_thread(queue, shutdown_timeout=20.0):
        yield queue


def database_url() -> str:
    """A DATABASE_URL for the database this test runs against (the test database)."""
    params = connection.settings_dict
    if connection.vendor != "postgresql":
        raise RuntimeError("a worker subprocess needs a database server (PostgreSQL)")
    user = quote(params.get("USER") or "", safe="")
    password = quote(params.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or "5432"
    return f"postgres://{credentials}{host}:{port}/{params['NAME']}"


class WorkerProcess:
    """``celery -A calendars worker`` in its own process group, consuming one queue."""

    def __init__(self, *, queue: str, environment: dict[str, str], log_path: Path) -> None:
        self.queue = queue
        self.environment = environment
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "calendars",
            "worker",
            "-Q",
            self.queue,
            "-n",
            f"{self.queue}-{uuid.uuid4().hex[:6]}@%h",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
