# The two set-up commands: `make up` (start the stack) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN := .run
API_HOST ?= 127.0.0.1
API_PORT ?= 8000

.PHONY: venv up down test lint format bench clean

# Re-install only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

up: venv
	@mkdir -p $(RUN)
	@if [ -f $(RUN)/api.pid ] && kill -0 $$(cat $(RUN)/api.pid) 2>/dev/null; then \
		echo "API already running (pid $$(cat $(RUN)/api.pid))"; \
	else \
		nohup $(BIN)/uvicorn api.app:app --host $(API_HOST) --port $(API_PORT) > $(RUN)/api.log 2>&1 & echo $$! > $(RUN)/api.pid; \
		$(BIN)/python -m api.wait_healthy http://$(API_HOST):$(API_PORT)/health 30 || { echo "API failed to start, see $(RUN)/api.log"; exit 1; }; \
	fi
	@echo "API:      http://$(API_HOST):$(API_PORT)/        (OpenAPI docs: http://$(API_HOST):$(API_PORT)/docs)"
	@echo "Logs:     $(RUN)/*.log    Stop with: make down"

down:
	@for f in $(RUN)/*.pid; do \
		[ -f "$$f" ] || continue; \
		pid=$$(cat $$f); \
		if kill $$pid 2>/dev/null; then echo "stopped $$(basename $$f .pid) (pid $$pid)"; fi; \
		rm -f $$f; \
	done

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv lint
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python bench/api_bench.py

clean: down
	rm -rf $(VENV) $(RUN) .pytest_cache .ruff_cache
