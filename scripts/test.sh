#!/usr/bin/env bash
# `npm test`: dependencies and build, Docker, typecheck, lint, format check, then every
# compiled test under dist/ with ava.
#
# Every phase runs even when an earlier one failed, so the summary is complete. Each phase
# is one check; ava adds one per test. The last line printed is always `N passed, N failed`,
# and the exit code is non-zero when anything failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# Like `npm run`, so `bash scripts/test.sh` works too; never fetch a tool with npx.
export PATH="$PWD/node_modules/.bin:$PATH"

passed=0
failed=0
results=()

bold=''
reset=''
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  bold=$'\e[1m'
  reset=$'\e[0m'
fi

header() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }

# run_check NAME COMMAND...: run one phase, count it as one passed or failed check.
run_check() {
  local name=$1 rc=0
  shift
  header "$name"
  "$@" || rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1))
    results+=("ok      $name")
  else
    failed=$((failed + 1))
    results+=("FAILED  $name (exit $rc)")
  fi
}

run_check 'dependencies and build (scripts/ensure-deps.sh)' bash scripts/ensure-deps.sh
run_check 'docker engine and test image (scripts/ensure-docker.sh)' bash scripts/ensure-docker.sh
run_check 'etcd for the store conformance suite (scripts/ensure-etcd.sh)' bash scripts/ensure-etcd.sh
run_check 'typecheck (tsc --noEmit)' tsc -p tsconfig.json --noEmit
run_check 'lint (biome lint .)' biome lint .
run_check 'format check (biome format .)' biome format .

# --- ava ---------------------------------------------------------------------------------

header 'tests (ava, dist/**/*.test.js)'
tap=$(mktemp -t berth-ava-tap.XXXXXX)
trap 'rm -f "$tap"' EXIT

# TAP goes to stdout (tee'd so people see it); tests' own output goes to stderr untouched.
ava_rc=0
ava --tap </dev/null | tee "$tap" || ava_rc=$?

# `ok N - title`, `not ok N - title`; `# SKIP` and `# TODO` directives are neither.
ava_passed=$(grep -Ec '^ok [0-9]+ - ' "$tap")
ava_skipped=$(grep -E '^ok [0-9]+ - ' "$tap" | grep -Ec '# SKIP$')
ava_failed=$(grep -Ec '^not ok [0-9]+ - ' "$tap")
ava_todo=$(grep -E '^not ok [0-9]+ - ' "$tap" | grep -Ec '# TODO$')
ava_passed=$((ava_passed - ava_skipped))
ava_failed=$((ava_failed - ava_todo))
# ava's closing `# fail N` also counts tests that never ran because their file crashed
# (plus todo tests); take it when it says more.
ava_fail_line=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tap" | tail -n1)
if [[ -n $ava_fail_line ]] && ((ava_fail_line - ava_todo > ava_failed)); then
  ava_failed=$((ava_fail_line - ava_todo))
fi

passed=$((passed + ava_passed))
failed=$((failed + ava_failed))
summary="ava: $ava_passed passed, $ava_failed failed"
((ava_skipped > 0)) && summary+=", $ava_skipped skipped"
((ava_todo > 0)) && summary+=", $ava_todo todo"
if ((ava_rc != 0 && ava_failed == 0)); then
  # ava failed without reporting a failing test: no test files, a config error, a crash.
  failed=$((failed + 1))
  if ((ava_passed == 0)); then
    summary+=" (exit $ava_rc with no test results: no compiled tests in dist/, or ava could not start)"
  else
    summary+=" (exit $ava_rc without a failing test)"
  fi
  results+=("FAILED  $summary")
elif ((ava_rc != 0 || ava_failed > 0)); then
  results+=("FAILED  $summary")
else
  results+=("ok      $summary")
fi

# --- summary -----------------------------------------------------------------------------

header 'summary'
printf '  %s\n' "${results[@]}"
echo
echo "$passed passed, $failed failed"
((failed == 0))
