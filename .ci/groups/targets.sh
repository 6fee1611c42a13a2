#!/usr/bin/env bash
# Other targets: the library, tests and examples checked for Windows
# (x86_64-pc-windows-gnu), and the demo built for musl
# (x86_64-unknown-linux-musl, static) and run. Installs mingw-w64 and
# musl-tools, and the two targets with rustup.
#
#   bash .ci/groups/targets.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "Other targets: Windows (x86_64-pc-windows-gnu, checked) and musl (x86_64-unknown-linux-musl, the demo built and run)"
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || ! command -v musl-gcc >/dev/null 2>&1; then
  apt_install mingw-w64 musl-tools
fi
rustup target add x86_64-pc-windows-gnu x86_64-unknown-linux-musl >/dev/null 2>&1 \
  || rustup target add x86_64-pc-windows-gnu x86_64-unknown-linux-musl
# Their own target directory: these builds share nothing with the host's.
cross_target=$work/cross
RUSTFLAGS="-D warnings" CARGO_TARGET_DIR="$cross_target" \
  cargo check --quiet --target x86_64-pc-windows-gnu --all-targets
pass "the library, tests and examples check for x86_64-pc-windows-gnu, without warnings"
CARGO_TARGET_DIR="$cross_target" \
  cargo build --quiet --target x86_64-unknown-linux-musl --example demo
musl_out=$("$cross_target/x86_64-unknown-linux-musl/debug/examples/demo")
if grep -qF 'server: received "hello from the client"' <<<"$musl_out"; then
  pass "the demo, built for x86_64-unknown-linux-musl (static), runs"
else
  printf '%s\n' "$musl_out"
  fail "the musl demo did not run through"
fi
group_result targets
