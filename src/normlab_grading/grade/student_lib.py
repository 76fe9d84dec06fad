"""What the grader's sandbox may import of the course: ``build_student_lib(dest)``.

- ``normlab_grading/``: the student side, copied as it is (``normlab_grading/__init__.py`` and
  ``check/``: protocols, specs, visible data; no reference, no mistake model, no hidden
  case, no seed);
- ``normlab/``: ``normlab.data`` as it is, and a stub for every other normlab module in which
  every name raises RuntimeError when called (defined up front, so that a student's call
  names the routine). The trusted grader (``normlab_grading.grade``) is not there at all.

The hidden cases arrive separately, as files (``sandbox.SandboxFiles.cases``).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

__all__ = ["build_student_lib"]

_STUB_INIT = '''"""normlab as the student's kernel sees it while grading: no reference code."""
__version__ = {version!r}


def _unavailable(qualname):
    message = (qualname + " is the course's reference implementation; it is not available "
               "while grading (compute the result yourself, numpy is fine)")

    def stub(*args, **kwargs):
        raise RuntimeError(message)

    short = qualname.rsplit(".", 1)[-1]
    stub.__code__ = stub.__code__.replace(co_name=short, co_qualname=short)
    stub.__name__ = stub.__qualname__ = short
    stub.__module__ = __name__
    return stub


def __getattr__(name):
    if name.startswith("__") or name == "data":  # the real submodule: import it
        raise AttributeError(name)
    value = _unavailable(__name__ + "." + name)
    globals()[name] = value
    return value

{names}
'''


def _stub_source(path: Path, version: str, keep: tuple = ()) -> str:
    """A stub module for the normlab module in ``path``: every top-level name it defines or
    re-exports is a stub that raises. Found by reading the source, not by importing it."""
    names: set = set()
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in (tree.body if tree is not None else []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        elif isinstance(node, ast.ImportFrom) and node.level:  # from .x import y
            names.update(a.asname or a.name for a in node.names if a.name != "*")
    names = sorted(n for n in names if n.isidentifier() and not n.startswith("__")
                   and n not in keep)
    lines = "\n".join(f"{n} = _unavailable(__name__ + {('.' + n)!r})" for n in names)
    return _STUB_INIT.format(version=version, names=lines)


def build_student_lib(dest: Path) -> Path:
    """Write ``dest/normlab_grading`` and ``dest/normlab`` (see the module docstring)."""
    import normlab
    import normlab_grading

    src = Path(normlab.__file__).resolve().parent
    student_src = Path(normlab_grading.__file__).resolve().parent
    out = Path(dest) / "normlab"
    grading_out = Path(dest) / "normlab_grading"
    for d in (out, grading_out):
        if d.exists():
            shutil.rmtree(d)
    out.mkdir(parents=True)
    grading_out.mkdir()
    shutil.copy2(student_src / "__init__.py", grading_out / "__init__.py")
    shutil.copytree(student_src / "check", grading_out / "check",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (out / "__init__.py").write_text(_stub_source(src / "__init__.py", normlab.__version__,
                                                  keep=("data",)))
    for entry in sorted(src.iterdir()):
        name = entry.name
        if name in ("__init__.py", "__pycache__", "grading") or name.startswith("."):
            continue
        if name == "data.py":
            shutil.copy2(entry, out / name)
        elif entry.suffix == ".py":
            (out / name).write_text(_stub_source(entry, normlab.__version__))
        elif entry.is_dir() and (entry / "__init__.py").exists():
            (out / name).mkdir()
            (out / name / "__init__.py").write_text(
                _stub_source(entry / "__init__.py", normlab.__version__))
    return Path(dest)
