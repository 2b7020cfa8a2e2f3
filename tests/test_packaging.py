"""What the product imports at run time is what `pip install .` installs (the README's first
command, and the Docker images): a run-time import that only a test extra brings in fails here,
not on a newcomer's machine. (.ci/first_run.sh proves the same with a real install and upload.)"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"service", "training"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_names(path: Path) -> set[str]:
    """Every absolute import in a file, function-level ones too (lazy imports run at run time)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module in LOCAL:  # from training import video
                names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def runtime_files() -> set[Path]:
    """service/*.py and every training module they reach."""
    todo = sorted((ROOT / "service").glob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            if parts[0] in LOCAL and len(parts) > 1 and (ROOT / parts[0] / f"{parts[1]}.py").is_file():
                todo.append(ROOT / parts[0] / f"{parts[1]}.py")
    return seen


def runtime_dependencies() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in deps}


def test_every_runtime_import_is_a_runtime_dependency():
    files = runtime_files()
    assert ROOT / "training" / "video.py" in files  # the decoder is reached, or this test checks too little
    distributions = packages_distributions()
    deps = runtime_dependencies()
    missing = {}
    for path in files:
        for name in imported_names(path):
            top = name.split(".")[0]
            if top in LOCAL or top in sys.stdlib_module_names or top == "__future__":
                continue
            dists = {normalise(d) for d in distributions.get(top, [])}
            assert dists, f"{path.relative_to(ROOT)} imports {top!r}, which no installed distribution provides"
            if not dists & deps:
                missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported at run time but not in [project].dependencies: {missing}"


def test_the_docker_images_install_the_package_with_its_dependencies():
    """No Dockerfile-only pip lines: the images get what `pip install .` gets."""
    for name in ("api.Dockerfile", "worker.Dockerfile"):
        text = (ROOT / "docker" / name).read_text()
        assert "RUN pip install .\n" in text
        installs = re.findall(r"pip install ([^\n]+)", text)
        assert all(i == "." or i.startswith("--index-url https://download.pytorch.org") for i in installs), installs


def test_the_test_run_says_what_it_is_doing():
    """Each test is named as it starts (-v) and the slowest are listed (--durations): a long test
    on a loaded machine shows where the run is, not minutes of silence."""
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert "-v" in addopts and any(a.startswith("--durations") for a in addopts)
