"""``make exercises``: regenerate exercises/ (the student release) from solutions/.

Runs ``nbgrader generate_assignment`` for every assignment in a temporary course directory
(a copy of solutions/ and of the repository's nbgrader_config.py, with its own gradebook),
then replaces exercises/ with the result in one step, so an interrupted or failed run
leaves the old exercises/ untouched and nothing half-written. The output is deterministic
(nbgrader's release of the same source is byte-identical), which lets a test compare a
fresh generation with the committed exercises/.

Usage, from the repository root::

    python -m normlab.grading.release            # rewrite exercises/
    python -m normlab.grading.release --check    # exit 1 if exercises/ is out of date
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["generate", "differences", "main"]

ROOT = Path(__file__).resolve().parents[3]


def assignments(solutions: Path) -> list[str]:
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))


def generate(root: Path, workdir: Path) -> Path:
    """Generate the release of every assignment under ``root/solutions`` in ``workdir``;
    return the generated release directory (``workdir/exercises``)."""
    shutil.copy(root / "nbgrader_config.py", workdir / "nbgrader_config.py")
    shutil.copytree(root / "solutions", workdir / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    env = dict(os.environ)
    for name in assignments(workdir / "solutions"):
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force",
             "--log-level=WARN"],
            cwd=workdir, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"nbgrader generate_assignment {name} failed:\n{proc.stdout}\n{proc.stderr}")
    return workdir / "exercises"


def _files(directory: Path) -> set[str]:
    if not directory.exists():
        return set()
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def differences(generated: Path, committed: Path) -> list[str]:
    """Paths (relative) that are missing, extra or different in ``committed``."""
    new, old = _files(generated), _files(committed)
    diffs = [f"missing: {p}" for p in sorted(new - old)]
    diffs += [f"extra: {p}" for p in sorted(old - new)]
    diffs += [f"differs: {p}" for p in sorted(new & old)
              if not filecmp.cmp(generated / p, committed / p, shallow=False)]
    return diffs


def _replace(generated: Path, target: Path) -> None:
    staging = target.with_name(f".{target.name}.new")
    backup = target.with_name(f".{target.name}.old")
    for p in (staging, backup):
        if p.exists():
            shutil.rmtree(p)
    shutil.copytree(generated, staging)
    if target.exists():
        os.replace(target, backup)
    os.replace(staging, target)
    if backup.exists():
        shutil.rmtree(backup)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate exercises/ from solutions/.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if exercises/ differs from a fresh release")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course repository")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="normlab-release-") as tmp:
        generated = generate(root, Path(tmp))
        diffs = differences(generated, root / "exercises")
        if args.check:
            if diffs:
                print("exercises/ is out of date (run `make exercises`):\n  " + "\n  ".join(diffs))
                return 1
            print("exercises/ is up to date")
            return 0
        if diffs:
            _replace(generated, root / "exercises")
            print("exercises/ regenerated:\n  " + "\n  ".join(diffs))
        else:
            print("exercises/ is already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
