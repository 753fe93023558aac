#!/usr/bin/env bash
# `npm start`: get a local Berth cluster going on this machine.
#
# For now it prepares everything the cluster needs (dependencies, build, Docker engine and
# the local test image) and says what it will start once the node program exists.
# Processes it starts will be recorded as PID files under .berth/ for scripts/stop.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh
bash scripts/ensure-docker.sh

if [[ -f dist/cmd/node/main.js ]]; then
  echo
  echo "[start] dist/cmd/node/main.js exists, but scripts/start.sh does not launch it yet."
  echo "[start] Teach scripts/start.sh the berth-node flags (see the plan below)."
fi

cat <<'PLAN'

Berth: ready, but there is no node program to start yet.
  Done now: dependencies installed, LevelDB binding checked, TypeScript built into dist/,
            Docker engine running, test image berth/busybox:test present.
  Exists:   the Raft core, its runner and the deterministic simulation (npm run sim).
  Next:     cmd/node (berth-node) and cmd/ctl (berthctl).

Once berth-node exists, `npm start` will:
  1. start a local 3-node cluster, one berth-node process per loopback address:
       node-1 on 127.0.0.1, node-2 on 127.0.0.2, node-3 on 127.0.0.3,
     each with its own data directory under .berth/ and its PID in .berth/<node>.pid
     (logs in .berth/<node>.log); all three share this machine's Docker engine;
  2. wait until the three form a Raft cluster and elect a leader;
  3. deploy a demo app (a Deployment of busybox httpd replicas from berth/busybox:test,
     plus a Service), and print how to reach it and how to use berthctl.

`npm stop` stops what `npm start` started (by those PID files).
PLAN
