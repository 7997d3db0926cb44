#!/usr/bin/env bash
# Installs what some tests run for real: promtool and a Prometheus server (the
# distribution's `prometheus` package), ShellCheck for the scripts and workflow steps,
# LuaJIT (Envoy's Lua runtime) for the gateway's Lua filter, Go for the simulator's request
# decoding that the filter is tested against, nginx for the model list's configuration,
# openssl for a test certificate, and Chromium for the key page's browser test (Debian/Ubuntu). Does nothing when they
# are already there. Without apt-get (or root/sudo) it says so; the tests then skip, except
# in CI (CI=true), where they fail.
set -euo pipefail

packages=""
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || packages="$packages prometheus"
command -v shellcheck >/dev/null 2>&1 || packages="$packages shellcheck"
command -v luajit >/dev/null 2>&1 || packages="$packages luajit"
command -v go >/dev/null 2>&1 || packages="$packages golang-go"
command -v openssl >/dev/null 2>&1 || packages="$packages openssl"
# Playwright drives this browser; its own builds cannot be downloaded (requirements-dev.txt).
command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
# Debian installs nginx in /usr/sbin, outside a user's PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages="$packages nginx"
[ -z "$packages" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: no apt-get; install$packages by hand" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-test-tools: not root and no sudo; install$packages by hand" >&2
    exit 0
  fi
fi
# Only the binaries are wanted, but Debian's prometheus and nginx packages start and enable
# their service on install. Undo exactly that and nothing else: a unit this run did not see
# start (a developer's own nginx or Prometheus) is left as it was. No policy-rc.d: that is
# one system-wide file, managed through update-alternatives by whoever provides it
# (init-system-helpers 1.65.2, README.policy-rc.d), not ours to replace.
services=""
for unit in prometheus nginx; do
  case " $packages " in *" $unit "*) services="$services $unit" ;; esac
done
systemctl=""
command -v systemctl >/dev/null 2>&1 && systemctl="systemctl"
was_active=" "
was_enabled=" "
for unit in $services; do
  [ -n "$systemctl" ] || break
  if systemctl is-active --quiet "$unit" >/dev/null 2>&1; then was_active="$was_active$unit "; fi
  if systemctl is-enabled --quiet "$unit" >/dev/null 2>&1; then was_enabled="$was_enabled$unit "; fi
done
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # one word per package
if ! $sudo apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  $sudo apt-get install -y -q --no-install-recommends $packages >/dev/null
fi
for unit in $services; do
  [ -n "$systemctl" ] || break
  case "$was_active" in *" $unit "*) ;; *)
    if systemctl is-active --quiet "$unit" >/dev/null 2>&1; then
      $sudo systemctl stop "$unit" >/dev/null 2>&1 || true
    fi
    ;;
  esac
  case "$was_enabled" in *" $unit "*) ;; *)
    if systemctl is-enabled --quiet "$unit" >/dev/null 2>&1; then
      $sudo systemctl disable "$unit" >/dev/null 2>&1 || true
    fi
    ;;
  esac
done
