# Two commands for a fresh machine (Python 3.11 + pip):  make demo  /  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sote demo --out out $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) out .pytest_cache
