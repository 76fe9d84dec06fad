"""The sandbox's memory cgroups (sandbox.MemoryCgroup) on a fake cgroup root in tmp_path:
where they are made, the sweep of those a dead grader left, and their removal. These run on
any machine, also one where the sandbox uses no cgroup (then the end-to-end check in
test_grading_jail_attacks.py::test_cgroups_are_removed has nothing to find). A real cgroup
folder holds only kernel files, which do not keep rmdir from removing it; a folder here
holding a file stands for one the kernel refuses to remove (a process still in it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from normlab_grading.grade.sandbox import MemoryCgroup


def _dead_pid() -> int:
    """The pid of a process that has ended (and is not reused by another one now)."""
    while True:
        p = subprocess.Popen(["true"])
        p.wait()
        if not Path(f"/proc/{p.pid}").exists():
            return p.pid


@pytest.fixture
def sleeper():
    p = subprocess.Popen(["sleep", "60"])
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


@pytest.fixture
def fake_v1(tmp_path, monkeypatch):
    """The grader's cgroup is tmp_path (a writable v1 memory cgroup; no delegated v2 one)."""
    monkeypatch.delenv("NORMLAB_GRADING_CGROUP", raising=False)
    monkeypatch.setattr(MemoryCgroup, "_v2_parent", classmethod(lambda cls: (None, 2)))
    monkeypatch.setattr(MemoryCgroup, "_v1_parent", classmethod(lambda cls: (str(tmp_path), 1)))
    return tmp_path


def test_the_sweep_removes_only_the_empty_cgroups_of_dead_graders(tmp_path, sleeper):
    dead = _dead_pid()
    gone = tmp_path / f"normlab-{dead}-1-aaaaaa"
    busy = tmp_path / f"normlab-{dead}-2-bbbbbb"  # rmdir refused, as for a cgroup in use
    running = tmp_path / f"normlab-{sleeper.pid}-1-cccccc"
    mine = tmp_path / f"normlab-{os.getpid()}-1-dddddd"
    other = tmp_path / f"other-{dead}-1-eeeeee"
    for d in (gone, busy, running, mine, other):
        d.mkdir()
    (busy / "cgroup.procs").write_text("")
    MemoryCgroup._sweep(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        d.name for d in (busy, running, mine, other))


def test_create_sweeps_then_makes_its_cgroup_with_the_limit(fake_v1):
    left = fake_v1 / f"normlab-{_dead_pid()}-1-aaaaaa"
    left.mkdir()
    cg = MemoryCgroup.create(3 * 2**20)
    assert cg is not None and cg.version == 1
    path = Path(cg.path)
    assert path.parent == fake_v1 and path.name.startswith(f"normlab-{os.getpid()}-")
    assert (path / "memory.limit_in_bytes").read_text() == str(3 * 2**20)
    assert not left.exists()
    assert cg.procs_file == str(path / "cgroup.procs")


def test_remove_kills_every_process_listed_and_removes_the_folder(tmp_path, sleeper):
    path = tmp_path / "normlab-1-1-aaaaaa"
    path.mkdir()
    cg = MemoryCgroup(str(path), 1)
    (path / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    assert cg.pids() == [sleeper.pid]
    cg.kill_all()
    assert sleeper.wait(timeout=10) == -9
    (path / "cgroup.procs").unlink()  # the kernel empties it when the last process is reaped
    cg.remove()
    assert not path.exists()
    cg.remove()  # already gone: nothing to do, no error


def test_no_cgroup_when_there_is_nowhere_to_make_one_or_it_is_switched_off(fake_v1, monkeypatch):
    assert MemoryCgroup.parents() == [(str(fake_v1), 1)]
    monkeypatch.setenv("NORMLAB_GRADING_CGROUP", "off")
    assert MemoryCgroup.parents() == [] and MemoryCgroup.create(2**20) is None
    monkeypatch.delenv("NORMLAB_GRADING_CGROUP")
    monkeypatch.setattr(MemoryCgroup, "_v1_parent", classmethod(lambda cls: (None, 1)))
    assert MemoryCgroup.parents() == [] and MemoryCgroup.create(2**20) is None
    assert list(fake_v1.iterdir()) == []


def test_a_delegated_v2_parent_comes_first(tmp_path, monkeypatch):
    monkeypatch.delenv("NORMLAB_GRADING_CGROUP", raising=False)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1").mkdir()
    monkeypatch.setattr(MemoryCgroup, "_v2_parent", classmethod(lambda cls: (str(tmp_path / "v2"), 2)))
    monkeypatch.setattr(MemoryCgroup, "_v1_parent", classmethod(lambda cls: (str(tmp_path / "v1"), 1)))
    assert MemoryCgroup.parents() == [(str(tmp_path / "v2"), 2), (str(tmp_path / "v1"), 1)]
    cg = MemoryCgroup.create(2**20)
    assert cg.version == 2 and Path(cg.path).parent == tmp_path / "v2"
    assert (Path(cg.path) / "memory.max").read_text() == str(2**20)
