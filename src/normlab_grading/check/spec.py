"""What the student side knows of a check: how to call the student's code, how to name its
outputs and mistakes, how close is close enough. No reference, no mistake model.

The specs are data (``data/checks.json``), written by the trusted side from its registry
(``tools/student_data.py``). A spec names its calling protocol and its description
of a case by ``module:qualname`` inside ``normlab_grading.check.protocols`` (with keyword
arguments for a ``functools.partial``); nothing outside that package can be named.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["MistakeSpec", "CheckSpec", "get_spec", "all_specs", "resolve", "SPECS_PATH"]

SPECS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checks.json")
PROTOCOLS = "normlab_grading.check.protocols."


@dataclass(frozen=True)
class MistakeSpec:
    """A recognised mistake: its id and message; either its outputs on the visible case are
    in the data (``has_outputs``) or ``matches`` is a predicate ``(case, key, value,
    expected) -> bool`` over ``keys``."""

    id: str
    message: str
    has_outputs: bool = False
    matches: Callable | None = None
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckSpec:
    id: str
    function: str
    call: Callable[[Any, Mapping], dict]
    describe: Callable[[Mapping], str]
    labels: Mapping[str, str] = field(default_factory=dict)
    mistakes: tuple[MistakeSpec, ...] = ()
    tol: float = 1e-6
    floor: float = 1e-8
    allowed: tuple[str, ...] = ()
    assignment: str = ""

    def label(self, key: str) -> str:
        return self.labels.get(key, key)


def resolve(ref: Mapping) -> Callable:
    """The protocol function a spec names: ``{"name": "module:qualname", "kwargs": {...}}``."""
    module, _, qualname = ref["name"].partition(":")
    if not module.startswith(PROTOCOLS) or not qualname or "<" in qualname:
        raise ValueError(f"a check spec may only name a protocol in {PROTOCOLS}*, not {ref['name']!r}")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (ref.get("kwargs") or {}).items()}
    return functools.partial(obj, **kwargs) if kwargs else obj


def _spec(raw: Mapping) -> CheckSpec:
    return CheckSpec(
        id=raw["id"], function=raw["function"], call=resolve(raw["call"]),
        describe=resolve(raw["describe"]), labels=dict(raw.get("labels", {})),
        mistakes=tuple(MistakeSpec(m["id"], m["message"], bool(m.get("has_outputs")),
                                   resolve(m["matches"]) if m.get("matches") else None,
                                   tuple(m.get("keys", ()))) for m in raw.get("mistakes", [])),
        tol=float(raw["tol"]), floor=float(raw["floor"]), allowed=tuple(raw.get("allowed", ())),
        assignment=raw.get("assignment", ""),
    )


@functools.lru_cache(maxsize=1)
def _load() -> dict:
    try:
        with open(SPECS_PATH, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise RuntimeError(f"the checker's data is missing ({SPECS_PATH}); reinstall the "
                           "course package or run `make exercises`") from None
    return {c["id"]: c for c in raw["checks"]}


@functools.lru_cache(maxsize=None)
def get_spec(check_id: str) -> CheckSpec:
    table = _load()
    if check_id not in table:
        raise KeyError(f"unknown check {check_id!r}; known checks: {', '.join(sorted(table))}")
    return _spec(table[check_id])


def all_specs() -> dict[str, CheckSpec]:
    return {cid: get_spec(cid) for cid in _load()}
