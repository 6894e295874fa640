# Two commands: `make demo` and `make test`. Both create .venv and install the project
# when needed; the stamp file makes a second run skip the install when nothing changed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.steerrec-installed
# On a laptop without this machine's local torch file, the torch pin in constraints.txt
# would fetch PyPI's CUDA build; set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# to take the CPU build instead.
TORCH_INDEX_URL ?=
PIP_INDEX_ARGS := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
ENGINE ?= truth
INGRESS ?= proxy
export RAY_USAGE_STATS_ENABLED := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test lint install clean fetch-model

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_INDEX_ARGS) -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest tests -q --durations=25

demo: $(STAMP)
	$(PY) jobs/demo.py --engine $(ENGINE) --ingress $(INGRESS)

fetch-model: $(STAMP)
	$(PY) -m steerrec.llm.models fetch

clean:
	rm -rf $(VENV) outputs
