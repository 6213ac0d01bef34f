"""The dependency direction of docs/layers.md, read from the imports: a new import that breaks it fails here."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "carewatch"


def _imports(path: Path) -> set[str]:
    """The absolute module names a file imports (at top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _area(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _graph() -> dict[str, dict[str, set[str]]]:
    """area -> imported area -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "carewatch" and len(parts) > 1 and parts[1] != _area(path):
                graph[_area(path)][parts[1]].add(str(path.relative_to(PACKAGE)))
    return graph


def test_no_two_areas_import_each_other() -> None:
    graph = _graph()
    both = sorted((a, b, sorted(graph[a][b] | graph[b][a])) for a in graph for b in graph[a]
                  if a < b and a in graph.get(b, {}))
    assert not both, f"areas importing each other (and the files that do): {both}"


def test_the_domain_imports_only_itself_and_the_standard_library() -> None:
    outside = {}
    for path in (PACKAGE / "domain").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("carewatch.") and not name.startswith("carewatch.domain"):
                outside[str(path.relative_to(PACKAGE)), name] = "another area"
            elif top not in sys.stdlib_module_names and top not in ("carewatch", "__future__"):
                outside[str(path.relative_to(PACKAGE)), name] = "not the standard library"
    assert not outside, outside


def test_storage_never_reaches_up_to_alerts_pipeline_graphql_or_the_stream() -> None:
    graph = _graph()
    up = {area: sorted(files) for area, files in graph["store"].items()
          if area in ("alerts", "pipeline", "graphql", "stream", "web", "cli")}
    assert not up, f"store/ imports {up}"


def test_nothing_imports_an_entry_point() -> None:
    graph = _graph()
    entry_points = {"cli", "web", "__main__"}
    callers = {(area, target): sorted(files) for area, targets in graph.items() for target, files in targets.items()
               if target in entry_points and area not in ("cli", "__main__")}
    assert not callers, callers


def test_the_checks_see_a_violation() -> None:
    """The graph is read from real imports: the service layer's known use of the domain shows."""
    assert "domain" in _graph()["pipeline"]
