# The two set-up commands of a fresh machine are `make run` and `make test`; both install what is
# missing first (through `make setup`) and install nothing on a second run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cnnzoo-installed
FASHION_DIR := /usr/share/datasets/fashion-mnist
PYTEST_ARGS ?= -n 2

.PHONY: setup data browser run test clean

setup: $(STAMP) data browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST, our default dataset: Debian's package where apt is usable, else the official files
# downloaded (with checksums) into the data cache.
data: $(STAMP)
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; then :; \
	else \
		$(PY) -m cnnzoo data fetch fashion-mnist || \
		echo "warning: Fashion-MNIST could not be installed; the tests do not need it, training on it does"; \
	fi

# Headless Chromium for the report page's browser tests (tests/test_report.py): Debian's package where apt
# is usable; without it those tests are skipped with the reason, everything else works.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -q chromium >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }; then :; \
	else \
		echo "warning: chromium could not be installed; the report's browser tests will be skipped"; \
	fi

run: setup
	$(VENV)/bin/cnnzoo run

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
