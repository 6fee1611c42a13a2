# shellcheck shell=bash
# Shared by .ci/run and every .ci/groups/NAME.sh (sourced, never run): step
# headings, pass/fail counters, waiting for a peer, free ports, and the setup
# several groups need. Each need_* helper is idempotent: a group run alone
# sets up what it needs, a group run by .ci/run reuses what is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What outlives one group: the Python venv and the Node peer's packages.
# Built binaries stay where cargo puts them, in target/.
ci_state=$PWD/target/ci

step() { printf '\n== %s\n' "$*"; }

# One line per check; group_result sums them up.
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

# Prints the group's one line, "NAME: N passed, N failed", and fails when a
# check failed. .ci/run sets CI_RESULT_FILE to collect the line for its
# summary.
group_result() {
  local line="$1: $passed passed, $failed failed"
  echo
  echo "$line"
  if [ -n "${CI_RESULT_FILE:-}" ]; then echo "$line" >"$CI_RESULT_FILE"; fi
  [ "$failed" -eq 0 ]
}

# A work directory for this script, and the background peers it starts
# (their ids go in pids): both are gone when the script ends.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (up to 10 s) until FILE has a line matching PATTERN.
wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 100); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file:"; cat "$file"
  return 1
}

# What a failed cargo run left in LOG: its error and failure lines, the
# end of the log (a build that died names why there: a linker killed, a
# full disk) and the space left where the build writes.
show_failure() {
  local log=$1
  grep -E 'FAILED|panicked|^error' "$log" | head -40 || true
  echo "-- the last 30 lines of $(basename "$log"):"
  tail -30 "$log" || true
  echo "-- disk space for target/:"
  df -h . || true
}

# Waits (up to 10 s) until something listens on 127.0.0.1:PORT (a peer
# started in the background, such as HAProxy). It does not fail: the
# checks that use the port do, and say what they saw.
wait_listening() {
  for _ in $(seq 100); do
    ss -ltn | grep -q "127.0.0.1:$1 " && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 10 s"
}

# For peers that take no port 0: ask the system for a free one.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# apt-get install PACKAGE..., quietly; for tools a group finds missing.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq; then
    apt-get install -y -qq "$@" >/dev/null
  fi
}

# The system's OpenSSL headers, for the bench package's openssl feature
# (the benchmark's OpenSSL rows), which builds the openssl crate against them.
need_libssl_dev() {
  if ! pkg-config --exists openssl 2>/dev/null; then
    apt_install libssl-dev pkg-config
  fi
}

# Go (the scale benchmark's Go server, bench/go/echo.go).
need_go() {
  if ! command -v go >/dev/null 2>&1; then
    apt_install golang-go
  fi
}

# The openssl CLI.
need_openssl() {
  if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl
  fi
}

# The examples (debug build), in $bin; cargo builds them once and then finds
# them up to date.
need_examples() {
  cargo build --quiet --examples
  bin=${CARGO_TARGET_DIR:-target}/debug/examples
}

# The test PKI (examples/make_pki), made at run time, in $pki: one for the
# whole run of .ci/run (in the directory it shares as CI_SHARED), or one in
# the work directory of a group run alone.
need_pki() {
  need_examples
  pki=${CI_SHARED:-$work}/pki
  [ -f "$pki/client.key" ] || "$bin/make_pki" "$pki" >/dev/null
}

# The Python venv in $venv (target/ci/venv), with PACKAGE... installed in it.
need_venv() {
  venv=$ci_state/venv
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# A directory with Node's ws package in $nodedir (target/ci/node), and
# .ci/ws_peer.mjs copied beside it, as node resolves packages from the
# script's directory.
need_node() {
  nodedir=$ci_state/node
  if [ ! -d "$nodedir/node_modules/ws" ]; then
    mkdir -p "$nodedir"
    (cd "$nodedir" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund ws@8 >/dev/null 2>&1)
  fi
  cp .ci/ws_peer.mjs "$nodedir/"
}
