"""compose.yml is valid Compose and every service's command names a real entry point."""

from __future__ import annotations

import importlib
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
