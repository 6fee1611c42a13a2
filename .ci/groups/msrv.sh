#!/usr/bin/env bash
# MSRV and packaging: the library on Rust 1.85 (rust-version) with
# dependencies resolved for it, the testing feature, tests and examples on
# 1.88 with the committed lockfile, and cargo publish --dry-run; all in a
# clone of the committed HEAD. Installs the two toolchains with rustup.
#
#   bash .ci/groups/msrv.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "MSRV and packaging: the library on Rust 1.85, tests and examples on 1.88, cargo publish --dry-run"
# In a clone of its own, so this run's lockfile and target stay as they are.
msrv_dir=$work
git clone -q . "$msrv_dir/securenet"
for toolchain in 1.85.0 1.88.0; do
  rustup toolchain install "$toolchain" --profile minimal >/dev/null 2>&1 \
    || rustup toolchain install "$toolchain" --profile minimal
done
cd "$msrv_dir/securenet"
export CARGO_TARGET_DIR="$msrv_dir/target"
# The committed lockfile has dependencies that need 1.88 (time 0.3.55):
# a user on 1.85 resolves for their compiler, as edition 2024's resolver
# does when it writes a lockfile.
CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo +1.85.0 update --quiet
RUSTFLAGS="-D warnings" cargo +1.85.0 check --quiet --lib
pass "the library builds on Rust 1.85 (rust-version), without warnings"
RUSTFLAGS="-D warnings" cargo +1.85.0 check --quiet --lib --no-default-features --features ring
pass "the library with ring builds on Rust 1.85, without warnings"
git checkout -q Cargo.lock
cargo +1.88.0 check --quiet --all-targets --features testing,acme
pass "the testing and acme features, tests and examples build on Rust 1.88 with the committed lockfile"
cargo publish --dry-run --quiet
pass "cargo publish --dry-run"
group_result msrv
