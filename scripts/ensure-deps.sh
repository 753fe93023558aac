#!/usr/bin/env bash
# Make sure node_modules is installed, the native LevelDB binding loads, and dist/ is built.
#
# Idempotent and cheap when nothing changed: it installs only when node_modules is missing
# or package-lock.json is newer than the last install, and always rebuilds (tsc 7 is fast).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[ensure-deps] %s\n' "$*"; }
die() {
  printf '[ensure-deps] ERROR: %s\n' "$*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 || die "node is not on PATH (Node.js >= 20 is required)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js >= 20 is required, found $(node --version)"

# Two runs at once must not both install or both build.
mkdir -p .berth
exec 9>.berth/ensure-deps.lock
flock 9

# --- 1. install ----------------------------------------------------------------------------

# npm writes node_modules/.package-lock.json at the end of every install: it marks the last one.
stamp=node_modules/.package-lock.json
if [[ ! -d node_modules ]]; then
  reason='node_modules is missing'
elif [[ ! -f $stamp ]]; then
  reason='node_modules looks incomplete (no .package-lock.json)'
elif [[ -f package-lock.json && package-lock.json -nt $stamp ]]; then
  reason='package-lock.json is newer than node_modules'
else
  reason=''
fi

if [[ -n $reason ]]; then
  if [[ -f package-lock.json ]]; then
    log "$reason: npm ci"
    npm ci --no-audit --no-fund
  else
    log "$reason and there is no package-lock.json: npm install"
    npm install --no-audit --no-fund
  fi
  # npm ci leaves the lockfile untouched; make the stamp newer so the next run skips install.
  [[ -f $stamp ]] && touch "$stamp"
else
  log "node_modules is up to date"
fi

# --- 2. the native LevelDB binding ---------------------------------------------------------

# npm 11 may skip dependencies' install scripts: open a real LevelDB to be sure the native
# binding works (scripts/check-leveldb.mjs).
check_leveldb() {
  node --input-type=module -e "$(cat scripts/check-leveldb.mjs)"
}

if check_leveldb 2>/dev/null; then
  log "classic-level (LevelDB) loads"
else
  log "classic-level does not load; npm rebuild classic-level"
  npm rebuild classic-level
  check_leveldb || die "classic-level still does not load after 'npm rebuild classic-level' (see the error above).
  It needs either a prebuilt binary for $(node -p 'process.platform + "-" + process.arch') or a C++ toolchain
  (apt-get install -y build-essential python3) to compile one."
  log "classic-level (LevelDB) loads after rebuild"
fi

# --- 3. build ------------------------------------------------------------------------------

log "npm run build"
build_rc=0
npm run --silent build || build_rc=$?

# tsc never deletes outputs whose source is gone; a stale dist/**/*.test.js would still be
# picked up by ava. Remove compiled files that no longer have a .ts source.
if [[ -d dist ]]; then
  while IFS= read -r -d '' js; do
    rel=${js#dist/}
    src=${rel%.js}.ts
    if [[ ! -f $src ]]; then
      log "removing stale $js (no $src)"
      rm -f "$js" "$js.map"
    fi
  done < <(find dist -type f -name '*.js' -print0)
  find dist -mindepth 1 -type d -empty -delete
fi

((build_rc == 0)) || die "npm run build failed (exit $build_rc)"
log "build ok"
