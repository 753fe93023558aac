#!/usr/bin/env bash
# Make sure the `haproxy` binary is on PATH (Debian's haproxy package, 2.6 on bookworm), for
# `npm run bench -- proxy`, which compares Berth's L4 proxy with HAProxy in TCP mode. A
# haproxy the install might start is stopped (see ensure-packages.sh), so the bench's own
# (its own config, in a temp dir) is the only one it ever talks to.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-packages.sh" haproxy /usr/sbin/haproxy haproxy haproxy
