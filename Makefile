# The two set-up commands: `make up` (start the stack) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN := .run
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
AIRFLOW_PORT ?= 8080
DASHBOARD_PORT ?= 8501
MLFLOW_PORT ?= 5000
API_URL := http://$(API_HOST):$(API_PORT)

# The stack's embedded defaults: SQLite for Airflow in airflow_home/, the lake in lake/ (both
# ignored by git). Every process gets its own process group, so `make down` stops its children too.
AIRFLOW_ENV := PATH=$(abspath $(BIN)):$$PATH AIRFLOW_HOME=$(CURDIR)/airflow_home AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	PYTHONPATH=$(CURDIR) ETL_API_URL=$(API_URL) ETL_LAKE=$(CURDIR)/lake
# Airflow's login (simple auth manager): chosen here on a first start, so that the dashboard can
# read the DAG's runs from Airflow's REST API from its own start on.
AIRFLOW_PASSWORDS := airflow_home/simple_auth_manager_passwords.json.generated
DASHBOARD_ENV := DASHBOARD_LAKE=$(CURDIR)/lake DASHBOARD_AIRFLOW_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	DASHBOARD_AIRFLOW_USER=admin DASHBOARD_AIRFLOW_PASSWORD_FILE=$(CURDIR)/$(AIRFLOW_PASSWORDS)
# The streaming job on the live robot stream, restarted by its loop if it dies (it resumes from its
# checkpoint); a first start begins 90 minutes back, so each robot's thresholds are calibrated by now.
# --detector motion: scores each axis on its moving samples (docs/streaming.md; F1 0.875 against 0.012-0.025).
STREAM_JOB := env $(AIRFLOW_ENV) $(abspath $(BIN))/python -m etl stream --source robots --detector motion --backfill 90 \
	--recovery $(CURDIR)/lake/_stream_recovery --write-scores --alarms --quiet
# start NAME CMD: run CMD in the background in a new session, unless NAME is already running.
define start
	@if [ -f $(RUN)/$(1).pid ] && kill -0 $$(cat $(RUN)/$(1).pid) 2>/dev/null; then \
		echo "$(1) already running (pid $$(cat $(RUN)/$(1).pid))"; \
	else \
		setsid nohup $(2) > $(RUN)/$(1).log 2>&1 & echo $$! > $(RUN)/$(1).pid; \
	fi
endef

# MLflow's UI in an environment of its own (requirements-mlflow.txt says why), on the registry in the
# lake that the ETL's mlflow-skinny writes. Job execution off: it is for GenAI jobs, and costs a process.
MLFLOW_VENV ?= .venv-mlflow
MLFLOW_STORE := $(CURDIR)/lake/_mlflow
MLFLOW_SERVER := env MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	$(abspath $(MLFLOW_VENV))/bin/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
	--backend-store-uri sqlite:///$(MLFLOW_STORE)/mlflow.db --default-artifact-root file://$(MLFLOW_STORE)/artifacts \
	--no-serve-artifacts

.PHONY: venv mlflow-venv up down test lint format bench clean system-deps

# Re-install only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Installed once (about 45 s and 850 MB); later starts reuse it.
$(MLFLOW_VENV)/.installed: requirements-mlflow.txt
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip install --quiet -r requirements-mlflow.txt
	touch $@

mlflow-venv: $(MLFLOW_VENV)/.installed

up: venv mlflow-venv
	@mkdir -p $(RUN)
	$(call start,api,$(BIN)/uvicorn api.app:app --host $(API_HOST) --port $(API_PORT))
	@$(BIN)/python -m api.wait_healthy $(API_URL)/health 30 || { echo "API failed to start, see $(RUN)/api.log"; exit 1; }
	@echo "Catching the lake up (13 weeks on a first start, from the watermark after) ..."
	@env $(AIRFLOW_ENV) $(BIN)/python -m etl pull && env $(AIRFLOW_ENV) $(BIN)/python -m etl transform
	@mkdir -p airflow_home && test -s $(AIRFLOW_PASSWORDS) || $(BIN)/python -c \
		'import json, secrets, sys; open(sys.argv[1], "w").write(json.dumps({"admin": secrets.token_urlsafe(12)}))' \
		$(AIRFLOW_PASSWORDS)
	$(call start,airflow,env $(AIRFLOW_ENV) $(BIN)/airflow standalone)
	@mkdir -p $(MLFLOW_STORE)
	$(call start,mlflow,$(MLFLOW_SERVER))
	$(call start,stream,bash -c 'while :; do $(STREAM_JOB); echo "stream job exited ($$?): restarting in 5 s"; sleep 5; done')
	$(call start,dashboard,env $(DASHBOARD_ENV) $(BIN)/streamlit run dashboard/app.py \
		--server.address 127.0.0.1 --server.port $(DASHBOARD_PORT) --server.headless true)
	@$(BIN)/python -m api.wait_healthy http://127.0.0.1:$(DASHBOARD_PORT)/_stcore/health 60 \
		|| { echo "dashboard failed to start, see $(RUN)/dashboard.log"; exit 1; }
	@$(BIN)/python -m api.wait_healthy http://127.0.0.1:$(AIRFLOW_PORT)/api/v2/monitor/health 180 \
		|| { echo "Airflow failed to start, see $(RUN)/airflow.log"; exit 1; }
	@$(BIN)/python -m api.wait_healthy http://127.0.0.1:$(MLFLOW_PORT)/health 120 \
		|| { echo "MLflow failed to start, see $(RUN)/mlflow.log"; exit 1; }
	@echo "API:       $(API_URL)/docs   (the simulator API and its OpenAPI docs; health: $(API_URL)/health)"
	@echo "Airflow:   http://127.0.0.1:$(AIRFLOW_PORT)/   DAG sensor_pipeline, hourly, unpaused"
	@echo "           login: $$($(BIN)/python -c 'import json,sys; print(*next(iter(json.load(open(sys.argv[1])).items())), sep=" / ")' \
		airflow_home/simple_auth_manager_passwords.json.generated 2>/dev/null || echo 'see $(RUN)/airflow.log')"
	@echo "Dashboard: http://127.0.0.1:$(DASHBOARD_PORT)/"
	@echo "MLflow:    http://127.0.0.1:$(MLFLOW_PORT)/   the model registry's UI (python -m etl models list)"
	@echo "Stream:    python -m etl stream on the live robot stream, supervised (Live and Pipeline tabs; .run/stream.log)"
	@echo "Lake:      lake/  (python -m etl status)   Logs: $(RUN)/*.log   Stop with: make down"

# Stop what `make up` started: each process group, politely (SIGINT, as Airflow standalone
# expects), then for good after 20 s.
down:
	@for f in $(RUN)/*.pid; do \
		[ -f "$$f" ] || continue; \
		pid=$$(cat $$f); name=$$(basename $$f .pid); \
		if kill -INT -- -$$pid 2>/dev/null; then \
			for i in $$(seq 1 40); do kill -0 -- -$$pid 2>/dev/null || break; sleep 0.5; done; \
			kill -KILL -- -$$pid 2>/dev/null || true; \
			echo "stopped $$name (pid $$pid)"; \
		fi; \
		rm -f $$f; \
	done

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# What the suite needs from Debian: chromium for the dashboard's browser tests, PostgreSQL for the
# operational database's tests (they start their own server on 127.0.0.1). Installed here where we
# can (root and apt); otherwise make test stops and says how. SKIP_BROWSER=1 skips the browser tests
# on purpose, never under CI.
system-deps:
	@missing=""; \
	if [ "$${SKIP_BROWSER:-}" = 1 ] && [ -z "$${CI:-}" ]; then \
		echo "SKIP_BROWSER=1: the dashboard's browser tests will be skipped"; \
	elif [ ! -x /usr/bin/chromium ]; then missing="chromium"; fi; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian's$$missing for the tests ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "error: the tests need Debian's$$missing: run 'sudo apt-get install$$missing' (SKIP_BROWSER=1 skips the browser tests)"; \
			exit 1; \
		fi; \
	fi

test: venv lint system-deps
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python bench/api_bench.py

clean: down
	rm -rf $(VENV) $(MLFLOW_VENV) $(RUN) .pytest_cache .ruff_cache
