"""The arrows between the apps point one way, and product modules keep the house size
(docs/architecture.md): read from the source with ``ast``, imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("calendars", "invitations", "scheduling", "gcal_push")
# Which app each app may import, and nothing above it: the core imports no app; the outbox
# does not know how a message arrived; the push app reaches the outbox only to queue the
# revoked-grant email.
ALLOWED: dict[str, set[str]] = {
    "calendars": set(),
    "invitations": {"calendars"},
    "scheduling": {"calendars", "invitations"},
    "gcal_push": {"calendars", "invitations"},
}
# "About 400 lines"; settings.py is the documented list of every setting, read in one place.
MAX_LINES = 450
SIZE_EXEMPT = {"calendars/settings.py"}


def _modules(app: str) -> list[Path]:
    return sorted(path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


def _apps_imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return {name.split(".")[0] for name in names} & set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_app_imports_only_the_apps_below_it(app: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in _modules(app)
        if (found := _apps_imported(path) - ALLOWED[app] - {app})
    }
    assert wrong == {}


def test_the_import_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from gcal_push.sync import x\n    import scheduling\n")
    assert _apps_imported(module) == {"gcal_push", "scheduling"}


def test_product_modules_keep_the_house_size() -> None:
    too_long = {
        relative: lines
        for app in APPS
        for path in _modules(app)
        if (relative := str(path.relative_to(ROOT))) not in SIZE_EXEMPT
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}
