#!/usr/bin/env bash
# Other targets, with each provider (aws-lc-rs, ring): the library, tests
# and examples checked for Windows (x86_64-pc-windows-gnu), and the demo
# built for musl (x86_64-unknown-linux-musl, static) and run. Installs mingw-w64 and
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
# Each provider: aws-lc-rs (the default) and ring.
for provider in aws-lc-rs ring; do
  flags=()
  [ "$provider" = ring ] && flags=(--no-default-features --features "ring,testing")
  RUSTFLAGS="-D warnings" CARGO_TARGET_DIR="$cross_target" \
    cargo check --quiet --target x86_64-pc-windows-gnu --all-targets "${flags[@]}"
  pass "$provider: the library, tests and examples check for x86_64-pc-windows-gnu, without warnings"
  CARGO_TARGET_DIR="$cross_target/$provider" \
    cargo build --quiet --target x86_64-unknown-linux-musl --example demo "${flags[@]}"
  musl_out=$("$cross_target/$provider/x86_64-unknown-linux-musl/debug/examples/demo")
  if grep -qF 'server: received "hello from the client"' <<<"$musl_out"; then
    pass "$provider: the demo, built for x86_64-unknown-linux-musl (static), runs"
  else
    printf '%s\n' "$musl_out"
    fail "$provider: the musl demo did not run through"
  fi
done
group_result targets
