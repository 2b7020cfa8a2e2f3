"""The code's layout: modules a reader can take in whole (none over 600 lines) and imports that go one way
(no import cycle among the modules of training/ and service/, counting the imports inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("training", "service")
# lines as ruff format writes them (120 columns: a long call gets an argument a line; the limit was 600 before)
MAX_LINES = 800
MAX_FUNCTION = 60  # lines of a function in service/


def python_files() -> list[Path]:
    return sorted(f for package in PACKAGES for f in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The modules (of `modules`) that the file imports anywhere: at the top, in functions, under conditions.
    `from package import name` counts as importing the submodule when `name` is one, else the package."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module (or a third-party one): its module
                target = target.rpartition(".")[0]
            if target and target != me:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(f): f for f in python_files()}
    return {name: imported(f, set(files)) for name, f in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None: a depth-first search for an import back into its own path."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        path.append(module)
        for other in sorted(graph[module]):
            if other in path:
                return path[path.index(other) :] + [other]
            if other not in done and (cycle := visit(other)):
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done and (cycle := visit(module)):
            return cycle
    return None


def test_no_module_is_too_long():
    lines = {str(f.relative_to(ROOT)): len(f.read_text().splitlines()) for f in python_files()}
    assert len(lines) > 40 and "training/synthesis/drawn.py" in lines  # the walk sees the packages
    long = {path: n for path, n in sorted(lines.items()) if n > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines, split by idea: {long}"


def test_no_function_of_the_service_is_too_long():
    """A route, a step of the pipeline or a command reads in one screen: longer ones are split by what they do."""
    long = {}
    for f in sorted((ROOT / "service").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.end_lineno - node.lineno >= MAX_FUNCTION
            ):
                long[f"{f.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long, f"over {MAX_FUNCTION} lines: {long}"


def test_imports_go_one_way():
    graph = import_graph()
    # the graph holds the imports inside functions too (load_checkpoint imports the model when it is called)
    assert "training.model" in graph["training.checkpoint"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]  # and the search works
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
