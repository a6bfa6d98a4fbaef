"""The delivery engine end to end: callbacks in, invitations out (``make bench-callback``).

Starts Convoke as compose.yml runs it (the ``web`` and ``worker`` commands read from
compose.yml, plus beat), an SMTP sink in a process of its own (``bench/sink.py``) and, with
``--servers``, scratch PostgreSQL and Redis servers; else the servers named by
DATABASE_URL / CELERY_BROKER_URL / CACHE_URL, else a fresh SQLite file and the filesystem
broker. Then it posts distinct sabre-shaped REQUESTs (``bench/sabre.py``) to the scheduling
callback, in phases:

1. ``instant``: C clients post as fast as they are answered for S seconds, the sink answering
   at once; then the queue drains.
2. ``sustained``: callbacks at a fixed rate (default 290/s) for a 60 s window (after a
   ramp-up of 5 s): is everything accepted also delivered, with the queue not growing?
3. ``slow``: the sink takes 2 s per message; callbacks at 200/s: delivered/s, the
   acknowledgement's latency, and the most SMTP sessions open at once.
4. ``memory`` (with ``--memory-minutes``): a long sustained run, RSS printed every minute.

For each phase it prints: callbacks acknowledged/s and the acknowledgement's p50/p95/p99
(open-loop phases measure latency from each callback's scheduled time), invitations
delivered/s during the load, the drain time after it, the CPU per delivered invitation of
each tier (web, worker, PostgreSQL, Redis; read from /proc for each process tree, so robust
to other load), PostgreSQL commits and sessions per invitation (pg_stat_database), the RSS
of web and worker at the start and end, and the load average. ``--project`` runs another
checkout (its own .venv) with the same load, for before/after figures.

With DATABASE_URL set, the benchmark migrates and writes to that database: point it at a
scratch one (or use --servers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procstat  # noqa: E402  (bench/ is the script's folder)
from sabre import sabre_request  # noqa: E402
from servers import Servers  # noqa: E402
from stack import PROJECT_DIR, Stack, free_port, nice_for_cpu_shares, wait_healthy  # noqa: E402

CALLBACK_PATH = "/api/v1.0/caldav-scheduling-callback/"


# --- the sink -------------------------------------------------------------------------------------


class Sink:
    """An in-process aiosmtpd handler that accepts everything after ``delay`` seconds (for
    benchmarks that share this module, such as bench/hostile.py)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.accepted = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.accepted += 1
        return "250 2.0.0 Accepted"


class SinkProcess:
    """``bench/sink.py`` as a child process, driven over its control port."""

    def __init__(self, python: str, impl: str = "light") -> None:
        self.impl = impl
        self.process = subprocess.Popen(
            [python, str(BENCH_DIR / "sink.py"), "--impl", impl],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        words = self.process.stdout.readline().decode().split()
        if not words or words[0] != "READY":
            raise SystemExit(f"the SMTP sink did not start: {words}")
        self.smtp_port, control_port = int(words[1]), int(words[2])
        self.control = socket.create_connection(("127.0.0.1", control_port))
        self.reader = self.control.makefile("r")
        self.lock = threading.Lock()

    def command(self, line: str = "STATS") -> dict[str, Any]:
        with self.lock:
            self.control.sendall((line + "\n").encode())
            return json.loads(self.reader.readline())

    @property
    def accepted(self) -> int:
        return int(self.command()["accepted"])

    def stop(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.wait(timeout=10)


# --- the load -------------------------------------------------------------------------------------


@dataclass
class Load:
    """Callbacks posted in one phase."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    behind: int = 0  # open loop: callbacks that started more than 50 ms after their time

    @property
    def acknowledged(self) -> int:
        return self.statuses.get(202, 0)


def callback_request(index: int, *, key: str, salt: int) -> bytes:
    """The ``index``-th callback as the bytes of one HTTP/1.1 request on its own connection
    (``Connection: close``: one request per connection, as a CalDAV server's client sends)."""
    body, sender, recipient = sabre_request(index, recipient=index, salt=salt)
    head = (
        f"POST {CALLBACK_PATH} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Connection: close\r\n"
        "Content-Type: text/calendar\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-LS-Api-Key: {key}\r\n"
        f"X-LS-Sender: mailto:{sender}\r\n"
        f"X-LS-Recipient: mailto:{recipient}\r\n"
        "X-LS-Method: REQUEST\r\n"
        "X-LS-Is-Mailbox: false\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def request_status(port: int, request: bytes, *, timeout: float = 30.0) -> int:
    """Send ``request`` on a new connection and read the answer to its end: its HTTP status,
    0 when the connection failed or the answer is not HTTP."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(request)
            answer = bytearray()
            while chunk := connection.recv(65536):
                answer += chunk
    except OSError:
        return 0
    if answer[:5] != b"HTTP/" or len(answer) < 12 or not answer[9:12].isdigit():
        return 0
    return int(answer[9:12])


# Requests built before a phase starts, so that the client's CPU during the load is the
# sending and nothing else; past this many, each is built when it is sent.
PREBUILT_MAX = 40_000


def prebuild(*, key: str, salt: int, rate: float, seconds: float) -> list[bytes]:
    """The first requests of a phase posting at about ``rate`` per second for ``seconds``."""
    count = min(PREBUILT_MAX, int(rate * seconds) + 1)
    return [callback_request(index, key=key, salt=salt) for index in range(count)]


def post_load(
    *,
    port: int,
    key: str,
    clients: int,
    seconds: float,
    rate: float | None,
    salt: int,
    on_second: Callable[[int, int], None] | None = None,
    prebuilt: list[bytes] | None = None,
) -> Load:
    """Post distinct sabre-shaped REQUESTs for ``seconds``: as fast as answered (``rate`` None,
    ``clients`` at once) or at ``rate`` per second (latency from each one's scheduled time).

    ``prebuilt`` (from :func:`prebuild`, with the same ``key`` and ``salt``) holds the first
    requests, built before the phase; the others are built when sent. Each is sent over a raw
    socket: the client costs the machine little besides the sending (it shares the CPUs with
    the servers it measures)."""
    prebuilt = prebuilt or []
    load = Load()
    lock = threading.Lock()
    counter = iter(range(10**9))
    started = time.perf_counter()
    deadline = started + seconds

    def client() -> None:
        while True:
            with lock:
                index = next(counter)
            scheduled = started + index / rate if rate else time.perf_counter()
            if scheduled >= deadline:
                break
            wait = scheduled - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.05:
                with lock:
                    load.behind += 1
            request = (
                prebuilt[index]
                if index < len(prebuilt)
                else callback_request(index, key=key, salt=salt)
            )
            status = request_status(port, request)
            elapsed = time.perf_counter() - scheduled
            with lock:
                load.statuses[status] = load.statuses.get(status, 0) + 1
                if status == 202:
                    load.latencies.append(elapsed)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    second = 0
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        if on_second is not None and int(time.perf_counter() - started) > second:
            second = int(time.perf_counter() - started)
            with lock:
                acknowledged = load.statuses.get(202, 0)
            on_second(second, acknowledged)
    load.seconds = time.perf_counter() - started
    return load


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- what is measured -----------------------------------------------------------------------------


@dataclass
class Tiers:
    """The process trees whose CPU and memory are read."""

    web: int
    worker: int
    beat: int
    sink: int
    postgres: int | None
    redis: int | None


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    delivered: int
    commits: int | None
    sessions: int | None
    rss: dict[str, list[int]]
    load: tuple[float, float, float]


class Monitor:
    def __init__(self, tiers: Tiers, sink: SinkProcess, database_url: str) -> None:
        self.tiers = tiers
        self.sink = sink
        self.pg: Any = None
        self.queries = 0
        if database_url.startswith("postgres"):
            import psycopg

            self.pg = psycopg.connect(database_url.replace("postgres://", "postgresql://", 1))
            self.pg.autocommit = True

    def pg_stats(self) -> tuple[int | None, int | None]:
        if self.pg is None:
            return None, None
        self.queries += 1
        row = self.pg.execute(
            "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]), int(row[1])

    def snapshot(self) -> Snapshot:
        tiers = self.tiers
        cpu = {
            "web": procstat.tree_cpu(tiers.web),
            "worker": procstat.tree_cpu(tiers.worker) + procstat.tree_cpu(tiers.beat),
            "postgres": procstat.tree_cpu(tiers.postgres) if tiers.postgres else float("nan"),
            "redis": procstat.tree_cpu(tiers.redis) if tiers.redis else float("nan"),
            "sink": procstat.tree_cpu(tiers.sink),
            "client": sum(os.times()[:2]),
        }
        commits, sessions = self.pg_stats()
        return Snapshot(
            at=time.perf_counter(),
            cpu=cpu,
            delivered=self.sink.accepted,
            commits=commits,
            sessions=sessions,
            rss={
                "web": procstat.tree_rss(tiers.web)[1:],  # the workers, not the master
                "worker": procstat.tree_rss(tiers.worker),
            },
            load=os.getloadavg(),
        )


def mib(values: list[int]) -> str:
    return "+".join(f"{value / 2**20:.1f}" for value in values) + " MiB"


def report(
    name: str,
    load: Load,
    first: Snapshot,
    loaded: Snapshot,
    last: Snapshot,
    monitor: Monitor,
    *,
    drain: float | None,
    extra: str = "",
) -> None:
    acked = load.acknowledged
    delivered = last.delivered - first.delivered
    during = loaded.delivered - first.delivered
    print(f"\n== {name}")
    print(
        f"  acknowledged {acked} in {load.seconds:.1f} s = {acked / load.seconds:.1f}/s; "
        f"statuses {dict(sorted(load.statuses.items()))}"
        + (f"; {load.behind} started late (client behind)" if load.behind else "")
    )
    print(
        f"  ack latency p50 {percentile(load.latencies, 0.5) * 1000:.1f} ms, "
        f"p95 {percentile(load.latencies, 0.95) * 1000:.1f} ms, "
        f"p99 {percentile(load.latencies, 0.99) * 1000:.1f} ms, "
        f"max {max(load.latencies, default=float('nan')) * 1000:.1f} ms"
    )
    drained = "not drained" if drain is None else f"drained {drain:.1f} s after the load"
    total_seconds = last.at - first.at
    print(
        f"  delivered during the load {during} = {during / load.seconds:.1f}/s; {drained}; "
        f"delivered in all {delivered} in {total_seconds:.1f} s = "
        f"{delivered / total_seconds:.1f}/s end to end"
    )
    if extra:
        print(extra)
    if delivered:
        per = {tier: (last.cpu[tier] - first.cpu[tier]) * 1000 / delivered for tier in first.cpu}
        convoke = per["web"] + per["worker"] + per["postgres"] + per["redis"]
        print(
            f"  CPU per delivered invitation: {convoke:.2f} ms = web {per['web']:.2f} + worker "
            f"{per['worker']:.2f} + PostgreSQL {per['postgres']:.2f} + Redis {per['redis']:.2f} "
            f"(outside Convoke: load client {per['client']:.2f}, SMTP sink {per['sink']:.2f})"
        )
        if first.commits is not None and last.commits is not None:
            own = 2  # the monitor's own two statements
            commits = (last.commits - first.commits - own) / delivered
            sessions = (last.sessions or 0) - (first.sessions or 0)
            print(
                f"  PostgreSQL: {commits:.2f} commits per invitation; {sessions} sessions "
                f"for {delivered} invitations ({sessions / delivered:.3f} per invitation)"
            )
    print(
        f"  RSS web workers {mib(first.rss['web'])} -> {mib(last.rss['web'])}; "
        f"worker {mib(first.rss['worker'])} -> {mib(last.rss['worker'])}"
    )
    print(
        "  load average at the start "
        + ", ".join(f"{x:.2f}" for x in first.load)
        + "; at the end "
        + ", ".join(f"{x:.2f}" for x in last.load)
    )
    sys.stdout.flush()


def drain(sink: SinkProcess, target: int, timeout: float) -> float | None:
    """Seconds until the sink has accepted ``target`` messages in all; None on timeout."""
    started = time.perf_counter()
    while sink.accepted < target:
        if time.perf_counter() - started > timeout:
            return None
        time.sleep(0.1)
    return time.perf_counter() - started


# --- the processes --------------------------------------------------------------------------------


def compose_commands(project: Path) -> tuple[list[str], list[str], list[str]]:
    """The web, worker and beat commands of compose.yml, with their executables run from the
    project's virtualenv."""
    import yaml

    services = yaml.safe_load((project / "compose.yml").read_text())["services"]
    commands = []
    for name in ("web", "worker", "beat"):
        command = services[name]["command"]
        commands.append(shlex.split(command) if isinstance(command, str) else list(command))
    return commands[0], commands[1], commands[2]


def compose_cpu_shares(project: Path, service: str) -> int:
    """The ``cpu_shares`` compose.yml gives ``service`` (Docker's default weight, 1024, when
    it gives none): the benchmark weights that service's processes the same way with nice
    values (bench/stack.py ``nice_for_cpu_shares``)."""
    import yaml

    services = yaml.safe_load((project / "compose.yml").read_text())["services"]
    return int(services[service].get("cpu_shares", 1024))


def compose_web_environment(project: Path) -> dict[str, str]:
    """What compose.yml's web sets besides the shared environment (``WEB_CONCURRENCY``:
    gunicorn's workers), ``${NAME:-default}`` resolved from this environment or its default."""
    import yaml

    web = yaml.safe_load((project / "compose.yml").read_text())["services"]["web"]
    resolved = {}
    for name, value in (web.get("environment") or {}).items():
        if name == "WEB_CONCURRENCY":
            match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
            resolved[name] = os.environ.get(match[1], match[2]) if match else str(value)
    return resolved


def _with_option(command: list[str], option: str, value: str) -> list[str]:
    """``command`` with ``option value`` set (replaced when present, ``--opt=value`` too)."""
    result, skip = [], False
    for index, word in enumerate(command):
        if skip:
            skip = False
            continue
        if word == option:
            skip = index + 1 < len(command)
            continue
        if word.startswith(option + "="):
            continue
        result.append(word)
    return [*result, option, value]


def environment_for(
    scratch: Path, sink_port: int, servers: dict[str, str] | None = None
) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(servers or {})
    environment.update(
        {
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "calendars.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CALDAV_INBOUND_API_KEY": secrets.token_urlsafe(32),
            "FIELD_ENCRYPTION_KEY": _fernet_key(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "APP_URL": "http://127.0.0.1",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink_port),
            "EMAIL_USE_TLS": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    (scratch / "prometheus").mkdir(exist_ok=True)
    environment.pop("BREVO_API_KEY", None)
    environment.pop("CELERY_TASK_ALWAYS_EAGER", None)
    environment.pop("VIRTUAL_ENV", None)
    if not environment.get("DATABASE_URL"):
        environment["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    if not environment.get("CELERY_BROKER_URL"):
        environment["CELERY_FILESYSTEM_DIR"] = str(scratch / "celery")
    return environment


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _postgres_root(database_url: str) -> int | None:
    """The postmaster's pid, when PostgreSQL runs on this machine (our backend's parent)."""
    if not database_url.startswith("postgres"):
        return None
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as connection:
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
    return procstat.parent(int(row[0])) if row else None


def _redis_root(broker_url: str) -> int | None:
    if not broker_url.startswith("redis"):
        return None
    import redis

    return int(redis.Redis.from_url(broker_url).info("server")["process_id"])


def machine() -> str:
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} CPU(s) ({platform.machine()}), {memory} RAM, "
        f"{platform.system()} {platform.release()}"
    )


def wait_quiet(limit: float) -> None:
    """Wait (at most ``limit`` seconds) for the 1-minute load average to fall below 0.5."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=PROJECT_DIR, help="checkout to run")
    parser.add_argument("--servers", action="store_true", help="scratch PostgreSQL and Redis")
    parser.add_argument(
        "--phases", default="instant,sustained,slow", help="instant,sustained,slow (any subset)"
    )
    parser.add_argument("--clients", type=int, default=16, help="clients of the instant phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="the instant phase's load")
    parser.add_argument("--rate", type=float, default=290.0, help="sustained phase, callbacks/s")
    parser.add_argument("--window", type=float, default=60.0, help="sustained window, seconds")
    parser.add_argument("--slow-rate", type=float, default=200.0, help="slow phase, callbacks/s")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument("--slow-delay", type=float, default=2.0, help="sink delay per message")
    parser.add_argument("--open-clients", type=int, default=48, help="clients of paced phases")
    parser.add_argument("--memory-minutes", type=float, default=0.0, help="memory run length")
    parser.add_argument("--memory-rate", type=float, default=200.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait for load < 0.5")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    parser.add_argument(
        "--sink",
        choices=("light", "aiosmtpd"),
        default="light",
        help="the SMTP sink's server (bench/sink.py): light, or aiosmtpd as measured before",
    )
    options = parser.parse_args()
    project = options.project.resolve()
    python = str(project / ".venv" / "bin" / "python")
    phases = [p.strip() for p in options.phases.split(",") if p.strip()]

    scratch = Path(tempfile.mkdtemp(prefix="convoke-bench-"))
    servers = (
        Servers(Path(tempfile.mkdtemp(prefix="convoke-bench-servers-")))
        if options.servers
        else None
    )
    sink = SinkProcess(sys.executable, options.sink)
    stack = Stack(environment={}, scratch=scratch)
    try:
        server_environment: dict[str, str] = {}
        if servers is not None:
            servers.start()
            server_environment = servers.environment()
        environment = environment_for(scratch, sink.smtp_port, server_environment)
        stack.environment = environment
        stack.cwd = project
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=project,
            env=environment,
            check=True,
        )
        port = free_port()
        web, worker, beat = compose_commands(project)
        environment.update(compose_web_environment(project))
        web = [python, "-m", *_with_option(web, "--bind", f"127.0.0.1:{port}")]
        worker = [python, "-m", *worker]
        beat = [python, "-m", *_with_option(beat, "--schedule", str(scratch / "beat-schedule"))]
        stack.spawn(*web, log="web.log")
        worker_nice = nice_for_cpu_shares(compose_cpu_shares(project, "worker"))
        stack.spawn(*worker, log="worker.log", nice=worker_nice)
        stack.spawn(*beat, log="beat.log")
        wait_healthy(port)
        time.sleep(3)  # the worker's pool processes start
        key = environment["CALDAV_INBOUND_API_KEY"]
        web_pid, worker_pid, beat_pid = (process.pid for process in stack.processes)
        tiers = Tiers(
            web=web_pid,
            worker=worker_pid,
            beat=beat_pid,
            sink=sink.process.pid,
            postgres=_postgres_root(environment["DATABASE_URL"]),
            redis=_redis_root(environment.get("CELERY_BROKER_URL", "")),
        )
        monitor = Monitor(tiers, sink, environment["DATABASE_URL"])
        database = environment["DATABASE_URL"].split(":", 1)[0]
        broker = environment.get("CELERY_BROKER_URL", "filesystem").split(":", 1)[0]
        commit = subprocess.run(
            ["git", "-C", str(project), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"machine: {machine()}, Python {platform.python_version()}")
        print(
            f"convoke: {project} at {commit or 'unknown commit'}; database {database}, "
            f"broker {broker}"
        )
        concurrency = environment.get("WEB_CONCURRENCY")
        workers = f" (WEB_CONCURRENCY={concurrency})" if concurrency else ""
        print(f"web: {shlex.join(web[2:])}{workers}")
        shares = compose_cpu_shares(project, "worker")
        weighted = f" (compose's cpu_shares {shares}: nice {worker_nice})" if worker_nice else ""
        print(f"worker: {shlex.join(worker[2:])}{weighted}")
        print(
            "load: distinct sabre-shaped REQUESTs (bench/sabre.py, "
            f"{len(sabre_request(0)[0])} bytes each), one recipient per callback"
        )
        print(f"sink: bench/sink.py --impl {sink.impl}")
        if options.wait_quiet:
            wait_quiet(options.wait_quiet)
        if options.warmup:
            before = sink.accepted
            warm = post_load(
                port=port,
                key=key,
                clients=options.clients,
                seconds=options.warmup,
                rate=None,
                salt=900,
                prebuilt=prebuild(key=key, salt=900, rate=400, seconds=options.warmup),
            )
            drain(sink, before + warm.acknowledged, options.drain_timeout)
        salt = 0

        def loaded_phase(
            name: str,
            *,
            delay: float,
            rate: float | None,
            seconds: float,
            clients: int,
            window_from: float = 0.0,
        ) -> None:
            nonlocal salt
            salt += 1
            sink.command(f"DELAY {delay:g}")
            sink.command("PEAK")
            prebuilt = prebuild(key=key, salt=salt, rate=rate or 400, seconds=seconds)
            time.sleep(1)
            first = monitor.snapshot()
            marks: dict[int, tuple[float, int, int]] = {}

            def on_second(second: int, acknowledged: int) -> None:
                marks[second] = (time.perf_counter(), acknowledged, sink.accepted)

            load = post_load(
                port=port,
                key=key,
                clients=clients,
                seconds=seconds,
                rate=rate,
                salt=salt,
                on_second=on_second,
                prebuilt=prebuilt,
            )
            loaded = monitor.snapshot()
            stats = sink.command()
            drained = drain(sink, first.delivered + load.acknowledged, options.drain_timeout)
            time.sleep(2)  # PostgreSQL's statistics are flushed within a second of idling
            last = monitor.snapshot()
            extra = f"  SMTP sessions open at once: at most {stats['peak_sessions']}"
            if window_from and rate:
                start_second = int(window_from)
                end_second = max(marks) if marks else 0
                if start_second in marks and end_second > start_second:
                    (t0, a0, d0), (t1, a1, d1) = marks[start_second], marks[end_second]
                    backlog0 = a0 - (d0 - first.delivered)
                    backlog1 = a1 - (d1 - first.delivered)
                    growing = backlog1 > backlog0 + rate  # more than a second's worth
                    extra += (
                        f"\n  window {start_second}-{end_second} s: acknowledged "
                        f"{(a1 - a0) / (t1 - t0):.1f}/s, delivered {(d1 - d0) / (t1 - t0):.1f}/s "
                        f"({rate:g}/s posted); queue {backlog0} -> {backlog1} "
                        + ("(GROWING)" if growing else "(not growing)")
                    )
            report(name, load, first, loaded, last, monitor, drain=drained, extra=extra)

        for phase in phases:
            if phase == "instant":
                loaded_phase(
                    f"instant relay, {options.clients} clients as fast as answered, "
                    f"{options.seconds:g} s",
                    delay=0,
                    rate=None,
                    seconds=options.seconds,
                    clients=options.clients,
                )
            elif phase == "sustained":
                loaded_phase(
                    f"instant relay, sustained {options.rate:g} callbacks/s, "
                    f"{options.window:g} s window after 5 s",
                    delay=0,
                    rate=options.rate,
                    seconds=options.window + 5,
                    clients=options.open_clients,
                    window_from=5,
                )
            elif phase == "slow":
                loaded_phase(
                    f"relay taking {options.slow_delay:g} s per message, "
                    f"{options.slow_rate:g} callbacks/s for {options.slow_seconds:g} s",
                    delay=options.slow_delay,
                    rate=options.slow_rate,
                    seconds=options.slow_seconds,
                    clients=options.open_clients,
                    window_from=5,
                )
            else:
                raise SystemExit(f"unknown phase {phase!r}")
        if options.memory_minutes:
            memory_run(options, port, key, sink, monitor)
    finally:
        stack.stop()
        sink.stop()
        if servers is not None:
            servers.stop()
            shutil.rmtree(servers.scratch, ignore_errors=True)
        if options.keep:
            print(f"logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def memory_run(
    options: argparse.Namespace, port: int, key: str, sink: SinkProcess, monitor: Monitor
) -> None:
    minutes = options.memory_minutes
    print(f"\n== memory: {options.memory_rate:g} callbacks/s for {minutes:g} minutes")
    sink.command("DELAY 0")
    prebuilt = prebuild(key=key, salt=77, rate=options.memory_rate, seconds=minutes * 60)
    first = monitor.snapshot()
    print(f"  start: web workers {mib(first.rss['web'])}, worker {mib(first.rss['worker'])}")

    minute: list[Snapshot] = []  # the first minute's, once the processes are warm

    def on_second(second: int, acknowledged: int) -> None:
        if second % 60 == 0:
            snap = monitor.snapshot()
            if not minute:
                minute.append(snap)
            print(
                f"  {second // 60:3d} min: web workers {mib(snap.rss['web'])}, "
                f"worker {mib(snap.rss['worker'])}, delivered {snap.delivered - first.delivered}",
                flush=True,
            )

    load = post_load(
        port=port,
        key=key,
        clients=options.open_clients,
        seconds=minutes * 60,
        rate=options.memory_rate,
        salt=77,
        on_second=on_second,
        prebuilt=prebuilt,
    )
    drained = drain(sink, first.delivered + load.acknowledged, options.drain_timeout)
    last = monitor.snapshot()
    print(
        f"  end: web workers {mib(last.rss['web'])}, worker {mib(last.rss['worker'])}; "
        f"{load.acknowledged} acknowledged, drained {drained} s after"
    )
    web_growth = sum(last.rss["web"]) - sum(first.rss["web"])
    worker_growth = sum(last.rss["worker"]) - sum(first.rss["worker"])
    print(f"  growth: web {web_growth / 2**20:+.1f} MiB, worker {worker_growth / 2**20:+.1f} MiB")
    if minute:
        warm = minute[0]
        web_growth = sum(last.rss["web"]) - sum(warm.rss["web"])
        worker_growth = sum(last.rss["worker"]) - sum(warm.rss["worker"])
        print(
            f"  after the first minute: web {web_growth / 2**20:+.1f} MiB, "
            f"worker {worker_growth / 2**20:+.1f} MiB"
        )


if __name__ == "__main__":
    main()
