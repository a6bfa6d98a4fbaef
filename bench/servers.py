"""Scratch PostgreSQL and Redis servers for a benchmark, on free loopback ports (as .ci/run).

``Servers.start()`` runs ``initdb`` and ``pg_ctl start`` (as the ``postgres`` user when the
benchmark runs as root) and ``redis-server`` in a scratch folder, with their default
configuration apart from the port, the socket folder and ``max_connections``; ``stop()``
stops both. Their process ids are known, so their CPU can be read from /proc.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stack import free_port


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


@dataclass
class Servers:
    scratch: Path
    pg_port: int = 0
    redis_port: int = 0

    @property
    def pg_data(self) -> Path:
        return self.scratch / "pg"

    def start(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates or not shutil.which("redis-server"):
            raise SystemExit("--servers needs PostgreSQL (initdb) and redis-server installed")
        pg_bin = Path(candidates[-1]).parent
        self.pg_port, self.redis_port = free_port(), free_port()
        self.pg_data.mkdir(parents=True)
        if os.getuid() == 0:
            shutil.chown(self.scratch, "postgres")
            shutil.chown(self.pg_data, "postgres")
        subprocess.run(
            _as_postgres(
                [str(pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.pg_data} "
            "-c max_connections=400"
        )
        subprocess.run(
            _as_postgres(
                [
                    *(str(pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-w", "-t", "60"),
                    *("-l", str(self.scratch / "pg.log"), "-o", options, "start"),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            _as_postgres(
                [
                    *("psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres"),
                    *("-q", "-c", "CREATE DATABASE convoke"),
                ]
            ),
            check=True,
        )
        subprocess.run(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port)),
                *("--save", "", "--appendonly", "no", "--daemonize", "yes"),
                *("--dir", str(self.scratch), "--logfile", str(self.scratch / "redis.log")),
            ],
            check=True,
        )
        for _ in range(50):
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                break
            time.sleep(0.1)

    def environment(self) -> dict[str, str]:
        return {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/convoke",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/1",
        }

    def stop(self) -> None:
        if self.redis_port:
            subprocess.run(
                ["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
                capture_output=True,
            )
        if self.pg_port:
            pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
            subprocess.run(
                _as_postgres([pg_ctl, "-D", str(self.pg_data), "-m", "fast", "stop"]),
                capture_output=True,
            )
