#!/usr/bin/env bash
# The other crypto providers: the whole `cargo test` with ring
# (--no-default-features --features ring: aws-lc-rs must not be in that
# build at all) and with fips (aws-lc's FIPS module, which needs Go and
# CMake, installed here if missing). The default provider's run is the
# driver's `cargo test`.
#
#   bash .ci/groups/providers.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

# "N passed, N failed" over every test binary of a `cargo test` log.
count_tests() {
  grep -E '^test result' "$1" | awk '{p += $4; f += $6} END {printf "%d passed, %d failed", p, f}'
}

# Each provider's test build is a second and third copy of every test
# binary (5 GB each with full debug info and incremental data): line tables
# only and no incremental data make each binary less than half its size
# (68 MB -> 30 MB), so a run fits machines with less disk.
export CARGO_PROFILE_DEV_DEBUG=line-tables-only CARGO_INCREMENTAL=0

step "ring: no aws-lc-rs in the build"
if cargo tree --quiet -e normal,build,dev --no-default-features --features ring \
    | grep -qE 'aws-lc-(rs|sys)'; then
  cargo tree -e normal,build,dev --no-default-features --features ring -i aws-lc-rs || true
  fail "aws-lc-rs is in the ring build"
else
  pass "aws-lc-rs is not in the ring build (normal, build and dev dependencies)"
fi

step "ring: the compile errors for no provider and for two"
if out=$(cargo check --quiet --lib --no-default-features 2>&1); then
  fail "a build with no provider compiled"
elif grep -q 'no crypto provider' <<<"$out"; then
  pass "no provider: a compile error that says to enable aws-lc-rs or ring"
else
  printf '%s\n' "$out" | head -20
  fail "no provider: not the error that says what to do"
fi
if out=$(cargo check --quiet --lib --features ring 2>&1); then
  fail "a build with both providers compiled"
elif grep -q 'cannot be combined' <<<"$out"; then
  pass "both providers: a compile error that says how to choose ring"
else
  printf '%s\n' "$out" | head -20
  fail "both providers: not the error that says what to do"
fi

step "cargo test --no-default-features --features ring"
if cargo test --no-fail-fast --no-default-features --features ring >"$work/ring.log" 2>&1; then
  pass "ring: $(count_tests "$work/ring.log")"
else
  show_failure "$work/ring.log"
  fail "ring: $(count_tests "$work/ring.log")"
fi

step "cargo test --features fips"
if ! command -v go >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1; then
  apt_install golang-go cmake
fi
if cargo test --no-fail-fast --features fips >"$work/fips.log" 2>&1; then
  pass "fips: $(count_tests "$work/fips.log")"
else
  show_failure "$work/fips.log"
  fail "fips: $(count_tests "$work/fips.log")"
fi

group_result providers
