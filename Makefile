# The two entry points of the README: `make demo` and `make test`. Each installs what it needs.
export LITELLM_LOCAL_MODEL_COST_MAP := True
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

.PHONY: install docker test demo
install: $(VENV)/.installed

docker: install
	bash .ci/docker-setup.sh

test: docker
	$(PY) -m pytest -p no:cacheprovider -q tests

demo: docker
	bash examples/run-demo.sh
