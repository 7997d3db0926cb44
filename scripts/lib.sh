# Shared by the deploy and destroy scripts: tool checks and the local state backend.
# shellcheck shell=bash

# Pulumi.dev.yaml deploys to the kubeconfig context kind names after this cluster: kind-maas.
# shellcheck disable=SC2034  # read by the scripts that source this file
MAAS_KIND_CLUSTER=maas
# Local file backend: no cloud account. The passphrase only protects secrets in this state.
MAAS_STATE_DIR=${MAAS_STATE_DIR:-$HOME/.maas-platform}

require_tools() {
  local missing=() tool
  declare -A how=(
    [docker]="https://docs.docker.com/engine/install/ (the daemon must be running)"
    [kind]="https://kind.sigs.k8s.io/docs/user/quick-start/#installation (use $(pinned KIND_VERSION))"
    [kubectl]="https://kubernetes.io/docs/tasks/tools/"
    [pulumi]="https://www.pulumi.com/docs/install/ (v3.272.0 or newer)"
    [python3]="Python 3.11 or newer, with venv (Debian: apt-get install python3-venv)"
  )
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    echo "Cannot deploy: missing ${missing[*]}." >&2
    for tool in "${missing[@]}"; do echo "  $tool: ${how[$tool]}" >&2; done
    exit 1
  fi
}

# A value from components/versions.py, so the scripts pin what the program pins.
pinned() {
  python3 -c "import sys; sys.path.insert(0, '.'); import components.versions as v; print(v.$1)"
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
