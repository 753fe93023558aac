#!/usr/bin/env bash
# `npm stop`: stop what scripts/start.sh started, by the PID files it left under .berth/.
#
# Only processes recorded there are signalled (SIGTERM, then SIGKILL after a grace period);
# never anything found by name. Then the cluster's containers go, found by the label the
# agents gave them (berth.io/cluster=<the cluster id in .berth/<node>/member.json>); the
# pods stay stored, and npm start runs them again. The Docker engine is left running.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

readonly GRACE_S=15

shopt -s nullglob
rc=0

# The local cluster's containers, by label only.
remove_containers() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || return 0
  for member in .berth/*/member.json; do
    id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).clusterId)' "$member" 2>/dev/null) || continue
    mapfile -t ids < <(docker ps -aq --filter "label=berth.io/cluster=$id")
    if ((${#ids[@]} > 0)); then
      echo "[stop] removing ${#ids[@]} containers of cluster $id"
      docker rm -f "${ids[@]}" >/dev/null || rc=1
    fi
    return 0
  done
}

pidfiles=(.berth/*.pid)
if ((${#pidfiles[@]} == 0)); then
  echo "[stop] nothing to stop: no PID files under .berth/ (is the cluster running? npm start starts it)"
  remove_containers
  exit "$rc"
fi

for file in "${pidfiles[@]}"; do
  name=$(basename "$file" .pid)
  pid=$(<"$file")
  if [[ ! $pid =~ ^[0-9]+$ ]]; then
    echo "[stop] $name: $file does not hold a PID; removing it"
    rm -f "$file"
    continue
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "[stop] $name (pid $pid) is not running; removing $file"
    rm -f "$file"
    continue
  fi
  # A stale file may name a PID the kernel has since given to something else.
  if [[ -r /proc/$pid/cmdline ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q berth; then
    echo "[stop] $name: pid $pid is no longer a berth process; removing $file"
    rm -f "$file"
    continue
  fi
  echo "[stop] $name: SIGTERM to pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
done

deadline=$((SECONDS + GRACE_S))
for file in "${pidfiles[@]}"; do
  [[ -f $file ]] || continue
  name=$(basename "$file" .pid)
  pid=$(<"$file")
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[stop] $name (pid $pid) still running after ${GRACE_S}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || rc=1
  else
    echo "[stop] $name (pid $pid) stopped"
  fi
  rm -f "$file"
done

remove_containers
exit "$rc"
