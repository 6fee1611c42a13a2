#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeded with a fresh
# test PKI and sample frames; fails on the first crash, hang (10 s per
# input) or out-of-memory. Installs cargo-fuzz if it is missing.
#
#   bash fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# libFuzzer's instrumentation needs nightly flags; this allows them on stable.
export RUSTC_BOOTSTRAP=1
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
cargo run --quiet --manifest-path ../Cargo.toml --example make_pki -- "$seeds/pki" >/dev/null
python3 seeds.py "$seeds/pki" "$seeds/corpus"
cargo fuzz build
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log=$seeds/$target.log
  if cargo fuzz run "$target" "corpus/$target" "$seeds/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
    echo "fuzz $target: $(grep -m1 -oE 'Done [0-9]+ runs in [0-9]+ second' "$log")s, 0 crashes"
  else
    tail -n 40 "$log"
    echo "fuzz $target: FAILED (the input is in fuzz/artifacts/$target)"
    exit 1
  fi
done
