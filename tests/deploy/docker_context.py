"""Read deploy/Dockerfile and /.dockerignore as Docker does, without Docker.

No Docker engine runs where the tests run, so the image cannot be built here. What can be checked is what the
build would see: the stages, the files each COPY puts where, and which files of the context .dockerignore
drops (the same pattern rules as Docker's, github.com/moby/patternmatcher), and then the build stage's source
tree can be laid out in a folder and the wheel built from it.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest of the logical line, continuations joined
    line: int  # 1-based line where it starts


@dataclass
class Stage:
    base: str  # the image, ARG defaults substituted
    name: str | None
    index: int
    instructions: list[Instruction] = field(default_factory=list)

    def runs(self) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == "RUN"]

    def copies(self) -> list[Copy]:
        return [parse_copy(i.args) for i in self.instructions if i.keyword in ("COPY", "ADD")]


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, instruction text): comments dropped, backslash continuations joined, as Docker reads them."""
    start, parts = 0, []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and stripped.startswith("#"):  # a comment inside a continued instruction is dropped
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        yield start, " ".join(p for p in parts if p)
        parts = []
    if parts:
        yield start, " ".join(p for p in parts if p)


def parse_dockerfile(text: str) -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:  # a global ARG: its default can be used in FROM
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
            continue
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--platform")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name, index=len(stages)))
            continue
        assert stages, f"line {number}: {keyword} before any FROM"
        stages[-1].instructions.append(Instruction(keyword, rest, number))
    return stages


def parse_copy(args: str) -> Copy:
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return Copy(tuple(paths[:-1]), paths[-1], from_stage)


# -------------------------------------------------------------------------------------------- .dockerignore


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool  # a "!pattern": matching files are put back


def _compile(pattern: str) -> re.Pattern[str]:
    """Docker's translation of a pattern into a regular expression (patternmatcher.Pattern.compile)."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
                if i + 1 < len(pattern) and pattern[i + 1] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                out += pattern[i : end + 1]
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


@dataclass(frozen=True)
class DockerIgnore:
    patterns: tuple[Pattern, ...]

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        patterns = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            line = line[1:].strip() if exclusion else line
            cleaned = posixpath.normpath(line).lstrip("/")
            if cleaned in ("", "."):
                continue
            patterns.append(Pattern(cleaned, _compile(cleaned), exclusion))
        return cls(tuple(patterns))

    def ignores(self, path: str) -> bool:
        """Whether the file or folder at ``path`` (relative to the context, with /) is left out of the context.

        As Docker: the last pattern matching the path or one of its parent folders decides.
        """
        parts = path.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        ignored = False
        for pattern in self.patterns:
            if any(pattern.regex.match(candidate) for candidate in candidates):
                ignored = not pattern.exclusion
        return ignored


# ------------------------------------------------------------------------------- the build stage's source tree


def context_files(root: Path, top: str, ignore: DockerIgnore) -> list[str]:
    """The files under ``root/top`` (or that file) that reach the build context, as paths relative to ``root``."""
    start = root / top
    if start.is_file():
        return [top] if not ignore.ignores(top) else []
    found = []
    for path in sorted(start.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not ignore.ignores(relative):
            found.append(relative)
    return found


def copied_files(copy: Copy, root: Path, ignore: DockerIgnore, workdir: str) -> dict[str, str]:
    """{path in the image: path in the context} for one COPY from the context, with Docker's rules.

    A folder source copies its contents into the destination; a file goes into the destination folder when the
    destination ends with / (or several sources are given), else it becomes the destination.
    """
    dest = copy.dest if copy.dest.startswith("/") else posixpath.join(workdir, copy.dest)
    into_folder = copy.dest.endswith("/") or copy.dest in (".", "./") or len(copy.sources) > 1
    placed: dict[str, str] = {}
    for source in copy.sources:
        source = posixpath.normpath(source)
        matches = [source] if (root / source).exists() else fnmatch.filter(_top_level(root), source)
        for match in matches:
            if (root / match).is_dir():
                for file in context_files(root, match, ignore):
                    placed[posixpath.normpath(posixpath.join(dest, posixpath.relpath(file, match)))] = file
            elif not ignore.ignores(match):
                target = posixpath.join(dest, posixpath.basename(match)) if into_folder else dest
                placed[posixpath.normpath(target)] = match
    return placed


def _top_level(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def stage_tree(stage: Stage, root: Path, ignore: DockerIgnore) -> dict[str, str]:
    """Every file the stage copies from the build context: {path in the image: path in the context}."""
    workdir, placed = "/", {}
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.args.strip())
        elif instruction.keyword in ("COPY", "ADD"):
            copy = parse_copy(instruction.args)
            if copy.from_stage is None:
                placed.update(copied_files(copy, root, ignore, workdir))
    return placed


def workdir_of(stage: Stage, marker: str) -> str:
    """The WORKDIR in effect at the first RUN containing ``marker``."""
    workdir = "/"
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.args.strip())
        elif instruction.keyword == "RUN" and marker in instruction.args:
            return workdir
    raise LookupError(f"no RUN with {marker!r} in stage {stage.name or stage.index}")


def tracked_files(root: Path, *tops: str) -> list[str]:
    """Files git tracks under ``tops`` (what a fresh clone has); without git, the files on disk minus build output."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", *tops], capture_output=True, check=True, timeout=60
        ).stdout
        return sorted(p for p in out.decode().split("\0") if p)
    except (OSError, subprocess.SubprocessError):
        artifacts = re.compile(r"(^|/)(__pycache__|build|[^/]*\.egg-info)(/|$)|\.(so|pyc|pyd)$")
        files = []
        for top in tops:
            start = root / top
            paths = [start] if start.is_file() else start.rglob("*")
            files += [
                p.relative_to(root).as_posix()
                for p in paths
                if p.is_file() and not artifacts.search(p.relative_to(root).as_posix())
            ]
        return sorted(files)
