"""``make exercises``: regenerate exercises/ (the student release) from solutions/.

Runs ``nbgrader generate_assignment`` for every assignment in a temporary course directory
(a copy of solutions/ and of the repository's nbgrader_config.py, with its own gradebook),
then replaces each assignment's folder of exercises/ with the result in one step (copied
next to it, then renamed), so an interrupted or failed run leaves nothing half-written. The output is deterministic
(nbgrader's release of the same source is byte-identical), which lets a test compare a
fresh generation with the committed exercises/.

Usage, from the repository root::

    python tools/release.py            # rewrite exercises/
    python tools/release.py --check    # exit 1 if exercises/ is out of date
    python tools/release.py 02-zscore  # only that assignment's folder
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

ROOT = Path(__file__).resolve().parents[1]


def assignments(solutions: Path) -> list[str]:
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))


def generate(root: Path, workdir: Path, names: list[str] | None = None) -> Path:
    """Generate the release of the assignments ``names`` (default: every one under
    ``root/solutions``) in ``workdir``; return the release directory (``workdir/exercises``).
    ``workdir`` is then an nbgrader course with those assignments in its gradebook."""
    names = names or assignments(root / "solutions")
    shutil.copy(root / "nbgrader_config.py", workdir / "nbgrader_config.py")
    for name in names:
        shutil.copytree(root / "solutions" / name, workdir / "solutions" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    # one nbgrader process for every assignment (its start-up is most of the time)
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "--assignment=*", "--force",
         "--log-level=WARN"],
        cwd=workdir, env=dict(os.environ), capture_output=True, text=True,
    )
    generated = workdir / "exercises"
    missing = [a for a in names if not (generated / a).is_dir()]
    if proc.returncode != 0 or missing:
        raise RuntimeError(f"nbgrader generate_assignment failed (missing: {missing}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return generated


def _files(directory: Path) -> set[str]:
    if not directory.exists():
        return set()
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def differences(generated: Path, committed: Path, names: list[str] | None = None) -> list[str]:
    """Paths (relative) missing, extra or different in ``committed``; only under the
    assignment folders ``names`` if given."""
    new, old = _files(generated), _files(committed)
    if names is not None:
        keep = tuple(f"{n}{os.sep}" for n in names)
        new = {p for p in new if p.startswith(keep)}
        old = {p for p in old if p.startswith(keep)}
    diffs = [f"missing: {p}" for p in sorted(new - old)]
    diffs += [f"extra: {p}" for p in sorted(old - new)]
    diffs += [f"differs: {p}" for p in sorted(new & old)
              if not filecmp.cmp(generated / p, committed / p, shallow=False)]
    return diffs


def _replace(generated: Path, target: Path) -> None:
    """Replace directory ``target`` by a copy of ``generated`` (staged, then renamed)."""
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
    parser.add_argument("names", nargs="*",
                        help="assignments to regenerate (default: all, and stale folders "
                             "of exercises/ are removed)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if exercises/ differs from a fresh release")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course repository")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    names = args.names or assignments(root / "solutions")
    unknown = [n for n in names if not (root / "solutions" / n).is_dir()]
    if unknown:
        parser.error(f"no such assignment in solutions/: {', '.join(unknown)}")
    target = root / "exercises"
    with tempfile.TemporaryDirectory(prefix="normlab-release-") as tmp:
        generated = generate(root, Path(tmp), names)
        diffs = differences(generated, target, None if not args.names else names)
        if args.check:
            if diffs:
                print("exercises/ is out of date (run `make exercises`):\n  " + "\n  ".join(diffs))
                return 1
            print("exercises/ is up to date")
            return 0
        if not diffs:
            print("exercises/ is already up to date")
            return 0
        target.mkdir(exist_ok=True)
        for name in names:  # each assignment folder is replaced in one step
            _replace(generated / name, target / name)
        if not args.names:  # a full release also drops folders of removed assignments
            for stale in sorted(set(os.listdir(target)) - set(names)):
                if not stale.startswith(".") and (target / stale).is_dir():
                    shutil.rmtree(target / stale)
        print("exercises/ regenerated:\n  " + "\n  ".join(diffs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
