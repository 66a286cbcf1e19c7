"""The shape of the package: a pure domain, a complete public API, docstrings everywhere."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import pytest

import ecommerce_core

PACKAGE = Path(ecommerce_core.__file__).parent
# Application and outer layers may use more; everything else is domain.
OUTER = {
    "__init__",
    "cli",
    "demo",
    "services",
    "ports",
    "processes",
    "testing",
    "adapters",
    "simulation",
}
DOMAIN_THIRD_PARTY = {"attrs", "transitions"}


def modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages([str(PACKAGE)], prefix="ecommerce_core.")
    )


def domain_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0].removesuffix(".py") not in OUTER
    )


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_modules_import_only_the_standard_library_attrs_and_transitions(path):
    allowed = set(sys.stdlib_module_names) | DOMAIN_THIRD_PARTY | {"ecommerce_core", "__future__"}
    assert imported_roots(path) - allowed == set()


def test_the_testing_kit_needs_only_what_its_extra_installs():
    import tomllib  # noqa: PLC0415  # only this test reads the project file

    extras = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]["optional-dependencies"]
    kit = {requirement.split(">")[0] for requirement in extras["testing"]}
    assert kit == {"hypothesis", "pytest"}
    assert set(extras["testing"]) <= set(extras["test"])  # our suite runs the kit too
    allowed = set(sys.stdlib_module_names) | DOMAIN_THIRD_PARTY | kit
    for path in sorted((PACKAGE / "testing").rglob("*.py")):
        assert imported_roots(path) - allowed - {"ecommerce_core", "__future__"} == set(), path


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_modules_import_no_outer_layer(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    outer = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("ecommerce_core.")
        and node.module.split(".")[1] in OUTER
    }
    assert outer == set()


def test_the_purity_check_would_catch_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nimport requests\nfrom django.db import models\n")
    assert imported_roots(bad) - set(sys.stdlib_module_names) == {"requests", "django"}


def test_the_domain_list_is_not_empty():
    names = {p.name for p in domain_modules()}
    assert {"money.py", "errors.py", "process.py", "orders.py", "events.py"} <= names


def test_everything_in_dunder_all_exists():
    for name in ecommerce_core.__all__:
        assert hasattr(ecommerce_core, name), name


@pytest.mark.parametrize("module_name", modules())
def test_every_public_name_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no docstring"
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
            for member_name, member in vars(obj).items() if inspect.isclass(obj) else ():
                if member_name.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{module_name}.{name}.{member_name}"
