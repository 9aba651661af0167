# Two commands for a fresh machine (Python 3.11 + pip):  make demo  /  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPARK  := $(VENV)/.installed-spark

.PHONY: install demo serve test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# the tests also need pyspark (the spark extra; Java 17 from the system): installed by `make test` only,
# so `make demo` stays lean
$(SPARK): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,spark]'
	touch $(SPARK)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sote demo --out out $(DEMO_ARGS)

# the worklist web app on the demo's database (var/worklist.db; demo users and passwords in var/demo-users.txt):
# http://127.0.0.1:8000/ ; `make clean` leaves var/ alone (its actions and access log outlive every rerun)
serve: $(STAMP)
	$(BIN)/sote serve --data out/county $(SERVE_ARGS)

# the default suite on 2 cores, then the end-to-end tests (the demo, the notebooks in a Jupyter kernel), the
# integration tests (a real PostgreSQL server and headless Chromium), then the Spark tests (a standalone master and two workers on 127.0.0.1); each component is skipped with
# the reason when missing, or fails the run when CI=true; each stage ends with a line counting what ran
test: $(SPARK)
	$(BIN)/python -m pytest -q -m "not slow and not integration and not spark and not e2e" -n 2 --dist loadgroup
	$(BIN)/python -m pytest -q -m "e2e and not slow" -n 2 tests/notebooks tests/sote
	$(BIN)/python -m pytest -q -m integration tests/integration
	$(BIN)/python -m pytest -q -m "spark and not slow" -n 0 --durations=8 tests/spark

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) out .pytest_cache
