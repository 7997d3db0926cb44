# Shared by the scripts: tool checks and fetches, the Python environments, the local
# state backend. Sourced from the project root. Written for bash 3.2 (macOS's /bin/bash):
# no associative arrays, no arrays at all (an empty one is "unbound" under `set -u`
# before bash 4.4), no ${x,,}, mapfile or `declare -n`; tests/delivery/test_scripts.py checks.
# shellcheck shell=bash

# The local kind cluster the deploy script creates. kind names its kubeconfig context
# "kind-" + the cluster's name (kubernetes-sigs/kind@v0.33.0
# pkg/cluster/internal/kubeconfig/internal/kubeconfig/helpers.go, KINDClusterKey): kind-maas,
# the context Pulumi.dev.yaml and Pulumi.dev-oidc.yaml deploy to.
MAAS_KIND_CLUSTER=maas
# Local file backend: no cloud account. The passphrase only protects secrets in this state.
MAAS_STATE_DIR=${MAAS_STATE_DIR:-$HOME/.maas-platform}
# Pinned kind, kubectl and Pulumi CLI, fetched here when missing (scripts/tools.py).
MAAS_TOOLS_DIR=${MAAS_TOOLS_DIR:-$PWD/.tools}
PATH="$MAAS_TOOLS_DIR/bin:$PATH"
export PATH

# Tools the scripts cannot fetch: stop at once and say where to get them.
require_tools() {
  local tool missing=""
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  [ -z "$missing" ] && return 0
  echo "Cannot go on: missing$missing." >&2
  for tool in $missing; do
    case "$tool" in
      docker) echo "  docker: https://docs.docker.com/engine/install/ (the daemon must be running)" >&2 ;;
      python3) echo "  python3: Python 3.11 or newer, with venv (Debian: apt-get install python3-venv)" >&2 ;;
      curl) echo "  curl: https://curl.se/download.html (Debian: apt-get install curl)" >&2 ;;
      *) echo "  $tool: install it and put it on PATH" >&2 ;;
    esac
  done
  exit 1
}

require_docker() {
  require_tools docker
  if ! docker info >/dev/null 2>&1; then
    echo "Cannot deploy: docker is installed but its daemon does not answer (is it running?)." >&2
    exit 1
  fi
}

# kind, kubectl and pulumi at their pinned versions: the one on PATH when it reports that
# version (CI runners and laptops often carry older ones), else the release fetched into
# $MAAS_TOOLS_DIR and verified against its published checksum.
ensure_tools() {
  local tool missing=""
  for tool in "$@"; do
    has_pinned "$tool" || missing="$missing $tool"
  done
  [ -z "$missing" ] && return 0
  echo "Fetching the pinned$missing into $MAAS_TOOLS_DIR"
  # shellcheck disable=SC2086  # one word per tool
  python3 scripts/tools.py --dir "$MAAS_TOOLS_DIR" $missing
}

# What each tool prints for its version: kind (kubernetes-sigs/kind@v0.33.0
# pkg/cmd/kind/version/version.go DisplayVersion: "kind v0.33.0 go1.x os/arch"; a
# pre-release has "-alpha" before the space), kubectl (kubernetes/kubernetes@v1.36.4
# staging/src/k8s.io/kubectl/pkg/cmd/version/version.go: "Client Version: v1.36.4"), pulumi
# (pulumi/pulumi@v3.272.0 pkg/cmd/pulumi/version/version.go: version.Version, which
# .goreleaser.yml sets to "v<version>").
has_pinned() {
  local reported wanted
  command -v "$1" >/dev/null 2>&1 || return 1
  case "$1" in
    kind) wanted="kind $(pinned KIND_VERSION) " reported=$(kind version 2>/dev/null) ;;
    kubectl) wanted="Client Version: $(pinned KUBECTL_VERSION)" reported=$(kubectl version --client 2>/dev/null) ;;
    pulumi) wanted="v$(pinned PULUMI_VERSION)" reported=$(pulumi version 2>/dev/null) ;;
    *) return 0 ;;
  esac
  case "$reported" in
    *"$wanted"*) return 0 ;;
    *) return 1 ;;
  esac
}

# A value from components/pins/versions.py, so the scripts pin what the program pins.
pinned() {
  python3 -c "import sys; sys.path.insert(0, '.'); import components.pins.versions as v; print(v.$1)"
}

# A virtualenv with a requirements file installed; redone only when the file changes.
prepare_venv() {
  local venv=$1 requirements=$2 stamp
  stamp="$venv/.requirements-$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$requirements")"
  [ -f "$stamp" ] && return 0
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$requirements"
  touch "$stamp"
}

# The program's virtualenv (Pulumi.yaml: .venv) and the policy pack's (PulumiPolicy.yaml:
# venv). For a local pack the CLI starts <pack>/venv/bin/python without creating it
# (pulumi/pulumi@v3.272.0 sdk/python/cmd/pulumi-language-python/main.go, RunPlugin;
# pkg/engine/update.go installs nothing for a local pack), so it must exist before --policy-pack.
prepare_python() {
  prepare_venv .venv requirements.txt
  prepare_venv policies/venv policies/requirements.txt
}

# The kubeconfig context a stack deploys to (scripts/stack_context.py: `maas:cluster.context`
# in Pulumi.<stack>.yaml, read without the virtualenvs); empty when the file or key is missing.
stack_context() {
  python3 scripts/stack_context.py "$1"
}

# Whether a stack deploys to the local kind cluster: its context is kind-$MAAS_KIND_CLUSTER.
# For those stacks (dev, dev-oidc) the deploy script creates the cluster when absent and
# `scripts/destroy.sh STACK --delete-cluster` may delete it; any other stack's cluster
# (gpu's) is the user's to provide.
on_local_kind() {
  [ "$(stack_context "$1")" = "kind-$MAAS_KIND_CLUSTER" ]
}

# The stack's config file as the CLI gets it (--config-file): a per-user copy of
# Pulumi.<stack>.yaml in $MAAS_STATE_DIR/stacks, beside a copy of Pulumi.yaml, rewritten
# before each command (scripts/stack_file.py). The CLI writes the salt of the passphrase
# secrets manager and `config set` values into that copy, never into the tracked file.
# Needs the program's virtualenv (PyYAML): after prepare_python.
# Called as $(stack_file STACK), where `set -e` does not reach: failures return.
stack_file() {
  .venv/bin/python scripts/stack_file.py "$1" "$MAAS_STATE_DIR/stacks" || return 1
  echo "$MAAS_STATE_DIR/stacks/Pulumi.$1.yaml"
}

# Creates the stack when missing. Run beside the copies: `stack select --create` has no
# --config-file and saves the new stack's salt into Pulumi.<stack>.yaml of the project it
# finds from its working directory (pulumi/pulumi@v3.259.0-14-g1b59498
# pkg/cmd/pulumi/stack/stack_select.go InitStack, io.go CreateStack), here the per-user copy.
# Arguments: the stack, its copy (stack_file's answer).
create_stack() {
  (cd "$(dirname "$2")" && pulumi stack select "$1" --create --non-interactive)
}

use_local_backend() {
  mkdir -p "$MAAS_STATE_DIR/state"
  if [ ! -s "$MAAS_STATE_DIR/passphrase" ]; then
    (umask 077 && python3 -c "import secrets; print(secrets.token_urlsafe(32))" >"$MAAS_STATE_DIR/passphrase")
  fi
  export PULUMI_BACKEND_URL="file://$MAAS_STATE_DIR/state"
  export PULUMI_CONFIG_PASSPHRASE_FILE="$MAAS_STATE_DIR/passphrase"
  export PULUMI_SKIP_UPDATE_CHECK=1
}
