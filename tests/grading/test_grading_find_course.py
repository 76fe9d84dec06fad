"""normlab-grade finds its course upwards from the current folder, or is told it with
--course; with neither it stops with a message naming where it looked and what a course is
(it used to fall back to the folder three levels above cli.py, which for an installed package
is inside site-packages, and for this checkout silently graded against this repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from normlab_grading.grade import cli
from normlab_grading.grade.cli import CourseNotFound, find_course

REPO = Path(__file__).resolve().parents[2]


def test_the_nearest_folder_with_nbgrader_config_above_start(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    deep = tmp_path / "submitted" / "alice"
    deep.mkdir(parents=True)
    assert find_course(deep) == tmp_path.resolve()
    assert find_course(tmp_path) == tmp_path.resolve()


def test_a_folder_named_nbgrader_config_is_not_a_course(tmp_path):
    (tmp_path / "nbgrader_config.py").mkdir()
    with pytest.raises(CourseNotFound):
        find_course(tmp_path)


def test_no_course_names_where_it_looked_what_is_expected_and_course(tmp_path, monkeypatch):
    # this checkout has a nbgrader_config.py: the old fallback returned it from anywhere
    assert (REPO / "nbgrader_config.py").is_file()
    assert not any((d / "nbgrader_config.py").exists() for d in [tmp_path, *tmp_path.parents])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseNotFound) as info:
        find_course()
    msg = str(info.value)
    assert str(tmp_path.resolve()) in msg
    assert "nbgrader_config.py" in msg and "<source>/<assignment>/*.ipynb" in msg
    assert "--course" in msg


def test_the_command_stops_with_status_2_and_the_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "subs").mkdir()
    assert cli.main(["subs", "--out", str(tmp_path / "graded")]) == 2
    err = capsys.readouterr().err
    assert f"no nbgrader_config.py in {tmp_path.resolve()} or any folder above it" in err
    assert "--course" in err
    assert not (tmp_path / "graded").exists()


def test_a_course_option_without_nbgrader_config_is_refused_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # a course is found here, but --course says otherwise
    empty = tmp_path / "not-a-course"
    empty.mkdir()
    assert cli.main(["subs", "--course", str(empty), "--out", str(tmp_path / "graded")]) == 2
    err = capsys.readouterr().err
    assert f"--course {empty.resolve()}: no nbgrader_config.py there" in err
    assert not (tmp_path / "graded").exists()
