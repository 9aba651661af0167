"""The direction of imports, enforced: layers, features' rooms, and no import loops.

Layers, lowest first: ``features`` ← ``segmentation`` ← ``models`` ←
(``worklist``, ``scenarios``: checked as soon as they exist) ← ``sote``. A
package imports only from layers below its own (and from itself). Inside
``features`` the rooms follow the data flow: ``config`` (packaged YAML and the
loader) is the bottom, then ``contract``; ``synth``, ``adapters`` and
``histories`` build on the contract; ``targets`` on the contract and the
histories. Modules lying directly in ``features/`` are shared helpers: any
room may use them, and they use only ``config``. Function-local imports count
(they are imports at run time); imports under ``if TYPE_CHECKING:`` do not.
Every violation is reported as ``file:line`` with the imported module.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Layer of each top-level package; a package may import only from lower layers (and itself).
LAYERS = {"features": 0, "segmentation": 1, "models": 2, "worklist": 3, "scenarios": 3, "sote": 4}
#: Rooms of ``features`` and the rooms each may import (besides itself and the flat helper modules).
FEATURE_ROOMS = {
    "config": set(),
    "contract": {"config"},
    "synth": {"config", "contract"},
    "adapters": {"config", "contract"},
    "histories": {"config", "contract"},
    "targets": {"config", "contract", "histories"},
}
#: Folders at the top that are not part of the package graph.
NOT_PACKAGES = {"tests", "notebooks", "benchmarks", "docs", "mlruns", "out", "build", ".venv"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is written."""

    source: str   # importing module
    target: str   # imported project module (resolved to an existing module or package)
    file: str
    line: int


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the project's top-level packages under ``root``."""
    mods = {}
    for pkg in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in NOT_PACKAGES
                      and (p / "__init__.py").exists()):
        for f in sorted(pkg.rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def project_imports(root: Path) -> tuple[dict[str, Path], list[Import]]:
    """Every import of one project module by another, resolved to the longest existing module name."""
    mods = project_modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for module, file in mods.items():
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        skip = _type_checking_lines(tree)
        is_package = file.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[:len(package) - (node.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` only mod
                names = [f"{base}.{a.name}" if resolve(f"{base}.{a.name}") == f"{base}.{a.name}" else base
                         for a in node.names]
            for name in dict.fromkeys(names):
                target = resolve(name)
                if target and target != module and not module.startswith(target + "."):
                    found.append(Import(module, target, str(file.relative_to(root)), node.lineno))
    return mods, found


def _rooms(mods: dict[str, Path]) -> set[str]:
    """Names of the sub-packages of ``features`` present."""
    return {m.split(".")[1] for m, f in mods.items()
            if m.startswith("features.") and (f.name == "__init__.py" or m.count(".") >= 2)}


def layer_violations(mods: dict[str, Path], imports: list[Import]) -> list[str]:
    """``file:line`` messages for every import against the layers or the rooms of ``features``."""
    problems = []
    for top in sorted({m.split(".")[0] for m in mods} - set(LAYERS)):
        problems.append(f"{top}/: a package without a layer; add it to LAYERS in tests/test_architecture.py")
    rooms = _rooms(mods)
    for room in sorted(rooms - set(FEATURE_ROOMS)):
        problems.append(f"features/{room}/: a room without rules; add it to FEATURE_ROOMS in "
                        f"tests/test_architecture.py")

    def room_of(module: str) -> str | None:  # None: a helper lying directly in features/ (or the package itself)
        parts = module.split(".")
        return parts[1] if len(parts) >= 2 and parts[1] in rooms else None

    for imp in imports:
        src_top, dst_top = imp.source.split(".")[0], imp.target.split(".")[0]
        where = f"{imp.file}:{imp.line}: {imp.source} imports {imp.target}"
        if src_top != dst_top:
            if src_top in LAYERS and dst_top in LAYERS and LAYERS[dst_top] >= LAYERS[src_top]:
                problems.append(f"{where} ({src_top} may import only from lower layers: "
                                f"{sorted(p for p, r in LAYERS.items() if r < LAYERS[src_top])})")
            continue
        if src_top != "features":
            continue
        src_room, dst_room = room_of(imp.source), room_of(imp.target)
        if dst_room is None or dst_room == src_room:
            continue  # within a room, or a helper (open to every room)
        if src_room is None:
            if dst_room != "config":
                problems.append(f"{where} (modules directly in features/ are helpers: they may import only "
                                f"features.config)")
        elif dst_room not in FEATURE_ROOMS.get(src_room, set()):
            problems.append(f"{where} (features.{src_room} may import only "
                            f"{sorted('features.' + r for r in FEATURE_ROOMS.get(src_room, set()))})")
    return problems


def import_loops(imports: list[Import]) -> list[tuple[frozenset[str], list[Import]]]:
    """Strongly connected groups of modules (Tarjan), each with the imports that tie it together."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [(g, [i for i in imports if i.source in g and i.target in g]) for g in groups]


def _loop_message(group: frozenset[str], edges: list[Import]) -> str:
    lines = "\n".join(f"    {e.file}:{e.line}: {e.source} imports {e.target}" for e in edges)
    return f"import loop between {sorted(group)}:\n{lines}"


@pytest.fixture(scope="module")
def graph():
    return project_imports(ROOT)


def test_every_layer_and_room_imports_only_downwards(graph):
    mods, imports = graph
    assert {"features", "segmentation", "models", "sote"} <= {m.split(".")[0] for m in mods}
    assert len(imports) > 100  # the checker sees the real graph
    problems = layer_violations(mods, imports)
    assert not problems, "imports against the direction of the layers:\n" + "\n".join(problems)


def test_no_import_loops(graph):
    _, imports = graph
    loops = import_loops(imports)
    assert not loops, "\n".join(_loop_message(g, e) for g, e in loops)


# ------------------------------------------------------------------ the checker itself, on a small made-up tree

def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _base(root: Path) -> dict[str, str]:
    return {
        "features/__init__.py": "", "features/config/__init__.py": "", "features/config/loader.py": "",
        "features/contract/__init__.py": "", "features/contract/tables.py": "from features.config import loader\n",
        "features/histories/__init__.py": "", "features/histories/spec.py": "from features.contract import tables\n",
        "features/helper.py": "import features.config.loader\n",
        "segmentation/__init__.py": "", "segmentation/grid.py": "from features.histories.spec import x\n",
        "models/__init__.py": "", "models/train.py": "from segmentation import grid\n",
        "sote/__init__.py": "", "sote/cli.py": "import models.train\n",
    }


def test_checker_reports_module_and_line_of_each_bad_import(tmp_path):
    files = _base(tmp_path)
    assert layer_violations(*project_imports(_tree(tmp_path / "good", files))) == []
    files["segmentation/grid.py"] += "\n\ndef f():\n    from sote.cli import app  # upward, in a function\n"
    files["features/contract/tables.py"] += "from features.histories import spec\n"
    files["features/helper.py"] += "from features.contract.tables import T\n"
    files["models/train.py"] += "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sote import cli\n"
    problems = layer_violations(*project_imports(_tree(tmp_path / "bad", files)))
    assert problems == [
        "features/contract/tables.py:2: features.contract.tables imports features.histories.spec "
        "(features.contract may import only ['features.config'])",
        "features/helper.py:2: features.helper imports features.contract.tables (modules directly in features/ "
        "are helpers: they may import only features.config)",
        "segmentation/grid.py:5: segmentation.grid imports sote.cli (segmentation may import only from lower "
        "layers: ['features'])",
    ]


def test_checker_finds_loops_and_unknown_packages(tmp_path):
    files = _base(tmp_path)
    files["models/tune.py"] = "from models.train import fit\n"
    files["models/train.py"] += "\ndef train():\n    from models import tune\n"
    files["monitoring/__init__.py"] = ""
    files["features/reports/__init__.py"] = ""
    mods, imports = project_imports(_tree(tmp_path, files))
    loops = import_loops(imports)
    assert [g for g, _ in loops] == [frozenset({"models.train", "models.tune"})]
    assert _loop_message(*loops[0]) == ("import loop between ['models.train', 'models.tune']:\n"
                                        "    models/train.py:4: models.train imports models.tune\n"
                                        "    models/tune.py:1: models.tune imports models.train")
    problems = layer_violations(mods, imports)
    assert problems[0].startswith("monitoring/: a package without a layer")
    assert problems[1].startswith("features/reports/: a room without rules")
