#!/usr/bin/env bash
# ensure-packages.sh TAG DAEMON BINARIES PACKAGE...: make sure BINARIES (comma-separated)
# are on PATH, installing the Debian PACKAGEs when one is missing. Used by ensure-etcd.sh,
# ensure-haproxy.sh and ensure-wrk.sh, for the tests and benchmarks that compare with them.
#
# Idempotent: with every binary present it only checks them. A package may ship a service
# meant to start at install time: policy-rc.d keeps invoke-rc.d from starting it, and if
# anything still started DAEMON (an executable path, or - for none) during the install, it
# is stopped by its pid, so the tests' and benches' own processes are the only ones left.
# Processes of DAEMON running before the install are not ours and are left alone.
#
# Needs root when it has something to install.
set -euo pipefail

readonly TAG=$1 DAEMON=$2 BINARIES=$3
shift 3
readonly PACKAGES=("$@")
readonly LOCKFILE="/var/lock/berth-ensure-$TAG.lock"

log() { printf '[ensure-%s] %s\n' "$TAG" "$*"; }
die() {
  printf '[ensure-%s] ERROR: %s\n' "$TAG" "$*" >&2
  exit 1
}

have_binaries() {
  local b
  for b in ${BINARIES//,/ }; do command -v "$b" >/dev/null 2>&1 || return 1; done
}

# Pids of processes whose executable is the given path (no pgrep -f: exact binary only).
pids_of_exe() {
  local exe=$1 dir pid
  [[ $exe == - ]] && return 0
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    if [[ $(readlink "$dir/exe" 2>/dev/null || true) == "$exe" ]]; then
      printf '%s\n' "$pid"
    fi
  done
}

# Two runs starting at once must not both run apt-get.
mkdir -p "$(dirname "$LOCKFILE")" 2>/dev/null || true
if exec 9>"$LOCKFILE" 2>/dev/null; then
  flock 9
fi

if have_binaries; then
  log "$BINARIES installed ($(command -v "${BINARIES%%,*}"))"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "installing ${PACKAGES[*]} needs root; run this script as root (or do it by hand)"
export DEBIAN_FRONTEND=noninteractive

before=$(pids_of_exe "$DAEMON" | sort)

# Update the package lists only when apt does not know the package yet.
if ! apt-cache show "${PACKAGES[0]}" >/dev/null 2>&1; then
  log 'apt-get update'
  apt-get -o DPkg::Lock::Timeout=300 update -q
fi
log "apt-get install -y ${PACKAGES[*]}"
# policy-rc.d answering 101 tells invoke-rc.d not to start services during this install
# (only if no policy is in place already, and removed again afterwards).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  made_policy=1
fi
rc=0
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${PACKAGES[@]}" 9>&- || rc=$?
if ((made_policy)); then
  rm -f "$policy"
fi
((rc == 0)) || die "apt-get install failed (exit $rc)"

# Anything the install started (a service, a post-install script): stop it by pid.
after=$(pids_of_exe "$DAEMON" | sort)
started=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d' || true)
for pid in $started; do
  log "stopping $DAEMON pid $pid started by the package install"
  kill -TERM "$pid" 2>/dev/null || true
done
if [[ -n $started ]]; then
  sleep 2
  for pid in $started; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
fi

have_binaries || die "$BINARIES still not on PATH after installing ${PACKAGES[*]}"
log "$BINARIES installed ($(command -v "${BINARIES%%,*}"))"
