"""The Docker image carries the compiled BM25 scoring loop.

setup.py makes the kernel optional, so an image whose build stage lacks setup.py, the C source or a compiler
still builds, and silently scores with numpy. These tests read deploy/Dockerfile and /.dockerignore the way
Docker does and fail when the build stage would not have what the kernel needs; the last one lays out the
build stage's source tree from the Dockerfile's own COPY lines and builds the wheel from it. (No Docker engine
runs here: `docker build` itself is not run.)
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.docker_context import (
    DockerIgnore,
    Stage,
    parse_dockerfile,
    stage_tree,
    tracked_files,
    workdir_of,
)
from tests.support import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
KERNEL_CHECK = "bm25.kernel is not None"
TOKEN_SCAN_CHECK = "tokenizer._token_scan is not None"
COMPILERS = ("gcc", "build-essential", "clang", "cc")


def _stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _build_stage() -> Stage:
    stages = [s for s in _stages() if any(re.search(r"\bpip\b.*\bwheel\b", run) for run in s.runs())]
    assert len(stages) == 1, "exactly one stage must build the wheel (`pip wheel .`)"
    return stages[0]


def _ignore() -> DockerIgnore:
    return DockerIgnore.parse(DOCKERIGNORE.read_text(encoding="utf-8") if DOCKERIGNORE.exists() else "")


def _needed_by_the_build() -> list[str]:
    """What `pip wheel .` reads: pyproject.toml, setup.py, the readme, the package folders, the C sources."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", "setup.py", project["project"]["readme"]]
    needed += sorted(set(project["tool"]["setuptools"]["package-dir"].values()))
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "sources":
            needed += [ast.literal_eval(element) for element in node.value.elts]  # type: ignore[attr-defined]
    return needed


def _pip_wheel_target(stage: Stage) -> tuple[str, str]:
    """(WORKDIR, project path) of the build stage's `pip wheel` command."""
    run = next(r for r in stage.runs() if re.search(r"\bpip\b.*\bwheel\b", r))
    command = next(part for part in re.split(r"&&|;", run) if "wheel" in part)
    words = shlex.split(command)
    words = words[words.index("wheel") + 1 :]
    takes_value = {"-w", "--wheel-dir", "-r", "--requirement", "-c", "--constraint", "-f", "--find-links"}
    positional, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-"):
            positional.append(word)
    assert positional, f"`pip wheel` builds no path: {run}"
    return workdir_of(stage, "wheel"), positional[0]


# ------------------------------------------------------------------------------------------------- the stages


def test_the_build_stage_is_separate_from_the_runtime_stage() -> None:
    stages = _stages()
    build = _build_stage()
    assert len(stages) >= 2 and build is not stages[-1], "the compiler must stay out of the final image"
    assert build.name, "name the build stage (FROM ... AS build) so the runtime stage can copy from it"


def test_the_build_stage_copies_everything_the_kernel_build_needs() -> None:
    build = _build_stage()
    workdir, project = _pip_wheel_target(build)
    tree = stage_tree(build, ROOT, _ignore())
    base = "/" + "/".join(p for p in (workdir.strip("/"), project.strip("/")) if p not in ("", "."))
    missing = []
    for file in sorted({f for needed in _needed_by_the_build() for f in tracked_files(ROOT, needed) or [needed]}):
        at = f"{base.rstrip('/')}/{file}"
        if tree.get(at) != file:
            missing.append(f"{file} (expected at {at})")
    assert not missing, f"not copied where `pip wheel {project}` in {workdir} reads them: {missing}"
    assert {"index/engine/_bm25_kernel.c", "index/text/_token_scan.c"} <= set(_needed_by_the_build())


def test_the_build_stage_installs_a_compiler_and_checks_for_the_python_headers() -> None:
    runs = " ".join(_build_stage().runs())
    installs = re.findall(r"apt-get install ([^&;]*)", runs)
    packages = {word for words in installs for word in words.split() if not word.startswith("-")}
    assert packages & set(COMPILERS), f"no C compiler installed in the build stage (apt-get install {packages})"
    assert "Python.h" in runs, "check for Python.h: without it the kernel is skipped silently"


def test_the_runtime_stage_installs_the_wheel_and_refuses_an_image_without_the_kernel() -> None:
    final = _stages()[-1]
    build = _build_stage()
    copies = final.copies()
    assert any(c.from_stage == build.name for c in copies), "the runtime stage takes the wheels from the build stage"
    assert all(c.from_stage is not None for c in copies), "no source tree in the runtime image: only built wheels"
    runs = final.runs()
    install = next((n for n, r in enumerate(runs) if re.search(r"\bpip\b.*\binstall\b", r)), None)
    check = next((n for n, r in enumerate(runs) if KERNEL_CHECK in r), None)
    assert install is not None and "--no-index" in runs[install], "install the built wheels, nothing from PyPI"
    assert check is not None and check >= install, f"a RUN checking `{KERNEL_CHECK}` after the install"
    scan = next((n for n, r in enumerate(runs) if TOKEN_SCAN_CHECK in r), None)
    assert scan is not None and scan >= install, f"a RUN checking `{TOKEN_SCAN_CHECK}` after the install"
    if re.search(r"\bassert\b", runs[check]):  # python -O (or PYTHONOPTIMIZE) would skip the check
        env = " ".join(i.args for i in final.instructions if i.keyword == "ENV")
        assert "PYTHONOPTIMIZE" not in env and not re.search(r"python3?\s+-O", runs[check])
    assert not re.search(r"apt-get install[^&;]*\b(gcc|clang|build-essential)\b", " ".join(runs))


def test_the_runtime_stage_runs_as_a_numeric_non_root_user_with_data_on_a_volume() -> None:
    final = _stages()[-1]
    users = [i.args for i in final.instructions if i.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    # Kubernetes' runAsNonRoot can only verify a numeric user.
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: use a numeric, non-zero uid"
    assert any(i.keyword == "VOLUME" and "/data" in i.args for i in final.instructions)
    env = " ".join(i.args for i in final.instructions if i.keyword == "ENV")
    assert "CORPUSBOT_DB=/data/" in env
    assert _stages()[0].base == final.base or final.base.endswith("-slim"), "a slim runtime image"


# ---------------------------------------------------------------------------------------------- .dockerignore


def test_dockerignore_matches_as_docker_does() -> None:
    ignore = DockerIgnore.parse("build\n**/*.so\n*.db\n.env.*\n!.env.example\nbenchmarks/data\n")
    assert ignore.ignores("build") and ignore.ignores("build/lib/corpusbot/x.py")
    assert not ignore.ignores("index/build.py") and not ignore.ignores("index/build/x.py")
    assert ignore.ignores("x.so") and ignore.ignores("index/engine/_bm25_kernel.cpython-311-x86_64-linux-gnu.so")
    assert ignore.ignores("corpusbot.db") and not ignore.ignores("tests/data/corpusbot.db")  # * stops at /
    assert ignore.ignores(".env.local") and not ignore.ignores(".env.example")
    assert ignore.ignores("benchmarks/data/1M/x.jsonl") and not ignore.ignores("benchmarks/README.md")
    assert DockerIgnore.parse("**\n!index\n").ignores("bot/x.py")
    assert not DockerIgnore.parse("**\n!index\n").ignores("index/engine/_bm25_kernel.c")


def test_dockerignore_keeps_every_file_the_build_needs() -> None:
    ignore = _ignore()
    dropped = [f for f in tracked_files(ROOT, *_needed_by_the_build()) if ignore.ignores(f)]
    assert not dropped, f".dockerignore drops files the image build needs: {dropped}"


def test_dockerignore_keeps_secrets_databases_and_host_builds_out_of_the_context() -> None:
    assert DOCKERIGNORE.exists()
    ignore = _ignore()
    for path in (
        ".env",
        ".git/config",
        "corpusbot.db",
        "corpusbot.db-wal",
        "index/engine/_bm25_kernel.cpython-311-x86_64-linux-gnu.so",
        "index/engine/__pycache__/bm25.cpython-311.pyc",
        "corpusbot.egg-info/PKG-INFO",
        "build/lib/corpusbot/index/__init__.py",
        ".venv/bin/python",
        ".ci-venv/bin/python",
        "benchmarks/data/1M/jsonl/part-0.jsonl",
    ):
        assert ignore.ignores(path), f"{path} would be sent to the Docker daemon"


# ---------------------------------------------------------------------------- the build stage, for real


def test_the_wheel_built_from_the_build_stage_sources_contains_the_kernel(tmp_path: Path) -> None:
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine: the kernel cannot be built here (the image installs gcc)")
    import setuptools

    assert int(setuptools.__version__.split(".")[0]) >= 77, (
        "pyproject.toml needs setuptools>=77: pip install -e '.[dev]'"
    )
    build = _build_stage()
    workdir, project = _pip_wheel_target(build)
    image = tmp_path / "image"
    for path, source in stage_tree(build, ROOT, _ignore()).items():
        target = image / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, target)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q"),
            *("--wheel-dir", str(wheels), str(image / workdir.lstrip("/") / project)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = wheels.glob("corpusbot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    kernels = [n for n in names if re.fullmatch(r"corpusbot/index/engine/_bm25_kernel\..*\.so", n)]
    assert kernels, f"{wheel.name} has no compiled kernel: the image would score with numpy"
    assert "corpusbot/index/corpus/sample/" in " ".join(names), "the bundled sample corpus is in the wheel"
