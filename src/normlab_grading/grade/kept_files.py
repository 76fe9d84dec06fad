"""Which files of a graded notebook's folder (shipped by the student or written by the
notebook) the coordinator keeps in ``autograded/<student>/<assignment>/``, and under which name.

That folder is served by nbgrader's formgrader in the instructor's Jupyter origin, and the
grader writes its own outputs there, so a kept file must not

- take the place of the grader's outputs: the autograded notebooks (``<stem>.ipynb``), also as
  a folder (``02-zscore.ipynb/x.txt`` would make the notebook impossible to write), nor
  ``timestamp.txt`` (nbgrader's);
- have a name component over ``MAX_KEPT_NAME_BYTES`` (the file system's limit is 255, and the
  grader must be able to add to a name);
- be active content a browser runs when formgrader serves it (HTML, SVG, XML, JavaScript...:
  a script there acts with the instructor's Jupyter session): such a file is kept with
  ``.txt`` added to its name (served as plain text), or left out if that name is taken.

Every file left out or renamed gets a note.
"""

from __future__ import annotations

import mimetypes

__all__ = ["MAX_KEPT_NAME_BYTES", "ACTIVE_SUFFIXES", "RESERVED_NAMES", "is_active_content",
           "kept_name"]

MAX_KEPT_NAME_BYTES = 200
RESERVED_NAMES = frozenset({"timestamp.txt"})
ACTIVE_SUFFIXES = frozenset({
    ".htm", ".html", ".shtml", ".xht", ".xhtml", ".mht", ".mhtml", ".svg", ".svgz", ".xml",
    ".xsl", ".xslt", ".rdf", ".js", ".mjs", ".cjs", ".jsx", ".swf", ".vtt", ".appcache",
})
_ACTIVE_TYPES = ("html", "xml", "javascript", "ecmascript", "svg", "xsl", "shockwave")


def is_active_content(name: str) -> bool:
    """Whether a browser may run ``name`` as a page or script when a server types it by its
    suffix (as formgrader does, through ``mimetypes``)."""
    lower = name.lower()
    if any(lower.endswith(s) for s in ACTIVE_SUFFIXES):
        return True
    guessed, _ = mimetypes.guess_type(lower, strict=False)
    return guessed is not None and any(t in guessed for t in _ACTIVE_TYPES)


def kept_name(rel: str, all_rels, notebooks) -> tuple[str | None, str | None]:
    """``(name to keep rel under, note)`` for the relative path ``rel`` (already checked by
    ``sandbox.unsafe_relative_path``) among the folder's paths ``all_rels``; ``notebooks`` are
    the autograded notebooks' file names. The name is None when the file is left out; the
    note is None when it is kept as it is."""
    parts = rel.split("/")
    reserved = set(notebooks) | RESERVED_NAMES
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_KEPT_NAME_BYTES for p in parts):
        return None, f"{_short(rel)} not kept: a name longer than {MAX_KEPT_NAME_BYTES} bytes"
    if parts[0] in reserved:
        return None, f"{_short(rel)} not kept: it takes the place of the grader's {parts[0]!r}"
    if is_active_content(parts[-1]):
        renamed = rel + ".txt"
        if renamed in all_rels or len(parts[-1].encode("utf-8", "surrogateescape")) + 4 > MAX_KEPT_NAME_BYTES:
            return None, f"{_short(rel)} not kept: active content (a page or script)"
        return renamed, f"{_short(rel)} kept as {_short(renamed)}: active content (a page or script)"
    return rel, None


def _short(rel: str) -> str:
    from .report import for_terminal

    text = for_terminal(rel)
    return repr(text if len(text) <= 80 else text[:77] + "...")
