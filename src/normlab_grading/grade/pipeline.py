"""Grade one submission, on the trusted side: the task each (Dask) worker runs.

``grade_submission(task, bundle, limits)`` is a pure function of its arguments (the
submission's notebooks as text, the assignment ``Bundle``, the limits) that returns a
JSON-able result; it needs no shared file system, so a remote Dask worker can run it.
For each notebook of the assignment:

1. sanitize exactly as ``nbgrader autograde`` does, with the course's
   ``Autograde.sanitize_preprocessors`` (clear outputs, deduplicate ids, restore the
   kernelspec, restore locked/graded cells and their metadata from a snapshot of the
   gradebook, re-add deleted test cells, check metadata);
2. execute it in a fresh sandbox (``sandbox.execute_notebook``: nbgrader's ``Execute`` with
   the course's configuration; the test cells only *record* the student's outputs);
3. judge every record here, outside the student's reach: the case is rebuilt from the
   check id and the grader's own seed, the reference is computed by normlab in this
   process (``judge.judge``); a test cell passes only if every check it runs (visible and
   hidden) left a record made *in that cell* that the judge accepts. The cell then looks
   as ``nbgrader autograde`` would have left it: the "recorded" lines become the
   checker's "ok" lines, a failure becomes the error output with the checker's message;
4. apply the rest of the course's ``Autograde.autograde_preprocessors`` (IgnorePattern,
   LimitOutput, ...), then score each graded cell with nbgrader's own
   ``utils.determine_grade``; writing the gradebook (``SaveAutoGrades``) is left to the
   single coordinating process;
5. render the feedback HTML with the course's ``GenerateFeedback`` preprocessors and
   nbgrader's feedback template, the grades taken from step 4 instead of the gradebook,
   and check that no line of a hidden test reached it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

# jsonschema (imported by nbformat) imports rfc3987_syntax, when installed, for an optional
# "iri" format checker, and that module builds an Earley parser when imported: 2-8 s on two
# cores, the largest single cost of grading one submission. Nothing in the grader checks
# formats (nbformat validates without a format checker, and its schema has no IRI field), so
# the module is marked absent (jsonschema then leaves that one checker out), unless something
# imported jsonschema already.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)

import numpy as np  # noqa: E402

from . import sandbox as _sandbox  # noqa: E402

__all__ = ["Bundle", "GRADER_VERSION", "grade_submission", "load_record_safely", "RecordRejected"]

# Bump when anything that changes grades or outputs changes: results made by another
# version are graded again on resume.
GRADER_VERSION = "1"
MAX_RECORD_BYTES = 64 * 2**20
_RECORDED = re.compile(r"^(?P<cid>[A-Za-z0-9_.-]+) \((?P<which>visible|hidden)\): recorded for grading$")


@dataclass
class Bundle:
    """Everything a worker needs to grade one assignment (built by ``course.build_bundle``)."""

    assignment: str
    notebooks: tuple  # notebook stems, in order
    gradebook: bytes  # sqlite snapshot holding the assignment (source cells, points)
    config: dict  # the course's nbgrader configuration (traitlets Config as a dict)
    files: dict  # non-notebook source files: relative path -> bytes
    cases: dict  # case file name -> bytes (casefile format)
    cells: dict  # grade_id -> tuple of check ids (from the registry)
    functions: dict  # check id -> the student's function name (for messages)
    grade_cells: dict  # notebook stem -> list of (grade_id, points, cell_type)
    hidden_lines: dict  # notebook stem -> list of hidden-test source lines
    mask: tuple  # libraries masked in the sandbox
    seed: int
    digest: str = ""  # sha256 of everything above plus GRADER_VERSION


# ----------------------------------------------------------------------------- worker cache
_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()


def _worker_root() -> Path:
    root = _CACHE.get("__root__")
    if root is None or not Path(root).exists():
        root = Path(tempfile.mkdtemp(prefix=f"normlab-grade-{os.getpid()}-"))
        _CACHE["__root__"] = root
        import atexit

        atexit.register(shutil.rmtree, root, True)
    return Path(root)


def _materialize(bundle: Bundle) -> dict:
    """Write the bundle's files once per worker process (keyed by its digest)."""
    with _CACHE_LOCK:
        got = _CACHE.get(bundle.digest)
        if got and Path(got["dir"]).exists():
            return got
        root = _worker_root() / f"bundle-{bundle.digest[:16]}"
        if root.exists():
            shutil.rmtree(root)
        (root / "cases").mkdir(parents=True)
        (root / "files").mkdir()
        db = root / "gradebook.db"
        db.write_bytes(bundle.gradebook)
        for name, data in bundle.cases.items():
            if "/" in name or name.startswith("."):
                continue
            (root / "cases" / name).write_bytes(data)
        for rel, data in bundle.files.items():
            p = root / "files" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        lib = root / "lib"
        from .student_lib import build_student_lib

        build_student_lib(lib)
        from traitlets.config import Config

        got = {"dir": str(root), "db": str(db), "lib": str(lib), "cases": str(root / "cases"),
               "files": str(root / "files"), "config": Config(copy.deepcopy(bundle.config)),
               "config_key": json.dumps(bundle.config, sort_keys=True, default=str),
               "case_cache": {}}
        _CACHE[bundle.digest] = got
        return got


# ----------------------------------------------------------------------------- records
class RecordRejected(Exception):
    pass


def load_record_safely(path: str | os.PathLike, max_bytes: int = MAX_RECORD_BYTES):
    """``(meta, outputs)`` of a record written in the sandbox, read defensively: a regular
    file (no symlink, FIFO or device), at most ``max_bytes``, an uncompressed npz of
    numeric ``.npy`` members whose headers agree with their sizes, no pickle."""
    from . import records

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RecordRejected(f"cannot open record: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RecordRejected("record is not a regular file")
        if st.st_size > max_bytes:
            raise RecordRejected(f"record is larger than {max_bytes // 2**20} MiB")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise RecordRejected(f"record is larger than {max_bytes // 2**20} MiB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
        if len(infos) > 200:
            raise RecordRejected("record has too many members")
        for info in infos:
            if not re.fullmatch(r"(meta|out__[^/]{1,200})\.npy", info.filename):
                raise RecordRejected(f"unexpected member {info.filename[:80]!r}")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > max_bytes:
                raise RecordRejected("record members must be stored uncompressed")
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise RecordRejected("unknown npy version")
                if dtype.hasobject:
                    raise RecordRejected("record holds Python objects")
                n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if n > info.file_size:
                    raise RecordRejected("record header does not match its size")
        meta, outputs = records.load_record(io.BytesIO(data))
    except RecordRejected:
        raise
    except Exception as exc:  # anything malformed
        raise RecordRejected(f"malformed record ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(meta, dict):
        raise RecordRejected("malformed record meta")
    from normlab_grading.check.outputs import Problem

    # the student wrote every text in there: short enough for messages, reports and results
    outputs = {_clip(k, 100): Problem(_clip(v.text, 300)) if isinstance(v, Problem) else v
               for k, v in outputs.items()}
    if isinstance(meta.get("warnings"), list):
        meta["warnings"] = [_clip(w, 300) for w in meta["warnings"][:20]]
    return meta, outputs


def _clip(text, n=2000) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


# ----------------------------------------------------------------------------- judging
def _case(cache: dict, check_id: str, seed: int, hidden: bool):
    from .cases import make_case

    key = (check_id, seed, hidden)
    if key not in cache:
        cache[key] = make_case(check_id, seed, hidden)
    case = cache[key]
    return {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in case.items()}


def _fingerprint(value) -> str:
    """A content hash of a case (arrays by dtype, shape and bytes)."""
    import hashlib

    h = hashlib.sha256()

    def walk(v):
        if isinstance(v, np.ndarray):
            h.update(f"a{v.dtype.str}{v.shape}".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, dict):
            h.update(b"d")
            for k in v:
                h.update(repr(k).encode())
                walk(v[k])
        elif isinstance(v, (list, tuple)):
            h.update(b"l" if isinstance(v, list) else b"t")
            for x in v:
                walk(x)
        else:
            h.update(f"{type(v).__name__}:{v!r}".encode())

    walk(value)
    return h.hexdigest()


def _memoize(fn, cache: dict):
    def memo(case, *args, **kwargs):
        if args or kwargs:
            return fn(case, *args, **kwargs)
        key = _fingerprint(case)
        if key not in cache:
            cache[key] = fn(case)
        return copy.deepcopy(cache[key])

    memo._normlab_memo = True
    return memo


def _memoize_check(check_id: str) -> None:
    """Compute each reference (and each recognised mistake's wrong answer) once per case in
    this worker: they are pure functions of the case, and some (05-ics trains a network)
    take seconds. Adapter over the registry's private table; without it, judging is the same,
    only slower."""
    import dataclasses

    from . import registry

    try:
        chk = registry.get_check(check_id)
        if getattr(chk.reference, "_normlab_memo", False):
            return
        mistakes = tuple(
            dataclasses.replace(m, wrong=_memoize(m.wrong, {})) if m.wrong is not None else m
            for m in chk.mistakes)
        registry._CHECKS[check_id] = dataclasses.replace(
            chk, reference=_memoize(chk.reference, {}), mistakes=mistakes)
    except Exception:
        pass


def _judge_cell(checks, paths, seed: int, case_cache: dict, not_run: str | None):
    """Verdicts for one test cell: list of (check_id, hidden, passed, kind, message)."""
    from .cases import VISIBLE_SEED
    from .judge import judge

    found: dict = {}
    for p in paths:
        m = re.match(r"^(.+)\.(visible|hidden)\.npz$", Path(p).name)
        if m:
            found[(m.group(1), m.group(2) == "hidden")] = p
    verdicts = []
    for cid in checks:
        for hidden in (False, True):
            which = "hidden" if hidden else "visible"
            path = found.get((cid, hidden))
            if path is None:
                why = not_run or "the test cell did not run to completion"
                verdicts.append((cid, hidden, False, "no_record",
                                 f"{cid} ({which} test): no result was recorded: {why}."))
                continue
            try:
                meta, outputs = load_record_safely(path)
                if meta.get("check_id") != cid or bool(meta.get("hidden")) != hidden:
                    raise RecordRejected("record does not belong to this check")
                tripwire = meta.get("tripwire")
                tripwire = _clip(tripwire, 200) if isinstance(tripwire, str) and tripwire else None
                err = meta.get("error")
                error = None
                if isinstance(err, (list, tuple)) and len(err) == 2:
                    error = (_clip(err[0], 100), _clip(err[1], 1000))
                elif err:
                    error = ("Exception", "unknown")
                seed_used = seed if hidden else VISIBLE_SEED
                case = _case(case_cache, cid, seed_used, hidden)
                _memoize_check(cid)
                v = judge(cid, case, outputs, hidden=hidden, tripwire=tripwire, error=error)
                verdicts.append((cid, hidden, v.passed, v.mistake_id, _clip(v.message, 4000),
                                 error[0] if (error and v.mistake_id == "exception") else None))
                continue
            except RecordRejected as exc:
                verdicts.append((cid, hidden, False, "bad_record",
                                 f"{cid} ({which} test): the record is unusable: {exc}."))
            except Exception as exc:  # a judge bug must not pass a student
                verdicts.append((cid, hidden, False, "grader_error",
                                 f"{cid} ({which} test): the grader could not judge this "
                                 f"({type(exc).__name__}: {_clip(exc, 200)})."))
    return [v if len(v) == 6 else v + (None,) for v in verdicts]


def _stdout_only(out) -> dict | None:
    """A fresh stdout stream output with the text of ``out``, or None for anything else
    (results, displays, errors, stderr, metadata: nothing the kernel emits may score)."""
    from nbformat import NotebookNode

    if out.get("output_type") != "stream" or out.get("name") != "stdout":
        return None
    text = out.get("text", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return NotebookNode(output_type="stream", name="stdout", text=text)


def _rewrite_test_cell(cell, verdicts, functions) -> dict | None:
    """Rebuild a checked test cell's outputs from the trusted verdicts; return the first
    failure (None if every check passed).

    The cell keeps only the student's stdout text (the "recorded" lines become the
    checker's "ok" lines, up to the first failure) and, if a check failed, exactly one
    error output carrying the judge's message. Whatever else the kernel put there
    (execute_result, display_data, its own errors, stderr, metadata) is dropped, so
    nbgrader's ``determine_grade`` (an error: 0; no error: full points) sees the verdict
    and nothing the student can emit.
    """
    from nbformat import NotebookNode

    status = {(cid, "hidden" if hidden else "visible"): (passed, msg)
              for cid, hidden, passed, kind, msg, _ in verdicts}
    first_fail = next((v for v in verdicts if not v[2]), None)
    fail_key = (first_fail[0], "hidden" if first_fail[1] else "visible") if first_fail else None
    stopped = False
    new_outputs = []
    kernel_errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    for raw in cell.get("outputs", []):
        out = _stdout_only(raw)
        if out is None or stopped:
            continue
        kept = []
        for line in out["text"].split("\n"):
            m = _RECORDED.match(line)
            if m and not stopped:
                key = (m.group("cid"), m.group("which"))
                passed, _ = status.get(key, (False, ""))
                if key == fail_key or not passed:
                    stopped = True
                    continue
                fn = functions.get(key[0], key[0])
                kept.append(f"ok: {fn} passed {key[0]} ({key[1]} test)")
                continue
            if m and stopped:
                continue
            kept.append(line)
        out["text"] = "\n".join(kept)
        if out["text"]:
            new_outputs.append(out)
    cell["outputs"] = new_outputs
    if first_fail is None:
        return None
    cid, hidden, passed, kind, msg, ename = first_fail
    if kind == "no_record" and kernel_errors:
        # the cell itself raised (a NameError, say): show the student's own error, which
        # can only cost points, in a fresh output
        e = kernel_errors[0]
        cell["outputs"].append(NotebookNode(
            output_type="error", ename=_clip(e.get("ename", "Error"), 200),
            evalue=_clip(e.get("evalue", ""), 2000),
            traceback=[_clip(t, 4000) for t in list(e.get("traceback", []))[:50]]))
    else:
        name = ename if kind == "exception" and ename else "AssertionError"
        cell["outputs"].append(_error_output(_clip(name, 200), msg))
    return {"check": cid, "hidden": hidden, "kind": kind, "message": msg}


def _enforce_verdict(cell, failure: dict | None) -> None:
    """A checked test cell holds fresh stdout streams and, if it failed, one error output:
    its nbgrader score is then the trusted verdict's, whatever ran before."""
    outs = [o for o in (_stdout_only(x) for x in cell.get("outputs", [])) if o is not None]
    if failure is not None:
        err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        outs.append(_error_output(_clip(err.get("ename", "AssertionError"), 200),
                                  _clip(err.get("evalue", ""), 2000))
                    if err is not None else _error_output("AssertionError", failure["message"]))
    cell["outputs"] = outs


_MARKDOWN_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt",
                  "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li",
                  "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
                  "td", "th", "thead", "tr", "ul"}
_MARKDOWN_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "*": ["class", "id"],
                   "td": ["align"], "th": ["align"]}


def sanitize_markdown_cells(nb) -> None:
    """Render every markdown cell to HTML and keep only inert HTML (no script, event
    handler, iframe, form, style or ``javascript:`` URL), as the cell's new source: the student's
    markdown reaches the feedback page only through this sanitizer (outputs go through
    nbconvert's ``sanitize_html``)."""
    import bleach
    from nbconvert.filters import markdown2html

    for cell in nb.cells:
        if cell.cell_type not in ("markdown", "raw"):
            continue
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        html = markdown2html(source) if cell.cell_type == "markdown" else (
            "<pre>" + bleach.clean(source) + "</pre>")
        clean = bleach.clean(html, tags=_MARKDOWN_TAGS, attributes=_MARKDOWN_ATTRS,
                             protocols=["http", "https", "mailto"], strip=True,
                             strip_comments=True)
        # stays a markdown cell holding one HTML block (no blank line inside, so markdown
        # rendering passes it through and creates no new link from literal text)
        cell.cell_type = "markdown"
        cell.source = "<div>" + re.sub(r"\n\s*\n", "\n", clean).replace("[", "&#91;") + "</div>"
        cell.pop("attachments", None)
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


_SAFE_SCHEMES = ("http", "https", "mailto", "attachment")
_TABLE_ALIGN = re.compile(r"^\s*text-align\s*:\s*(left|right|center)\s*;?\s*$", re.I)


def _active_html(html: str) -> bool:
    """Whether ``html``, parsed as a browser does (html5lib, as vendored by bleach), has
    anything outside the sanitizer's allowlist: a tag or attribute it does not allow (a
    script, an event handler, SVG or MathML), or a link or image to a scheme other than
    http(s), mailto or a cell attachment."""
    from bleach._vendor import html5lib

    root = html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)
    for el in root.iter():
        if el is root or not isinstance(el.tag, str):  # comments are inert
            continue
        if el.tag not in _MARKDOWN_TAGS:
            return True
        allowed = set(_MARKDOWN_ATTRS.get(el.tag, [])) | set(_MARKDOWN_ATTRS["*"])
        for name, value in el.attrib.items():
            if name == "style" and el.tag in ("td", "th") and _TABLE_ALIGN.match(value):
                continue  # markdown tables' column alignment
            if name not in allowed:
                return True
            if name in ("href", "src"):
                scheme = re.match(r"^\s*([a-z][a-z0-9+.-]*)\s*:", re.sub(r"[\x00-\x20]", "", value), re.I)
                if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES and not (
                        el.tag == "img" and scheme.group(1).lower() == "data"):  # an attachment
                    return True
    return False


def make_student_markdown_inert(nb, given_ids: set, notes: list) -> None:
    """The autograded notebook's markdown and raw cells as formgrader may render them in the
    instructor's Jupyter origin (it renders markdown with its raw HTML, unsanitized): every
    such cell that is not the instructor's (a locked cell of the source, put back by
    nbgrader's OverwriteCells) and whose rendering holds active HTML (``_active_html``) is
    replaced by its sanitized rendering, as on the feedback page (``sanitize_markdown_cells``);
    other cells are left exactly as they are."""
    import html

    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    from nbformat import NotebookNode

    changed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type not in ("markdown", "raw"):
            continue
        meta = cell.metadata.get("nbgrader")
        if isinstance(meta, dict) and meta.get("locked") and not meta.get("solution") \
                and meta.get("grade_id") in given_ids:
            continue
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        try:  # rendered as formgrader renders it (nbconvert's mistune, attachments inlined)
            rendered = source if cell.cell_type == "raw" else MarkdownWithMath(renderer=IPythonRenderer(
                escape=False, attachments=dict(cell.get("attachments") or {}))).render(source)
            active = _active_html(str(rendered))
        except Exception:  # what cannot be rendered here is not rendered as the student wants
            active = True
        if active:
            page = NotebookNode(cells=[cell])
            try:
                sanitize_markdown_cells(page)
                nb.cells[index] = page.cells[0]
            except Exception:
                cell.cell_type = "markdown"
                cell.source = "<pre>" + html.escape(source) + "</pre>"
                for key in ("attachments", "outputs", "execution_count"):
                    cell.pop(key, None)
            changed.append(str(index + 1))
    if changed:
        notes.append("active HTML (scripts, event handlers...) removed from the student's markdown "
                     "in the autograded notebook: cell(s) " + ", ".join(changed[:20]))


# possessive quantifiers: linear time on any input (a run of spaces after "href=" made the
# backtracking version quadratic: minutes for one feedback page)
_ACTIVE_ATTR = re.compile(r"""\son[a-z]++\s*+=\s*+("[^"]*+"|'[^']*+'|[^\s>]++)""", re.I)
_ACTIVE_URL = re.compile(r"""(href|src|action|formaction|xlink:href)\s*+=\s*+(["']?+)\s*+(javascript|vbscript|data):""", re.I)
_ACTIVE_TAG = re.compile(r"<(/?)(iframe|frame|object|embed|form|base|meta)\b", re.I)


def _inert_body(page: str) -> str:
    """Second line of defence on the rendered feedback page, after the template's head: no
    event-handler attribute, no javascript:/vbscript:/data: URL, no frame, form or embed."""
    head, sep, body = page.partition("<body")
    if not sep:
        head, body = "", page
    body = _ACTIVE_ATTR.sub(" ", body)
    body = _ACTIVE_URL.sub(lambda m: f"{m.group(1)}={m.group(2)}#blocked-", body)
    body = _ACTIVE_TAG.sub(lambda m: f"&lt;{m.group(1)}{m.group(2)}", body)
    return head + sep + body


def _error_output(ename: str, message: str):
    from nbformat import NotebookNode

    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


# ----------------------------------------------------------------------------- nbgrader
def _import(item):
    if isinstance(item, str):
        from traitlets.utils.importstring import import_item

        return import_item(item)
    return item


def _preprocessor_list(config, section: str, name: str, default):
    sub = config.get(section) if hasattr(config, "get") else None
    if not isinstance(sub, dict) or name not in sub:
        return list(default)
    value = dict.__getitem__(sub, name)
    return list(value) if isinstance(value, (list, tuple)) else list(default)


def _run_preprocessors(classes, nb, resources, config):
    for cls in classes:
        pp = _import(cls)
        inst = pp(config=config) if isinstance(pp, type) else pp
        nb, resources = inst(nb, resources)
    return nb, resources


def _sanitize(nb, resources, config):
    from nbgrader.converters.autograde import Autograde

    from .nbgrader_ext import RefuseNormlabGradeCollect

    classes = _preprocessor_list(config, "Autograde", "sanitize_preprocessors",
                                 Autograde.class_traits()["sanitize_preprocessors"].default())
    # the course's guard against plain nbgrader on normlab-grade's collect folder
    classes = [c for c in classes if _import(c) is not RefuseNormlabGradeCollect]
    return _run_preprocessors(classes, nb, resources, config)


def _post_execute(nb, resources, config):
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import AssignLatePenalties, Execute, SaveAutoGrades

    classes = _preprocessor_list(config, "Autograde", "autograde_preprocessors",
                                 Autograde.class_traits()["autograde_preprocessors"].default())
    skip = (Execute, SaveAutoGrades, AssignLatePenalties)
    keep = []
    for c in classes:
        cls = _import(c)
        if isinstance(cls, type) and issubclass(cls, skip):
            continue
        keep.append(cls)
    return _run_preprocessors(keep, nb, resources, config)


_EXPORTERS: dict = {}


def _set_grades_class():
    from nbgrader.preprocessors import GetGrades

    class SetGrades(GetGrades):
        """GetGrades without a database: the grades come from this grading run
        (``grades``, ``total``, ``max_total`` are set before each export)."""

        grades: dict = {}
        total = 0.0
        max_total = 0.0

        def preprocess(self, nb, resources):
            nb, resources = super(GetGrades, self).preprocess(nb, resources)
            resources["nbgrader"]["score"] = self.total
            resources["nbgrader"]["max_score"] = self.max_total
            resources["nbgrader"]["late_penalty"] = 0
            return nb, resources

        def preprocess_cell(self, cell, resources, index):
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") or meta.get("task"):
                meta["comment"] = None
            if meta.get("grade") or meta.get("task"):
                gid = meta.get("grade_id")
                if gid in self.grades:
                    meta["score"], meta["points"] = self.grades[gid]
            return cell, resources

    return SetGrades


def _exporter(config, key, extra_clear: bool):
    """nbgrader's feedback exporter for this configuration, built once per worker process:
    the HTML exporter with the feedback template and the course's
    ``GenerateFeedback.preprocessors``, GetGrades replaced by SetGrades."""
    cache_key = (key, extra_clear)
    if cache_key in _EXPORTERS:
        return _EXPORTERS[cache_key]
    from nbconvert.exporters import HTMLExporter
    from nbgrader.converters.generate_feedback import GenerateFeedback
    from nbgrader.preprocessors import GetGrades
    from traitlets.config import Config

    c = Config(copy.deepcopy(dict(config)))
    base = os.path.dirname(os.path.abspath(__import__("nbgrader").__file__))
    if "template_name" not in c.HTMLExporter:
        c.HTMLExporter.template_name = "feedback"
    if "extra_template_basedirs" not in c.HTMLExporter:
        c.HTMLExporter.extra_template_basedirs = [
            os.path.join(base, "server_extensions", "formgrader", "templates")]
    # outputs are the student's: no script or active HTML in a page someone will open
    c.HTMLExporter.sanitize_html = True
    c.HTMLExporter.extra_template_paths = [
        os.path.join(base, "server_extensions", "formgrader", "static", "node_modules",
                     "bootstrap", "dist", "css")]
    classes = _preprocessor_list(config, "GenerateFeedback", "preprocessors",
                                 GenerateFeedback.class_traits()["preprocessors"].default())
    exporter = HTMLExporter(config=c)
    setter = None
    for cls in classes:
        cls = _import(cls)
        if isinstance(cls, type) and issubclass(cls, GetGrades):
            setter = _set_grades_class()(config=c)
            exporter.register_preprocessor(setter, enabled=True)
        else:
            exporter.register_preprocessor(cls)
    if extra_clear:
        from .nbgrader_ext import FeedbackWithoutHiddenTests

        exporter.register_preprocessor(FeedbackWithoutHiddenTests(config=c), enabled=True)
    _EXPORTERS[cache_key] = (exporter, setter)
    return exporter, setter


def _feedback_html(nb, resources, config, key, scores, total, max_total, hidden_lines):
    """nbgrader's feedback HTML with the grades from ``scores`` (grade_id -> (score, max)),
    checked for hidden test lines; ``(html, notes)``."""
    import html as htmlmod

    notes: list = []

    def render(extra_clear: bool):
        exporter, setter = _exporter(config, key, extra_clear)
        if setter is not None:
            setter.grades, setter.total, setter.max_total = scores, total, max_total
        page = copy.deepcopy(nb)
        sanitize_markdown_cells(page)
        body, _ = exporter.from_notebook_node(page, resources=copy.deepcopy(resources))
        return _inert_body(body)

    def leaks(text: str) -> list:
        plain = htmlmod.unescape(re.sub(r"<[^>]+>", "", text))
        return [h for h in hidden_lines if h and h in plain]

    body = render(False)
    if leaks(body):
        notes.append("feedback: hidden test lines were found after the course's preprocessors; "
                     "removed them again")
        body = render(True)
        if leaks(body):
            raise RuntimeError("feedback would reveal hidden tests; not written")
    return body, notes


def _warm_page(nb):
    """A copy of ``nb`` with the kinds of output a graded notebook shows (stdout, stderr,
    an error with ANSI colours), to render once for nothing but warming the exporter."""
    import nbformat

    page = copy.deepcopy(nb)
    code = next((c for c in page.cells if c.get("cell_type") == "code"), None)
    if code is None:
        code = nbformat.v4.new_code_cell("x = 1")
        page.cells.append(code)
    code["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text="ok\n"),
                       nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
                       _error_output("AssertionError", "warm-up")]
    return page


def _warm_exporter_during(nb, resources, config, key) -> "threading.Thread | None":
    """Start building (and rendering one page with) the feedback exporter that
    ``_feedback_html`` will use for this configuration, in a thread, unless this process
    has it already; the caller joins the thread before rendering or touching ``nb`` again
    (the page is a copy taken here)."""
    if (key, False) in _EXPORTERS:
        return None
    page = _warm_page(nb)
    res = copy.deepcopy(resources)
    scores = {}  # the page's template shows a score for every graded cell
    for cell in page.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and (meta.get("grade") or meta.get("task")):
            scores[meta.get("grade_id")] = (0.0, meta.get("points", 0.0))

    def work():
        try:
            _feedback_html(page, res, config, key, scores, 0.0, 0.0, [])
            thread.rendered = True
        except Exception:  # the real page reports its own failure
            pass

    thread = threading.Thread(target=work, name="normlab-warm-feedback", daemon=True)
    thread.rendered = False  # True once the warm-up page was rendered
    thread.start()
    return thread


def warm_up(render: bool = True) -> dict:
    """Import what grading needs and (``render``) render one page (run on each worker at
    start); say whether this worker can sandbox (a working bwrap)."""
    import nbformat
    from nbgrader.preprocessors import Execute  # noqa: F401

    from . import judge, registry  # noqa: F401
    from .sandbox import _execute_class, _kernel_classes

    _kernel_classes()
    _execute_class()
    registry.all_checks()
    from traitlets.config import Config

    if render:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        try:
            _feedback_html(nb, {"nbgrader": {"notebook": "warm"}}, Config(), "warm-up", {}, 0.0,
                           0.0, [])
        except Exception:
            pass
    return {"host": os.uname().nodename, "bwrap": _sandbox_ok()}


def prepare(bundle: Bundle, render: bool = False) -> None:
    """Write the bundle's files in this process, and (``render``) build its feedback exporter
    by rendering one page, ahead of the submissions (processes forked from this one inherit
    both)."""
    import nbformat

    env = _materialize(bundle)
    if render:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        try:
            _feedback_html(nb, {"nbgrader": {"notebook": "warm"}}, env["config"],
                           env["config_key"], {}, 0.0, 0.0, [])
        except Exception:
            pass


def _sandbox_ok() -> str | None:
    if "__bwrap__" not in _CACHE:
        _CACHE["__bwrap__"] = _sandbox.bwrap_available()
    return _CACHE["__bwrap__"]


# ----------------------------------------------------------------------------- the task
def grade_submission(task: dict, bundle: Bundle, limits: "_sandbox.Limits") -> dict:
    """Grade one submission. task: ``student``, ``assignment``, ``notebooks`` (stem ->
    repaired JSON text or None), ``missing`` (stem -> reason), ``digest``, ``key``,
    ``display_name``, ``notes``, ``timestamp``. Never raises: an internal failure is a
    failed result with the reason."""
    started = time.monotonic()
    result = {
        "student": task["student"], "assignment": task["assignment"],
        "display_name": task.get("display_name", ""), "digest": task["digest"],
        "key": task["key"], "grader_version": GRADER_VERSION, "status": "graded",
        "reason": None, "notes": list(task.get("notes", [])), "score": 0.0, "max_score": 0.0,
        "timestamp": task.get("timestamp"), "notebooks": {}, "worker": _worker_name(),
        "timings": {},
    }
    if _sandbox_ok() is None:
        result.update(status="failed", reason=f"bubblewrap (bwrap) is missing or does not work on "
                                              f"the grading worker {result['worker']}")
        _zero(result, bundle)
        return result
    try:
        env = _materialize(bundle)
    except Exception as exc:
        result.update(status="failed", reason=f"grader setup failed: {type(exc).__name__}: {exc}")
        _zero(result, bundle)
        return result
    exec_time = 0.0
    reasons = []
    files: dict = {}
    for stem in bundle.notebooks:
        text = task["notebooks"].get(stem)
        if text is None:
            reason = task.get("missing", {}).get(stem) or f"{stem}.ipynb was not submitted"
            result["notebooks"][stem] = _missing_notebook(bundle, stem, reason)
            reasons.append(reason)
            continue
        try:
            nbres = _grade_notebook(stem, text, task, bundle, env, limits)
        except Exception as exc:
            nbres = _missing_notebook(bundle, stem, f"internal grader error: {type(exc).__name__}: "
                                                    f"{_clip(exc, 300)}")
            nbres["status"] = "failed"
            nbres["traceback"] = traceback.format_exc()[-3000:]
        # every notebook runs in the same folder under nbgrader: what the last one left wins
        files.update(nbres.pop("files", None) or {})
        result["notebooks"][stem] = nbres
        exec_time += nbres.get("timings", {}).get("execute", 0.0)
        if nbres["status"] != "graded":
            reasons.append(nbres["reason"])
    result["score"] = float(sum(n["score"] for n in result["notebooks"].values()))
    result["max_score"] = float(sum(n["max_score"] for n in result["notebooks"].values()))
    statuses = {n["status"] for n in result["notebooks"].values()}
    if statuses == {"graded"}:
        result["status"] = "graded"
    elif statuses <= {"rejected"}:
        result["status"] = "rejected"
    else:
        result["status"] = "failed" if "failed" in statuses else "rejected"
    if result["status"] != "graded":
        result["reason"] = "; ".join(r for r in reasons if r)
    result["timings"] = {"total": time.monotonic() - started, "execute": exec_time}
    # the notebook's folder after grading (student's, assignment's and written files), for
    # OUT/autograded/<student>/<assignment>/ as nbgrader keeps it: relative path -> bytes
    result["files"] = {rel: data for rel, data in files.items()
                       if rel not in {f"{stem}.ipynb" for stem in bundle.notebooks}}
    return result


def _worker_name() -> str:
    if "distributed" not in sys.modules:  # not a Dask worker (and importing it takes seconds)
        return f"{os.uname().nodename} pid {os.getpid()}"
    try:
        from distributed import get_worker

        return f"{os.uname().nodename} {get_worker().address}"
    except Exception:
        return os.uname().nodename


def _zero(result, bundle):
    for stem in bundle.notebooks:
        result["notebooks"][stem] = _missing_notebook(bundle, stem, result["reason"])
    result["max_score"] = float(sum(n["max_score"] for n in result["notebooks"].values()))


def _missing_notebook(bundle: Bundle, stem: str, reason: str) -> dict:
    cells = [{"grade_id": gid, "points": float(pts), "score": 0.0 if ctype == "code" else None,
              "passed": False, "kind": "missing", "message": reason}
             for gid, pts, ctype in bundle.grade_cells.get(stem, [])]
    return {"status": "rejected", "reason": reason, "score": 0.0,
            "max_score": float(sum(c["points"] for c in cells)), "cells": cells,
            "autograded": None, "feedback": None, "notes": [], "timings": {}}


def _read_updated(text: str, notes: list):
    """The notebook, its nbgrader metadata brought to the current schema with nbgrader's own
    updater (what ``nbgrader update`` does) when a cell carries an older one."""
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator

    nb = nbformat.reads(text, as_version=4)
    current = MetadataValidator.schema_version
    old = sorted({m.get("schema_version", 0) for m in (c.metadata.get("nbgrader") for c in nb.cells)
                  if isinstance(m, dict) and isinstance(m.get("schema_version", 0), int)
                  and m.get("schema_version", 0) < current})
    if old:
        with nbgrader_warnings(notes):
            nb = MetadataValidator().upgrade_notebook_metadata(nb)
        notes.append(f"nbgrader metadata of schema version {', '.join(map(str, old))} updated to "
                     f"version {current}, as `nbgrader update` does")
    return nb


WARNED = "nbgrader warned: "  # the prefix of nbgrader's warnings in a record's notes


@contextlib.contextmanager
def nbgrader_warnings(notes: list):
    """Collect the warnings nbgrader's preprocessors log (a locked or test cell whose
    checksum changed, a deleted test cell added back, a changed cell type, points or lock)
    into ``notes``, as ``nbgrader autograde`` prints them."""
    import logging

    from traitlets import log as tlog

    me = threading.get_ident()  # one logger for the process: keep this thread's messages

    class Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING and record.thread == me and len(notes) < 200:
                try:
                    notes.append(WARNED + _clip(record.getMessage(), 500))
                except Exception:
                    pass

    handler = Collect(logging.WARNING)
    loggers = {tlog.get_logger(), logging.getLogger("traitlets")}
    saved = {lg: lg.propagate for lg in loggers}
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False  # ours to report, not the worker's stderr
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
            lg.propagate = saved[lg]


def _source_ids(env: dict, stem: str, assignment: str) -> set:
    """The grade ids of every cell the gradebook knows in this notebook (solution, test,
    task and locked cells)."""
    import sqlite3

    con = sqlite3.connect(f"file:{env['db']}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select s.name from source_cell s join notebook n on s.notebook_id = n.id "
            "join assignment a on n.assignment_id = a.id where a.name = ? and n.name = ?",
            (assignment, stem)).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def _grade_notebook(stem, text, task, bundle: Bundle, env: dict, limits) -> dict:
    import nbformat
    from nbgrader import utils

    t0 = time.monotonic()
    config = env["config"]
    notes: list = []
    nb = _read_updated(text, notes)
    resources = {"nbgrader": {"notebook": stem, "assignment": bundle.assignment,
                              "student": task["student"], "db_url": f"sqlite:///{env['db']}"},
                 "unique_key": stem, "output_files_dir": f"{stem}_files"}
    try:
        with nbgrader_warnings(notes):
            nb, resources = _sanitize(nb, resources, config)
    except Exception as exc:
        # damaged grading metadata (e.g. an invented graded cell): drop the nbgrader
        # metadata of cells the source does not have, then try once more
        known = {gid for gid, _, _ in bundle.grade_cells.get(stem, [])}
        known |= _source_ids(env, stem, bundle.assignment)
        nb = _read_updated(text, [])
        dropped = 0
        seen: set = set()
        for cell in reversed(nb.cells):  # like DeduplicateIds: the last copy wins
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if not isinstance(meta, dict) or gid not in known or gid in seen:
                del cell.metadata["nbgrader"]
                dropped += 1
            else:
                seen.add(gid)
        notes.append(f"nbgrader could not sanitize the notebook ({type(exc).__name__}: "
                     f"{_clip(exc, 200)}); removed the grading metadata of {dropped} cell(s) "
                     "with unknown or duplicated grade ids, and sanitized it again")
        try:
            with nbgrader_warnings(notes):
                nb, resources = _sanitize(nb, resources, config)
        except Exception as exc2:
            res = _missing_notebook(bundle, stem, f"the notebook's grading metadata is damaged "
                                                  f"beyond repair ({type(exc2).__name__}: {_clip(exc2, 200)})")
            res["notes"] = notes
            return res
    # nbgrader writes the sanitized notebook and reads it back before executing it
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    _unskip_grade_cells(nb, config, notes)
    t_sanitize = time.monotonic() - t0
    sb = _sandbox.SandboxFiles(student_lib=Path(env["lib"]), cases=Path(env["cases"]),
                               files={}, mask=tuple(bundle.mask),
                               env={"NORMLAB_GRADING_CASES": _sandbox.CASES})
    # the notebook's folder, copied for this run (the notebook may change it)
    run_files = Path(tempfile.mkdtemp(prefix="files-", dir=_worker_root()))
    try:
        for rel, data in home_files(task.get("files") or {}, bundle, limits, notes).items():
            (run_files / rel).parent.mkdir(parents=True, exist_ok=True)
            (run_files / rel).write_bytes(data)
            sb.files[rel] = run_files / rel
        t1 = time.monotonic()
        # the feedback exporter's first page costs about a second (imports, templates,
        # regular expressions): built meanwhile, while the kernel runs in its own process
        warm = _warm_exporter_during(nb, resources, config, env["config_key"])
        try:
            ex, nb = _execute_started(nb, sb, limits, config, notes)
        finally:
            if warm is not None:
                warm.join()
        t_exec = time.monotonic() - t1
        try:
            return _finish(stem, nb, resources, ex, bundle, env, config, notes,
                           {"sanitize": t_sanitize, "execute": t_exec}, t0)
        finally:
            ex.cleanup()
    finally:
        shutil.rmtree(run_files, ignore_errors=True)


def _never_started(ex) -> bool:
    """Whether the kernel failed before running any cell for a reason of its own (nbclient's
    "Kernel didn't respond in 60 seconds" on a loaded machine), not for a limit or a death the
    watchdog saw."""
    return ex.failure_kind == "internal" and ex.stopped_at is None and not ex.executed


def _execute_started(nb, sb, limits, config, notes):
    """``(result, executed notebook)`` of the sandboxed run of ``nb``, started a second time
    (once, on an untouched copy) when the kernel never started: that is the machine's fault,
    never the student's, and a second failure is recorded as it is."""
    fresh = copy.deepcopy(nb)
    ex = _sandbox.execute_notebook(nb, sb, limits, config=config,
                                   scratch_parent=str(_worker_root()))
    if not _never_started(ex):
        return ex, nb
    notes.append(f"the kernel did not start ({ex.failure}); started it once more")
    ex.cleanup()
    ex = _sandbox.execute_notebook(fresh, sb, limits, config=config,
                                   scratch_parent=str(_worker_root()))
    return ex, fresh


def _skip_tags(config) -> set:
    """The cell tags the execute preprocessor skips cells for (``skip_cells_with_tag`` of
    nbclient, set under any of the classes it inherits)."""
    from nbclient import NotebookClient

    tags = {NotebookClient.class_traits()["skip_cells_with_tag"].default()}
    for section in ("NotebookClient", "ExecutePreprocessor", "Execute"):
        sub = config.get(section) if hasattr(config, "get") else None
        if isinstance(sub, dict) and "skip_cells_with_tag" in sub:
            value = dict.__getitem__(sub, "skip_cells_with_tag")
            if isinstance(value, str):
                tags.add(value)
    return tags


def _unskip_grade_cells(nb, config, notes: list) -> None:
    """Remove from the graded cells the tags that make the execute preprocessor skip a cell
    (``skip-execution``): a skipped test cell has no output, no error, and nbgrader would
    count its points as earned (``nbgrader autograde`` gives a blank notebook full marks
    that way; normlab-grade runs those cells, a deliberate difference)."""
    from nbgrader import utils

    skip = _skip_tags(config)
    removed = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        if not utils.is_grade(cell) or not isinstance(tags, list) or not skip & set(map(str, tags)):
            continue
        cell.metadata["tags"] = [t for t in tags if str(t) not in skip]
        removed.append(str(cell.metadata.nbgrader.get("grade_id")))
    if removed:
        notes.append("a tag that skips execution (" + ", ".join(sorted(skip)) + ") was removed "
                     "from the graded cells " + ", ".join(_clip(r, 80) for r in removed[:20])
                     + ": they were run")


def home_files(shipped: dict, bundle: Bundle, limits, notes: list) -> dict:
    """The notebook's folder as ``nbgrader autograde`` prepares it: the files the student
    shipped (relative path -> bytes), then the assignment's own files over them, except
    those ``Autograde.exclude_overwriting[assignment]`` lists (the student's copy stays; the
    source's is not copied, as in nbgrader). Student files with unsafe paths, or beyond the
    disk limit once the source's files are in, are left out with a note."""
    excluded = (bundle.config.get("Autograde") or {}).get("exclude_overwriting") or {}
    excluded = excluded.get(bundle.assignment) if isinstance(excluded, dict) else None
    if isinstance(excluded, str):  # --Autograde.exclude_overwriting ps1=helper.py: one name
        excluded = [excluded]
    excluded = {os.path.normpath(str(x)) for x in excluded} if isinstance(excluded, (list, tuple, set)) else set()
    source = {rel: data for rel, data in bundle.files.items() if os.path.normpath(rel) not in excluded}
    budget = int(limits.disk_mb * 2**20) - 2**20 - sum(len(d) for d in source.values())
    out: dict = {}
    left, replaced = [], []
    for rel in sorted(shipped):
        data = shipped[rel]
        why = _sandbox.unsafe_relative_path(rel) if isinstance(data, bytes) else "not a file"
        if why is None and rel in source:
            replaced.append(rel)
            continue
        if why is None and len(data) > budget:
            why = f"over the {limits.disk_mb} MiB disk limit"
        if why is not None:
            left.append(f"{_clip(rel, 80)!r} ({why})")
            continue
        out[rel] = data
        budget -= len(data)
    out.update(source)
    # a file and a folder of the same name cannot both be there: the source's wins
    for rel in sorted(out):
        for parent in _parents(rel):
            if parent in out and rel in out:
                victim = rel if parent in source else parent
                del out[victim]
                left.append(f"{_clip(victim, 80)!r} (clashes with the assignment's files)")
    if replaced:
        notes.append("the assignment's own files replaced the student's copies of: "
                     + ", ".join(repr(_clip(r, 80)) for r in replaced[:10]))
    if left:
        notes.append("student files not put in the notebook's folder: " + "; ".join(left[:10]))
    return out


def _parents(rel: str) -> list:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _finish(stem, nb, resources, ex, bundle: Bundle, env, config, notes, timings, t0) -> dict:
    import nbformat
    from nbgrader import utils

    notes = list(notes) + [str(n) for n in getattr(ex, "notes", [])]  # e.g. the RLIMIT_AS fallback
    t2 = time.monotonic()
    not_run_reason = ex.failure
    failures: dict = {}
    unprotected = []
    for index, cell in enumerate(nb.cells):
        if not utils.is_grade(cell) or cell.cell_type != "code":
            continue
        gid = cell.metadata.nbgrader.get("grade_id")
        checks = bundle.cells.get(gid)
        ran = index in ex.executed
        if checks:
            why = None
            if not ran:
                why = f"the notebook stopped before this cell ({not_run_reason})" if not_run_reason \
                    else "this cell did not run"
            elif ex.stopped_at == index and not_run_reason:
                why = not_run_reason
            verdicts = _judge_cell(checks, ex.records.get(index, []), bundle.seed,
                                   env["case_cache"], why)
            fail = _rewrite_test_cell(cell, verdicts, bundle.functions)
            if fail:
                failures[gid] = fail
            for other in ex.records.get(index, []):
                m = re.match(r"^(.+)\.(visible|hidden)\.npz$", Path(other).name)
                if m and m.group(1) not in checks:
                    notes.append(f"cell {gid}: ignored a record of another check ({m.group(1)})")
        else:
            unprotected.append(gid)
            if not ran:
                cell["outputs"] = list(cell.get("outputs", [])) + [_error_output(
                    "CellNotRun", f"this cell did not run: {not_run_reason or 'the notebook stopped'}")]
    if unprotected:
        notes.append("graded from their outputs only (no registered checks): " + ", ".join(unprotected))
    if ex.timed_out_cells:
        notes.append("cells interrupted by the per-cell timeout: "
                     + ", ".join(str(i + 1) for i in ex.timed_out_cells))
    with nbgrader_warnings(notes):
        nb, resources = _post_execute(nb, resources, config)
    for cell in nb.cells:  # the course's preprocessors ran on those cells: rebuild them again
        if utils.is_grade(cell) and cell.cell_type == "code" and bundle.cells.get(
                cell.metadata.nbgrader.get("grade_id")):
            _enforce_verdict(cell, failures.get(cell.metadata.nbgrader.get("grade_id")))
    cells = []
    scores = {}
    for cell in nb.cells:
        if not utils.is_grade(cell):
            continue
        gid = cell.metadata.nbgrader["grade_id"]
        score, max_score = utils.determine_grade(cell)
        scores[gid] = (score, max_score)
        msg = None
        kind = None
        if gid in failures:
            msg, kind = failures[gid]["message"], failures[gid]["kind"]
        elif cell.cell_type == "code" and score is not None and score < max_score:
            err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
            if err is not None:
                kind = err.get("ename")
                msg = _clip(f"{err.get('ename')}: {err.get('evalue')}", 500)
            elif any(o.get("output_type") == "stream" and o.get("name") == "stderr"
                     for o in cell.get("outputs", [])):
                kind, msg = "stderr", "the cell wrote to stderr (nbgrader scores that 0)"
        cells.append({"grade_id": gid, "points": float(max_score),
                      "score": None if score is None else float(score),
                      "passed": score is not None and score >= max_score,
                      "kind": kind, "message": msg, "cell_type": cell.cell_type})
    total = float(sum(c["score"] or 0.0 for c in cells))
    max_total = float(sum(c["points"] for c in cells))
    timings["judge"] = time.monotonic() - t2
    t3 = time.monotonic()
    make_student_markdown_inert(nb, _source_ids(env, stem, bundle.assignment), notes)
    autograded = nbformat.writes(nb)
    try:
        feedback, fb_notes = _feedback_html(nb, resources, config, env["config_key"], scores,
                                            total, max_total, bundle.hidden_lines.get(stem, []))
        notes += fb_notes
    except Exception as exc:
        feedback = None
        notes.append(f"feedback not written: {type(exc).__name__}: {_clip(exc, 200)}")
    timings["feedback"] = time.monotonic() - t3
    timings["total"] = time.monotonic() - t0
    status = "graded" if ex.failure is None else "failed"
    files = {}
    for rel, path in getattr(ex, "files", {}).items():
        try:
            files[rel] = Path(path).read_bytes()
        except OSError:
            pass
    return {"status": status, "reason": ex.failure, "failure_kind": ex.failure_kind,
            "score": total, "max_score": max_total, "cells": cells, "autograded": autograded,
            "feedback": feedback, "notes": notes, "timings": timings,
            "kernel_log": ex.kernel_log[-1500:] if ex.failure else "", "files": files}
