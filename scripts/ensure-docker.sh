#!/usr/bin/env bash
# Make sure a Docker engine answers and the local test image exists.
#
# Idempotent: with a running engine and the image present it only checks both. Otherwise it
# installs Debian's docker.io (for dockerd), starts dockerd in the background (no systemd
# here), and builds berth/busybox:test from Debian's busybox-static with `docker import`.
# No image registry is reachable, so this never pulls.
#
# Needs root when it has something to install or start.
set -euo pipefail

readonly TEST_IMAGE='berth/busybox:test'
readonly DOCKERD_PIDFILE='/var/run/berth-dockerd.pid'
readonly DOCKERD_LOG='/var/log/berth-dockerd.log'
readonly LOCKFILE='/var/lock/berth-ensure-docker.lock'
readonly START_TIMEOUT_S=60

log() { printf '[ensure-docker] %s\n' "$*"; }
die() {
  printf '[ensure-docker] ERROR: %s\n' "$*" >&2
  exit 1
}

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    die "$1 needs root; run this script as root (or do it by hand)"
  fi
}

apt_updated=0
apt_install() {
  need_root "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt_updated=1
  fi
  log "apt-get install -y $*"
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

docker_ok() { docker info >/dev/null 2>&1; }

pid_alive() {
  local file=$1 pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Two test runs starting at once must not both start dockerd.
mkdir -p "$(dirname "$LOCKFILE")" 2>/dev/null || true
if exec 9>"$LOCKFILE" 2>/dev/null; then
  flock 9
fi

# --- 1. the engine -----------------------------------------------------------------------

if docker_ok; then
  log "docker engine is up"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    # docker.io brings dockerd, containerd, runc and iptables. A `docker` client from another
    # package may already be on PATH; that is fine, it talks to this dockerd.
    apt_install docker.io
    command -v dockerd >/dev/null 2>&1 || die "dockerd is still not on PATH after installing docker.io"
  fi
  if ! command -v docker >/dev/null 2>&1; then
    die "no docker client on PATH (docker.io should have installed /usr/bin/docker)"
  fi

  if pid_alive "$DOCKERD_PIDFILE"; then
    log "dockerd already started (pid $(<"$DOCKERD_PIDFILE")), waiting for it to answer"
  elif pid_alive /var/run/docker.pid; then
    log "a dockerd is already running (pid $(</var/run/docker.pid)), waiting for it to answer"
  else
    need_root "starting dockerd"
    log "starting dockerd in the background (log: $DOCKERD_LOG)"
    # setsid: its own session, so it outlives this script and the terminal it came from.
    # (Not a process-group leader here, so setsid execs in place and $! is dockerd's pid.)
    # 9>&-: dockerd must not inherit (and so hold forever) the lock taken above.
    setsid nohup dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    echo $! >"$DOCKERD_PIDFILE"
  fi

  deadline=$((SECONDS + START_TIMEOUT_S))
  until docker_ok; do
    if [[ -s $DOCKERD_PIDFILE ]] && ! pid_alive "$DOCKERD_PIDFILE" && ! pid_alive /var/run/docker.pid; then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      rm -f "$DOCKERD_PIDFILE"
      die "dockerd exited during start-up; see $DOCKERD_LOG (last lines above)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "docker info still fails after ${START_TIMEOUT_S}s; see $DOCKERD_LOG (last lines above)"
    fi
    log "waiting for dockerd ($((deadline - SECONDS))s left)"
    sleep 2
  done
  # dockerd writes its own pid file; keep ours in step with it in case they differ.
  if pid_alive /var/run/docker.pid; then
    cp /var/run/docker.pid "$DOCKERD_PIDFILE"
  fi
  log "docker engine is up (dockerd pid $(cat "$DOCKERD_PIDFILE" 2>/dev/null || echo '?'))"
fi

# --- 2. the test image -------------------------------------------------------------------

build_test_image() {
  if [[ ! -x /bin/busybox ]]; then
    apt_install busybox-static
  fi
  [[ -x /bin/busybox ]] || die "/bin/busybox is missing after installing busybox-static"
  # A statically linked busybox is required: the image holds no libc.
  if command -v ldd >/dev/null 2>&1 && ldd /bin/busybox 2>/dev/null | grep -q 'libc\.so'; then
    die "/bin/busybox is dynamically linked; install busybox-static (it replaces busybox)"
  fi

  local root
  root=$(mktemp -d /tmp/berth-busybox-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # expand $root now
  trap "rm -rf '$root'" RETURN

  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,var/www,dev,proc,sys}
  install -d -m 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"

  # One symlink per applet at its usual place (bin/sh, sbin/ifconfig, usr/bin/wget, ...).
  local applet count=0
  while IFS= read -r applet; do
    applet=${applet#/}
    [[ -n $applet && $applet != 'bin/busybox' ]] || continue
    mkdir -p "$root/$(dirname "$applet")"
    [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
    count=$((count + 1))
  done < <(/bin/busybox --list-full 2>/dev/null || /bin/busybox --list | sed 's|^|bin/|')
  for applet in sh httpd sleep echo cat wget nc ls env true false kill ps; do
    [[ -e $root/bin/$applet || -e $root/usr/bin/$applet || -e $root/sbin/$applet || -e $root/usr/sbin/$applet ]] ||
      die "busybox has no '$applet' applet"
  done

  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'berth test image\n' >"$root/var/www/index.html"

  log "importing $TEST_IMAGE ($count busybox applets)"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import \
      --change 'CMD ["/bin/sh"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message 'berth test image: busybox-static' \
      - "$TEST_IMAGE" >/dev/null
}

if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
  log "image $TEST_IMAGE present"
else
  build_test_image
fi

out=$(docker run --rm --label berth.test=1 "$TEST_IMAGE" /bin/echo ok 2>&1) ||
  die "docker run $TEST_IMAGE failed: $out"
[[ $out == ok ]] || die "docker run $TEST_IMAGE printed '$out', expected 'ok'"
log "docker run $TEST_IMAGE works"

# A second tag of the same image: a "new version" to roll Deployments to (the README's
# rollout walk-through and the zero-downtime tests) without a registry.
readonly V2_IMAGE='berth/busybox:v2'
if ! docker image inspect "$V2_IMAGE" >/dev/null 2>&1; then
  docker tag "$TEST_IMAGE" "$V2_IMAGE" || die "docker tag $TEST_IMAGE $V2_IMAGE failed"
  log "tagged $V2_IMAGE"
fi
