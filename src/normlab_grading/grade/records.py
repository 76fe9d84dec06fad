"""Records on the trusted side: reading and judging what ``check`` saved in record mode.

The student side writes them (``normlab_grading.check.records``: format, file names); a
trusted process judges them with ``judge_record``, rebuilding the case from the check id and
the grader's own seed and computing the reference itself.
"""

from __future__ import annotations

import json

import numpy as np

from normlab_grading.check.records import FORMAT, RECORD_ENV, record_dir, record_path, save_record  # noqa: F401

from .cases import hidden_seed, VISIBLE_SEED, make_case
from .judge import Problem, Verdict, judge

__all__ = ["RECORD_ENV", "record_dir", "record_path", "save_record", "load_record", "judge_record"]


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


def judge_record(path: str, seed: int | None = None) -> Verdict:
    """Judge a record: the same verdict ``check`` would have reached in the kernel, with the
    hidden case made from ``seed`` (default: the grader's ``hidden_seed()``)."""
    meta, outputs = load_record(path)
    hidden = bool(meta["hidden"])
    case = make_case(meta["check_id"], (hidden_seed() if seed is None else seed) if hidden else VISIBLE_SEED, hidden)
    error = tuple(meta["error"]) if meta["error"] else None
    return judge(meta["check_id"], case, outputs, hidden=hidden, tripwire=meta["tripwire"], error=error)
