"""The benchmarks' processes (bench/stack.py) are weighted for CPU as compose.yml weights them.

bench/callback.py runs compose.yml's commands as processes, each in a session of its own; a
service compose gives fewer ``cpu_shares`` is started with the nice value of the same weight,
set on the session's scheduling group where the kernel has them (as a container's cgroup).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from stack import Stack, nice_for_cpu_shares  # noqa: E402


@pytest.mark.parametrize(
    ("shares", "nice"), [(1024, 0), (2048, 0), (512, 3), (256, 6), (128, 9), (64, 12), (2, 19)]
)
def test_cpu_shares_map_to_the_nice_value_of_the_same_weight(shares: int, nice: int) -> None:
    assert nice_for_cpu_shares(shares) == nice


def _nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted after the command's name


def test_a_spawned_service_and_its_children_run_at_the_given_nice_value(tmp_path: Path) -> None:
    stack = Stack(environment={"PATH": "/usr/bin:/bin"}, scratch=tmp_path, cwd=tmp_path)
    stack.spawn("sh", "-c", "sleep 30 & wait", log="niced.log", nice=9)
    stack.spawn("sleep", "30", log="plain.log")
    try:
        niced, plain = (process.pid for process in stack.processes)
        children: list[int] = []
        for _ in range(50):  # the shell starts its child within milliseconds
            children_file = Path(f"/proc/{niced}/task/{niced}/children")
            children = [int(pid) for pid in children_file.read_text().split()]
            if children:
                break
            time.sleep(0.05)
        assert children, "the shell started no child"
        assert _nice_of(niced) == 9 and _nice_of(children[0]) == 9
        assert _nice_of(plain) == 0
        autogroup = Path(f"/proc/{niced}/autogroup")
        if autogroup.exists():  # the session's group, weighted like a container's cgroup
            assert autogroup.read_text().split()[-1] == "9"
            assert Path(f"/proc/{plain}/autogroup").read_text().split()[-1] == "0"
    finally:
        stack.stop()
