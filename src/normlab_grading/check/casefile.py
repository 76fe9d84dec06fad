"""Cases as files: how normlab-grade ships a check's inputs into the sandbox.

The grader computes every case (``normlab_grading.grade.cases.make_case``) in the trusted process
and writes it with ``save_case``; the student side reads it back with ``load_case`` (the
visible data of ``normlab_grading.check.data``, the hidden cases shipped into the sandbox). The round trip is exact: numpy arrays keep
dtype, shape and bits; Python scalars, tuples, lists and dicts keep their types; numpy
scalars keep their dtype. No pickle (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

__all__ = ["case_path", "save_case", "load_case", "same_case"]


def case_path(root: str, check_id: str, hidden: bool) -> str:
    """Where a check's case lies in a folder of case files (no seed in the name: the
    sandbox gets each hidden case, never the seed that made it)."""
    return os.path.join(root, f"{check_id}.{'hidden' if hidden else 'visible'}.npz")


def _encode(value, arrays: dict):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be shipped")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, np.generic):
        return {"np": value.dtype.str, "v": value.item()}
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        if type(value) not in (bool, int, float, str, type(None)):
            raise TypeError(f"cannot ship a {type(value).__name__}")
        return {"py": value}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return {"list": [_encode(v, arrays) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[k, _encode(v, arrays)] for k, v in value.items()]}
    raise TypeError(f"cannot ship a {type(value).__name__}")


def _decode(node, data):
    if "array" in node:
        return np.array(data[node["array"]])
    if "np" in node:
        return np.dtype(node["np"]).type(node["v"])
    if "py" in node:
        return node["py"]
    if "tuple" in node:
        return tuple(_decode(v, data) for v in node["tuple"])
    if "list" in node:
        return [_decode(v, data) for v in node["list"]]
    if "dict" in node:
        return {k: _decode(v, data) for k, v in node["dict"]}
    raise ValueError(f"bad case node {node!r}")


def save_case(path: str, case: dict) -> None:
    """Write ``case`` (a dict) to ``path``; raises TypeError for values that cannot be
    shipped exactly, ValueError if the round trip is not exact."""
    arrays: dict = {}
    meta = _encode(dict(case), arrays)
    tmp = path + ".tmp.npz"
    members = {"__meta__": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    # a reproducible npz (np.savez stamps the time): same case, same bytes
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)
    if not same_case(load_case(path), case):
        os.unlink(path)
        raise ValueError(f"{os.path.basename(path)}: the case does not survive the round trip")


def load_case(path: str) -> dict:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        return _decode(meta, data)


def same_case(a, b) -> bool:
    """Exactly equal, types included (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and (
            a.tobytes() == b.tobytes())
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_case(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_case(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    return a == b
