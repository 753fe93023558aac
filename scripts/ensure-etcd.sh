#!/usr/bin/env bash
# Make sure the `etcd` and `etcdctl` binaries are on PATH (Debian's etcd-server and
# etcd-client, etcd 3.4), for the store's conformance suite that runs against real etcd and
# the store benchmarks. An etcd the install might start is stopped (see ensure-packages.sh),
# so the tests' own clusters (on 127.0.10.x) are the only etcd processes left.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-packages.sh" etcd /usr/bin/etcd etcd,etcdctl etcd-server etcd-client
