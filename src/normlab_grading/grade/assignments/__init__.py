"""The course's assignments, one package per assignment, discovered (no list to keep).

Each subpackage (a valid identifier, e.g. ``ch02_zscore``; course order is the order of the
package names) is one assignment and holds everything about it:

- ``__init__.py``: ``NAME = "<name>"``, the assignment's name as a string literal
  (``solutions/<name>/<name>.ipynb``; ``course._code_digest`` reads it without importing),
  and the docstring saying what the student writes;
- ``checks.py``: its cases, references, checks with their recognised mistakes, test cells
  with points and the "mistake -> score" table (importing it registers them);
- ``answers.py``: models of answers: what a student with one recognised mistake computes
  (and the right answer where normlab has no reference for the graded function);
- ``notebook.py``: the notebook source, in percent format (``tools/authoring.py`` builds
  ``solutions/<NAME>/<NAME>.ipynb`` from it);
- ``submissions.py``: the student code of each recognised mistake and of submissions that
  call the reference or a library routine, as edits of the solution (used by the tests).

The calling protocols stay on the student side (``normlab_grading.check.protocols``): they
run in the student's kernel and the grader's sandbox, where nothing of this package may be.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path
from types import ModuleType

__all__ = ["packages", "load", "folder", "submissions", "declared_name"]


def declared_name(init_file: Path) -> str | None:
    """The ``NAME`` an assignment package's ``__init__.py`` assigns as a string literal at
    its top level (``NAME = "02-zscore"``, with or without a type annotation or comment),
    read from the source without importing it; None if there is no such assignment. The
    grade cache key finds an assignment's folder through it."""
    import ast

    try:
        tree = ast.parse(Path(init_file).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            else node.target if isinstance(node, ast.AnnAssign) else None
        if (isinstance(target, ast.Name) and target.id == "NAME"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


@lru_cache(maxsize=1)
def packages() -> dict[str, str]:
    """Assignment name -> dotted name of its package, in course order."""
    found: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        dotted = f"{__name__}.{info.name}"
        module = importlib.import_module(dotted)
        name = getattr(module, "NAME", None)
        if not isinstance(name, str) or not name or declared_name(module.__file__) != name:
            raise ValueError(f"assignment package {dotted} declares no NAME: expected a line "
                             f"NAME = \"<assignment name>\" (a non-empty string literal) at the "
                             f"top level of its __init__.py")
        if name in found:
            raise ValueError(f"assignment {name!r} is declared by {found[name]} and {dotted}")
        found[name] = dotted
    return found


def _package(name: str) -> str:
    try:
        return packages()[name]
    except KeyError:
        raise KeyError(f"unknown assignment {name!r}; known: {', '.join(packages())}") from None


def load() -> None:
    """Import every assignment's ``checks`` module (which registers its checks and cells)."""
    for dotted in packages().values():
        importlib.import_module(f"{dotted}.checks")


def folder(name: str) -> Path:
    """The folder of assignment ``name`` (its notebook source is ``folder / "notebook.py"``)."""
    return Path(importlib.import_module(_package(name)).__file__).resolve().parent


def submissions(name: str) -> ModuleType:
    """The ``submissions`` module of assignment ``name`` (``VARIANTS``, ``CHEATS``)."""
    return importlib.import_module(f"{_package(name)}.submissions")
