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
    # berthctl finds the cluster through a context in its config file (~/.berth/config).
    node dist/cmd/ctl/main.js config set-context local --endpoints "$ENDPOINTS" --current >/dev/null
    echo "[start] berthctl context \"local\" written to ${BERTH_CONFIG:-~/.berth/config}"
    echo "[start] applying the demo app (examples/demo.yaml)"
    applied=0
    for _ in $(seq 1 20); do
      if node dist/cmd/ctl/main.js apply -f examples/demo.yaml; then applied=1; break; fi
      sleep 1
    done
    [[ $applied == 1 ]] || echo "[start] could not apply the demo app; see the lines above" >&2
    echo -n "[start] waiting for the demo's pods to be ready"
    urls=""
    for _ in $(seq 1 60); do
      urls=$(node dist/cmd/ctl/main.js get pods -n demo -l app=web -o json 2>/dev/null | node -e '
        let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
          const items = JSON.parse(s || "{}").items || [];
          const ready = items.filter((p) => (p.status?.conditions || []).some((c) => c.type === "Ready" && c.status === "True"));
          if (items.length < 3 || ready.length < items.length) return;
          for (const p of ready) for (const e of p.status.endpoints || []) console.log(`  http://${e.hostIP}:${e.hostPort}/   (${p.metadata.name} on ${p.spec.nodeName})`);
        });')
      [[ -n $urls ]] && break
      echo -n .
      sleep 1
    done
    echo
    cluster_ip=$(node dist/cmd/ctl/main.js get svc web -n demo -o json 2>/dev/null |
      node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{try{console.log(JSON.parse(s).spec.clusterIP||"")}catch{console.log("")}})')
    cat <<EOT

Berth is running: a 3-node cluster (n1..n3 on 127.0.0.1..3), the object API, an agent and a
proxy on every node. The demo app (namespace demo) answers on every node:
  Ingress:    http://127.0.0.1/   http://127.0.0.2/   http://127.0.0.3/
  NodePort:   http://127.0.0.1:30080/   (and 127.0.0.2, 127.0.0.3)
  ClusterIP:  http://${cluster_ip:-<pending>}/
  each pod:
${urls:-  (its pods are not ready yet: npx berthctl get pods -n demo)}

  berthctl:   npx berthctl get pods,svc,ingress -n demo -o wide
              npx berthctl describe deploy web -n demo
  roll it:    npx berthctl set image deploy/web httpd=berth/busybox:v2 -n demo
              npx berthctl rollout status deploy/web -n demo
              (requests to the URLs above keep succeeding while it rolls)
              npx berthctl cluster status
  etcdctl:    ETCDCTL_API=3 etcdctl --endpoints $ENDPOINTS get --prefix --keys-only /registry/
  logs:       .berth/n1.log .berth/n2.log .berth/n3.log
  stop:       npm stop   (nodes and their containers; the objects stay in .berth/, and
              npm start again runs them)
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
