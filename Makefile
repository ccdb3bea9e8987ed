# The two commands of the README: `make demo` and `make test`. Both install what they need
# into .venv on first use (and again when pyproject.toml or constraints.txt changes), with the
# exact versions of constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(VENV)/.installed: pyproject.toml constraints.txt tests/codegen-requirements.txt \
		tests/generated-client-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[server,test]'
	$(BIN)/python -m pip install --quiet -r tests/generated-client-requirements.txt
	# openapi-python-client pins a typer older than numident's: it gets a venv of its own.
	$(PYTHON) -m venv $(VENV)/codegen
	$(VENV)/codegen/bin/python -m pip install --quiet -r tests/codegen-requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/numident demo

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Two processes share the suites, a test file to each at a time; the fault scenarios, whose
# latency bounds the rest of the suite would skew, run after it, among themselves.
test: lint
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report= --ignore=tests/faults tests
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-append --cov-report=term:skip-covered tests/faults
