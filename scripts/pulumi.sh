#!/usr/bin/env bash
# The Pulumi CLI against this project's local state backend, for the commands README shows
# after a deploy (outputs, keys, preview with the policy pack):
#   scripts/pulumi.sh stack output -s dev models --json
# It sets what the deploy script sets: the file backend, the passphrase file, the pinned
# tools' folder on PATH and the policy pack's virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_tools python3
ensure_tools pulumi
use_local_backend
prepare_python
exec pulumi "$@"
