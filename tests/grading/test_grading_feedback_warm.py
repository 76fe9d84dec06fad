"""A single submission's feedback exporter is built in a thread while the kernel runs
(``pipeline._warm_exporter_during``): the warm-up renders its page through (a score for
every graded cell, the template's every part) and the real page is byte for byte the one a
cold exporter renders."""

from __future__ import annotations

import json

import nbformat
import pytest

import normlab_grade_helpers as H
from normlab_grading.grade import course, pipeline

A = "02-zscore"


@pytest.fixture
def graded_page():
    """The released notebook as the grader sees it after a run: outputs in the test cells
    (stdout, an error), the grades of every graded cell, the course's configuration."""
    nb = nbformat.reads(json.dumps(H.release_nb(A)), as_version=4)
    scores = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            scores[meta["grade_id"]] = (0.0, float(meta["points"]))
        if H.is_test(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok: one\n"),
                            pipeline._error_output("AssertionError", "zscore: wrong \x1b[31mhere\x1b[0m")]
    config = course.load_config(H.ROOT)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "student": "s1",
                              "db_url": "sqlite:///nowhere.db"},
                 "unique_key": A, "output_files_dir": f"{A}_files"}
    total = sum(s for s, _ in scores.values())
    max_total = sum(m for _, m in scores.values())
    return nb, resources, config, scores, total, max_total


def _render(graded_page):
    nb, resources, config, scores, total, max_total = graded_page
    html, notes = pipeline._feedback_html(nb, resources, config, "test-key", scores, total,
                                          max_total, [])
    return html


def test_warm_thread_renders_and_the_page_is_the_cold_one(graded_page, monkeypatch):
    monkeypatch.setattr(pipeline, "_EXPORTERS", {})
    cold = _render(graded_page)
    monkeypatch.setattr(pipeline, "_EXPORTERS", {})
    nb, resources, config, *_ = graded_page
    before = nbformat.writes(nb)
    thread = pipeline._warm_exporter_during(nb, resources, config, "test-key")
    assert thread is not None
    thread.join()
    assert thread.rendered  # the warm-up went through the whole template
    assert ("test-key", False) in pipeline._EXPORTERS
    assert nbformat.writes(nb) == before  # it rendered a copy
    assert _render(graded_page) == cold
    # the exporter is there now: no second warm-up
    assert pipeline._warm_exporter_during(nb, resources, config, "test-key") is None
