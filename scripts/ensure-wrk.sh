#!/usr/bin/env bash
# Make sure the `wrk` HTTP load generator is on PATH (Debian's wrk package, 4.1), for
# `npm run bench -- proxy`, which drives the direct path, Berth's proxy and HAProxy with it.
#
# Idempotent: with the binary present it only checks it. Otherwise it installs the package
# (a plain binary: no service to keep from starting).
#
# Needs root when it has something to install.
set -euo pipefail

readonly LOCKFILE='/var/lock/berth-ensure-wrk.lock'

log() { printf '[ensure-wrk] %s\n' "$*"; }
die() {
  printf '[ensure-wrk] ERROR: %s\n' "$*" >&2
  exit 1
}

have_binary() { command -v wrk >/dev/null 2>&1; }

# Two runs starting at once must not both run apt-get.
mkdir -p "$(dirname "$LOCKFILE")" 2>/dev/null || true
if exec 9>"$LOCKFILE" 2>/dev/null; then
  flock 9
fi

if have_binary; then
  log "wrk is installed ($(command -v wrk))"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  die 'installing wrk needs root; run this script as root (or do it by hand)'
fi
export DEBIAN_FRONTEND=noninteractive

# Update the package lists only when apt does not know the package yet.
if ! apt-cache show wrk >/dev/null 2>&1; then
  log 'apt-get update'
  apt-get -o DPkg::Lock::Timeout=300 update -q
fi
log 'apt-get install -y wrk'
rc=0
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends wrk 9>&- || rc=$?
((rc == 0)) || die "apt-get install failed (exit $rc)"

have_binary || die 'wrk is still not on PATH after installing the wrk package'
log "wrk is installed ($(command -v wrk))"
