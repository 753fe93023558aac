#!/usr/bin/env bash
# Make sure the `wrk` HTTP load generator is on PATH (Debian's wrk package, 4.1), for
# `npm run bench -- proxy`, which drives the direct path, Berth's proxy and HAProxy with it.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-packages.sh" wrk - wrk wrk
