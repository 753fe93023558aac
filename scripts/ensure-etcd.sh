#!/usr/bin/env bash
# Make sure the `etcd` and `etcdctl` binaries are on PATH (Debian's etcd-server and
# etcd-client, etcd 3.4), for the store's conformance suite that runs against real etcd.
#
# Idempotent: with both binaries present it only checks them. Otherwise it installs the two
# packages. Debian's package ships a service meant to start at install time; there is no
# systemd here, but if anything did start an etcd during the install, it is stopped by its
# pid, so the tests' own clusters (on 127.0.10.x) are the only etcd processes left.
#
# Needs root when it has something to install.
set -euo pipefail

readonly LOCKFILE='/var/lock/berth-ensure-etcd.lock'

log() { printf '[ensure-etcd] %s\n' "$*"; }
die() {
  printf '[ensure-etcd] ERROR: %s\n' "$*" >&2
  exit 1
}

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    die "$1 needs root; run this script as root (or do it by hand)"
  fi
}

# Pids of processes whose executable is the given path (no pgrep -f: exact binary only).
pids_of_exe() {
  local exe=$1 dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    if [[ $(readlink "$dir/exe" 2>/dev/null || true) == "$exe" ]]; then
      printf '%s\n' "$pid"
    fi
  done
}

have_binaries() { command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; }

# Two test runs starting at once must not both run apt-get.
mkdir -p "$(dirname "$LOCKFILE")" 2>/dev/null || true
if exec 9>"$LOCKFILE" 2>/dev/null; then
  flock 9
fi

if have_binaries; then
  log "etcd is installed ($(etcd --version 2>/dev/null | head -n1))"
  exit 0
fi

need_root 'installing etcd-server and etcd-client'
export DEBIAN_FRONTEND=noninteractive

# Etcd processes running before the install are not ours to touch; remember them.
before=$(pids_of_exe /usr/bin/etcd | sort)

# Update the package lists only when apt does not know the package yet.
if ! apt-cache show etcd-server >/dev/null 2>&1; then
  log 'apt-get update'
  apt-get -o DPkg::Lock::Timeout=300 update -q
fi
log 'apt-get install -y etcd-server etcd-client'
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
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends etcd-server etcd-client 9>&- || rc=$?
if ((made_policy)); then
  rm -f "$policy"
fi
((rc == 0)) || die "apt-get install failed (exit $rc)"

# Anything the install started (a service, a post-install script): stop it by pid.
after=$(pids_of_exe /usr/bin/etcd | sort)
started=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d' || true)
if [[ -n $started ]]; then
  for pid in $started; do
    log "stopping etcd pid $pid started by the package install"
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 2
  for pid in $started; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
else
  log 'no etcd service left running by the install'
fi

have_binaries || die 'etcd or etcdctl is still not on PATH after installing etcd-server and etcd-client'
log "etcd is installed ($(etcd --version 2>/dev/null | head -n1))"
