"""The documentation is executed: every Python example, every doctest, every diagram is current."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import sys
import types
from pathlib import Path

import pytest

import ecommerce_core
from ecommerce_core.cli import diagram_page
from ecommerce_core.processes import PROCESSES

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Examples that show how a host wires its own code cannot run here; they say so.
HOST_ONLY = ("MyOrderRepository",)


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for index, match in enumerate(FENCE.finditer(page.read_text(encoding="utf-8"))):
            code = match.group(1)
            if not any(marker in code for marker in HOST_ONLY):
                found.append((f"{page.relative_to(ROOT)}#{index}", code))
    return found


def run_example(where: str, code: str) -> None:
    """Run one example as the module ``__docs__``, registered while it runs.

    Registered so that what looks its class's module up works as in a real file
    (``dataclasses``, ``pickle``, ``typing.get_type_hints``).
    """
    module = types.ModuleType("__docs__")
    sys.modules["__docs__"] = module
    try:
        exec(compile(code, where, "exec"), module.__dict__)  # noqa: S102  # our own docs
    finally:
        del sys.modules["__docs__"]


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_every_python_example_in_the_docs_runs(where, code, capsys):
    run_example(where, code)


def test_an_example_may_define_a_dataclass_and_pickle_it():
    run_example(
        "dataclass-example",
        "import pickle\n"
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Row:\n"
        "    version: int\n"
        "assert pickle.loads(pickle.dumps(Row(1))) == Row(1)\n",
    )
    assert "__docs__" not in sys.modules


def test_the_docs_have_examples():
    assert len(examples()) >= 5


@pytest.mark.parametrize(
    "module_name",
    sorted(m.name for m in pkgutil.walk_packages(ecommerce_core.__path__, "ecommerce_core.")),
)
def test_every_doctest_passes(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_the_generated_diagram_of_each_process_is_current(name):
    page = ROOT / "docs" / "diagrams" / f"{name}.md"
    assert page.exists(), f"run `make diagrams`: {page} is missing"
    assert page.read_text(encoding="utf-8") == diagram_page(PROCESSES[name]), (
        f"{page} is stale: run `make diagrams`"
    )


def test_no_diagram_page_is_left_for_a_process_that_no_longer_exists():
    pages = {p.stem for p in (ROOT / "docs" / "diagrams").glob("*.md")}
    assert pages <= set(PROCESSES)


def nav_pages() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return set(re.findall(r":\s*([\w./-]+\.md)\s*$", text, re.MULTILINE))


def test_every_docs_page_is_in_the_site_navigation():
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages - nav_pages() == set(), "add the page to `nav:` in mkdocs.yml"
    assert nav_pages() - pages == set(), "mkdocs.yml names a page that does not exist"


def test_every_navigation_title_parses_as_yaml_a_colon_in_it_is_quoted():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    titles = re.findall(r"^\s*- (.+):\s*[\w./-]+\.md\s*$", text, re.MULTILINE)
    assert titles
    unquoted = [t for t in titles if ":" in t and not (t.startswith('"') and t.endswith('"'))]
    assert unquoted == [], "quote a navigation title that holds a colon (YAML reads a mapping)"
