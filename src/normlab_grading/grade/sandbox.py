"""Run one submission's notebook in a sandbox: its own kernel, in its own bubblewrap jail,
under limits, with the notebook client outside the jail.

Layout of one run (``execute_notebook``)::

    trusted grading process (nbclient, nbgrader's Execute)          bwrap jail
      |-- /bin/sh launcher: joins the memory cgroup, exec bwrap   (every process born in it)
      |-- connects to the unix sockets in the jail's /dev/shm  <->  ipykernel (student code,
      |   through /proc/self/fd/<fd of the jail's root>            PID 1 of its namespace)
      |-- counts every byte received; reads the kernel's stdout (pipe, capped)
      |-- copies records out of the jail's /dev/shm/records after each cell, then deletes them
      '-- watchdog thread: wall clock, OOM kills, a full disk; kills the jail

The jail (``bwrap --unshare-all --die-with-parent --new-session``, as an unprivileged uid):

- no network at all (a new network namespace; the kernel talks to the client over unix
  domain sockets, which need none), its own PID, IPC, UTS and cgroup namespaces;
- read-only: ``/usr`` (and the ``/lib*``, ``/bin`` links), a handful of ``/etc`` files, a
  synthetic ``/etc/passwd``, and a Python tree that is an explicit allowlist
  (``_python_tree``): the base interpreter's executable, stdlib and lib-dynload (its
  site-packages and the system's package folders hidden), the venv (masked libraries and
  every copy of the student lib's packages, or .pth files leading to one, hidden) and the
  student lib at ``/grading/lib``, first on sys.path. Never the worker's sys.path;
- libraries that do the graded job (torch, scikit-learn, scipy) are masked, every copy,
  unless the assignment's own notebook imports them (``masked_modules``);
- writable: ONE tmpfs of ``disk_mb`` at ``/dev/shm`` (``JAIL``): ``/home/student`` (the
  working directory, the assignment's own files copied in), ``/tmp`` and
  ``/grading/records`` are links into it, and the kernel's sockets live in it;
- memory: a cgroup (v2 ``memory.max`` where delegated, else v1) on the whole jail's
  resident memory; without one, RLIMIT_AS (and a note). Also RLIMIT_FSIZE, RLIMIT_CPU,
  RLIMIT_CORE=0, RLIMIT_NPROC (only effective for a non-root grader);
- outside: a wall-clock limit for the whole notebook (kernel start included), the total
  bytes received from the kernel (``max_output``; zmq also refuses single messages above
  it), the records harvested (size, number). Any of these kills the jail.

nbgrader's ``Execute`` preprocessor (with the course's configuration: per-cell timeout,
interrupts, error handling) runs the notebook; only its kernel manager, client and output
handling are replaced, so an honest notebook executes exactly as under
``nbgrader autograde``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Limits",
    "SandboxFiles",
    "ExecutionResult",
    "bwrap_available",
    "masked_modules",
    "execute_notebook",
]

JAIL = "/dev/shm"  # the jail's one writable file system (a size-limited tmpfs)
HOME = "/home/student"  # a link to JAIL/home
RECORDS = "/grading/records"  # a link to JAIL/records
CASES = "/grading/cases"
LIB = "/grading/lib"  # the student lib (read-only), first on the jail's sys.path
SANDBOX_UID = 65534
RECORD_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(visible|hidden)\.npz$")

# Libraries with routines that do graded jobs (see tripwire.py).
MASKABLE = ("torch", "sklearn", "scipy")
# ... and what importing them (or normlab.data) brings along.
_NEEDS = {"sklearn": {"scipy"}, "normlab.data": {"sklearn", "scipy", "torch"}}


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. Times in seconds, sizes in MiB."""

    timeout: float = 600.0  # wall clock for the whole notebook, kernel start included
    memory_mb: int = 2048  # resident memory of the whole jail (cgroup; else RLIMIT_AS)
    max_output_mb: float = 20.0  # every byte of every message the kernel sends, all cells
    disk_mb: int = 256  # everything the jail writes (home, /tmp, /dev/shm, records, sockets)
    max_records: int = 2000  # record files harvested
    poll: float = 0.25  # watchdog period


@dataclass
class SandboxFiles:
    """Host paths a run needs, prepared by the grading process."""

    student_lib: Path  # a folder of packages (normlab/...): the jail's only copy of them
    cases: Path  # pre-computed cases (casefile format)
    files: dict = field(default_factory=dict)  # relative path in /home/student -> host file
    mask: tuple = ()  # top-level module names to mask
    env: dict = field(default_factory=dict)  # extra environment variables


@dataclass
class ExecutionResult:
    nb: object  # the executed notebook (NotebookNode)
    records: dict  # cell index -> list of trusted paths of the records made in that cell
    failure: str | None = None  # why the run was cut short, or None
    failure_kind: str | None = None  # timeout | output | disk | kernel_died | internal
    stopped_at: int | None = None  # cell index where it stopped
    executed: set = field(default_factory=set)  # indices of code cells that completed
    timed_out_cells: list = field(default_factory=list)  # per-cell timeouts (interrupted)
    seconds: float = 0.0
    kernel_log: str = ""
    notes: list = field(default_factory=list)  # for the submission's notes
    output_bytes: int = 0  # bytes received from the kernel (all messages)
    files: dict = field(default_factory=dict)  # the home folder's files at the end: rel -> host path


def bwrap_available() -> str | None:
    """Path of a working ``bwrap``, or None."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        ok = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"],
                            capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


def _imports(source: str) -> set[str]:
    """Dotted module names imported by notebook code (magics skipped; best effort)."""
    import ast

    lines = [ln for ln in source.split("\n") if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set(re.findall(r"^\s*(?:from|import)\s+([\w.]+)", source, re.M))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def masked_modules(source_notebooks: list[str], expose: bool = False) -> tuple[str, ...]:
    """The libraries of ``MASKABLE`` that the source notebooks do not import (directly or
    through ``normlab.data``); () when ``expose``."""
    if expose:
        return ()
    needed: set[str] = set()
    for text in source_notebooks:
        try:
            nb = json.loads(text)
            code = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                             for c in nb.get("cells", []) if c.get("cell_type") == "code")
        except Exception:
            code = text
        for mod in _imports(code):
            top = mod.split(".")[0]
            needed.add(top)
            for key, extra in _NEEDS.items():
                if mod == key or mod.startswith(key + "."):
                    needed |= extra
        if "normlab.data" in code or re.search(r"from\s+normlab\s+import\s+[^\n]*\bdata\b", code):
            needed |= _NEEDS["normlab.data"]
    for key, extra in _NEEDS.items():
        if key in needed:
            needed |= extra
    return tuple(m for m in MASKABLE if m not in needed)


def _module_dir(name: str) -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


# ----------------------------------------------------------------------------- the jail
def _ro_system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf",
              "/etc/hosts", "/etc/mime.types"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    for d in ("/etc/ld.so.conf.d", "/etc/fonts", "/etc/alternatives", "/usr/share/fonts"):
        if os.path.isdir(d) and not d.startswith("/usr/"):
            args += ["--ro-bind", d, d]
    return args


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _site_dirs(prefix: str) -> list[str]:
    import sysconfig

    paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
    out = []
    for key in ("purelib", "platlib"):
        p = os.path.realpath(paths[key])
        if p not in out:
            out.append(p)
    return out


def _foreign_site_dirs(own: list[str]) -> list[str]:
    """Every other Python package folder the jail's file system would show: the base
    interpreter's site-packages, the system's dist-packages, /usr/local's. They are hidden
    (an empty folder is mounted over each), whatever is in them."""
    import glob
    import site

    found = []
    cands = list(site.getsitepackages([sys.base_prefix]))
    cands += _site_dirs(sys.base_prefix)
    for pattern in ("/usr/lib/python3*/site-packages", "/usr/lib/python3*/dist-packages",
                    "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
                    "/usr/lib64/python3*/site-packages", "/usr/local/lib64/python3*/site-packages",
                    "/usr/share/pyshared"):
        cands += glob.glob(pattern)
    for c in cands:
        rc = os.path.realpath(c)
        if os.path.isdir(rc) and rc not in own and rc not in found:
            found.append(rc)
    return found


_TREE_CACHE: dict = {}


def _folder_tree(site_dir: str) -> dict:
    """Every folder of ``site_dir`` a search for packages looks into, read once per process:
    folder -> its subfolders, in ``os.walk``'s order, as ``(name, is a symbolic link)``.
    Not looked into: symbolic links, ``*.dist-info``/``*.egg-info``, ``__pycache__``."""
    key = ("tree", site_dir)
    if key in _TREE_CACHE:
        return _TREE_CACHE[key]
    tree: dict = {}
    for root, dirs, _files in os.walk(site_dir):
        subs = []
        for d in dirs:
            subs.append((d, os.path.islink(os.path.join(root, d))))
        tree[root] = subs
        dirs[:] = [d for d, link in subs
                   if not link and not d.endswith((".dist-info", ".egg-info")) and d != "__pycache__"]
    _TREE_CACHE[key] = tree
    return tree


def _package_copies(site_dir: str, names: tuple) -> list[str]:
    """Folders (at any depth) in ``site_dir`` that are a package called one of ``names``,
    and top-level single-file modules of those names. Cached per process; the folders are
    read once (``_folder_tree``) for every tuple of names."""
    key = (site_dir, names)
    if key in _TREE_CACHE:
        return _TREE_CACHE[key]
    hits: list[str] = []
    try:
        top = os.listdir(site_dir)
    except OSError:
        top = []
    for entry in top:
        stem = entry.split(".")[0]
        if stem in names and os.path.isfile(os.path.join(site_dir, entry)) and \
                entry.endswith((".py", ".so", ".pyc", ".pyd", ".egg", ".zip")):
            hits.append(os.path.join(site_dir, entry))
    tree = _folder_tree(site_dir)
    todo = [site_dir] if site_dir in tree else []
    while todo:  # depth first, in os.walk's order
        root = todo.pop()
        keep = []
        for d, link in tree.get(root, ()):
            full = os.path.join(root, d)
            if d in names and (os.path.isfile(os.path.join(full, "__init__.py")) or root == site_dir):
                hits.append(full)  # masked whole: no need to look inside
            elif not link and not d.endswith((".dist-info", ".egg-info")) and d != "__pycache__":
                keep.append(full)
        todo.extend(reversed(keep))
    _TREE_CACHE[key] = hits
    return hits


def _pth_reaches(site_dir: str, packages: tuple) -> list[str]:
    """.pth files and editable-install finders in ``site_dir`` that would put a real copy of
    one of ``packages`` on the path (an editable install of normlab, say)."""
    hits = []
    try:
        entries = sorted(os.listdir(site_dir))
    except OSError:
        return hits
    for entry in entries:
        full = os.path.join(site_dir, entry)
        if not os.path.isfile(full):
            continue
        if entry.endswith(".pth"):
            try:
                lines = Path(full).read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith(("import ", "import\t")):
                    if any(p in line for p in packages):
                        hits.append(full)
                        break
                    continue
                d = line if os.path.isabs(line) else os.path.join(site_dir, line)
                if any(os.path.exists(os.path.join(d, p)) for p in packages):
                    hits.append(full)
                    break
        elif entry.startswith("__editable__") and any(p in entry for p in packages):
            hits.append(full)
    return hits


def _python_tree(scratch: Path, sb: SandboxFiles) -> tuple[list[str], list[str]]:
    """The jail's Python: an explicit allowlist, never the worker's sys.path.

    - the base interpreter's executable, libpython, its stdlib and lib-dynload, with its
      site-packages (and every other system package folder) hidden;
    - the venv (``pyvenv.cfg``, ``bin``, its site-packages) with the masked libraries
      replaced by a package that raises, and every copy of the student lib's packages
      (``normlab``...) or a .pth/finder leading to one replaced by an empty one;
    - the student lib at ``LIB`` (first on the jail's sys.path, through PYTHONPATH).

    Returns ``(bwrap arguments, destinations)``."""
    import sysconfig

    args: list[str] = []
    dests: list[str] = []
    empty_dir = str(scratch / "empty")
    empty_file = str(scratch / "empty.py")

    def ro(src, dest=None):
        dest = dest or src
        if not _under(dest, "/usr"):
            args.extend(["--ro-bind", src, dest])
            dests.append(dest)

    def hide(dest, is_dir):
        args.extend(["--ro-bind", empty_dir if is_dir else empty_file, dest])
        dests.append(dest)

    base = os.path.realpath(sys.base_prefix)
    prefix = os.path.realpath(sys.prefix)
    exe = os.path.realpath(sys.executable)
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    ro(exe)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    for name in {sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")}:
        if name and libdir and os.path.isfile(os.path.join(libdir, name)):
            ro(os.path.realpath(os.path.join(libdir, name)))
    ro(stdlib)
    dynload = os.path.realpath(os.path.join(stdlib, "lib-dynload"))
    if os.path.isdir(dynload) and not _under(dynload, stdlib):
        ro(dynload)
    own = _site_dirs(prefix) if prefix != base else []
    for d in _foreign_site_dirs(own):
        hide(d, True)
    if prefix != base:
        for f in ("pyvenv.cfg", "bin"):
            if os.path.exists(os.path.join(prefix, f)):
                ro(os.path.join(prefix, f))
        if not _under(os.path.realpath(os.path.join(prefix, "bin", "python")), base):
            pass
        # the venv's python: sys.executable, a link to the base interpreter (bound above)
    packages = tuple(sorted(p for p in _lib_packages(sb.student_lib)))
    for d in own:
        if not os.path.isdir(d):
            continue
        ro(d)
        covers: list[tuple[str, str]] = []  # (path in the venv, what is mounted over it)
        for hit in _package_copies(d, packages):
            covers.append((hit, empty_dir if os.path.isdir(hit) else empty_file))
        for hit in _pth_reaches(d, packages):
            covers.append((hit, empty_file))
        for name in sb.mask:
            for hit in _package_copies(d, (name,)):
                covers.append((hit, str(scratch / "mask" / name) if os.path.isdir(hit) else empty_file))
        # a copy inside a folder that is covered anyway cannot (and need not) be covered
        covers.sort(key=lambda c: len(c[0]))
        done: list[str] = []
        for hit, over in covers:
            if any(_under(hit, o) for o in done):
                continue
            done.append(hit)
            args.extend(["--ro-bind", over, hit])
            dests.append(hit)
    ro(str(Path(sb.student_lib).resolve()), LIB)
    return args, dests


def _lib_packages(student_lib) -> list[str]:
    """Top-level packages of the student lib (folders with an ``__init__.py``)."""
    lib = Path(student_lib)
    if not lib.is_dir():
        raise ValueError(f"the student lib {lib} is not a folder")
    names = sorted(p.name for p in lib.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    if not names:
        raise ValueError(f"the student lib {lib} holds no Python package (expected normlab/ ...)")
    return names


# Run inside the jail, as its first process (then it becomes the kernel): copy the
# assignment's files into the home folder, set the limits, mark the jail as ready.
_LAUNCHER = (
    "import os, resource, shutil, sys\n"
    "def lim(r, v):\n"
    "    try:\n"
    "        resource.setrlimit(r, (v, v))\n"
    "    except (ValueError, OSError):\n"
    "        pass\n"
    "AS, FS, CPU, NPROC = (int(x) for x in sys.argv[1:5])\n"
    "src = " + repr("/grading/init/files") + "\n"
    "for top, dirs, names in os.walk(src):\n"
    "    dest = os.path.join(" + repr("/dev/shm/home") + ", os.path.relpath(top, src))\n"
    "    os.makedirs(dest, exist_ok=True)\n"
    "    for name in names:\n"
    "        shutil.copyfile(os.path.join(top, name), os.path.join(dest, name))\n"
    "if os.path.isdir('/grading/mpl'):\n"  # matplotlib's font cache: no rebuild per notebook
    "    os.makedirs('/dev/shm/tmp/matplotlib', exist_ok=True)\n"
    "    for name in os.listdir('/grading/mpl'):\n"
    "        shutil.copyfile('/grading/mpl/' + name, '/dev/shm/tmp/matplotlib/' + name)\n"
    "if AS > 0:\n"
    "    lim(resource.RLIMIT_AS, AS)\n"
    "lim(resource.RLIMIT_FSIZE, FS)\n"
    "lim(resource.RLIMIT_CPU, CPU)\n"
    "lim(resource.RLIMIT_CORE, 0)\n"
    "if NPROC > 0:\n"
    "    lim(resource.RLIMIT_NPROC, NPROC)\n"
    "open(" + repr("/dev/shm/.jail-ready") + ", 'w').close()\n"
    "os.execv(sys.argv[5], sys.argv[5:])\n"
)

# The outermost launcher, on the host: joins the memory cgroup (every later process of
# the jail is born in it), opens bwrap's --info-fd, then becomes bwrap.
_CG_LAUNCHER = ('if [ -n "$1" ]; then echo $$ > "$1" || exit 125; fi; '
                'exec 3>"$2"; shift 2; exec "$@"')


def _nproc_limit() -> int:
    if os.geteuid() == 0:
        return 0  # not enforced for root anyway
    try:
        mine = sum(1 for p in os.listdir("/proc") if p.isdigit()
                   and os.stat(f"/proc/{p}").st_uid == os.geteuid())
    except OSError:
        mine = 0
    return mine * 4 + 2048  # threads count too


# ----------------------------------------------------------------------------- memory
class MemoryCgroup:
    """A memory cgroup for one jail: cgroup v2 ``memory.max`` where the memory controller
    is delegated to the grader's cgroup, else v1 ``memory.limit_in_bytes`` (in a child of
    the grader's own v1 memory cgroup). ``None`` from ``create`` when neither can be used
    (or ``NORMLAB_GRADING_CGROUP=off``)."""

    _counter = 0

    def __init__(self, path: str, version: int):
        self.path = path
        self.version = version

    @classmethod
    def parents(cls) -> list[tuple[str, int]]:
        """Where ``create`` may make this process's cgroups, in the order it tries them:
        ``(folder, cgroup version)``; empty when the sandbox uses none on this machine (no
        delegated v2 memory controller, no writable v1 memory cgroup) or
        ``NORMLAB_GRADING_CGROUP=off``."""
        if os.environ.get("NORMLAB_GRADING_CGROUP", "").lower() in ("off", "0", "no", "none"):
            return []
        found = []
        for make in (cls._v2_parent, cls._v1_parent):
            try:
                parent, version = make()
            except (OSError, ValueError):
                continue
            if parent is not None:
                found.append((parent, version))
        return found

    @classmethod
    def create(cls, limit_bytes: int) -> "MemoryCgroup | None":
        cls._counter += 1
        name = f"normlab-{os.getpid()}-{cls._counter}-{os.urandom(3).hex()}"
        for parent, version in cls.parents():
            cls._sweep(parent)
            path = os.path.join(parent, name)
            try:
                os.mkdir(path)
            except OSError:
                continue
            cg = cls(path, version)
            try:
                if version == 2:
                    cg._write("memory.max", limit_bytes)
                    for f, v in (("memory.swap.max", 0), ("memory.oom.group", 1)):
                        if os.path.exists(os.path.join(path, f)):
                            cg._write(f, v)
                else:
                    cg._write("memory.limit_in_bytes", limit_bytes)
                    if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                        cg._write("memory.memsw.limit_in_bytes", limit_bytes)
                    if os.path.exists(os.path.join(path, "memory.swappiness")):
                        try:
                            cg._write("memory.swappiness", 0)
                        except OSError:
                            pass
            except OSError:
                cg.remove()
                continue
            return cg
        return None

    @staticmethod
    def _sweep(parent: str):
        """Remove empty cgroups left by a grading process that died (killed worker)."""
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for n in names:
            m = re.match(r"^normlab-(\d+)-", n)
            if not m or int(m.group(1)) == os.getpid() or os.path.exists(f"/proc/{m.group(1)}"):
                continue
            try:
                os.rmdir(os.path.join(parent, n))  # fails (EBUSY) while a process is in it
            except OSError:
                pass

    @staticmethod
    def _self_cgroups() -> list[tuple[str, str]]:
        out = []
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, ctrls, path = line.split(":", 2)
            out.append((ctrls, path))
        return out

    @staticmethod
    def _mounts(fstype: str, option: str | None = None) -> list[str]:
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            parts, rparts = left.split(), right.split()
            if not rparts or rparts[0] != fstype:
                continue
            opts = rparts[2].split(",") if len(rparts) > 2 else []
            if option is None or option in opts:
                found.append(parts[4])
        return found

    @classmethod
    def _v2_parent(cls):
        own = next((p for c, p in cls._self_cgroups() if c == ""), None)
        if own is None:
            return None, 2
        for mnt in cls._mounts("cgroup2"):
            parent = os.path.join(mnt, own.lstrip("/"))
            ctl = os.path.join(parent, "cgroup.subtree_control")
            if os.path.isfile(ctl) and "memory" in Path(ctl).read_text().split() \
                    and os.access(parent, os.W_OK):
                return parent, 2
        return None, 2

    @classmethod
    def _v1_parent(cls):
        own = next((p for c, p in cls._self_cgroups() if "memory" in c.split(",")), None)
        if own is None:
            return None, 1
        for mnt in cls._mounts("cgroup", "memory"):
            parent = os.path.join(mnt, own.lstrip("/"))
            if os.path.isfile(os.path.join(parent, "memory.limit_in_bytes")) and \
                    os.access(parent, os.W_OK):
                return parent, 1
        return None, 1

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as fh:
            fh.write(str(value))

    @property
    def procs_file(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in Path(self.path, name).read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in Path(self.procs_file).read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self):
        if self.version == 2 and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            try:
                self._write("cgroup.kill", 1)
            except OSError:
                pass
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)

    def remove(self):
        """Kill what is left and remove the cgroup (a few retries while the kernel reaps)."""
        for _ in range(100):
            self.kill_all()
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def _memory_setup(limits: Limits, notes: list) -> "MemoryCgroup | None":
    cg = MemoryCgroup.create(int(limits.memory_mb * 2**20))
    if cg is None:
        notes.append(f"no memory cgroup could be used on this machine: the memory limit of "
                     f"{limits.memory_mb} MiB is RLIMIT_AS, per process and on address space "
                     f"(libraries that map large files, e.g. torch, may fail to load)")
    return cg


# ----------------------------------------------------------------------------- command line
def _needs_tmp_dir(dests: list[str]) -> bool:
    return any(_under(d, "/tmp") for d in dests)


def bwrap_command(scratch: Path, sb: SandboxFiles, limits: Limits, inner: list[str],
                  cgroup: "MemoryCgroup | None" = None) -> list[str]:
    """The full command line: the cgroup launcher, bwrap with its mounts and environment,
    the limit launcher, then ``inner`` (the kernel command).

    Everything the jail can write is ONE tmpfs of ``disk_mb`` mounted at ``/dev/shm``
    (``JAIL``); ``/home/student``, ``/tmp`` and ``/grading/records`` are links into it, and
    the kernel's unix sockets live in it. The trusted side reaches it through the jail's
    ``/proc/<pid>/root``."""
    bwrap = shutil.which("bwrap") or "bwrap"
    disk = str(max(1, int(limits.disk_mb * 2**20)))
    py_args, py_dests = _python_tree(scratch, sb)
    args = ["/bin/sh", "-c", _CG_LAUNCHER, "sh", cgroup.procs_file if cgroup else "",
            str(scratch / "bwrap-info.json")]
    args += [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
             "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "grading",
             "--info-fd", "3"]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", disk, "--tmpfs", JAIL]
    for d in ("home", "tmp", "records"):
        args += ["--dir", f"{JAIL}/{d}"]
    tmp_dir = _needs_tmp_dir(py_dests)
    if tmp_dir:
        # a venv or checkout under /tmp (a CI clone): /tmp is a read-only folder holding it
        args += ["--size", str(2**20), "--tmpfs", "/tmp"]
    else:
        args += ["--symlink", f"{JAIL}/tmp", "/tmp"]
    args += _ro_system_binds()
    args += ["--ro-bind", str(scratch / "etc" / "passwd"), "/etc/passwd",
             "--ro-bind", str(scratch / "etc" / "group"), "/etc/group"]
    args += py_args
    args += ["--ro-bind", str(sb.cases), CASES,
             "--ro-bind", str(scratch / "init"), "/grading/init",
             "--symlink", f"{JAIL}/records", RECORDS,
             "--symlink", f"{JAIL}/home", HOME]
    if (scratch / "mpl").is_dir():
        args += ["--ro-bind", str(scratch / "mpl"), "/grading/mpl"]
    if tmp_dir:
        args += ["--remount-ro", "/tmp"]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", JAIL + "/home", "--clearenv"]
    env = {
        "HOME": HOME, "USER": "student", "LOGNAME": "student",
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": f"{JAIL}/tmp",
        "PYTHONPATH": LIB,
        "JPY_PARENT_PID": "1",  # the kernel's parent is the jail's init: no parent polling
        "JUPYTER_PLATFORM_DIRS": "1", "IPYTHONDIR": f"{JAIL}/tmp/ipython",
        "MPLCONFIGDIR": f"{JAIL}/tmp/matplotlib", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": "autograde", "NORMLAB_GRADING_RECORD": RECORDS,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    env.update(sb.env)
    for k, v in env.items():
        args += ["--setenv", k, str(v)]
    mem = 0 if cgroup is not None else int(limits.memory_mb * 2**20)
    fsize = int(limits.disk_mb * 2**20)
    cpu = int(limits.timeout + 5)
    args += ["--", sys.executable, "-I", "-S", "-c", _LAUNCHER, str(mem), str(fsize), str(cpu),
             str(_nproc_limit())]
    return args + inner


def _prepare_scratch(scratch: Path, sb: SandboxFiles) -> None:
    for d in ("records", "etc", "mask", "harvest", "empty", "init", "init/files"):
        (scratch / d).mkdir(parents=True, exist_ok=True)
    (scratch / "empty.py").write_text("")
    (scratch / "etc" / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"student:x:{SANDBOX_UID}:{SANDBOX_UID}:student:{HOME}:/usr/sbin/nologin\n")
    (scratch / "etc" / "group").write_text(f"root:x:0:\nstudent:x:{SANDBOX_UID}:\n")
    for name in sb.mask:
        d = scratch / "mask" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "__init__.py").write_text(
            f"raise ModuleNotFoundError({name!r} ' is not available while grading this assignment "
            f"(normlab-grade leaves out libraries the assignment does not use)', name={name!r})\n")
    for name, host in sb.files.items():
        problem = unsafe_relative_path(name)
        if problem:
            raise ValueError(f"file {name!r} for the jail's home folder: {problem}")
        dest = scratch / "init" / "files" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host, dest)
    try:
        import matplotlib

        cache = Path(matplotlib.get_cachedir())
        fonts = sorted(cache.glob("fontlist-v*.json"))
        if fonts:
            (scratch / "mpl").mkdir(exist_ok=True)
            shutil.copy2(fonts[-1], scratch / "mpl" / fonts[-1].name)
    except Exception:
        pass
    for p in [scratch / "init", scratch / "init" / "files", *(scratch / "init" / "files").rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def unsafe_relative_path(rel: str) -> str | None:
    """Why ``rel`` cannot be a file's place below a folder (absolute, ``..``, empty or
    over-long components, control characters), or None when it can."""
    if not isinstance(rel, str) or not rel:
        return "an empty path"
    if rel.startswith("/") or "\\" in rel:
        return "an absolute path or a backslash"
    if len(rel.encode("utf-8", "surrogateescape")) > 1024:
        return "a path longer than 1024 bytes"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return f"a {part or 'empty'!r} path component"
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            return "a path component longer than 255 bytes"
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
            return "a control character in the name"
    return None


MAX_KEPT_FILES = 1000  # files of the home folder kept after a run (the rest: a note)
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


def _keep_home_files(home_fd: int, dest: Path, cap_bytes: int, notes: list) -> dict:
    """Copy the regular files below the jail's home folder (``home_fd``, a directory fd
    that outlives the jail) to ``dest``: at most ``cap_bytes`` in all and
    ``MAX_KEPT_FILES`` files; links, devices and FIFOs are never followed nor kept. Each
    file skipped gets a note. Returns relative path -> host path."""
    kept: dict = {}
    total = 0
    skipped: list = []

    def walk(dfd: int, rel: str, depth: int):
        nonlocal total
        try:
            names = sorted(os.listdir(dfd))
        except OSError:
            return
        for name in names:
            path = f"{rel}{name}"
            if unsafe_relative_path(path) or name in _SKIP_DIRS:
                if name not in _SKIP_DIRS:
                    skipped.append((path, "an unusable name"))
                continue
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth >= 20:
                    skipped.append((path + "/", "folders nested too deep"))
                    continue
                try:
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    walk(sub, path + "/", depth + 1)
                finally:
                    os.close(sub)
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append((path, "not a regular file (a link, FIFO or device)"))
                continue
            if len(kept) >= MAX_KEPT_FILES:
                skipped.append((path, f"more than {MAX_KEPT_FILES} files"))
                continue
            if total + st.st_size > cap_bytes:
                skipped.append((path, f"over the {cap_bytes // 2**20} MiB kept in all"))
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                out = dest / path
                out.parent.mkdir(parents=True, exist_ok=True)
                with os.fdopen(os.dup(fd), "rb") as src, open(out, "wb") as fh:
                    data = src.read(cap_bytes - total + 1)
                    if total + len(data) > cap_bytes:
                        skipped.append((path, f"over the {cap_bytes // 2**20} MiB kept in all"))
                        fh.close()
                        out.unlink()
                        continue
                    fh.write(data)
                total += len(data)
                kept[path] = out
            finally:
                os.close(fd)

    walk(home_fd, "", 0)
    if skipped:
        by_reason: dict = {}
        for path, why in skipped:
            by_reason.setdefault(why, []).append(path)
        parts = []
        for why, paths in by_reason.items():
            more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
            parts.append(f"{why}: " + ", ".join(_show_name(x) for x in paths[:5]) + more)
        notes.append("files the notebook left in its folder not kept (" + "; ".join(parts) + ")")
    return kept


def _show_name(name: str, limit: int = 120) -> str:
    text = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- the jail's root
class JailRoot:
    """A handle on a running jail's root folder, from the trusted side: a directory fd of
    ``/proc/<pid>/root`` taken once the jail is set up (the pid checked to be bwrap's
    child, so a recycled pid is never followed). Paths inside are resolved component by
    component without following links."""

    def __init__(self):
        self.fd: int | None = None
        self.home_fd: int | None = None  # the home folder: readable after the jail is gone

    def open(self, info_file: Path, bwrap_pid: int, alive, deadline: float) -> bool:
        pid = None
        while time.monotonic() < deadline and alive():
            try:
                pid = int(json.loads(info_file.read_text())["child-pid"])
                break
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.01)
        if pid is None:
            return False
        try:
            pfd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False
        try:
            with open(f"stat", "rb", opener=lambda p, f: os.open(p, f, dir_fd=pfd)) as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            if ppid != bwrap_pid:
                return False
            while time.monotonic() < deadline and alive():
                try:
                    root = os.open("root", os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
                except OSError:
                    return False
                if self._exists(root, JAIL.strip("/") + "/.jail-ready"):
                    self.fd = root
                    try:
                        self.home_fd = self._walk(root, JAIL.strip("/") + "/home")
                    except OSError:
                        self.home_fd = None
                    return True
                os.close(root)
                time.sleep(0.01)
            return False
        finally:
            os.close(pfd)

    @staticmethod
    def _walk(root: int, rel: str) -> int:
        fd = os.dup(root)
        try:
            for part in [p for p in rel.split("/") if p]:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except OSError:
            os.close(fd)
            raise
        return fd

    def _exists(self, root: int, rel: str) -> bool:
        d, _, name = rel.rpartition("/")
        try:
            fd = self._walk(root, d)
        except OSError:
            return False
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def path(self, rel: str) -> str:
        """A short path that reaches ``rel`` in the jail (for sockets: under 108 bytes)."""
        return f"/proc/self/fd/{self.fd}/{rel.lstrip('/')}"

    def dirfd(self, rel: str) -> int:
        if self.fd is None:
            raise OSError("the jail is not running")
        return self._walk(self.fd, rel)

    def free_bytes(self) -> int | None:
        if self.fd is None:
            return None
        try:
            st = os.statvfs(self.path(JAIL))
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def close(self):
        fd, self.fd = self.fd, None
        home, self.home_fd = self.home_fd, None
        for d in (fd, home):
            if d is not None:
                os.close(d)


class _LogTail(threading.Thread):
    """Reads the kernel's own stdout/stderr (a pipe): keeps the tail, counts every byte."""

    def __init__(self, fd: int, cap: int, on_over):
        super().__init__(daemon=True)
        self.fd, self.cap, self.on_over = fd, cap, on_over
        self.total = 0
        self.tail = bytearray()

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            self.tail += chunk
            del self.tail[:-8000]
            if self.total > self.cap:
                self.on_over()
        try:
            os.close(self.fd)
        except OSError:
            pass


# ----------------------------------------------------------------------------- kernel
def _kernel_classes():
    """The kernel manager and client classes (defined lazily: jupyter_client is heavy)."""
    global _KM, _KC
    if "_KM" in globals():
        return _KM, _KC
    import asyncio

    import zmq
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Type

    class CountingChannel(AsyncZMQSocketChannel):
        """Counts every byte of every message received (all frames: header, parent header,
        metadata, content, buffers), whatever its type, before it is parsed."""

        async def _recv(self, **kwargs):
            msg = await self.socket.recv_multipart(copy=True, **kwargs)
            count = getattr(self.session, "normlab_count", None)
            if count is not None and not count(sum(len(f) for f in msg)):
                return {"header": {"msg_type": "normlab_dropped"}, "msg_type": "normlab_dropped",
                        "parent_header": {}, "metadata": {}, "content": {}, "buffers": []}
            _, smsg = self.session.feed_identities(msg)
            return self.session.deserialize(smsg)

    from jupyter_client.channels import HBChannel

    def _connect_once(sock, url: str, reconnect: bool = False) -> None:
        """Connect ``sock`` to the kernel's unix socket ``url`` (``ipc://`` + its path through
        the jail's root) only if that path is a socket, not a link (the kernel makes its
        sockets before it runs any cell: waited for up to 10 s), and, unless ``reconnect``,
        never reconnect: the student's code may close a kernel socket and put a link to a
        host socket in its place, which zmq's reconnection would follow. The shell and
        control channels keep reconnecting: without a connection, a request sent on them
        (the next cell, the shutdown) would wait forever once the kernel is dead."""
        if url.startswith("ipc://"):
            path = url[len("ipc://"):]
            deadline = time.monotonic() + 10
            while True:
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    mode = None
                if mode is not None or time.monotonic() > deadline or \
                        not os.path.isdir(os.path.dirname(path)):
                    break
                time.sleep(0.02)
            if mode is not None and not stat.S_ISSOCK(mode):
                raise ConnectionError(f"the kernel's socket {os.path.basename(path)} is not a "
                                      "socket (replaced by the notebook?): not connected")
            if not reconnect:
                sock.setsockopt(zmq.RECONNECT_IVL, -1)
        sock.connect(url)

    class LimitedHBChannel(HBChannel):
        """jupyter_client's heartbeat channel, whose socket refuses any message longer than a
        heartbeat echo: it is outside the counting channels, and a kernel could otherwise
        answer a ping with gigabytes."""

        max_bytes = 4096

        def _create_socket(self):
            if self.socket is not None:
                self.poller.unregister(self.socket)
                self.socket.close()
            self.socket = self.context.socket(zmq.REQ)
            self.socket.linger = 1000
            self.socket.setsockopt(zmq.MAXMSGSIZE, self.max_bytes)
            _connect_once(self.socket, self.address)
            self.poller.register(self.socket, zmq.POLLIN)

    class SandboxKernelClient(AsyncKernelClient):
        """Counts all received bytes (``CountingChannel``), refuses zmq messages larger
        than the output cap, and watches the IOPub connection: zmq drops such a message by
        disconnecting."""

        iopub_channel_class = Type(CountingChannel)
        shell_channel_class = Type(CountingChannel)
        stdin_channel_class = Type(CountingChannel)
        control_channel_class = Type(CountingChannel)
        hb_channel_class = Type(LimitedHBChannel)
        iopub_monitor = None

        def start_channels(self, *a, **kw):
            self.session.normlab_count = getattr(self.parent, "count_bytes", None)
            return super().start_channels(*a, **kw)

        def _create_connected_socket(self, channel, identity=None):
            from jupyter_client.connect import channel_socket_types

            limit = getattr(self.parent, "max_message_bytes", None)
            url = self._make_url(channel)
            sock = self.context.socket(channel_socket_types[channel])
            sock.linger = 1000
            if limit:
                sock.setsockopt(zmq.MAXMSGSIZE, int(limit))
            if identity:
                sock.identity = identity
            if channel == "iopub":
                # a plain (not asyncio) PAIR socket, read by the watchdog thread
                addr = f"inproc://normlab-iopub-monitor-{id(sock)}"
                sock.monitor(addr, zmq.EVENT_DISCONNECTED)
                mon = zmq.Context.shadow(self.context.underlying).socket(zmq.PAIR)
                mon.connect(addr)
                self.iopub_monitor = mon
            _connect_once(sock, url, reconnect=channel in ("shell", "control"))
            return sock

        def stop_channels(self):
            mon, self.iopub_monitor = self.iopub_monitor, None
            if mon is not None:
                try:
                    mon.close(linger=0)
                except Exception:
                    pass
            super().stop_channels()

    class SandboxKernelManager(AsyncKernelManager):
        """Starts the kernel inside bwrap (in its memory cgroup); ipc transport through the
        jail's root; interrupts by message."""

        def __init__(self, *args, sandbox=None, **kwargs):
            kwargs.setdefault("client_factory", SandboxKernelClient)
            super().__init__(*args, **kwargs)
            self.sandbox = sandbox  # dict: scratch, sb, limits, cgroup, jail, on_log_over
            self.max_message_bytes = None
            self.count_bytes = None
            self.log_tail = None

        def format_kernel_cmd(self, extra_arguments=None):
            s = self.sandbox
            inner = [sys.executable, "-m", "ipykernel_launcher", "-f",
                     "/grading/init/kernel.json"] + list(extra_arguments or [])
            return bwrap_command(s["scratch"], s["sb"], s["limits"], inner, s["cgroup"])

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            s = self.sandbox
            r, w = os.pipe()
            kw["stdin"] = subprocess.DEVNULL
            kw["stdout"] = w
            kw["stderr"] = w
            kw["cwd"] = str(s["scratch"])
            kw.pop("env", None)
            kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            try:
                result = await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                os.close(w)
            self.log_tail = _LogTail(r, 8 * 2**20, s["on_log_over"])
            self.log_tail.start()
            proc = self.provisioner.process
            deadline = time.monotonic() + max(30.0, s["limits"].timeout)
            ok = await asyncio.get_running_loop().run_in_executor(
                None, s["jail"].open, s["scratch"] / "bwrap-info.json", proc.pid,
                lambda: proc.poll() is None, deadline)
            if ok:
                self.ip = s["jail"].path(JAIL + "/k")
            else:
                self.ip = str(s["scratch"] / "no-jail" / "k")  # connecting fails: kernel died
            return result

        def cleanup_ipc_files(self):  # the sockets die with the jail's file system
            pass

    globals()["_SandboxKernelClient"] = SandboxKernelClient
    _KM, _KC = SandboxKernelManager, SandboxKernelClient
    return _KM, _KC


def _execute_class():
    global _EXEC
    if "_EXEC" in globals():
        return _EXEC
    from nbgrader.preprocessors import Execute

    class SandboxedExecute(Execute):
        """nbgrader's Execute with a sandboxed kernel, an output cap and per-cell harvesting
        of the records the test cells write."""

        def setup_run(self, scratch: Path, limits: Limits, kill, jail: "JailRoot | None" = None):
            self._scratch = scratch
            self._limits = limits
            self._kill = kill
            self._jail = jail
            self._over = False
            self._harvested = 0
            self._harvested_files = 0
            self.harvest: dict = {}
            self.executed: set = set()
            self.timed_out: list = []
            self.current_cell = None
            self.executing = False

        def output_over(self):
            """Called (from the client) when the byte count passes the cap."""
            self._over = True
            cell = self.current_cell
            where = f"in cell {cell + 1}" if cell is not None else "while starting"
            self._kill("output", f"the notebook produced more than {self._limits.max_output_mb:g} "
                                 f"MiB of output ({where})", cell)

        def process_message(self, msg, cell, cell_index):
            if self._over or msg.get("msg_type") == "normlab_dropped":
                return None
            return super().process_message(msg, cell, cell_index)

        def preprocess_cell(self, cell, resources, index):
            self.current_cell = index
            self.executing = True
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
            finally:
                self.executing = False
                self._harvest(index)
                self._check_disk(index)
            # run by the kernel: nbclient returns a cell tagged skip_cells_with_tag untouched
            if cell.cell_type == "code" and cell.source.strip() and \
                    self.skip_cells_with_tag not in cell.metadata.get("tags", []):
                self.executed.add(index)
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                        self.timed_out.append(index)
            return cell, resources

        def _check_disk(self, index):
            free = self._jail.free_bytes() if self._jail is not None else None
            if free is not None and free < _FULL_SLACK:
                self._kill("disk", _disk_text(self._limits, index), index)

        def _harvest(self, index):
            """Move the records written so far out of the jail, as this cell's (copied out,
            then deleted in the jail; the total harvested is capped by the disk limit)."""
            jail = self._jail
            if jail is None or jail.fd is None:
                return
            try:
                rfd = jail.dirfd(JAIL + "/records")
            except OSError:
                return
            try:
                names = sorted(os.listdir(rfd))
                dest = self._scratch / "harvest" / str(index)
                cap = int(self._limits.disk_mb * 2**20)
                for name in names:
                    if not RECORD_NAME.match(name) or name.endswith(".tmp.npz"):
                        continue
                    try:
                        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=rfd)
                    except OSError:
                        continue
                    try:
                        st = os.fstat(fd)
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        self._harvested_files += 1
                        if self._harvested + st.st_size > cap or \
                                self._harvested_files > self._limits.max_records:
                            self._kill("disk", _disk_text(self._limits, index, records=True), index)
                            return
                        dest.mkdir(parents=True, exist_ok=True)
                        with os.fdopen(os.dup(fd), "rb") as src, open(dest / name, "wb") as out:
                            remaining = cap - self._harvested
                            data = src.read(remaining + 1)
                            if len(data) > remaining:
                                self._kill("disk", _disk_text(self._limits, index, records=True), index)
                                return
                            out.write(data)
                        self._harvested += len(data)
                        try:
                            os.unlink(name, dir_fd=rfd)
                        except OSError:
                            pass
                        self.harvest.setdefault(index, []).append(dest / name)
                    finally:
                        os.close(fd)
            finally:
                os.close(rfd)

    _EXEC = SandboxedExecute
    return _EXEC


_FULL_SLACK = 256 * 1024  # the jail's file system counts as full below this much free space


def _disk_text(limits: Limits, index, records: bool = False) -> str:
    where = f"in cell {index + 1}" if index is not None else "while starting"
    if records:
        return (f"the notebook wrote more than {limits.disk_mb} MiB or {limits.max_records} files "
                f"to the grading folder ({where})")
    return (f"the notebook wrote more than {limits.disk_mb} MiB: its disk space (home, /tmp, "
            f"/dev/shm, the grading folder together) is full ({where})")


# ----------------------------------------------------------------------------- running
_MEMORY_HINTS = ("cannot allocate memory", "failed to map segment", "out of memory",
                 "bad_alloc", "memoryerror", "errno 12")


def _memory_error_cell(nb) -> int | None:
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") != "error":
                continue
            text = f"{o.get('ename')}: {o.get('evalue')}".lower()
            if o.get("ename") == "MemoryError" or (
                    o.get("ename") in ("ImportError", "OSError", "RuntimeError")
                    and any(h in text for h in _MEMORY_HINTS)):
                return index
    return None


def _notebook_libraries(nb, sb: SandboxFiles) -> list[str]:
    """The assignment's libraries the notebook imports (of ``MASKABLE``, not masked)."""
    code = "\n".join(c.get("source", "") for c in nb.cells if c.get("cell_type") == "code")
    tops = {m.split(".")[0] for m in _imports(code)}
    return [m for m in MASKABLE if m not in sb.mask and m in tops]


_PREFLIGHT: dict = {}


def preflight(sb: SandboxFiles, limits: Limits, libraries: list[str],
              scratch_parent: str | None = None) -> str | None:
    """Can a fresh kernel in a jail with these limits import numpy and ``libraries``?
    None if so, else what went wrong (only when it is a matter of memory: the kernel was
    killed, ran out of memory, or an import failed for lack of memory). A real kernel, run
    like a notebook (its threads and arenas count under RLIMIT_AS). Cached per process."""
    import nbformat

    key = (limits.memory_mb, limits.disk_mb, tuple(libraries), tuple(sb.mask),
           os.environ.get("NORMLAB_GRADING_CGROUP", ""))
    if key in _PREFLIGHT:
        return _PREFLIGHT[key]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import numpy\n" + "".join(f"import {m}\n" for m in libraries))]
    probe = SandboxFiles(sb.student_lib, sb.cases, {}, sb.mask, dict(sb.env))
    res = execute_notebook(nb, probe, limits, scratch_parent=scratch_parent, _preflight=False)
    try:
        result = None
        if res.failure is not None and res.failure_kind == "memory":
            result = "it ran out of memory"
        elif res.failure is not None and res.failure_kind == "kernel_died":
            result = res.failure.replace("the kernel died in cell 1", "the kernel died")
        else:
            for o in nb.cells[0].get("outputs", []):
                if o.get("output_type") == "error":
                    text = f"{o.get('ename')}: {o.get('evalue')}"
                    if o.get("ename") == "MemoryError" or any(h in text.lower() for h in _MEMORY_HINTS):
                        result = text[:200]
    finally:
        res.cleanup()
    _PREFLIGHT[key] = result
    return result


def execute_notebook(nb, sb: SandboxFiles, limits: Limits, config=None,
                     scratch_parent: str | None = None, keep_scratch: bool = False,
                     _preflight: bool = True) -> ExecutionResult:
    """Execute ``nb`` (a sanitized NotebookNode, modified in place) in a fresh sandbox.

    config: the course's traitlets Config (``Execute.timeout`` and friends). Never raises
    for anything the student's code does; the reason is in ``failure``.
    """
    import zmq

    KM, _ = _kernel_classes()
    Exec = _execute_class()
    _lib_packages(sb.student_lib)  # a clear error for a bad student lib
    if not Path(sb.cases).is_dir():
        raise ValueError(f"the cases folder {sb.cases} is not a folder")
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=scratch_parent))
    os.chmod(scratch, 0o755)
    _prepare_scratch(scratch, sb)
    notes: list = []
    cgroup = _memory_setup(limits, notes)
    jail = JailRoot()
    state = {"reason": None, "kind": None, "cell": None}
    lock = threading.Lock()
    ex = Exec(config=config) if config is not None else Exec()

    def kill(kind, reason, cell=None):
        with lock:
            if state["reason"] is None:
                state.update(reason=reason, kind=kind, cell=cell)
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None) if prov else None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                try:
                    proc.kill()
                except OSError:
                    pass
        if cgroup is not None:
            cgroup.kill_all()

    def log_over():
        cell = ex.current_cell
        kill("output", f"the kernel wrote more than 8 MiB to its own stdout/stderr "
                       f"(in cell {(cell or 0) + 1})", cell)

    km = KM(transport="ipc", ip=JAIL + "/k", connection_file=str(scratch / "init" / "kernel.json"),
            sandbox={"scratch": scratch, "sb": sb, "limits": limits, "cgroup": cgroup,
                     "jail": jail, "on_log_over": log_over},
            kernel_name="python3")
    cap = int(limits.max_output_mb * 2**20)
    km.max_message_bytes = cap + 2**20
    received = [0]

    def count_bytes(n: int) -> bool:
        received[0] += n
        if received[0] > cap:
            if not ex._over:
                ex.output_over()
            return False
        return True

    km.count_bytes = count_bytes
    try:
        km.kernel_spec.interrupt_mode = "message"  # signals do not cross into the jail
    except Exception:
        pass

    ex.kernel_manager_class = KM
    ex.kernel_name = "python3"
    ex.setup_run(scratch, limits, kill, jail)
    stop = threading.Event()
    start = time.monotonic()

    def alive():
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None) if prov else None
        return proc is not None and proc.poll() is None

    def memory_text(cell):
        where = f"in cell {cell + 1}" if cell is not None else "while starting"
        return f"the notebook ran out of memory (limit {limits.memory_mb} MiB) {where}"

    def watchdog():
        from zmq.utils.monitor import recv_monitor_message

        while not stop.wait(limits.poll):
            cell = (ex.current_cell or 0) + 1
            if time.monotonic() - start > limits.timeout:
                kill("timeout", f"the notebook ran longer than the time limit of {limits.timeout:g} s "
                                f"(stopped in cell {cell})", ex.current_cell)
                return
            if cgroup is not None and cgroup.oom_kills() > 0:
                kill("memory", memory_text(ex.current_cell), ex.current_cell)
                return
            free = jail.free_bytes()
            if free is not None and free < _FULL_SLACK:
                kill("disk", _disk_text(limits, ex.current_cell), ex.current_cell)
                return
            mon = getattr(getattr(ex, "kc", None), "iopub_monitor", None)
            try:
                if mon is not None and ex.executing and mon.poll(0):
                    event = recv_monitor_message(mon)
                    if event.get("event") == zmq.EVENT_DISCONNECTED and not stop.wait(0.3) and alive():
                        kill("output", f"a single output was larger than the limit of "
                                       f"{limits.max_output_mb:g} MiB (in cell {cell})", ex.current_cell)
                        return
            except Exception:
                pass

    wd = threading.Thread(target=watchdog, daemon=True)
    wd.start()
    failure = kind = None
    resources = {"metadata": {"path": str(scratch)}}
    try:
        ex.preprocess(nb, resources, km=km)
    except Exception as exc:  # DeadKernelError, CellTimeoutError (iopub), RuntimeError...
        if state["reason"] is None:
            code = None
            prov = getattr(km, "provisioner", None)
            proc = getattr(prov, "process", None) if prov else None
            if proc is not None:
                try:
                    code = proc.wait(timeout=5)
                except Exception:
                    code = None
            where = f"in cell {ex.current_cell + 1}" if ex.current_cell is not None else "while starting"
            name = type(exc).__name__
            if cgroup is not None and cgroup.oom_kills() > 0:
                state.update(kind="memory", cell=ex.current_cell, reason=memory_text(ex.current_cell))
            elif name == "DeadKernelError" or "died" in str(exc).lower():
                detail = _exit_text(code, limits)
                state.update(kind="kernel_died", cell=ex.current_cell,
                             reason=f"the kernel died {where}{detail}")
            elif name == "CellTimeoutError":
                state.update(kind="output", cell=ex.current_cell,
                             reason=f"the kernel stopped delivering output {where} (an output "
                                    f"larger than {limits.max_output_mb:g} MiB?)")
            else:
                state.update(kind="internal", cell=ex.current_cell,
                             reason=f"execution failed {where}: {name}: {str(exc)[:300]}")
    finally:
        stop.set()
        wd.join(timeout=10)  # no late kill once the run is over
        kill_reason = state["reason"]
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None) if prov else None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except Exception:
                pass
        if cgroup is not None and state["reason"] is None and cgroup.oom_kills() > 0:
            state.update(kind="memory", reason=memory_text(ex.current_cell), cell=ex.current_cell)
            kill_reason = state["reason"]
        kept = {}
        if state["kind"] == "disk":  # a notebook that filled its disk: nothing worth shipping
            notes.append("files the notebook left in its folder not kept: it hit the disk limit")
        elif jail.home_fd is not None:  # the jail is dead; its file system is still open
            try:
                kept = _keep_home_files(jail.home_fd, scratch / "home", int(limits.disk_mb * 2**20),
                                        notes)
            except Exception as exc:  # never fail a run for the files it leaves
                notes.append(f"files the notebook left in its folder not kept "
                             f"({type(exc).__name__}: {str(exc)[:200]})")
        jail.close()
        if cgroup is not None:
            cgroup.remove()
        state["reason"] = kill_reason
    failure, kind = state["reason"], state["kind"]
    if failure is None:
        index = _memory_error_cell(nb)
        if index is not None:
            failure, kind = (f"the notebook ran out of memory (limit {limits.memory_mb} MiB): "
                             f"{_first_error(nb.cells[index])} in cell {index + 1}"), "memory"
            state["cell"] = index
    if _preflight and (kind in ("memory", "kernel_died")
                       or (kind == "internal" and state["cell"] is None)):
        libs = _notebook_libraries(nb, sb)
        if libs or state["cell"] is None or kind == "memory":
            why = preflight(sb, limits, libs, scratch_parent)
            if why is not None:
                names = ", ".join(["numpy"] + libs)
                failure, kind = (f"the memory limit of {limits.memory_mb} MiB is too small for "
                                 f"this assignment's libraries: a fresh kernel cannot import "
                                 f"{names} ({why}); grade again with a larger --memory"), "memory_limit"
    tail = km.log_tail
    if tail is not None:
        tail.join(timeout=5)
    log = bytes(tail.tail).decode("utf-8", "replace") if tail is not None else ""
    result = ExecutionResult(
        nb=nb, records=dict(ex.harvest), failure=failure, failure_kind=kind,
        stopped_at=state["cell"], executed=set(ex.executed),
        timed_out_cells=list(ex.timed_out), seconds=time.monotonic() - start, kernel_log=log,
        notes=notes, output_bytes=received[0], files=kept)
    result.scratch = scratch
    if not keep_scratch:
        result.cleanup = lambda: shutil.rmtree(scratch, ignore_errors=True)
    else:
        result.cleanup = lambda: None
    return result


def _first_error(cell) -> str:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename')}"
    return "error"


def _exit_text(code, limits: Limits) -> str:
    if code is None:
        return ""
    if code < 0 or code > 128:
        sig = -code if code < 0 else code - 128
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = ""
        if name in ("SIGKILL", "SIGABRT", "SIGSEGV", "SIGBUS"):
            hint = f"; the memory limit is {limits.memory_mb} MiB"
        if name == "SIGXCPU":
            hint = "; CPU time limit"
        return f" (killed by {name}{hint})"
    if code == 125:
        return " (it could not join its memory cgroup)"
    return f" (exit status {code}: os._exit or a crash)"
