"""CPU time and resident memory of process trees, read from /proc (Linux).

CPU is robust to the machine's load: a process's utime + stime count only its own work. The
CPU of children already reaped is in their parent's cutime + cstime, so a tree's total is the
sum over its live processes of all four (a short-lived PostgreSQL backend's work lands in the
postmaster's cutime when it exits).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children(pid)
    return pids


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime + cutime + cstime of these processes, in seconds."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # Fields 14-17 of /proc/<pid>/stat (1-based), here shifted by the two removed.
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def tree_cpu(root: int) -> float:
    return cpu_seconds(tree(root))


def rss_bytes(pid: int) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * PAGE


def tree_rss(root: int) -> list[int]:
    """RSS of each process of the tree, root first."""
    return [rss_bytes(pid) for pid in tree(root)]


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None
