# One entry point for people and CI. `make check` is the test command README.md gives;
# `make deploy-dev` the deploy command. STACK names the stack for the stack targets.
PYTHON ?= python3
CHECKOV := .tools/checkov/.installed
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= dev

.PHONY: check lint types test test-tools schemas urns citations bench key-bench critical-path e2e python-envs \
	deploy-dev destroy-dev deploy destroy outputs keys preview converged access-diff

check: lint types test

$(STAMP): requirements.txt requirements-dev.txt policies/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Two workers: the runner's two cores (pytest-dev/pytest-xdist@v3.8.0 src/xdist/plugin.py: `-n`,
# `--numprocesses`, a number of worker processes).
test: $(STAMP) test-tools
	$(BIN)/pytest -n 2

# promtool, a Prometheus server, ShellCheck, LuaJIT, nginx, openssl and Chromium for the
# tests that run them; checkov in a virtualenv of its own.
test-tools: $(CHECKOV)
	scripts/install-test-tools.sh

$(CHECKOV): requirements-checkov.txt
	test -x .tools/checkov/bin/python || $(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# The CRD schemas the tests validate against, from the upstream CRDs at the pinned releases.
schemas: $(STAMP)
	$(BIN)/python -m harness.crd_schemas --out .schemas

# After an intended resource change: rewrite the URN snapshots tests/urns/<stack>.txt.
urns: $(STAMP)
	$(BIN)/python -m harness.urns --write

# Every upstream file the comments cite (owner/repo@ref path): repo, ref, path, where cited.
citations: $(STAMP)
	$(BIN)/python -m harness.citations

# The policy pack's module (maas_policies) holds the size estimator it prints with.
bench: $(STAMP)
	PYTHONPATH=policies $(BIN)/python -m harness.bench

# 10,000 keys minted and listed through the key service against the stand-in Kubernetes API:
# time and memory per key, and what Authorino holds per key (harness/key_bench.py).
key-bench: $(STAMP)
	$(BIN)/python -m harness.key_bench --keys 10000

# The estimated time to the first authorized 200 and the chain that makes it (estimates, each
# with its reason): harness/critical_path.py.
critical-path: $(STAMP)
	$(BIN)/python -m harness.critical_path $(STACK)

# ARGS go to pytest, e.g. ARGS='-m "not disruptive"'.
e2e: $(STAMP)
	scripts/e2e.sh $(ARGS)

# The program's virtualenv and the policy pack's, as the Pulumi CLI expects them.
python-envs:
	bash -c '. scripts/lib.sh && prepare_python'

deploy-dev:
	scripts/deploy.sh dev

destroy-dev:
	scripts/destroy.sh dev

deploy:
	scripts/deploy.sh $(STACK)

destroy:
	scripts/destroy.sh $(STACK)

# What the stack exports (model URLs, curl lines, port-forwards); secrets stay hidden.
outputs:
	scripts/pulumi.sh stack output --stack $(STACK)

# Every user's generated API key, as JSON.
keys:
	scripts/pulumi.sh stack output --stack $(STACK) apiKeys --show-secrets --json

# What the working tree's change to the stack does to people, against BASE (a git ref; default
# HEAD: the uncommitted change); USAGE, a usage export, prices it (docs/access-diff.md).
BASE ?= HEAD
access-diff: $(STAMP)
	$(BIN)/python -m commands.access_diff --stack $(STACK) --base $(BASE) $(if $(USAGE),--usage $(USAGE))

# What an update would change, with the policy pack's verdict.
preview:
	scripts/pulumi.sh preview --stack $(STACK) --diff \
		--policy-pack policies --policy-pack-config policies/config/$(STACK).json

# After a deploy: proves a second `make deploy` would change nothing. The preview that
# scripts/deploy.sh's `pulumi up` starts with (--refresh, the same policy pack flags), and
# `--expect-no-changes` makes it fail when it proposes any change:
# pulumi/pulumi@v3.259.0-14-g1b59498 pkg/cmd/pulumi/operations/preview.go:689 declares the
# flag, :635 returns NoChangesExpectedError when engine.HasChanges; pkg/engine/update.go:531 HasChanges counts
# every step but same and reads, and a preview counts a refresh step only in `pulumi
# refresh` (update.go:1555, previewActions.OnResourceStepPost: isRefresh is set by
# pkg/engine/refresh.go alone, else record = step.Logical(), false for a RefreshStep:
# pkg/resource/deploy/step.go:1500), so only what the update after the refresh would do
# fails it. Read at pulumi v3.259.0-14-g1b59498 (the mirror); the pin is 3.272.0.
converged:
	scripts/pulumi.sh preview --stack $(STACK) --refresh --expect-no-changes --diff --non-interactive \
		--policy-pack policies --policy-pack-config policies/config/$(STACK).json
