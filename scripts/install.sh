#!/usr/bin/env bash
# Install Berth on a Debian or Ubuntu machine, from the source checkout this script lives in
# or from an `npm pack` tarball (--tarball FILE). See docs/install.md for the whole walk-through
# and `bash scripts/install.sh --help` for the options.
#
# What it does (every step is idempotent: run it again to upgrade in place):
#   1. checks the OS (Debian/Ubuntu), root, Node.js >= 20 and npm, and Docker Engine
#      (installs Debian's docker.io and enables docker.service when docker is missing);
#   2. builds the source (dist/) unless it is already built;
#   3. stages /opt/berth.new with dist/, bin/, proto/, examples/, package.json and the
#      runtime node_modules (npm ci --omit=dev), checks the native LevelDB binding loads,
#      then swaps it in as /opt/berth;
#   4. links /usr/local/bin/berth-node and /usr/local/bin/berthctl;
#   5. creates /etc/berth (0755) with berth.env (0644, never overwritten), /etc/berth/pki
#      (0700) and /var/lib/berth (0700), keeping whatever they already hold;
#   6. installs /etc/systemd/system/berth.service and runs `systemctl daemon-reload`.
# It never enables, starts or restarts berth: `berth-node init` or `join` comes first.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LEVELDB_CHECK="$SELF_DIR/check-leveldb.mjs"
CHECKOUT=$(dirname "$SELF_DIR")
readonly SELF_DIR CHECKOUT
readonly MIN_NODE_MAJOR=20

log() { printf '[install] %s\n' "$*"; }
warn() { printf '[install] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[install] ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
Usage: install.sh [options]

Install Berth (berth-node and berthctl) on this Debian or Ubuntu machine from the source
checkout holding this script, or from an npm-packed tarball. Run it as root. Running it
again upgrades the program in place and keeps /etc/berth/berth.env, /etc/berth/pki and
/var/lib/berth. It does not enable or start the berth service.

Options:
  --tarball FILE             install from this `npm pack` tarball instead of the checkout
  --prefix DIR               install under DIR instead of / (DIR/opt/berth, DIR/etc/berth,
                             DIR/var/lib/berth, DIR/usr/local/bin, DIR/etc/systemd/system);
                             for packagers and tests. Root is not required with a prefix.
  --install-node             when node is missing or older than 20, install Debian/Ubuntu's
                             nodejs and npm packages if their version is >= 20
  --skip-deps                skip the OS, Node.js version and Docker checks and apt entirely
  --no-systemd               do not run systemctl (no daemon-reload, no enabling docker)
  --no-build                 never build; install the source's existing dist/ as it is
  --node-modules-from DIR    copy DIR/node_modules instead of running npm ci, then
                             npm prune --omit=dev (offline; DIR is usually the checkout)
  --demo-image               also build the local image berth/busybox:test that
                             examples/demo.yaml runs (needs Docker; installs busybox-static)
  -h, --help                 show this help

Examples:
  sudo bash scripts/install.sh
  sudo bash scripts/install.sh --install-node --demo-image
  sudo bash scripts/install.sh --tarball berth-0.1.0.tgz
  bash scripts/install.sh --prefix /tmp/root --no-systemd --skip-deps --node-modules-from .
EOF
}

# --- options ---------------------------------------------------------------------------------

tarball=''
prefix='/'
install_node=0
skip_deps=0
use_systemd=1
build=1
modules_from=''
demo_image=0

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case $1 in
  --tarball)
    need_arg "$@"
    tarball=$2
    shift 2
    ;;
  --tarball=*)
    tarball=${1#*=}
    shift
    ;;
  --prefix)
    need_arg "$@"
    prefix=$2
    shift 2
    ;;
  --prefix=*)
    prefix=${1#*=}
    shift
    ;;
  --node-modules-from)
    need_arg "$@"
    modules_from=$2
    shift 2
    ;;
  --node-modules-from=*)
    modules_from=${1#*=}
    shift
    ;;
  --install-node)
    install_node=1
    shift
    ;;
  --skip-deps)
    skip_deps=1
    shift
    ;;
  --no-systemd)
    use_systemd=0
    shift
    ;;
  --no-build)
    build=0
    shift
    ;;
  --demo-image)
    demo_image=1
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown option: $1 (see --help)" ;;
  esac
done

[[ -n $prefix ]] || die "--prefix must not be empty"
mkdir -p "$prefix" || die "cannot create --prefix $prefix"
prefix=$(cd "$prefix" && pwd)
# Every installed path is $root + an absolute path; $root is empty for a real install.
root=${prefix%/}

readonly APP_DIR="$root/opt/berth"
readonly BIN_DIR="$root/usr/local/bin"
readonly ETC_DIR="$root/etc/berth"
readonly PKI_DIR="$ETC_DIR/pki"
readonly DATA_DIR="$root/var/lib/berth"
readonly UNIT_DIR="$root/etc/systemd/system"

if [[ -n $tarball ]]; then
  [[ -f $tarball ]] || die "--tarball: $tarball is not a file"
  tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
fi
if [[ -n $modules_from ]]; then
  [[ -d $modules_from/node_modules ]] || die "--node-modules-from: $modules_from/node_modules is not a directory"
  modules_from=$(cd "$modules_from" && pwd)
fi

# Temporary files, removed on exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-install.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# --- 1. checks and system dependencies ---------------------------------------------------------

if [[ -z $root && $(id -u) -ne 0 ]]; then
  die "run this as root (sudo bash $0 ...): it installs into /opt, /etc, /var/lib and /usr/local/bin"
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

apt_updated=0
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "installing $* needs root"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt_updated=1
  fi
  log "apt-get install -y $*"
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

node20_help() {
  cat >&2 <<EOF
[install] Berth needs Node.js >= $MIN_NODE_MAJOR. Install it first, for example:
[install]   NodeSource (system-wide, what systemd will find):
[install]     curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs
[install]   or nvm (per user; then put its node on systemd's PATH, see /etc/berth/berth.env):
[install]     https://github.com/nvm-sh/nvm#installing-and-updating, then: nvm install 20
[install] and run this script again.
EOF
}

check_os() {
  [[ -r /etc/os-release ]] || die "cannot read /etc/os-release: this script supports Debian and Ubuntu"
  local os id id_like pretty
  # shellcheck disable=SC1091 # the running system's file
  os=$(. /etc/os-release && printf '%s|%s|%s' "${ID:-}" "${ID_LIKE:-}" "${PRETTY_NAME:-}")
  IFS='|' read -r id id_like pretty <<<"$os"
  case " $id $id_like " in
  *' debian '* | *' ubuntu '*) log "OS: ${pretty:-$id}" ;;
  *) die "this script supports Debian and Ubuntu (found ID=$id); use --skip-deps to install anyway" ;;
  esac
}

check_node() {
  local major
  major=$(node_major)
  if command -v node >/dev/null 2>&1 && ((major >= MIN_NODE_MAJOR)); then
    log "Node.js $(node --version) at $(command -v node)"
  else
    if command -v node >/dev/null 2>&1; then
      log "Node.js $(node --version) is older than $MIN_NODE_MAJOR"
    else
      log "Node.js is not installed"
    fi
    if ((install_node == 0)); then
      node20_help
      die "Node.js >= $MIN_NODE_MAJOR is required (or pass --install-node to use this distribution's nodejs if it is new enough)"
    fi
    local candidate cand_major
    candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
    if [[ -z $candidate || $candidate == '(none)' ]]; then
      node20_help
      die "this distribution has no nodejs package"
    fi
    cand_major=${candidate#*:} # drop an epoch
    cand_major=${cand_major%%.*}
    if ! [[ $cand_major =~ ^[0-9]+$ ]] || ((cand_major < MIN_NODE_MAJOR)); then
      node20_help
      die "this distribution's nodejs is $candidate, older than $MIN_NODE_MAJOR"
    fi
    apt_install nodejs npm
    hash -r
    major=$(node_major)
    ((major >= MIN_NODE_MAJOR)) || die "node on PATH is still $(node --version 2>/dev/null || echo missing) after installing nodejs $candidate"
    log "Node.js $(node --version) installed"
  fi
  if ! command -v npm >/dev/null 2>&1; then
    if ((install_node == 1)); then
      apt_install npm
    else
      die "npm is not on PATH (install npm, or pass --install-node)"
    fi
  fi
  # systemd runs berth-node with its own PATH; /usr/bin/env must find node there.
  case $(dirname "$(command -v node)") in
  /usr/local/sbin | /usr/local/bin | /usr/sbin | /usr/bin | /sbin | /bin) ;;
  *) warn "node is at $(command -v node), which is not on systemd's default PATH; add
  PATH=$(dirname "$(command -v node)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  to /etc/berth/berth.env (or install Node.js system-wide) before starting berth" ;;
  esac
}

check_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    log "docker is not installed: installing Debian's docker.io"
    apt_install docker.io
    command -v docker >/dev/null 2>&1 || die "docker is still not on PATH after installing docker.io"
  else
    log "docker: $(docker --version 2>/dev/null || echo 'present')"
  fi
  if ((use_systemd == 1)); then
    if systemctl cat docker.service >/dev/null 2>&1; then
      log "systemctl enable --now docker.service"
      systemctl enable --now docker.service
    else
      warn "there is no docker.service unit; make sure dockerd starts at boot"
    fi
  fi
  if ! docker info >/dev/null 2>&1; then
    warn "the Docker engine does not answer (docker info failed); berth-node needs it running"
  fi
}

if ((skip_deps == 0)); then
  check_os
  check_node
  check_docker
else
  log "--skip-deps: not checking the OS, Node.js version or Docker"
fi
command -v node >/dev/null 2>&1 || die "node is not on PATH"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"

# --- 2. the source, built -----------------------------------------------------------------------

if [[ -n $tarball ]]; then
  log "unpacking $tarball"
  mkdir -p "$work/src"
  tar -xzf "$tarball" -C "$work/src"
  src=$work/src/package
  [[ -f $src/package.json ]] || die "$tarball does not look like an npm pack tarball (no package/package.json)"
else
  src=$CHECKOUT
fi
[[ -f $src/package.json && -d $src/proto && -d $src/bin ]] || die "$src is not a Berth source tree (package.json, bin/, proto/)"

built_main=$src/dist/cmd/node/main.js
needs_build() {
  [[ -f $built_main && -f $src/dist/cmd/ctl/main.js ]] || return 0
  # A source file newer than the last build (tsc rewrites every output on each build).
  [[ -n $(find "$src/cmd" "$src/pkg" -name '*.ts' -newer "$built_main" -print -quit 2>/dev/null) ]]
}

if ((build == 0)); then
  [[ -f $built_main && -f $src/dist/cmd/ctl/main.js ]] || die "--no-build: $src has no build in dist/; run npm run build there"
  needs_build && warn "--no-build: some sources in $src are newer than dist/; installing the existing build"
  log "using the existing build in $src/dist"
elif needs_build; then
  if [[ -z $tarball && -f $src/scripts/ensure-deps.sh ]]; then
    log "building the checkout (scripts/ensure-deps.sh: npm ci if needed, LevelDB check, tsc)"
    bash "$src/scripts/ensure-deps.sh"
  else
    log "building the tarball's source (npm install with dev dependencies, npm run build)"
    (
      cd "$src"
      if [[ -f package-lock.json ]]; then
        npm ci --no-audit --no-fund
      else
        npm install --no-audit --no-fund
      fi
      npm run --silent build
    )
  fi
  [[ -f $built_main ]] || die "the build did not produce dist/cmd/node/main.js"
else
  log "using the existing build in $src/dist"
fi

# --- 3. /opt/berth ------------------------------------------------------------------------------

version=$(node -p 'require(process.argv[1]).version' "$src/package.json")
stage="$APP_DIR.new"
rm -rf "$stage"
mkdir -p "$stage/dist"
log "staging Berth $version in $stage"
# The compiled program only: dist/test and dist/bench are not needed to run it.
cp -a "$src/dist/cmd" "$src/dist/pkg" "$stage/dist/"
cp -a "$src/bin" "$src/proto" "$src/package.json" "$stage/"
[[ -f $src/package-lock.json ]] && cp -a "$src/package-lock.json" "$stage/"
[[ -d $src/examples ]] && cp -a "$src/examples" "$stage/"
[[ -f $src/README.md ]] && cp -a "$src/README.md" "$stage/"
[[ -d $src/docs ]] && cp -a "$src/docs" "$stage/"
chmod 0755 "$stage/bin/berth-node.js" "$stage/bin/berthctl.js"

if [[ -n $modules_from ]]; then
  log "copying node_modules from $modules_from, then npm prune --omit=dev"
  cp -a "$modules_from/node_modules" "$stage/"
  (cd "$stage" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error)
  # npm prune leaves the emptied scope folders (@biomejs, ...) behind.
  find "$stage/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
elif [[ -f $stage/package-lock.json ]]; then
  log "npm ci --omit=dev"
  (cd "$stage" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
else
  log "npm install --omit=dev (no package-lock.json)"
  (cd "$stage" && npm install --omit=dev --no-audit --no-fund --loglevel=error)
fi

# npm may skip install scripts: open a real LevelDB in the staged tree to be sure the native
# binding works (scripts/check-leveldb.mjs, as scripts/ensure-deps.sh does).
check_leveldb() {
  (cd "$stage" && node --input-type=module -e "$(cat "$LEVELDB_CHECK")")
}
if check_leveldb 2>/dev/null; then
  log "classic-level (LevelDB) loads"
else
  log "classic-level does not load; npm rebuild classic-level"
  (cd "$stage" && npm rebuild classic-level)
  check_leveldb || die "classic-level still does not load after 'npm rebuild classic-level' (see the error above).
  It needs a prebuilt binary for $(node -p 'process.platform + "-" + process.arch') or a C++ toolchain
  (apt-get install -y build-essential python3) to compile one."
fi

# The program must at least start and print its usage before it replaces the old one.
"$stage/bin/berth-node.js" --help >/dev/null || die "the staged berth-node --help fails"
"$stage/bin/berthctl.js" --help >/dev/null || die "the staged berthctl --help fails"

if [[ -d $APP_DIR ]]; then
  log "replacing $APP_DIR"
  rm -rf "$APP_DIR.old"
  mv "$APP_DIR" "$APP_DIR.old"
  mv "$stage" "$APP_DIR"
  rm -rf "$APP_DIR.old"
else
  mv "$stage" "$APP_DIR"
fi
log "installed Berth $version in $APP_DIR"

# --- 4. commands --------------------------------------------------------------------------------

mkdir -p "$BIN_DIR"
# Relative links, so they work the same under --prefix: usr/local/bin -> ../../../opt/berth.
for cmd in berth-node berthctl; do
  ln -sfn "../../../opt/berth/bin/$cmd.js" "$BIN_DIR/$cmd"
done
log "linked $BIN_DIR/berth-node and $BIN_DIR/berthctl"

# --- 5. configuration and data directories ------------------------------------------------------

mkdir -p "$ETC_DIR"
chmod 0755 "$ETC_DIR"
if [[ -e $ETC_DIR/berth.env ]]; then
  log "keeping the existing $ETC_DIR/berth.env"
else
  install -m 0644 "$src/packaging/berth.env" "$ETC_DIR/berth.env" 2>/dev/null ||
    install -m 0644 "$CHECKOUT/packaging/berth.env" "$ETC_DIR/berth.env"
  log "wrote $ETC_DIR/berth.env (edit --name and --address before starting)"
fi
mkdir -p "$PKI_DIR" "$DATA_DIR"
chmod 0700 "$PKI_DIR" "$DATA_DIR"
log "$PKI_DIR and $DATA_DIR are 0700 (their contents are kept)"

# --- 6. systemd ---------------------------------------------------------------------------------

mkdir -p "$UNIT_DIR"
unit_src=$src/packaging/berth.service
[[ -f $unit_src ]] || unit_src=$CHECKOUT/packaging/berth.service
install -m 0644 "$unit_src" "$UNIT_DIR/berth.service"
log "installed $UNIT_DIR/berth.service"
running=0
if ((use_systemd == 1)); then
  log "systemctl daemon-reload"
  systemctl daemon-reload
  if systemctl is-active --quiet berth.service 2>/dev/null; then
    running=1
  fi
fi

# --- 7. optional: the demo image ----------------------------------------------------------------

if ((demo_image == 1)); then
  [[ -f $src/scripts/ensure-docker.sh ]] || die "--demo-image: $src/scripts/ensure-docker.sh is missing"
  log "building the demo image berth/busybox:test (scripts/ensure-docker.sh)"
  bash "$src/scripts/ensure-docker.sh"
fi

# --- next steps ---------------------------------------------------------------------------------

if ((running == 1)); then
  cat <<EOF

berth is running the previous version. Restart it to run $version, one machine at a time,
waiting until 'berthctl cluster status' shows this member healthy before the next:
  systemctl restart berth
EOF
else
  cat <<EOF

Berth $version is installed. Next steps (docs/install.md has the whole walk-through):
  1. Edit $ETC_DIR/berth.env: set --name and --address for this machine.
  2. On the first machine only:
       berth-node init --name n1 --address 10.0.0.1 --data-dir /var/lib/berth --pki-dir /etc/berth/pki
     On every other machine, the join command init printed, e.g.:
       berth-node join 10.0.0.1:2381 --token BERTH1-... --name n2 --address 10.0.0.2 \\
         --data-dir /var/lib/berth --pki-dir /etc/berth/pki
  3. systemctl enable --now berth
  4. berthctl cluster status
EOF
fi
