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
readonly NODE=(node dist/cmd/node/main.js)
readonly CTL=(node dist/cmd/ctl/main.js)
mkdir -p .berth
chmod 700 .berth

running() { [[ -f .berth/$1.pid ]] && kill -0 "$(<".berth/$1.pid")" 2>/dev/null; }

# Start node i (0-based) with the given extra flags, unless it runs already.
start_node() {
  local i=$1 name=${NODES[$1]} addr="127.0.0.$(($1 + 1))"
  shift
  if running "$name"; then
    echo "[start] $name is already running (pid $(<".berth/$name.pid"))"
    return
  fi
  # setsid: the node outlives this script and the npm process that ran it.
  setsid "${NODE[@]}" --name "$name" --address "$addr" --data-dir ".berth/$name" "$@" \
    >>".berth/$name.log" 2>&1 </dev/null &
  echo $! >".berth/$name.pid"
  echo "[start] $name on $addr (pid $!, log .berth/$name.log)"
}

# Wait until `berthctl cluster status -o json` lists `want` voters, all healthy.
wait_voters() {
  local want=$1
  for _ in $(seq 1 60); do
    if "${CTL[@]}" cluster status -o json 2>/dev/null | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        try { const q = JSON.parse(s).quorum; process.exit(q && q.voters >= Number(process.argv[1]) ? 0 : 1); }
        catch { process.exit(1); }
      });' "$want"; then
      return 0
    fi
    sleep 1
  done
  echo "[start] the cluster did not reach $want voters in 60 s; see .berth/*.log" >&2
  return 1
}

if [[ -f .berth/n1/member.json && ! -f .berth/n1.pki/node.crt ]]; then
  # A cluster made by an older npm start, before TLS: run it as it was, and say how to renew.
  echo "[start] .berth/ holds a plain-text cluster from an older version; starting it with --insecure"
  echo "[start] (npm stop && rm -rf .berth && npm start makes a new one with mutual TLS)"
  for i in "${!NODES[@]}"; do start_node "$i" --insecure --initial-cluster "$INITIAL"; done
  "${CTL[@]}" config set-context local --endpoints "$ENDPOINTS" --current >/dev/null
else
  # Secure by default, the way docs/install.md does it on VMs: init the first node (its CA,
  # certificates, the Secrets key and the admin's berthctl context "local"), then join the
  # others with a token, one at a time.
  if [[ -f .berth/n1.pki/node.crt && -f .berth/n2.pki/node.crt && -f .berth/n3.pki/node.crt ]]; then
    # Made before: all three run again (one alone has no quorum).
    for i in "${!NODES[@]}"; do start_node "$i"; done
    wait_voters 3
  else
    if [[ ! -f .berth/n1.pki/node.crt ]]; then
      echo "[start] berth-node init: a new cluster CA, certificates and the Secrets encryption key"
      "${NODE[@]}" init --name n1 --address 127.0.0.1 --data-dir .berth/n1 --context local >.berth/init.txt
      sed 's/^/[start]   /' .berth/init.txt | grep -v -- '--token' || true
    fi
    start_node 0
    wait_voters 1
    for i in 1 2; do
      name=${NODES[$i]}
      if [[ ! -f .berth/$name.pki/node.crt ]]; then
        token=$("${CTL[@]}" token create --ttl 10m --description "npm start")
        echo "[start] berth-node join 127.0.0.1 --token <a new token> --name $name"
        "${NODE[@]}" join 127.0.0.1 --token "$token" --name "$name" --address "127.0.0.$((i + 1))" \
          --data-dir ".berth/$name" | sed 's/^/[start]   /'
      fi
      start_node "$i"
      wait_voters $((i + 1))
    done
  fi
  "${CTL[@]}" config set-context local --endpoints "$ENDPOINTS" --current >/dev/null
fi

echo -n "[start] waiting for a leader"
for _ in $(seq 1 60); do
  if "${CTL[@]}" cluster status >/dev/null 2>&1; then
    echo
    "${CTL[@]}" cluster status
    # berthctl finds the cluster, and its admin credential, through the context "local" in
    # its config file (~/.berth/config).
    echo "[start] berthctl context \"local\" (admin, mutual TLS) is in ${BERTH_CONFIG:-~/.berth/config}"
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
proxy on every node, mutual TLS between them, Secrets encrypted at rest. The demo app (namespace demo) answers on every node:
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
  security:   every connection is mutual TLS; npx berthctl token list
              npx berthctl user create alice --readonly > alice.conf   (a read-only credential)
  etcdctl:    ETCDCTL_API=3 etcdctl --endpoints $ENDPOINTS --cacert .berth/n1.pki/ca.crt \\
                --cert .berth/n1.pki/node.crt --key .berth/n1.pki/node.key get --prefix --keys-only /registry/
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
