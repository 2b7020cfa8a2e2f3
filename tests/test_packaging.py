"""What the product imports at run time is what `pip install .` installs (the README's first
command, and the Docker images): a run-time import that only a test extra brings in fails here,
not on a newcomer's machine. (.ci/first_run.py proves the same with real installs, editable and
the wheel, and an upload.)"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

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
    # the onnx extra's packages, which only training/runtime.py imports, where their absence runs PyTorch instead
    onnx_extra = {
        normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["onnx"]
    }
    missing = {}
    for path in files:
        for name in imported_names(path):
            top = name.split(".")[0]
            if top in LOCAL or top in sys.stdlib_module_names or top == "__future__":
                continue
            dists = {normalise(d) for d in distributions.get(top, [])}
            assert dists, f"{path.relative_to(ROOT)} imports {top!r}, which no installed distribution provides"
            if not dists & deps and not (path == ROOT / "training" / "runtime.py" and dists & onnx_extra):
                missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported at run time but not in [project].dependencies: {missing}"


def test_the_docker_images_install_the_built_package_and_run_outside_the_source():
    """No Dockerfile-only pip lines: the images get what the wheel gets. A first stage builds the
    wheel from the source; the image installs it, holds no source, and runs from an empty folder, so
    the checkpoint and the detector's weights are found in the installed package or not at all."""
    for name in ("api.Dockerfile", "worker.Dockerfile"):
        text = (ROOT / "docker" / name).read_text()
        stages = re.split(r"^FROM ", text, flags=re.M)[1:]
        assert len(stages) == 2, f"{name}: a build stage and the image"
        build, image = stages
        assert "RUN pip wheel --no-deps . -w /dist\n" in build
        assert "COPY --from=build /dist /dist\n" in image and "RUN pip install /dist/*.whl && rm -rf /dist\n" in image
        installs = re.findall(r"pip install ([^\n]+)", image)
        assert all(i.startswith(("/dist/*.whl", "--index-url https://download.pytorch.org")) for i in installs), (
            installs
        )
        copies = [line for line in image.splitlines() if line.startswith("COPY ")]
        assert copies == ["COPY --from=build /dist /dist"], f"{name}: source copied into the image: {copies}"
        assert re.findall(r"^WORKDIR (\S+)", image, flags=re.M)[-1] == "/app"
        assert "MODEL_DIR" not in re.sub(r"#.*", "", image), (
            f"{name}: MODEL_DIR set: the package's own checkpoint is the default"
        )
    for name in ("docker-compose.yml", "docker-compose.worker.yml"):
        assert "MODEL_DIR:" not in re.sub(r"#.*", "", (ROOT / name).read_text()), f"{name} sets MODEL_DIR"


def test_the_model_files_are_package_data_found_beside_the_package():
    """The served checkpoint and the detector's weights (with its licence) resolve inside the
    installed `training` package, never against the working directory, and the package-data globs of
    pyproject.toml list every file of training/models, so a wheel carries them."""
    from fnmatch import fnmatch

    import training
    from service.settings import DEFAULT_MODEL_DIR
    from training.bundled import DETECTOR_WEIGHTS, MODELS, SERVED_CHECKPOINT
    from training.detector import WEIGHTS

    package = Path(training.__file__).resolve().parent
    assert package / "models" == MODELS and DEFAULT_MODEL_DIR == SERVED_CHECKPOINT == MODELS / "default"
    assert WEIGHTS == DETECTOR_WEIGHTS and DETECTOR_WEIGHTS.parent.parent == MODELS
    for path in (SERVED_CHECKPOINT, DETECTOR_WEIGHTS):
        assert path.is_absolute() and path.exists(), path
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md"):
        assert (SERVED_CHECKPOINT / name).is_file(), name
    for name in ("LICENSE", "NOTICE", "README.md"):  # Apache-2.0: the licence travels with the weights
        assert (DETECTOR_WEIGHTS.parent / name).is_file(), name
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["training"]
    files = [
        f.relative_to(package).as_posix() for f in MODELS.rglob("*") if f.is_file() and "__pycache__" not in f.parts
    ]
    unlisted = [f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert files and not unlisted, f"in training/models but not package data: {unlisted}"
    assert not (ROOT / "models").exists(), "a models/ folder at the repository root is not in the package"


def test_predict_works_from_another_folder(tmp_path):
    """`python -m service predict` run from a folder with no source in it finds the checkpoint and
    the detector's weights by itself (CI proves the same for an installed wheel: .ci/first_run.py)."""
    import json
    import os
    import shutil
    import subprocess

    shutil.copy(ROOT / "service" / "assets" / "check-face.mp4", tmp_path / "face.mp4")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAMFER_MODEL_DIR", "MODEL_DIR", "PYTHONPATH", "RAMFER_CHECK_VIDEO", "CHECK_VIDEO")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "service", "predict", "face.mp4", "--json", "--out", "images"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["faces"]["frames_with_face"] > 0 and result["expression"] in result["probabilities"]
    assert (tmp_path / "images" / "peak.png").is_file()


def test_the_test_run_says_what_it_is_doing():
    """Each test is named as it starts (-v) and the slowest are listed (--durations): a long test
    on a loaded machine shows where the run is, not minutes of silence."""
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert "-v" in addopts and any(a.startswith("--durations") for a in addopts)
