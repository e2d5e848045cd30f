"""docs/ARCHITECTURE.md is the map of the house; this keeps it from silently rotting.

Every `studio_core.…` / `studio_gui.…` name in backticks must be a module, package or a
name defined in one; every `module.Name.attr` whose first part is a studio_core module
(the data-flow steps: `session.Session.plan`, `jobs.JobQueue.submit`…) must resolve the
same way; and every top-level studio_core module and package, and every studio_gui
package, must be on the map. Read from the files with ast: no import, no Qt needed.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
FILE_SUFFIXES = {"json", "py", "png", "toml", "md", "lock", "txt", "csv"}
TOKEN = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def module_file(parts: list[str], root: Path = ROOT) -> Path | None:
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    py = base.with_suffix(".py")
    return py if py.is_file() else None


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"))


def _defined(body: list[ast.stmt], name: str) -> ast.AST | None:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return node
    return None


def resolves(dotted: str, root: Path = ROOT) -> bool:
    """A module or package, or a module followed by a name it defines (then a class's member)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_file(parts[:cut], root)
        if path is None:
            continue
        rest = parts[cut:]
        body: list[ast.stmt] = _tree(path).body
        for name in rest:
            node = _defined(body, name)
            if node is None:
                return False
            body = node.body if isinstance(node, ast.ClassDef) else []
        return True
    return False


def top_level(package: str, root: Path = ROOT, *, modules: bool = True) -> set[str]:
    names = set()
    for p in (root / package).iterdir():
        if p.is_dir() and (p / "__init__.py").is_file():
            names.add(f"{package}.{p.name}")
        elif modules and p.suffix == ".py" and p.stem != "__init__":
            names.add(f"{package}.{p.stem}")
    return names


def names_in(text: str) -> tuple[set[str], set[str]]:
    """(full names `studio_core.x…`/`studio_gui.x…`, core-relative names `session.Session.plan`)."""
    full, relative = set(), set()
    core_modules = {n.split(".", 1)[1] for n in top_level("studio_core")}
    for token in TOKEN.findall(text):
        first, last = token.split(".")[0], token.split(".")[-1]
        if last in FILE_SUFFIXES:
            continue
        if first in ("studio_core", "studio_gui"):
            full.add(token)
        elif first in core_modules:
            relative.add(token)
    return full, relative


def test_every_name_on_the_map_exists():
    full, relative = names_in(DOC.read_text("utf-8"))
    assert len(full) > 40 and len(relative) > 20  # the map names what it shows
    missing = sorted(n for n in full if not resolves(n))
    missing += sorted(n for n in relative if not resolves("studio_core." + n))
    assert missing == [], "docs/ARCHITECTURE.md names what the code no longer has"


def test_every_top_level_core_part_and_gui_package_is_on_the_map():
    full, _ = names_in(DOC.read_text("utf-8"))
    named = {".".join(n.split(".")[:2]) for n in full}
    wanted = top_level("studio_core") | top_level("studio_gui", modules=False)
    assert sorted(wanted - named) == [], "docs/ARCHITECTURE.md leaves these out"


def test_the_doc_stays_one_page():
    assert len(DOC.read_text("utf-8").splitlines()) <= 250


def test_the_checks_catch_a_stale_map(tmp_path):
    pkg = tmp_path / "studio_core"
    (pkg / "pool").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pool" / "__init__.py").write_text("")
    (pkg / "session.py").write_text("class Session:\n    def plan(self):\n        pass\n\ndef helper():\n    pass\n")
    assert resolves("studio_core.session.Session.plan", tmp_path)
    assert resolves("studio_core.pool", tmp_path) and resolves("studio_core.session.helper", tmp_path)
    assert not resolves("studio_core.session.Session.expand", tmp_path)  # a renamed method
    assert not resolves("studio_core.queue", tmp_path)  # a module that went away
    assert top_level("studio_core", tmp_path) == {"studio_core.pool", "studio_core.session"}
