"""Sphinx extension: let docstrings write shapes as ``(N, C, *spatial)`` in plain text.

normlab's docstrings state shapes the way PyTorch's do, with a star for "any number of
trailing axes". In reStructuredText a lone ``*word`` opens emphasis and warns (the book
builds with warnings as errors), so the API page escapes such stars outside literals.
"""

import re

_STAR = re.compile(r"(?<=[\s(\[,])\*(?=[A-Za-z_])")


def _escape_line(line: str) -> str:
    parts = line.split("``")
    for i in range(0, len(parts), 2):  # even parts are outside ``literals``
        parts[i] = _STAR.sub(r"\\*", parts[i])
    return "``".join(parts)


def _escape(app, what, name, obj, options, lines):
    lines[:] = [_escape_line(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _escape)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
