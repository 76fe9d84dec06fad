"""``make student-release``: the zip an instructor hands out to students.

The zip holds one folder, ``normlab-student-<version>/``, with

- ``exercises/``: the blank notebooks (nbgrader's release, as committed);
- ``normlab-<version>-py3-none-any.whl``: the reference package ``normlab`` and the
  **student side** of the grader (``normlab_grading/__init__.py`` and ``normlab_grading/check/``
  with its data: visible cases, expected outputs, outputs of recognised mistakes). Not the
  trusted side ``normlab_grading/grade`` (references, mistake models, hidden cases, the
  grader), not the book's figure code ``normlab_book``;
- ``requirements.txt``: every distribution the students need (the wheel's dependencies,
  JupyterLab, nbgrader for ``nbgrader validate``, ipykernel) and their dependencies, pinned
  to the versions of requirements/constraints.txt;
- ``README.md``: how to install, open the notebooks and run the visible tests.

Nothing of solutions/ is in it. The build is offline: the packages are staged into a
temporary directory with a minimal pyproject.toml of their own and built by
``pip wheel --no-deps --no-build-isolation --no-index`` with this environment's setuptools.
Before the zip is written, its members are checked (no trusted side, no book code, no
hidden-test or solution markers); the zip is written next to its destination and renamed
into place, so an interrupted run leaves no half-written file.

Usage, from the repository root::

    python tools/student_release.py                  # writes dist/normlab-student-<version>.zip
    python tools/student_release.py --out some/dir   # elsewhere
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# What a student runs besides the wheel's own dependencies: notebooks in JupyterLab, a
# Python kernel, and `nbgrader validate` before handing in.
STUDENT_TOOLS = ("jupyterlab", "ipykernel", "nbgrader")

# Package paths (relative to src/) that go into the wheel; everything else under src/ stays.
SHIPPED = ("normlab", "normlab_grading/__init__.py", "normlab_grading/check")

# Member paths that must never be in a student release, and the nbgrader markers that must
# not be in its notebooks (hidden tests, solutions). The markers are looked for in notebooks
# only: the student side's docstrings show what a test cell looks like, markers included.
FORBIDDEN_PATHS = re.compile(r"(^|/)(solutions/|normlab_grading/grade/|normlab_book/)")
FORBIDDEN_TEXTS = (b"BEGIN HIDDEN TESTS", b"END HIDDEN TESTS", b"BEGIN SOLUTION", b"END SOLUTION")

# Fixed time stamp of the zip's members (1980-01-01, the earliest a zip can hold): the same
# inputs give a byte-identical zip.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _project(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def _constraints(root: Path) -> dict[str, str]:
    """{canonical name: version} from requirements/constraints.txt."""
    pins = {}
    for line in (root / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier  # constraints.txt pins every line with one ==
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def dependency_closure(top_level: list[str]) -> list[str]:
    """Canonical names of ``top_level`` and of everything they require (on this platform and
    Python, without extras), read from the installed distributions' metadata."""
    env = default_environment()
    seen: dict[str, None] = {}
    todo = [Requirement(r) for r in top_level]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen[name] = None
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"student release: {req.name} (needed by the students' environment) "
                             f"is not installed here; run `make venv` first") from None
        todo.extend(Requirement(r) for r in requires)
    return sorted(seen)


def requirements_text(root: Path) -> tuple[str, int]:
    """requirements.txt for the students, and how many distributions it pins."""
    project = _project(root)["project"]
    top = list(project["dependencies"]) + list(STUDENT_TOOLS)
    pins = _constraints(root)
    lines = []
    for name in dependency_closure(top):
        # not in constraints.txt (pip and setuptools are left out of it): the installed version
        version = pins.get(name) or importlib.metadata.version(name)
        lines.append(f"{name}=={version.split('+')[0]}")
    header = (
        "# Everything the course's notebooks need, pinned (from the course's constraints.txt).\n"
        f"# Asked for: {', '.join(top)}; the rest are their dependencies.\n"
        "# torch from PyPI on Linux brings CUDA libraries (several GB); the CPU build is enough:\n"
        "#   pip install -r requirements.txt --extra-index-url https://download.pytorch.org/whl/cpu\n"
    )
    return header + "\n".join(lines) + "\n", len(lines)


def _stage(root: Path, stage: Path) -> None:
    """Copy the shipped packages and a minimal pyproject.toml into ``stage``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for rel in SHIPPED:
        src, dst = root / "src" / rel, stage / "src" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copy2(src, dst)
    full = _project(root)
    project = full["project"]
    package_data = full["tool"]["setuptools"]["package-data"]
    deps = ", ".join(f'"{d}"' for d in project["dependencies"])
    data = "\n".join(f'{pkg} = [{", ".join(repr(p) for p in pats)}]'.replace("'", '"')
                     for pkg, pats in package_data.items())
    (stage / "pyproject.toml").write_text(f"""\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "{project['name']}"
version = "{project['version']}"
description = "Reference implementations and the notebooks' checks of a course on normalization in deep learning (student release)"
requires-python = "{project['requires-python']}"
license = "{project['license']}"
dependencies = [{deps}]

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{data}
""")


def build_wheel(root: Path, workdir: Path) -> Path:
    """Build the student wheel in ``workdir``, offline; return its path."""
    stage = workdir / "stage"
    _stage(root, stage)
    out = workdir / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--wheel-dir", str(out), str(stage)],
        capture_output=True, text=True,
        # SOURCE_DATE_EPOCH: the wheel's members get the zip's fixed time, not the build time
        env={**os.environ, "PIP_NO_INPUT": "1", "SOURCE_DATE_EPOCH": "315532800"},
    )
    wheels = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise SystemExit(f"student release: building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    return wheels[0]


def forbidden_members(members: dict[str, bytes]) -> list[str]:
    """Members (name -> content) that must not be handed out, with the reason."""
    bad = [f"{name}: trusted or instructor path" for name in members if FORBIDDEN_PATHS.search(name)]
    for name, content in members.items():
        if name.endswith(".ipynb"):
            bad += [f"{name}: contains {t.decode()!r}" for t in FORBIDDEN_TEXTS
                    if t in content]
    return bad


def _read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}


def readme_text(version: str, wheel_name: str, assignments: list[str]) -> str:
    listing = "\n".join(f"- `exercises/{a}/{a}.ipynb`" for a in assignments)
    return f"""\
# Normalization in deep learning: the graded notebooks (student release {version})

This folder holds the course's exercise notebooks and the `normlab` package their test cells
import (`from normlab_grading import check`). You need Python 3.11.

## Install

From this folder, in a new virtual environment (虚拟环境):

```
python3.11 -m venv .venv
source .venv/bin/activate          # Windows: .venv\\Scripts\\activate
pip install -r requirements.txt {wheel_name}
```

On Linux, `pip install` brings PyTorch with its CUDA libraries (several GB); the CPU build
is all the notebooks need:
`pip install -r requirements.txt {wheel_name} --extra-index-url https://download.pytorch.org/whl/cpu`.

## Work on a notebook

```
jupyter lab exercises
```

The notebooks:

{listing}

Write your code in the cells that say `# YOUR CODE HERE` (remove the
`raise NotImplementedError()`), then run the test cells below them. A test cell runs the
**visible tests** (可见测试): it prints `ok: ...` when your function passes, and otherwise
stops with a message naming what is wrong (often the misconception behind it). Passing
the visible tests does not guarantee full marks: when graded, each test cell also runs
hidden tests (隐藏测试) on other inputs.

## Before handing in

Restart the kernel and run all cells (Kernel > Restart Kernel and Run All Cells), save,
then check the notebook as the grader will read it:

```
nbgrader validate exercises/02-zscore/02-zscore.ipynb
```

It reports the test cells that fail and any cell you edited that you should not have.
Hand in the `.ipynb` file as your instructor asks.
"""


def build(root: Path, out_dir: Path) -> tuple[Path, dict]:
    """Write the student release zip into ``out_dir``; return its path and figures about it."""
    version = _project(root)["project"]["version"]
    top = f"normlab-student-{version}"
    exercises = root / "exercises"
    assignments = sorted(p.name for p in exercises.iterdir()
                         if p.is_dir() and any(p.glob("*.ipynb")))
    with tempfile.TemporaryDirectory(prefix="student-release-") as tmp:
        wheel = build_wheel(root, Path(tmp))
        wheel_bytes = wheel.read_bytes()
        requirements, n_pinned = requirements_text(root)
        members: dict[str, bytes] = {
            f"{top}/README.md": readme_text(version, wheel.name, assignments).encode(),
            f"{top}/requirements.txt": requirements.encode(),
            f"{top}/{wheel.name}": wheel_bytes,
        }
        for a in assignments:
            for path in sorted((exercises / a).rglob("*")):
                rel = path.relative_to(exercises)
                if path.is_file() and not any(part in {".ipynb_checkpoints", "__pycache__"}
                                              for part in rel.parts):
                    members[f"{top}/exercises/{rel.as_posix()}"] = path.read_bytes()
    wheel_members = _read_zip(wheel_bytes)
    bad = forbidden_members(members) + [f"{wheel.name}/{m}" for m in forbidden_members(wheel_members)]
    if bad:
        raise SystemExit("student release: refusing to write a release containing:\n  "
                         + "\n  ".join(bad))

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{top}.zip"
    fd, partial = tempfile.mkstemp(prefix=f".{top}.", suffix=".zip.part", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, members[name])
        os.chmod(partial, 0o644)  # mkstemp made it private; the release is handed out
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    figures = {
        "zip_bytes": target.stat().st_size,
        "wheel": wheel.name,
        "wheel_bytes": len(wheel_bytes),
        "wheel_unpacked_bytes": sum(len(v) for v in wheel_members.values()),
        "pinned_distributions": n_pinned,
        "assignments": assignments,
    }
    return target, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist",
                        help="directory to write the zip into (default: dist/)")
    args = parser.parse_args(argv)
    target, fig = build(ROOT, args.out)
    print(f"wrote {target} ({fig['zip_bytes'] / 1e3:.0f} kB): {len(fig['assignments'])} notebooks, "
          f"{fig['wheel']} ({fig['wheel_unpacked_bytes'] / 1e3:.0f} kB unpacked), "
          f"requirements.txt pinning {fig['pinned_distributions']} distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
