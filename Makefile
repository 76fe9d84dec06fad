# Two commands from a fresh clone:  `make book` builds the book, `make test` runs every test.
# Both create (or reuse) the virtual environment .venv and install what they need into it.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY     := $(BIN)/python

.PHONY: help venv book book-clean test test-fast system-deps exercises student-release bench bench-grading clean

help:  ## list these targets (each line is the `##` comment on its rule in the Makefile)
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The environment: pinned by requirements/constraints.txt (torch==2.13.0 is the CPU wheel
# that lies on this machine's disk; any other version would download CUDA wheels).
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[book,grading,test]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the package with its book, grading and test extras (pinned)

# Warnings are errors, and a chapter cell that raises fails the build (_config.yml:
# execute.raise_on_error). Executed chapters are cached in _build/.jupyter_cache.
book: $(STAMP)  ## build the HTML book into _build/html (executes every chapter)
	$(BIN)/jupyter-book build . --warningiserror --keep-going --quiet

book-clean:  ## remove _build (the built book and its execution cache)
	rm -rf _build

# System packages from Debian: chromium (the browser test opens the built book in it) and
# bubblewrap (the instructor grader runs each submission in its own sandbox).
system-deps:  ## install the Debian packages chromium and bubblewrap if missing
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: $(STAMP) system-deps book  ## run the whole test suite (builds the book for the browser test)
	$(BIN)/pytest tests

test-fast: $(STAMP)  ## run the quick tests (no book, no browser, no nbgrader runs)
	$(BIN)/pytest tests -m "not book and not slow"

# solutions/ from each assignment's notebook.py (src/normlab_grading/grade/assignments/*/),
# the student side's data, then exercises/ from solutions/
exercises: $(STAMP)  ## regenerate solutions/, the checker's data and exercises/ (nbgrader)
	$(PY) tools/authoring.py
	$(PY) tools/student_data.py
	$(PY) tools/release.py

# The zip to hand out: exercises/, a wheel with normlab and the student side of the grader,
# pinned requirements and a README; no solutions, no hidden cases, no grader (offline).
student-release: $(STAMP)  ## write dist/normlab-student-<version>.zip to hand out to students
	$(PY) tools/authoring.py --check
	$(PY) tools/student_data.py --check
	$(PY) tools/release.py --check
	$(PY) tools/student_release.py --out dist

bench: $(STAMP)  ## print the batch-norm benchmark figures
	$(PY) tools/bench_batchnorm.py

# Serial `nbgrader autograde` against `normlab-grade` on the same synthetic submissions, in
# the same run: one table row per size (default: 1 and 3 submissions of 02-zscore, 4 of each
# assignment). Minutes; needs bubblewrap (`make system-deps`). E.g. BENCH_ARGS="--k 50" (350: 50 of each of the seven).
BENCH_ARGS ?=
bench-grading: $(STAMP) system-deps  ## time serial nbgrader autograde against normlab-grade (BENCH_ARGS=...)
	$(PY) tools/bench_grading.py $(BENCH_ARGS)

clean:  ## remove _build and .pytest_cache
	rm -rf _build .pytest_cache
