"""The rooms of the house stay where DESIGN.md puts them: imports flow one way (core ← moderation,
retrieval ← ingest ← llm ← eval ← finetune ← app; bench on top, imported by nothing) and no two modules
import each other, directly or round a longer circle. Read from the source with ``ast``: lazy imports
inside functions count too, since they are a circle all the same, only deferred."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# finetune sits above eval: it scores an adapter before/after with eval's runner and reports; eval never
# needs finetune. Same-rank packages (moderation, retrieval) may not import each other.
RANK = {"core": 0, "moderation": 1, "retrieval": 1, "ingest": 2, "llm": 3, "eval": 4, "finetune": 5, "app": 6, "bench": 7}


def _modules() -> dict[str, Path]:
    out = {}
    for package in RANK:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The zhiwen modules ``path`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_imports_flow_from_higher_layers_to_lower_ones_only():
    wrong = []
    for module, imported in _graph().items():
        here = module.split(".")[0]
        for target in imported:
            there = target.split(".")[0]
            if there != here and RANK[there] >= RANK[here]:
                wrong.append(f"{module} → {target}")
    assert not wrong, "imports against the layers: " + ", ".join(sorted(wrong))


def test_no_import_circles_between_modules():
    graph = _graph()
    # Packages' __init__ files only name their package: an edge into one is not a dependency on its modules.
    graph = {m: {t for t in targets if not (REPO / t.replace(".", "/") / "__init__.py").exists()} for m, targets in graph.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" → ".join(c) for c in circles)
