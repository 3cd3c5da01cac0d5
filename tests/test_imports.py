"""Every import in kundo_gdpr points down the plan's layers: no import circle,
counting imports inside functions too (a lazy import hides a circle, it does
not remove it). A package's __init__ importing its own children is not a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kundo_gdpr"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != me and not name.startswith(me + "."):
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, known) for p in files}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_kundo_gdpr() -> None:
    assert circles(graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """Guards the test above: it can fail."""
    edges = graph()
    edges["kundo_gdpr.replies.context"] = {*edges["kundo_gdpr.replies.context"],
                                          "kundo_gdpr.stages.run"}
    assert ["kundo_gdpr.replies.context", "kundo_gdpr.stages.run"] in circles(edges)


def test_the_stages_sit_above_replies_and_below_the_cli_and_web() -> None:
    edges = graph()
    below = ("kundo_gdpr.replies", "kundo_gdpr.checks", "kundo_gdpr.actions", "kundo_gdpr.desk",
             "kundo_gdpr.intake", "kundo_gdpr.models")
    for module, targets in edges.items():
        if module.startswith(below):
            upward = {t for t in targets if t.startswith(("kundo_gdpr.stages",
                                                          "kundo_gdpr.cli", "kundo_gdpr.web"))}
            assert not upward, f"{module} imports {upward}"
