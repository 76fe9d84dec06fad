"""Class 9 of issue 8, the mechanism: normlab-grade's Dask workers never depend on the
directory the coordinator happens to be in (nbgrader's generate_assignment chdirs into a
temporary course copy and deletes it). A cluster started from such a folder keeps working
after the folder is gone, and ``_kept_cwd`` returns to where it was."""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.slow


def _cwd():
    return os.getcwd()


def test_workers_survive_the_deletion_of_the_directory_they_started_in(tmp_path):
    from normlab_grading.grade.cli import _Cluster

    doomed = tmp_path / "nbgrader-tmp"
    doomed.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    here = os.getcwd()
    os.chdir(doomed)  # what nbgrader does while the workers start
    try:
        cluster = _Cluster(None, 1, str(scratch))
        client = cluster.get()
    finally:
        os.chdir(here)
    try:
        shutil.rmtree(doomed)
        where = client.submit(_cwd, pure=False).result(timeout=60)
        assert os.path.isdir(where) and str(scratch) in where, where
        client.restart()  # a restarted worker too
        where = client.submit(_cwd, pure=False).result(timeout=60)
        assert os.path.isdir(where) and str(scratch) in where, where
    finally:
        cluster.close()


def test_kept_cwd_returns_after_a_chdir(tmp_path):
    from normlab_grading.grade.cli import _kept_cwd

    here = os.getcwd()
    with _kept_cwd():
        os.chdir(tmp_path)
    assert os.getcwd() == here
