# Two commands for a fresh machine (Python 3.11 + pip):  make demo  /  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo serve test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sote demo --out out $(DEMO_ARGS)

# the worklist web app on the demo's database (var/worklist.db; demo users and passwords in var/demo-users.txt):
# http://127.0.0.1:8000/ ; `make clean` leaves var/ alone (its actions and access log outlive every rerun)
serve: $(STAMP)
	$(BIN)/sote serve --data out/county $(SERVE_ARGS)

# the default suite on 2 cores, then the integration tests (a real PostgreSQL server and headless Chromium;
# each skipped with the reason when missing, or failing when CI=true); the last line counts what ran
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not integration" -n 2 --dist loadgroup
	$(BIN)/python -m pytest -q -m integration tests/integration

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) out .pytest_cache
