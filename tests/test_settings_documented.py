"""One source of truth for configuration: the variables ``calendars/settings.py`` reads are
exactly those ``.env.example`` lists and those the README's configuration table explains.

A variable added to settings without documentation fails here, and so does documentation of
a variable nothing reads. Variables read by something other than settings (compose.yml,
Caddy) are named below with their reader.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Read by compose.yml or the Caddyfile, not by settings.
READ_OUTSIDE_SETTINGS = {"CONVOKE_HOST": "compose.yml (Caddy's site address)"}
ENV_READERS = {"str", "bool", "int", "float", "list", "db_url", "cache_url", "json", "url"}


def settings_variables() -> set[str]:
    tree = ast.parse((PROJECT_DIR / "calendars" / "settings.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            is_reader = (
                isinstance(function, ast.Attribute)
                and isinstance(function.value, ast.Name)
                and function.value.id == "env"
                and function.attr in ENV_READERS
            ) or (isinstance(function, ast.Name) and function.id == "env")
            if is_reader and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
        elif (  # "NAME" in env.ENVIRON
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and any(isinstance(c, ast.Attribute) and c.attr == "ENVIRON" for c in node.comparators)
        ):
            names.add(node.left.value)
    return names


def env_example_variables() -> set[str]:
    text = (PROJECT_DIR / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))


def readme_table_variables() -> set[str]:
    text = (PROJECT_DIR / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+)\|", section, re.M):
        names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    return names


def test_settings_reads_the_environment_through_literal_names() -> None:
    names = settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "GOOGLE_API_ENDPOINT"} <= names
    assert len(names) > 60


def test_every_variable_settings_reads_is_in_env_example_and_nothing_else() -> None:
    expected = settings_variables() | set(READ_OUTSIDE_SETTINGS)
    listed = env_example_variables()
    assert sorted(expected - listed) == [], "read by settings, missing from .env.example"
    assert sorted(listed - expected) == [], "in .env.example, read by nothing"


def test_every_variable_settings_reads_is_in_the_readme_table_and_nothing_else() -> None:
    expected = settings_variables() | set(READ_OUTSIDE_SETTINGS)
    documented = readme_table_variables()
    assert sorted(expected - documented) == [], "read by settings, missing from the README table"
    assert sorted(documented - expected) == [], "in the README table, read by nothing"


def test_only_settings_reads_the_environment() -> None:
    """STYLE.md rule 7; the entry points that prepare a process's environment (make run's
    devserver, manage.py next to it) only write it, and read PORT and DEBUG's presence."""
    allowed = {
        PROJECT_DIR / "calendars" / "settings.py",
        PROJECT_DIR / "calendars" / "devserver.py",
        PROJECT_DIR / "manage.py",
    }
    pattern = re.compile(r"os\.getenv|os\.environ\.get|os\.environ\[|environ\.Env\(")
    offenders = [
        str(path.relative_to(PROJECT_DIR))
        for folder in ("calendars", "scheduling", "invitations", "gcal_push")
        for path in sorted((PROJECT_DIR / folder).rglob("*.py"))
        if path not in allowed and pattern.search(path.read_text())
    ]
    assert offenders == []
