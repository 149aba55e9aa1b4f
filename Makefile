# Two commands on a fresh machine: `make demo` and `make test`. Only python3 and make are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test run lint bench evaluate ui clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/atlaswatch demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

run: $(STAMP)
	$(BIN)/atlaswatch run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

evaluate: $(STAMP)
	$(BIN)/atlaswatch evaluate

bench: $(STAMP)
	$(BIN)/python -m bench

ui: $(STAMP)
	$(BIN)/atlaswatch ui

clean:
	rm -rf $(VENV) data/demo .pytest_cache
