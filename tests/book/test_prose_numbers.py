"""Every number in a chapter's prose is glued from the computation or an allowed constant.

The convention (docs/book.md): a number in a sentence comes from a ``{glue:text}`` role, so it
cannot drift from the output when code, seeds or machines change. This test strips what is not
prose (front matter, code cells and other fenced blocks, math, roles such as glue/cite/ref,
inline code, labels, link targets, directive options, quotations from the articles) and fails
on any number left that no rule or allowlist below accepts. Number words of magnitude ("ten",
"hundreds", "tens of thousands") count as numbers too: they drifted in the same way.
"""

import pathlib
import re
from collections import Counter

import pytest

BOOK = pathlib.Path(__file__).resolve().parents[2] / "book"
# every chapter file (NN_name.md) and the intro: a new chapter is checked from its first commit
CHAPTERS = ["intro"] + sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.md"))

# Constants allowed everywhere, as phrases (regular expressions; the number must lie inside a
# match): years and dates, references to chapters/sections/equations/exercises/figure panels,
# the source articles' numbers (000-004, their names), and 0 and 1 as the identities of
# normalization ("mean 0, variance 1", "[0, 1]", "a batch of 1").
GLOBAL_PATTERNS = [
    r"\b(?:1[89]|20)\d\d\b",                                           # years
    r"\b(?:[Cc]hapters?|[Ss]ections?|[Ee]q(?:uation)?s?\.?|[Ee]xercises?|[Aa]ppendix|[Pp]art|"
    r"[Pp]anels?|[Ff]igures?|[Tt]ables?|[Ss]tep|[Bb]ug|[Cc]laims?)\s*\(?\d+(?:\.\d+)*\)?"
    r"(?:(?:,\s*|\s+(?:and|or|to)\s+|\s*-\s*)\(?\d+(?:\.\d+)*\)?)*",  # chapter 3, bugs 1 and 2
    r"\b[Aa]rticles?\s+00\d(?:(?:,\s*|\s+(?:and|or)\s+)00\d)*",        # article 001, articles 002 and 003
    r"\b00[0-4]\b",                                                    # an article's number alone
    r"(?<![\d.])[01](?![\d.,]*\d)",                                    # 0 and 1
    r"\b[Ss]eeds?\s+\(?\d+(?:(?:,\s*|\s+(?:and|or|to)\s+|-)\d+)*",     # seeds 0 to 4, seeds 0, 1, 2
    r"^\|?[ \t]*\d+\.[ \t]",                                              # numbered table rows
    r"\b(?:PyTorch|torch|Python|NumPy|Keras|TensorFlow)\s+\d+(?:\.\d+)+",  # software versions
    r"\bx86-64\b",
    r"\b95 ?% (?:CI|confidence interval|interval|t interval)",      # the interval convention
]

# Per-chapter phrases (regular expressions) for the constants the text states on purpose:
# paper values, design constants of an experiment that the prose names. Keep them short.
ALLOWED_PHRASES: dict[str, list[str]] = {
    "intro": [],
    "01_feature_scaling": [],
    "02_zscore": [],
    "03_batchnorm_math": [],
    "04_test_time": [
        r"the article\s+trains 50",   # article 002's epochs, quoted
        r"8×8",                     # the digits images (sklearn load_digits)
    ],
    # the confidence level of every interval on the page
    "05_internal_covariate_shift": [r"\b95 %\s+(?:Student-t\s+)?interval"],
    "06_alternatives": [],
}

# Bare numbers of chapters being rewritten by other helpers, number -> how many may remain.
# These only shrink: glue the number (or add a phrase above, with a reason) and lower the count.
LEGACY_COUNTS: dict[str, dict[str, int]] = {
}

NUMBER_WORDS = (r"ten|tens|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds|"
                r"thousand|thousands|million|millions|dozen|dozens")
NUMBER_RE = re.compile(
    rf"(?<![A-Za-z_\d.\\])(?<![A-Za-z]-)\d+(?:[.,]\d+)*(?![A-Za-z_\d])|\b(?:{NUMBER_WORDS})\b",
    re.IGNORECASE)


FENCE_RE = re.compile(r"^[ \t]*(?P<f>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
CODE_INFOS = re.compile(r"^(?:\{(?:code-cell|math|code|code-block|glue:figure)\}.*|[\w+-]*)$")


def _fences(text: str) -> str:
    """Blank code and math blocks whole; of other directives (exercise, solution, note...) keep
    the body, which is prose, and blank only the fence lines."""
    out, stack = [], []          # stack of (fence, is_code)
    for line in text.split("\n"):
        m = FENCE_RE.match(line)
        in_code = any(code for _, code in stack)
        if m and stack and m["f"][0] == stack[-1][0][0] and len(m["f"]) >= len(stack[-1][0]) \
                and not m["info"].strip():
            stack.pop()
            out.append(" " * len(line))
        elif m and not in_code:
            stack.append((m["f"], bool(CODE_INFOS.match(m["info"].strip()))))
            out.append(" " * len(line))
        else:
            out.append(" " * len(line) if in_code else line)
    return "\n".join(out)



def _blank(text: str, pattern: str, flags=0) -> str:
    """Replace every match of ``pattern`` by spaces (newlines kept, so line numbers hold)."""
    return re.sub(pattern, lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=flags)


def prose(markdown: str) -> str:
    """The chapter's prose: everything that is not code, math, a role, a label or a quotation."""
    t = markdown
    t = _blank(t, r"\A---\n.*?\n---\n", re.S)                                  # front matter
    t = _fences(t)                                                               # code, math
    t = _blank(t, r"<!--.*?-->", re.S)                                          # comments
    t = _blank(t, r"\$\$.*?\$\$", re.S)                                          # display math
    t = _blank(t, r"(?<!\\)\$(?:[^$\n]|\n(?![ \t]*\n))+?(?<!\\)\$")                                 # inline math
    t = _blank(t, r"\{[\w:-]+\}`[^`]*`")                                         # roles
    t = _blank(t, r"`[^`\n]*`")                                                  # inline code
    t = _blank(t, r"^\([\w.-]+\)=[ \t]*$", re.M)                                 # labels
    t = _blank(t, r"^[ \t]*:[\w-]+:.*$", re.M)                                   # directive options
    t = _blank(t, r"^(?::{3,}|`{3,}).*$", re.M)                                  # fence lines left
    t = _blank(t, r"\]\([^)\n]*\)")                                              # link targets
    t = _blank(t, r"\"(?:[^\"\n]|\n(?![ \t]*\n))*\"|“[^”]*”|「[^」]*」")       # quotations
    t = _blank(t, r"^[ \t]*\d+\.[ \t]", re.M)                                    # list markers
    return t


def bare_numbers(chapter: str) -> list[tuple[int, str, str]]:
    """(line, number, context) for every number in the prose that no global or chapter rule allows."""
    text = prose((BOOK / f"{chapter}.md").read_text(encoding="utf-8"))
    allowed = [False] * len(text)
    for pat in GLOBAL_PATTERNS + ALLOWED_PHRASES.get(chapter, []):
        for m in re.finditer(pat, text, re.M):
            allowed[m.start():m.end()] = [True] * (m.end() - m.start())
    found = []
    for m in NUMBER_RE.finditer(text):
        if all(allowed[m.start():m.end()]):
            continue
        line = text.count("\n", 0, m.start()) + 1
        ctx = " ".join(text[max(0, m.start() - 40):m.end() + 40].split())
        found.append((line, m.group(0), ctx))
    return found


def test_prose_filter_keeps_prose_and_drops_the_rest():
    md = ("---\nkernelspec: {}\n---\n# T\n\nSteps: 956 and {glue:text}`n:d` seeds, $n = 200$,\n"
          "`x = 5`, {cite}`ioffe2015`, (sec-a)=\n\n```{code-cell} ipython3\nprint(123)\n```\n"
          "Quote \"均值为 0,方差为 77\" ends; L2 and float64 are names; tens of thousands.\n")
    t = prose(md)
    nums = [m.group(0) for m in NUMBER_RE.finditer(t)]
    assert nums == ["956", "tens", "thousands"]
    assert t.count("\n") == md.count("\n")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_bare_numbers_in_prose(chapter):
    found = bare_numbers(chapter)
    budget = Counter(LEGACY_COUNTS.get(chapter, {}))
    used = Counter(n.lower() for _, n, _ in found)
    over = [(line, n, ctx) for line, n, ctx in found if used[n.lower()] > budget[n.lower()]]
    assert not over, (
        f"book/{chapter}.md: {len(over)} bare number(s) in the prose; glue them from the cell that "
        "computes them ({glue:text}`key:fmt`, docs/book.md) or, for a real constant, add a phrase "
        "to ALLOWED_PHRASES:\n" + "\n".join(f"  line {l}: {n!r} in '...{c}...'" for l, n, c in over))
