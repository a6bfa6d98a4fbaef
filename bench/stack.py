"""What the benchmarks share: free loopback ports and a group of processes started and
stopped together (gunicorn, Celery), each in a session of its own, logging to a scratch
folder."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority by ``nice`` (0 to 19), for it and its children.

    Run in a new session's first process (``preexec_fn``): where the kernel groups each session
    for scheduling (``kernel.sched_autogroup_enabled``), the session's group is weighted as a
    container's cgroup is by ``cpu_shares``, so its nice value is set; elsewhere the process's
    own nice value does the same."""
    os.nice(nice)
    with contextlib.suppress(OSError):  # no autogroups: the process's nice value applies
        Path("/proc/self/autogroup").write_text(str(nice))


def nice_for_cpu_shares(shares: int, *, default: int = 1024) -> int:
    """The nice value giving a process the CPU weight a container gets from ``cpu_shares``
    against the default weight: each nice step weighs about 1.25 times less (the kernel's
    ``sched_prio_to_weight``), so 128 shares (an eighth) is nice 9."""
    if shares >= default:
        return 0
    return min(19, round(math.log(default / max(shares, 2)) / math.log(1.25)))


@dataclass
class Stack:
    environment: dict[str, str]
    scratch: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cwd: Path = PROJECT_DIR  # another checkout's folder, to measure its code

    def spawn(self, *command: str, log: str, nice: int = 0) -> None:
        """Start ``command`` in a session of its own; ``nice`` lowers its CPU priority and its
        children's (see :func:`lower_priority`)."""
        handle = (self.scratch / log).open("ab")
        self.processes.append(
            subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.environment,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=(lambda: lower_priority(nice)) if nice else None,
            )
        )
        handle.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()


def wait_healthy(port: int, *, seconds: float = STARTUP_SECONDS) -> None:
    """Wait until Convoke on 127.0.0.1:``port`` answers ``/healthz`` with 200 (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not become healthy on 127.0.0.1:{port}")
