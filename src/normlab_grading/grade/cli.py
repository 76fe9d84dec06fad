"""``normlab-grade``: autograde a folder or zip of submissions, in parallel, sandboxed.

Usage (from the course directory, the one with ``nbgrader_config.py``)::

    normlab-grade SUBMISSIONS [--assignment NAME|all] [--out DIR] [--workers N]
                  [--scheduler ADDRESS] [--timeout S] [--memory MB] [--max-output MB]
                  [--disk MB] [--seed N] [--gradebook PATH] [--force] [--retry-failed]

One process coordinates; the grading itself runs as Dask tasks, on an embedded local
cluster (``--workers N`` processes, default: the number of cores) or on a running Dask
cluster (``--scheduler tcp://host:8786``). Each task is a pure function (the submission's
notebooks in, a result out; ``pipeline.grade_submission``), so workers need no shared file
system, only the same Python environment and bubblewrap. Fewer than ``--cluster-min``
submissions (8) are graded without a cluster, by the same function in processes forked
from the coordinator (``local_pool``): a regrade of one student starts in a second.

The coordinator alone writes, as each result arrives: the autograded notebook, the
feedback HTML, nbgrader's ``submitted/<student>/<assignment>/`` folder (``submitted.py``), the
result record ``results/<assignment>/<student>.json`` (written last,
atomically: it marks the submission as done) and then the gradebook (SQLite, one writer,
one transaction per submission). A run that is interrupted and started again skips every
submission whose record matches (same submission content, same assignment and grader
version, same limits and seed), and re-syncs the gradebook from records it had not yet
written there. At the end it writes ``grades.csv``, ``summary.md``/``summary.json`` and one
score-distribution plot per assignment, and prints the counts.

nbgrader options can be given as nbgrader's own apps take them, ``--Class.trait=value`` (or
``--Class.trait value``), e.g. ``--Execute.timeout=60``,
``--Autograde.exclude_overwriting ps1=helper.py``, ``--ClearSolutions.code_stub python='# yours'``:
they apply over ``nbgrader_config.py``, also when the gradebook is built from the source.

Exit status: 0 when every submission was graded, 1 when some failed or were rejected,
2 for a usage or setup error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "find_course", "CourseNotFound"]


class CourseNotFound(LookupError):
    """No course directory where one was looked for (the message says where and what)."""


_COURSE_IS = ("a course directory holds nbgrader_config.py and its assignments' source "
              "notebooks in <source>/<assignment>/*.ipynb (<source>: the config's "
              "CourseDirectory.source_directory, default source/)")


def find_course(start: Path | None = None) -> Path:
    """The nearest directory holding nbgrader_config.py: ``start`` (default: the current
    directory) or one of its parents. Raises :class:`CourseNotFound` naming the folders
    searched, what a course is and ``--course`` when there is none (no fallback to where this
    package is installed: that is site-packages, not a course)."""
    here = Path(start or os.getcwd()).resolve()
    for d in [here, *here.parents]:
        if (d / "nbgrader_config.py").is_file():
            return d
    raise CourseNotFound(
        f"no course found: no nbgrader_config.py in {here} or any folder above it; "
        f"{_COURSE_IS}. Run from the course directory or pass --course DIR")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="normlab-grade",
        description="Autograde student notebooks: parallel (Dask), sandboxed (bubblewrap), resumable.")
    p.add_argument("submissions", help="a folder or a .zip of submissions (nbgrader, exchange, "
                                       "Canvas, Moodle, Blackboard or one folder per student)")
    p.add_argument("--assignment", "-a", default="all",
                   help="grade only this assignment (default: every assignment found)")
    p.add_argument("--course", type=Path, default=None,
                   help="the course directory (default: the nearest one with nbgrader_config.py)")
    p.add_argument("--out", "-o", type=Path, default=Path("graded"),
                   help="output folder (default: ./graded)")
    p.add_argument("--workers", "-j", type=int, default=None,
                   help="local worker processes (default: the number of cores)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="wall-clock limit per notebook in seconds, kernel start included (default 600)")
    p.add_argument("--memory", type=int, default=2048, help="memory limit per notebook, MiB (default 2048)")
    p.add_argument("--max-output", type=float, default=20.0,
                   help="limit on the output one notebook may produce, MiB (default 20)")
    p.add_argument("--disk", type=int, default=256,
                   help="limit on the files one notebook may write, MiB (default 256)")
    p.add_argument("--seed", type=int, default=None,
                   help="hidden tests' seed (default: $NORMLAB_GRADING_SEED or the built-in one)")
    p.add_argument("--gradebook", type=Path, default=None,
                   help="nbgrader gradebook to write (default: OUT/gradebook.db)")
    p.add_argument("--force", action="store_true", help="grade everything again")
    p.add_argument("--retry-failed", action="store_true",
                   help="grade again the submissions that failed last time")
    p.add_argument("--expose-libraries", action="store_true",
                   help="do not hide torch/scikit-learn/scipy from notebooks that do not import them")
    p.add_argument("--cluster-min", type=int, default=8, metavar="N",
                   help="grade on a local Dask cluster only when at least N submissions are to "
                        "be graded (default 8); fewer are graded in processes forked from this "
                        "one, with no cluster to start (same grades)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.epilog = ("nbgrader options as nbgrader's apps take them, e.g. --Execute.timeout=60 or "
                "--Autograde.exclude_overwriting ps1=helper.py, apply over nbgrader_config.py.")
    return p


_TRAIT_ARG = re.compile(r"^--([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(=.*)?$", re.S)


def split_nbgrader_options(argv: list) -> tuple[list, list]:
    """``(other arguments, nbgrader's --Class.trait[=value] arguments)``: an option without
    ``=`` takes the next argument as its value."""
    rest, traits = [], []
    i = 0
    while i < len(argv):
        m = _TRAIT_ARG.match(argv[i])
        if m and m.group(3) is None and i + 1 < len(argv):
            traits += argv[i:i + 2]
            i += 2
            continue
        (traits if m else rest).append(argv[i])
        i += 1
    return rest, traits


def nbgrader_options(traits: list, log=None):
    """The traitlets ``Config`` of nbgrader-style ``--Class.trait=value`` arguments, parsed
    as nbgrader's apps parse them (traitlets' KVArgParseConfigLoader with nbgrader's
    configurable classes). A value a known trait refuses is an error (``ValueError``, naming
    the option and the expected type); an unknown class or trait is passed on with a
    warning (the course may define its own preprocessors)."""
    from nbgrader.apps import NbGraderApp
    from traitlets import TraitError
    from traitlets.config import Config
    from traitlets.config.loader import ArgumentError, DeferredConfig, KVArgParseConfigLoader

    if not traits:
        return Config()
    for a in traits:
        m = _TRAIT_ARG.match(a)
        if a.startswith("--") and m and m.group(3) == "=":
            raise ValueError(f"{a}: no value given (expected {a}VALUE)")
    classes = list(NbGraderApp()._classes_with_config_traits())
    by_name = {c.__name__: c for c in classes}
    try:
        cfg = KVArgParseConfigLoader(argv=list(traits), classes=classes).load_config()
    except (ArgumentError, SystemExit) as exc:
        raise ValueError(f"cannot read the nbgrader options {' '.join(traits)}: {exc}") from None
    for section in list(cfg):
        cls = by_name.get(section)
        for name in list(cfg[section]):
            value = cfg[section][name]
            trait = cls.class_traits(config=True).get(name) if cls is not None else None
            if trait is None:
                if isinstance(value, DeferredConfig):
                    value = str(value)
                cfg[section][name] = value
                if log is not None:
                    what = f"class {section}" if cls is None else f"option {name} of {section}"
                    log(f"--{section}.{name}: nbgrader has no {what}; passed on as given")
                continue
            try:
                if isinstance(value, DeferredConfig):
                    value = value.get_value(trait)
                trait.validate(None, value)
            except TraitError as exc:
                raise ValueError(f"--{section}.{name}={value}: {trait.info()} expected "
                                 f"({str(exc).splitlines()[0][:200]})") from None
            except Exception:
                pass
            cfg[section][name] = value
    return cfg


# ----------------------------------------------------------------------------- helpers
# The process's current directory is shared by every thread, and it is what worker
# processes start in. nbgrader's converters (generate_assignment, in course.ensure_gradebook)
# chdir into a temporary course copy that is deleted afterwards: a worker spawned meanwhile
# would live in a deleted folder. Whatever may change the directory holds this lock, and so
# does starting the workers.
_CWD_LOCK = threading.RLock()


@contextlib.contextmanager
def _kept_cwd():
    """Run a block that may chdir (nbgrader), then return to the directory we were in."""
    with _CWD_LOCK:
        cwd = os.getcwd()
        try:
            yield
        finally:
            os.chdir(cwd)


def _stable_dir(prefix: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)


def _worker_chdir(worker=None):
    """In a worker: work in the worker's own local directory, never in an inherited one."""
    d = None
    try:
        d = worker.local_directory if worker is not None else None
    except Exception:
        d = None
    if not d:
        try:
            from distributed import get_worker

            d = get_worker().local_directory
        except Exception:
            import tempfile

            d = tempfile.gettempdir()
    os.makedirs(d, exist_ok=True)
    os.chdir(d)
    return d


def _cwd_plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class StableCwd(WorkerPlugin):
        name = "normlab-stable-cwd"

        def setup(self, worker):
            _worker_chdir(worker)
            _quiet_shutdown_heartbeat(worker)

    return StableCwd()


_HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat"


def _quiet_shutdown_heartbeat(worker) -> None:
    """In a worker: drop the traceback of a heartbeat that was on its way while the
    cluster shut down (the scheduler closed under it). Only while the worker is closing:
    a heartbeat that fails during the run is still reported."""
    import logging

    class ShutdownHeartbeat(logging.Filter):
        def filter(self, record):
            closing = str(getattr(worker, "status", "")).split(".")[-1] in (
                "closing", "closed", "closing_gracefully", "failed")
            return not (closing and _HEARTBEAT_FAILED in str(record.msg))

    logger = logging.getLogger("distributed.worker")
    if not any(type(f).__name__ == "ShutdownHeartbeat" for f in logger.filters):
        logger.addFilter(ShutdownHeartbeat())


def _stop_heartbeat(dask_worker=None) -> None:
    """In a worker, before the cluster closes: no new heartbeat to a scheduler about to go."""
    pc = getattr(dask_worker, "periodic_callbacks", {}).get("heartbeat")
    if pc is not None:
        pc.stop()


@contextlib.contextmanager
def _locked(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / ".lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise SystemExit(f"normlab-grade: another normlab-grade is writing {out}; wait for it")
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _seed(arg: int | None) -> tuple[int, str | None]:
    from .cases import DEFAULT_HIDDEN_SEED, SEED_ENV, VISIBLE_SEED, hidden_seed

    if arg is not None:
        if arg < 0 or arg == VISIBLE_SEED:
            raise SystemExit(f"normlab-grade: --seed must be a non-negative integer other than {VISIBLE_SEED}")
        return arg, None
    seed = hidden_seed()
    warn = None
    if seed == DEFAULT_HIDDEN_SEED and not os.environ.get(SEED_ENV):
        warn = (f"using the built-in hidden seed; set --seed or ${SEED_ENV} to a new value each term")
    return seed, warn


_T0 = time.monotonic()


def _phase(name: str) -> None:
    """With NORMLAB_GRADE_TIMINGS=1, print when each phase of the run starts: wall time, and
    CPU time of this process and of its finished children (less dependent on load)."""
    if os.environ.get("NORMLAB_GRADE_TIMINGS"):
        t = os.times()
        print(f"normlab-grade: [{time.monotonic() - _T0:7.2f} s, CPU {t.user + t.system:6.2f} s + "
              f"children {t.children_user + t.children_system:6.2f} s] {name}",
              file=sys.stderr, flush=True)


def _key(bundle_digest: str, sub_digest: str, limits) -> str:
    import dataclasses

    h = hashlib.sha256()
    h.update(bundle_digest.encode())
    h.update(sub_digest.encode())
    h.update(json.dumps(dataclasses.asdict(limits), sort_keys=True).encode())
    return h.hexdigest()


def _result_path(out: Path, assignment: str, student: str) -> Path:
    return out / "results" / assignment / f"{student}.json"


def _save_result(out: Path, result: dict, task: dict | None = None) -> dict:
    """Write the notebooks and the feedback, nbgrader's ``submitted/`` folder of ``task``
    (the submission as graded; ``submitted.write``), then the record (last: it marks 'done')."""
    from .report import atomic_write
    from .submitted import write as write_submitted

    a, s = result["assignment"], result["student"]
    slim = dict(result)
    slim["notes"] = list(result.get("notes") or [])
    slim["files"] = _save_files(out / "autograded" / s / a, result.get("files"),
                                {f"{stem}.ipynb" for stem in result["notebooks"]}, slim["notes"])
    slim["notebooks"] = {}
    for stem, nb in result["notebooks"].items():
        nb = dict(nb)
        ag = out / "autograded" / s / a / f"{stem}.ipynb"
        fb = out / "feedback" / s / a / f"{stem}.html"
        if nb.get("autograded"):
            atomic_write(ag, nb["autograded"])
            nb["autograded"] = str(ag.relative_to(out))
        else:
            ag.unlink(missing_ok=True)
            nb["autograded"] = None
        if nb.get("feedback"):
            atomic_write(fb, nb["feedback"])
            nb["feedback"] = str(fb.relative_to(out))
        else:
            fb.unlink(missing_ok=True)
            nb["feedback"] = None
        slim["notebooks"][stem] = nb
    if task is not None and task.get("write_submitted", True):
        write_submitted(out, s, a, task["notebooks"], task.get("files"), task.get("timestamp"))
    atomic_write(_result_path(out, a, s), json.dumps(slim, indent=1, default=str))
    return slim


def _save_failure(out: Path, result: dict, exc: BaseException) -> dict:
    """The record of a result whose files could not be saved: failed, score 0, the reason,
    no notebook (what was written of them is removed: nothing half-saved is left)."""
    from .report import atomic_write

    a, s = result["assignment"], result["student"]
    for stem in result.get("notebooks", {}):
        for f in (out / "autograded" / s / a / f"{stem}.ipynb", out / "feedback" / s / a / f"{stem}.html"):
            try:
                if f.is_file() or f.is_symlink():
                    f.unlink()
            except OSError:
                pass
    reason = f"the grading results could not be saved ({type(exc).__name__}: {str(exc)[:300]})"
    slim = {k: v for k, v in result.items() if k not in ("files", "notebooks")}
    slim.update(status="failed", reason=reason, score=0.0, files=[],
                notebooks={stem: {"status": "failed", "reason": reason, "score": 0.0,
                                  "max_score": nb.get("max_score", 0.0),
                                  "cells": [dict(c, score=0.0 if c.get("score") is not None else None,
                                                 passed=False, kind="not saved", message=reason)
                                            for c in nb.get("cells", [])],
                                  "autograded": None, "feedback": None, "notes": []}
                           for stem, nb in result.get("notebooks", {}).items()})
    try:
        atomic_write(_result_path(out, a, s), json.dumps(slim, indent=1, default=str))
    except Exception as exc2:
        slim.setdefault("notes", []).append(f"record not written: {type(exc2).__name__}: {exc2}")
    return slim


def _save_files(folder: Path, files: dict | None, notebooks: set, notes: list) -> list:
    """Write the notebook's folder as grading left it (the student's, the assignment's and
    the written files) into ``folder``, replacing what an earlier run left there; paths are
    checked again (no ``..``, no absolute path, no link followed: the folder is made fresh),
    and ``kept_files.kept_name`` leaves out or renames (with a note in ``notes``) what would
    take the grader's outputs' place, over-long names and active content.
    Returns the relative paths written."""
    import shutil

    from .kept_files import kept_name
    from .report import atomic_write
    from .sandbox import unsafe_relative_path

    if files is None:  # a result from before files were kept: leave the folder alone
        return []
    if folder.is_dir() and not folder.is_symlink():
        for p in folder.iterdir():  # everything but the notebooks, written next
            if p.name in notebooks and p.is_file() and not p.is_symlink():
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    written = []
    for rel in sorted(files):
        if rel in notebooks or unsafe_relative_path(rel) or not isinstance(files[rel], bytes):
            continue
        name, note = kept_name(rel, files, notebooks)
        if note is not None:
            notes.append(note)
        if name is None:
            continue
        dest = folder / name
        if any(p.is_symlink() or (p.exists() and not p.is_dir()) for p in
               [folder / "/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]):
            continue
        atomic_write(dest, files[rel])
        written.append(name)
    return written


def _done(out: Path, key: str, assignment: str, student: str, retry_failed: bool) -> dict | None:
    path = _result_path(out, assignment, student)
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("key") != key:
        return None
    if retry_failed and rec.get("status") == "failed":
        return None
    for nb in rec.get("notebooks", {}).values():
        for f in (nb.get("autograded"), nb.get("feedback")):
            if f and not (out / f).exists():
                return None
    return rec


def _looks_new(out: Path, sub, retry_failed: bool) -> bool:
    """A cheap guess, before the bundles exist: no record, or one for other content."""
    try:
        rec = json.loads(_result_path(out, sub.assignment, sub.student).read_text())
    except (OSError, ValueError):
        return True
    return rec.get("digest") != sub.digest() or (retry_failed and rec.get("status") == "failed")


def _synced_marker(out: Path, assignment: str, student: str) -> Path:
    return out / "results" / assignment / f".{student}.gradebook"


def _gradebook_write(db: Path, rec: dict, out: Path, config) -> None:
    """Store one result in the gradebook with nbgrader's own code (SaveAutoGrades and
    AssignLatePenalties on the autograded notebook; zero for a missing notebook), as
    ``nbgrader autograde`` would. Called by the coordinator only."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from nbgrader.utils import parse_utc

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush warnings inside nbgrader
        _gradebook_write_inner(db, rec, out, config)


def _gradebook_write_inner(db: Path, rec: dict, out: Path, config) -> None:
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from nbgrader.utils import parse_utc

    from .intake import parse_timestamp

    a, s = rec["assignment"], rec["student"]
    url = f"sqlite:///{db}"
    ts = parse_timestamp(rec["timestamp"]) if rec.get("timestamp") else None
    if rec.get("timestamp") and ts is None and not rec.get("timestamp_problem"):
        rec["timestamp_problem"] = (f"the submission time {rec['timestamp']!r} could not be read: "
                                    "lateness was NOT assessed; check it by hand")
    with Gradebook(url) as gb:
        gb.update_or_create_student(s)
        if ts is not None:
            gb.update_or_create_submission(a, s, timestamp=ts)
        else:
            gb.update_or_create_submission(a, s)
    for stem, nb in rec["notebooks"].items():
        resources = {"nbgrader": {"notebook": stem, "assignment": a, "student": s, "db_url": url}}
        if nb.get("autograded") and (out / nb["autograded"]).exists():
            node = nbformat.read(str(out / nb["autograded"]), as_version=4)
            SaveAutoGrades(config=config)(node, resources)
            AssignLatePenalties(config=config)(node, resources)
        else:
            with Gradebook(url) as gb:
                try:
                    sub = gb.find_submission_notebook(stem, a, s)
                except MissingEntry:
                    continue
                for grade in sub.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
    marker = _synced_marker(out, a, s)
    from .report import atomic_write

    atomic_write(marker, rec["key"])


def _needs_sync(out: Path, rec: dict) -> bool:
    try:
        return _synced_marker(out, rec["assignment"], rec["student"]).read_text() != rec["key"]
    except OSError:
        return True


def _failed_result(task: dict, bundle, reason: str) -> dict:
    from .pipeline import GRADER_VERSION, _missing_notebook

    nbs = {stem: dict(_missing_notebook(bundle, stem, reason), status="failed")
           for stem in bundle.notebooks}
    return {"student": task["student"], "assignment": task["assignment"],
            "display_name": task.get("display_name", ""), "digest": task["digest"],
            "key": task["key"], "grader_version": GRADER_VERSION, "status": "failed",
            "reason": reason, "notes": list(task.get("notes", [])), "score": 0.0,
            "max_score": float(sum(n["max_score"] for n in nbs.values())),
            "timestamp": task.get("timestamp"), "notebooks": nbs, "worker": None, "timings": {}}


class _SetupError(Exception):
    pass


class _Cluster:
    """The Dask client, started in a background thread as soon as the command starts (the
    workers import the grading code and render a first page while the coordinator reads
    the submissions and prepares the gradebook)."""

    def __init__(self, scheduler: str | None, n_workers: int, local_directory: str | None = None):
        self.scheduler, self.n_workers = scheduler, n_workers
        self.local_directory = local_directory
        self.client = self.cluster = self.error = None
        self._thread = threading.Thread(target=self._start, name="normlab-grade-dask", daemon=True)
        self._thread.start()

    def _start(self):
        try:
            from distributed import Client, LocalCluster

            from .pipeline import warm_up

            if self.scheduler:
                self.client = Client(self.scheduler, timeout=60)
            else:
                # workers start from a stable directory (never one nbgrader is in) and keep
                # their files in an explicit local directory
                with _CWD_LOCK:
                    self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                                processes=True, dashboard_address=None,
                                                memory_limit=0, silence_logs=logging.ERROR,
                                                local_directory=self.local_directory)
                self.client = Client(self.cluster)
            # every worker (also one restarted later) works in its own local directory
            self.client.register_plugin(_cwd_plugin())
            report = self.client.run(warm_up)
            bad = [w for w, r in report.items() if not (isinstance(r, dict) and r.get("bwrap"))]
            if bad:
                raise RuntimeError("bubblewrap (bwrap) is missing or does not work on worker(s) "
                                   + ", ".join(bad))
        except Exception as exc:  # reported when the client is needed
            self.error = exc

    def get(self):
        self._thread.join()
        if self.error is not None:
            where = f"the Dask scheduler at {self.scheduler}" if self.scheduler else "a local Dask cluster"
            raise _SetupError(f"cannot use {where}: {type(self.error).__name__}: {self.error}")
        return self.client

    def close(self):
        self._thread.join()
        if self.cluster is not None and self.client is not None and self.error is None:
            # our own workers stop their heartbeats before the scheduler goes (a remote
            # cluster's workers are not ours to touch)
            try:
                self.client.run(_stop_heartbeat, wait=True)
            except Exception:
                pass
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass
        self.client = self.cluster = None

    def close_soon(self):
        """Start closing in the background (the reports are written meanwhile)."""
        self._closer = threading.Thread(target=self.close, daemon=True)
        self._closer.start()

    def join(self):
        closer = getattr(self, "_closer", None)
        if closer is not None:
            closer.join()
        else:
            self.close()


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    if argv is None:  # the normlab-grade program itself: it ends as soon as it is done
        _end_process(_main(sys.argv[1:]))
    return _main(argv)


def _end_process(code: int) -> None:
    """End this process with ``code`` as a normal exit would (non-daemon threads joined,
    ``atexit`` functions run: temporary folders removed, logs flushed; output flushed), but
    without the interpreter's teardown of every module and object it holds, which takes
    0.3-1 s after grading (over a thousand modules)."""
    import atexit

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main(argv) -> int:
    argv = list(argv)
    if argv[:1] == ["export"]:  # normlab-grade export ...: grades for an LMS (export.py)
        from .export import main as export_main

        return export_main(argv[1:])
    argv, traits = split_nbgrader_options(argv)
    args = _parser().parse_args(argv)
    from . import pipeline  # noqa: F401  (first: it keeps a slow import out, see there)
    from . import course as course_mod
    from .intake import MAX_SHIPPED_BYTES, UnsafeArchive, collect
    from .sandbox import Limits, bwrap_available
    from .submitted import SUBMITTED, input_is_collected, older_than_collected
    from .submitted import ensure as ensure_submitted

    log = lambda msg: print(f"normlab-grade: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        overrides = nbgrader_options(traits, log)
    except ValueError as exc:
        log(str(exc))
        return 2
    if args.course is not None and not (args.course / "nbgrader_config.py").is_file():
        log(f"--course {args.course.resolve()}: no nbgrader_config.py there; {_COURSE_IS}")
        return 2
    try:
        root = args.course.resolve() if args.course is not None else find_course()
    except CourseNotFound as exc:
        log(str(exc))
        return 2
    if not args.scheduler and bwrap_available() is None:
        log("bubblewrap (bwrap) is missing or does not work here; install it "
            "(Debian: apt-get install bubblewrap, or `make system-deps`)")
        return 2
    out = args.out.resolve()
    limits = Limits(timeout=args.timeout, memory_mb=args.memory, max_output_mb=args.max_output,
                    disk_mb=args.disk)
    seed, warn = _seed(args.seed)
    if warn:
        log(warn)
    course = course_mod.Course(root, overrides)
    names = course.assignments()
    only = None if args.assignment in (None, "all") else args.assignment
    if only and only not in names:
        log(f"unknown assignment {only!r}; the course has: {', '.join(names)}")
        return 2
    started = time.monotonic()
    n_workers = max(1, args.workers or os.cpu_count() or 1)
    with _locked(out), contextlib.ExitStack() as stack:
        cluster = None

        def start_cluster():
            import shutil

            scratch = _stable_dir("normlab-grade-dask-")
            stack.callback(shutil.rmtree, scratch, True)
            c = _Cluster(args.scheduler, n_workers, scratch)
            stack.callback(c.join)
            return c

        specs = {a: course.spec(a) for a in names}
        try:
            _phase("intake")
            intake = collect(args.submissions, specs, only,
                             max_shipped_bytes=min(int(args.disk * 2**20), MAX_SHIPPED_BYTES))
        except (UnsafeArchive, FileNotFoundError) as exc:
            from .report import for_terminal
            log(for_terminal(str(exc)))
            return 2
        rejections = [dict(path=r.path, reason=r.reason, student=r.student, assignment=r.assignment)
                      for r in intake.rejections]
        assignments = sorted({s.assignment for s in intake.submissions})
        db = (args.gradebook.resolve() if args.gradebook else out / "gradebook.db")
        _phase("gradebook")
        # before any worker starts: nbgrader's generate_assignment changes the directory
        # (fast when the gradebook already holds the assignment)
        for a in assignments:
            with _kept_cwd():
                course_mod.ensure_gradebook(course, a, db)
        n_new = len(intake.submissions) if args.force else \
            sum(_looks_new(out, sub, args.retry_failed) for sub in intake.submissions)
        if n_new and (args.scheduler or n_new >= args.cluster_min):
            cluster = start_cluster()  # workers warm up while the coordinator prepares
        bundles = {}
        _phase("bundles")
        for a in assignments:
            with _kept_cwd():
                bundles[a] = course_mod.build_bundle(course, a, db, seed, args.expose_libraries)
        # plan: what is done already, what is left
        tasks, skipped = [], []
        own_input = input_is_collected(out, args.submissions)
        if own_input:
            log(f"the submissions are read from {out / SUBMITTED}: that folder is left as it is")
        for sub in intake.submissions:
            older = None if own_input else \
                older_than_collected(out, sub.student, sub.assignment, sub.timestamp)
            if older:  # also with --force: the newer submission stays graded
                rejections.append(dict(path=(sub.origin or [f"{sub.student}/{sub.assignment}"])[0],
                                       reason=older, student=sub.student, assignment=sub.assignment))
                continue
            b = bundles[sub.assignment]
            key = _key(b.digest, sub.digest(), limits)
            rec = None if args.force else _done(out, key, sub.assignment, sub.student, args.retry_failed)
            if rec is not None:
                skipped.append(rec)
                try:  # nbgrader's submitted/ folder, when an older normlab-grade wrote none
                    if not own_input:
                        ensure_submitted(out, sub)
                except OSError as exc:
                    log(f"{SUBMITTED}/{sub.student}/{sub.assignment} not written: {exc}")
                continue
            tasks.append({"student": sub.student, "assignment": sub.assignment,
                          "display_name": sub.display_name, "notebooks": sub.notebooks,
                          "missing": sub.missing, "digest": sub.digest(), "key": key,
                          "notes": sub.notes, "timestamp": sub.timestamp,
                          "timestamp_problem": sub.timestamp_problem, "files": sub.files,
                          "write_submitted": not own_input})
        for rec in skipped:  # records a previous run saved but did not put in the gradebook
            if _needs_sync(out, rec):
                with _kept_cwd():
                    _gradebook_write(db, rec, out, course.config)
        results = []
        interrupted = False
        if tasks:
            local = not args.scheduler and len(tasks) < args.cluster_min
            if local and cluster is not None:  # fewer left than it looked: no cluster needed
                cluster.close_soon()
                cluster = None
            elif not local and cluster is None:
                cluster = start_cluster()
            try:
                _phase("grading")
                results = _run(args, cluster, tasks, bundles, limits, out, db, course.config)
            except KeyboardInterrupt:
                interrupted = True
            except _SetupError as exc:
                from .report import for_terminal
                log(for_terminal(str(exc)))
                return 2
        if cluster is not None:
            cluster.close_soon()
        from .report import write_reports

        every = sorted(set(names) & {p.name for p in (out / "results").iterdir()}) \
            if (out / "results").is_dir() else []
        from .report import atomic_write

        atomic_write(out / "rejected.json", json.dumps(rejections, indent=1))
        _phase("reports")
        write_reports(out, every, rejections, intake.notes)
        _phase("waiting for the cluster to close")
    _phase("done")
    _final_count(results, skipped, rejections, log, time.monotonic() - started, interrupted, out,
                 intake.notes)
    if interrupted:
        return 130
    bad = [r for r in results if r["status"] != "graded"] or rejections
    return 1 if bad else 0


def _interleaved(tasks: list) -> list:
    """The tasks, assignments taking turns (every assignment's first results come early)."""
    by_assignment: dict = {}
    for t in tasks:
        by_assignment.setdefault(t["assignment"], []).append(t)
    queues = list(by_assignment.values())
    return [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]


def _on_cluster(cluster, tasks, bundles, limits):
    """``(task, result, None)`` or ``(task, None, reason)`` as the Dask tasks finish."""
    from distributed import as_completed

    from .pipeline import grade_submission

    client = cluster.get()
    _phase("cluster ready")
    shipped = {a: client.scatter(b, broadcast=True, hash=False) for a, b in bundles.items()}
    futures = {}
    for t in tasks:
        f = client.submit(grade_submission, t, shipped[t["assignment"]], limits, pure=False,
                          key=f"grade-{t['assignment']}-{t['student']}-{t['key'][:10]}")
        futures[f.key] = (f, t)
    for fut in as_completed([f for f, _ in futures.values()]):
        _, task = futures[fut.key]
        try:
            yield task, fut.result(), None
        except Exception as exc:  # KilledWorker, a worker without bwrap, ...
            name = type(exc).__name__
            yield task, None, (f"the grading worker died while grading this submission ({name})"
                               if name == "KilledWorker" else f"grading task failed: {name}: {exc}")
        fut.release()


def _preload_reports() -> None:
    """Import what the reports need (matplotlib), while the first submissions are graded."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot  # noqa: F401


def _warm_gradebook_write(task: dict, bundle, config) -> None:
    """Store a made-up result of ``task``'s notebook (as submitted) in a throwaway copy of
    the gradebook (the bundle's snapshot) with ``_gradebook_write``: the first write in a
    process does about 0.8 s of one-off work (nbformat's schema validator, SQLAlchemy's
    statements), here while the first submissions are graded. The gradebook is not touched."""
    import shutil
    import tempfile

    stem = next((s for s in bundle.notebooks if task["notebooks"].get(s)), None)
    if stem is None:
        return
    tmp = Path(tempfile.mkdtemp(prefix="normlab-grade-warm-"))
    try:
        (tmp / "gradebook.db").write_bytes(bundle.gradebook)
        (tmp / "warm.ipynb").write_text(task["notebooks"][stem], encoding="utf-8")
        _gradebook_write(tmp / "gradebook.db", {
            "assignment": bundle.assignment, "student": "normlab-warm-up", "key": "warm-up",
            "timestamp": task.get("timestamp"), "notebooks": {stem: {"autograded": "warm.ipynb"}}},
            tmp, config)
    except Exception:  # only a warm-up
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, cluster, tasks, bundles, limits, out, db, config) -> list:
    """Grade ``tasks`` on ``cluster``, or in forked processes when it is None; save each
    result and write it to the gradebook as it arrives."""
    results = []
    show = not args.quiet
    bar = None
    if show:
        import tqdm

        tqdm.tqdm.monitor_interval = 0  # no monitor thread in a process that forks
        bar = tqdm.tqdm(total=len(tasks), unit="notebook", desc="grading", file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.5)
    order = _interleaved(tasks)
    if cluster is None:
        from .local_pool import graded

        n = max(1, args.workers or os.cpu_count() or 1)
        def while_waiting():
            _warm_gradebook_write(order[0], bundles[order[0]["assignment"]], config)
            _preload_reports()

        finished = graded(order, bundles, limits, n, while_waiting=while_waiting)
    else:
        finished = _on_cluster(cluster, order, bundles, limits)
    failed = 0
    with contextlib.closing(finished):
        for task, res, reason in finished:
            if res is None:
                res = _failed_result(task, bundles[task["assignment"]], reason)
            _record(res, task, out, db, config, results)
            if results[-1]["status"] != "graded":
                failed += 1
            if bar is not None:
                bar.set_postfix_str(f"failed {failed}", refresh=False)
                bar.update(1)
    if bar is not None:
        bar.close()
    _phase("last result")
    return results


def _record(res, task, out, db, config, results) -> None:
    """Save one result (files, then the record, then the gradebook) and append it."""
    res["timestamp_problem"] = task.get("timestamp_problem")
    if not results:
        _phase("first result")
    try:
        rec = _save_result(out, res, task)
    except Exception as exc:  # one student's files that cannot be written stop only that student
        rec = _save_failure(out, res, exc)
    try:
        with _kept_cwd():
            _gradebook_write(db, rec, out, config)
    except Exception as exc:
        rec.setdefault("notes", []).append(f"gradebook not updated: {type(exc).__name__}: {exc}")
    results.append(rec)


def _final_count(results, skipped, rejections, log, seconds, interrupted, out, notes=()) -> None:
    from .report import for_terminal as t

    graded = [r for r in results if r["status"] == "graded"]
    failed = [r for r in results if r["status"] != "graded"]
    lines = [f"{len(results) + len(skipped)} submission(s) in {seconds:.1f} s: graded {len(graded)}, "
             f"failed {len(failed) + len(rejections)}, skipped {len(skipped)} (already graded)"]
    for r in failed:
        lines.append(f"  failed: {t(r['student'])} / {t(r['assignment'])} ({t(r['status'])}, score "
                     f"{r['score']:g}/{r['max_score']:g}): {t(r.get('reason'))}")
    for r in rejections:
        lines.append(f"  failed: {t(r['path'])}: {t(r['reason'])}")
    for r in [*results, *skipped]:
        if r.get("timestamp_problem"):
            lines.append(f"  lateness not assessed: {t(r['student'])} / {t(r['assignment'])}: "
                         f"{t(r['timestamp_problem'])}")
    for n in notes:
        if n.startswith("student id collision"):
            lines.append(f"  {t(n)}")
    from .pipeline import WARNED

    for r in results:  # nbgrader's warnings (edited test or locked cells...), as it prints them
        for stem, nb in sorted(r.get("notebooks", {}).items()):
            warned = [n[len(WARNED):] for n in nb.get("notes", []) if n.startswith(WARNED)]
            for w in dict.fromkeys(warned):
                times = f" ({warned.count(w)} times)" if warned.count(w) > 1 else ""
                lines.append(f"  nbgrader warning: {t(r['student'])} / {t(r['assignment'])} / "
                             f"{t(stem)}: {t(w)}{times}")
    if interrupted:
        lines.append("interrupted: run the same command again to grade what is left")
    lines.append(f"outputs in {out} (grades.csv, summary.md, autograded/, feedback/)")
    for line in lines:
        log(line)


if __name__ == "__main__":
    sys.exit(main())
