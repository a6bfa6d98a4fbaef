"""The production image installs ``uv sync --frozen --no-dev``: what the worker imports at run
time must be in the lock's non-dev closure, not only pulled in by a test tool."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The interpreters the image may run (pyproject's requires-python), on Linux.
TARGETS = [
    {"python_version": version, "python_full_version": f"{version}.0", "sys_platform": "linux"}
    for version in ("3.12", "3.13")
]


def _applies(marker: str | None) -> bool:
    if not marker:
        return True
    return any(Marker(marker).evaluate({**target, "extra": ""}) for target in TARGETS)


def _production_closure() -> set[str]:
    lock = tomllib.loads((PROJECT_DIR / "uv.lock").read_text())
    packages = {canonicalize_name(p["name"]): p for p in lock["package"]}
    closure: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [("convoke", ())]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        closure.add(name)
        package = packages[name]
        entries = list(package.get("dependencies", []))
        for extra in extras:
            entries += package.get("optional-dependencies", {}).get(extra, [])
        for entry in entries:
            if _applies(entry.get("marker")):
                todo.append((canonicalize_name(entry["name"]), tuple(entry.get("extra", []))))
    return closure


def _extra_requirements(distribution: str, extra: str) -> set[str]:
    names = set()
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or not marker.evaluate({"extra": extra}):
            continue
        if marker.evaluate({"extra": ""}):
            continue  # not specific to this extra
        if any(marker.evaluate({**target, "extra": extra}) for target in TARGETS):
            names.add(canonicalize_name(requirement.name))
    return names


def test_production_lock_has_what_kombus_redis_transport_imports() -> None:
    """compose.yml runs the worker and beat on Redis: kombu's Redis transport imports
    ``redis`` and ``packaging`` (kombu declares them under its ``redis`` extra)."""
    needed = _extra_requirements("kombu", "redis")
    assert "packaging" in needed and "redis" in needed
    missing = needed - _production_closure()
    assert not missing, f"uv sync --no-dev would lack {sorted(missing)}"


def test_dev_only_packages_stay_out_of_the_production_closure() -> None:
    closure = _production_closure()
    assert "celery" in closure and "gunicorn" in closure
    assert not {"pytest", "mypy", "ruff", "playwright"} & closure
