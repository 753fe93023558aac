#!/usr/bin/env bash
# `npm start`: a local 3-node Berth cluster on this machine, one berth-node process per
# loopback address (127.0.0.1, .2, .3), data and logs under .berth/, PIDs in .berth/<node>.pid
# for `npm stop`. Installs and builds what is missing first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh
bash scripts/ensure-docker.sh

readonly NODES=(n1 n2 n3)
readonly INITIAL="n1=127.0.0.1:2380,n2=127.0.0.2:2380,n3=127.0.0.3:2380"
readonly ENDPOINTS="127.0.0.1:2379,127.0.0.2:2379,127.0.0.3:2379"
mkdir -p .berth

running() { [[ -f .berth/$1.pid ]] && kill -0 "$(<".berth/$1.pid")" 2>/dev/null; }

for i in "${!NODES[@]}"; do
  name=${NODES[$i]}
  addr="127.0.0.$((i + 1))"
  if running "$name"; then
    echo "[start] $name is already running (pid $(<".berth/$name.pid"))"
    continue
  fi
  # setsid: the node outlives this script and the npm process that ran it.
  setsid node dist/cmd/node/main.js --name "$name" --address "$addr" --data-dir ".berth/$name" \
    --initial-cluster "$INITIAL" >>".berth/$name.log" 2>&1 </dev/null &
  echo $! >".berth/$name.pid"
  echo "[start] $name on $addr (pid $!, log .berth/$name.log)"
done

echo -n "[start] waiting for a leader"
for _ in $(seq 1 60); do
  if node dist/cmd/ctl/main.js --endpoints "$ENDPOINTS" cluster status >/dev/null 2>&1; then
    echo
    node dist/cmd/ctl/main.js --endpoints "$ENDPOINTS" cluster status
    cat <<EOT

Berth is running: a 3-node cluster with its replicated store.
  berthctl:   npx berthctl --endpoints $ENDPOINTS cluster status
              npx berthctl --endpoints $ENDPOINTS kv put hello world
  etcdctl:    ETCDCTL_API=3 etcdctl --endpoints $ENDPOINTS get hello   (Berth speaks etcd's API)
  logs:       .berth/n1.log .berth/n2.log .berth/n3.log
  stop:       npm stop   (data stays in .berth/; npm start again resumes it)
The demo app arrives with the agent (pods on Docker); the engine is already running.
EOT
    exit 0
  fi
  echo -n .
  sleep 1
done
echo
echo "[start] no leader after 60 s; the last lines of each log:" >&2
for name in "${NODES[@]}"; do tail -n 5 ".berth/$name.log" >&2; done
exit 1
