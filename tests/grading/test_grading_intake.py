"""normlab-grade's intake (layouts, LMS names, zips, notebook repair), records, cases and
CSV: fast unit tests, nothing is executed."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

import normlab_grade_helpers as H
from normlab_grading.grade import intake
from normlab_grading.grade.intake import AssignmentSpec, collect, repair_notebook, safe_extract
from normlab_grading.grade.pipeline import RecordRejected, load_record_safely
from normlab_grading.grade.records import save_record
from normlab_grading.check import casefile

ROOT = Path(__file__).resolve().parents[2]
A = "02-zscore"


def _source_text() -> str:
    return (ROOT / "solutions" / A / f"{A}.ipynb").read_text()


@pytest.fixture(scope="module")
def specs():
    ids = intake.notebook_grade_ids(_source_text())
    return {
        A: AssignmentSpec(A, (A,), {A: frozenset(ids)}),
        "01-feature-scaling": AssignmentSpec("01-feature-scaling", ("01-feature-scaling",),
                                             {"01-feature-scaling": frozenset({"minmax_scaler"})}),
    }


def _nb_text(tag: str = "") -> str:
    nb = json.loads(_source_text())
    nb["metadata"]["tag"] = tag
    return json.dumps(nb)


def _write(root: Path, rel: str, text: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _by_student(result):
    return {s.student: s for s in result.submissions}


# ----------------------------------------------------------------------------- layouts
def test_nbgrader_layout_with_timestamp(tmp_path, specs):
    _write(tmp_path, f"submitted/alice/{A}/{A}.ipynb", _nb_text("a"))
    _write(tmp_path, f"submitted/alice/{A}/timestamp.txt", "2025-03-01 10:00:00.000000 UTC")
    _write(tmp_path, f"submitted/bob/{A}/{A}.ipynb", _nb_text("b"))
    res = collect(tmp_path, specs)
    subs = _by_student(res)
    assert set(subs) == {"alice", "bob"}
    assert subs["alice"].assignment == A and subs["alice"].timestamp.startswith("2025-03-01")
    assert json.loads(subs["alice"].notebooks[A])["metadata"]["tag"] == "a"
    assert not res.rejections


def test_exchange_layout(tmp_path, specs):
    _write(tmp_path, f"inbound/carol+{A}+2025-03-02 09:00:00.000000 UTC+Xyz_12/{A}.ipynb", _nb_text())
    res = collect(tmp_path, specs)
    (sub,) = res.submissions
    assert (sub.student, sub.assignment) == ("carol", A)
    assert sub.timestamp.startswith("2025-03-02")


def test_canvas_names_late_and_reupload(tmp_path, specs):
    _write(tmp_path, f"doejane_12345_67890_{A}.ipynb", _nb_text("first"))
    _write(tmp_path, f"doejane_LATE_12345_67999_{A}-1.ipynb", _nb_text("second"))
    _write(tmp_path, f"smithjohn_222_333_{A}.ipynb", _nb_text("john"))
    res = collect(tmp_path, specs, only=A)
    subs = _by_student(res)
    assert set(subs) == {"doejane_12345", "smithjohn_222"}
    assert json.loads(subs["doejane_12345"].notebooks[A])["metadata"]["tag"] == "second"
    assert subs["doejane_12345"].display_name == "doejane"


def test_moodle_folder_and_flat_names(tmp_path, specs):
    _write(tmp_path, f"Jane Doe_501_assignsubmission_file_/{A}.ipynb", _nb_text("folder"))
    _write(tmp_path, f"Zoë O'Brien, Jr._502_assignsubmission_file_{A}.ipynb", _nb_text("flat"))
    res = collect(tmp_path, specs, only=A)
    subs = _by_student(res)
    assert set(subs) == {"Jane_Doe_501", "Zoe_O_Brien_Jr._502"}
    assert subs["Zoe_O_Brien_Jr._502"].display_name == "Zoë O'Brien, Jr."


def test_blackboard_names(tmp_path, specs):
    _write(tmp_path, f"HW2_jdoe_attempt_2025-03-01-10-00-00_{A}.ipynb", _nb_text())
    _write(tmp_path, "HW2_jdoe_attempt_2025-03-01-10-00-00.txt", "Name: Jane Doe")
    res = collect(tmp_path, specs, only=A)
    (sub,) = res.submissions
    assert sub.student == "jdoe" and sub.timestamp == "2025-03-01-10-00-00"


def test_folder_per_student_and_flat_file(tmp_path, specs):
    _write(tmp_path, f"export/dave/{A}.ipynb", _nb_text())
    _write(tmp_path, "erin.ipynb", _nb_text())
    res = collect(tmp_path, specs, only=A)
    assert set(_by_student(res)) == {"dave", "erin"}
    # without --assignment a flat notebook named after the assignment has no owner
    _write(tmp_path / "x", f"{A}.ipynb", _nb_text())
    res = collect(tmp_path / "x", specs)
    assert not res.submissions and "whose notebook" in res.rejections[0].reason


def test_assignment_recognised_by_name_then_by_content(tmp_path, specs):
    _write(tmp_path, f"frank/Copy of {A} (1).ipynb", _nb_text())
    _write(tmp_path, "gina/homework.ipynb", _nb_text())  # grade ids say 02-zscore
    res = collect(tmp_path, specs)
    subs = _by_student(res)
    assert subs["frank"].assignment == A and subs["gina"].assignment == A
    assert any("graded as" in n for n in subs["gina"].notes)


def test_renamed_notebook_and_choice_by_grade_ids(tmp_path, specs):
    _write(tmp_path, "hank/my work.ipynb", _nb_text("renamed"))
    _write(tmp_path, "ivy/scratch.ipynb", json.dumps(nbformat.v4.new_notebook()))
    _write(tmp_path, "ivy/final.ipynb", _nb_text("real"))
    res = collect(tmp_path, specs, only=A)
    subs = _by_student(res)
    assert json.loads(subs["hank"].notebooks[A])["metadata"]["tag"] == "renamed"
    assert any("renamed notebook my work.ipynb" in n for n in subs["hank"].notes)
    assert json.loads(subs["ivy"].notebooks[A])["metadata"]["tag"] == "real"
    assert any("ignored notebooks" in n for n in subs["ivy"].notes)


def test_missing_notebook(tmp_path, specs):
    _write(tmp_path, f"submitted/jack/{A}/README.txt", "I forgot")
    res = collect(tmp_path, specs, only=A)
    (sub,) = res.submissions
    assert sub.notebooks[A] is None and "was not submitted" in sub.missing[A]


def test_shipped_files_travel_with_the_submission(tmp_path, specs):
    # as nbgrader autograde copies them to the autograded folder (the grader, not intake,
    # decides what the jail gets: tests/grading/test_grading_run_intake_attacks.py)
    _write(tmp_path, f"kim/{A}.ipynb", _nb_text())
    _write(tmp_path, "kim/numpy.py", "raise SystemExit")
    _write(tmp_path, "kim/normlab/__init__.py", "def check(*a, **k): pass")
    _write(tmp_path, "kim/data/values.csv", "1,2\n")
    _write(tmp_path, "kim/helper.cpython-311.pyc", "x")
    _write(tmp_path, "kim/__pycache__/helper.cpython-311.pyc", "x")
    res = collect(tmp_path, specs, only=A)
    (sub,) = res.submissions
    assert list(sub.notebooks) == [A]
    assert sub.files == {"numpy.py": b"raise SystemExit", "normlab/__init__.py": b"def check(*a, **k): pass",
                         "data/values.csv": b"1,2\n"}
    assert any("3 file(s) shipped" in n and "numpy.py" in n for n in sub.notes)
    digest = sub.digest()
    _write(tmp_path, "kim/data/values.csv", "1,3\n")  # the files are part of what is graded
    assert collect(tmp_path, specs, only=A).submissions[0].digest() != digest


def test_shipped_files_are_relative_to_the_notebook_and_capped(tmp_path, specs):
    _write(tmp_path, f"submitted/lou/{A}/{A}.ipynb", _nb_text())
    _write(tmp_path, f"submitted/lou/{A}/helper.py", "def f(): return 1\n")
    _write(tmp_path, f"submitted/lou/{A}/big.bin", "x" * 5000)
    (tmp_path / "submitted" / "max").mkdir()
    with zipfile.ZipFile(tmp_path / "submitted" / "max" / "work.zip", "w") as z:
        z.writestr(f"work/{A}.ipynb", _nb_text())  # paths relative to the notebook's folder
        z.writestr("work/helper.py", "h")
        z.writestr("README.txt", "outside the notebook's folder")
    res = collect(tmp_path / "submitted", specs, only=A, max_shipped_bytes=1000)
    subs = {s.student: s for s in res.submissions}
    assert subs["lou"].files == {"helper.py": b"def f(): return 1\n"}
    assert any("big.bin" in n and "over the 0 MiB" in n for n in subs["lou"].notes)
    assert subs["max"].files == {"helper.py": b"h"}
    assert any("README.txt (outside the notebook's folder)" in n for n in subs["max"].notes)


# ----------------------------------------------------------------------------- repair
def test_malformed_json_is_rejected_with_the_position(tmp_path, specs):
    _write(tmp_path, f"lee/{A}.ipynb", _nb_text()[:500])
    res = collect(tmp_path, specs, only=A)
    (sub,) = res.submissions
    assert sub.notebooks[A] is None and "not valid JSON (line" in sub.missing[A]


@pytest.mark.parametrize("raw,reason", [
    (b"", "is empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"cells": []}', "not a Jupyter notebook"),
    (b'{"nbformat": 2, "worksheets": []}', "nbformat 2"),
])
def test_not_notebooks_are_rejected(raw, reason):
    with pytest.raises(intake.NotebookRejected, match=reason):
        repair_notebook(raw)


def test_crlf_bom_missing_ids_are_repaired():
    nb = json.loads(_source_text())
    for cell in nb["cells"]:
        cell.pop("id", None)
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = src.replace("\n", "\r\n")
    nb["nbformat_minor"] = 4
    raw = b"\xef\xbb\xbf" + json.dumps(nb, indent=1).replace("\n", "\r\n").encode()
    text, notes = repair_notebook(raw, "x.ipynb")
    fixed = nbformat.reads(text, as_version=4)
    nbformat.validate(fixed)
    assert all("\r" not in c.source for c in fixed.cells)
    assert len({c.id for c in fixed.cells}) == len(fixed.cells)
    assert any("CRLF" in n for n in notes) and any("byte order mark" in n for n in notes)
    assert any("new id" in n for n in notes)


def test_old_nbformat_is_upgraded():
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "language": "python",
                                     "outputs": [], "metadata": {}}], "metadata": {}}]}
    text, notes = repair_notebook(json.dumps(v3).encode())
    nb = nbformat.reads(text, as_version=4)
    assert nb.nbformat == 4 and nb.cells[0].source == "x = 1"
    assert any("upgraded" in n for n in notes)


# ----------------------------------------------------------------------------- zips
def _zip_with(path: Path, members: dict, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_zip_slip_members_are_refused_and_the_rest_graded(tmp_path, specs):
    z = _zip_with(tmp_path / "subs.zip", {
        f"submitted/mona/{A}/{A}.ipynb": _nb_text(),
        f"../../evil/{A}/{A}.ipynb": _nb_text(),
        f"/abs/nick/{A}.ipynb": _nb_text(),
        f"C:\\win\\{A}.ipynb": _nb_text(),
        f"submitted/olga/{A}/../../../../escape.ipynb": _nb_text(),
    }, symlink=f"submitted/pat/{A}/{A}.ipynb")
    work = tmp_path / "work"
    work.mkdir()
    res = collect(z, specs, workdir=work)
    subs = _by_student(res)
    # pat's only file was refused: pat is still in the output, with the reason
    assert sorted(subs) == ["mona", "pat"]
    assert subs["mona"].notebooks[A] is not None
    assert subs["pat"].notebooks[A] is None and "symbolic link" in subs["pat"].missing[A]
    reasons = " | ".join(r.reason for r in res.rejections)
    assert "leaves the archive" in reasons and "absolute path" in reasons
    assert "symbolic link" in reasons
    assert len(res.rejections) == 5
    outside = [p for p in tmp_path.rglob("*.ipynb") if work not in p.parents]
    assert outside == []


def test_zip_bomb_is_refused(tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/big.ipynb", b"0" * (30 * 2**20))
        zf.writestr("b/ok.ipynb", b"{}")
    dest = tmp_path / "out"
    dest.mkdir()
    # the bomb is that member's refusal; the rest of the archive is extracted
    (refused,) = safe_extract(z, dest)
    assert "a/big.ipynb" in refused.reason and "zip bomb" in refused.reason
    assert not (dest / "a" / "big.ipynb").exists() and (dest / "b" / "ok.ipynb").read_bytes() == b"{}"
    dest2 = tmp_path / "out2"
    dest2.mkdir()
    with pytest.raises(intake.UnsafeArchive, match="limit"):
        safe_extract(z, dest2, intake.ZipLimits(max_total_bytes=2**20, max_ratio=10**6))


def test_student_zip_inside_canvas_download(tmp_path, specs):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr(f"project/{A}.ipynb", _nb_text("zipped"))
        zf.writestr("../outside.ipynb", _nb_text())
    outer = tmp_path / "canvas.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("quinnroe_77_88_submission.zip", inner.getvalue())
    res = collect(outer, specs, only=A)
    (sub,) = res.submissions
    assert sub.student == "quinnroe_77"
    assert json.loads(sub.notebooks[A])["metadata"]["tag"] == "zipped"
    assert any("leaves the archive" in r.reason for r in res.rejections)


def test_not_a_zip(tmp_path, specs):
    p = tmp_path / "x.zip"
    p.write_text("nope")
    with pytest.raises(intake.UnsafeArchive):
        collect(p, specs)


def test_student_ids_are_safe():
    assert intake.safe_student_id("../../etc") == "etc"
    assert intake.safe_student_id("Ana María") == "Ana_Maria"
    assert intake.safe_student_id("...").startswith("student_")
    assert intake.safe_student_id("a/b\\c") == "a_b_c"


# ----------------------------------------------------------------------------- records
def test_records_are_read_defensively(tmp_path):
    path = save_record(str(tmp_path), "zscore_basic", False, {"out": np.ones((3, 2))})
    meta, outputs = load_record_safely(path)
    assert meta["check_id"] == "zscore_basic" and outputs["out"].shape == (3, 2)
    link = tmp_path / "link.visible.npz"
    link.symlink_to(path)
    with pytest.raises(RecordRejected, match="open"):
        load_record_safely(link)
    fifo = tmp_path / "fifo.visible.npz"
    os.mkfifo(fifo)
    with pytest.raises(RecordRejected, match="regular"):
        load_record_safely(fifo)
    with pytest.raises(RecordRejected, match="larger"):
        load_record_safely(path, max_bytes=100)
    pickled = tmp_path / "p.visible.npz"
    np.savez(pickled, meta=np.array("{}"), out__x=np.array([object()], dtype=object))
    with pytest.raises(RecordRejected):
        load_record_safely(pickled)
    compressed = tmp_path / "c.visible.npz"
    np.savez_compressed(compressed, meta=np.array("{}"))
    with pytest.raises(RecordRejected, match="uncompressed"):
        load_record_safely(compressed)
    # a header claiming far more data than the member holds
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**9,)})
    lying = tmp_path / "l.visible.npz"
    with zipfile.ZipFile(lying, "w") as zf:
        zf.writestr("out__x.npy", buf.getvalue() + b"\0" * 16)
    with pytest.raises(RecordRejected, match="header"):
        load_record_safely(lying)


def test_cases_round_trip_exactly(tmp_path):
    case = {"X": np.arange(6.0).reshape(2, 3), "n": 3, "eps": 1e-5, "flag": True, "none": None,
            "range": (0, 1.5), "names": ["a", "b"], "i8": np.int64(7), "f32": np.float32(0.1),
            "nan": float("nan"), "nested": {"m": np.eye(2, dtype=np.float32)}}
    path = casefile.case_path(str(tmp_path), "c", True)
    casefile.save_case(path, case)
    back = casefile.load_case(path)
    assert casefile.same_case(back, case)
    assert type(back["range"]) is tuple and type(back["i8"]) is np.int64
    with pytest.raises(TypeError):
        casefile.save_case(path, {"f": lambda: 0})


# ----------------------------------------------------------------------------- reports
def test_csv_is_valid_with_commas_quotes_and_formulas(tmp_path):
    from normlab_grading.grade.report import write_reports

    out = tmp_path
    rec = {"student": "s1", "display_name": 'Doe, "JJ" =HYPERLINK("x")', "assignment": A,
           "status": "graded", "score": 3.0, "max_score": 5.0, "reason": "a, b\nc", "key": "k",
           "notebooks": {A: {"cells": [{"grade_id": "t1", "points": 5.0, "score": 3.0,
                                        "passed": False, "message": "m, \"q\""}]}}}
    (out / "results" / A).mkdir(parents=True)
    (out / "results" / A / "s1.json").write_text(json.dumps(rec))
    write_reports(out, [A], [{"path": "x", "reason": "refused"}])
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    assert rows[0][:4] == ["student_id", "name", "assignment", "status"]
    assert rows[1][1] == 'Doe, "JJ" =HYPERLINK("x")'
    assert rows[1][6] == "a, b\nc" and rows[1][7] == "3"
    assert (out / "summary.md").exists() and (out / f"plots/{A}.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["assignments"][A]["questions"][0]["most_common_failures"][0]["count"] == 1
    rec["display_name"] = "=1+1"
    (out / "results" / A / "s1.json").write_text(json.dumps(rec))
    write_reports(out, [A], [])
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    assert rows[1][1] == "'=1+1"


# ----------------------------------------------------------------------------- issue 8
def test_ids_come_from_the_layout_position_never_from_inner_folders(tmp_path, specs):
    s = tmp_path / "submitted"
    _write(s, f"bob/{A}/{A}.ipynb", _nb_text("bob"))
    _write(s, f"carol/{A}/{A}.ipynb", _nb_text("carol"))
    _write(s, f"alice/{A}/{A}.ipynb", _nb_text("alice"))
    _write(s, f"alice/{A}/submitted/bob/{A}/{A}.ipynb", _nb_text("fake"))
    _write(s, f"alice/{A}/carol+{A}+2099-01-01 00:00:00.000000 UTC/{A}.ipynb", _nb_text("fake"))
    _write(s, f"alice/{A}/-bob/{A}.ipynb", _nb_text("fake"))
    _write(tmp_path, f"dave/{A}.ipynb", _nb_text("dave"))  # folder per student, beside
    _write(tmp_path, f"dave/bob/{A}.ipynb", _nb_text("fake"))
    _write(tmp_path, f"erin/{A}.ipynb", _nb_text("erin"))
    res = collect(tmp_path, specs)
    subs = _by_student(res)
    assert sorted(subs) == ["alice", "bob", "carol", "dave", "erin"]
    for name in subs:
        assert json.loads(subs[name].notebooks[A])["metadata"]["tag"] == name
    assert subs["carol"].timestamp is None


def test_id_collisions_are_reported_not_merged(tmp_path, specs):
    for order in ("ab", "ba"):
        root = tmp_path / order
        names = ["-bob", "bob"] if order == "ab" else ["bob", "-bob"]
        for n in names:
            _write(root, f"submitted/{n}/{A}/{A}.ipynb", _nb_text(n))
        subs = _by_student(collect(root, specs))
        assert json.loads(subs["bob"].notebooks[A])["metadata"]["tag"] == "bob"
        (other,) = [s for s in subs if s != "bob"]
        assert other.startswith("bob_") and subs[other].display_name == "-bob"
        assert any("collision" in n for n in subs[other].notes)


def test_hostile_members_of_the_input_zip_are_refused_one_by_one(tmp_path, specs):
    buf = io.BytesIO()
    long = "y" * 300
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"ann_1_2_{A}.ipynb", _nb_text("ann"))
        zf.writestr(f"leo_3_4_{A}.ipynb", _nb_text("leo"))  # flagged encrypted below
        zf.writestr(f"max_5_6_{long}.ipynb", _nb_text())
        zf.writestr(zipfile.ZipInfo(f"ned_7_8_{A}.ipynb"), b"0" * (30 * 2**20),
                    compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(f"ola_9_9_\x1b[31m{A}.ipynb", _nb_text())
    z = tmp_path / "canvas.zip"
    z.write_bytes(H.zip_flag_encrypted(buf.getvalue(), f"leo_3_4_{A}.ipynb"))
    res = collect(z, specs, only=A)
    subs = _by_student(res)
    assert json.loads(subs["ann_1"].notebooks[A])["metadata"]["tag"] == "ann"
    # the refused notebooks' students are in the output, with the reason
    assert "encrypted" in subs["leo_3"].missing[A]
    assert "zip bomb" in subs["ned_7"].missing[A]
    reasons = " | ".join(r.reason for r in res.rejections)
    assert "longer than 255 bytes" in reasons and "control characters" in reasons
    assert "\\x1b" in reasons and "\x1b" not in reasons


@pytest.mark.parametrize("damage", ["truncated", "bad_crc", "not_utf8_name"])
def test_damaged_student_zips_are_that_students_rejection(tmp_path, specs, damage):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{A}.ipynb", _nb_text("zipped"))
    data = buf.getvalue()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "bad_crc":
        data = data.replace(b'"tag"', b'"TAG"', 1)
    else:  # the UTF-8 flag on a name that is not UTF-8
        data = data.replace(f"{A}.ipynb".encode(), b"\xff" + f"{A}.ipynb".encode()[1:])
        data = bytearray(data)
        for sig, off in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
            p = data.find(sig)
            data[p + off] |= 0x08
        data = bytes(data)
    _write(tmp_path, f"submitted/ann/{A}/work.zip", data)
    _write(tmp_path, f"submitted/bob/{A}/{A}.ipynb", _nb_text("bob"))
    res = collect(tmp_path, specs)
    subs = _by_student(res)
    assert json.loads(subs["bob"].notebooks[A])["metadata"]["tag"] == "bob"
    assert subs["ann"].notebooks[A] is None
    ann = [r.reason for r in res.rejections if r.student == "ann"]
    assert ann and ("readable zip" in ann[0] or "damaged" in ann[0]), ann


def test_every_student_in_the_input_has_a_row(tmp_path, specs):
    _write(tmp_path, f"submitted/amy/{A}/{A}.ipynb", _nb_text())
    (tmp_path / "submitted" / "dan" / A).mkdir(parents=True)  # empty assignment folder
    (tmp_path / "submitted" / "fay").mkdir(parents=True)  # empty student folder
    subs = _by_student(collect(tmp_path, specs))
    assert sorted(subs) == ["amy", "dan", "fay"]
    for s in ("dan", "fay"):
        assert subs[s].assignment == A and subs[s].notebooks[A] is None
        assert "was not submitted" in subs[s].missing[A]


@pytest.mark.parametrize("text,expected,problem", [
    ("2025-03-01 10:00:00.000000 UTC", "2025-03-01 10:00:00.000000 UTC", False),
    ("2025-03-01 10:00:00 UTC\n2025-03-04 09:00:00 UTC\nnonsense", "2025-03-04 09:00:00 UTC", False),
    ("nonsense", None, True),
    ("3", None, True),
    ("", None, True),
])
def test_timestamps_latest_parseable_or_reported(tmp_path, specs, text, expected, problem):
    _write(tmp_path, f"submitted/amy/{A}/{A}.ipynb", _nb_text())
    _write(tmp_path, f"submitted/amy/{A}/timestamp.txt", text)
    _write(tmp_path, f"submitted/amy/{A}/sub/timestamp.txt", "garbage that must not win")
    _write(tmp_path, f"submitted/amy/{A}/old/timestamp.txt", "2000-01-01 00:00:00 UTC")
    (sub,) = collect(tmp_path, specs).submissions
    assert sub.timestamp == expected
    assert bool(sub.timestamp_problem) is problem
    assert any("sub/timestamp.txt ignored" in n for n in sub.notes)


def test_escaping_helpers():
    from normlab_grading.grade.report import for_markdown, for_terminal

    assert for_terminal("a\x1b[31mb\nc\u202ed\x07") == "a\\x1b[31mb\\nc\\u202ed\\x07"
    assert for_terminal("Zoë O'Brien 02-zscore.ipynb") == "Zoë O'Brien 02-zscore.ipynb"
    md = for_markdown("**x** | _y_ `z` [l](u) <b> # h \x1b ! ~ &amp;")
    assert md == ("\\*\\*x\\*\\* \\| \\_y\\_ \\`z\\` \\[l\\]\\(u\\) \\<b\\> \\# h \\\\x1b \\! \\~ "
                  "\\&amp;")
    # independent ground truth: a CommonMark renderer (with tables) shows the text itself
    import html

    from markdown_it import MarkdownIt

    nasty = "**b** _i_ `c` [l](javascript:x) ![i](x.png) <img src=x> # h | cell ~~s~~ &lt; \\*"
    rendered = MarkdownIt("commonmark").enable("table").render(
        f"- {for_markdown(nasty)}\n").replace("\u2060", "")  # the word joiners that break URLs
    assert rendered == f"<ul>\n<li>{html.escape(nasty, quote=True)}</li>\n</ul>\n".replace(
        "&#x27;", "'"), rendered
    row = MarkdownIt("commonmark").enable("table").render(
        f"| a | b |\n|---|---|\n| {for_markdown('x | y')} | z |\n")
    assert "<td>x | y</td>" in row and row.count("<td>") == 2


def test_markdown_text_makes_no_autolinks():
    """Renderers that autolink (GFM-like markdown-it with linkify, mistune's url plugin) make
    no link of a URL, a www. address, a bare domain or an e-mail in a student's message."""
    import mistune
    from markdown_it import MarkdownIt

    from normlab_grading.grade.report import for_markdown

    text = ("confirm at https://evil.example.com/login, www.evil.example.org, evil.com or "
            "me@evil.com (value 1.5e-3)")
    md = for_markdown(text)
    for html in (MarkdownIt("gfm-like").render(md), mistune.create_markdown(plugins=["url"])(md)):
        assert "<a" not in html, html
        assert html.replace("\u2060", "").count("https://evil.example.com/login") == 1
