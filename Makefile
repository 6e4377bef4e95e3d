# mlplane — set-up, lint, test, demo and benchmarks.
#
# Two commands do all set-up on a fresh machine (only python3 >= 3.11, make and git needed):
#   make demo   create .venv, install mlplane, build the example and show the result
#   make test   install everything the tests need (incl. the external judges) and run the suite
#
# Run `make help` for the list of targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# ---------------------------------------------------------------------------------------------
# Configuration (override on the command line, e.g. `make test PYTEST_ARGS='-k promtool'`)
# ---------------------------------------------------------------------------------------------

# Interpreter used to create .venv. By default the newest python3.X (X >= 11) on PATH that
# actually runs: pyenv installs shims for every version it knows, and the inactive ones only
# print an error, so each candidate is tried, not just looked up. Falls back to python3.
# Recursively expanded on purpose: the probing only happens when .venv has to be created.
PYTHON_CANDIDATES := python3.14 python3.13 python3.12 python3.11 python3
newest_python = $(or $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(if $(shell \
	$(p) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo ok),$(p)))),python3)
PYTHON ?= $(newest_python)

VENV        := .venv
VENV_BIN    := $(VENV)/bin
VENV_PY     := $(VENV_BIN)/python
JUDGES_DIR  := .judges
CHECKOV_BIN := $(JUDGES_DIR)/checkov/bin

# Stamps: `install` re-runs only when pyproject.toml changed, `judges` only when its installer
# or the install changed, or when a judge binary went missing.
INSTALL_STAMP := $(VENV)/.mlplane-installed
JUDGES_STAMP  := $(JUDGES_DIR)/.installed
JUDGE_BINS    := $(VENV_BIN)/zizmor $(VENV_BIN)/check-jsonschema $(VENV_BIN)/kubernetes-validate \
                 $(CHECKOV_BIN)/checkov

# Code that ruff checks (only the folders that exist yet) and the packages mypy --strict checks.
LINT_DIRS   := $(wildcard schema compiler targets policies mlplane tests benchmarks tools)
MYPY_PKGS   := mlplane.schema mlplane.compiler mlplane.targets mlplane.policies mlplane.drift
TYPECHECK   := .typecheck

# The tests find the judges on PATH: checkov lives in its own venv, the rest in .venv.
TEST_PATH   := $(CURDIR)/$(CHECKOV_BIN):$(CURDIR)/$(VENV_BIN):$(PATH)
PYTEST_ARGS ?=

EXAMPLE     ?= examples/fraud-scoring
DEMO_ENV    ?= prod
AWS_ENV     ?= prod-aws

.PHONY: help print-python venv install judges judges-status lint ruff typecheck test test-fast \
        generate demo report bench bench-engine clean distclean

help: ## show this list
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

print-python: ## show which interpreter would create .venv
	@py='$(PYTHON)'; echo "PYTHON=$$py ($$($$py --version 2>&1 || echo 'not runnable'))"

# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------

venv: $(VENV_PY) ## create .venv if missing

$(VENV_PY):
	@py='$(PYTHON)'; \
	if ! command -v "$$py" >/dev/null 2>&1; then \
	  echo "error: '$$py' not found. mlplane needs Python >= 3.11: install it, or run" \
	       "'make PYTHON=/path/to/python3.11 ...'." >&2; exit 1; \
	fi; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "error: $$py is $$("$$py" --version 2>&1 || echo 'not runnable'); mlplane needs" \
	       "Python >= 3.11. Run 'make PYTHON=python3.11 ...' (or newer)." >&2; exit 1; \
	fi; \
	echo "creating $(VENV) with $$py ($$("$$py" --version 2>&1))"; \
	if ! "$$py" -m venv $(VENV); then \
	  echo "error: '$$py -m venv' failed. On Debian/Ubuntu install the venv module:" \
	       "apt-get install python3-venv" >&2; exit 1; \
	fi; \
	$(VENV_PY) -m pip install -qq --upgrade pip

install: $(INSTALL_STAMP) ## editable install of mlplane with the test extra

$(INSTALL_STAMP): pyproject.toml $(VENV_PY)
	@echo "installing mlplane (editable, extra 'test') into $(VENV)"
	$(VENV_PY) -m pip install -qq -e '.[test]'
	@touch $@

judges: $(INSTALL_STAMP) ## install the external judges (promtool, checkov, zizmor, ...)
	@reason=; \
	if [ ! -f $(JUDGES_STAMP) ]; then reason="first run"; \
	elif [ tools/install-judges.sh -nt $(JUDGES_STAMP) ]; then reason="installer changed"; \
	elif [ $(INSTALL_STAMP) -nt $(JUDGES_STAMP) ]; then reason="project re-installed"; \
	else \
	  for bin in $(JUDGE_BINS); do [ -x "$$bin" ] || reason="$$bin missing"; done; \
	  if [ "$$(id -u)" = 0 ] && ! command -v promtool >/dev/null 2>&1; then \
	    reason="promtool missing"; fi; \
	fi; \
	if [ -n "$$reason" ]; then \
	  echo "installing judges ($$reason)"; \
	  VENV=$(VENV) JUDGES_DIR=$(JUDGES_DIR) bash tools/install-judges.sh; \
	  touch $(JUDGES_STAMP); \
	fi

judges-status: ## print each judge with its version, or "missing"
	@VENV=$(VENV) JUDGES_DIR=$(JUDGES_DIR) bash tools/install-judges.sh --status

# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

lint: ruff typecheck ## ruff check, ruff format --check, mypy --strict

# Generated goldens are printed by mlplane, not formatted by ruff: tests/golden is left out.
ruff: $(INSTALL_STAMP)
	$(VENV_BIN)/ruff check $(LINT_DIRS)
	$(VENV_BIN)/ruff format --check --exclude tests/golden $(LINT_DIRS)

# mypy cannot follow setuptools' editable import hook (package-dir maps mlplane.schema to
# ./schema, ...), so it checks a throwaway view .typecheck/mlplane/ made of symlinks that mirrors
# the installed package layout. The view is rebuilt each time; mypy's cache next to it is kept.
typecheck: $(INSTALL_STAMP)
	@rm -rf $(TYPECHECK)/mlplane
	@mkdir -p $(TYPECHECK)/mlplane
	@ln -s ../../mlplane/__init__.py $(TYPECHECK)/mlplane/__init__.py
	@ln -s ../../mlplane/drift $(TYPECHECK)/mlplane/drift
	@for pkg in schema compiler targets policies; do ln -s ../../$$pkg $(TYPECHECK)/mlplane/$$pkg; done
	cd $(TYPECHECK) && ../$(VENV_BIN)/mypy --config-file ../pyproject.toml $(addprefix -p ,$(MYPY_PKGS))

# pytest's exit code 5 means "no tests collected": report it as the failure it is.
test: install judges lint ## install everything, lint, and run the whole suite (pytest -n auto)
	@echo "running pytest -n auto $(PYTEST_ARGS)"
	@rc=0; PATH='$(TEST_PATH)' $(VENV_PY) -m pytest -n auto $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "error: pytest collected no tests (exit code 5); this counts as a failure." >&2; \
	fi; \
	exit $$rc

# The developer loop: the unit tests without external judges, fuzzing and other slow tests.
test-fast: install ## unit tests only: no judges, fuzzing or slow tests (~90 s CPU: <1 min on 2 idle cores)
	$(VENV_PY) -m pytest -n auto -q -m 'not judge and not slow and not e2e' \
	    --hypothesis-profile=fast $(PYTEST_ARGS)

# Everything generated from the code, in dependency order; the goldens last, since accepting
# them runs the judges first (tests/test_build_golden.py). Review the diff before committing.
generate: judges ## regenerate JSON Schema, codes and policy docs, AWS class table, goldens
	$(VENV_PY) -m mlplane.compiler.build.schema_files
	$(VENV_PY) -m mlplane.compiler.build.codes_doc
	$(VENV_PY) -m mlplane.policies.docs
	$(VENV_PY) tools/gen_aws_classes.py
	MLPLANE_ACCEPT=1 PATH='$(TEST_PATH)' $(VENV_PY) -m pytest -q -p no:cacheprovider tests/test_build_golden.py
	$(VENV_PY) -m mlplane.compiler.report.schema > docs/report.v1.schema.json
	MLPLANE_ACCEPT=1 PATH='$(TEST_PATH)' $(VENV_PY) -m pytest -q -p no:cacheprovider tests/test_report.py

# ---------------------------------------------------------------------------------------------
# Demo and benchmarks
# ---------------------------------------------------------------------------------------------

demo: install ## validate, explain, build dev and AWS, plan the example (EXAMPLE=, DEMO_ENV=, AWS_ENV=)
	@if [ ! -d '$(EXAMPLE)' ]; then \
	  echo "error: example '$(EXAMPLE)' not found; the demo needs that spec folder." >&2; exit 1; \
	fi
	$(VENV_BIN)/mlplane validate $(EXAMPLE)
	$(VENV_BIN)/mlplane explain $(EXAMPLE) --env $(DEMO_ENV) --show-origin
	@# The dev build: Pulumi program, manifests, monitoring; lists the files it wrote.
	$(VENV_BIN)/mlplane build $(EXAMPLE) --env dev --out build/dev
	@# The same system on AWS (SageMaker, S3, KMS, CloudWatch alarms), when the example has it.
	@if $(VENV_BIN)/mlplane explain $(EXAMPLE) --env $(AWS_ENV) --format json >/dev/null 2>&1; then \
	  $(VENV_BIN)/mlplane build $(EXAMPLE) --env $(AWS_ENV) --out build/$(AWS_ENV); \
	else echo "($(EXAMPLE) has no environment '$(AWS_ENV)': no AWS build)"; fi
	@# Last: what a first deployment would create (offline: no cluster, no credentials).
	$(VENV_BIN)/mlplane plan $(EXAMPLE) --env $(DEMO_ENV) --base none

# The governance reports of the example, one file per environment (HTML: open it in a browser).
REPORT_FORMAT ?= html
report: install ## write the example's governance reports into build/report (EXAMPLE=, REPORT_FORMAT=html|markdown|json)
	$(VENV_BIN)/mlplane report $(EXAMPLE) --out build/report --format $(REPORT_FORMAT) --lower

bench: install ## run the benchmarks (benchmarks/run.py)
	@if [ ! -f benchmarks/run.py ]; then echo "error: benchmarks/run.py not found." >&2; exit 1; fi
	$(VENV_PY) benchmarks/run.py
	@# One line per row of the scale table (README, Performance): validate, build of every
	@# environment, rebuilds, a one-line plan, the program's compile, output sizes, mock runtime.
	$(VENV_PY) benchmarks/scale_bench.py
	@# The governance report of every environment (wall and CPU, per format, size per file).
	$(VENV_PY) benchmarks/report_bench.py

# The real engine's preview of the 1,000-model spec, as `mlplane apply` runs it, against the e2e
# cluster: start it first (`make e2e-up`, stopped by `make e2e-down`). Not part of `make bench`.
BENCH_ENGINE_MODELS ?= 1000
bench-engine: install ## preview a generated N-model environment with the real engine (make e2e-up first; BENCH_ENGINE_MODELS=)
	$(VENV_PY) benchmarks/engine_bench.py --models $(BENCH_ENGINE_MODELS)

# ---------------------------------------------------------------------------------------------
# e2e engine: the Pulumi CLI, Python language host and Kubernetes provider, built from their Go
# modules at the versions pinned in tools/e2e/versions.env, cached outside the work tree
# (MLPLANE_E2E_CACHE, default ~/.cache/mlplane-e2e). A warm cache builds nothing.
# ---------------------------------------------------------------------------------------------

.PHONY: e2e-engine

e2e-engine: ## build the e2e tier's Pulumi engine (tools/e2e/engine.sh)
	bash tools/e2e/engine.sh

# ---- end of e2e engine ----------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# e2e cluster: a local Kubernetes control plane built from pinned Go modules, loopback only
# (pins in tools/e2e/versions.env; builds cached in $${MLPLANE_E2E_CACHE:-~/.cache/mlplane-e2e})
# ---------------------------------------------------------------------------------------------

.PHONY: e2e e2e-cluster e2e-up e2e-down

e2e: install judges ## the real-engine tier: build (cached), start the cluster, run tests/e2e, stop it
	PYTHON=$(abspath $(VENV_PY)) bash tools/e2e/run.sh

e2e-cluster: ## build etcd, the control plane, kwok, Argo Rollouts and the CRDs (cached)
	bash tools/e2e/cluster.sh build

e2e-up: judges ## build what is missing, start the e2e cluster (with Prometheus) and write .e2e/env
	bash tools/e2e/up.sh

e2e-down: ## stop the processes e2e-up started (by pid) and remove .e2e/
	bash tools/e2e/down.sh

# ---------------------------------------------------------------------------------------------
# Cleaning
# ---------------------------------------------------------------------------------------------

clean: ## remove build output and caches (keeps .venv and .judges)
	rm -rf build dist $(TYPECHECK) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -path ./$(JUDGES_DIR) -prune -o \
	       -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## also remove .venv and .judges (the next make re-creates them)
	rm -rf $(VENV) $(JUDGES_DIR)
