"""What normlab-grade writes besides the notebooks: grades CSVs and the summary.

- ``grades.csv``: one row per student and assignment: ids, name, status, score, maximum,
  failure reason, then one column per question (``<assignment>:<grade_id>``).
  ``grades-<assignment>.csv``: the same for one assignment, its questions only. Written
  with the csv module (any comma, quote or newline in a name is quoted); a cell that a
  spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) gets a leading ``'``.
- ``summary.json`` and ``summary.md``: per assignment, the counts, the score distribution
  (and ``plots/<assignment>.png``), for each question the pass rate and the most common
  failure message, and the submissions that failed or were rejected, with the reason;
  plus the inputs that were refused (unsafe zip members...).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
import statistics
from pathlib import Path

__all__ = ["load_results", "write_reports", "atomic_write", "for_terminal", "for_markdown"]


def for_terminal(text) -> str:
    """``text`` made safe for one terminal line: every character that is not printable
    (control characters such as ESC, newlines, bidirectional overrides, undecodable bytes)
    becomes its Python escape (``\\x1b``, ``\\n``, ``\\u202e``); the rest is unchanged. The one
    rule for text of student origin printed to the instructor's terminal."""
    text = "" if text is None else str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
                       or (f"\\x{code:02x}" if code < 0x100 else
                           f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"))
    return "".join(out)


_AUTOLINK = re.compile(r":(?=//)|\.(?=[A-Za-z])|@")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#!|~&$])")


def for_markdown(text) -> str:
    """``text`` made safe inside one line of markdown (a list item, a table cell): control
    characters escaped as by ``for_terminal``, then every markdown/HTML special character
    backslash-escaped, so it renders as the text itself (no emphasis, links, images, HTML,
    table cells, headings, code; URLs broken with an invisible word joiner so that no
    autolinking renderer makes them links). The one rule for text of student origin in summary.md."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", for_terminal(text))
    # renderers with autolinks (GFM, linkify) would still turn https://..., www.x.org,
    # x.com and a@b into links: an invisible word joiner after ":" of "://", after a dot
    # before a letter and after "@" breaks every such pattern, and the text reads the same
    return _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", escaped)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename: a reader
    sees the old file or the new one, never half of one. The temporary name is short
    (``.tmp-<pid>-<random>``, whatever the length of ``path``'s name: a 250-byte name must not
    make an over-long one); if anything fails (``path`` is a folder, the disk is full) the
    temporary file is removed and the error raised."""
    import secrets

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": ""})) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_results(out: Path, assignments=None) -> list[dict]:
    rows = []
    base = Path(out) / "results"
    if not base.is_dir():
        return rows
    for adir in sorted(base.iterdir()):
        if not adir.is_dir() or (assignments and adir.name not in assignments):
            continue
        for f in sorted(adir.glob("*.json")):
            try:
                rows.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
    return rows


def _safe_cell(value) -> str:
    text = "" if value is None else str(value)
    text = "\n".join(for_terminal(line) for line in text.split("\n"))
    if text and text[0] in "=+-@\t\r" and not re.fullmatch(r"-?\d+(\.\d+)?", text):
        text = "'" + text
    return text


def _fmt(x) -> str:
    if x is None:
        return ""
    x = float(x)
    return str(int(x)) if x == int(x) else f"{x:.2f}"


def _questions(results: list[dict]) -> dict:
    """assignment -> ordered list of (notebook, grade_id, points)."""
    q: dict = {}
    for r in results:
        seen = q.setdefault(r["assignment"], [])
        for stem, nb in r.get("notebooks", {}).items():
            for c in nb.get("cells", []):
                key = (stem, c["grade_id"], c["points"])
                if key not in seen:
                    seen.append(key)
    return q


def _csv(results: list[dict], questions: dict, assignments: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    cols = [(a, stem, gid, pts) for a in assignments for stem, gid, pts in questions.get(a, [])]
    multi_nb = {a for a in assignments if len({s for s, _, _ in questions.get(a, [])}) > 1}
    header = ["student_id", "name", "assignment", "status", "score", "max_score", "reason"]
    for a, stem, gid, pts in cols:
        label = f"{a}:{stem}/{gid}" if a in multi_nb else f"{a}:{gid}"
        header.append(f"{label} ({_fmt(pts)})" if len(assignments) == 1 else label)
    w.writerow(header)
    for r in sorted(results, key=lambda r: (r["assignment"], r["student"])):
        if r["assignment"] not in assignments:
            continue
        scores = {}
        for stem, nb in r.get("notebooks", {}).items():
            for c in nb.get("cells", []):
                scores[(r["assignment"], stem, c["grade_id"])] = c.get("score")
        row = [r["student"], r.get("display_name", ""), r["assignment"], r["status"],
               _fmt(r.get("score")), _fmt(r.get("max_score")), r.get("reason") or ""]
        for a, stem, gid, pts in cols:
            row.append(_fmt(scores.get((a, stem, gid))) if a == r["assignment"] else "")
        w.writerow([_safe_cell(x) for x in row])
    return buf.getvalue()


def _failure_key(cell: dict) -> str:
    msg = cell.get("message") or cell.get("kind") or "failed"
    msg = str(msg)[:2000]
    msg = re.sub(r"\s*+\[(hidden|visible) test:[^\]]*+\]\s*+$", "", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "#", msg)
    return msg


def _summary(results: list[dict], questions: dict, rejections: list[dict],
             intake_notes=()) -> dict:
    out = {"assignments": {}, "rejected_inputs": rejections, "intake_notes": list(intake_notes)}
    by_a = collections.defaultdict(list)
    for r in results:
        by_a[r["assignment"]].append(r)
    for a, rs in sorted(by_a.items()):
        scores = [r["score"] for r in rs if r["status"] != "rejected"]
        all_scores = [r["score"] for r in rs]
        counts = collections.Counter(r["status"] for r in rs)
        qs = []
        for stem, gid, pts in questions.get(a, []):
            cells = [c for r in rs for s, nb in r.get("notebooks", {}).items() if s == stem
                     for c in nb.get("cells", []) if c["grade_id"] == gid]
            failed = [c for c in cells if not c.get("passed")]
            common = collections.Counter(_failure_key(c) for c in failed).most_common(3)
            example = {}
            for c in failed:
                example.setdefault(_failure_key(c), c.get("message") or c.get("kind") or "failed")
            qs.append({
                "notebook": stem, "grade_id": gid, "points": pts, "submissions": len(cells),
                "passed": len(cells) - len(failed),
                "pass_rate": (len(cells) - len(failed)) / len(cells) if cells else None,
                "most_common_failures": [{"message": example[k], "count": n} for k, n in common],
            })
        max_score = max((r["max_score"] for r in rs), default=0)
        out["assignments"][a] = {
            "submissions": len(rs), "graded": counts.get("graded", 0),
            "failed": counts.get("failed", 0), "rejected": counts.get("rejected", 0),
            "max_score": max_score,
            "mean": statistics.fmean(all_scores) if all_scores else None,
            "median": statistics.median(all_scores) if all_scores else None,
            "stdev": statistics.pstdev(all_scores) if len(all_scores) > 1 else 0.0,
            "min": min(all_scores) if all_scores else None,
            "max": max(all_scores) if all_scores else None,
            "mean_of_gradable": statistics.fmean(scores) if scores else None,
            "distribution": dict(sorted(collections.Counter(_fmt(s) for s in all_scores).items(),
                                        key=lambda kv: float(kv[0]))),
            "questions": qs,
            "problems": [{"student": r["student"], "name": r.get("display_name", ""),
                          "status": r["status"], "score": r["score"], "reason": r.get("reason")}
                         for r in sorted(rs, key=lambda r: r["student"]) if r["status"] != "graded"],
            "plot": f"plots/{a}.png",
            "notes": {r["student"]: r["notes"] for r in sorted(rs, key=lambda r: r["student"])
                      if r.get("notes")},
            "timestamp_problems": {r["student"]: r["timestamp_problem"]
                                   for r in sorted(rs, key=lambda r: r["student"])
                                   if r.get("timestamp_problem")},
        }
    return out


def _plot(a: str, info: dict, results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    scores = [r["score"] for r in results if r["assignment"] == a]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    from matplotlib.ticker import MaxNLocator

    top = info["max_score"] or max(scores or [1])
    if top <= 40:
        bins = [x - 0.5 for x in range(int(top) + 2)]
    else:
        bins = 40
    ax.hist(scores, bins=bins, color="#4a78b5", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"score (out of {_fmt(top)})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{a}: {len(scores)} submissions, mean {_fmt(info['mean'])}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _markdown(summary: dict) -> str:
    md = for_markdown
    lines = ["# Grading summary", ""]
    for a, info in summary["assignments"].items():
        lines += [f"## {md(a)}", "",
                  f"{info['submissions']} submissions: {info['graded']} graded, {info['failed']} failed, "
                  f"{info['rejected']} rejected. Score out of {_fmt(info['max_score'])}: mean "
                  f"{_fmt(info['mean'])}, median {_fmt(info['median'])}, min {_fmt(info['min'])}, "
                  f"max {_fmt(info['max'])}.", "",
                  f"![score distribution]({info['plot']})", "",
                  "| question | points | passed | most common failure |", "|---|---|---|---|"]
        for q in info["questions"]:
            common = q["most_common_failures"][0] if q["most_common_failures"] else None
            text = md(f"{common['message']} ({common['count']}x)") if common else ""
            lines.append(f"| {md(q['grade_id'])} | {_fmt(q['points'])} | {q['passed']}/{q['submissions']} | {text} |")
        lines.append("")
        if info["problems"]:
            lines += ["Failed or rejected submissions:", ""]
            for p in info["problems"]:
                lines.append(f"- **{md(p['student'])}** ({md(p['status'])}, score {_fmt(p['score'])}): "
                             f"{md(p['reason'] or '')}")
            lines.append("")
        if info.get("timestamp_problems"):
            lines += ["Submission times that could not be read (lateness NOT assessed; check by hand):", ""]
            for student, problem in info["timestamp_problems"].items():
                lines.append(f"- **{md(student)}**: {md(problem)}")
            lines.append("")
        if info.get("notes"):
            lines += ["Notes (repairs, renamed notebooks, ignored files):", ""]
            for student, notes in info["notes"].items():
                lines.append(f"- **{md(student)}**: " + "; ".join(md(n) for n in notes))
            lines.append("")
    if summary.get("intake_notes"):
        lines += ["## Intake notes", ""]
        for n in summary["intake_notes"]:
            lines.append(f"- {md(n)}")
        lines.append("")
    if summary["rejected_inputs"]:
        lines += ["## Inputs that were refused", ""]
        for r in summary["rejected_inputs"]:
            lines.append(f"- {md(r['path'])}: {md(r['reason'])}")
        lines.append("")
    return "\n".join(lines)


def write_reports(out: Path, assignments: list[str], rejections: list[dict], intake_notes=()) -> dict:
    """Write grades*.csv, summary.json, summary.md and the plots from ``out/results``."""
    out = Path(out)
    results = load_results(out, set(assignments))
    questions = _questions(results)
    present = [a for a in assignments if any(r["assignment"] == a for r in results)]
    atomic_write(out / "grades.csv", _csv(results, questions, present))
    for a in present:
        atomic_write(out / f"grades-{a}.csv", _csv(results, questions, [a]))
    summary = _summary(results, questions, rejections, intake_notes)
    for a, info in summary["assignments"].items():
        try:
            _plot(a, info, results, out / info["plot"])
        except Exception as exc:  # a plot must not lose the grades
            info["plot_error"] = f"{type(exc).__name__}: {exc}"
    atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=str))
    atomic_write(out / "summary.md", _markdown(summary))
    return summary
