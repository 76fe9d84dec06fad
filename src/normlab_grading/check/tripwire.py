"""Detect a graded function that calls the reference or a library routine doing the job.

``with Tripwire() as tw: student(...)`` installs a ``sys.setprofile`` hook for the duration
of the call. The profiler sees every Python function call ("call" events, with the frame)
and every call of a C function from Python ("c_call" events, with the function object),
so both ``normlab.zscore(...)`` and ``torch.batch_norm(...)`` are seen, however they were
imported or renamed. Afterwards ``tw.hit`` names the first forbidden routine, or is None.

Forbidden while a graded function runs:

- the course's code: any module of the ``normlab`` package except ``normlab.data`` (the
  references), the trusted grader ``normlab_grading.grade`` (with its mistake models) and
  the book's figure code ``normlab_book``, recognised by module name and by source file (so
  a copied code object is still caught). The student-side checker
  (``normlab_grading.check``) is allowed: it holds no answers;
- torch's normalization: ``torch.nn.functional.{batch,layer,group,instance}_norm``, the
  ``torch.nn`` normalization modules, the C functions ``torch.batch_norm``,
  ``torch.native_batch_norm``, ... and ``torch.ops.aten.*norm*`` overloads;
- torch's weight and spectral normalization (``torch.nn.utils.weight_norm``,
  ``torch.nn.utils.spectral_norm``, ``torch.nn.utils.parametrizations``, the C function
  ``torch._weight_norm``) and its BN folding helpers (``torch.nn.utils.fusion``);
- scikit-learn's ``sklearn.preprocessing`` (scalers, ``scale``, ``minmax_scale``, ...);
- ``scipy.stats.zscore``, ``zmap`` and ``gzscore``.

numpy itself is allowed, and so is importing anything: code that runs while a module is
being imported (module and class bodies, and what they call) is not watched. Removing the hook from inside the graded function
(``sys.setprofile(None)``) counts as a hit. A check whose graded job is not normalization
itself (an experiment that trains a network with torch's BatchNorm1d) lists the routines it
permits in ``Check.allowed``; ``Tripwire(allowed=...)`` ignores calls of those (dotted-name
prefixes, e.g. ``"torch.nn.modules.batchnorm"``). The hook only watches the calling thread.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading

__all__ = ["Tripwire", "forbidden_python", "forbidden_c"]

_CO_OPTIMIZED = inspect.CO_OPTIMIZED  # set for functions, not for module or class bodies


def _package_dir(name: str) -> str:
    """The folder of the package ``name`` that this interpreter would import (found
    without importing it), or a path that matches no file."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return os.sep + "nonexistent-" + name
    return os.path.abspath(list(spec.submodule_search_locations)[0])


_NORMLAB_DIR = _package_dir("normlab")
_ALLOWED_NORMLAB = ("normlab.data",)
_ALLOWED_NORMLAB_DIRS = tuple(os.path.join(_NORMLAB_DIR, sub) for sub in ("data.py", "data" + os.sep))
# The other packages of the course whose code a graded function may not call: the trusted
# grader (references and mistake models; absent from the grader's jail) and the book's code.
_FORBIDDEN_PACKAGES = ("normlab_grading.grade", "normlab_book")
_FORBIDDEN_DIRS = tuple(
    os.path.join(_package_dir("normlab_grading"), "grade") + os.sep if name == "normlab_grading.grade"
    else _package_dir(name) + os.sep for name in _FORBIDDEN_PACKAGES)

# Python-level routines: module prefix -> function names (None: every function there).
_PY_MODULES = {
    "torch.nn.modules.batchnorm": None,
    "torch.nn.modules.normalization": None,
    "torch.nn.modules.instancenorm": None,
    "torch.nn.functional": {
        "batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm",
        "local_response_norm",
    },
    "torch.nn.utils.weight_norm": None,
    "torch.nn.utils.spectral_norm": None,
    "torch.nn.utils.parametrizations": None,
    "torch.nn.utils.fusion": None,
    "sklearn.preprocessing": None,
    "scipy.stats": {"zscore", "zmap", "gzscore"},
}
# C functions (torch's VariableFunctions and friends) by name.
_TORCH_C_NAMES = {
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_batch_norm_impl_index", "batch_norm_stats",
    "batch_norm_elemt", "batch_norm_gather_stats", "batch_norm_backward_elemt",
    "layer_norm", "native_layer_norm", "group_norm", "native_group_norm", "instance_norm",
    "rms_norm", "_fused_rms_norm", "_weight_norm", "_weight_norm_interface",
}


def _normlab_reference(module: str, filename: str) -> bool:
    if module == "normlab" or module.startswith("normlab."):
        return not (module in _ALLOWED_NORMLAB or module.startswith(tuple(m + "." for m in _ALLOWED_NORMLAB)))
    if module in _FORBIDDEN_PACKAGES or module.startswith(tuple(m + "." for m in _FORBIDDEN_PACKAGES)):
        return True
    if filename.startswith(_NORMLAB_DIR + os.sep):
        return not filename.startswith(_ALLOWED_NORMLAB_DIRS)
    return filename.startswith(_FORBIDDEN_DIRS)


def _module_of_file(filename: str) -> str:
    rel = os.path.relpath(filename, os.path.dirname(_NORMLAB_DIR))
    return os.path.splitext(rel)[0].replace(os.sep, ".")


def forbidden_python(module: str, function: str, filename: str = "") -> str | None:
    """The routine's dotted name if calling ``module.function`` is forbidden, else None.

    A module's own top-level code (``<module>``, run when it is first imported, e.g. by an
    ``import torch`` inside the graded function) is not a call of a routine."""
    if function == "<module>":
        return None
    if _normlab_reference(module, filename):
        named = ("normlab",) + _FORBIDDEN_PACKAGES
        if not (module in named or module.startswith(tuple(m + "." for m in named))):
            return f"{_module_of_file(filename)}.{function} (its code, copied)"
        return f"{module}.{function}"
    for prefix, names in _PY_MODULES.items():
        if module == prefix or module.startswith(prefix + "."):
            if names is None or function in names:
                return f"{module}.{function}"
    return None


def forbidden_c(func) -> str | None:
    """The dotted name of a forbidden C function object, else None."""
    name = getattr(func, "__name__", "") or ""
    module = getattr(func, "__module__", None) or ""
    if name in _TORCH_C_NAMES and (module.startswith("torch") or "torch" in repr(type(func))
                                   or "VariableFunctions" in (getattr(func, "__qualname__", "") or "")):
        return f"torch.{name}"
    if module:
        return forbidden_python(module, name)
    return None


def _what(routine: str) -> str:
    if routine.startswith("normlab"):
        return "the course's reference implementation"
    return "a library routine that does the graded job"


def _is_import(frame) -> bool:
    """True if ``frame`` runs the body of a module being imported (not exec'd code)."""
    module = sys.modules.get(frame.f_globals.get("__name__", ""))
    return (module is not None and getattr(module, "__dict__", None) is frame.f_globals
            and frame.f_code.co_filename == getattr(module, "__file__", None))


class Tripwire:
    """Context manager: ``hit`` is the first forbidden routine called inside, or None.

    ``message(function)`` explains the verdict to the student.
    """

    def __init__(self, allowed: tuple[str, ...] = ()):
        self.hit: str | None = None
        self.allowed = tuple(allowed)
        self._decided: dict = {}
        self._previous = None
        self._thread = None
        self._importing = 0  # depth of module bodies running (imports inside the call)
        self._import_frames: set = set()

    def _hook(self, frame, event, arg):
        if self.hit is not None:
            return
        if event == "call":
            code = frame.f_code
            if not code.co_flags & _CO_OPTIMIZED:  # a module or class body
                if code.co_name == "<module>" and _is_import(frame):
                    self._importing += 1
                    self._import_frames.add(id(frame))
                return
            if self._importing:  # calls made while a module is imported are not the job
                return
            verdict = self._decided.get(code)
            if verdict is None:
                module = frame.f_globals.get("__name__", "") or ""
                name = getattr(code, "co_qualname", code.co_name)
                verdict = self._unless_allowed(forbidden_python(module, name, code.co_filename))
                if not verdict and module == "torch._ops" and code.co_name == "__call__":
                    verdict = "?"  # decided per call below: which op is it?
                self._decided[code] = verdict
            if verdict == "?":
                op = frame.f_locals.get("self")
                opname = str(getattr(op, "_name", "") or getattr(op, "__name__", ""))
                base = opname.split("::")[-1].split(".")[0]
                verdict = self._unless_allowed(
                    f"torch.ops.aten.{base}" if base in _TORCH_C_NAMES else "")
            if verdict:
                self.hit = verdict
        elif event == "return":
            if self._importing and id(frame) in self._import_frames:
                self._import_frames.discard(id(frame))
                self._importing -= 1
        elif event == "c_call" and not self._importing:
            try:
                verdict = self._decided.get(arg)
            except TypeError:  # unhashable callable
                verdict = None
            if verdict is None:
                verdict = self._unless_allowed(forbidden_c(arg))
                try:
                    self._decided[arg] = verdict
                except TypeError:
                    pass
            if verdict:
                self.hit = verdict

    def _unless_allowed(self, verdict: str | None) -> str:
        """``verdict`` unless it is one of (or inside) the ``allowed`` dotted names."""
        if not verdict:
            return ""
        if any(verdict == a or verdict.startswith(a + ".") for a in self.allowed):
            return ""
        return verdict

    def __enter__(self) -> "Tripwire":
        self._previous = sys.getprofile()
        self._thread = threading.get_ident()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc) -> bool:
        current = sys.getprofile()
        sys.setprofile(self._previous)
        if self.hit is None and getattr(current, "__self__", None) is not self:
            self.hit = "sys.setprofile (the grading profiler was removed)"
        return False

    def message(self, function: str) -> str:
        if self.hit is None:
            return ""
        return tripwire_message(function, self.hit)


def tripwire_message(function: str, hit: str) -> str:
    """The student-facing sentence for a forbidden call (also used by the judge)."""
    if hit.startswith("sys.setprofile"):
        return (
            f"{function} removed the grading profiler (sys.setprofile), which the checker "
            "uses to verify that no reference code is called. This test scores 0."
        )
    return (
        f"{function} called {hit}, {_what(hit)}. A graded function must compute its result "
        "itself (numpy is fine), so this test scores 0."
    )
