"""compose.yml is valid Compose and every service's command names a real entry point."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((PROJECT_DIR / "compose.yml").read_text())


def _words(command: object) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]  # type: ignore[attr-defined]


def test_compose_has_the_whole_stack() -> None:
    services = _compose()["services"]
    assert {"caddy", "web", "worker", "beat", "postgres", "redis", "mailcatcher"} <= set(services)
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, f"{name} has no health check"
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] or services[name]["image"]
        environment = services[name]["environment"]
        assert "DATABASE_URL" in environment and "CELERY_BROKER_URL" in environment


def test_every_service_command_names_a_real_entry_point() -> None:
    services = _compose()["services"]
    checked = 0
    for name, service in services.items():
        if "build" not in service:
            continue  # third-party images (Caddy, PostgreSQL, Redis, Mailpit) bring their own
        words = _words(service["command"])
        if words[:2] == ["sh", "-c"]:
            words = shlex.split(words[2].split("&&")[-1])
        program = words[0]
        if program == "gunicorn":
            module, _, attribute = words[1].partition(":")
            assert hasattr(importlib.import_module(module), attribute), name
        elif program == "celery":
            app_module = words[words.index("-A") + 1]
            assert hasattr(importlib.import_module(app_module), "celery_app"), name
            assert words[words.index("-A") + 2] in {"worker", "beat"}, name
        elif program == "python" and words[1] == "manage.py":
            assert (PROJECT_DIR / "manage.py").is_file()
            assert words[2] in get_commands(), name
        else:
            raise AssertionError(f"service {name}: unexpected program {program!r}")
        checked += 1
    assert checked >= 3


def test_dockerfile_installs_from_the_lock() -> None:
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "uv.lock" in dockerfile


def test_caddy_proxies_to_the_web_service() -> None:
    services = _compose()["services"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    caddyfile = (PROJECT_DIR / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile


CONVOKE_SERVICES = ("migrate", "web", "worker", "beat")
# What compose.yml decides itself: the stack's own addresses and its one proxy (Caddy).
STACK_TOPOLOGY = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "NUM_PROXIES",
    "PROMETHEUS_MULTIPROC_DIR",  # a volume the stack shares between web, worker and beat
}


def test_operator_settings_in_env_are_not_overridden_by_compose() -> None:
    """`environment:` beats `env_file:`: anything set there silently wins over .env, so only
    the stack's topology may be, and the rest only as ${NAME:-default} of the same name."""
    services = _compose()["services"]
    for name in CONVOKE_SERVICES:
        for key, value in services[name]["environment"].items():
            if key in STACK_TOPOLOGY:
                continue
            assert str(value).startswith(f"${{{key}:-"), f"{name}: {key}={value} overrides .env"


def test_env_file_uses_the_form_every_compose_v2_reads() -> None:
    """The `path:`/`required:` form needs Compose 2.24; a plain path works everywhere."""
    services = _compose()["services"]
    for name in CONVOKE_SERVICES:
        assert services[name]["env_file"] == [".env"], name
    readme = (PROJECT_DIR / "README.md").read_text()
    assert "Compose v2" in readme and "cp .env.example .env" in readme


def test_env_example_routes_mail_to_the_stacks_catcher_by_choice() -> None:
    values = dict(
        line.split("=", 1)
        for line in (PROJECT_DIR / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"]) == ("mailcatcher", "1025")
    assert "mailcatcher" in _compose()["services"]


def test_dockerfile_takes_its_base_image_as_a_build_argument() -> None:
    lines = (PROJECT_DIR / "Dockerfile").read_text().splitlines()
    arg = next(i for i, line in enumerate(lines) if line.startswith("ARG BASE_IMAGE="))
    base = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert arg < base and lines[base] == "FROM ${BASE_IMAGE}"


def test_stack_check_stands_in_for_every_image_compose_names() -> None:
    source = (PROJECT_DIR / "deploy" / "stack-check" / "stack_check.py").read_text()
    stand_ins = set(re.findall(r'^    "([^"]+)": "\w+",$', source, re.M))
    images = {s["image"] for s in _compose()["services"].values() if "image" in s}
    assert images - {"convoke:latest"} == stand_ins
    for folder in ("postgres", "redis", "caddy", "mailpit"):
        assert (PROJECT_DIR / "deploy" / "stack-check" / "images" / folder / "Dockerfile").is_file()


def test_web_outweighs_the_worker_for_cpu_so_callbacks_are_answered_first() -> None:
    """When web and worker want more CPU than the machine has, the CalDAV server's callbacks
    are acknowledged first and deliveries wait (the outbox keeps them): web keeps Docker's
    default weight (1024) and the worker has a fraction of it, never a cap."""
    services = _compose()["services"]
    web_shares = int(services["web"].get("cpu_shares", 1024))
    worker_shares = int(services["worker"].get("cpu_shares", 1024))
    assert worker_shares * 4 <= web_shares
    for name in ("web", "worker"):
        assert not {"cpus", "cpu_quota", "cpu_period"} & set(services[name]), name
