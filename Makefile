# Two commands: `make demo` runs the main job on embedded defaults,
# `make test` runs every test. Both create .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := /var/lib/kundo-gdpr-test-packages
APT_PACKAGES := dovecot-imapd chromium

.PHONY: demo test lint clean deps system-packages constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every extra the tests need, pinned to the versions the suite last passed on
# (constraints.txt; refresh it with `make constraints` after a green run).
EXTRAS := test,postgresql,dev

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

deps: $(STAMP)

demo: $(STAMP)
	$(BIN)/kundo-gdpr --config config.toml demo

# Debian packages for the tests that talk to real servers (Dovecot, Chromium);
# installed only when running as root, as CI does.
system-packages:
	@if [ "$$(id -u)" = "0" ] && [ ! -f $(APT_STAMP) ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		 apt-get install -y -qq $(APT_PACKAGES) >/dev/null) && touch $(APT_STAMP) \
		|| echo "warning: could not install $(APT_PACKAGES)"; \
	fi

test: $(STAMP) system-packages
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check kundo_gdpr tests benchmarks
	$(BIN)/mypy

constraints: $(STAMP)
	(echo "# The versions the full suite last passed on (make constraints); used by make test and CI."; \
	 $(BIN)/pip freeze --exclude-editable | grep -v '^kundo-gdpr') > constraints.txt

clean:
	rm -rf var $(VENV) .pytest_cache .mypy_cache .ruff_cache
