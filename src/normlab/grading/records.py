"""Records: what a check saw in the student's kernel, saved for judging elsewhere.

When the environment variable ``NORMLAB_GRADING_RECORD`` names a directory, ``check`` does
not judge: it saves one ``.npz`` file per check run and returns. A trusted process then
judges the file with ``judge_record(path)``, rebuilding the case from (check id, seed,
hidden) with ``cases.make_case`` and computing the reference itself, so nothing the student's
kernel computed is trusted except the outputs.

File format (``np.savez``, no pickle; ``np.load(path)`` works with the default
``allow_pickle=False``):

- ``meta``: a 0-d unicode array holding JSON: ``format`` (1), ``check_id``, ``seed``,
  ``hidden``, ``tripwire`` (the forbidden routine called, or null), ``error``
  (``[type, message]`` or null), ``problems`` (output key -> text, for outputs that were
  not numeric arrays), ``warnings`` (list of strings).
- ``out__<key>``: each numeric output array.

File name: ``<check_id>.<visible|hidden>.npz``.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from .cases import make_case
from .judge import Problem, Verdict, judge

__all__ = ["RECORD_ENV", "record_dir", "record_path", "save_record", "load_record", "judge_record"]

RECORD_ENV = "NORMLAB_GRADING_RECORD"
FORMAT = 1


def record_dir() -> str | None:
    """The record directory from ``$NORMLAB_GRADING_RECORD``, or None (judge in place)."""
    d = os.environ.get(RECORD_ENV, "").strip()
    return d or None


def record_path(directory: str, check_id: str, hidden: bool) -> str:
    return os.path.join(directory, f"{check_id}.{'hidden' if hidden else 'visible'}.npz")


def save_record(directory: str, check_id: str, seed: int, hidden: bool, outputs: Mapping,
                tripwire: str | None = None, error: tuple[str, str] | None = None,
                warnings: list[str] | None = None) -> str:
    """Write one record (``outputs`` normalized, see ``judge.normalize_outputs``); return
    its path. The file is written under a temporary name and renamed, so a reader never
    sees half a record."""
    os.makedirs(directory, exist_ok=True)
    arrays = {}
    problems = {}
    for key, value in outputs.items():
        if isinstance(value, Problem):
            problems[key] = value.text
        else:
            arrays[f"out__{key}"] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "check_id": check_id,
        "seed": int(seed),
        "hidden": bool(hidden),
        "tripwire": tripwire,
        "error": list(error) if error else None,
        "problems": problems,
        "keys": list(outputs.keys()),
        "warnings": list(warnings or []),
    }
    path = record_path(directory, check_id, hidden)
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    os.replace(tmp, path)
    return path


def load_record(path: str) -> tuple[dict, dict]:
    """``(meta, outputs)`` of a record; outputs hold arrays and ``Problem``s."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown record format {meta.get('format')!r}")
        outputs = {}
        for key in meta["keys"]:
            if key in meta["problems"]:
                outputs[key] = Problem(meta["problems"][key])
            else:
                outputs[key] = np.array(data[f"out__{key}"])
    return meta, outputs


def judge_record(path: str) -> Verdict:
    """Judge a record: the same verdict ``check`` would have reached in the kernel."""
    meta, outputs = load_record(path)
    case = make_case(meta["check_id"], meta["seed"], meta["hidden"])
    error = tuple(meta["error"]) if meta["error"] else None
    return judge(meta["check_id"], case, outputs, hidden=meta["hidden"],
                 tripwire=meta["tripwire"], error=error)
