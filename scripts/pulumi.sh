#!/usr/bin/env bash
# The Pulumi CLI against this project's local state backend, for the commands README and docs/ show
# after a deploy (outputs, keys, preview with the policy pack):
#   scripts/pulumi.sh stack output -s dev models --json
#   scripts/pulumi.sh config set --secret maas:huggingFaceToken --stack gpu
# It sets what the deploy script sets: the file backend, the passphrase file, the pinned
# tools' folder on PATH and the policy pack's virtualenv; and the commands that read or
# write a stack's config get the per-user copy of its file (scripts/lib.sh stack_file), so
# they need --stack.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_tools python3
ensure_tools pulumi
use_local_backend
prepare_python
stack="" previous=""
for arg in "$@"; do
  case "$previous" in --stack | -s) stack=$arg ;; esac
  case "$arg" in --stack=*) stack=${arg#--stack=} ;; esac
  previous=$arg
done
# The commands with a --config-file flag (pulumi/pulumi@v3.272.0 pkg/cmd/pulumi/config/config.go,
# operations/{up,preview,destroy,refresh,import,watch}.go, logs/logs.go).
case "${1:-}" in
  config | up | preview | destroy | refresh | import | watch | logs)
    if [ -z "$stack" ]; then
      echo "scripts/pulumi.sh $1: name the stack with --stack STACK (dev, gpu, ...)" >&2
      exit 2
    fi
    # The copy keeps only secrets across commands (scripts/stack_file.py): a plain value
    # set here would be gone at the next one.
    if [ "$1" = config ] && { [ "${2:-}" = set ] || [ "${2:-}" = set-all ]; }; then
      case " $* " in *" --secret "* | *" --secret="*) ;; *)
        echo "scripts/pulumi.sh config $2: only secrets are set here (--secret); put other values in Pulumi.$stack.yaml" >&2
        exit 2
        ;;
      esac
    fi
    config_file=$(stack_file "$stack")
    command=$1
    shift
    exec pulumi "$command" "--config-file=$config_file" "$@"
    ;;
esac
exec pulumi "$@"
