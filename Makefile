# Two entry points: `make demo` (install + stylize a bundled sample) and `make test` (install + run the tests).
# `make docs` builds the documentation site into site/ (offline; a broken link fails the build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of PyTorch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[demo,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/impasto demo -o impasto-demo.png

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The everyday loop (minutes): everything but the slow, training, browser and cluster tiers.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not train and not browser and not cluster"

# NO_MKDOCS_2_WARNING: the theme's notice about MkDocs' future is not about this site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_optimize.py
	$(BIN)/python benchmarks/bench_feedforward.py
	$(BIN)/python benchmarks/bench_video.py
	$(BIN)/python benchmarks/bench_studio.py

clean:
	rm -rf $(VENV) build src/*.egg-info impasto-demo.png
