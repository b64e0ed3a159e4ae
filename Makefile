# mmssod: `make demo` and `make test` set everything up on first use (see tools/setup_env.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test lint format clean

setup:
	@bash tools/setup_env.sh

demo: setup
	@bash tools/demo.sh

test: setup lint
	$(PY) -m pytest tests

lint: setup
	@$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

format: setup
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf work_dirs .pytest_cache build *.egg-info mmssod/.mim
