"""Record mode: what a check saw in the student's kernel, saved for a trusted process to judge.

When the environment variable ``NORMLAB_GRADING_RECORD`` names a directory (the grader's
sandbox sets it), ``check`` does not judge: it saves one ``.npz`` file per check run and
returns. The grader judges the file with the case it computed itself, so nothing the
student's kernel computed is trusted except the outputs.

File format (no pickle; ``np.load(path)`` works with the default ``allow_pickle=False``):

- ``meta``: a 0-d unicode array holding JSON: ``format`` (2), ``check_id``, ``hidden``,
  ``tripwire`` (the forbidden routine called, or null; a courtesy, the grade never depends
  on it), ``error`` (``[type, message]`` or null), ``problems`` (output key -> text, for
  outputs that were not numeric arrays), ``keys``, ``warnings`` (list of strings).
- ``out__<key>``: each numeric output array.

File name: ``<check_id>.<visible|hidden>.npz``.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from .outputs import Problem

__all__ = ["RECORD_ENV", "FORMAT", "record_dir", "record_path", "save_record"]

RECORD_ENV = "NORMLAB_GRADING_RECORD"
FORMAT = 2


def record_dir() -> str | None:
    """The record directory from ``$NORMLAB_GRADING_RECORD``, or None (judge in place)."""
    d = os.environ.get(RECORD_ENV, "").strip()
    return d or None


def record_path(directory: str, check_id: str, hidden: bool) -> str:
    return os.path.join(directory, f"{check_id}.{'hidden' if hidden else 'visible'}.npz")


def save_record(directory: str, check_id: str, hidden: bool, outputs: Mapping,
                tripwire: str | None = None, error: tuple[str, str] | None = None,
                warnings: list[str] | None = None) -> str:
    """Write one record (``outputs`` normalized, see ``outputs.normalize_outputs``); return
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
