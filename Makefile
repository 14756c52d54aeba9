# Everything the project needs is installed by these targets into .venvs/ (nothing by hand).
#   make demo   run the example DAGs end to end against the local sandbox (Airflow 3)
#   make test   lint, then the whole suite on Airflow 3.x and on Airflow 2.11
PYTHON ?= python3
AIRFLOW_3 ?= 3.3.2
AIRFLOW_2 ?= 2.11.2
VENV3 := .venvs/airflow-$(AIRFLOW_3)
VENV2 := .venvs/airflow-$(AIRFLOW_2)
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test test-3 test-2 lint bench clean browser

# Headless Chromium and its WebDriver for tests/browser (Debian packages; the runner is root).
# Checked on every run (two file tests), so a machine that lost the packages gets them back.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }; \
	fi

$(VENV3)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV3)/bin/pip install $(PIP_FLAGS) "apache-airflow==$(AIRFLOW_3)" -e ".[test,bench]"
	touch $@

$(VENV2)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV2)/bin/pip install $(PIP_FLAGS) "apache-airflow==$(AIRFLOW_2)" -e ".[test]"
	touch $@

demo: $(VENV3)/.installed
	$(VENV3)/bin/python -m example_dags.run_demo

lint: $(VENV3)/.installed
	$(VENV3)/bin/ruff check airflow_provider_sapplan tests example_dags benchmarks
	$(VENV3)/bin/ruff format --check airflow_provider_sapplan tests example_dags benchmarks

test-3: $(VENV3)/.installed browser
	bash scripts/run-tests.sh $(VENV3)

test-2: $(VENV2)/.installed browser
	bash scripts/run-tests.sh $(VENV2)

test: lint test-3 test-2

bench: $(VENV3)/.installed
	$(VENV3)/bin/python benchmarks/transfer.py
	$(VENV3)/bin/python benchmarks/trigger_density.py
	$(VENV3)/bin/python benchmarks/trigger_density.py --mix

clean:
	rm -rf .venvs .airflow-home
