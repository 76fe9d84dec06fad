"""`make help` lists every target of the Makefile, each once with its one-line description
(read from the `##` comment on the target's rule, so a new target without one shows up here)."""

from __future__ import annotations

import re
import subprocess


def test_make_help_lists_every_phony_target_once_with_a_description(repo_root):
    text = (repo_root / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split()
    rules = set(re.findall(r"^([a-z][a-z-]*):(?!=)", text, re.M))
    assert set(phony) == rules, "every rule a user types is .PHONY and the other way round"
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=repo_root,
                         capture_output=True, text=True, check=True).stdout
    listed = [re.match(r"make (\S+)\s+(\S.*)$", line) for line in out.splitlines()]
    assert all(listed), out
    names = [m.group(1) for m in listed]
    assert sorted(names) == sorted(phony), out
    assert all(len(m.group(2)) > 10 for m in listed), out
