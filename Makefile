# pbxlink — `make demo` to see it work, `make test` for what CI runs.
# Re-runs are quick and quiet: the venv is made once, and pip runs again only when pyproject.toml changes.

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test lint typecheck bench system-deps

## demo: pbxlink against the AMI simulator with generated calls (SQLite, in-process bus); prints URL and login
demo: $(VENV)/.installed
	$(VENV)/bin/pbxlink demo

## test: what CI runs: system packages the tests need, then lint, then the whole test suite
test: system-deps $(VENV)/.installed-test lint typecheck
	$(VENV)/bin/pytest -q

## lint: ruff, as CI runs it
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## typecheck: mypy --strict on the parts DESIGN.md keeps strictly typed
typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy --strict pbxlink/domain pbxlink/services

## bench: every benchmarks/*.py; the figures go in docs/benchmarks.md
bench: $(VENV)/.installed-test
	@set -e; found=; for f in benchmarks/*.py; do \
	  [ -f "$$f" ] || continue; found=1; echo "== $$f"; $(PY) "$$f"; \
	done; [ -n "$$found" ] || echo "no benchmarks in benchmarks/ yet"

# Redis and Chromium (integration and browser tests), PostgreSQL (storage tests on a real server),
# sox (recording durations and transcoding, as on a PBX host), python3-venv where Python lacks
# ensurepip. Installed only when missing.
system-deps:
	@missing=; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) -e '.[test,postgres]'
	@touch $@
