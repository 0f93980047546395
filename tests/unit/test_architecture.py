"""The import rules of docs/architecture.md, read from the import statements with ``ast``.

Every room of ``erpsync/`` may import only the rooms listed for it (and the standard library and
third-party packages, apart from the few named below). A new edge between rooms is a decision:
make it here and in docs/architecture.md together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "erpsync"

FOUNDATION = {"errors", "clock", "logs", "config"}

#: room -> the rooms it may import (a room always may import itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "logs": set(),
    "config": {"errors", "logs"},  # one redaction function, also for `config show`
    "soap": FOUNDATION,
    "graphql": FOUNDATION,
    "store": FOUNDATION | {"graphql"},  # quota_repo persists the governor's bucket types
    "job": FOUNDATION | {"store"},
    "inbound": FOUNDATION | {"soap", "graphql", "store", "job"},
    "outbound": FOUNDATION | {"graphql", "store", "job"},
    "erp": FOUNDATION | {"store", "job"},
    "daemon": FOUNDATION | {"store", "job"},
    "sample": set(),
    "sim": {"clock", "logs"},  # Centra, not erpsync: none of the clients, the store or the jobs
    "app": FOUNDATION | {"soap", "graphql", "store", "job", "inbound", "outbound", "erp", "daemon"},
    "check": FOUNDATION | {"soap", "graphql", "store", "job", "inbound", "outbound"},  # erpsync check
    "demo": FOUNDATION | {"soap", "graphql", "store", "job", "inbound", "outbound", "erp", "daemon", "app",
                          "sim", "sample"},
    "cli": FOUNDATION | {"soap", "graphql", "store", "job", "inbound", "outbound", "erp", "daemon", "app",
                         "sim", "sample", "demo", "check"},
}

#: third-party modules that only some rooms may use
RESTRICTED = {
    "click": {"cli"},  # argv is parsed in one place
    "importlib": {"graphql", "store", "sim", "cli", "demo"},  # never in the composition root
}


def room_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Absolute module names imported by ``path`` (relative imports resolved), with line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["erpsync", *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module


def violations(path: Path) -> list[str]:
    room = room_of(path)
    allowed = ALLOWED[room] | {room}
    out = []
    for line, module in imported_modules(path):
        parts = module.split(".")
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if parts[0] == "erpsync":
            if len(parts) == 1:
                out.append(f"{where} imports the erpsync package itself")
                continue
            target = parts[1]
            if target not in allowed:
                out.append(f"{where}: {room} imports {module} ({target} is not allowed)")
        elif parts[0] in RESTRICTED and room not in RESTRICTED[parts[0]]:
            out.append(f"{where}: {room} imports {module} (only {sorted(RESTRICTED[parts[0]])} may)")
    return out


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_every_room_is_known() -> None:
    rooms = {room_of(p) for p in package_modules()} - {"__init__", "__main__"}
    assert rooms <= set(ALLOWED), f"rooms without import rules: {sorted(rooms - set(ALLOWED))}"


def test_no_room_imports_what_it_must_not() -> None:
    found = [v for p in package_modules() if room_of(p) not in {"__init__", "__main__"} for v in violations(p)]
    assert found == []


def test_every_module_says_what_it_is_for() -> None:
    silent = [str(p.relative_to(PACKAGE)) for p in package_modules()
              if p.name != "__main__.py" and p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert silent == []


@pytest.mark.parametrize(("room", "source", "expected"), [
    ("soap", "from erpsync.inbound.pull import PullJob\n", "soap imports erpsync.inbound.pull"),
    ("graphql", "from erpsync.store.models import JobRun\n", "graphql imports erpsync.store.models"),
    ("store", "import erpsync.daemon.service\n", "store imports erpsync.daemon.service"),
    ("sim", "from erpsync.soap.xml import parse_events\n", "sim imports erpsync.soap.xml"),
    ("daemon", "from erpsync.app import build_app\n", "daemon imports erpsync.app"),
    ("daemon", "from ..sim import server\n", "daemon imports erpsync.sim"),
    ("outbound", "from erpsync.cli.base import Ctx\n", "outbound imports erpsync.cli.base"),
    ("inbound", "from erpsync.demo.run import demo_main\n", "inbound imports erpsync.demo.run"),
    ("outbound", "import click\n", "outbound imports click"),
    ("app", "import importlib.util\n", "app imports importlib.util"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: str, source: str,
                                      expected: str) -> None:
    fake = tmp_path / "erpsync"
    target = fake / f"{room}.py" if room == "app" else fake / room / "probe.py"
    target.parent.mkdir(parents=True)
    target.write_text('"""probe"""\n' + source)
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    found = violations(target)
    assert len(found) == 1 and expected in found[0]
