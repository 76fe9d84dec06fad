"""The jail covers every copy of the student lib's packages and of the masked libraries in the
venv (``sandbox._package_copies``): checked on a made-up site-packages folder against the
definition, computed here by brute force (every folder, every ancestor), for several sets
of names searched in the same process (the folders are read once for all of them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from normlab_grading.grade import sandbox

SUFFIXES = (".py", ".so", ".pyc", ".pyd", ".egg", ".zip")


def _pkg(path: Path, init: bool = True) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if init:
        (path / "__init__.py").write_text("")


@pytest.fixture
def site(tmp_path):
    s = tmp_path / "site-packages"
    _pkg(s / "normlab")
    _pkg(s / "normlab" / "sub" / "normlab")  # inside a copy: covered with it
    _pkg(s / "vendor")
    _pkg(s / "vendor" / "normlab")
    _pkg(s / "vendor" / "normlab_extra")  # another name
    _pkg(s / "nopkg" / "normlab", init=False)  # not a package, not at the top
    _pkg(s / "torch", init=False)  # a namespace package at the top: a copy
    _pkg(s / "torch" / "normlab")  # a normlab inside torch
    _pkg(s / "deep" / "a" / "b" / "torch")
    _pkg(s / "deep" / "a" / "b" / "torch" / "x" / "torch")
    _pkg(s / "pkg-1.0.dist-info" / "normlab")  # metadata folders are not looked into
    _pkg(s / "old.egg-info" / "torch")
    _pkg(s / "__pycache__" / "normlab")
    _pkg(tmp_path / "elsewhere" / "normlab")
    (s / "link").symlink_to(s / "vendor", target_is_directory=True)  # not followed
    (s / "deep" / "normlab").symlink_to(tmp_path / "elsewhere" / "normlab",
                                        target_is_directory=True)  # a link that is a copy
    (s / "normlab.py").write_text("")
    (s / "torch.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (s / "torch.txt").write_text("")  # not a module
    sandbox._TREE_CACHE.clear()
    yield str(s)
    sandbox._TREE_CACHE.clear()


def _is_copy(folder: str, site: str, names) -> bool:
    return os.path.basename(folder) in names and (
        os.path.isfile(os.path.join(folder, "__init__.py")) or os.path.dirname(folder) == site)


def brute_force(site: str, names) -> tuple[list[str], list[str]]:
    """(top-level module files, package folders) by the definition: a folder named one of
    ``names`` that is a package (or any folder at the top), reached without going through a
    link, a ``*.dist-info``/``*.egg-info`` or ``__pycache__`` folder, and inside no other
    such copy; the folders in the order ``os.walk`` meets them."""
    files = [os.path.join(site, e) for e in os.listdir(site)
             if e.split(".")[0] in names and os.path.isfile(os.path.join(site, e))
             and e.endswith(SUFFIXES)]
    order = []
    for root, dirs, _ in os.walk(site):  # every folder, nothing pruned but links
        order += [os.path.join(root, d) for d in dirs]
    folders = []
    for f in order:
        rel = Path(f).relative_to(site).parts
        ancestors = [os.path.join(site, *rel[:i]) for i in range(1, len(rel))]
        if any(os.path.islink(a) or a.endswith((".dist-info", ".egg-info"))
               or os.path.basename(a) == "__pycache__" for a in ancestors):
            continue
        if _is_copy(f, site, names) and not any(_is_copy(a, site, names) for a in ancestors):
            folders.append(f)
    return files, folders


@pytest.mark.parametrize("names", [("normlab",), ("torch",), ("normlab", "torch"), ("absent",)])
def test_copies_match_the_definition(site, names):
    files, folders = brute_force(site, names)
    got = sandbox._package_copies(site, names)
    assert sorted(p for p in got if os.path.isfile(p) and not os.path.isdir(p)) == sorted(files)
    assert [p for p in got if os.path.isdir(p)] == folders


def test_expected_copies_by_hand(site):
    """The same made-up folder, what a reader of the definition expects."""
    s = site
    got = set(sandbox._package_copies(s, ("normlab",)))
    assert got == {f"{s}/normlab", f"{s}/vendor/normlab", f"{s}/torch/normlab",
                   f"{s}/deep/normlab", f"{s}/normlab.py"}
    got = set(sandbox._package_copies(s, ("normlab", "torch")))
    assert got == {f"{s}/normlab", f"{s}/vendor/normlab", f"{s}/torch", f"{s}/deep/a/b/torch",
                   f"{s}/deep/normlab", f"{s}/normlab.py",
                   f"{s}/torch.cpython-311-x86_64-linux-gnu.so"}


def test_folders_are_read_once_for_every_search(site, monkeypatch):
    calls = []
    real = os.walk
    monkeypatch.setattr(os, "walk", lambda *a, **k: calls.append(a) or real(*a, **k))
    for names in [("normlab",), ("torch",), ("scipy",), ("normlab", "normlab_grading")]:
        sandbox._package_copies(site, names)
    assert len(calls) == 1
