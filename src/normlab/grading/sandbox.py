"""Run one submission's notebook in a sandbox: its own kernel, in its own bubblewrap jail,
under limits, with the notebook client outside the jail.

Layout of one run (``SandboxRun``)::

    trusted grading process (nbclient, nbgrader's Execute)          bwrap jail
      |-- connects through unix sockets in /tmp/ngk-*  <------->  ipykernel (student code,
      |                                                            PID 1 of its namespace)
      |-- moves records out of <scratch>/records after each cell   (NORMLAB_GRADING_RECORD)
      '-- watchdog thread: wall clock, disk, output; kills the jail

The jail (``bwrap --unshare-all --die-with-parent --new-session``, as an unprivileged uid):

- no network at all (a new network namespace; the kernel talks to the client over unix
  domain sockets, which need none), its own PID, IPC, UTS and cgroup namespaces;
- read-only: ``/usr`` (and the ``/lib*``, ``/bin`` links), the Python installation and the
  virtual environment, a handful of ``/etc`` files, a synthetic ``/etc/passwd``;
- normlab is replaced by the *student-side* package (``build_student_lib``): the grading
  machinery the test cells import (checks, records, cases read from files made by the
  grader, the assignments' calling protocols) and ``normlab.data``, but no reference
  implementation: every other normlab name is a stub that raises. The solutions, the
  gradebook, the course and other submissions are simply not there;
- libraries that do the graded job (torch, scikit-learn, scipy) are masked unless the
  assignment's own notebook imports them (``masked_modules``);
- writable: ``/home/student`` (the working directory, holding only the assignment's own
  files), ``/tmp`` and ``/dev/shm``, all size-limited tmpfs; ``/grading/records`` (a host
  folder, polled by the watchdog);
- limits set inside before the kernel starts: RLIMIT_AS (memory), RLIMIT_FSIZE (file size),
  RLIMIT_CPU, RLIMIT_CORE=0, RLIMIT_NPROC (only effective for a non-root grader);
- outside: a wall-clock limit for the whole notebook (kernel start included), the total
  size of outputs received (``max_output``; zmq also refuses single messages above it),
  the total size and number of files in the records folder. Any of these kills the jail.

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
    "build_student_lib",
    "masked_modules",
    "execute_notebook",
    "STUDENT_LIB_KEEP",
]

HOME = "/home/student"
RECORDS = "/grading/records"
CASES = "/grading/cases"
SANDBOX_UID = 65534
RECORD_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(visible|hidden)\.npz$")

# normlab.grading modules that the student's kernel may import; everything else in
# normlab.grading (this file, the pipeline, the CLI...) is trusted-side only.
STUDENT_LIB_KEEP = (
    "__init__.py", "checks.py", "judge.py", "records.py", "registry.py", "mistakes.py",
    "tripwire.py", "cases.py", "casefile.py", "assignments",
)
# Libraries with routines that do graded jobs (see tripwire.py).
MASKABLE = ("torch", "sklearn", "scipy")
# ... and what importing them (or normlab.data) brings along.
_NEEDS = {"sklearn": {"scipy"}, "normlab.data": {"sklearn", "scipy", "torch"}}


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. Times in seconds, sizes in MiB."""

    timeout: float = 600.0  # wall clock for the whole notebook, kernel start included
    memory_mb: int = 2048  # RLIMIT_AS of the kernel
    max_output_mb: float = 20.0  # everything the kernel sends as outputs, all cells
    disk_mb: int = 256  # each of /home/student and /tmp; records folder too
    max_records: int = 2000  # files in the records folder
    poll: float = 0.25  # watchdog period


@dataclass
class SandboxFiles:
    """Host paths a run needs, prepared by the grading process."""

    student_lib: Path  # holds normlab/ (student-side)
    cases: Path  # pre-computed cases (casefile format)
    files: dict = field(default_factory=dict)  # name in /home/student -> host file
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


# ----------------------------------------------------------------------------- student lib
_STUB_INIT = '''"""normlab as the student's kernel sees it while grading: no reference code."""
__version__ = {version!r}


def _unavailable(qualname):
    message = (qualname + " is the course's reference implementation; it is not available "
               "while grading (compute the result yourself, numpy is fine)")

    def stub(*args, **kwargs):
        raise RuntimeError(message)

    short = qualname.rsplit(".", 1)[-1]
    stub.__code__ = stub.__code__.replace(co_name=short, co_qualname=short)
    stub.__name__ = stub.__qualname__ = short
    stub.__module__ = __name__
    return stub


def __getattr__(name):
    if name.startswith("__") or name in ("grading", "data"):  # real submodules: import them
        raise AttributeError(name)
    value = _unavailable(__name__ + "." + name)
    globals()[name] = value
    return value

{names}
'''


def _stub_source(path: Path, version: str, keep: tuple = ()) -> str:
    """A stub module for the normlab module in ``path``: every top-level name it defines
    or re-exports is a stub that raises (defined up front, so that the tripwire names the
    routine, not ``__getattr__``). Found by reading the source, not by importing it."""
    import ast

    names: set = set()
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in (tree.body if tree is not None else []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        elif isinstance(node, ast.ImportFrom) and node.level:  # from .x import y
            names.update(a.asname or a.name for a in node.names if a.name != "*")
    names = sorted(n for n in names if n.isidentifier() and not n.startswith("__")
                   and n not in keep)
    lines = "\n".join(f"{n} = _unavailable(__name__ + {('.' + n)!r})" for n in names)
    return _STUB_INIT.format(version=version, names=lines)


_CASES_SHIM = '''

# ---- normlab-grade sandbox: cases come from files the grader computed ----------------
# The functions above are kept (the assignments' modules use pick_shape and shape_text);
# make_case and hidden_seed read the grader's files, because computing some cases needs
# reference code that the sandbox does not contain.
_SANDBOX_CASES = {cases!r}
_SANDBOX_SEED = {seed!r}
_real_make_case = make_case


def hidden_seed() -> int:
    return _SANDBOX_SEED


def make_case(check_id, seed=None, hidden=False):
    from . import casefile

    if seed is None:
        seed = _SANDBOX_SEED if hidden else VISIBLE_SEED
    path = casefile.case_path(_SANDBOX_CASES, check_id, bool(hidden), int(seed))
    try:
        return casefile.load_case(path)
    except FileNotFoundError:
        return _real_make_case(check_id, seed, hidden)
'''


def _normlab_dir() -> Path:
    import normlab

    return Path(normlab.__file__).resolve().parent


def build_student_lib(dest: Path, seed: int) -> Path:
    """Write the student-side ``normlab`` package into ``dest/normlab`` and return ``dest``.

    Kept: ``normlab.grading``'s modules in ``STUDENT_LIB_KEEP`` (``cases`` with a shim that
    reads pre-computed cases from ``/grading/cases``) and ``normlab.data``. Every other
    normlab module, and every name of ``normlab`` itself, is a stub that raises
    RuntimeError when called (and trips the tripwire: it lives in ``normlab``).
    """
    import normlab

    src = _normlab_dir()
    out = Path(dest) / "normlab"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # names of the package that are the kept submodules must stay importable
    (out / "__init__.py").write_text(_stub_source(src / "__init__.py", normlab.__version__,
                                                  keep=("grading", "data")))
    for entry in sorted(src.iterdir()):
        name = entry.name
        if name in ("__init__.py", "__pycache__") or name.startswith("."):
            continue
        if name == "grading":
            g = out / "grading"
            g.mkdir()
            for keep in STUDENT_LIB_KEEP:
                s = entry / keep
                if s.is_dir():
                    shutil.copytree(s, g / keep, ignore=shutil.ignore_patterns("__pycache__"))
                elif s.exists():
                    shutil.copy2(s, g / keep)
            cases = g / "cases.py"
            cases.write_text(cases.read_text() + _CASES_SHIM.format(cases=CASES, seed=int(seed)))
        elif name == "data.py":
            shutil.copy2(entry, out / name)
        elif entry.suffix == ".py":
            (out / name).write_text(_stub_source(entry, normlab.__version__))
        elif entry.is_dir() and (entry / "__init__.py").exists():
            (out / name).mkdir()
            (out / name / "__init__.py").write_text(
                _stub_source(entry / "__init__.py", normlab.__version__))
    return Path(dest)


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


def _python_binds(normlab_dir: Path) -> list[str]:
    """Read-only binds of the Python installation, the venv and other sys.path entries
    (never the folder that holds the real normlab package)."""
    roots: list[str] = []
    for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        p = os.path.realpath(p)
        if p and os.path.isdir(p) and p not in roots:
            roots.append(p)
    src_parent = str(normlab_dir.parent)
    for p in sys.path:
        if not p or not os.path.isdir(p):
            continue
        rp = os.path.realpath(p)
        if rp == src_parent or any(rp == r or rp.startswith(r + os.sep) for r in roots):
            continue
        if rp.startswith(("/usr/", "/tmp")) or rp == "/usr":
            continue
        if (Path(rp) / "normlab").exists():
            continue  # a source checkout: it holds the reference
        roots.append(rp)
    # keep only outermost roots
    roots.sort(key=len)
    outer: list[str] = []
    for r in roots:
        if not any(r == o or r.startswith(o + os.sep) for o in outer):
            outer.append(r)
    args = []
    for r in outer:
        if r == "/usr" or r.startswith("/usr/"):
            continue
        args += ["--ro-bind", r, r]
    return args


_LAUNCHER = (
    "import os, resource, sys\n"
    "def lim(r, v):\n"
    "    try:\n"
    "        resource.setrlimit(r, (v, v))\n"
    "    except (ValueError, OSError):\n"
    "        pass\n"
    "AS, FS, CPU, NPROC = (int(x) for x in sys.argv[1:5])\n"
    "lim(resource.RLIMIT_AS, AS)\n"
    "lim(resource.RLIMIT_FSIZE, FS)\n"
    "lim(resource.RLIMIT_CPU, CPU)\n"
    "lim(resource.RLIMIT_CORE, 0)\n"
    "if NPROC > 0:\n"
    "    lim(resource.RLIMIT_NPROC, NPROC)\n"
    "os.execv(sys.argv[5], sys.argv[5:])\n"
)


def _nproc_limit() -> int:
    if os.geteuid() == 0:
        return 0  # not enforced for root anyway
    try:
        mine = sum(1 for p in os.listdir("/proc") if p.isdigit()
                   and os.stat(f"/proc/{p}").st_uid == os.geteuid())
    except OSError:
        mine = 0
    return mine * 4 + 2048  # threads count too


def _short_tmp() -> str:
    """A writable folder with a short path: unix socket paths must stay under 108 bytes."""
    for d in (os.environ.get("XDG_RUNTIME_DIR"), "/tmp", "/dev/shm", "/var/tmp",
              tempfile.gettempdir()):
        if d and len(d) < 40 and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return tempfile.gettempdir()


def bwrap_command(scratch: Path, sb: SandboxFiles, limits: Limits, inner: list[str],
                  comm: Path | None = None) -> list[str]:
    """The full command line: bwrap, its mounts and environment, the limit launcher,
    then ``inner`` (the kernel command)."""
    normlab_dir = _normlab_dir()
    bwrap = shutil.which("bwrap") or "bwrap"
    disk = str(int(limits.disk_mb * 2**20))
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "grading"]
    # The writable tmpfs folders come first: bwrap mounts in order, and a later tmpfs on /tmp
    # would hide a venv or a checkout that lives under /tmp (a CI clone, say).
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(64 * 2**20), "--tmpfs", "/dev/shm",
             "--size", disk, "--tmpfs", "/tmp",
             "--size", disk, "--tmpfs", HOME]
    args += _ro_system_binds()
    args += ["--ro-bind", str(scratch / "etc" / "passwd"), "/etc/passwd",
             "--ro-bind", str(scratch / "etc" / "group"), "/etc/group"]
    args += _python_binds(normlab_dir)
    # the student-side normlab, exactly where the real one lives (editable or installed)
    args += ["--ro-bind", str(Path(sb.student_lib) / "normlab"), str(normlab_dir)]
    for name in sb.mask:
        where = _module_dir(name)
        if where:
            args += ["--ro-bind", str(scratch / "mask" / name), where]
    for name, host in sb.files.items():
        args += ["--bind", str(host), f"{HOME}/{name}"]
    args += ["--bind", str(scratch / "records"), RECORDS,
             "--ro-bind", str(sb.cases), CASES,
             "--bind", str(comm or scratch / "comm"), str(comm or scratch / "comm")]
    if (scratch / "mpl").is_dir():
        for f in (scratch / "mpl").iterdir():
            args += ["--ro-bind", str(f), f"/tmp/matplotlib/{f.name}"]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", HOME, "--clearenv"]
    env = {
        "HOME": HOME, "USER": "student", "LOGNAME": "student",
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp",
        "JPY_PARENT_PID": "1",  # the kernel's parent is the jail's init: no parent polling
        "JUPYTER_PLATFORM_DIRS": "1", "IPYTHONDIR": "/tmp/ipython",
        "MPLCONFIGDIR": "/tmp/matplotlib", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": "autograde", "NORMLAB_GRADING_RECORD": RECORDS,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    env.update(sb.env)
    for k, v in env.items():
        args += ["--setenv", k, str(v)]
    mem = int(limits.memory_mb * 2**20)
    fsize = int(limits.disk_mb * 2**20)
    cpu = int(limits.timeout + 5)
    args += ["--", sys.executable, "-I", "-S", "-c", _LAUNCHER, str(mem), str(fsize), str(cpu),
             str(_nproc_limit())]
    return args + inner


def _prepare_scratch(scratch: Path, sb: SandboxFiles) -> None:
    for d in ("comm", "records", "etc", "mask", "harvest"):
        (scratch / d).mkdir(parents=True, exist_ok=True)
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
    try:
        import matplotlib

        cache = Path(matplotlib.get_cachedir())
        fonts = sorted(cache.glob("fontlist-v*.json"))
        if fonts:
            (scratch / "mpl").mkdir(exist_ok=True)
            shutil.copy2(fonts[-1], scratch / "mpl" / fonts[-1].name)
    except Exception:
        pass
    os.chmod(scratch / "records", 0o777)
    os.chmod(scratch / "comm", 0o777)


# ----------------------------------------------------------------------------- kernel
def _kernel_classes():
    """The kernel manager and client classes (defined lazily: jupyter_client is heavy)."""
    global _KM, _KC
    if "_KM" in globals():
        return _KM, _KC
    import zmq
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager

    class SandboxKernelClient(AsyncKernelClient):
        """Refuses zmq messages larger than the output cap (a single huge output), and
        watches the IOPub connection: zmq drops such a message by disconnecting."""

        iopub_monitor = None

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
            sock.connect(url)
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
        """Starts the kernel inside bwrap; ipc transport; interrupts by message."""

        def __init__(self, *args, sandbox=None, **kwargs):
            kwargs.setdefault("client_factory", SandboxKernelClient)
            super().__init__(*args, **kwargs)
            self.sandbox = sandbox  # (scratch, SandboxFiles, Limits)
            self.max_message_bytes = None

        def format_kernel_cmd(self, extra_arguments=None):
            scratch, sb, limits, comm = self.sandbox
            inner = [sys.executable, "-m", "ipykernel_launcher", "-f",
                     os.path.realpath(self.connection_file)] + list(extra_arguments or [])
            return bwrap_command(scratch, sb, limits, inner, comm)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            scratch = self.sandbox[0]
            kw["stdin"] = subprocess.DEVNULL
            self._log_file = open(scratch / "kernel.log", "wb")
            kw["stdout"] = self._log_file
            kw["stderr"] = subprocess.STDOUT
            kw["cwd"] = str(scratch)
            kw.pop("env", None)
            kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            return await super()._async_launch_kernel(kernel_cmd, **kw)

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

        def setup_run(self, scratch: Path, limits: Limits, kill):
            self._scratch = scratch
            self._limits = limits
            self._kill = kill
            self._out_bytes = 0
            self._cap = int(limits.max_output_mb * 2**20)
            self.harvest: dict = {}
            self.executed: set = set()
            self.timed_out: list = []
            self.current_cell = None
            self.executing = False

        def _size(self, msg) -> int:
            content = msg.get("content", {})
            n = 0
            text = content.get("text")
            if isinstance(text, str):
                n += len(text)
            data = content.get("data")
            if isinstance(data, dict):
                for v in data.values():
                    n += len(v) if isinstance(v, str) else len(json.dumps(v, default=str))
            tb = content.get("traceback")
            if isinstance(tb, list):
                n += sum(len(str(t)) for t in tb)
            return n + len(str(content.get("evalue", ""))) + 64

        def output(self, outs, msg, display_id, cell_index):
            self._out_bytes += self._size(msg)
            if self._out_bytes > self._cap:
                self._kill("output", f"the notebook produced more than {self._limits.max_output_mb:g} MiB "
                                     f"of output (in cell {cell_index + 1})", cell_index)
                return None
            return super().output(outs, msg, display_id, cell_index)

        def process_message(self, msg, cell, cell_index):
            if msg.get("msg_type") == "update_display_data":
                self._out_bytes += self._size(msg)
                if self._out_bytes > self._cap:
                    self._kill("output", f"the notebook produced more than "
                                         f"{self._limits.max_output_mb:g} MiB of output "
                                         f"(in cell {cell_index + 1})", cell_index)
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
            if cell.cell_type == "code" and cell.source.strip():
                self.executed.add(index)
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                        self.timed_out.append(index)
            return cell, resources

        def _harvest(self, index):
            """Move the records written so far out of the jail's reach, as this cell's."""
            src = self._scratch / "records"
            dest = self._scratch / "harvest" / str(index)
            try:
                names = os.listdir(src)
            except OSError:
                return
            for name in names:
                if not RECORD_NAME.match(name) or name.endswith(".tmp.npz"):
                    continue
                dest.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(src / name, dest / name)
                except OSError:
                    continue
                self.harvest.setdefault(index, []).append(dest / name)

    _EXEC = SandboxedExecute
    return _EXEC


# ----------------------------------------------------------------------------- running
def _dir_usage(path: Path, limit_files: int) -> tuple[int, int]:
    total = files = 0
    stack = [str(path)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    files += 1
                    if files > limit_files:
                        return total, files
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
                    else:
                        total += st.st_blocks * 512
        except OSError:
            continue
    return total, files


def execute_notebook(nb, sb: SandboxFiles, limits: Limits, config=None,
                     scratch_parent: str | None = None, keep_scratch: bool = False) -> ExecutionResult:
    """Execute ``nb`` (a sanitized NotebookNode, modified in place) in a fresh sandbox.

    config: the course's traitlets Config (``Execute.timeout`` and friends). Never raises
    for anything the student's code does; the reason is in ``failure``.
    """
    import zmq

    KM, _ = _kernel_classes()
    Exec = _execute_class()
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=scratch_parent))
    os.chmod(scratch, 0o755)
    _prepare_scratch(scratch, sb)
    state = {"reason": None, "kind": None, "cell": None}
    lock = threading.Lock()
    # the kernel's unix sockets: a short path (at most 107 bytes), shared with the jail
    comm = Path(tempfile.mkdtemp(prefix="ngk-", dir=_short_tmp()))
    os.chmod(comm, 0o777)
    km = KM(transport="ipc", ip=str(comm / "k"), connection_file=str(comm / "kernel.json"),
            sandbox=(scratch, sb, limits, comm), kernel_name="python3")
    km.max_message_bytes = int(limits.max_output_mb * 2**20) + 2**20
    try:
        km.kernel_spec.interrupt_mode = "message"  # signals do not cross into the jail
    except Exception:
        pass

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

    ex = Exec(config=config) if config is not None else Exec()
    ex.kernel_manager_class = KM
    ex.kernel_name = "python3"
    ex.setup_run(scratch, limits, kill)
    stop = threading.Event()
    start = time.monotonic()

    def alive():
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None) if prov else None
        return proc is not None and proc.poll() is None

    def watchdog():
        from zmq.utils.monitor import recv_monitor_message

        while not stop.wait(limits.poll):
            cell = (ex.current_cell or 0) + 1
            if time.monotonic() - start > limits.timeout:
                kill("timeout", f"the notebook ran longer than the time limit of {limits.timeout:g} s "
                                f"(stopped in cell {cell})", ex.current_cell)
                return
            used, files = _dir_usage(scratch / "records", limits.max_records)
            if used > limits.disk_mb * 2**20 or files > limits.max_records:
                kill("disk", f"the notebook wrote more than {limits.disk_mb} MiB or "
                             f"{limits.max_records} files to the grading folder (in cell {cell})",
                     ex.current_cell)
                return
            try:
                if (scratch / "kernel.log").stat().st_size > 8 * 2**20:
                    kill("output", f"the kernel wrote more than 8 MiB to its own stdout/stderr "
                                   f"(in cell {cell})", ex.current_cell)
                    return
            except OSError:
                pass
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
            if name == "DeadKernelError" or "died" in str(exc).lower():
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
        log_file = getattr(km, "_log_file", None)
        if log_file is not None:
            log_file.close()
        state["reason"] = kill_reason
    failure, kind = state["reason"], state["kind"]
    if failure is None:
        for index, cell in enumerate(nb.cells):
            if any(o.get("output_type") == "error" and o.get("ename") == "MemoryError"
                   for o in cell.get("outputs", []) if cell.get("cell_type") == "code"):
                failure, kind = (f"the notebook ran out of memory (limit {limits.memory_mb} MiB): "
                                 f"MemoryError in cell {index + 1}"), "memory"
                state["cell"] = index
                break
    log = ""
    try:
        with open(scratch / "kernel.log", "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4000))
            log = fh.read().decode("utf-8", "replace")
    except OSError:
        pass
    ex._harvest(ex.current_cell if ex.current_cell is not None else -1)
    result = ExecutionResult(
        nb=nb, records=dict(ex.harvest), failure=failure, failure_kind=kind,
        stopped_at=state["cell"], executed=set(ex.executed),
        timed_out_cells=list(ex.timed_out), seconds=time.monotonic() - start, kernel_log=log)
    result.scratch = scratch
    shutil.rmtree(comm, ignore_errors=True)
    if not keep_scratch:
        result.cleanup = lambda: shutil.rmtree(scratch, ignore_errors=True)
    else:
        result.cleanup = lambda: None
    return result


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
    return f" (exit status {code}: os._exit or a crash)"
