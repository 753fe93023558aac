#!/usr/bin/env bash
# Make sure the `haproxy` binary is on PATH (Debian's haproxy package, 2.6 on bookworm), for
# `npm run bench -- proxy`, which compares Berth's L4 proxy with HAProxy in TCP mode.
#
# Idempotent: with the binary present it only checks it. Otherwise it installs the package.
# Debian's package ships a service meant to start at install time; there is no systemd here,
# but if anything did start a haproxy during the install, it is stopped by its pid, so the
# bench's own haproxy (its own config, in a temp dir) is the only one it ever talks to.
#
# Needs root when it has something to install.
set -euo pipefail

readonly LOCKFILE='/var/lock/berth-ensure-haproxy.lock'

log() { printf '[ensure-haproxy] %s\n' "$*"; }
die() {
  printf '[ensure-haproxy] ERROR: %s\n' "$*" >&2
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

have_binary() { command -v haproxy >/dev/null 2>&1; }
version() { haproxy -v 2>/dev/null | head -n1; }

# Two runs starting at once must not both run apt-get.
mkdir -p "$(dirname "$LOCKFILE")" 2>/dev/null || true
if exec 9>"$LOCKFILE" 2>/dev/null; then
  flock 9
fi

if have_binary; then
  log "haproxy is installed ($(version))"
  exit 0
fi

need_root 'installing haproxy'
export DEBIAN_FRONTEND=noninteractive

# Haproxy processes running before the install are not ours to touch; remember them.
before=$(pids_of_exe /usr/sbin/haproxy | sort)

# Update the package lists only when apt does not know the package yet.
if ! apt-cache show haproxy >/dev/null 2>&1; then
  log 'apt-get update'
  apt-get -o DPkg::Lock::Timeout=300 update -q
fi
log 'apt-get install -y haproxy'
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
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends haproxy 9>&- || rc=$?
if ((made_policy)); then
  rm -f "$policy"
fi
((rc == 0)) || die "apt-get install failed (exit $rc)"

# Anything the install started (the service, a post-install script): stop it by pid.
after=$(pids_of_exe /usr/sbin/haproxy | sort)
started=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d' || true)
if [[ -n $started ]]; then
  for pid in $started; do
    log "stopping haproxy pid $pid started by the package install"
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 2
  for pid in $started; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
else
  log 'no haproxy service left running by the install'
fi

have_binary || die 'haproxy is still not on PATH after installing the haproxy package'
log "haproxy is installed ($(version))"
