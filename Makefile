# SaoY — the two commands are `make demo` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FLASK := $(VENV)/bin/flask --app run
PORT ?= 5000
#: The demo PKI's OCSP, CRL and TSA (certomancer), served beside the demo app.
DEMO_PKI_PORT ?= 8990
DEMO_PKI := SAOY_DEMO_PKI_URL=http://127.0.0.1:$(DEMO_PKI_PORT)
export SAOY_DATA_DIR ?= $(CURDIR)/instance

# Debian packages: what the app needs at run time, and what the tests drive.
# poppler-utils: verification renders the pages a later revision touched (pdftoppm).
RUNTIME_DEBS := fonts-noto-core poppler-utils
TEST_DEBS := $(RUNTIME_DEBS) chromium chromium-driver softhsm2 opensc \
	libnss3-tools libreoffice-calc-nogui postgresql-client openssl nginx-light qpdf zbar-tools \
	$(if $(shell command -v npm),,nodejs npm)

# The tests' OpenID Connect provider (npm, outside the repository's sources).
OIDC_DIR := $(CURDIR)/.cache/oidc
OIDC_PROVIDER := oidc-provider@9.13.3
# axe-core, run inside the Chromium tests (WCAG 2.1 AA).
AXE_DIR := $(CURDIR)/.cache/axe
AXE_CORE := axe-core@4.10.2

.PHONY: demo test lint bench translations system-deps system-deps-test venv db demo-data serve clean oidc-provider axe-core lighthouse deploy-check

demo: system-deps venv translations db demo-data serve

# The deployed stack (nginx, gunicorn, worker, PostgreSQL) is part of the test: CI runs
# it on a fresh machine.  DEPLOY_CHECK=0 leaves it out on a machine without PostgreSQL.
DEPLOY_CHECK ?= 1

test: system-deps-test venv translations lint oidc-provider axe-core
	SAOY_TEST_OIDC_DIR=$(OIDC_DIR) SAOY_TEST_AXE=$(AXE_DIR)/node_modules/axe-core/axe.min.js \
	  $(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	@if [ "$(DEPLOY_CHECK)" = 1 ]; then $(MAKE) --no-print-directory deploy-check; \
	else echo "deploy-check left out (DEPLOY_CHECK=0)"; fi

# The deployed stack, for real on loopback (docs/admin.md): installs nginx if missing.
deploy-check: system-deps-test venv translations
	$(call install_debs,nginx-light)
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "deploy-check needs PostgreSQL on 127.0.0.1:5432 (make test DEPLOY_CHECK=0 leaves it out)"; exit 1; }
	$(PY) deploy/check.py

axe-core: system-deps-test
	@test -f $(AXE_DIR)/node_modules/axe-core/axe.min.js || \
	  npm install --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error $(AXE_CORE) >/dev/null

# Lighthouse (from the npm registry, on Debian's Chromium) for `make bench`'s accessibility.
LIGHTHOUSE_DIR := $(CURDIR)/.cache/lighthouse
LIGHTHOUSE := lighthouse@12.8.2

lighthouse: system-deps-test
	@test -x $(LIGHTHOUSE_DIR)/node_modules/.bin/lighthouse || \
	  npm install --prefix $(LIGHTHOUSE_DIR) --no-audit --no-fund --loglevel=error $(LIGHTHOUSE) >/dev/null

oidc-provider: system-deps-test
	@test -d $(OIDC_DIR)/node_modules/oidc-provider || \
	  npm install --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error $(OIDC_PROVIDER) >/dev/null

# Install only what is missing; needs root (CI and these machines run as root) or sudo.
define install_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

system-deps:
	$(call install_debs,$(RUNTIME_DEBS) $(if $(shell $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null && echo ok),,python3-venv))

system-deps-test:
	$(call install_debs,$(TEST_DEBS) $(if $(shell $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null && echo ok),,python3-venv))

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --no-deps -e .
	touch $@

translations: venv
	@$(PY) translations/catalog.py compile >/dev/null

lint: venv
	$(VENV)/bin/ruff check .

db: venv translations
	mkdir -p "$(SAOY_DATA_DIR)"
	$(FLASK) db upgrade
	$(FLASK) saoy seed

demo-data: db
	SAOY_DEMO=1 $(DEMO_PKI) $(FLASK) saoy demo-data

serve:
	@echo "SaoY on http://127.0.0.1:$(PORT)  (users in README.md, password saoy-demo)"
	@echo "demo PKI (OCSP, CRL, TSA) on http://127.0.0.1:$(DEMO_PKI_PORT)"
	$(DEMO_PKI) $(FLASK) saoy demo-pki & pki=$$!; trap 'kill $$pki 2>/dev/null' EXIT INT TERM; \
	SAOY_DEMO=1 $(DEMO_PKI) SAOY_PROCESS=web $(FLASK) run --host 127.0.0.1 --port $(PORT) --no-reload --with-threads

bench: venv translations lighthouse
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance
